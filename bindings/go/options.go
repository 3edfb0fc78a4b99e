package zenith

/*
#include <stdlib.h>
#include <zenith.h>
*/
import "C"

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unsafe"
)

// Shuffle is how each epoch orders rows. The zero value, ShuffleDefault, leaves the library's
// default (ShuffleAuto).
type Shuffle int

// The modes are the ZENITH_SHUFFLE_* values plus one, so that the zero value can mean the default.
const (
	ShuffleDefault Shuffle = iota // the library's default: ShuffleAuto
	ShuffleNone                   // dataset order (zero-copy slices of memory-mapped files)
	ShuffleGlobal                 // one exact permutation of all rows per epoch; over the memory budget Open fails with ErrOutOfMemory
	ShuffleBlock                  // row groups shuffled, then rows within windows that fit the memory budget
	ShuffleAuto                   // global, or block when the decoded data exceeds the memory budget (Stats.ShuffleMode says which)
)

func (s Shuffle) String() string {
	switch s {
	case ShuffleDefault:
		return "default"
	case ShuffleNone:
		return "none"
	case ShuffleGlobal:
		return "global"
	case ShuffleBlock:
		return "block"
	case ShuffleAuto:
		return "auto"
	}
	return fmt.Sprintf("Shuffle(%d)", int(s))
}

func (s Shuffle) toC() (C.zenith_shuffle, bool) {
	switch s {
	case ShuffleNone:
		return C.ZENITH_SHUFFLE_NONE, true
	case ShuffleGlobal:
		return C.ZENITH_SHUFFLE_GLOBAL, true
	case ShuffleBlock:
		return C.ZENITH_SHUFFLE_BLOCK, true
	case ShuffleAuto:
		return C.ZENITH_SHUFFLE_AUTO, true
	}
	return 0, false
}

func shuffleFromC(s C.zenith_shuffle) Shuffle {
	// Each mode is its C value plus one (0 is ShuffleDefault); a mode newer than this binding
	// prints as Shuffle(n).
	return Shuffle(int(s) + 1)
}

// Options configure [Open]. The zero value means the library's defaults for every field:
// batches of DefaultBatchSize rows, the automatic shuffle (global, or block over the memory
// budget) with seed 0, the last batch kept, one worker per core (at most 4), prefetch of twice
// the workers, rank and world size from RANK/WORLD_SIZE or SLURM_PROCID/SLURM_NTASKS (else 0 of
// 1) with the remainder padded, every column, and a memory budget of half the available memory
// divided by the ranks on the node (LOCAL_WORLD_SIZE, else SLURM_NTASKS_PER_NODE).
//
// The order of rows is a pure function of the dataset, Seed, the epoch, Shuffle, BatchSize,
// DropLast, the shard and Columns; NumWorkers and Prefetch change only speed.
type Options struct {
	// BatchSize is the number of rows per batch; every batch of an epoch has exactly this many
	// except the last. 0 means DefaultBatchSize; negative is ErrInvalidArgument.
	BatchSize int
	// Shuffle is the order of rows in each epoch (ShuffleDefault: global).
	Shuffle Shuffle
	// Seed of the shuffle.
	Seed uint64
	// DropLast drops the last batch of each epoch when it is short.
	DropLast bool
	// NumWorkers is the number of worker threads that build batches ahead; nil means the
	// default, 0 builds batches on the thread that calls Next. Up to MaxWorkers.
	NumWorkers *int
	// Prefetch is how many batches workers may build ahead of the consumer (it bounds memory).
	// 0 means the default (twice the workers); negative is ErrInvalidArgument.
	Prefetch int
	// Rank and WorldSize make the loader rank Rank of WorldSize ranks: each rank gets an
	// equal share of every epoch (see ShardDropRemainder). WorldSize 0 (with Rank 0) leaves both
	// to the environment (RANK/WORLD_SIZE, SLURM_PROCID/SLURM_NTASKS, else 0 of 1); Stats says
	// which ran and where they came from. A WorldSize larger than the dataset fails Open.
	Rank, WorldSize int
	// ShardNone turns sharding off: the loader reads every row whatever the environment says
	// (an evaluation loader on one rank of a torchrun job). It cannot be combined with Rank or
	// WorldSize.
	ShardNone bool
	// ShardDropRemainder drops the rows that do not divide evenly across ranks (each rank gets
	// rows/WorldSize) instead of padding the order by wrapping around, as torch's
	// DistributedSampler does (the default: each rank gets ceil(rows/WorldSize), a few rows
	// twice). Either way every rank gets the same number of batches.
	ShardDropRemainder bool
	// Columns keeps only the named columns, in this order; nil means every column. An empty,
	// non-nil slice is ErrInvalidArgument ("columns must not be empty"), as is an unknown name
	// (at Open).
	Columns []string
	// MemoryBudget caps the bytes of decoded data held to shuffle; 0 means the default (half
	// the available memory, divided by the ranks on this node). With ShuffleAuto data that would
	// exceed it is shuffled in blocks; with ShuffleGlobal Open fails with ErrOutOfMemory.
	MemoryBudget uint64
	// ResumeState is a token from Loader.SaveState: the loader opens at the saved epoch and
	// delivers exactly the batches not yet delivered. Empty means start at epoch 0.
	ResumeState []byte
	// CSVDelimiter is the CSV field delimiter; 0 means a tab for .tsv files, else a comma.
	CSVDelimiter byte
	// CSVNoHeader says CSV files start with data, not a header row: columns are then named by
	// Schema, else f0, f1, ...
	CSVNoHeader bool
	// Schema, when not nil, is the schema CSV and JSON lines files are parsed with instead of
	// an inferred one (a struct schema, e.g. another loader's Schema()); it is only read.
	Schema *ArrowSchema
	// Stages run on each batch on the loader's worker threads right after it is gathered,
	// before delivery, in this order ([NewWasmStage], [NewGoStage]: the stages an [Engine]
	// runs; the options share them, Close on a Stage frees only its handle). Order, sharding and
	// resume are unchanged. A batch a stage fails is an [ErrEventFailed] from the Next that would
	// have delivered it, naming the stage, the batch and the reason; the next call builds it again.
	Stages []*Stage

	// Placement and I/O: where and how bytes are read, never which rows in which order.

	// IOBackend is how files are read (IODefault: memory-mapped; ZENITH_IO_BACKEND in the
	// environment overrides it). Stats.IOBackend says which runs.
	IOBackend IOBackend
	// IODirect reads with O_DIRECT (bypassing the page cache) with IOPread or IOUring; file
	// systems that refuse it are read through the page cache (Loader.IOFallbackReason).
	IODirect bool
	// NUMANode runs the workers on that NUMA node and allocates batches there; nil means the
	// default (no placement), -1 no placement. Cannot be combined with NearGPU*.
	NUMANode *int
	// NearGPUIndex places the loader on the NUMA node of the GPU with this index on the PCI bus;
	// nil means none. Open fails with ErrInvalidArgument when there is no such GPU.
	NearGPUIndex *int
	// NearGPUPCI places the loader on the NUMA node of the GPU at this PCI address
	// ("0000:3b:00.0"); empty means none.
	NearGPUPCI string
	// Device delivers batches into the memory of a CUDA device: "" or "cpu" (host memory, the
	// default), "cuda" or "cuda:N". Open fails with ErrNoDevice when there is no such device.
	Device string
	// DeviceSlots is the number of staging slots of the device ring (at least 3); 0 means the
	// library's default.
	DeviceSlots int
	// PinMemory makes the batches land in pinned (page-locked) host memory of a CUDA device:
	// "" (off, the default), "cuda" (device 0) or "cuda:N", so a consumer's own asynchronous
	// host-to-device copies are truly asynchronous. Every batch the workers build lands there
	// (zero-copy views of mapped files are copied in); stage outputs stay where the stage built
	// them. Open fails with ErrNoDevice when there is no such device.
	PinMemory string
}

// IOBackend is how a loader reads files. The zero value, IODefault, leaves the library's
// default (IOMmap).
type IOBackend int

// The backends are the ZENITH_IO_* values plus one, so that the zero value can mean the default.
const (
	IODefault IOBackend = iota // the library's default: IOMmap
	IOMmap                     // memory-mapped files: zero-copy slices of Arrow IPC files
	IOUring                    // io_uring batched reads; pread where io_uring is unavailable
	IOPread                    // pread(2)
)

func (b IOBackend) String() string {
	switch b {
	case IODefault:
		return "default"
	case IOMmap:
		return "mmap"
	case IOUring:
		return "io_uring"
	case IOPread:
		return "pread"
	}
	return fmt.Sprintf("IOBackend(%d)", int(b))
}

func ioBackendFromC(b C.zenith_io_backend) IOBackend { return IOBackend(int(b) + 1) }

// applyPlacement sets the placement and I/O options on opts.
func (o *Options) applyPlacement(opts *C.zenith_loader_options, call func(C.zenith_status) error, cerr **C.zenith_error) error {
	if o.IOBackend != IODefault {
		if o.IOBackend < IOMmap || o.IOBackend > IOPread {
			return invalid("unknown I/O backend " + o.IOBackend.String())
		}
		if err := call(C.zenith_loader_options_set_io_backend(opts, C.zenith_io_backend(int(o.IOBackend)-1), cerr)); err != nil {
			return err
		}
	}
	if o.IODirect {
		if err := call(C.zenith_loader_options_set_io_direct(opts, C.bool(true), cerr)); err != nil {
			return err
		}
	}
	placements := 0
	for _, set := range []bool{o.NUMANode != nil, o.NearGPUIndex != nil, o.NearGPUPCI != ""} {
		if set {
			placements++
		}
	}
	if placements > 1 {
		return invalid("give one of NUMANode, NearGPUIndex and NearGPUPCI")
	}
	if o.NUMANode != nil {
		if *o.NUMANode < math.MinInt32 || *o.NUMANode > math.MaxInt32 {
			return invalid(fmt.Sprintf("NUMA node %d is out of range", *o.NUMANode))
		}
		if err := call(C.zenith_loader_options_set_numa_node(opts, C.int32_t(*o.NUMANode), cerr)); err != nil {
			return err
		}
	}
	if o.NearGPUIndex != nil {
		if *o.NearGPUIndex < 0 || uint64(*o.NearGPUIndex) > math.MaxUint32 {
			return invalid(fmt.Sprintf("GPU index %d is out of range", *o.NearGPUIndex))
		}
		if err := call(C.zenith_loader_options_set_near_gpu_index(opts, C.uint32_t(*o.NearGPUIndex), cerr)); err != nil {
			return err
		}
	}
	if err := o.applyDevice(opts, call, cerr); err != nil {
		return err
	}
	if err := o.applyPinMemory(opts, call, cerr); err != nil {
		return err
	}
	if o.NearGPUPCI != "" {
		if strings.IndexByte(o.NearGPUPCI, 0) >= 0 {
			return invalid(fmt.Sprintf("PCI address %q contains a NUL byte", o.NearGPUPCI))
		}
		address := C.CString(o.NearGPUPCI)
		defer C.free(unsafe.Pointer(address))
		if err := call(C.zenith_loader_options_set_near_gpu_pci(opts, address, cerr)); err != nil {
			return err
		}
	}
	return nil
}

// applyDevice sets Device and DeviceSlots on opts.
func (o *Options) applyDevice(opts *C.zenith_loader_options, call func(C.zenith_status) error, cerr **C.zenith_error) error {
	if o.Device == "" || o.Device == "cpu" {
		if o.DeviceSlots != 0 {
			return invalid("DeviceSlots applies to Device \"cuda[:N]\"")
		}
		return nil
	}
	ordinal, err := cudaOrdinal("Device", `"cpu", "cuda" or "cuda:N"`, o.Device)
	if err != nil {
		return err
	}
	if err := call(C.zenith_loader_options_set_device(opts, C.ZENITH_DEVICE_CUDA, C.uint32_t(ordinal), cerr)); err != nil {
		return err
	}
	if o.DeviceSlots != 0 {
		if o.DeviceSlots < 0 {
			return invalid(fmt.Sprintf("DeviceSlots %d is negative", o.DeviceSlots))
		}
		if err := call(C.zenith_loader_options_set_device_slots(opts, C.size_t(o.DeviceSlots), cerr)); err != nil {
			return err
		}
	}
	return nil
}

// applyPinMemory sets PinMemory on opts.
func (o *Options) applyPinMemory(opts *C.zenith_loader_options, call func(C.zenith_status) error, cerr **C.zenith_error) error {
	if o.PinMemory == "" {
		return nil
	}
	ordinal, err := cudaOrdinal("PinMemory", `"", "cuda" or "cuda:N"`, o.PinMemory)
	if err != nil {
		return err
	}
	return call(C.zenith_loader_options_set_pin_memory(opts, C.uint32_t(ordinal), C.bool(true), cerr))
}

// cudaOrdinal parses "cuda" (device 0) or "cuda:N" given for the option named field, whose
// valid values are choices.
func cudaOrdinal(field, choices, text string) (uint64, error) {
	if text == "cuda" {
		return 0, nil
	}
	number, found := strings.CutPrefix(text, "cuda:")
	n, err := strconv.ParseUint(number, 10, 32)
	if !found || err != nil {
		return 0, invalid(fmt.Sprintf("%s must be %s, not %q", field, choices, text))
	}
	return n, nil
}

// IntPtr returns a pointer to n, for Options.NumWorkers: zenith.Options{NumWorkers: zenith.IntPtr(0)}.
func IntPtr(n int) *int { return &n }

// toC builds a zenith_loader_options handle; the caller frees it with
// zenith_loader_options_free.
func (o *Options) toC() (*C.zenith_loader_options, error) {
	var opts *C.zenith_loader_options
	if st := C.zenith_loader_options_new(&opts); st != C.ZENITH_OK {
		return nil, takeError(st, nil)
	}
	if err := o.apply(opts); err != nil {
		C.zenith_loader_options_free(opts)
		return nil, err
	}
	return opts, nil
}

func (o *Options) apply(opts *C.zenith_loader_options) error {
	var cerr *C.zenith_error
	call := func(st C.zenith_status) error {
		if st == C.ZENITH_OK {
			return nil
		}
		return takeError(st, cerr)
	}

	if o.BatchSize < 0 {
		return invalid(fmt.Sprintf("batch size %d is negative", o.BatchSize))
	}
	if o.BatchSize > 0 {
		if err := call(C.zenith_loader_options_set_batch_size(opts, C.size_t(o.BatchSize), &cerr)); err != nil {
			return err
		}
	}
	if o.Shuffle != ShuffleDefault {
		mode, ok := o.Shuffle.toC()
		if !ok {
			return invalid("unknown shuffle mode " + o.Shuffle.String())
		}
		if err := call(C.zenith_loader_options_set_shuffle(opts, mode, &cerr)); err != nil {
			return err
		}
	}
	if o.Seed != 0 {
		if err := call(C.zenith_loader_options_set_seed(opts, C.uint64_t(o.Seed), &cerr)); err != nil {
			return err
		}
	}
	if o.DropLast {
		if err := call(C.zenith_loader_options_set_drop_last(opts, C.bool(true), &cerr)); err != nil {
			return err
		}
	}
	if o.NumWorkers != nil {
		if *o.NumWorkers < 0 {
			return invalid(fmt.Sprintf("num workers %d is negative", *o.NumWorkers))
		}
		if err := call(C.zenith_loader_options_set_num_workers(opts, C.size_t(*o.NumWorkers), &cerr)); err != nil {
			return err
		}
	}
	if o.Prefetch < 0 {
		return invalid(fmt.Sprintf("prefetch %d is negative", o.Prefetch))
	}
	if o.Prefetch > 0 {
		if err := call(C.zenith_loader_options_set_prefetch(opts, C.size_t(o.Prefetch), &cerr)); err != nil {
			return err
		}
	}
	if o.ShardNone {
		if o.WorldSize != 0 || o.Rank != 0 {
			return invalid("ShardNone cannot be combined with Rank or WorldSize")
		}
		if err := call(C.zenith_loader_options_set_shard_none(opts, &cerr)); err != nil {
			return err
		}
	}
	if o.ShardDropRemainder {
		if err := call(C.zenith_loader_options_set_shard_drop_remainder(opts, C.bool(true), &cerr)); err != nil {
			return err
		}
	}
	if o.WorldSize != 0 || o.Rank != 0 {
		if o.Rank < 0 || o.WorldSize < 0 || uint64(o.Rank) > math.MaxUint32 || uint64(o.WorldSize) > math.MaxUint32 {
			return invalid(fmt.Sprintf("rank %d of world size %d is out of range", o.Rank, o.WorldSize))
		}
		// WorldSize 0 with a rank set reaches C, which rejects it with its own message.
		if err := call(C.zenith_loader_options_set_shard(opts, C.uint32_t(o.Rank), C.uint32_t(o.WorldSize), &cerr)); err != nil {
			return err
		}
	}
	if o.Columns != nil && len(o.Columns) == 0 {
		return invalid("columns must not be empty (nil reads every column)")
	}
	if len(o.Columns) > 0 {
		if err := setColumns(opts, o.Columns); err != nil {
			return err
		}
	}
	if o.MemoryBudget != 0 {
		if err := call(C.zenith_loader_options_set_memory_budget(opts, C.uint64_t(o.MemoryBudget), &cerr)); err != nil {
			return err
		}
	}
	if o.CSVDelimiter != 0 {
		if err := call(C.zenith_loader_options_set_csv_delimiter(opts, C.uint8_t(o.CSVDelimiter), &cerr)); err != nil {
			return err
		}
	}
	if o.CSVNoHeader {
		if err := call(C.zenith_loader_options_set_csv_header(opts, false, &cerr)); err != nil {
			return err
		}
	}
	if o.Schema != nil {
		o.Schema.mu.Lock()
		st := C.zenith_loader_options_set_schema(opts, o.Schema.c, &cerr)
		o.Schema.mu.Unlock()
		if err := call(st); err != nil {
			return err
		}
	}
	if len(o.ResumeState) > 0 {
		st := C.zenith_loader_options_set_resume_state(opts,
			(*C.uint8_t)(unsafe.Pointer(&o.ResumeState[0])), C.size_t(len(o.ResumeState)), &cerr)
		if err := call(st); err != nil {
			return err
		}
	}
	if err := addStages("Options.Stages", o.Stages, func(h *C.zenith_stage, e **C.zenith_error) C.zenith_status {
		return C.zenith_loader_options_add_stage(opts, h, e)
	}); err != nil {
		return err
	}
	return o.applyPlacement(opts, call, &cerr)
}

func setColumns(opts *C.zenith_loader_options, columns []string) error {
	// A Go slice of C pointers may be passed to C: it holds no Go pointers.
	names := make([]*C.char, len(columns))
	defer func() {
		for _, p := range names {
			C.free(unsafe.Pointer(p)) // free(NULL) is a no-op
		}
	}()
	for i, name := range columns {
		if strings.IndexByte(name, 0) >= 0 {
			return invalid(fmt.Sprintf("column name %q contains a NUL byte", name))
		}
		names[i] = C.CString(name)
	}
	var cerr *C.zenith_error
	st := C.zenith_loader_options_set_columns(opts, &names[0], C.size_t(len(names)), &cerr)
	if st != C.ZENITH_OK {
		return takeError(st, cerr)
	}
	return nil
}
