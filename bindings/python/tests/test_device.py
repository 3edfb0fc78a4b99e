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
