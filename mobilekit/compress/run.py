"""The compression stages, in order, each fine-tuned by distillation and measured.

prune (structured, Keras 3 or tf_keras) → sparsity → cluster → qat (tensorflow-model-optimization, tf_keras: a
Keras 3 model is bridged first and the bridge verified). Stages are registered by name; the runner keeps the float
model (what Core ML and the float reference use) and, after QAT, the QAT model the int8 converter must use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mobilekit.compress import bridge, distill, fade, hints, prune, tfmot_stages, truth
from mobilekit.compress.data import Labels
from mobilekit.compress.measure import EvalSet, Reference, StageRow, measure, retime
from mobilekit.config import Config
from mobilekit.contract import Contract
from mobilekit.errors import ConfigError
from mobilekit.heads import get_head
from mobilekit.models.loader import LoadedModel
from mobilekit.models.serving import build_serving
from mobilekit.registry import Registry

Step = Callable[[str], None]


@dataclass
class State:
    model: Any  # the current float model
    kind: str  # keras3 | tf_keras
    teacher: Any  # the original float model
    images: np.ndarray  # normalized training images
    labels: Labels  # class ids (classifier) or boxes (detector) of the training images, when known
    cfg: Config
    contract: Contract
    teacher_kind: str = "keras3"
    qat_model: Any | None = None
    done: list[str] = field(default_factory=list)

    @property
    def keras(self) -> Any:
        return _keras_of(self.kind)

    def finetune(self, student: Any, callbacks: list, share: float = 1.0,
                 on_progress: Callable[[float], None] | None = None, lr_scale: float = 1.0,
                 feature_hints: list[hints.Hint] | None = None) -> distill.DistillReport:
        head = self.contract.head
        teacher, detector = self.teacher, None
        if self.contract.task == "detection":
            # train through the role outputs (boxes, scores), even when the model concatenates them
            student, roles = self.role_model(student, self.kind)
            teacher, _ = self.role_model(self.teacher, self.teacher_kind)
            detector = {"roles": roles, "activation": head.score_activation, "background": head.background_class,
                        "axis": get_head(head.format).channel_axis}
            if isinstance(self.labels, truth.DetectionTruth) and set(roles) == {"boxes", "scores"}:
                both = self.labels + self.labels.mirrored(self.contract.input.width)  # finetune adds mirror images
                detector["truth"] = lambda outputs: truth.targets(outputs, both, self.contract)
        return distill.finetune(student, teacher, self.keras, self.images, self.cfg.compression.distill,
                                classification=self.contract.task == "classification",
                                # the models trained here keep their final activation even when serving cuts it
                                logits=head.score_activation == "softmax" and not head.split.get("activation"),
                                labels=self.labels if isinstance(self.labels, np.ndarray) else None,
                                callbacks=callbacks, detector=detector, share=share, on_progress=on_progress,
                                lr_scale=lr_scale, feature_hints=feature_hints)

    def role_model(self, model: Any, kind: str) -> tuple[Any, list[str]]:
        """``model`` with one output per role, in role order (sharing its layers, so training one trains both)."""
        from mobilekit.compress.measure import loaded_of

        serving = build_serving(loaded_of(model, kind, self.cfg.resolve(self.cfg.model)), self.contract, training=True)
        km = serving.keras_model
        keras = _keras_of(kind)
        outs = [km.outputs[serving.positions[r]] for r in serving.roles]
        return keras.Model(km.inputs[0], outs), serving.roles

    def to_tf_keras(self) -> None:
        if self.kind == "tf_keras":
            return
        twin = bridge.to_tf_keras(self.model, self.cfg.resolve(self.cfg.model))
        bridge.check_same(self.model, twin, self.images[:8], self.cfg.resolve(self.cfg.model))
        self.model, self.kind = twin, "tf_keras"


def _keras_of(kind: str) -> Any:
    if kind == "tf_keras":
        import tf_keras

        return tf_keras
    import keras

    return keras


Stage = Callable[[State, Any], dict[str, Any]]
STAGES: Registry[Stage] = Registry("compression stage")
stage = STAGES.register


@stage("prune")
def _prune(st: State, settings: Any) -> dict[str, Any]:
    try:
        plan, graph = prune.plan(st.model, settings, st.keras, st.images)
    except ValueError as e:
        raise ConfigError(f"compression.prune: {e}", path=st.cfg.resolve(st.cfg.model),
                          fix="list fewer layers under compression.prune.exclude, or drop the prune stage") from None
    details: dict[str, Any] = {"groups": len(plan.keep), "uniform_ratio": round(plan.ratio, 4)}
    if settings.fade > 0:  # gradual: the removed channels fade out while the full model is distilled
        fader = fade.Fader(st.model, plan, graph)
        details["fade"] = st.finetune(st.model, [], share=settings.fade, on_progress=fader,
                                      feature_hints=hints.hints_for(graph, plan, cut=False)).to_dict()
        fader.finish()
    st.model = prune.apply(st.model, st.keras, plan, graph)
    distill.reestimate_batchnorm(st.model, st.images, st.cfg.compression.distill.batch_size)
    details["distill"] = st.finetune(st.model, [], share=1.0 - settings.fade,
                                     feature_hints=hints.hints_for(graph, plan, cut=True)).to_dict()
    return details


@stage("sparsity")
def _sparsity(st: State, settings: Any) -> dict[str, Any]:
    st.to_tf_keras()
    d = st.cfg.compression.distill
    steps = d.epochs * int(np.ceil(2 * len(st.images) / d.batch_size))
    st.model, details = tfmot_stages.sparsity(st.model, settings, st.finetune, steps)
    return details


@stage("cluster")
def _cluster(st: State, settings: Any) -> dict[str, Any]:
    st.to_tf_keras()
    st.model, details = tfmot_stages.cluster(st.model, settings, st.finetune, "sparsity" in st.done)
    return details


@stage("qat")
def _qat(st: State, settings: Any) -> dict[str, Any]:
    st.to_tf_keras()
    preserve = "+".join(s for s in ("sparsity", "cluster") if s in st.done) or None
    def finetune(student: Any, callbacks: list) -> distill.DistillReport:
        return st.finetune(student, callbacks, lr_scale=settings.learning_rate_scale)

    st.model, st.qat_model, details = tfmot_stages.qat(st.model, finetune, preserve, st.images)
    return {**details, "learning_rate_scale": settings.learning_rate_scale}


ORDER = ["prune", "sparsity", "cluster", "qat"]


def teacher_copy(loaded: LoadedModel, kind: str) -> Any:
    """An independent copy of the original model to teach from. The stages train (and fade, and tfmot wraps) the
    student in place; a teacher that is the same object drifts with it, and distilling the cut model toward its own
    faded self teaches nothing. A model ``clone_model`` cannot rebuild is loaded again from its file."""
    try:
        teacher = _keras_of(kind).models.clone_model(loaded.keras_model)
        teacher.set_weights(loaded.keras_model.get_weights())
        return teacher
    except (TypeError, ValueError, NotImplementedError):
        from mobilekit.models.loader import load_model

        return load_model(loaded.path).keras_model


@dataclass
class Compressed:
    loaded: LoadedModel
    qat_loaded: LoadedModel | None
    rows: list[StageRow]

    def to_dict(self) -> dict[str, Any]:
        return {"stages": [r.to_dict() for r in self.rows]}


def compress(loaded: LoadedModel, cfg: Config, contract: Contract, images: np.ndarray, labels: Labels,
             data: EvalSet, work: Path, step: Step) -> Compressed:
    from mobilekit.compress.measure import loaded_of

    if loaded.keras_model is None:
        raise ConfigError("compression needs a Keras model; a SavedModel graph has no layers to prune or wrap",
                          path=cfg.resolve(cfg.model), fix="give the .keras or .h5 file, or remove compression")
    import keras

    keras.utils.set_random_seed(cfg.compression.distill.seed)
    kind = loaded.kind if loaded.kind == "tf_keras" else "keras3"
    teacher = teacher_copy(loaded, kind)
    st = State(loaded.keras_model, kind, teacher, images, labels, cfg, contract, teacher_kind=kind)
    ref = Reference()
    step("Measuring the original model (params, MACs, int8 size and latency, task metric)")
    row, _, timer = measure("original", st.model, st.kind, cfg, data, ref, work)
    rows, timers = [row], [timer]
    for name in ORDER:
        settings = getattr(cfg.compression, name)
        if settings is None or (name == "qat" and not settings.enabled):
            continue
        step(f"Compression: {name}, fine-tuned by distillation")
        details = STAGES[name](st, settings)
        st.done.append(name)
        row, _, timer = measure(name, st.model, st.kind, cfg, data, ref, work, st.qat_model, details)
        rows.append(row)
        timers.append(timer)
    step("Timing every stage's int8 model together (LiteRT, one thread, interleaved rounds)")
    retime(rows, timers, data.canvases[0])
    final = loaded_of(st.model, st.kind, cfg.resolve(cfg.model))
    qat = loaded_of(st.qat_model, "tf_keras", cfg.resolve(cfg.model)) if st.qat_model is not None else None
    return Compressed(final, qat, rows)
