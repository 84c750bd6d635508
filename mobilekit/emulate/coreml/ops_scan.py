"""Scans, sorts and log-domain reductions: ``cumsum``, ``topk``, ``reduce_log_sum_exp`` and ``softsign``.

They come from Keras activations (``sparsemax`` sorts and cumulates, ``log_softmax`` is a log-sum-exp) and from
heads that rank candidates in the graph. Each op is written once on TensorFlow tensors and registered for both
paths: the op-by-op reference (numpy in, numpy out) and the traced graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mobilekit.emulate.coreml.graph import tf_op
from mobilekit.emulate.coreml.ops_nn import conv_transpose_nchw
from mobilekit.emulate.coreml.registry import f32, op


def _both(name: str) -> Callable[[Callable[[dict[str, Any]], Any]], Callable[[dict[str, Any]], Any]]:
    """Register a TensorFlow implementation as the graph twin, and its numpy result as the reference op."""

    def deco(fn: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
        tf_op(name)(fn)

        def reference(a: dict[str, Any]) -> Any:
            r = fn({k: f32(v) if isinstance(v, np.ndarray) else v for k, v in a.items()})
            return tuple(t.numpy() for t in r) if isinstance(r, tuple) else r.numpy()

        op(name)(reference)
        return fn

    return deco


def _tf():
    import tensorflow as tf

    return tf


@_both("reduce_log_sum_exp")
def reduce_log_sum_exp(a):
    axes = None if a.get("axes") is None else [int(i) for i in np.atleast_1d(a["axes"])]
    return _tf().reduce_logsumexp(a["x"], axis=axes, keepdims=bool(a.get("keep_dims") or False))


@_both("softsign")
def softsign(a):
    return _tf().nn.softsign(a["x"])


@_both("cumsum")
def cumsum(a):
    return _tf().math.cumsum(a["x"], axis=int(a.get("axis") or 0), exclusive=bool(a.get("exclusive") or False),
                             reverse=bool(a.get("reverse") or False))


@_both("topk")
def topk(a):
    """The k largest (or smallest, ``ascending``) along ``axis``, values then int32 indices; ties keep the lower
    index first, as a stable sort does."""
    tf = _tf()
    x = tf.convert_to_tensor(a["x"])
    axis = int(a.get("axis") if a.get("axis") is not None else -1) % len(x.shape)
    k = int(a.get("k") if a.get("k") is not None else 1)
    k = int(x.shape[axis]) if k == -1 else k
    perm = [i for i in range(len(x.shape)) if i != axis] + [axis]
    xt = tf.transpose(x, perm)
    values, indices = tf.math.top_k(-xt if a.get("ascending") else xt, k=k, sorted=True)
    values = -values if a.get("ascending") else values
    back = np.argsort(perm).tolist()
    if a.get("return_indices") is False:  # iOS 16+: values only
        return tf.transpose(values, back)
    return tf.transpose(values, back), tf.cast(tf.transpose(indices, back), tf.int32)


@tf_op("conv_transpose")
def _conv_transpose(a):
    return conv_transpose_nchw(a["x"], a["weight"], a.get("bias"), a)
