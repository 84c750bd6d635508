"""Emulate the Vision-ready pipeline: the decoder ML Program, then Core ML's NonMaximumSuppression model.

NonMaximumSuppression, as Core ML documents it: boxes whose confidence reaches ``confidenceThreshold`` are
considered in descending confidence; a box is dropped when its IoU with an already kept box exceeds
``iouThreshold``. With ``pickTop.perClass`` this runs per class on each class's confidence column (a box can be kept
under several classes); otherwise on each box's best class confidence, across classes. Outputs are the kept boxes'
full confidence rows and their coordinates, in that order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mobilekit.emulate.coreml.registry import EmulatorError
from mobilekit.emulate.coreml.runtime import CoreMLEmulator
from mobilekit.postprocess import iou_one_to_many


def _xyxy(cxcywh: np.ndarray) -> np.ndarray:
    c = cxcywh.astype(np.float64)
    return np.stack([c[:, 0] - c[:, 2] / 2, c[:, 1] - c[:, 3] / 2, c[:, 0] + c[:, 2] / 2, c[:, 1] + c[:, 3] / 2], 1)


def _greedy(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if kept and np.any(iou_one_to_many(boxes[i], boxes[np.asarray(kept)]) > iou):
            continue
        kept.append(int(i))
    return kept


def coreml_nms(confidence: np.ndarray, coordinates: np.ndarray, iou: float, threshold: float,
               per_class: bool) -> tuple[np.ndarray, np.ndarray]:
    boxes = _xyxy(coordinates)
    picks: list[tuple[float, int]] = []
    if per_class:
        for c in range(confidence.shape[1]):
            cand = np.nonzero(confidence[:, c] >= threshold)[0]
            picks += [(float(confidence[cand[k], c]), int(cand[k]))
                      for k in _greedy(boxes[cand], confidence[cand, c], iou)]
    else:
        best = confidence.max(axis=1)
        cand = np.nonzero(best >= threshold)[0]
        picks = [(float(best[cand[k]]), int(cand[k])) for k in _greedy(boxes[cand], best[cand], iou)]
    picks.sort(key=lambda t: (-t[0], t[1]))
    rows = [i for _, i in picks]
    return confidence[rows].reshape(-1, confidence.shape[1]), coordinates[rows].reshape(-1, 4)


class VisionPipelineEmulator:
    def __init__(self, path: str | Path) -> None:
        import coremltools as ct
        from coremltools.converters.mil.frontend.milproto.load import load as milproto_load

        model = ct.models.MLModel(str(path), skip_model_load=True)
        spec = model.get_spec()
        if spec.WhichOneof("Type") != "pipeline" or len(spec.pipeline.models) != 2:
            raise EmulatorError(f"{path} is not a detector + NonMaximumSuppression pipeline")
        program, nms = spec.pipeline.models
        if program.WhichOneof("Type") != "mlProgram" or nms.WhichOneof("Type") != "nonMaximumSuppression":
            raise EmulatorError(f"{path}: expected an ML Program followed by a NonMaximumSuppression model")
        function = milproto_load(program, program.specificationVersion, model.weights_dir).functions["main"]
        self.detector = CoreMLEmulator(function=function)
        self.nms: Any = nms.nonMaximumSuppression
        self.input_name = next(iter(function.inputs))
        self.labels = list(self.nms.stringClassLabels.vector)

    def run(self, pixels: np.ndarray, iou: float | None = None, threshold: float | None = None,
            watch: list | None = None) -> dict[str, np.ndarray]:
        out = self.detector.run({self.input_name: pixels}, watch)
        conf = out[self.nms.confidenceInputFeatureName].astype(np.float32)
        coords = out[self.nms.coordinatesInputFeatureName].astype(np.float32)
        c, b = coreml_nms(conf, coords, self.nms.iouThreshold if iou is None else iou,
                          self.nms.confidenceThreshold if threshold is None else threshold, self.nms.pickTop.perClass)
        return {self.nms.confidenceOutputFeatureName: c, self.nms.coordinatesOutputFeatureName: b}
