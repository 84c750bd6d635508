"""Fast path: the whole ML Program traced into one TensorFlow graph, with the same fp16 rounding after every op.

The per-op registry (``ops_*.py``) is the readable, spec-faithful reference; executing it op by op costs Python and
copy overhead on every op. When every op of a program has a TensorFlow twin here, the program is traced once into
a ``tf.function`` (rounding each fp16 result with a float16 cast, and counting overflow / underflow / non-finite
values per op for the fp16 watch), which runs at a small multiple of TensorFlow's own float inference. Tests run
both paths on the same programs and require identical results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mobilekit.emulate.coreml.ops_nn import _ints
from mobilekit.emulate.coreml.ops_nn import pads as mil_pads
from mobilekit.registry import Registry

TF_OPS: Registry[Callable[[dict[str, Any]], Any]] = Registry("TensorFlow op of the emulator's graph runner")
tf_op = TF_OPS.register


def _tf():
    import tensorflow as tf

    return tf


@tf_op("conv")
def _conv(a):
    tf = _tf()
    x, w = a["x"], np.asarray(a["weight"], np.float32)
    groups = int(a.get("groups") or 1)
    strides = _ints(a.get("strides"), 2, 1)
    dil = _ints(a.get("dilations"), 2, 1)
    p = mil_pads(a, [int(d) for d in x.shape[2:]], list(w.shape[2:]), strides, dil)
    xh = tf.transpose(x, (0, 2, 3, 1))
    if any(q != (0, 0) for q in p):
        xh = tf.pad(xh, [[0, 0], list(p[0]), list(p[1]), [0, 0]])
    c_in = int(x.shape[1])
    if groups == 1:
        y = tf.nn.conv2d(xh, np.transpose(w, (2, 3, 1, 0)), [1, *strides, 1], "VALID", dilations=dil)
    elif groups == c_in and w.shape[1] == 1:
        k = np.transpose(w.reshape(c_in, w.shape[0] // c_in, *w.shape[2:]), (2, 3, 0, 1))
        y = tf.nn.depthwise_conv2d(xh, k, [1, *strides, 1], "VALID", dilations=dil)
    else:
        y = tf.concat([tf.nn.conv2d(xi, np.transpose(wi, (2, 3, 1, 0)), [1, *strides, 1], "VALID", dilations=dil)
                       for xi, wi in zip(tf.split(xh, groups, axis=3), np.split(w, groups, axis=0), strict=True)],
                      axis=3)
    if a.get("bias") is not None:
        y = tf.nn.bias_add(y, np.asarray(a["bias"], np.float32))
    return tf.transpose(y, (0, 3, 1, 2))


def _unary(name: str, fn: Callable[[Any], Any]) -> None:
    TF_OPS[name] = lambda a: fn(a["x"])


def _register_simple() -> None:
    tf = _tf()
    _unary("relu", tf.nn.relu)
    _unary("relu6", lambda x: tf.clip_by_value(x, 0.0, 6.0))
    _unary("sigmoid", tf.sigmoid)
    _unary("silu", lambda x: x * tf.sigmoid(x))
    _unary("tanh", tf.tanh)
    _unary("exp", tf.exp)
    _unary("sqrt", tf.sqrt)
    _unary("abs", tf.abs)
    for name, fn in {"add": tf.add, "sub": tf.subtract, "mul": tf.multiply, "real_div": tf.divide,
                     "maximum": tf.maximum, "minimum": tf.minimum, "greater_equal": tf.greater_equal,
                     "greater": tf.greater, "less": tf.less, "equal": tf.equal}.items():
        TF_OPS[name] = lambda a, fn=fn: fn(_f(a["x"]), _f(a["y"]))


def _f(v):
    return np.asarray(v, np.float32) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v


@tf_op("clip")
def _clip(a):
    return _tf().clip_by_value(a["x"], float(a["alpha"]), float(a["beta"]))


@tf_op("sigmoid_hard")
def _hsig(a):
    alpha = 0.2 if a.get("alpha") is None else float(a["alpha"])
    beta = 0.5 if a.get("beta") is None else float(a["beta"])
    return _tf().clip_by_value(alpha * a["x"] + beta, 0.0, 1.0)


@tf_op("reshape")
def _reshape(a):
    return _tf().reshape(a["x"], [int(s) for s in np.atleast_1d(a["shape"])])


@tf_op("transpose")
def _transpose(a):
    return _tf().transpose(a["x"], [int(p) for p in np.atleast_1d(a["perm"])])


@tf_op("concat")
def _concat(a):
    if a.get("interleave"):
        raise NotImplementedError
    return _tf().concat([_f(v) for v in a["values"]], axis=int(a["axis"]))


@tf_op("stack")
def _stack(a):
    return _tf().stack([_f(v) for v in a["values"]], axis=int(a["axis"]))


def _make_reduce(fn_name: str):
    def run(a):
        tf = _tf()
        axes = None if a.get("axes") is None else [int(i) for i in np.atleast_1d(a["axes"])]
        return getattr(tf, fn_name)(a["x"], axis=axes, keepdims=bool(a.get("keep_dims") or False))

    return run


for _n, _t in {"reduce_mean": "reduce_mean", "reduce_sum": "reduce_sum", "reduce_max": "reduce_max",
               "reduce_min": "reduce_min"}.items():
    TF_OPS[_n] = _make_reduce(_t)


@tf_op("softmax")
def _softmax(a):
    return _tf().nn.softmax(a["x"], axis=int(a.get("axis") if a.get("axis") is not None else -1))


@tf_op("matmul")
def _matmul(a):
    return _tf().linalg.matmul(_f(a["x"]), _f(a["y"]), transpose_a=bool(a.get("transpose_x") or False),
                               transpose_b=bool(a.get("transpose_y") or False))


@tf_op("linear")
def _linear(a):
    tf = _tf()
    y = tf.linalg.matmul(a["x"], np.asarray(a["weight"], np.float32), transpose_b=True)
    return y + np.asarray(a["bias"], np.float32) if a.get("bias") is not None else y


@tf_op("pad")
def _pad(a):
    tf = _tf()
    x = a["x"]
    p = np.atleast_1d(a["pad"]).astype(int).reshape(-1, 2)
    widths = [[0, 0]] * (len(x.shape) - len(p)) + [list(map(int, r)) for r in p]
    mode = a.get("mode") or "constant"
    if mode == "constant":
        return tf.pad(x, widths, constant_values=float(a.get("constant_val") or 0.0))
    if mode == "reflect":
        return tf.pad(x, widths, mode="REFLECT")
    raise NotImplementedError(f"pad mode {mode}")  # the eager path handles it


@tf_op("cast")
def _cast(a):
    tf = _tf()
    dtype = str(a["dtype"])
    x = a["x"]
    if dtype in ("fp16", "fp32"):
        return tf.cast(x, tf.float32)  # rounding to fp16 happens after every op, as in the eager path
    if dtype == "bool":
        return tf.cast(x, tf.bool)
    raise NotImplementedError(dtype)


_register_simple()


def compile_program(ops: list[Any], consts: dict[str, np.ndarray], inputs: dict[str, Any], outputs: list[str],
                    nptype: Callable[[Any], Any], watch: bool = True) -> Callable | None:
    """A traced runner ``feeds -> (outputs, watch counts)``, or None when an op has no TensorFlow twin."""
    if any(o.op_type not in TF_OPS for o in ops):
        return None
    tf = _tf()
    fp16_ops = [o for o in ops for v in o.outputs if nptype(v) == np.float16]

    def value(var, env):
        if var.name in env:
            return env[var.name]
        if var.name in consts:
            return consts[var.name]
        v = np.asarray(var.val)
        return str(v.item()) if v.dtype.kind in "USO" and v.ndim == 0 else v

    @tf.function(autograph=False, reduce_retracing=True)
    def run(feeds):
        env = {}
        for name, var in inputs.items():
            x = tf.cast(feeds[name], tf.float32)
            env[name] = tf.cast(tf.cast(x, tf.float16), tf.float32) if nptype(var) == np.float16 else x
        counts = []
        for o in ops:
            args = {k: [value(x, env) for x in v] if isinstance(v, (list, tuple)) else value(v, env)
                    for k, v in o.inputs.items()}
            res = TF_OPS[o.op_type](args)
            res = res if isinstance(res, (list, tuple)) else (res,)
            for var, r in zip(o.outputs, res, strict=True):
                if nptype(var) == np.float16 and r.dtype.is_floating:
                    r32 = tf.cast(r, tf.float32)
                    out = tf.cast(tf.cast(r32, tf.float16), tf.float32)
                    env[var.name] = out
                    if not watch:
                        continue
                    inf = tf.math.is_inf(out)
                    counts.append(tf.stack([  # three passes: overflow, underflow, non-finite (origin found on host)
                        tf.reduce_sum(tf.cast(inf & tf.math.is_finite(r32), tf.float32)),
                        tf.reduce_sum(tf.cast((r32 != 0) & (out == 0), tf.float32)),
                        tf.reduce_sum(tf.cast(inf | tf.math.is_nan(out), tf.float32)),
                    ]))
                else:
                    env[var.name] = tf.cast(r, tf.float32) if r.dtype.is_floating else r
        return {n: env[n] for n in outputs}, tf.stack(counts) if counts else tf.zeros((0, 3))

    run.fp16_ops = fp16_ops  # type: ignore[attr-defined]
    return run
