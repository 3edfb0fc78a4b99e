package zenith

/*
#include <stdint.h>
#include <stdlib.h>
#include <zenith.h>

// The Go functions behind native stages (engine_native.go exports them).
extern int32_t zgoStageCall(void *user_data, struct ArrowArray *in_array,
                            struct ArrowSchema *in_schema, struct ArrowArray *out_array,
                            struct ArrowSchema *out_schema, char *error, size_t capacity);
extern void zgoStageFree(void *user_data);

static zenith_status zgo_stage_new_go(const char *name, void *user_data, zenith_stage **out,
                                      zenith_error **err) {
	return zenith_stage_new_native(name, zgoStageCall, user_data, zgoStageFree, out, err);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"
)

// The event engine: events are Arrow record batches (struct arrays through the C Data
// Interface). An [Engine] runs each published event through its stages on worker threads, in
// parallel across events, and [Engine.Poll] returns them in publish order; a failed event comes
// out in its place as an [*EventFailedError]. Stages ([NewWasmStage], [NewGoStage]) are fixed
// when the engine is created.

// ErrEventFailed is the code of an [*EventFailedError] (ZENITH_ERR_EVENT_FAILED).
const ErrEventFailed Status = C.ZENITH_ERR_EVENT_FAILED

// ErrTimeout is returned by [Engine.Publish] when the engine stayed full for the whole timeout
// (the batch is still the caller's, unchanged: publish it again) and by [Engine.Poll] when the
// next event was not done in time (ZENITH_WOULD_BLOCK).
var ErrTimeout = errors.New("zenith: engine timeout (ZENITH_WOULD_BLOCK)")

// ErrEngineClosed is returned by methods of a closed Engine (or Stage).
var ErrEngineClosed = errors.New("zenith: use of a closed engine or stage")

// Forever is a timeout without a deadline for [Engine.Publish] and [Engine.Poll].
const Forever time.Duration = -1

// EventFailedError is one event that failed in a stage (a plugin's trap, timeout, out-of-memory
// or malformed result, or a native stage's error). The engine goes on with the next events.
type EventFailedError struct {
	Sequence uint64 // the failed event's sequence number, as Publish returned it
	Message  string // names the event, the stage and the reason
}

func (e *EventFailedError) Error() string { return "zenith: " + e.Message }

// Unwrap returns [ErrEventFailed], so errors.Is(err, zenith.ErrEventFailed) works.
func (e *EventFailedError) Unwrap() error { return ErrEventFailed }

// NewArrowArray returns an empty (released) ArrowArray for a producer to fill, e.g. arrow-go's
// cdata.ExportArrowRecordBatch before [Engine.Publish].
func NewArrowArray() *ArrowArray { return newArrowArray() }

// NewArrowSchema returns an empty (released) ArrowSchema for a producer to fill.
func NewArrowSchema() *ArrowSchema { return newArrowSchema() }

// Stage is a transform stage. Engines created with it keep it alive: Close frees only this
// handle. Close is idempotent; a finalizer is only a backstop.
type Stage struct {
	mu sync.Mutex
	h  *C.zenith_stage
}

func newStage(h *C.zenith_stage) *Stage {
	s := &Stage{h: h}
	runtime.SetFinalizer(s, (*Stage).Close)
	return s
}

// NewWasmStage creates a sandboxed WASM stage from a plugin file (plugin ABI v1,
// docs/plugins.md). memoryLimit caps each instance's memory in bytes (0: 256 MiB); timeLimit
// caps the CPU time per event (0: 1 s). A missing file is [ErrNotFound], a bad module
// [ErrInvalidArgument].
func NewWasmStage(path string, memoryLimit uint64, timeLimit time.Duration) (*Stage, error) {
	return NewWasmStageConfig(path, memoryLimit, timeLimit, nil)
}

// NewWasmStageConfig is [NewWasmStage] with configuration bytes that each instance of the plugin
// reads once through its zn_configure export (e.g. normalize's fixed mean and standard deviation
// as two little-endian float64). A plugin that refuses them, or cannot read them, is
// [ErrInvalidArgument].
func NewWasmStageConfig(path string, memoryLimit uint64, timeLimit time.Duration, config []byte) (*Stage, error) {
	if timeLimit < 0 {
		return nil, invalid("zenith: NewWasmStage: negative time limit")
	}
	ms := uint64((timeLimit + time.Millisecond - 1) / time.Millisecond)
	p := cstr(path)
	defer free(p)
	// Copied into C memory: the library reads it during the call only, but cgo forbids passing
	// a Go pointer that C could keep.
	var cfg *C.uint8_t
	if len(config) > 0 {
		cfg = (*C.uint8_t)(C.CBytes(config))
		defer C.free(unsafe.Pointer(cfg))
	}
	var h *C.zenith_stage
	if _, err := call(func(e **C.zenith_error) C.zenith_status {
		return C.zenith_stage_new_wasm_config(p, C.uint64_t(memoryLimit), C.uint64_t(ms), cfg, C.size_t(len(config)), &h, e)
	}); err != nil {
		return nil, err
	}
	return newStage(h), nil
}

// StageFunc transforms one event. It owns in and inSchema (it may Release them or leave them:
// the engine releases what is left) and returns the output batch, which the engine takes over.
// It runs on the engine's worker threads, several at once. An error (or a panic) fails that
// event with its message.
type StageFunc func(in *ArrowArray, inSchema *ArrowSchema) (*ArrowArray, *ArrowSchema, error)

// NewGoStage creates a native stage that calls fn for each event.
func NewGoStage(name string, fn StageFunc) (*Stage, error) {
	if fn == nil {
		return nil, invalid("zenith: NewGoStage: nil function")
	}
	n := cstr(name)
	defer free(n)
	// The handle travels as user_data in C memory (a Go integer is not a pointer).
	slot := (*C.uintptr_t)(C.malloc(C.sizeof_uintptr_t))
	*slot = C.uintptr_t(cgo.NewHandle(fn))
	var h *C.zenith_stage
	if _, err := call(func(e **C.zenith_error) C.zenith_status {
		return C.zgo_stage_new_go(n, unsafe.Pointer(slot), &h, e)
	}); err != nil {
		cgo.Handle(*slot).Delete() // on failure the library does not call zgoStageFree
		C.free(unsafe.Pointer(slot))
		return nil, err
	}
	return newStage(h), nil
}

// addStages hands each stage's handle to add (an engine's or a loader's options, which then
// share the stage), in order; a nil or closed stage is an error naming caller.
func addStages(caller string, stages []*Stage, add func(*C.zenith_stage, **C.zenith_error) C.zenith_status) error {
	for i, s := range stages {
		if s == nil {
			return invalid(fmt.Sprintf("zenith: %s: stage %d is nil", caller, i))
		}
		s.mu.Lock()
		h := s.h
		var err error
		if h == nil {
			err = ErrEngineClosed
		} else {
			_, err = call(func(e **C.zenith_error) C.zenith_status { return add(h, e) })
		}
		s.mu.Unlock()
		runtime.KeepAlive(s)
		if err != nil {
			return err
		}
	}
	return nil
}

// Close frees this handle. Idempotent.
func (s *Stage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h != nil {
		C.zenith_stage_free(s.h)
		s.h = nil
	}
	runtime.SetFinalizer(s, nil)
	return nil
}

// EngineOptions configures [NewEngine]. Zero values take the library's defaults: 4096 events
// and 1 GiB in flight (published, not yet polled), 2 workers.
type EngineOptions struct {
	Capacity int    // events in flight
	MaxBytes uint64 // bytes in flight
	Workers  int
	Stages   []*Stage // run in this order
	// CPUs pins each worker to these CPUs (the kernel's numbers); nil: no pinning.
	CPUs []uint32
	// NUMANode pins each worker to the online CPUs of this NUMA node; nil: no pinning. A node
	// the machine does not have is ErrInvalidArgument. Cannot be combined with CPUs.
	NUMANode *int
}

// Event is one event out of [Engine.Poll]: its sequence number and its transformed batch (the
// caller owns both structs and releases them, or hands them to an importer that moves them).
type Event struct {
	Sequence uint64
	Array    *ArrowArray
	Schema   *ArrowSchema
}

// Release releases the event's array and schema. Idempotent.
func (e *Event) Release() {
	e.Array.Release()
	e.Schema.Release()
}

// Engine is an event engine. Publish and Poll may be called from several goroutines at once.
// Close it (a finalizer is only a backstop): that releases the events still in flight.
type Engine struct {
	mu       sync.RWMutex // Publish/Poll hold it shared, Close exclusively
	h        *C.zenith_engine
	released uint64
}

// NewEngine starts an engine with its worker threads.
func NewEngine(opts EngineOptions) (*Engine, error) {
	if opts.Capacity < 0 || opts.Workers < 0 {
		return nil, invalid("zenith: NewEngine: negative Capacity or Workers")
	}
	var o *C.zenith_engine_options
	if st := C.zenith_engine_options_new(&o); st < 0 {
		return nil, takeError(st, nil)
	}
	defer C.zenith_engine_options_free(o)
	if opts.Capacity != 0 || opts.MaxBytes != 0 {
		events, bytes := C.size_t(4096), C.uint64_t(1<<30)
		if opts.Capacity != 0 {
			events = C.size_t(opts.Capacity)
		}
		if opts.MaxBytes != 0 {
			bytes = C.uint64_t(opts.MaxBytes)
		}
		if _, err := call(func(e **C.zenith_error) C.zenith_status {
			return C.zenith_engine_options_set_capacity(o, events, bytes, e)
		}); err != nil {
			return nil, err
		}
	}
	if opts.Workers != 0 {
		if _, err := call(func(e **C.zenith_error) C.zenith_status {
			return C.zenith_engine_options_set_workers(o, C.size_t(opts.Workers), e)
		}); err != nil {
			return nil, err
		}
	}
	if len(opts.CPUs) > 0 && opts.NUMANode != nil {
		return nil, invalid("zenith: NewEngine: CPUs and NUMANode cannot be combined")
	}
	if len(opts.CPUs) > 0 {
		// Copied into C memory: cgo forbids passing Go memory C might keep.
		cpus := (*C.uint32_t)(C.malloc(C.size_t(len(opts.CPUs)) * C.sizeof_uint32_t))
		defer C.free(unsafe.Pointer(cpus))
		dst := unsafe.Slice(cpus, len(opts.CPUs))
		for i, cpu := range opts.CPUs {
			dst[i] = C.uint32_t(cpu)
		}
		if _, err := call(func(e **C.zenith_error) C.zenith_status {
			return C.zenith_engine_options_set_cpus(o, cpus, C.size_t(len(opts.CPUs)), e)
		}); err != nil {
			return nil, err
		}
	}
	if opts.NUMANode != nil {
		if *opts.NUMANode < 0 || *opts.NUMANode > math.MaxInt32 {
			return nil, invalid(fmt.Sprintf("zenith: NewEngine: NUMA node %d is out of range", *opts.NUMANode))
		}
		if _, err := call(func(e **C.zenith_error) C.zenith_status {
			return C.zenith_engine_options_set_numa_node(o, C.int32_t(*opts.NUMANode), e)
		}); err != nil {
			return nil, err
		}
	}
	if err := addStages("NewEngine", opts.Stages, func(h *C.zenith_stage, e **C.zenith_error) C.zenith_status {
		return C.zenith_engine_options_add_stage(o, h, e)
	}); err != nil {
		return nil, err
	}
	eng := &Engine{}
	if _, err := call(func(e **C.zenith_error) C.zenith_status { return C.zenith_engine_new(o, &eng.h, e) }); err != nil {
		return nil, err
	}
	runtime.SetFinalizer(eng, (*Engine).Close)
	return eng, nil
}

// slice is how long one C wait lasts at most, so Close from another goroutine is noticed
// between slices (publish gets its batch back after each).
const slice = 100 * time.Millisecond

func millis(d time.Duration) C.uint64_t {
	if d < 0 {
		return C.uint64_t(math.MaxUint64)
	}
	return C.uint64_t((d + time.Millisecond - 1) / time.Millisecond)
}

// wait runs f (a publish or a poll with a C timeout) under the shared lock, in slices, until it
// returns something other than ZENITH_WOULD_BLOCK or the timeout passes.
func (g *Engine) wait(timeout time.Duration, f func(h *C.zenith_engine, ms C.uint64_t) C.zenith_status) (C.zenith_status, error) {
	end := time.Now().Add(timeout)
	for {
		step := slice
		if timeout >= 0 {
			step = min(max(time.Until(end), 0), slice)
		}
		g.mu.RLock()
		if g.h == nil {
			g.mu.RUnlock()
			return 0, ErrEngineClosed
		}
		st := f(g.h, millis(step))
		g.mu.RUnlock()
		runtime.KeepAlive(g)
		if st != C.ZENITH_WOULD_BLOCK || (timeout >= 0 && !time.Now().Before(end)) {
			return st, nil
		}
	}
}

// Publish publishes one event (a record batch exported as a struct array) and returns its
// sequence number (0, 1, 2, ... in publish order). On success the engine takes the structs'
// contents (they are left released; the caller still calls Release to free them). When the
// engine stays full for timeout ([Forever]: no deadline), it returns [ErrTimeout] and the
// structs hold the same batch again.
func (g *Engine) Publish(array *ArrowArray, schema *ArrowSchema, timeout time.Duration) (uint64, error) {
	if array == nil || schema == nil {
		return 0, invalid("zenith: Publish: nil array or schema")
	}
	array.mu.Lock()
	defer array.mu.Unlock()
	schema.mu.Lock()
	defer schema.mu.Unlock()
	if array.c == nil || schema.c == nil {
		return 0, ErrClosed
	}
	var seq C.uint64_t
	var cerr *C.zenith_error
	st, err := g.wait(timeout, func(h *C.zenith_engine, ms C.uint64_t) C.zenith_status {
		return C.zenith_engine_publish(h, array.c, schema.c, ms, &seq, &cerr)
	})
	if err != nil {
		return 0, err
	}
	if st < 0 {
		return 0, takeError(st, cerr)
	}
	if st == C.ZENITH_WOULD_BLOCK {
		return 0, ErrTimeout
	}
	return uint64(seq), nil
}

// Poll returns the next event in publish order, waiting up to timeout ([Forever]: no
// deadline); [ErrTimeout] when it is not done in time. A failed event is returned as an
// [*EventFailedError] in its place; the next Poll returns the following event.
func (g *Engine) Poll(timeout time.Duration) (*Event, error) {
	ev := &Event{Array: newArrowArray(), Schema: newArrowSchema()}
	var seq C.uint64_t
	var cerr *C.zenith_error
	st, err := g.wait(timeout, func(h *C.zenith_engine, ms C.uint64_t) C.zenith_status {
		return C.zenith_engine_poll(h, ev.Array.c, ev.Schema.c, &seq, ms, &cerr)
	})
	switch {
	case err != nil:
	case st == C.ZENITH_ERR_EVENT_FAILED:
		msg := "event failed"
		if cerr != nil {
			msg = C.GoString(C.zenith_error_message(cerr))
			C.zenith_error_free(cerr)
		}
		err = &EventFailedError{Sequence: uint64(seq), Message: msg}
	case st < 0:
		err = takeError(st, cerr)
	case st == C.ZENITH_WOULD_BLOCK:
		err = ErrTimeout
	default:
		ev.Sequence = uint64(seq)
		return ev, nil
	}
	ev.Release()
	return nil, err
}

// Close stops the engine (workers finish the event they hold), releases every event published
// and not yet polled, and frees it; [Engine.Released] then says how many were released.
// Waits for Publish and Poll calls in progress (they notice within 100 ms).
// Idempotent.
func (g *Engine) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.h != nil {
		var released C.uint64_t
		C.zenith_engine_shutdown(g.h, &released, nil)
		C.zenith_engine_free(g.h)
		g.h = nil
		g.released = uint64(released)
	}
	runtime.SetFinalizer(g, nil)
	return nil
}

// Released returns how many events Close released unpolled (0 before Close).
func (g *Engine) Released() uint64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.released
}
