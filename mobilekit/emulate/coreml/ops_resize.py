"""Spatial resizing (the last two axes), as the MIL spec of coremltools 9 defines each op.

FPN and PAN necks upsample coarse features before adding them to finer ones; Keras' ``UpSampling2D`` and
``Resizing`` become these ops. Each maps every output position to a source position along each spatial axis
(:func:`_grid`) and then samples the nearest value or interpolates linearly between the two neighbours.
"""

from __future__ import annotations

import math

import numpy as np

from mobilekit.emulate.coreml.registry import EmulatorError, f32, op


def _grid(n_in: int, n_out: int, mode: str) -> np.ndarray:
    """Source coordinates of the ``n_out`` output positions (``resize_bilinear``'s ``sampling_mode``; the
    ``align_corners`` flag of ``upsample_bilinear`` is ``STRICT_ALIGN_CORNERS`` or ``UNALIGN_CORNERS``)."""
    i = np.arange(n_out, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if n_out == 1:
            return np.array([(n_in - 1) / 2 if mode == "ALIGN_CORNERS" else 0.0])
        g = i * (n_in - 1) / (n_out - 1)
    elif mode == "DEFAULT":
        g = i * ((n_in - n_in / n_out) / (n_out - 1)) if n_out > 1 else np.zeros(1)
    elif mode == "OFFSET_CORNERS":
        delta = max(1, n_in - 1) / n_out
        g = 0.5 * delta + i * delta
    elif mode == "UNALIGN_CORNERS":
        spacing = n_in / n_out
        g = i * spacing + 0.5 * spacing - 0.5
    elif mode == "ASYMMETRIC":  # upsample_bilinear with neither aligned corners nor half-pixel centres
        g = i * n_in / n_out
    else:
        raise EmulatorError(f"resize sampling mode '{mode}' is not one the MIL spec defines")
    return np.clip(g, 0, n_in - 1)


def _linear(x: np.ndarray, axis: int, grid: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``x`` along ``axis`` at the (clipped) source coordinates ``grid``."""
    lo = np.floor(grid).astype(np.int64)
    hi = np.minimum(lo + 1, x.shape[axis] - 1)
    w = (grid - lo).astype(np.float32)
    shape = [1] * x.ndim
    shape[axis] = -1
    w = w.reshape(shape)
    return np.take(x, lo, axis=axis) * (1 - w) + np.take(x, hi, axis=axis) * w


def _bilinear(x: np.ndarray, h: int, w: int, mode: str) -> np.ndarray:
    y = _linear(f32(x), x.ndim - 2, _grid(x.shape[-2], h, mode))
    return _linear(y, x.ndim - 1, _grid(x.shape[-1], w, mode))


@op("upsample_nearest_neighbor")
def upsample_nearest(a):
    """Scale factors (integer, or fractional from iOS 15): output ``floor(n * s)``, source ``floor(i / s)``."""
    x = np.asarray(a["x"])
    sh = float(a.get("scale_factor_height") or 1)
    sw = float(a.get("scale_factor_width") or 1)
    if sh.is_integer() and sw.is_integer():
        return x.repeat(int(sh), axis=-2).repeat(int(sw), axis=-1)
    h, w = math.floor(x.shape[-2] * sh), math.floor(x.shape[-1] * sw)

    def index(n_in: int, n_out: int) -> np.ndarray:
        # by the sizes, not the scale: coremltools passes (n_out + 1e-4) / n_in, whose inverse lands one short
        return np.minimum(np.floor(np.arange(n_out) * n_in / n_out).astype(np.int64), n_in - 1)

    return np.take(np.take(x, index(x.shape[-2], h), axis=-2), index(x.shape[-1], w), axis=-1)


@op("resize_nearest_neighbor")
def resize_nearest(a):
    """To a target size with half-pixel centres (what coremltools emits for TensorFlow's
    ``half_pixel_centers=True``, Keras ``Resizing``): source ``min(floor((i + 0.5) * n_in / n_out), n_in - 1)``."""
    x = np.asarray(a["x"])
    h, w = int(a["target_size_height"]), int(a["target_size_width"])

    def index(n_in: int, n_out: int) -> np.ndarray:
        return np.minimum(np.floor((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.int64), n_in - 1)

    return np.take(np.take(x, index(x.shape[-2], h), axis=-2), index(x.shape[-1], w), axis=-1)


@op("upsample_bilinear")
def upsample_bilinear(a):
    """Scale factors; the output size is ``floor(n * s)``; the grid follows ``align_corners`` (default true) and,
    from iOS 16, ``half_pixel_centers`` (default: not ``align_corners``)."""
    x = np.asarray(a["x"])
    sh = float(a.get("scale_factor_height") or 1)
    sw = float(a.get("scale_factor_width") or 1)
    align = True if a.get("align_corners") is None else bool(a["align_corners"])
    half = (not align) if a.get("half_pixel_centers") is None else bool(a["half_pixel_centers"])
    mode = "STRICT_ALIGN_CORNERS" if align else "UNALIGN_CORNERS" if half else "ASYMMETRIC"
    return _bilinear(x, math.floor(x.shape[-2] * sh), math.floor(x.shape[-1] * sw), mode)


@op("resize_bilinear")
def resize_bilinear(a):
    x = np.asarray(a["x"])
    mode = str(a.get("sampling_mode") or "DEFAULT")
    return _bilinear(x, int(a.get("target_size_height") or 1), int(a.get("target_size_width") or 1), mode)
