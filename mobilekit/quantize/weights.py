"""Keras-side int8 preparation: the weights the converter will quantize, seen as it sees them, and changed before it.

The TFLite converter folds each BatchNormalization into the conv or dense layer before it, then quantizes the folded
kernel per output channel with ``scale = max|w| / 127``. A :class:`Unit` is that folded view of one layer (and its
BatchNorm): read it, change it, write it back into the Keras weights so the converter re-folds to exactly the
changed values (tested: the int8 kernel equals the rounding done here). Three techniques use it, each a switch in
``quantization:`` and measured alone in ``bench/quantization.py``:

- :func:`equalize` (cross-layer equalization, Nagel et al. 2019): scale channel ``i`` of a layer down by ``s_i``
  and the next layer's input channel ``i`` up by it, so both have the same per-channel range; the float function
  is unchanged (through ReLU, and through ReLU6 where the calibration images never reach the clip at the new scale).
- :func:`correct_bias` (bias correction): the rounding of each kernel shifts the mean of its outputs by
  ``(Q(W) - W) · E[x]``; subtracting that from the bias removes it (E[x] per input channel, over the calibration
  images, through the float model).
- :func:`adaround` (AdaRound, Nagel et al. 2020, layer-wise): each weight rounds up or down as learned on the
  calibration images to minimise the layer's output error, instead of to nearest; the result is written as
  already-rounded weights, which the converter keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

WEIGHTED = ("Conv2D", "DepthwiseConv2D", "Dense")
ACTIVATIONS = {"ReLU", "Activation"}
#: layers between a pair that commute with a positive per-channel scale (equalization looks through them)
TRANSPARENT = {"ZeroPadding2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "AveragePooling2D", "MaxPooling2D",
               "Dropout"}
QMAX = 127


@dataclass
class Unit:
    """A conv/dense layer and the BatchNorm folded into it; ``act`` is the activation after them ('relu',
    'relu6', 'linear' or None when unknown) and ``next`` the single weighted layer that reads it, if any."""

    layer: Any
    bn: Any | None
    act: str | None
    tail: str = ""  # the last layer of the unit (its activation, BatchNorm or itself): what the next one reads
    next: Unit | None = None

    @property
    def cls(self) -> str:
        return type(self.layer).__name__

    def _bn_affine(self) -> tuple[np.ndarray, np.ndarray]:
        """The BatchNorm as ``a * z + c`` per channel (identity without one)."""
        n = self.channels
        if self.bn is None:
            return np.ones(n), np.zeros(n)
        cfg = self.bn.get_config()
        w = {v.path.split("/")[-1] if hasattr(v, "path") else v.name.split("/")[-1].split(":")[0]: np.asarray(v)
             for v in self.bn.weights}
        gamma = w.get("gamma", np.ones(n)) if cfg.get("scale", True) else np.ones(n)
        beta = w.get("beta", np.zeros(n)) if cfg.get("center", True) else np.zeros(n)
        a = gamma / np.sqrt(w["moving_variance"] + cfg["epsilon"])
        return a.astype(np.float64), (beta - a * w["moving_mean"]).astype(np.float64)

    @property
    def channels(self) -> int:
        k = np.asarray(self.layer.weights[0])
        return k.shape[2] if self.cls == "DepthwiseConv2D" else k.shape[-1]

    def _kernel_oc(self) -> np.ndarray:
        """The kernel with output channels last (a depthwise kernel's (kh, kw, C, 1) → (kh, kw, C))."""
        k = np.asarray(self.layer.weights[0], np.float64)
        return k[..., 0] if self.cls == "DepthwiseConv2D" else k

    def _bias(self) -> np.ndarray:
        return np.asarray(self.layer.bias, np.float64) if getattr(self.layer, "use_bias", False) else \
            np.zeros(self.channels)

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        """Kernel (output channels last) and bias as the converter quantizes them."""
        a, c = self._bn_affine()
        return self._kernel_oc() * a, a * self._bias() + c

    def write(self, kernel: np.ndarray, bias: np.ndarray) -> None:
        """Store a folded kernel and bias: the kernel through the BatchNorm scale, the bias into the layer's bias
        or, with a BatchNorm and no bias, its beta."""
        a, c = self._bn_affine()
        safe = np.where(a == 0, 1.0, a)
        k = np.where(a == 0, self._kernel_oc(), kernel / safe)
        k = k[..., None] if self.cls == "DepthwiseConv2D" else k
        self.layer.weights[0].assign(k.astype(np.float32))
        if getattr(self.layer, "use_bias", False):
            self.layer.bias.assign(((bias - c) / safe).astype(np.float32))
        elif self.bn is not None:
            beta = next(v for v in self.bn.weights if "beta" in (getattr(v, "path", None) or v.name))
            shift = bias - (a * self._bias() + c)
            beta.assign((np.asarray(beta) + shift).astype(np.float32))


def quantized(kernel: np.ndarray) -> np.ndarray:
    """The converter's per-output-channel symmetric int8 rounding of a folded kernel (channels last)."""
    scale = _scale(kernel)
    return np.clip(np.round(kernel / scale), -QMAX, QMAX) * scale


def _scale(kernel: np.ndarray) -> np.ndarray:
    m = np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0)
    return np.where(m > 0, m / QMAX, 1.0)


# ---------------------------------------------------------------------------------------------------- the graph
def _act_of(layer: Any) -> str | None:
    cfg = layer.get_config()
    name = type(layer).__name__
    if name == "ReLU":
        if cfg.get("negative_slope", 0) or cfg.get("threshold", 0):
            return None
        mv = cfg.get("max_value")
        return "relu" if mv is None else ("relu6" if float(mv) == 6.0 else None)
    if name == "Activation":
        return {"relu": "relu", "relu6": "relu6", "linear": "linear"}.get(str(cfg.get("activation")))
    return None


def units(model: Any) -> list[Unit]:
    """Every conv/dense layer of a functional model (in graph order) with its folded BatchNorm, the activation
    after it and the single weighted layer it feeds (equalization pairs)."""
    from mobilekit.compress.channels import nodes_of

    nodes = nodes_of(model, model.get_config())
    consumers: dict[str, list[str]] = {n.name: [] for n in nodes}
    for n in nodes:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n.name)
    only = {k: v[0] for k, v in consumers.items() if len(v) == 1}
    layer = model.get_layer
    found: dict[str, Unit] = {}
    for n in nodes:
        if n.cls not in WEIGHTED or (n.cls == "DepthwiseConv2D" and n.config.get("depth_multiplier", 1) != 1):
            continue
        own = n.config.get("activation", "linear")
        tail, bn = n.name, None
        if own == "linear" and tail in only and layer(only[tail]).__class__.__name__ == "BatchNormalization":
            bn = layer(only[tail])
            tail = bn.name
        # a fused ReLU6 hides whether the clip is reached (its output is already clipped): not a pair end
        act: str | None = {"linear": "linear", "relu": "relu"}.get(own)
        if act == "linear" and tail in only and type(layer(only[tail])).__name__ in ACTIVATIONS:
            act = _act_of(layer(only[tail]))
            tail = only[tail] if act else tail
        found[n.name] = Unit(layer(n.name), bn, act, tail)
    for u in found.values():
        nxt = only.get(u.tail)
        while nxt is not None and type(layer(nxt)).__name__ in TRANSPARENT:
            nxt = only.get(nxt)
        if nxt in found and u.act in ("relu", "relu6", "linear"):
            u.next = found[nxt]
    return list(found.values())


# ------------------------------------------------------------------------------------------------- statistics
def channel_stats(model: Any, tensors: list[Any], inputs: Callable[[], Iterator[np.ndarray]],
                  reduce: str) -> list[np.ndarray]:
    """Per channel of each symbolic tensor of ``model``: the mean (``reduce='mean'``) or the max over the images."""
    import keras

    axes = lambda t: tuple(range(len(t.shape) - 1))  # noqa: E731 - every axis but the channels
    op = keras.ops.mean if reduce == "mean" else keras.ops.max
    probe = keras.Model(model.inputs, [op(t, axis=axes(t)) for t in tensors])
    acc: list[np.ndarray] | None = None
    n = 0
    for x in inputs():
        got = probe(x, training=False)
        got = [np.asarray(g, np.float64) for g in (got if isinstance(got, (list, tuple)) else [got])]
        if acc is None:
            acc = got
        else:
            acc = [a + g if reduce == "mean" else np.maximum(a, g) for a, g in zip(acc, got, strict=True)]
        n += 1
    assert acc is not None, "no calibration images"
    return [a / n for a in acc] if reduce == "mean" else acc


# ------------------------------------------------------------------------------------------------- techniques
def _in_axis_view(u: Unit, kernel: np.ndarray) -> np.ndarray:
    """The kernel with its input channels first (Conv2D HWIO → I..., DW HWC → C..., Dense IO → I...)."""
    if u.cls == "Conv2D":
        return np.moveaxis(kernel, 2, 0)
    if u.cls == "DepthwiseConv2D":
        return np.moveaxis(kernel, 2, 0)
    return kernel


def _scale_inputs(u: Unit, kernel: np.ndarray, s: np.ndarray) -> np.ndarray:
    view = _in_axis_view(u, kernel) * s.reshape(-1, *([1] * (kernel.ndim - 1)))
    return np.moveaxis(view, 0, 2) if u.cls in ("Conv2D", "DepthwiseConv2D") else view


def equalize(model: Any, us: list[Unit], inputs: Callable[[], Iterator[np.ndarray]], sweeps: int = 4
             ) -> dict[str, Any]:
    """Cross-layer equalization of every pair; returns how many pairs and channels were scaled, and how far."""
    pairs = [u for u in us if u.next is not None]
    if not pairs:
        return {"pairs": 0}
    maxima = channel_stats(model, [(u.bn or u.layer).output for u in pairs], inputs, "max")
    peak = {id(u): m for u, m in zip(pairs, maxima, strict=True)}
    spread_before = [_spread(u) for u in pairs]
    for _ in range(sweeps):
        for u in pairs:
            w1, b1 = u.folded()
            w2, b2 = u.next.folded()
            r1 = np.abs(w1).reshape(-1, w1.shape[-1]).max(axis=0)
            v = _in_axis_view(u.next, w2)
            r2 = np.abs(v).reshape(v.shape[0], -1).max(axis=1)
            ok = (r1 > 0) & (r2 > 0)
            s = np.where(ok, np.sqrt(np.where(ok, r1 / np.where(r2 > 0, r2, 1), 1.0)), 1.0)
            if u.act == "relu6":  # keep the clip where the images put it: only channels that never reach 6
                m = peak[id(u)]
                s = np.where(m > 6.0, 1.0, np.maximum(s, m / 6.0))
            u.write(w1 / s, b1 / s)
            u.next.write(_scale_inputs(u.next, w2, s), b2)
            peak[id(u)] = peak[id(u)] / s
    return {"pairs": len(pairs), "range_spread_before": float(np.median(spread_before)),
            "range_spread_after": float(np.median([_spread(u) for u in pairs]))}


def _spread(u: Unit) -> float:
    """max / median of a layer's per-output-channel weight range: what per-tensor int8 activations suffer from."""
    w, _ = u.folded()
    r = np.abs(w).reshape(-1, w.shape[-1]).max(axis=0)
    return float(r.max() / max(np.median(r), 1e-12))


def input_means(model: Any, us: list[Unit], inputs: Callable[[], Iterator[np.ndarray]]) -> list[np.ndarray]:
    return channel_stats(model, [u.layer.input for u in us], inputs, "mean")


def correct_bias(us: list[Unit], means: list[np.ndarray], originals: dict[int, tuple[np.ndarray, np.ndarray]]
                 ) -> dict[str, Any]:
    """Subtract each layer's expected output shift from its int8 rounding: ``(W_int8 - W) · E[x]``; ``originals``
    are the float folded weights (before any rounding written into the model)."""
    shifts = []
    for u, m in zip(us, means, strict=True):
        w0, b0 = originals[id(u)]
        w, _ = u.folded()
        dw = quantized(w) - w0
        if u.cls == "Conv2D":
            shift = np.einsum("hwio,i->o", dw, m)
        elif u.cls == "DepthwiseConv2D":
            shift = dw.sum(axis=(0, 1)) * m
        else:
            shift = m @ dw
        u.write(w, b0 - shift)
        shifts.append(float(np.max(np.abs(shift))))
    return {"layers": len(us), "max_abs_shift": max(shifts, default=0.0)}


#: AdaRound's rectified sigmoid stretch (the paper's zeta, gamma)
ZETA, GAMMA = 1.1, -0.1


def _layer_fn(u: Unit) -> Callable[[Any, Any], Any]:
    """The layer's linear part as a TensorFlow function of (input, folded kernel), for AdaRound's loss."""
    import tensorflow as tf

    cfg = u.layer.get_config()
    if u.cls == "Dense":
        return lambda x, k: tf.tensordot(x, k, axes=1)
    strides = [1, *cfg["strides"], 1]
    pad = cfg["padding"].upper()
    dil = list(cfg.get("dilation_rate", (1, 1)))
    if u.cls == "Conv2D":
        return lambda x, k: tf.nn.conv2d(x, k, strides, pad, dilations=dil)
    return lambda x, k: tf.nn.depthwise_conv2d(x, k[..., None], strides, pad, dilations=dil)


def adaround(model: Any, us: list[Unit], inputs: Callable[[], Iterator[np.ndarray]], images: int = 16,
             iters: int = 400, progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Learn each layer's rounding (up or down per weight) on its float inputs from ``images`` calibration
    images; the result is written as weights on the int8 grid, each channel's largest weight kept where the
    converter's scale puts it (so the scale is the same)."""
    import tensorflow as tf

    batch = np.concatenate([x for _, x in zip(range(images), inputs(), strict=False)])
    flipped, total = 0, 0
    for k, u in enumerate(us):
        progress(f"AdaRound {u.layer.name} ({k + 1} of {len(us)})")
        x = tf.constant(np.asarray(keras_input(model, u, batch), np.float32))
        w, b = u.folded()
        scale = _scale(w)
        ws = w / scale
        base = np.floor(ws)
        fixed = np.abs(ws) >= QMAX - 1e-6  # each channel's largest weight: stays, so max|w| (the scale) stays
        rest = np.clip(ws - base, 0.01, 0.99)
        v = tf.Variable(-np.log((ZETA - GAMMA) / (rest - GAMMA) - 1.0), dtype=tf.float32)
        f = _layer_fn(u)
        target = f(x, tf.constant(w, tf.float32))
        # the loss in units of round-to-nearest's error, so the rounding regulariser's weight means the same for
        # every layer (the paper's lambda = 0.01 against a reconstruction error that starts at 1)
        nearest_out = f(x, tf.constant(np.clip(np.round(ws), -QMAX, QMAX) * scale, tf.float32))
        norm = float(tf.reduce_mean(tf.square(nearest_out - target))) or 1.0
        s32, base32 = tf.constant(scale, tf.float32), tf.constant(base, tf.float32)
        fixed32, nearest = tf.constant(fixed), tf.constant(np.round(ws), tf.float32)
        step = _adaround_step(f, x, target, norm, v, s32, base32, fixed32, nearest)
        for i in range(iters):
            beta = 20.0 - 18.0 * max(0.0, (i - 0.2 * iters) / (0.8 * iters))  # annealed 20 → 2 after a warm-up
            step(tf.constant(beta), tf.constant(0.0 if i < 0.2 * iters else 0.01), tf.constant(float(i + 1)))
        h = np.clip(1 / (1 + np.exp(-v.numpy())) * (ZETA - GAMMA) + GAMMA, 0, 1)
        q = np.where(fixed, np.round(ws), np.clip(base + (h >= 0.5), -QMAX, QMAX))
        flipped += int(np.sum(q != np.clip(np.round(ws), -QMAX, QMAX)))
        total += q.size
        u.write(q * scale, b)
    return {"layers": len(us), "images": int(batch.shape[0]), "iterations": iters,
            "rounded_away_from_nearest": flipped / max(total, 1)}


def _adaround_step(f: Callable, x: Any, target: Any, norm: float, v: Any, scale: Any, base: Any, fixed: Any,
                   nearest: Any, lr: float = 1e-2) -> Callable:
    """One Adam step on the rounding variables (written out: two moments, no optimizer object to track)."""
    import tensorflow as tf

    m1, m2 = tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v))

    @tf.function
    def step(beta: Any, lam: Any, t: Any) -> None:
        with tf.GradientTape() as tape:
            h = tf.clip_by_value(tf.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)
            q = tf.where(fixed, nearest, tf.clip_by_value(base + h, -QMAX, QMAX))
            rec = tf.reduce_mean(tf.square(f(x, q * scale) - target)) / norm
            reg = tf.reduce_mean(1.0 - tf.pow(tf.abs(2.0 * h - 1.0), beta))
            loss = rec + lam * reg
        g = tape.gradient(loss, v)
        m1.assign(0.9 * m1 + 0.1 * g)
        m2.assign(0.999 * m2 + 0.001 * g * g)
        v.assign_sub(lr * (m1 / (1 - 0.9 ** t)) / (tf.sqrt(m2 / (1 - 0.999 ** t)) + 1e-8))

    return step


def keras_input(model: Any, u: Unit, batch: np.ndarray) -> np.ndarray:
    """The layer's input on ``batch`` through the (current) float model."""
    import keras

    return np.asarray(keras.Model(model.inputs, u.layer.input)(batch, training=False))


def prepare(model: Any, equalize_: bool, bias: bool, ada: dict[str, int] | None,
            inputs: Callable[[], Iterator[np.ndarray]], progress: Callable[[str], None] = lambda s: None
            ) -> dict[str, Any]:
    """Apply the switched-on techniques in their order (equalize, AdaRound, bias correction) to ``model``'s
    weights in place; what each did. ``ada``: AdaRound's ``images`` and ``iterations``, or None."""
    us = units(model)
    done: dict[str, Any] = {"layers": len(us)}
    if equalize_:
        progress("Cross-layer equalization")
        done["equalize"] = equalize(model, us, inputs)
    originals = {id(u): u.folded() for u in us}
    means = input_means(model, us, inputs) if bias else []  # before rounding: the float model's E[x]
    if ada is not None:
        done["adaround"] = adaround(model, us, inputs, ada["images"], ada["iterations"], progress)
    if bias:
        progress("Bias correction")
        done["bias_correction"] = correct_bias(us, means, originals)
    return done
