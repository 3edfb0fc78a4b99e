package zenith

// The C entry points of Go stages (NewGoStage). A file with //export may only declare C in its
// preamble, so the trampoline that passes them to the library lives in engine.go.

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zenith.h>
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
	"unsafe"
)

// zgoStageCall runs a Go stage's function on one event, on an engine worker thread. Nothing
// escapes it: an error or a panic becomes the event's failure message.
//
//export zgoStageCall
func zgoStageCall(userData unsafe.Pointer, inArray *C.struct_ArrowArray, inSchema *C.struct_ArrowSchema,
	outArray *C.struct_ArrowArray, outSchema *C.struct_ArrowSchema, errBuf *C.char, capacity C.size_t) (status C.int32_t) {
	fn := cgo.Handle(*(*C.uintptr_t)(userData)).Value().(StageFunc)
	// Move the event into structs the function owns (the engine's stay released).
	in, inS := newArrowArray(), newArrowSchema()
	*in.c, inArray.release = *inArray, nil
	*inS.c, inSchema.release = *inSchema, nil
	defer in.Release()
	defer inS.Release()
	message := ""
	func() {
		defer func() {
			if r := recover(); r != nil {
				message = fmt.Sprintf("panic: %v", r)
			}
		}()
		out, outS, err := fn(in, inS)
		switch {
		case err != nil:
			message = err.Error()
		case out == nil || outS == nil:
			message = "the stage returned no batch"
		default:
			out.mu.Lock()
			outS.mu.Lock()
			if out.c == nil || outS.c == nil || out.c.release == nil || outS.c.release == nil {
				message = "the stage returned a released batch"
			} else {
				*outArray, out.c.release = *out.c, nil
				*outSchema, outS.c.release = *outS.c, nil
			}
			outS.mu.Unlock()
			out.mu.Unlock()
			out.Release()
			outS.Release()
		}
	}()
	if message == "" {
		return 0
	}
	if errBuf != nil && capacity > 0 {
		b := []byte(message)
		if len(b) >= int(capacity) {
			b = b[:capacity-1]
		}
		dst := unsafe.Slice((*byte)(unsafe.Pointer(errBuf)), int(capacity))
		copy(dst, b)
		dst[len(b)] = 0
	}
	return 1
}

// zgoStageFree forgets a Go stage's function once the library has freed the stage.
//
//export zgoStageFree
func zgoStageFree(userData unsafe.Pointer) {
	slot := (*C.uintptr_t)(userData)
	cgo.Handle(*slot).Delete()
	C.free(unsafe.Pointer(slot))
}
