package zenith

/*
#include <zenith.h>
*/
import "C"

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Batch is one batch from [Loader.Next], owned by the caller, who frees it with
// [Batch.Close]. It stays valid after its loader is closed. It may be exported several times,
// from several goroutines at once.
type Batch struct {
	mu sync.RWMutex // held for reading while c is in use, for writing by Close
	c  *C.zenith_batch
}

func newBatch(c *C.zenith_batch) *Batch {
	b := &Batch{c: c}
	runtime.SetFinalizer(b, (*Batch).finalize)
	return b
}

// finalizedBatches counts batches freed by their finalizer (the tests check the backstop).
var finalizedBatches atomic.Int64

// finalize is the backstop for a Batch dropped without Close.
func (b *Batch) finalize() {
	finalizedBatches.Add(1)
	_ = b.Close()
}

// Close frees the batch. It is idempotent; exports made from the batch stay valid until they
// are released.
func (b *Batch) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c == nil {
		return nil
	}
	C.zenith_batch_free(b.c)
	b.c = nil
	runtime.SetFinalizer(b, nil)
	return nil
}

// NumRows returns the number of rows in the batch (0 once closed).
func (b *Batch) NumRows() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.c == nil {
		return 0
	}
	n := C.zenith_batch_num_rows(b.c)
	runtime.KeepAlive(b)
	return int(n)
}

// ExportArrow exports the batch through the Arrow C Data Interface: a struct array with one
// child per column, and its schema. The export shares the batch's buffers (no copy) and keeps
// them alive after the batch is closed. The caller owns both and calls Release on each (or
// hands them to a consumer, such as zenitharrow.Record, that takes them over).
func (b *Batch) ExportArrow() (*ArrowArray, *ArrowSchema, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.c == nil {
		return nil, nil, ErrClosed
	}
	arr, schema := newArrowArray(), newArrowSchema()
	var cerr *C.zenith_error
	st := C.zenith_batch_export_arrow(b.c, arr.c, schema.c, &cerr)
	runtime.KeepAlive(b)
	if st != C.ZENITH_OK {
		arr.Release()
		schema.Release()
		return nil, nil, takeError(st, cerr)
	}
	return arr, schema, nil
}
