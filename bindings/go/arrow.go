package zenith

/*
#include <stdlib.h>
#include <zenith.h>

// Calling a C function pointer needs C: release the struct unless it is released already
// (release == NULL, also after a consumer moved it out).
static void zgo_release_array(struct ArrowArray *a) {
	if (a->release != NULL) a->release(a);
}
static void zgo_release_schema(struct ArrowSchema *s) {
	if (s->release != NULL) s->release(s);
}
static void zgo_release_stream(struct ArrowArrayStream *s) {
	if (s->release != NULL) s->release(s);
}
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// ArrowArray owns one Arrow C Data Interface `struct ArrowArray`, allocated in C memory so that
// its address is stable and any cgo consumer can take it over.
//
// Hand it to a consumer with [ArrowArray.Pointer] (for example arrow-go's cdata package, whose
// importers move the struct out and leave it released), then call [ArrowArray.Release], which
// releases the array if no one took it and frees the struct. Release is idempotent; a
// finalizer calls it for an ArrowArray that is dropped without it.
type ArrowArray struct {
	mu sync.Mutex
	c  *C.struct_ArrowArray
}

// ArrowSchema owns one Arrow C Data Interface `struct ArrowSchema`; see [ArrowArray].
type ArrowSchema struct {
	mu sync.Mutex
	c  *C.struct_ArrowSchema
}

// ArrowArrayStream owns one Arrow C Stream Interface `struct ArrowArrayStream`; see
// [ArrowArray]. A stream must be read from one goroutine at a time.
type ArrowArrayStream struct {
	mu sync.Mutex
	c  *C.struct_ArrowArrayStream
}

func newArrowArray() *ArrowArray {
	// C.malloc never returns nil (cgo aborts on out of memory); zero the struct: released.
	a := &ArrowArray{c: (*C.struct_ArrowArray)(C.malloc(C.sizeof_struct_ArrowArray))}
	*a.c = C.struct_ArrowArray{}
	runtime.SetFinalizer(a, (*ArrowArray).Release)
	return a
}

func newArrowSchema() *ArrowSchema {
	s := &ArrowSchema{c: (*C.struct_ArrowSchema)(C.malloc(C.sizeof_struct_ArrowSchema))}
	*s.c = C.struct_ArrowSchema{}
	runtime.SetFinalizer(s, (*ArrowSchema).Release)
	return s
}

func newArrowArrayStream() *ArrowArrayStream {
	s := &ArrowArrayStream{c: (*C.struct_ArrowArrayStream)(C.malloc(C.sizeof_struct_ArrowArrayStream))}
	*s.c = C.struct_ArrowArrayStream{}
	runtime.SetFinalizer(s, (*ArrowArrayStream).Release)
	return s
}

// Pointer returns the address of the C `struct ArrowArray` (nil after Release). It stays valid
// until Release; keep the ArrowArray reachable while C code uses it (runtime.KeepAlive).
func (a *ArrowArray) Pointer() unsafe.Pointer {
	a.mu.Lock()
	defer a.mu.Unlock()
	return unsafe.Pointer(a.c)
}

// Len returns the array's number of rows (0 once released or moved out).
func (a *ArrowArray) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.c == nil || a.c.release == nil {
		return 0
	}
	return int(a.c.length)
}

// Release releases the array (unless a consumer moved it out) and frees the struct.
// It is idempotent and safe to call from any goroutine.
func (a *ArrowArray) Release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.c == nil {
		return
	}
	C.zgo_release_array(a.c)
	C.free(unsafe.Pointer(a.c))
	a.c = nil
	runtime.SetFinalizer(a, nil)
}

// Pointer returns the address of the C `struct ArrowSchema` (nil after Release); see
// [ArrowArray.Pointer].
func (s *ArrowSchema) Pointer() unsafe.Pointer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return unsafe.Pointer(s.c)
}

// Release releases the schema (unless a consumer moved it out) and frees the struct.
// It is idempotent and safe to call from any goroutine.
func (s *ArrowSchema) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		return
	}
	C.zgo_release_schema(s.c)
	C.free(unsafe.Pointer(s.c))
	s.c = nil
	runtime.SetFinalizer(s, nil)
}

// Pointer returns the address of the C `struct ArrowArrayStream` (nil after Release); see
// [ArrowArray.Pointer].
func (s *ArrowArrayStream) Pointer() unsafe.Pointer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return unsafe.Pointer(s.c)
}

// Release releases the stream (unless a consumer moved it out) and frees the struct.
// It is idempotent and safe to call from any goroutine.
func (s *ArrowArrayStream) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		return
	}
	C.zgo_release_stream(s.c)
	C.free(unsafe.Pointer(s.c))
	s.c = nil
	runtime.SetFinalizer(s, nil)
}
