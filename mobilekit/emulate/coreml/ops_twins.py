"""TensorFlow twins of reference ops, so the programs that use them take the traced fast path.

The op-by-op reference (``ops_*.py``) stays the specification; each twin here computes the same thing on tensors
(``tests/test_coreml_catalogue.py`` runs every catalogue program on both paths against TensorFlow). Without a twin
a whole program falls back to the reference path: UpSampling2D's ``tile`` alone did that to every FPN detector.
"""

from __future__ import annotations

import math

import numpy as np

from mobilekit.emulate.coreml.graph import tf_op
from mobilekit.emulate.coreml.ops_nn import pool_nchw


def _tf():
    import tensorflow as tf

    return tf


def _axes(v) -> list[int] | None:
    return None if v is None else [int(i) for i in np.atleast_1d(v)]


@tf_op("tile")
def _tile(a):
    return _tf().tile(a["x"], [int(r) for r in np.atleast_1d(a["reps"])])


@tf_op("expand_dims")
def _expand_dims(a):
    tf = _tf()
    x = a["x"]
    rank = len(x.shape) + len(np.atleast_1d(a["axes"]))
    for ax in sorted(int(v) % rank for v in np.atleast_1d(a["axes"])):
        x = tf.expand_dims(x, ax)
    return x


@tf_op("squeeze")
def _squeeze(a):
    return _tf().squeeze(a["x"], axis=_axes(a.get("axes")))


@tf_op("split")
def _split(a):
    tf = _tf()
    axis = int(a["axis"])
    if a.get("split_sizes") is not None:
        return tuple(tf.split(a["x"], [int(s) for s in np.atleast_1d(a["split_sizes"])], axis=axis))
    return tuple(tf.split(a["x"], int(a["num_splits"]), axis=axis))


@tf_op("select")
def _select(a):
    tf = _tf()
    cond = tf.cast(a["cond"], tf.bool)
    x, y = tf.cast(a["a"], tf.float32), tf.cast(a["b"], tf.float32)
    shape = tf.broadcast_dynamic_shape(tf.broadcast_dynamic_shape(tf.shape(cond), tf.shape(x)), tf.shape(y))
    return tf.where(tf.broadcast_to(cond, shape), tf.broadcast_to(x, shape), tf.broadcast_to(y, shape))


@tf_op("square")
def _square(a):
    return _tf().square(a["x"])


@tf_op("rsqrt")
def _rsqrt(a):
    tf = _tf()
    eps = 1e-12 if a.get("epsilon") is None else float(a["epsilon"])
    return tf.math.rsqrt(a["x"] + eps)


@tf_op("softplus")
def _softplus(a):
    return _tf().nn.softplus(a["x"])


@tf_op("less_equal")
def _less_equal(a):
    tf = _tf()
    return tf.less_equal(tf.cast(a["x"], tf.float32), tf.cast(a["y"], tf.float32))


@tf_op("leaky_relu")
def _leaky_relu(a):
    tf = _tf()
    alpha = 0.01 if a.get("alpha") is None else float(a["alpha"])
    return tf.where(a["x"] >= 0, a["x"], alpha * a["x"])


@tf_op("elu")
def _elu(a):
    tf = _tf()
    alpha = 1.0 if a.get("alpha") is None else float(a["alpha"])
    return tf.where(a["x"] > 0, a["x"], alpha * (tf.exp(tf.minimum(a["x"], 0.0)) - 1))


@tf_op("prelu")
def _prelu(a):
    tf = _tf()
    x = a["x"]
    alpha = np.asarray(a["alpha"], np.float32).reshape([1, -1] + [1] * (len(x.shape) - 2))
    return tf.where(x >= 0, x, alpha * x)


@tf_op("gelu")
def _gelu(a):
    tf = _tf()
    x = a["x"]
    mode = a.get("mode") or "EXACT"
    if mode == "EXACT":
        return 0.5 * x * (1 + tf.math.erf(x / math.sqrt(2)))
    if mode == "SIGMOID_APPROXIMATION":
        return x * tf.sigmoid(1.702 * x)
    return 0.5 * x * (1 + tf.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


tf_op("max_pool")(lambda a: pool_nchw(a["x"], a, "max_pool"))
tf_op("avg_pool")(lambda a: pool_nchw(a["x"], a, "avg_pool"))
