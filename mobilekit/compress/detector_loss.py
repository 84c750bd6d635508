"""The losses a compressed detector is fine-tuned with: the teacher's boxes and scores, and the labelled boxes
when the training images have them.

Every candidate is weighted by how sure the teacher is that an object is there (its best class probability over
the mean; plus one for scores, plus 0.05 for boxes). Most candidates are background; unweighted, their easy
agreement drowns the few that decide the detections: a pruned coco128 detector distilled for 382 steps reached
mAP@0.5 2.1 with unweighted scores and 4.9 weighted.

Ground truth (see ``truth``) adds an L1 box loss over the positive candidates and a class loss over all of them,
the positives' class terms weighted up by the negatives-to-positives ratio (capped at ``POS_WEIGHT_CAP``).

Targets are packed candidate-major, ``[B, N, K]``, whatever the model's layout; a transposed head's predictions
(``[B, K, N]``) are transposed inside the loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mobilekit.compress.truth import Targets
from mobilekit.heads.base import activate

POS_WEIGHT_CAP = 10.0
# what a candidate the teacher thinks empty still weighs, on top of its relative confidence: its score says "no
# object" and must stay so; its box is never shown
SCORE_FLOOR, BOX_FLOOR = 1.0, 0.05


def spread(t: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Per-channel standard deviation of a teacher output over ``axes``, floored at a thousandth of its largest
    magnitude: the unit errors are measured in, so no channel dominates by scale and none divides by ~0."""
    return np.maximum(t.std(axis=axes), 1e-3 * (np.abs(t).max() + 1e-6)).astype(np.float32)


def _candidates_last(pred: Any, transposed: bool) -> Any:
    import tensorflow as tf

    pred = tf.cast(pred, tf.float32)
    return tf.transpose(pred, [0, 2, 1]) if transposed else pred


def _class_ce(activation: str, target: Any, pred: Any, positive_weight: float = 1.0) -> Any:
    """Cross-entropy per candidate (summed over classes) of predictions in the head's own activation."""
    import tensorflow as tf

    if activation == "softmax":
        return tf.nn.softmax_cross_entropy_with_logits(target, pred, axis=-1)
    if activation == "sigmoid":
        ce = tf.nn.weighted_cross_entropy_with_logits(labels=target, logits=pred, pos_weight=positive_weight)
    else:  # already probabilities
        p = tf.clip_by_value(pred, 1e-6, 1.0 - 1e-6)
        ce = -(positive_weight * target * tf.math.log(p) + (1.0 - target) * tf.math.log(1.0 - p))
    return tf.reduce_sum(ce, axis=-1)


def box_loss(std: np.ndarray, transposed: bool, label_weight: float, truth: bool) -> Callable[[Any, Any], Any]:
    """Teacher: squared error in units of the teacher's per-coordinate spread, weighted per candidate.
    Truth: L1 in the same units, averaged over the positive candidates."""
    import tensorflow as tf

    inv = tf.constant(1.0 / std, tf.float32)

    def loss(y_true, y_pred):
        pred = _candidates_last(y_pred, transposed)
        t, w = y_true[..., :4], y_true[..., 4]
        out = tf.reduce_mean(w * tf.reduce_sum(tf.square((pred - t) * inv), axis=-1))
        if truth:
            g, pos = y_true[..., 5:9], y_true[..., 9]
            l1 = tf.reduce_sum(tf.abs((pred - g) * inv), axis=-1) * pos
            out += label_weight * tf.reduce_sum(l1) / (tf.reduce_sum(pos) + 1.0)
        return out

    return loss


def score_loss(activation: str, transposed: bool, columns: int, label_weight: float, positive_weight: float,
               truth: bool) -> Callable[[Any, Any], Any]:
    """Teacher: cross-entropy against its probabilities, weighted per candidate. Truth: cross-entropy against the
    labelled class (background where no object is matched)."""
    import tensorflow as tf

    c = columns

    def loss(y_true, y_pred):
        pred = _candidates_last(y_pred, transposed)
        t, w = y_true[..., :c], y_true[..., c]
        out = tf.reduce_mean(w * _class_ce(activation, t, pred))
        if truth:
            g, pos = y_true[..., c + 1:2 * c + 1], y_true[..., 2 * c + 1]
            ce = _class_ce(activation, g, pred, positive_weight)
            if activation == "softmax":  # one class per candidate: weigh the positive candidates instead
                ce = ce * (1.0 + (positive_weight - 1.0) * pos)
            out += label_weight * tf.reduce_mean(ce)
        return out

    return loss


def _teacher_confidence(probs: np.ndarray, background: bool) -> np.ndarray:
    """Each candidate's best class probability over the mean: ``[B, N, 1]``."""
    fg = probs[..., 1:] if background else probs
    conf = fg.max(axis=-1)
    return (conf / (conf.mean() + 1e-9)).astype(np.float32)[..., None]


def pack(outputs: list[np.ndarray], roles: list[str], activation: str, transposed: bool, background: bool,
         label_weight: float, truth: Targets | None) -> tuple[list[np.ndarray], list[Any]]:
    """(targets, losses), one per role output, from the teacher's raw outputs (and the ground-truth targets)."""
    moved = [np.swapaxes(o, 1, 2) if transposed else o for o in outputs]
    probs = activate(moved[roles.index("scores")], activation).astype(np.float32)
    confidence = _teacher_confidence(probs, background)
    positive_weight = 1.0
    if truth is not None:
        pos = float(truth.positive.sum())
        positive_weight = float(np.clip((truth.positive.size - pos) / max(pos, 1.0), 1.0, POS_WEIGHT_CAP))
    targets, losses = [], []
    for role, t in zip(roles, moved, strict=True):
        if role == "boxes":
            std = spread(t, (0, 1))
            parts = [t, confidence + BOX_FLOOR]
            parts += [truth.boxes, truth.positive[..., None]] if truth is not None else []
            losses.append(box_loss(std, transposed, label_weight, truth is not None))
        else:  # class scores, or a head's objectness output (its own probabilities; no class truth for it)
            p = probs if role == "scores" else activate(t, activation).astype(np.float32)
            labelled = truth is not None and role == "scores"
            parts = [p, confidence + SCORE_FLOOR]
            parts += [truth.classes, truth.positive[..., None]] if labelled else []
            losses.append(score_loss(activation, transposed, p.shape[-1], label_weight, positive_weight, labelled))
        targets.append(np.concatenate(parts, axis=-1).astype(np.float32))
    return targets, losses
