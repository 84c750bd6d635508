"""YUV 4:2:0 → RGB as the generated SDKs convert camera frames (Android's ``YUV_420_888``): the BT.601 matrix in
16-bit fixed point, full (JFIF) or limited (studio swing) range. This is the reference the Kotlin live path is held
to byte for byte; integer arithmetic with floor shifts makes the two agree exactly on every platform."""

from __future__ import annotations

import numpy as np

#: round(c * 65536) of the BT.601 coefficients: Y gain, Y offset, R from V, G from U, G from V, B from U
COEFFICIENTS = {"full": (65536, 0, 91881, 22554, 46802, 116130),
                "limited": (76309, 16, 104597, 25675, 53279, 132201)}


def yuv420_to_rgb(y: bytes, u: bytes, v: bytes, width: int, height: int, y_row_stride: int, uv_row_stride: int,
                  uv_pixel_stride: int, full_range: bool = True) -> np.ndarray:
    """The ``[height, width, 3]`` uint8 RGB image of three planes laid out as ``ImageProxy.planes`` gives them
    (chroma subsampled 2x2; ``uv_pixel_stride`` 1 for I420, 2 for NV12/NV21)."""
    gain, y0, rv, gu, gv, bu = COEFFICIENTS["full" if full_range else "limited"]
    rows, cols = np.mgrid[0:height, 0:width]
    luma = np.frombuffer(y, np.uint8)[rows * y_row_stride + cols].astype(np.int64)
    c = (rows >> 1) * uv_row_stride + (cols >> 1) * uv_pixel_stride
    cu = np.frombuffer(u, np.uint8)[c].astype(np.int64) - 128
    cv = np.frombuffer(v, np.uint8)[c].astype(np.int64) - 128
    yy = (luma - y0) * gain
    rgb = np.stack([(yy + rv * cv + 32768) >> 16, (yy - gu * cu - gv * cv + 32768) >> 16,
                    (yy + bu * cu + 32768) >> 16], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def rgb_to_yuv420(rgb: np.ndarray, y_row_stride: int, uv_row_stride: int, uv_pixel_stride: int,
                  full_range: bool = True) -> tuple[bytes, bytes, bytes]:
    """Planes of a camera-like YUV 4:2:0 image of ``rgb`` with the given strides (padding bytes are 0), chroma
    averaged over each 2x2 block. For tests and benchmarks that need realistic frames: the SDK never encodes."""
    h, w = rgb.shape[:2]
    f = rgb.astype(np.float64)
    luma = 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
    cb = (f[..., 2] - luma) / 1.772
    cr = (f[..., 0] - luma) / 1.402
    if full_range:
        ys, cbs, crs = luma, cb + 128, cr + 128
    else:
        ys, cbs, crs = luma * 219 / 255 + 16, cb * 224 / 255 + 128, cr * 224 / 255 + 128
    hh, hw = (h + 1) // 2, (w + 1) // 2
    y = np.zeros((h, y_row_stride), np.uint8)
    y[:, :w] = np.clip(np.rint(ys), 0, 255)

    def plane(values: np.ndarray) -> bytes:
        padded = np.pad(values, ((0, hh * 2 - h), (0, hw * 2 - w)), mode="edge")
        sub = np.clip(np.rint(padded.reshape(hh, 2, hw, 2).mean(axis=(1, 3))), 0, 255).astype(np.uint8)
        out = np.zeros(uv_row_stride * (hh - 1) + uv_pixel_stride * (hw - 1) + 1, np.uint8)
        idx = np.arange(hh)[:, None] * uv_row_stride + np.arange(hw)[None, :] * uv_pixel_stride
        out[idx] = sub
        return out.tobytes()

    return y.tobytes(), plane(cbs), plane(crs)
