"""ZenithError and its subclasses: a failing C call becomes one exception, freed on the way."""

from __future__ import annotations

import ctypes
import enum
import errno

from . import _lib


class Status(enum.IntEnum):
    """The status codes the loader API returns (`zenith_status`): 0 and 1 are not errors."""

    OK = _lib.ZENITH_OK
    DONE = _lib.ZENITH_DONE
    ERR_NULL_ARGUMENT = _lib.ZENITH_ERR_NULL_ARGUMENT
    ERR_INVALID_ARGUMENT = _lib.ZENITH_ERR_INVALID_ARGUMENT
    ERR_IO = _lib.ZENITH_ERR_IO
    ERR_NOT_FOUND = _lib.ZENITH_ERR_NOT_FOUND
    ERR_FORMAT = _lib.ZENITH_ERR_FORMAT
    ERR_UNSUPPORTED = _lib.ZENITH_ERR_UNSUPPORTED
    ERR_PANIC = _lib.ZENITH_ERR_PANIC
    ERR_INTERNAL = _lib.ZENITH_ERR_INTERNAL
    ERR_SCHEMA_MISMATCH = _lib.ZENITH_ERR_SCHEMA_MISMATCH
    ERR_BUFFER_TOO_SMALL = _lib.ZENITH_ERR_BUFFER_TOO_SMALL
    ERR_OUT_OF_MEMORY = _lib.ZENITH_ERR_OUT_OF_MEMORY
    # the gang scheduler's (zenith.scheduler raises AlreadyExistsError / InvalidStateError)
    ERR_ALREADY_EXISTS = _lib.ZENITH_ERR_ALREADY_EXISTS
    ERR_INVALID_STATE = _lib.ZENITH_ERR_INVALID_STATE
    ERR_NO_DEVICE = _lib.ZENITH_ERR_NO_DEVICE
    # the event engine's (zenith.Engine.poll raises EventFailedError)
    ERR_EVENT_FAILED = _lib.ZENITH_ERR_EVENT_FAILED


class ZenithError(Exception):
    """An error reported by libzenith (or an argument the binding refused before calling it).

    ``code`` is the library's status code (a :class:`Status` when known, else the int) and
    ``message`` its message. Subclasses also derive from the built-in exception a Python user
    would catch: :class:`NotFoundError` is a ``FileNotFoundError``, :class:`InvalidArgumentError`
    a ``ValueError``, :class:`ZenithIOError` an ``OSError``.
    """

    def __init__(self, code: int, message: str):
        try:
            code = Status(code)
        except ValueError:
            pass
        self.code = code
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        name = self.code.name if isinstance(self.code, Status) else str(self.code)
        return f"{self.message} [{name}]"

    def __reduce__(self):
        return (_rebuild, (self.code, self.message))


def _rebuild(code, message):
    return error(code, message)


class InvalidArgumentError(ZenithError, ValueError):
    """An argument outside its domain (bad option, unknown column, foreign resume state, ...)."""


class NotFoundError(ZenithError, FileNotFoundError):
    """The path does not exist, or holds no data file."""

    def __init__(self, code: int, message: str):
        super().__init__(code, message)
        # FileNotFoundError's own fields, as OSError(errno, strerror) would set them.
        self.errno = errno.ENOENT
        self.strerror = message

    def __str__(self) -> str:
        return ZenithError.__str__(self)


class ZenithIOError(ZenithError, OSError):
    """The operating system reported an I/O failure."""

    def __str__(self) -> str:
        return ZenithError.__str__(self)


class FormatError(ZenithError):
    """A file is not in a known format, or is truncated or corrupt."""


class SchemaMismatchError(ZenithError):
    """Shards of one dataset have different schemas."""


class UnsupportedError(ZenithError):
    """Valid, but this build or this data cannot serve it (e.g. a string column as DLPack)."""


class OutOfMemoryError(ZenithError, MemoryError):
    """More memory than the loader may use: e.g. ``shuffle="global"`` over the memory budget
    (the message names the bytes needed and the budget)."""


class ZenithWarning(UserWarning):
    """Something Zenith did differently from what was asked, without failing. A
    ``UserWarning``, so Python shows it by default (a ``ResourceWarning`` would be hidden)."""


class ShuffleDowngradeWarning(ZenithWarning):
    """The automatic shuffle (``shuffle=True``) runs as a block shuffle: the decoded data exceeds
    the memory budget. Pass ``shuffle="block"`` to ask for it, ``shuffle="global"`` to fail
    instead, or a larger ``memory_budget``."""


# ---- the event engine's errors (zenith.Engine; issue 12) ----------------------------------------


class EventFailedError(ZenithError):
    """One engine event, or one loader batch, failed in a stage (a plugin's trap, timeout,
    out-of-memory or malformed result, or a native stage's error); the engine goes on with the
    following events, and the loader builds the batch again on the next call.

    ``sequence`` is the failed event's sequence number (the one ``Engine.publish`` returned; None
    for a loader batch) and ``message`` names the stage (for a loader, also the batch) and the
    reason.
    """

    def __init__(self, code: int, message: str, sequence: int | None = None):
        super().__init__(code, message)
        self.sequence = sequence

    def __reduce__(self):
        return (EventFailedError, (self.code, self.message, self.sequence))


class EngineTimeoutError(ZenithError, TimeoutError):
    """An engine call waited its whole timeout: ``publish`` found the queues full (the batch
    stays the caller's: nothing was taken, publish it again), or ``poll`` found no finished event
    (nothing was taken either). ``code`` is ``ZENITH_WOULD_BLOCK`` (2)."""

    def __str__(self) -> str:
        return f"{self.message} [WOULD_BLOCK]"

    def __reduce__(self):
        return (EngineTimeoutError, (self.code, self.message))


# ---- end of the event engine's errors -------------------------------------------------------------


_CLASSES = {
    Status.ERR_NULL_ARGUMENT: InvalidArgumentError,
    Status.ERR_INVALID_ARGUMENT: InvalidArgumentError,
    Status.ERR_BUFFER_TOO_SMALL: InvalidArgumentError,
    Status.ERR_NOT_FOUND: NotFoundError,
    Status.ERR_IO: ZenithIOError,
    Status.ERR_FORMAT: FormatError,
    Status.ERR_SCHEMA_MISMATCH: SchemaMismatchError,
    Status.ERR_UNSUPPORTED: UnsupportedError,
    Status.ERR_OUT_OF_MEMORY: OutOfMemoryError,
    Status.ERR_EVENT_FAILED: EventFailedError,
}


def error(code: int, message: str) -> ZenithError:
    """The exception for a status code."""
    return _CLASSES.get(code, ZenithError)(code, message)


def invalid(message: str) -> InvalidArgumentError:
    """An argument refused by the binding itself."""
    return InvalidArgumentError(Status.ERR_INVALID_ARGUMENT, message)


def check(status: int, err) -> int:
    """Returns a non-negative status; raises the error (freeing it) for a negative one."""
    if status >= 0:
        return status
    lib = _lib.lib()
    if err:
        code = lib.zenith_error_code(err)
        message = lib.zenith_error_message(err).decode("utf-8", "replace")
        lib.zenith_error_free(err)
    else:
        code, message = status, lib.zenith_status_str(status).decode("utf-8", "replace")
    raise error(code, message)


def new_err():
    """A fresh `zenith_error *` to pass by reference as a call's last argument."""
    return _lib.ErrorPtr()


def ref(err):
    return ctypes.byref(err)
