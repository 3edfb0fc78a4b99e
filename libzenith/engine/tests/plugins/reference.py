"""Reference results for the example C plugins, computed with numpy (what a user would write).

    python reference.py OUT_DIR

writes raw little-endian files: normalize_in.f64 / normalize_out.f64 ((x - mean) / std, numpy's
population std), resize_in.u8 (4 RGB images 20x20) / resize_out.u8 (each resized to 32x32,
bilinear with half-pixel centres, computed in float32 as the plugin does).
"""

import sys
from pathlib import Path

import numpy as np


def bilinear(image: np.ndarray, out: int) -> np.ndarray:
    side = image.shape[0]
    scale = np.float32(side) / np.float32(out)
    centres = (np.arange(out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    src = np.clip(centres, np.float32(0), np.float32(side - 1))
    lo = src.astype(np.int64)
    hi = np.minimum(lo + 1, side - 1)
    frac = (src - lo.astype(np.float32)).astype(np.float32)
    img = image.astype(np.float32)
    top = img[lo][:, lo] + (img[lo][:, hi] - img[lo][:, lo]) * frac[None, :, None]
    bottom = img[hi][:, lo] + (img[hi][:, hi] - img[hi][:, lo]) * frac[None, :, None]
    value = top + (bottom - top) * frac[:, None, None]
    return (np.clip(value, 0, 255) + np.float32(0.5)).astype(np.uint8)


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(12)
    x = rng.normal(3.0, 2.5, size=1000).astype(np.float64)
    x.tofile(out / "normalize_in.f64")
    ((x - x.mean()) / x.std()).astype(np.float64).tofile(out / "normalize_out.f64")
    images = rng.integers(0, 256, size=(4, 20, 20, 3), dtype=np.uint8)
    images.tofile(out / "resize_in.u8")
    np.stack([bilinear(image, 32) for image in images]).tofile(out / "resize_out.u8")


if __name__ == "__main__":
    main()
