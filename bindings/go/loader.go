package zenith

/*
#include <stdlib.h>
#include <zenith.h>
*/
import "C"

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Loader yields the batches of a dataset, one epoch at a time. Create it with [Open] and free
// it with [Loader.Close].
//
// Its methods may be called from several goroutines: Next, SetEpoch, SaveState and
// ExportStream are serialised (each batch goes to exactly one caller), Stats, Schema and
// NumBatches run alongside them, and Close waits for calls in progress.
type Loader struct {
	// mu guards c: methods hold it for reading while they use c, Close for writing.
	mu sync.RWMutex
	// op serialises the calls the C API says must not run concurrently on one loader.
	op sync.Mutex
	c  *C.zenith_loader
}

// Open opens the dataset at path (a file, a directory of shards searched recursively, or a
// glob pattern; Arrow IPC file or stream, Parquet, or CSV with a header row) and prepares its
// first epoch.
//
// Errors are *Error values: ErrNotFound (missing path, or no data file under it), ErrFormat
// (unknown format, truncated or corrupt file, malformed CSV), ErrSchemaMismatch (shards whose
// schemas differ), ErrInvalidArgument (a bad option, an unknown column, a resume token for
// another dataset or other options), ErrIO, ErrUnsupported.
func Open(path string, opts Options) (*Loader, error) {
	if strings.IndexByte(path, 0) >= 0 {
		return nil, invalid(fmt.Sprintf("path %q contains a NUL byte", path))
	}
	copts, err := opts.toC()
	if err != nil {
		return nil, err
	}
	defer C.zenith_loader_options_free(copts) // open keeps a copy

	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))

	var out *C.zenith_loader
	var cerr *C.zenith_error
	if st := C.zenith_loader_open(cpath, copts, &out, &cerr); st != C.ZENITH_OK {
		return nil, takeError(st, cerr)
	}
	l := &Loader{c: out}
	runtime.SetFinalizer(l, (*Loader).finalize)
	return l, nil
}

// OpenPaths opens the files of several paths (each a file, a directory or a glob) as one
// dataset, in the order given; errors as Open (ErrInvalidArgument for a file named twice,
// ErrNotFound for no paths).
func OpenPaths(paths []string, opts Options) (*Loader, error) {
	for _, path := range paths {
		if strings.IndexByte(path, 0) >= 0 {
			return nil, invalid(fmt.Sprintf("path %q contains a NUL byte", path))
		}
	}
	copts, err := opts.toC()
	if err != nil {
		return nil, err
	}
	defer C.zenith_loader_options_free(copts) // open keeps a copy

	// A Go slice of C pointers may be passed to C: it holds no Go pointers.
	names := make([]*C.char, len(paths))
	defer func() {
		for _, p := range names {
			C.free(unsafe.Pointer(p))
		}
	}()
	for i, path := range paths {
		names[i] = C.CString(path)
	}
	var array **C.char
	if len(names) > 0 {
		array = &names[0]
	}
	var out *C.zenith_loader
	var cerr *C.zenith_error
	if st := C.zenith_loader_open_paths(array, C.size_t(len(names)), copts, &out, &cerr); st != C.ZENITH_OK {
		return nil, takeError(st, cerr)
	}
	l := &Loader{c: out}
	runtime.SetFinalizer(l, (*Loader).finalize)
	return l, nil
}

// finalizedLoaders counts loaders freed by their finalizer (the tests check the backstop).
var finalizedLoaders atomic.Int64

// finalize is the backstop for a Loader dropped without Close.
func (l *Loader) finalize() {
	finalizedLoaders.Add(1)
	_ = l.Close()
}

// Close frees the loader. It is idempotent and waits for calls in progress on other
// goroutines; afterwards every method returns ErrClosed (or zero values). Batches, exports and
// streams taken from the loader stay valid.
func (l *Loader) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c == nil {
		return nil
	}
	C.zenith_loader_free(l.c)
	l.c = nil
	runtime.SetFinalizer(l, nil)
	return nil
}

// Next returns the next batch of the current epoch, or io.EOF at its end (call SetEpoch to
// start the next one). The caller owns the batch and closes it; it stays valid after the
// loader is closed.
//
// On error no batch is consumed: a later call retries it. Data decoded on demand fails here,
// e.g. ErrFormat for a corrupt Parquet row group.
func (l *Loader) Next() (*Batch, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.c == nil {
		return nil, ErrClosed
	}
	l.op.Lock()
	defer l.op.Unlock()

	var out *C.zenith_batch
	var cerr *C.zenith_error
	st := C.zenith_loader_next_batch(l.c, &out, &cerr)
	runtime.KeepAlive(l)
	switch st {
	case C.ZENITH_OK:
		return newBatch(out), nil
	case C.ZENITH_DONE:
		return nil, io.EOF
	}
	return nil, takeError(st, cerr)
}

// SetEpoch starts epoch epoch from its first batch; its order depends on the epoch number
// (use 0, 1, 2, ... as training proceeds). Batches of the current epoch not yet taken are
// discarded.
func (l *Loader) SetEpoch(epoch uint64) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.c == nil {
		return ErrClosed
	}
	l.op.Lock()
	defer l.op.Unlock()

	var cerr *C.zenith_error
	st := C.zenith_loader_set_epoch(l.c, C.uint64_t(epoch), &cerr)
	runtime.KeepAlive(l)
	if st != C.ZENITH_OK {
		return takeError(st, cerr)
	}
	return nil
}

// SaveState returns the loader's resume token (at most ResumeStateSize bytes: dataset
// fingerprint, the options that decide the order, epoch and batches delivered; no data). Pass
// it as Options.ResumeState to open a loader that delivers exactly the batches not yet
// delivered, with any number of workers.
func (l *Loader) SaveState() ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.c == nil {
		return nil, ErrClosed
	}
	l.op.Lock()
	defer l.op.Unlock()

	buf := make([]byte, ResumeStateSize)
	for {
		var n C.size_t
		var cerr *C.zenith_error
		// buf holds no Go pointers, so C may write into it.
		st := C.zenith_loader_save_state(l.c, (*C.uint8_t)(unsafe.Pointer(&buf[0])),
			C.size_t(len(buf)), &n, &cerr)
		runtime.KeepAlive(l)
		switch {
		case st == C.ZENITH_OK:
			return buf[:n:n], nil
		case st == C.ZENITH_ERR_BUFFER_TOO_SMALL && int(n) > len(buf):
			C.zenith_error_free(cerr) // a newer library with a larger token: retry
			buf = make([]byte, int(n))
		default:
			return nil, takeError(st, cerr)
		}
	}
}

// NumBatches returns the number of batches this rank receives per epoch (0 once closed).
func (l *Loader) NumBatches() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.c == nil {
		return 0
	}
	n := C.zenith_loader_num_batches(l.c)
	runtime.KeepAlive(l)
	return int(n)
}

// Stats are counters and configuration of a running loader.
type Stats struct {
	Rows             uint64        // rows delivered since open
	Batches          uint64        // batches delivered since open
	Bytes            uint64        // bytes of Arrow buffers in the delivered batches
	TimeToFirstBatch time.Duration // from open to the first delivered batch (0 before it)
	ConsumerWait     time.Duration // time callers spent blocked in Next waiting for workers
	WorkerBusy       time.Duration // time spent building batches, summed over workers
	Decode           time.Duration // time spent decoding chunks (part of WorkerBusy)
	ChunksDecoded    uint64        // chunks (Parquet row groups) decoded; at most once per chunk and epoch
	QueueDepth       uint64        // batches built and waiting for the consumer now
	Epoch            uint64        // the current epoch
	BatchesPerEpoch  uint64        // batches per epoch for this rank
	ShuffleMode      Shuffle       // the shuffle running (ShuffleAuto over the memory budget runs as block)
	NumWorkers       int           // worker threads
	Rank             int           // this loader's rank
	WorldSize        int           // the number of ranks sharing each epoch
	ShardSource      ShardSource   // where Rank and WorldSize came from
	ShuffleRequested Shuffle       // the shuffle asked for (ShuffleAuto by default)
	MemoryBudget     uint64        // the memory budget that decided the shuffle, in bytes
	DecodedBytes     uint64        // the decoded size of the data (0 when it needs no decoding)
	// Placement and I/O.
	NUMANode           int           // the NUMA node the workers run on and batches live on (-1: no placement)
	PinnedWorkers      int           // worker threads pinned to that node's CPUs
	IOBackend          IOBackend     // the backend reading (IOPread when io_uring was asked for and refused)
	IOBackendRequested IOBackend     // the backend asked for
	IOReadBytes        uint64        // bytes read by pread or io_uring (0 with IOMmap)
	IORead             time.Duration // time spent in those reads
	// The device path (Options.Device): all zero for a loader delivering in host memory.
	DeviceBytesCopied   uint64        // bytes copied to the device
	DeviceCopies        uint64        // batches copied to the device
	DeviceCopy          time.Duration // submit until each copy was seen finished (an upper bound unless the consumer waited)
	DeviceConsumerWait  time.Duration // time the consumer waited for batches to land on the device (GPU starvation)
	DeviceConsumerWaits uint64        // batches whose copy had not finished when asked for
	DeviceStagingWaits  uint64        // waits for a pinned staging slot
	DeviceMemoryWaits   uint64        // waits for device memory the consumer still held
}

// ShardSource says where a loader's rank and world size came from.
type ShardSource int

// The ZENITH_SHARD_FROM_* values.
const (
	ShardFromNone    ShardSource = C.ZENITH_SHARD_FROM_NONE    // nothing: rank 0 of 1
	ShardFromOptions ShardSource = C.ZENITH_SHARD_FROM_OPTIONS // Options.Rank/WorldSize or ShardNone
	ShardFromTorch   ShardSource = C.ZENITH_SHARD_FROM_TORCH   // RANK/WORLD_SIZE in the environment
	ShardFromSlurm   ShardSource = C.ZENITH_SHARD_FROM_SLURM   // SLURM_PROCID/SLURM_NTASKS in the environment
)

func (s ShardSource) String() string {
	switch s {
	case ShardFromNone:
		return "none"
	case ShardFromOptions:
		return "options"
	case ShardFromTorch:
		return "RANK/WORLD_SIZE"
	case ShardFromSlurm:
		return "SLURM_PROCID/SLURM_NTASKS"
	}
	return fmt.Sprintf("ShardSource(%d)", int(s))
}

// Stats returns the loader's counters. It may be called while another goroutine is in Next.
func (l *Loader) Stats() (Stats, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.c == nil {
		return Stats{}, ErrClosed
	}
	var s C.zenith_stats
	s.struct_size = C.sizeof_zenith_stats
	var cerr *C.zenith_error
	st := C.zenith_loader_stats(l.c, &s, &cerr)
	runtime.KeepAlive(l)
	if st != C.ZENITH_OK {
		return Stats{}, takeError(st, cerr)
	}
	return Stats{
		Rows:             uint64(s.rows),
		Batches:          uint64(s.batches),
		Bytes:            uint64(s.bytes),
		TimeToFirstBatch: time.Duration(s.time_to_first_batch_ns),
		ConsumerWait:     time.Duration(s.consumer_wait_ns),
		WorkerBusy:       time.Duration(s.worker_busy_ns),
		Decode:           time.Duration(s.decode_ns),
		ChunksDecoded:    uint64(s.chunks_decoded),
		QueueDepth:       uint64(s.queue_depth),
		Epoch:            uint64(s.epoch),
		BatchesPerEpoch:  uint64(s.batches_per_epoch),
		ShuffleMode:      shuffleFromC(s.shuffle_mode),
		NumWorkers:       int(s.num_workers),
		Rank:             int(s.rank),
		WorldSize:        int(s.world_size),
		ShardSource:      ShardSource(s.shard_source),
		ShuffleRequested: shuffleFromC(s.shuffle_requested),
		MemoryBudget:     uint64(s.memory_budget),
		DecodedBytes:     uint64(s.decoded_bytes),

		NUMANode:           int(s.numa_node),
		PinnedWorkers:      int(s.pinned_workers),
		IOBackend:          ioBackendFromC(s.io_backend),
		IOBackendRequested: ioBackendFromC(s.io_backend_requested),
		IOReadBytes:        uint64(s.io_read_bytes),
		IORead:             time.Duration(s.io_read_ns),

		DeviceBytesCopied:   uint64(s.device_bytes_copied),
		DeviceCopies:        uint64(s.device_copies),
		DeviceCopy:          time.Duration(s.device_copy_ns),
		DeviceConsumerWait:  time.Duration(s.device_consumer_wait_ns),
		DeviceConsumerWaits: uint64(s.device_consumer_waits),
		DeviceStagingWaits:  uint64(s.device_staging_waits),
		DeviceMemoryWaits:   uint64(s.device_memory_waits),
	}, nil
}

// IOFallbackReason says why the loader reads with another I/O backend than the one asked for,
// or without O_DIRECT though Options.IODirect was set; "" when it runs as asked.
func (l *Loader) IOFallbackReason() (string, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.c == nil {
		return "", ErrClosed
	}
	buf := make([]byte, 256)
	for {
		var n C.size_t
		var cerr *C.zenith_error
		st := C.zenith_loader_io_fallback_reason(l.c, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &n, &cerr)
		runtime.KeepAlive(l)
		if st == C.ZENITH_ERR_BUFFER_TOO_SMALL && int(n) >= len(buf) {
			C.zenith_error_free(cerr)
			buf = make([]byte, int(n)+1)
			continue
		}
		if st != C.ZENITH_OK {
			return "", takeError(st, cerr)
		}
		return string(buf[:int(n)]), nil
	}
}

// Schema exports the schema of the loader's batches (a struct schema, one child per column).
// The caller owns it and calls Release (or hands it to a consumer such as
// zenitharrow.Schema).
func (l *Loader) Schema() (*ArrowSchema, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.c == nil {
		return nil, ErrClosed
	}
	out := newArrowSchema()
	var cerr *C.zenith_error
	st := C.zenith_loader_schema(l.c, out.c, &cerr)
	runtime.KeepAlive(l)
	if st != C.ZENITH_OK {
		out.Release()
		return nil, takeError(st, cerr)
	}
	return out, nil
}

// ExportStream exports the rest of the current epoch as an Arrow C Stream (ArrowArrayStream).
// Batches the stream yields are consumed: Next will not return them, so do not call Next while
// a stream is being read. The stream may outlive the loader. The caller owns it and calls
// Release (or hands it to a consumer such as zenitharrow.NewReader).
func (l *Loader) ExportStream() (*ArrowArrayStream, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.c == nil {
		return nil, ErrClosed
	}
	l.op.Lock()
	defer l.op.Unlock()

	out := newArrowArrayStream()
	var cerr *C.zenith_error
	st := C.zenith_loader_export_stream(l.c, out.c, &cerr)
	runtime.KeepAlive(l)
	if st != C.ZENITH_OK {
		out.Release()
		return nil, takeError(st, cerr)
	}
	return out, nil
}
