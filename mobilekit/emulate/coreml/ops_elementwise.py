"""Element-wise MIL ops: activations, unary math and broadcasting binary ops."""

from __future__ import annotations

import numpy as np

from mobilekit.emulate.coreml.registry import f32, op


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(x, -88.0, 88.0)))).astype(np.float32)


@op("relu")
def relu(a):
    return np.maximum(f32(a["x"]), 0)


@op("relu6")
def relu6(a):
    return np.clip(f32(a["x"]), 0, 6)


@op("clip")
def clip(a):
    return np.minimum(np.maximum(f32(a["x"]), f32(a["alpha"])), f32(a["beta"]))


@op("sigmoid")
def sigmoid(a):
    return _sigmoid(f32(a["x"]))


@op("sigmoid_hard")
def sigmoid_hard(a):
    alpha = 0.2 if a.get("alpha") is None else float(a["alpha"])
    beta = 0.5 if a.get("beta") is None else float(a["beta"])
    return np.clip(alpha * f32(a["x"]) + beta, 0, 1)


@op("silu")
def silu(a):
    x = f32(a["x"])
    return x * _sigmoid(x)


@op("tanh")
def tanh(a):
    return np.tanh(f32(a["x"]))


@op("leaky_relu")
def leaky_relu(a):
    x = f32(a["x"])
    alpha = 0.01 if a.get("alpha") is None else float(a["alpha"])
    return np.where(x >= 0, x, alpha * x)


@op("prelu")
def prelu(a):
    """Per-channel slope on the channel axis (axis 1 of ``[B, C, ...]``) for negative inputs."""
    x = f32(a["x"])
    alpha = f32(a["alpha"]).reshape([1, -1] + [1] * (x.ndim - 2))
    return np.where(x >= 0, x, alpha * x)


@op("elu")
def elu(a):
    x = f32(a["x"])
    alpha = 1.0 if a.get("alpha") is None else float(a["alpha"])
    return np.where(x > 0, x, alpha * (np.exp(np.minimum(x, 0)) - 1))


@op("softplus")
def softplus(a):
    return np.logaddexp(0, f32(a["x"])).astype(np.float32)


@op("gelu")
def gelu(a):
    from math import erf, pi, sqrt

    x = f32(a["x"])
    if (a.get("mode") or "EXACT") == "EXACT":
        return (0.5 * x * (1 + np.vectorize(erf)(x / sqrt(2)))).astype(np.float32)
    if a.get("mode") == "SIGMOID_APPROXIMATION":
        return x * _sigmoid(1.702 * x)
    return 0.5 * x * (1 + np.tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))


_UNARY = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs, "floor": np.floor, "ceil": np.ceil,
    "sign": np.sign, "square": np.square, "sin": np.sin, "cos": np.cos, "round": np.round,
}
for _name, _fn in _UNARY.items():
    op(_name)(lambda a, _fn=_fn: _fn(f32(a["x"])))


@op("rsqrt")
def rsqrt(a):
    eps = 1e-12 if a.get("epsilon") is None else float(a["epsilon"])
    return 1.0 / np.sqrt(f32(a["x"]) + eps)


@op("inverse")
def inverse(a):
    eps = 1e-4 if a.get("epsilon") is None else float(a["epsilon"])
    return 1.0 / (f32(a["x"]) + eps)


_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.divide, "maximum": np.maximum,
    "minimum": np.minimum, "pow": np.power, "floor_div": np.floor_divide, "mod": np.mod,
    "equal": np.equal, "not_equal": np.not_equal, "less": np.less, "less_equal": np.less_equal,
    "greater": np.greater, "greater_equal": np.greater_equal, "logical_and": np.logical_and,
    "logical_or": np.logical_or,
}
for _name, _fn in _BINARY.items():
    op(_name)(lambda a, _fn=_fn: _fn(f32(a["x"]), f32(a["y"])))


@op("select")
def select(a):
    return np.where(np.asarray(a["cond"]).astype(bool), f32(a["a"]), f32(a["b"]))
