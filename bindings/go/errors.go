package zenith

/*
#include <zenith.h>
*/
import "C"

import (
	"errors"
	"io/fs"
)

// Status is a libzenith status code (zenith_status). The error codes below are negative; a
// Status is also an error, so each one serves as a sentinel for [errors.Is]:
//
//	if errors.Is(err, zenith.ErrNotFound) { ... }
type Status int32

// Error codes, equal to the ZENITH_ERR_* values of zenith.h. Values are appended, never reused.
const (
	ErrNullArgument    Status = C.ZENITH_ERR_NULL_ARGUMENT    // a required pointer was NULL (a binding bug)
	ErrInvalidArgument Status = C.ZENITH_ERR_INVALID_ARGUMENT // a value outside its domain
	ErrIO              Status = C.ZENITH_ERR_IO               // the operating system reported an I/O failure
	ErrNotFound        Status = C.ZENITH_ERR_NOT_FOUND        // a path does not exist (also matches fs.ErrNotExist)
	ErrFormat          Status = C.ZENITH_ERR_FORMAT           // not the expected format, truncated or corrupt
	ErrUnsupported     Status = C.ZENITH_ERR_UNSUPPORTED      // valid, but this build or this data cannot serve it
	ErrPanic           Status = C.ZENITH_ERR_PANIC            // a panic caught at the C boundary (a bug)
	ErrInternal        Status = C.ZENITH_ERR_INTERNAL         // a broken internal invariant (a bug)
	ErrSchemaMismatch  Status = C.ZENITH_ERR_SCHEMA_MISMATCH  // shards of one dataset have different schemas
	ErrBufferTooSmall  Status = C.ZENITH_ERR_BUFFER_TOO_SMALL // a buffer was too small
	ErrOutOfMemory     Status = C.ZENITH_ERR_OUT_OF_MEMORY    // over the memory budget (e.g. ShuffleGlobal on data larger than it)
	ErrNoDevice        Status = C.ZENITH_ERR_NO_DEVICE        // no GPU driver, no device, or no such device ordinal
)

// String returns the library's description of the code ("not found", ...).
func (s Status) String() string { return C.GoString(C.zenith_status_str(C.zenith_status(s))) }

// Error makes a Status usable as a sentinel error.
func (s Status) Error() string { return "zenith: " + s.String() }

// Is reports whether target means the same failure: ErrNotFound matches [fs.ErrNotExist].
func (s Status) Is(target error) bool {
	return s == ErrNotFound && target == fs.ErrNotExist
}

// Error is an error reported by libzenith: its status code and message.
type Error struct {
	Code    Status // one of the Err* codes
	Message string // the library's message (it names the file, column or argument concerned)
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code.Error()
	}
	return "zenith: " + e.Message
}

// Unwrap returns the code, so that errors.Is(err, zenith.ErrFormat) and
// errors.As(err, &status) work.
func (e *Error) Unwrap() error { return e.Code }

// ErrClosed is returned by methods of a Loader or Batch that has been closed.
var ErrClosed = errors.New("zenith: use of a closed loader or batch")

// takeError turns a failed call's status and error object into an *Error and frees the object.
// It is called only with a negative status; cerr may be NULL.
func takeError(st C.zenith_status, cerr *C.zenith_error) error {
	e := &Error{Code: Status(st)}
	if cerr != nil {
		if code := C.zenith_error_code(cerr); code != C.ZENITH_OK {
			e.Code = Status(code)
		}
		e.Message = C.GoString(C.zenith_error_message(cerr))
		C.zenith_error_free(cerr)
	}
	return e
}

// invalid is an ErrInvalidArgument raised by the binding itself (for a value that cannot be
// passed to C at all, such as a negative size).
func invalid(msg string) error {
	return &Error{Code: ErrInvalidArgument, Message: "invalid argument: " + msg}
}
