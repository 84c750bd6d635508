"""Shape and data-movement MIL ops."""

from __future__ import annotations

import numpy as np

from mobilekit.emulate.coreml.registry import EmulatorError, axes_of, f32, op

_DTYPES = {"fp16": np.float16, "fp32": np.float32, "int32": np.int32, "int16": np.int16, "int8": np.int8,
           "uint8": np.uint8, "bool": np.bool_}


@op("cast")
def cast(a):
    dtype = str(a["dtype"])
    if dtype not in _DTYPES:
        raise EmulatorError(f"cast to '{dtype}' is not supported by the emulator")
    x = np.asarray(a["x"])
    target = np.dtype(_DTYPES[dtype])
    if target.kind == "f" and x.dtype.kind == "f":
        return x.astype(np.float32)  # the runtime rounds to the declared dtype, so the fp16 watch sees overflow
    if target.kind in "iu" and x.dtype.kind == "f":
        x = np.round(x)  # Core ML casts float to int by rounding to nearest
    return x.astype(target)


@op("identity")
def identity(a):
    return np.asarray(a["x"])


@op("reshape")
def reshape(a):
    return np.reshape(a["x"], [int(s) for s in np.atleast_1d(a["shape"])])


@op("transpose")
def transpose(a):
    return np.transpose(a["x"], [int(p) for p in np.atleast_1d(a["perm"])])


@op("squeeze")
def squeeze(a):
    ax = axes_of(a.get("axes"))
    return np.squeeze(a["x"], axis=ax)


@op("expand_dims")
def expand_dims(a):
    x = np.asarray(a["x"])
    for ax in sorted(axes_of(a["axes"]) or (), key=lambda v: v if v >= 0 else v + x.ndim + 1):
        x = np.expand_dims(x, ax)
    return x


@op("concat")
def concat(a):
    if a.get("interleave"):
        vals = [np.asarray(v) for v in a["values"]]
        axis = int(a["axis"]) % vals[0].ndim
        stacked = np.stack(vals, axis=axis + 1)
        shape = list(vals[0].shape)
        shape[axis] *= len(vals)
        return stacked.reshape(shape)
    return np.concatenate([np.asarray(v) for v in a["values"]], axis=int(a["axis"]))


@op("stack")
def stack(a):
    return np.stack([np.asarray(v) for v in a["values"]], axis=int(a["axis"]))


@op("split")
def split(a):
    x = np.asarray(a["x"])
    axis = int(a["axis"])
    if a.get("split_sizes") is not None:
        idx = np.cumsum(np.atleast_1d(a["split_sizes"]))[:-1]
        return tuple(np.split(x, idx, axis=axis))
    return tuple(np.split(x, int(a["num_splits"]), axis=axis))


@op("slice_by_index")
def slice_by_index(a):
    x = np.asarray(a["x"])
    n = x.ndim
    begin = np.atleast_1d(a["begin"]).astype(int)
    end = np.atleast_1d(a["end"]).astype(int)
    stride = np.ones(n, int) if a.get("stride") is None else np.atleast_1d(a["stride"]).astype(int)
    bmask = [False] * n if a.get("begin_mask") is None else list(np.atleast_1d(a["begin_mask"]))
    emask = [False] * n if a.get("end_mask") is None else list(np.atleast_1d(a["end_mask"]))
    smask = [False] * n if a.get("squeeze_mask") is None else list(np.atleast_1d(a["squeeze_mask"]))
    sl = []
    for i in range(n):
        b = None if bmask[i] else int(begin[i])
        e = None if emask[i] else int(end[i])
        if smask[i]:
            sl.append(int(begin[i]))
        else:
            sl.append(slice(b, e, int(stride[i])))
    return x[tuple(sl)]


@op("slice_by_size")
def slice_by_size(a):
    x = np.asarray(a["x"])
    begin = np.atleast_1d(a["begin"]).astype(int)
    size = np.atleast_1d(a["size"]).astype(int)
    return x[tuple(slice(b, None if s == -1 else b + s) for b, s in zip(begin, size, strict=True))]


@op("tile")
def tile(a):
    return np.tile(a["x"], [int(r) for r in np.atleast_1d(a["reps"])])


@op("pad")
def pad(a):
    x = f32(a["x"])
    p = np.atleast_1d(a["pad"]).astype(int).reshape(-1, 2)
    widths = [(0, 0)] * (x.ndim - len(p)) + [tuple(r) for r in p]
    mode = a.get("mode") or "constant"
    if mode == "constant":
        return np.pad(x, widths, constant_values=float(a.get("constant_val") or 0.0))
    return np.pad(x, widths, mode={"reflect": "reflect", "replicate": "edge"}[mode])


@op("gather")
def gather(a):
    axis = int(a.get("axis") or 0)
    return np.take(np.asarray(a["x"]), np.asarray(a["indices"]).astype(int), axis=axis)


@op("shape")
def shape(a):
    return np.asarray(np.shape(a["x"]), dtype=np.int32)


def _reduce(fn):
    def run(a):
        ax = axes_of(a.get("axes"))
        return fn(f32(a["x"]), axis=ax, keepdims=bool(a.get("keep_dims") or False))

    return run


for _name, _fn in {"reduce_mean": np.mean, "reduce_sum": np.sum, "reduce_max": np.max, "reduce_min": np.min,
                   "reduce_prod": np.prod}.items():
    op(_name)(_reduce(_fn))


@op("reduce_argmax")
def reduce_argmax(a):
    x = np.argmax(np.asarray(a["x"]), axis=int(a.get("axis") or -1))
    return np.expand_dims(x, int(a.get("axis") or -1)) if a.get("keep_dims") else x.astype(np.int32)


@op("softmax")
def softmax(a):
    x = f32(a["x"])
    axis = int(a.get("axis") if a.get("axis") is not None else -1)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
