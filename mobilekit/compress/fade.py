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
    :func:`_curve`, and :meth:`finish` sets them to exactly zero."""

    def __init__(self, model: Any, plan: PrunePlan, graph: Graph) -> None:
        self.targets = _targets(model, plan, graph)
        self.level = 1.0

    def _scale(self, factor: float) -> None:
        for t in self.targets:
            shape = [1] * len(t.variable.shape)
            shape[t.axis] = t.variable.shape[t.axis]
            mask = np.ones(t.variable.shape[t.axis], np.float32)
            mask[t.drop] = factor
            t.variable.assign(np.asarray(t.variable) * mask.reshape(shape))

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
