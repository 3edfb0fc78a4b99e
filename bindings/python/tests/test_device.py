"""device="cuda[:N]" on zenith.Loader / zenith.DataLoader / zenith.torch.DataLoader: the option
reaches the library, and without a CUDA device opening fails with NO_DEVICE and says why. On a
machine with a GPU the same tests check that tensors land on the device (kDLCUDA)."""

from __future__ import annotations

import ctypes

import pytest

import zenith
from zenith import _lib


def _gpus() -> int:
    """CUDA devices the library sees (0 without a driver or device)."""
    count = ctypes.c_uint32(0)
    status = _lib.lib().zenith_gpu_count(ctypes.byref(count), None)
    return count.value if status == _lib.ZENITH_OK else 0


def _assert_no_device(error: zenith.ZenithError) -> None:
    assert error.code == zenith.Status.ERR_NO_DEVICE, error
    text = str(error)
    assert "deliver batches to CUDA device 0, which is not available" in text, text
    assert "CUDA driver library was not found" in text or "CUDA_ERROR_NO_DEVICE" in text, text


def test_cuda_device_opens_where_one_exists_and_fails_with_no_device_elsewhere(data):
    if _gpus() == 0:
        with pytest.raises(zenith.ZenithError) as caught:
            zenith.Loader(data["parquet"], batch_size=100, output="dlpack", device="cuda:0")
        _assert_no_device(caught.value)
        return
    with zenith.Loader(data["parquet"], batch_size=100, shuffle=False, output="dlpack", device="cuda:0") as loader:
        columns = next(iter(loader))
        tensor = columns["id"]
        assert tensor.__dlpack_device__() == (_lib.kDLCUDA, 0)


def test_cpu_device_is_the_default_delivery(data):
    with zenith.Loader(data["parquet"], batch_size=100, shuffle=False, output="dlpack", device="cpu") as loader:
        columns = next(iter(loader))
        assert columns["id"].__dlpack_device__() == (_lib.kDLCPU, 0)


@pytest.mark.parametrize(
    "kwargs, text",
    [
        (dict(device="gpu0"), 'device must be "cpu", "cuda" or "cuda:N"'),
        (dict(device="cuda:x"), "cuda:N"),
        (dict(device="cpu", device_slots=4), "device_slots applies to"),
        (dict(device="cuda:0", output="arrow"), 'use output="dlpack"'),
        # Checked by the library when the options are set, before the device is looked for.
        (dict(device="cuda:0", device_slots=2), "at least 3 slots"),
    ],
)
def test_bad_device_options_are_clear_errors(data, kwargs, text):
    kwargs.setdefault("output", "dlpack")
    with pytest.raises(zenith.InvalidArgumentError, match=None) as caught:
        zenith.Loader(data["parquet"], batch_size=100, **kwargs)
    assert text in str(caught.value)


def test_dataloader_passes_the_device_through(data):
    if _gpus() > 0:
        loader = zenith.DataLoader(data["parquet"], batch_size=100, device="cuda:0")
        # Device tensors are handed out as zenith.Tensor for a framework to import.
        assert next(iter(loader))["id"].device == (_lib.kDLCUDA, 0)
        loader.loader.close()
        return
    with pytest.raises(zenith.ZenithError) as caught:
        zenith.DataLoader(data["parquet"], batch_size=100, device="cuda:0")
    _assert_no_device(caught.value)


def test_the_stream_rules_apply_to_host_tensors_too(data):
    with zenith.Loader(data["parquet"], batch_size=100, shuffle=False, output="dlpack") as loader:
        tensor = next(iter(loader))["id"]
        with pytest.raises(BufferError):
            tensor.__dlpack__(stream=1)


def test_pin_memory_lands_batches_in_pinned_memory_or_fails_with_no_device(data):
    if _gpus() == 0:
        with pytest.raises(zenith.ZenithError) as caught:
            zenith.Loader(data["parquet"], batch_size=100, pin_memory=True)
        error = caught.value
        assert error.code == zenith.Status.ERR_NO_DEVICE, error
        assert "pin_memory needs CUDA device 0, which is not available" in str(error), error
        with pytest.raises(zenith.ZenithError) as caught:
            zenith.Loader(data["parquet"], batch_size=100, pin_memory="cuda:1")
        assert "pin_memory needs CUDA device 1" in str(caught.value)
        return
    # Shuffled (the default): gathered into the pinned pool; the rows are those of a plain loader.
    with zenith.Loader(data["parquet"], batch_size=100, seed=3, pin_memory=True) as pinned:
        with zenith.Loader(data["parquet"], batch_size=100, seed=3) as plain:
            for a, b in zip(pinned, plain, strict=True):
                assert a.column("id").to_pylist() == b.column("id").to_pylist()


def test_pin_memory_c_call_without_a_device_and_its_argument_checks(data):
    lib = _lib.lib()
    opts = _lib.OptionsPtr()
    assert lib.zenith_loader_options_new(ctypes.byref(opts)) == _lib.ZENITH_OK
    try:
        # Disabling needs no driver.
        assert lib.zenith_loader_options_set_pin_memory(opts, 0, False, None) == _lib.ZENITH_OK
        status = lib.zenith_loader_options_set_pin_memory(opts, 0, True, None)
        if _gpus() == 0:
            assert status == zenith.Status.ERR_NO_DEVICE
        else:
            assert status == _lib.ZENITH_OK
        assert lib.zenith_loader_options_set_pin_memory(None, 0, True, None) == zenith.Status.ERR_NULL_ARGUMENT
    finally:
        lib.zenith_loader_options_free(opts)
    with pytest.raises(zenith.InvalidArgumentError) as caught:
        zenith.Loader(data["parquet"], batch_size=100, pin_memory="gpu0")
    assert "pin_memory must be" in str(caught.value)
