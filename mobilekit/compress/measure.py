"""What one compression stage did: parameters, MACs, int8 file size, LiteRT latency, and the task metric.

The model is measured the way it ships: through the same serving graph and full-integer converter as the build
(from the QAT model after quantization-aware training), run by LiteRT on the evaluation images. The task metric is
mAP@0.5 for labelled detectors, top-1 accuracy for labelled classifiers, else agreement with the original float
model (detection recall or top-1 agreement) — always against the float original's figure in the first row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mobilekit.compress.cost import count
from mobilekit.config import Config
from mobilekit.contract import Contract
from mobilekit.data.preprocess import ResizePlan, normalize
from mobilekit.derive import derive_contract, plan
from mobilekit.emulate.litert import LiteRTRunner
from mobilekit.export import tflite
from mobilekit.kinds import Kind
from mobilekit.models.loader import LoadedModel, from_keras
from mobilekit.models.serving import Serving, build_serving
from mobilekit.parity.detection import agreement, map50
from mobilekit.postprocess import Detections, classify, detect


@dataclass
class EvalSet:
    canvases: list[np.ndarray]
    plans: list[ResizePlan]
    boxes: list[np.ndarray] | None  # ground truth (detectors), None when unlabelled
    classes: list[np.ndarray] | None
    labels: np.ndarray | None  # classifiers: class per image, None when unlabelled
    calibration: list[np.ndarray]  # canvases for int8 calibration


@dataclass
class StageRow:
    stage: str
    params: int
    macs: int
    int8_bytes: int
    latency_ms: float
    metric_name: str
    metric_float: float
    metric_int8: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Reference:
    """The original float model's predictions, for the agreement metrics of unlabelled sets."""

    detections: list[Detections] | None = None
    top1: list[int] | None = None


def loaded_of(model: Any, kind: str, path: Path) -> LoadedModel:
    return from_keras(path, model, kind)


def _metric(outs: list[dict[str, np.ndarray]], contract: Contract, data: EvalSet, ref: Reference
            ) -> tuple[str, float, list[Detections] | list[int]]:
    if contract.task == "detection":
        dets = [detect(o, contract, p) for o, p in zip(outs, data.plans, strict=True)]
        if data.boxes is not None and data.classes is not None:
            return "map50", map50(dets, data.boxes, data.classes, contract.head.num_classes), dets
        if ref.detections is None:
            return "recall_vs_original", 100.0, dets
        return "recall_vs_original", 100.0 * agreement(ref.detections, dets)["recall"], dets
    top1 = [classify(o, contract)[0][0] for o in outs]
    if data.labels is not None:
        return "top1", 100.0 * float(np.mean(np.asarray(top1) == data.labels)), top1
    if ref.top1 is None:
        return "top1_vs_original", 100.0, top1
    return "top1_vs_original", 100.0 * float(np.mean(np.asarray(top1) == np.asarray(ref.top1))), top1


def measure(stage: str, model: Any, kind: str, cfg: Config, data: EvalSet, ref: Reference, work: Path,
            qat_model: Any | None = None, details: dict[str, Any] | None = None
            ) -> tuple[StageRow, Contract, LiteRTRunner]:
    """The stage's row (latency still 0: :func:`retime` measures every stage together at the end) and a
    one-thread runner of its int8 model for that."""
    loaded = loaded_of(model, kind, work / f"{stage}.model")
    serving = build_serving(loaded, plan(cfg, loaded))
    contract = derive_contract(cfg, serving.input_shape, serving.input_name, serving.outputs, serving.num_classes,
                               serving.split)
    inp = contract.input
    int8_serving: Serving = serving
    if qat_model is not None:
        int8_serving = build_serving(loaded_of(qat_model, "tf_keras", work / f"{stage}.qat"), contract)

    def calibration() -> Iterator[np.ndarray]:
        for c in data.calibration:
            yield normalize(c, inp.scale, inp.offset, inp.color, inp.layout)

    int8 = tflite.convert_int8(int8_serving, calibration, cfg.export.int8_io, cfg.quantization.calibration)
    art = tflite.bindings(int8, int8_serving, Kind.TFLITE_INT8, "int8.tflite")
    runner = LiteRTRunner(int8, art, contract, "xnnpack")
    float_outs = [serving.run(normalize(c, inp.scale, inp.offset, inp.color, inp.layout)) for c in data.canvases]
    int8_outs = [runner.run(c) for c in data.canvases]
    name, m_float, preds = _metric(float_outs, contract, data, ref)
    _, m_int8, _ = _metric(int8_outs, contract, data, ref)
    if stage == "original":
        if contract.task == "detection":
            ref.detections = preds  # type: ignore[assignment]
        else:
            ref.top1 = preds  # type: ignore[assignment]
    c = count(model)
    # one thread: the figure that compares stages best (thread scheduling noise is not the model's)
    timer = LiteRTRunner(int8, art, contract, "xnnpack", threads=1)
    row = StageRow(stage, c["params"], c["macs"], len(int8), 0.0, name, m_float, m_int8, details or {})
    return row, contract, timer


def retime(rows: list[StageRow], timers: list[LiteRTRunner], canvas: np.ndarray, rounds: int = 5,
           runs: int = 100) -> None:
    """Time every stage's int8 model again, in interleaved rounds, keeping each one's best median. Stages are
    measured minutes apart, around training that leaves the machine in different states; timed together they
    compare (one pruned architecture timed alone in two runs here: 2.45 and 2.89 ms)."""
    best = [float("inf")] * len(rows)
    for _ in range(rounds):
        for i, t in enumerate(timers):
            best[i] = min(best[i], t.latency_ms(canvas, runs=runs, warmup=10))
    for r, b in zip(rows, best, strict=True):
        r.latency_ms = b
