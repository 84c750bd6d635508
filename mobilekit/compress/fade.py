"""Gradual structured pruning: the channels a plan removes fade to zero while the full model is distilled.

Removing a third of every layer's channels at once can wreck a model that has little redundancy (a small detector
trained on few images loses all of its mAP, and must then relearn almost from scratch). Fading them instead scales
what the doomed channels carry — producer filters and biases, BatchNorm scale and shift, depthwise filters — down
to zero over the first part of the fine-tuning budget, while distillation lets the rest of the network take over
their work step by step. At the end they carry exactly nothing, so removing them (:func:`prune.apply`) leaves the
model's function unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mobilekit.compress.channels import Graph
from mobilekit.compress.prune import PrunePlan


@dataclass
class _Target:
    variable: Any
    axis: int
    drop: np.ndarray  # indices along ``axis`` that fade


def _targets(model: Any, plan: PrunePlan, graph: Graph) -> list[_Target]:
    """Every trainable weight that carries a removed channel, with the axis it carries it on."""
    out: list[_Target] = []
    groups = graph.groups()
    for root, keep in plan.keep.items():
        g = groups[root]
        drop = np.setdiff1d(np.arange(g.size), keep)
        if not len(drop):
            continue
        for name in g.producers:
            layer = model.get_layer(name)
            weights = layer.trainable_weights
            if type(layer).__name__ == "SeparableConv2D":
                weights = weights[1:]  # the depthwise kernel is indexed by input channels
            out += [_Target(w, len(w.shape) - 1, drop) for w in weights if w.shape[-1] == g.size]
        for name in g.channelwise:
            layer = model.get_layer(name)
            for w in layer.trainable_weights:
                if len(w.shape) == 4:  # a depthwise kernel (kh, kw, channels, multiplier)
                    out.append(_Target(w, 2, drop))
                elif w.shape[-1] == g.size:
                    out.append(_Target(w, len(w.shape) - 1, drop))
    return out


def _curve(progress: float) -> float:
    """How much of the removed channels is left: a cubic decay, steep early while the network adapts best."""
    return float((1.0 - min(max(progress, 0.0), 1.0)) ** 3)


class Fader:
    """Called with the fine-tune's progress (0 → 1) after each step; rescales the removed channels to follow
    :func:`_curve`, and :meth:`finish` sets them to exactly zero. The rescaling is one compiled TensorFlow call per
    step (a numpy round trip of every weight would cost more than the training step itself)."""

    def __init__(self, model: Any, plan: PrunePlan, graph: Graph) -> None:
        import tensorflow as tf

        self.targets = _targets(model, plan, graph)
        self.level = 1.0
        variables, drops = [], []
        for t in self.targets:
            shape = [1] * len(t.variable.shape)
            shape[t.axis] = t.variable.shape[t.axis]
            drop = np.zeros(t.variable.shape[t.axis], np.float32)
            drop[t.drop] = 1.0
            v = t.variable
            variables.append(v if isinstance(v, tf.Variable) else v.value)  # Keras 3 wraps a tf.Variable
            drops.append(tf.constant(drop.reshape(shape)))

        @tf.function
        def scale(factor: Any) -> None:
            for v, d in zip(variables, drops, strict=True):
                v.assign(v * (1.0 - (1.0 - factor) * d))

        self._scale_fn = scale

    def _scale(self, factor: float) -> None:
        import tensorflow as tf

        self._scale_fn(tf.constant(factor, tf.float32))

    def __call__(self, progress: float) -> None:
        level = _curve(progress)
        if level < self.level:
            self._scale(level / self.level if self.level > 0 else 0.0)
            self.level = level

    def finish(self) -> None:
        self._scale(0.0)
        self.level = 0.0

    @property
    def weights(self) -> int:
        return len(self.targets)
