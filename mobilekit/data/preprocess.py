"""The one preprocessing function: resize (letterbox or stretch), colour order, normalization, quantization.

Every step is specified in integer arithmetic where it decides a pixel, so the generated Kotlin and Swift code can
reproduce it byte for byte on any device: platform bitmap scaling differs between Android versions and vendors,
and a model calibrated on one resize and fed another loses accuracy silently.

Bilinear resize, per output column ``x`` (rows likewise)::

    t  = floor(((2x + 1) * src - dst) * 2048 / (2 * dst))     # source coordinate in 1/2048 pixel, half-pixel centres
    x0 = t >> 11, w = t & 2047; if x0 < 0: x0, w = 0, 0; if x0 >= src - 1: x0, w = src - 1, 0
    x1 = min(x0 + 1, src - 1)
    top = p[y0][x0] * (2048 - wx) + p[y0][x1] * wx              (bottom likewise with y1)
    out = (top * (2048 - wy) + bottom * wy + 2**21) >> 22        # fits in int32

Letterbox geometry is integer too (see :func:`resize_plan`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAC_BITS = 11
ONE = 1 << FRAC_BITS


@dataclass(frozen=True)
class ResizePlan:
    """Where the source image lands in the model input; also what undoes it for boxes."""

    src_w: int
    src_h: int
    dst_w: int
    dst_h: int
    new_w: int
    new_h: int
    pad_x: int
    pad_y: int

    def to_source(self, boxes: np.ndarray) -> np.ndarray:
        """Model-input pixel boxes (xyxy) → original-image pixels, clipped to the image."""
        out = np.asarray(boxes, dtype=np.float64).copy()
        sx = self.src_w / self.new_w
        sy = self.src_h / self.new_h
        out[..., 0] = (out[..., 0] - self.pad_x) * sx
        out[..., 2] = (out[..., 2] - self.pad_x) * sx
        out[..., 1] = (out[..., 1] - self.pad_y) * sy
        out[..., 3] = (out[..., 3] - self.pad_y) * sy
        out[..., 0::2] = np.clip(out[..., 0::2], 0.0, float(self.src_w))
        out[..., 1::2] = np.clip(out[..., 1::2], 0.0, float(self.src_h))
        return out

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """Original-image pixel boxes → model-input pixels (for drawing ground truth on the canvas)."""
        out = np.asarray(boxes, dtype=np.float64).copy()
        out[..., 0::2] = out[..., 0::2] * (self.new_w / self.src_w) + self.pad_x
        out[..., 1::2] = out[..., 1::2] * (self.new_h / self.src_h) + self.pad_y
        return out


def resize_plan(src_h: int, src_w: int, dst_h: int, dst_w: int, mode: str) -> ResizePlan:
    """Letterbox keeps the aspect ratio (rounded half up, centred with the smaller pad first); stretch fills."""
    if mode == "stretch":
        return ResizePlan(src_w, src_h, dst_w, dst_h, dst_w, dst_h, 0, 0)
    if dst_w * src_h <= dst_h * src_w:  # width is the limiting side
        new_w = dst_w
        new_h = max(1, min(dst_h, (src_h * dst_w + src_w // 2) // src_w))
    else:
        new_h = dst_h
        new_w = max(1, min(dst_w, (src_w * dst_h + src_h // 2) // src_h))
    return ResizePlan(src_w, src_h, dst_w, dst_h, new_w, new_h, (dst_w - new_w) // 2, (dst_h - new_h) // 2)


def _axis_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    i = np.arange(dst, dtype=np.int64)
    t = (((2 * i + 1) * src - dst) * ONE) // (2 * dst)  # floor division, also for the negative left edge
    i0 = t >> FRAC_BITS
    w = t & (ONE - 1)
    low = i0 < 0
    i0[low], w[low] = 0, 0
    high = i0 >= src - 1
    i0[high], w[high] = src - 1, 0
    i1 = np.minimum(i0 + 1, src - 1)
    return i0, i1, w


def resize_bilinear(img: np.ndarray, new_h: int, new_w: int) -> np.ndarray:
    """Fixed-point bilinear resize of ``uint8 [H, W, C]`` (the algorithm in the module docstring)."""
    src_h, src_w = img.shape[:2]
    y0, y1, wy = _axis_taps(src_h, new_h)
    x0, x1, wx = _axis_taps(src_w, new_w)
    p = img.astype(np.int64)
    wx_ = wx[None, :, None]
    top = p[y0][:, x0] * (ONE - wx_) + p[y0][:, x1] * wx_
    bottom = p[y1][:, x0] * (ONE - wx_) + p[y1][:, x1] * wx_
    wy_ = wy[:, None, None]
    out = (top * (ONE - wy_) + bottom * wy_ + (1 << (2 * FRAC_BITS - 1))) >> (2 * FRAC_BITS)
    return out.astype(np.uint8)


def letterbox(img: np.ndarray, dst_h: int, dst_w: int, mode: str, pad_value: int) -> tuple[np.ndarray, ResizePlan]:
    """Place ``img`` (uint8 RGB) on a ``dst_h × dst_w`` canvas; returns the canvas and how to undo it."""
    plan = resize_plan(img.shape[0], img.shape[1], dst_h, dst_w, mode)
    canvas = np.full((dst_h, dst_w, img.shape[2]), pad_value, dtype=np.uint8)
    canvas[plan.pad_y:plan.pad_y + plan.new_h, plan.pad_x:plan.pad_x + plan.new_w] = resize_bilinear(
        img, plan.new_h, plan.new_w)
    return canvas, plan


def normalize(canvas: np.ndarray, scale: list[float], offset: list[float], color: str, layout: str) -> np.ndarray:
    """``uint8 [H, W, 3]`` RGB canvas → float32 ``[1, ...]`` model input: ``x = pixel * scale[c] + offset[c]``.

    Computed in float32 (one multiply, one add) exactly as the generated code does it.
    """
    px = canvas[..., ::-1] if color == "BGR" else canvas
    x = px.astype(np.float32) * np.asarray(scale, np.float32) + np.asarray(offset, np.float32)
    if layout == "NCHW":
        x = np.transpose(x, (2, 0, 1))
    return x[None].astype(np.float32)


def quantize_table(scale: list[float], offset: list[float], q_scale: float, q_zero: int, dtype: str) -> np.ndarray:
    """Per channel, the quantized value of every pixel value: ``[3, 256]`` of the tensor dtype.

    ``q = clamp(floor(x / q_scale + 0.5) + q_zero)`` with ``x`` the float32 normalized value, divided in float64.
    A table makes the device cost one lookup per byte and removes any float disagreement between languages.
    """
    info = np.iinfo(np.dtype(dtype))
    px = np.arange(256, dtype=np.float32)
    x = px[None, :] * np.asarray(scale, np.float32)[:, None] + np.asarray(offset, np.float32)[:, None]
    q = np.floor(x.astype(np.float32).astype(np.float64) / float(q_scale) + 0.5) + q_zero
    return np.clip(q, info.min, info.max).astype(dtype)


def quantize_canvas(canvas: np.ndarray, table: np.ndarray, color: str, layout: str) -> np.ndarray:
    """Apply :func:`quantize_table` to a canvas: ``[1, H, W, 3]`` (or NCHW) integer model input."""
    px = canvas[..., ::-1] if color == "BGR" else canvas
    q = np.stack([table[c][px[..., c]] for c in range(px.shape[-1])], axis=-1)
    if layout == "NCHW":
        q = np.transpose(q, (2, 0, 1))
    return q[None]


def quantize(x: np.ndarray, q_scale: float, q_zero: int, dtype: str) -> np.ndarray:
    """Quantize an already-normalized float tensor with the same rounding as :func:`quantize_table`."""
    info = np.iinfo(np.dtype(dtype))
    q = np.floor(x.astype(np.float64) / float(q_scale) + 0.5) + q_zero
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, q_scale: float, q_zero: int) -> np.ndarray:
    return ((q.astype(np.int32) - q_zero) * np.float32(q_scale)).astype(np.float32)
