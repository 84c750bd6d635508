"""Neural-network MIL ops: convolution, pooling, matmul/linear and normalizations.

Convolutions and pooling run on TensorFlow's kernels in float32 (numpy would make parity on a 320×320 detector too
slow for CI); MIL's NCHW layout is transposed at the boundary. Padding follows the MIL spec for each ``pad_type``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mobilekit.emulate.coreml.registry import NHWC, EmulatorError, f32, op


def pads(a, spatial: list[int], kernel: list[int], strides: list[int], dilations: list[int],
         ceil_mode: bool = False) -> list[tuple[int, int]]:
    """(before, after) padding per spatial dim for MIL's pad_type valid | custom | same | same_lower."""
    kind = a.get("pad_type") or "valid"
    n = len(spatial)
    if kind == "valid":
        out = [(0, 0)] * n
    elif kind == "custom":
        p = np.atleast_1d(a.get("pad") if a.get("pad") is not None else np.zeros(2 * n)).astype(int)
        out = [(int(p[2 * i]), int(p[2 * i + 1])) for i in range(n)]
    elif kind in ("same", "same_lower"):
        out = []
        for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            before = total // 2 if kind == "same" else (total + 1) // 2
            out.append((before, total - before))
    else:
        raise EmulatorError(f"pad_type '{kind}' is not supported by the emulator")
    if ceil_mode:  # extra trailing pad so a last partial window is produced
        fixed = []
        for (b, e), size, k, s in zip(out, spatial, kernel, strides, strict=True):
            span = size + b + e - k
            fixed.append((b, e + (s - span % s) % s if span % s else e))
        out = fixed
    return out


def _ints(v, n: int, default: int) -> list[int]:
    return [default] * n if v is None else [int(x) for x in np.atleast_1d(v)]


_CONV_CACHE: dict[int, tuple[np.ndarray, object]] = {}


def _filters(w: np.ndarray, groups: int):
    """Weights in TensorFlow's layout, converted once per constant weight array (they are reused every image).
    A depthwise conv (``groups`` = input channels) with a depth multiplier M has ``groups * M`` output channels,
    ordered input channel first, as TensorFlow's ``[kH, kW, C_in, M]`` filter expects."""
    import tensorflow as tf

    hit = _CONV_CACHE.get(id(w))
    if hit is not None and hit[0] is w:
        return hit[1]
    if groups != 1:
        k = tf.constant(np.transpose(w.reshape(groups, w.shape[0] // groups, *w.shape[2:]), (2, 3, 0, 1)))
    else:
        k = tf.constant(np.transpose(w, (2, 3, 1, 0)))
    _CONV_CACHE[id(w)] = (w, k)
    return k


def _conv_nhwc(xh, k, bias, pads, strides, dil, depthwise: bool) -> np.ndarray:
    """Channels-last in, channels-last out."""
    import tensorflow as tf

    if any(p != (0, 0) for p in pads):
        xh = tf.pad(xh, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]])
    if depthwise:
        y = tf.nn.depthwise_conv2d(xh, k, [1, strides[0], strides[1], 1], "VALID", dilations=dil)
    else:
        y = tf.nn.conv2d(xh, k, [1, strides[0], strides[1], 1], "VALID", dilations=dil)
    return tf.nn.bias_add(y, bias).numpy()


@op("conv")
def conv(a):
    """NCHW conv on TensorFlow's NHWC kernels (the emulator's hot path; filters are converted once)."""
    import tensorflow as tf

    xin = a["x"]
    xh = xin.data if isinstance(xin, NHWC) else None
    x = None if xh is not None else f32(xin)
    if x is not None and x.ndim != 4:
        raise EmulatorError(f"conv of rank {x.ndim} is not supported by the emulator (2-D only)")
    w = f32(a["weight"])  # [C_out, C_in / groups, kH, kW]
    groups = int(a.get("groups") or 1)
    strides = _ints(a.get("strides"), 2, 1)
    dil = _ints(a.get("dilations"), 2, 1)
    spatial = list(xh.shape[1:3]) if xh is not None else list(x.shape[2:])
    p = pads(a, spatial, list(w.shape[2:]), strides, dil)
    c_in = xh.shape[3] if xh is not None else x.shape[1]
    bias = f32(a["bias"]) if a.get("bias") is not None else np.zeros(w.shape[0], np.float32)
    if xh is None:
        xh = np.transpose(x, (0, 2, 3, 1))
    if groups == 1 or (groups == c_in and w.shape[1] == 1):
        depthwise = groups != 1
        return NHWC(_conv_nhwc(xh, _filters(w, groups), bias, p, strides, dil, depthwise))
    outs = []
    for xi, wi, bi in zip(np.split(xh, groups, axis=3), np.split(w, groups, axis=0), np.split(bias, groups),
                          strict=True):
        k = tf.constant(np.transpose(wi, (2, 3, 1, 0)))
        outs.append(_conv_nhwc(xi, k, bi, p, strides, dil, False))
    return NHWC(np.concatenate(outs, axis=3))


def pool_nchw(x, a, kind: str):
    """MIL max_pool / avg_pool on NCHW (2-D), on TensorFlow tensors or arrays (shared by both emulator paths):
    explicit padding as the op's pad_type says (-inf for max), then a VALID pool; averages divide by the window,
    or by its unpadded part with ``exclude_padding_from_average``."""
    import tensorflow as tf

    if len(x.shape) != 4:
        raise EmulatorError(f"{kind} of rank {len(x.shape)} is not supported by the emulator (2-D only)")
    k = _ints(a["kernel_sizes"], 2, 1)
    s = _ints(a.get("strides"), 2, 1)
    p = pads(a, [int(d) for d in x.shape[2:]], k, s, [1, 1], bool(a.get("ceil_mode") or False))
    xh = tf.transpose(tf.cast(x, tf.float32), (0, 2, 3, 1))
    widths = [[0, 0], list(p[0]), list(p[1]), [0, 0]]
    if kind == "max_pool":
        y = tf.nn.max_pool2d(tf.pad(xh, widths, constant_values=-np.inf), k, s, "VALID")
    else:
        total = tf.nn.avg_pool2d(tf.pad(xh, widths), k, s, "VALID") * (k[0] * k[1])
        if a.get("exclude_padding_from_average"):
            count = tf.nn.avg_pool2d(tf.pad(tf.ones_like(xh[..., :1]), widths), k, s, "VALID") * (k[0] * k[1])
        else:
            count = float(k[0] * k[1])
        y = total / count
    return tf.transpose(y, (0, 3, 1, 2))


op("max_pool")(lambda a: pool_nchw(f32(a["x"]), a, "max_pool").numpy())
op("avg_pool")(lambda a: pool_nchw(f32(a["x"]), a, "avg_pool").numpy())


@op("matmul")
def matmul(a):
    x, y = f32(a["x"]), f32(a["y"])
    if a.get("transpose_x"):
        x = np.swapaxes(x, -1, -2)
    if a.get("transpose_y"):
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


@op("linear")
def linear(a):
    y = np.matmul(f32(a["x"]), f32(a["weight"]).T)
    return y + f32(a["bias"]) if a.get("bias") is not None else y


@op("batch_norm")
def batch_norm(a):
    x = f32(a["x"])
    shape = [1, -1] + [1] * (x.ndim - 2)
    eps = 1e-5 if a.get("epsilon") is None else float(a["epsilon"])
    y = (x - f32(a["mean"]).reshape(shape)) / np.sqrt(f32(a["variance"]).reshape(shape) + eps)
    if a.get("gamma") is not None:
        y = y * f32(a["gamma"]).reshape(shape)
    if a.get("beta") is not None:
        y = y + f32(a["beta"]).reshape(shape)
    return y


@op("layer_norm")
def layer_norm(a):
    x = f32(a["x"])
    ax = tuple(int(i) for i in np.atleast_1d(a["axes"])) if a.get("axes") is not None else (-1,)
    eps = 1e-5 if a.get("epsilon") is None else float(a["epsilon"])
    y = (x - x.mean(axis=ax, keepdims=True)) / np.sqrt(x.var(axis=ax, keepdims=True) + eps)
    if a.get("gamma") is not None:
        y = y * f32(a["gamma"])
    if a.get("beta") is not None:
        y = y + f32(a["beta"])
    return y




def conv_transpose_nchw(x, w: np.ndarray, bias, a) -> Any:
    """MIL ``conv_transpose`` on TensorFlow tensors or arrays (shared by both paths): the full transposed conv
    (``(D_in - 1) * stride + (K - 1) * dilation + 1``), then cropped as the op's ``pad_type`` says: ``custom``
    crops ``pad`` before, ``same`` crops half the excess before (TensorFlow's convention), and ``output_shape``,
    when given, sets the size kept."""
    import tensorflow as tf

    w = np.asarray(w, np.float32)  # [C_in, C_out / groups, kH, kW]
    groups = int(a.get("groups") or 1)
    strides = _ints(a.get("strides"), 2, 1)
    dil = _ints(a.get("dilations"), 2, 1)
    n, _, h, wd = (int(d) for d in x.shape)
    full = [(s - 1) * st + (k - 1) * d + 1 for s, st, k, d in zip((h, wd), strides, w.shape[2:], dil, strict=True)]
    xh = tf.transpose(tf.cast(x, tf.float32), (0, 2, 3, 1))
    outs = []
    for xi, wi in zip(tf.split(xh, groups, axis=3), np.split(w, groups, axis=0), strict=True):
        outs.append(tf.nn.conv2d_transpose(xi, np.transpose(wi, (2, 3, 1, 0)), [n, *full, wi.shape[1]],
                                           [1, *strides, 1], "VALID", dilations=dil))
    y = tf.concat(outs, axis=3) if groups > 1 else outs[0]
    kind = a.get("pad_type") or "valid"
    p = np.atleast_1d(a.get("pad") if a.get("pad") is not None else np.zeros(4)).astype(int)
    if a.get("output_shape") is not None:
        size = [int(v) for v in np.atleast_1d(a["output_shape"])[-2:]]
    elif kind == "same":
        size = [h * strides[0], wd * strides[1]]
    else:
        size = [full[i] - (p[2 * i] + p[2 * i + 1] if kind == "custom" else 0) for i in range(2)]
    # an output larger than the full extent (stride above the kernel, output_padding) ends in rows no input
    # reaches: zeros (then the bias), as TensorFlow computes them
    extra = [max(s - f, 0) for s, f in zip(size, full, strict=True)]
    if any(extra):
        y = tf.pad(y, [[0, 0], [0, extra[0]], [0, extra[1]], [0, 0]])
        full = [f + e for f, e in zip(full, extra, strict=True)]
    before = [int(p[2 * i]) if kind == "custom" else (full[i] - size[i]) // 2 if kind == "same" else 0
              for i in range(2)]
    y = y[:, before[0]:before[0] + size[0], before[1]:before[1] + size[1], :]
    if bias is not None:
        y = tf.nn.bias_add(y, np.asarray(bias, np.float32))
    return tf.transpose(y, (0, 3, 1, 2))


@op("conv_transpose")
def conv_transpose(a):
    return conv_transpose_nchw(f32(a["x"]), a["weight"], a.get("bias"), a).numpy()
