// Package zenith is the Go binding of libzenith, a data loader for ML training that turns
// datasets (Arrow IPC, Parquet, CSV; a file, a directory of shards or a glob) into shuffled,
// sharded batches built on native worker threads and handed over through the Arrow C Data
// Interface.
//
// It is a thin cgo layer over the C API (zenith.h), found with pkg-config:
//
//	make install PREFIX=$HOME/.local
//	export PKG_CONFIG_PATH=$HOME/.local/lib/pkgconfig
//	export CGO_LDFLAGS="-Wl,-rpath,$HOME/.local/lib"   # or LD_LIBRARY_PATH at run time
//
// A loader yields the batches of one epoch; [Loader.Next] returns [io.EOF] at its end and
// [Loader.SetEpoch] starts the next:
//
//	loader, err := zenith.Open("train/", zenith.Options{BatchSize: 1024, Seed: 7})
//	if err != nil { ... }          // *zenith.Error; errors.Is(err, zenith.ErrNotFound), ...
//	defer loader.Close()
//	for {
//		batch, err := loader.Next()
//		if err == io.EOF { break }
//		if err != nil { ... }
//		rec, err := zenitharrow.Record(batch)   // or batch.ExportArrow() for raw C structs
//		batch.Close()
//		...
//	}
//
// # Ownership
//
// Every object that holds C memory ([Loader], [Batch], [ArrowArray], [ArrowSchema],
// [ArrowArrayStream]) has an idempotent Close or Release that frees it at once; call it (a
// finalizer frees forgotten objects, but only when the garbage collector gets round to them,
// and the Go heap does not see the C memory they hold). Using an object after Close returns
// [ErrClosed]; it never crashes. Batches and exports stay valid after their loader is closed.
//
// # Errors
//
// Errors from the library are [*Error] values carrying the C status code and the library's
// message. They come back from the same C call through an out-parameter, never from
// thread-local state, so they are correct although goroutines move between OS threads.
//
// # Concurrency
//
// Separate loaders may be used from separate goroutines freely. A Loader's methods are safe to
// call from several goroutines (calls that consume batches are serialised; Stats, Schema and
// NumBatches run alongside them); a Batch may be exported from several goroutines at once.
package zenith

/*
#cgo pkg-config: zenith
#include <zenith.h>
*/
import "C"

// DefaultBatchSize is the number of rows per batch when [Options.BatchSize] is 0.
const DefaultBatchSize = C.ZENITH_DEFAULT_BATCH_SIZE

// MaxWorkers is the most worker threads a loader starts.
const MaxWorkers = C.ZENITH_MAX_WORKERS

// ResumeStateSize is the largest size in bytes of a token from [Loader.SaveState].
const ResumeStateSize = C.ZENITH_RESUME_STATE_SIZE

// Versions of the header this package was compiled against.
const (
	HeaderVersionMajor  = C.ZENITH_VERSION_MAJOR
	HeaderVersionMinor  = C.ZENITH_VERSION_MINOR
	HeaderVersionPatch  = C.ZENITH_VERSION_PATCH
	HeaderVersionNumber = C.ZENITH_VERSION_NUMBER // MAJOR*10000 + MINOR*100 + PATCH
)

// Version returns the version of the libzenith the program runs with, e.g. "0.1.0".
func Version() string { return C.GoString(C.zenith_version()) }

// VersionNumber returns the running library's version as MAJOR*10000 + MINOR*100 + PATCH, to
// compare with [HeaderVersionNumber].
func VersionNumber() int { return int(C.zenith_version_number()) }
