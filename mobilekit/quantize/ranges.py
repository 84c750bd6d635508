"""Activation ranges other than min-max, written into the calibrated model before it is quantized.

The converter's calibration keeps each activation's absolute min and max over the calibration images, so one
outlier pixel in one image sets the int8 step for every image. Neither TensorFlow 2.21's converter (its histogram
methods exist only on the StableHLO path, which returns a float model) nor ai-edge-quantizer (its MSE/OCTAV
clipping acts on weights; activations are always min/max) clips activations, so this module does: it runs the
calibrated float model on the calibration images, keeps a bounded sample of every calibrated tensor and its exact
extremes, and picks each range by a registered method. A method sees the sample and the min/max and returns the
range; a range never grows past min/max and always holds zero, as the int8 grid requires.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mobilekit.config import SECTION_CHECKS, Config, Fail
from mobilekit.registry import Registry

#: values kept per tensor across all images (a uniform sample, plus the exact min and max)
SAMPLE = 1 << 17

RangeMethod = Callable[["Observed"], tuple[float, float]]
METHODS: Registry[RangeMethod] = Registry("calibration method")


@dataclass
class Observed:
    """One tensor over the calibration images: exact extremes and a uniform sample of its values."""

    lo: float = np.inf
    hi: float = -np.inf
    parts: list[np.ndarray] = field(default_factory=list)
    per_image: int = 0

    def add(self, values: np.ndarray, rng: np.random.Generator) -> None:
        v = values.ravel()
        self.lo, self.hi = min(self.lo, float(v.min())), max(self.hi, float(v.max()))
        take = min(v.size, self.per_image)
        self.parts.append(v if take == v.size else v[rng.choice(v.size, take, replace=False)])

    @property
    def sample(self) -> np.ndarray:
        return np.concatenate(self.parts).astype(np.float64)


@METHODS.register("minmax")
def minmax(o: Observed) -> tuple[float, float]:
    """The converter's own ranges: every value fits, outliers set the step."""
    return o.lo, o.hi


@METHODS.register("percentile")
def percentile(o: Observed, q: float = 99.99) -> tuple[float, float]:
    """Clip the rarest 0.01% at each end (the sample's percentiles): tails that a few pixels own lose precision,
    the bulk of the values gains it."""
    s = o.sample
    return float(np.percentile(s, 100 - q)), float(np.percentile(s, q))


def _int8_error(s: np.ndarray, lo: float, hi: float) -> float:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-12) / 255.0
    zp = np.round(-128 - lo / scale)
    q = np.clip(np.round(s / scale) + zp, -128, 127)
    return float(np.mean(((q - zp) * scale - s) ** 2))


@METHODS.register("mse")
def mse(o: Observed) -> tuple[float, float]:
    """The clip (a shrink of min/max, 100% down to 30% in 1% steps) with the least int8 mean squared error on the
    sample: rounding error inside the range traded against clipping error outside it, per tensor."""
    s = o.sample
    best, best_err = (o.lo, o.hi), _int8_error(s, o.lo, o.hi)
    for f in np.arange(0.99, 0.295, -0.01):
        err = _int8_error(s, o.lo * f, o.hi * f)
        if err < best_err:
            best, best_err = (o.lo * f, o.hi * f), err
    return best


def observe(calibrated: bytes, inputs: Iterator[np.ndarray], images: int) -> dict[int, Observed]:
    """Run the calibrated float model on the calibration inputs; per calibrated tensor index, what it held."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=calibrated, experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    calibrated_idx = _calibrated_tensors(calibrated)
    per_image = max(SAMPLE // max(images, 1), 64)
    seen = {i: Observed(per_image=per_image) for i in calibrated_idx}
    rng = np.random.default_rng(0)
    entry = it.get_input_details()[0]["index"]
    for x in inputs:
        it.set_tensor(entry, x.astype(np.float32))
        it.invoke()
        for i in calibrated_idx:
            seen[i].add(it.get_tensor(i), rng)
    return seen


def _calibrated_tensors(calibrated: bytes) -> list[int]:
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    return [i for i, t in enumerate(model.subgraphs[0].tensors)
            if t.quantization is not None and t.quantization.min is not None and len(t.quantization.min) == 1]


def with_ranges(calibrated: bytes, ranges: dict[int, tuple[float, float]]) -> bytes:
    """The calibrated model with these tensors' min/max replaced (what the quantizer turns into scales)."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    tensors = model.subgraphs[0].tensors
    for i, (lo, hi) in ranges.items():
        tensors[i].quantization.min = np.array([min(lo, 0.0)], np.float32)
        tensors[i].quantization.max = np.array([max(hi, 0.0)], np.float32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def recalibrate(calibrated: bytes, method: str, inputs: Iterator[np.ndarray], images: int) -> bytes:
    """``calibrated`` with every inner activation range chosen by ``method``. The model's input and outputs keep
    min-max: the input's range is the normalization's, not a statistic, and an output's tail is what the app reads
    (a box at the image edge, a top score), which a clip would flatten."""
    from ai_edge_litert.interpreter import Interpreter

    choose = METHODS.lookup(method)
    if choose is minmax:
        return calibrated
    it = Interpreter(model_content=calibrated)
    keep = {d["index"] for d in it.get_input_details() + it.get_output_details()}
    seen = observe(calibrated, inputs, images)
    return with_ranges(calibrated, {i: choose(o) for i, o in seen.items() if i not in keep})


def _check_quantization(q: Any, cfg: Config, fail: Fail) -> None:
    """``quantization.calibration`` names a registered range method."""
    if q.calibration not in METHODS:
        close = difflib.get_close_matches(q.calibration, list(METHODS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        fail("quantization.calibration", f"unknown method '{q.calibration}'{hint}", f"use one of: {', '.join(METHODS)}")


SECTION_CHECKS.setdefault("quantization", []).append(_check_quantization)
