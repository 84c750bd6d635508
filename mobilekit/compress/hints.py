"""Feature hints: after structured pruning, each kept channel learns to carry what it carried in the original.

Output matching gives a pruned detector one signal per candidate at the very end of the network; most of what it
lost is inside. Structured pruning keeps a subset of the original channels, so every BatchNorm output of the pruned
model has an exact counterpart in the teacher (its kept channels, ``PrunePlan.keep``), and each can be pulled back
toward it — the feature reconstruction channel pruning methods rely on, here as a loss beside distillation.

Each hint is the standardized gap ``(student - teacher[kept]) / std(teacher)``, computed in the training graph (the
teacher runs frozen beside the student: its features at 224² are too large to precompute for every image), and
trained toward zero with weight ``hint_weight / number of hints``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mobilekit.compress.channels import Graph
from mobilekit.compress.probe import layer_outputs
from mobilekit.compress.prune import PrunePlan

STD_IMAGES = 32  # images the teacher's per-channel spread is measured on
STD_FLOOR = 1e-3  # relative to the layer's largest spread: near-constant channels are not blown up


@dataclass
class Hint:
    layer: str  # a BatchNormalization layer, same name in student and teacher
    student: np.ndarray | None  # channels of the student's output to read (None: all of them)
    teacher: np.ndarray | None  # channels of the teacher's output they correspond to (None: all)


def hints_for(graph: Graph, plan: PrunePlan, cut: bool) -> list[Hint]:
    """One hint per BatchNorm layer. ``cut``: the student has already lost the removed channels (else it is the
    full-width model whose removed channels are fading, and only its kept ones are compared)."""
    out = []
    for name in graph.order:
        use = graph.uses.get(name)
        if use is None or use.kind != "bn" or use.output is None:
            continue
        keep = plan.keep.get(graph.root(use.output))
        if keep is not None and len(keep) == graph.spaces[use.output].size:
            keep = None
        out.append(Hint(name, None if (keep is None or cut) else keep, keep))
    return out


def _spread(teacher: Any, keras: Any, hints: list[Hint], x: np.ndarray) -> list[np.ndarray]:
    s1 = [0.0] * len(hints)
    s2 = [0.0] * len(hints)
    n = [0] * len(hints)  # positions seen per layer (their resolutions differ)
    for outs in layer_outputs(teacher, keras, [h.layer for h in hints], x[:STD_IMAGES]):
        for k, o in enumerate(outs):
            o = o.astype(np.float64)
            s1[k] = s1[k] + o.sum(0)
            s2[k] = s2[k] + np.square(o).sum(0)
            n[k] += o.shape[0]
    out = []
    for h, a, b, m in zip(hints, s1, s2, n, strict=True):
        std = np.sqrt(np.maximum(b / m - np.square(a / m), 0.0))
        std = std if h.teacher is None else std[h.teacher]
        out.append(np.maximum(std, STD_FLOOR * std.max() + 1e-12).astype(np.float32))
    return out


def training_model(student: Any, teacher: Any, keras: Any, hints: list[Hint], x: np.ndarray, weight: float
                   ) -> tuple[Any, list[Any]]:
    """(model, losses): ``student``'s outputs followed by one standardized gap per hint, and the hint losses.
    Training the returned model trains ``student`` (they share layers); the teacher inside it is frozen."""
    import tensorflow as tf

    spreads = _spread(teacher, keras, hints, x)
    frozen = keras.Model(teacher.inputs, [teacher.get_layer(h.layer).output for h in hints], name="hint_teacher")
    frozen.trainable = False
    inp = student.inputs[0]
    t_feats = frozen(inp, training=False)
    t_feats = t_feats if isinstance(t_feats, (list, tuple)) else [t_feats]
    gaps = []
    for h, t, std in zip(hints, t_feats, spreads, strict=True):
        s_idx = None if h.student is None else tf.constant(h.student, tf.int32)
        t_idx = None if h.teacher is None else tf.constant(h.teacher, tf.int32)
        inv = tf.constant(1.0 / std, tf.float32)

        def gap(pair, s_idx=s_idx, t_idx=t_idx, inv=inv):
            s, t = pair
            s = s if s_idx is None else tf.gather(s, s_idx, axis=-1)
            t = t if t_idx is None else tf.gather(t, t_idx, axis=-1)
            return (tf.cast(s, tf.float32) - tf.stop_gradient(tf.cast(t, tf.float32))) * inv

        gaps.append(keras.layers.Lambda(gap, name=f"hint_{h.layer}")([student.get_layer(h.layer).output, t]))
    outs = student.outputs + gaps
    each = weight / max(len(hints), 1)

    def loss(y_true, y_pred):
        return each * tf.reduce_mean(tf.square(y_pred))

    return keras.Model(inp, outs), [loss] * len(gaps)
