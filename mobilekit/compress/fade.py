"""Gradual structured pruning: the channels a plan removes fade to zero while the full model is distilled.

Removing a third of every layer's channels at once can wreck a model that has little redundancy (a small detector
trained on few images loses all of its mAP, and must then relearn almost from scratch). Fading them instead scales
what the doomed channels carry — producer filters and biases, BatchNorm scale and shift, depthwise filters — down
to zero over the first part of the fine-tuning budget, while distillation lets the rest of the network take over
their work step by step. At the end they carry exactly nothing, so removing them (:func:`prune.apply`) leaves the
model's function unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mobilekit.compress.channels import Graph
from mobilekit.compress.prune import PrunePlan


def _targets(model: Any, plan: PrunePlan, graph: Graph) -> list[tuple[Any, np.ndarray]]:
    """Every trainable weight that carries a removed channel, with a mask shaped to broadcast over it: 1 where a
    removed channel sits on the axis that carries it, 0 elsewhere."""
    out: list[tuple[Any, np.ndarray]] = []

    def add(w: Any, axis: int, drop: np.ndarray) -> None:
        shape = [1] * len(w.shape)
        shape[axis] = w.shape[axis]
        mask = np.zeros(w.shape[axis], np.float32)
        mask[drop] = 1.0
        out.append((w, mask.reshape(shape)))

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
            for w in weights:
                if w.shape[-1] == g.size:
                    add(w, len(w.shape) - 1, drop)
        for name in g.channelwise:
            for w in model.get_layer(name).trainable_weights:
                if len(w.shape) == 4:  # a depthwise kernel (kh, kw, channels, multiplier)
                    add(w, 2, drop)
                elif w.shape[-1] == g.size:
                    add(w, len(w.shape) - 1, drop)
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

        targets = _targets(model, plan, graph)
        self.weights = len(targets)
        self.level = 1.0
        # Keras 3 wraps a tf.Variable; tf_keras weights are tf.Variables
        variables = [v if isinstance(v, tf.Variable) else v.value for v, _ in targets]
        masks = [tf.constant(m) for _, m in targets]

        @tf.function
        def scale(factor: Any) -> None:
            for v, d in zip(variables, masks, strict=True):
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
