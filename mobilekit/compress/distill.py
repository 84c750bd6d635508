"""Distillation, the fine-tuning engine of every compression stage that trains.

The original float model is the teacher; the compressed model learns to reproduce its outputs on the calibration
images (and their mirror images), so no labels are needed. Detector outputs (boxes and scores, concatenated or not)
get their own losses (``detector_loss``), plus the labelled boxes when the images have them. Classifier outputs are
matched as log-probabilities (logits), plus cross-entropy on the labels when the config gives a labelled set.
Training uses ``fit`` so tensorflow-model-optimization's callbacks (the pruning step) run as they must; a time budget
stops it early, and the learning rate decays (cosine) over whichever of the steps or the time runs out first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mobilekit.compress import detector_loss, hints
from mobilekit.config import DistillSettings


@dataclass
class DistillReport:
    epochs: int
    steps: int
    seconds: float
    loss_first: float
    loss_last: float
    labels: str = "none"  # what ground truth trained beside the teacher: none | classes | boxes

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "steps": self.steps, "seconds": round(self.seconds, 1),
                "loss_first": self.loss_first, "loss_last": self.loss_last, "labels": self.labels}


def _as_list(y: Any) -> list[np.ndarray]:
    return [np.asarray(t) for t in y] if isinstance(y, (list, tuple)) else [np.asarray(y)]


def _predict(model: Any, x: np.ndarray, batch: int) -> list[np.ndarray]:
    outs = [_as_list(model(x[i:i + batch], training=False)) for i in range(0, len(x), batch)]
    return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]


def _standardized_mse(keras: Any, std: np.ndarray) -> Any:
    import tensorflow as tf

    inv = tf.constant(1.0 / std, tf.float32)

    def loss(y_true, y_pred):
        return tf.reduce_mean(tf.square((tf.cast(y_pred, tf.float32) - y_true) * inv))

    return loss


def _logit_match(std: np.ndarray, logits: bool, label_weight: float) -> Any:
    """Classifier loss: standardized MSE between log-probabilities (or logits) of student and teacher — logit
    matching, which keeps a useful gradient where the teacher's probabilities are flat — plus cross-entropy on the
    labels where the target row carries one (``y_true`` = teacher's values, one-hot label, has-label flag)."""
    import tensorflow as tf

    inv = tf.constant(1.0 / std, tf.float32)
    c = std.shape[-1]

    def loss(y_true, y_pred):
        y_pred = tf.cast(y_pred, tf.float32)
        log_p = tf.nn.log_softmax(y_pred) if logits else tf.math.log(tf.clip_by_value(y_pred, 1e-7, 1.0))
        z = log_p - tf.reduce_mean(log_p, axis=-1, keepdims=True)  # centred: what logits are up to a constant
        teacher, onehot, has = y_true[:, :c], y_true[:, c:2 * c], y_true[:, 2 * c]
        match = tf.reduce_mean(tf.square((z - teacher) * inv), axis=-1)
        ce = -tf.reduce_sum(onehot * log_p, axis=-1)
        return tf.reduce_mean(match + label_weight * has * ce)

    return loss


LR_FLOOR = 0.02  # the cosine schedule ends at this fraction of the initial learning rate


class _Budget:
    """Stops training after ``minutes`` (checked per batch), records the loss curve and, for the cosine schedule,
    decays the learning rate over whichever runs out first, the steps or the time: a short fine-tune ends at a low
    rate instead of stopping mid-stride at the initial one."""

    def __new__(cls, keras: Any, minutes: float | None, total_steps: int, base_lr: float, schedule: str,
                on_progress: Callable[[float], None] | None = None):
        class Budget(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.start = time.monotonic()
                self.steps = 0
                self.losses: list[float] = []
                self.epochs = 0

            def progress(self) -> float:
                p = self.steps / max(total_steps, 1)
                if minutes:
                    p = max(p, (time.monotonic() - self.start) / (minutes * 60))
                return min(p, 1.0)

            def on_train_batch_begin(self, batch, logs=None):
                if schedule == "cosine":
                    lr = base_lr * (LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + np.cos(np.pi * self.progress())))
                    self.model.optimizer.learning_rate.assign(lr)

            def on_train_batch_end(self, batch, logs=None):
                self.steps += 1
                if self.steps == 1:  # the first step traces and compiles the graph: the budget is for training
                    self.start = time.monotonic()
                if on_progress is not None:
                    on_progress(self.progress())
                if logs and "loss" in logs:
                    self.losses.append(float(logs["loss"]))
                if minutes is not None and time.monotonic() - self.start > minutes * 60:
                    self.model.stop_training = True

            def on_epoch_end(self, epoch, logs=None):
                self.epochs = epoch + 1

        return Budget()


def _batchnorms(model: Any) -> list[Any]:
    return [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization" and layer.trainable]


@contextmanager
def _fast_batchnorm(model: Any) -> Iterator[None]:
    """keras.applications use momentum 0.999: the moving averages would lag far behind a short fine-tune."""
    bns = _batchnorms(model)
    momenta = [layer.momentum for layer in bns]
    for layer in bns:
        layer.momentum = min(layer.momentum, 0.9)
    try:
        yield
    finally:
        for layer, m in zip(bns, momenta, strict=True):
            layer.momentum = m


def reestimate_batchnorm(model: Any, x: np.ndarray, batch_size: int, updates: int = 48) -> None:
    """Re-estimate BatchNorm statistics on ``x`` with the current weights: what the deployed model will use. After
    channels are removed (or weights fine-tuned) the layers see different inputs than the old averages describe."""
    import tensorflow as tf

    if not _batchnorms(model):
        return
    with _fast_batchnorm(model):
        step = tf.function(lambda batch: model(batch, training=True), reduce_retracing=True)  # eager is 3x slower
        batches = int(np.ceil(len(x) / batch_size))
        for _ in range(int(np.ceil(updates / batches))):  # at momentum 0.9, 48 updates leave < 1% of the old value
            for i in range(0, len(x), batch_size):
                step(tf.constant(x[i:i + batch_size]))


def _class_targets(t: np.ndarray, logits: bool, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """A classifier's targets: the teacher's centred logits, the one-hot label and whether there is one (the
    images, then their mirror images); and the logits' per-class spread."""
    z = t if logits else np.log(np.clip(t, 1e-7, 1.0))
    z = (z - z.mean(axis=-1, keepdims=True)).astype(np.float32)
    std = np.maximum(z.std(axis=0), 1e-3).astype(np.float32)
    onehot = np.zeros_like(z)
    has = np.zeros((len(z), 1), np.float32)
    if labels is not None:
        both = np.concatenate([labels, labels])
        onehot[np.arange(len(z)), both] = 1.0
        has[:] = 1.0
    return np.concatenate([z, onehot, has], axis=-1), std


def finetune(student: Any, teacher: Any, keras: Any, images: np.ndarray, settings: DistillSettings,
             classification: bool, logits: bool, labels: np.ndarray | None = None,
             callbacks: list | None = None, detector: dict[str, Any] | None = None, share: float = 1.0,
             on_progress: Callable[[float], None] | None = None, lr_scale: float = 1.0,
             feature_hints: list[hints.Hint] | None = None) -> DistillReport:
    """Fit ``student`` to ``teacher`` on ``images`` (normalized NHWC float32) and their mirror images.

    ``detector`` (roles, score activation, class axis, background column, and optionally ``truth``: the teacher's
    outputs by role → ground-truth ``Targets`` for ``images`` followed by their mirror images), when given, says the
    two models output one tensor per role (boxes, scores): boxes and scores then get their own losses. ``share`` of
    the epochs and minutes is used (a stage that fine-tunes twice splits its budget); ``on_progress`` hears the
    progress (0 → 1) after every step; ``lr_scale`` scales the learning rate (QAT takes a smaller one);
    ``feature_hints`` (after pruning) also pull the student's inner features toward the teacher's (``hints``).
    """
    import tensorflow as tf

    settings = replace(settings, epochs=max(1, round(settings.epochs * share)),
                       minutes=settings.minutes * share if settings.minutes else settings.minutes,
                       learning_rate=settings.learning_rate * lr_scale)

    x = np.concatenate([images, images[:, :, ::-1]]).astype(np.float32)
    targets = _predict(teacher, x, settings.batch_size)
    losses = []
    truth_targets = None
    if detector is not None:
        truth = detector.get("truth")
        truth_targets = truth(dict(zip(detector["roles"], targets, strict=True))) if truth else None
        targets, losses = detector_loss.pack(targets, detector["roles"], detector["activation"],
                                             detector["axis"] == 1, detector["background"], settings.label_weight,
                                             truth_targets)
    for k, t in enumerate(targets if detector is None else []):
        if classification and k == 0:
            targets[k], std = _class_targets(t, logits, labels)
            losses.append(_logit_match(std, logits, settings.label_weight))
        else:
            losses.append(_standardized_mse(keras, detector_loss.spread(t, tuple(range(t.ndim - 1)))))
    trained = student
    if feature_hints and settings.hint_weight > 0:
        trained, more = hints.training_model(student, teacher, keras, feature_hints, x, settings.hint_weight)
        losses += more
        targets += [np.zeros((len(x), 1), np.float32)] * len(more)
    y = targets[0] if len(targets) == 1 else tuple(targets)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=settings.seed).batch(settings.batch_size)
    trained.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                    loss=losses[0] if len(losses) == 1 else losses)
    total = settings.epochs * int(np.ceil(len(x) / settings.batch_size))
    budget = _Budget(keras, settings.minutes, total, settings.learning_rate, settings.schedule, on_progress)
    start = time.monotonic()
    with _fast_batchnorm(student):
        trained.fit(ds, epochs=settings.epochs, verbose=0, callbacks=[budget, *(callbacks or [])])
    reestimate_batchnorm(student, x, settings.batch_size)
    curve = budget.losses or [float("nan")]
    head = float(np.mean(curve[: max(1, len(curve) // 10)]))
    tail = float(np.mean(curve[-max(1, len(curve) // 10):]))
    used = "boxes" if truth_targets is not None else "classes" if classification and labels is not None else "none"
    return DistillReport(budget.epochs, budget.steps, time.monotonic() - start, head, tail, used)
