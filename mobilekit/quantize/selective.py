"""Accuracy-aware selective precision: leave the few ops whose int8 error costs the task metric most in float.

How the ops are ranked, and why this way: the quantization debugger's per-layer error (RMSE in int8 steps of each
op's output, with its input taken from the quantized graph) names the ops that quantize badly, but a bad op early
in the net can matter less than a mediocre one at the head. So the debugger only *shortlists* (its worst
``2 x max_float_ops`` ops, cheap: one debugger run); each shortlisted op is then measured alone, left in float with
everything else int8, by the task metric on the calibration images; the ops are added to float in the order of that
measured gain, until the drop is within ``max_drop`` or ``max_float_ops`` is reached.

Why float and not int16 activations (16x8) first: on the CPU, LiteRT's XNNPACK runs int8 and float ops but no
int16 one, so a 16x8 op falls back to the reference kernels (measured: 60x slower per op) while a float op between
int8 neighbours stays on XNNPACK with a (de)quantize on each side; TensorFlow's converter cannot mix int8 and 16x8
per op anyway. On an integer-only NPU a float op runs on the CPU instead, which the artifact's delegate report says.

The task metric: COCO mAP@0.5:0.95 for detectors, top-1 for classifiers, against the labels when the calibration
images are labelled, else against the float model's own predictions (its detections above the score threshold, its
top-1). Selection never sees the evaluation images; the parity stage measures the result on them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mobilekit.contract import Contract
from mobilekit.data.preprocess import ResizePlan, normalize
from mobilekit.quantize.ptq import quantize

Runner = Callable[[np.ndarray], dict[str, np.ndarray]]

#: a model's task metric on the calibration images, in points (higher is better)
Metric = Callable[[bytes], float]
#: the 90% interval of a model's metric drop from the float model's over the calibration images (a paired bootstrap)
Interval = Callable[[bytes], tuple[float, float] | None]


@dataclass
class Selection:
    """What selective precision tried and chose (``manifest.quantization.selective``)."""

    metric: str
    max_drop: float
    float_metric: float
    int8_metric: float
    ranked: list[dict[str, Any]] = field(default_factory=list)  # shortlisted ops, best gain first
    steps: list[dict[str, Any]] = field(default_factory=list)  # each op tried with those kept → metric, kept
    float_ops: list[dict[str, Any]] = field(default_factory=list)  # the chosen ones
    met: bool = False
    qat: dict[str, Any] | None = None  # quantization-aware training on demand, when it ran (or why it did not)
    #: full-int8's drop, 90% interval over the calibration images: a bar met (or missed) inside it is noise
    int8_interval: tuple[float, float] | None = None

    @property
    def int8_drop(self) -> float:
        return self.float_metric - self.int8_metric

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "max_drop": self.max_drop, "float": self.float_metric,
                "int8": self.int8_metric, "int8_drop": self.int8_drop, "ranked": self.ranked, "steps": self.steps,
                "float_ops": self.float_ops, "met": self.met, "int8_drop_interval": self.int8_interval,
                **({"qat": self.qat} if self.qat else {})}


def shortlist(layers: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The debugger's ``n`` worst op outputs (RMSE in int8 steps), worst first."""
    return sorted(layers, key=lambda la: -la["rmse_steps"])[:n]


def _entry(group: list[dict[str, Any]], gain: float) -> dict[str, Any]:
    """A candidate: one op, or an op and its consumer (whose int8 input would keep the first one's range)."""
    return {"tensor": " + ".join(g["tensor"] for g in group), "op": " + ".join(g["op"] for g in group),
            "nodes": [g["node"] for g in group], "members": [{"tensor": g["tensor"], "op": g["op"]} for g in group],
            "rmse_steps": max(g["rmse_steps"] for g in group), "gain": gain}


@dataclass
class _Search:
    """The forward selection's state: what is float so far, the best metric and its model."""

    calibrated: bytes
    io_dtype: str
    metric: Metric
    sel: Selection
    max_ops: int
    progress: Callable[[str], None]
    best: float = 0.0
    model: bytes | None = None
    chosen: list[dict[str, Any]] = field(default_factory=list)

    def nodes(self, extra: list[dict[str, Any]] = ()) -> list[str]:
        return list(dict.fromkeys(n for e in [*self.chosen, *extra] for n in e["nodes"]))

    def done(self) -> bool:
        return len(self.nodes()) >= self.max_ops or self.sel.float_metric - self.best <= self.sel.max_drop

    def rank(self, groups: list[list[dict[str, Any]]], what: str) -> list[dict[str, Any]]:
        """Each group measured alone in float (with what is chosen), best gain first."""
        out = []
        for k, g in enumerate(groups):
            self.progress(f"measuring {what} {' + '.join(x['op'] for x in g)} in float ({k + 1} of {len(groups)})")
            got = self.metric(quantize(self.calibrated, self.io_dtype, self.nodes([{"nodes": [x["node"] for x in g]}])))
            out.append(_entry(g, got - self.best))
        return sorted(out, key=lambda r: (-r["gain"], -r["rmse_steps"]))

    def forward(self, ranked: list[dict[str, Any]]) -> None:
        """Passes over ``ranked`` until one adds nothing: a candidate joins only when the metric, with the others
        in float, improves (one may only help once another is float)."""
        waiting, improved = list(ranked), True
        while improved and waiting:
            improved = False
            for r in list(waiting):
                if self.done() or len(self.nodes([r])) > self.max_ops:
                    return
                trial = quantize(self.calibrated, self.io_dtype, self.nodes([r]))
                got = self.metric(trial)
                kept = got > self.best
                drop = self.sel.float_metric - got
                self.sel.steps.append({"op": r["tensor"], "metric": got, "drop": drop, "kept": kept})
                self.progress(f"{r['op']} in float: {self.sel.metric} drop {drop:.2f}" + ("" if kept else
                                                                                         ", not kept"))
                if kept:
                    self.best, self.model, improved = got, trial, True
                    self.chosen.append(r)
                    waiting.remove(r)


def select(calibrated: bytes, io_dtype: str, layers: list[dict[str, Any]], metric: Metric, float_metric: float,
           int8_metric: float, max_drop: float, max_ops: int, name: str,
           progress: Callable[[str], None] = lambda s: None) -> tuple[Selection, bytes | None]:
    """Rank the shortlisted ops by measured gain, then leave them in float one by one, each kept only when the
    metric improves, until it holds or ``max_ops`` are float; when single ops are not enough, the same with each
    shortlisted op and the op after it (a float op whose int8 consumer still reads its int8 range gains nothing
    alone). The best mixed model reached; None when full-int8 already holds, or when nothing helps."""
    sel = Selection(name, max_drop, float_metric, int8_metric)
    if sel.int8_drop <= max_drop:
        sel.met = True
        return sel, None
    search = _Search(calibrated, io_dtype, metric, sel, max_ops, progress, best=int8_metric)
    short = shortlist(layers, 2 * max_ops)
    sel.ranked = search.rank([[la] for la in short], "alone")
    search.forward(sel.ranked)
    if not search.done():
        order = [la["node"] for la in layers]
        taken = set(search.nodes())
        pairs = [[la, layers[order.index(la["node"]) + 1]] for la in short
                 if order.index(la["node"]) + 1 < len(layers) and la["node"] not in taken
                 and layers[order.index(la["node"]) + 1]["node"] not in taken]
        ranked_pairs = search.rank(pairs, "with its consumer")
        sel.ranked += ranked_pairs
        search.forward(ranked_pairs)
    sel.float_ops = list({m["tensor"]: m for c in search.chosen for m in c["members"]}.values())
    sel.met = float_metric - search.best <= max_drop
    return sel, search.model


def _outputs(runner_for: Callable[[bytes], Runner],
             canvases: list[np.ndarray]) -> Callable[[bytes], list[dict[str, np.ndarray]]]:
    """A model's outputs on the canvases, the last model's kept: its metric and its interval take one run."""
    last: dict[bytes, list[dict[str, np.ndarray]]] = {}

    def outputs(model: bytes) -> list[dict[str, np.ndarray]]:
        if model not in last:
            run = runner_for(model)
            last.clear()
            last[model] = [run(c) for c in canvases]
        return last[model]

    return outputs


def task_metric(contract: Contract, canvases: list[np.ndarray], plans: list[ResizePlan],
                truth: list[tuple[np.ndarray, np.ndarray]] | None, float_run: Runner,
                runner_for: Callable[[bytes], Runner]) -> tuple[str, Metric, float, Interval]:
    """The metric's name, the metric of a model (bytes), the float model's value, and the 90% paired-bootstrap
    interval of a model's drop from it over these images; without labels the float model's own predictions are the
    truth (its value is then 100)."""
    from mobilekit.parity.detection import drop_interval, map50_95_acc
    from mobilekit.parity.metrics import bootstrap_interval
    from mobilekit.postprocess import classify, detect

    labelled = truth is not None
    inp = contract.input
    ref = [float_run(normalize(c, inp.scale, inp.offset, inp.color, inp.layout)) for c in canvases]
    if contract.task == "detection":
        if truth is None:
            dets = [detect(o, contract, p) for o, p in zip(ref, plans, strict=True)]
            truth = [(d.boxes, d.classes) for d in dets]

        def evidence(outs: list[dict[str, np.ndarray]]) -> Any:
            acc = map50_95_acc(contract.head.num_classes)
            for o, p, (boxes, classes) in zip(outs, plans, truth, strict=True):
                acc.add(detect(o, contract, p), boxes, classes)
            return acc

        ref_evidence = evidence(ref)
        name = "mAP@0.5:0.95"

        def score(outs: list[dict[str, np.ndarray]]) -> float:
            return evidence(outs).result()

        def drop(outs: list[dict[str, np.ndarray]]) -> tuple[float, float] | None:
            return drop_interval(ref_evidence, evidence(outs))
    else:
        labels = [int(t[1][0]) for t in truth] if truth is not None else [classify(o, contract)[0][0] for o in ref]

        def correct(outs: list[dict[str, np.ndarray]]) -> np.ndarray:
            return np.asarray([classify(o, contract)[0][0] == y for o, y in zip(outs, labels, strict=True)], float)

        ref_correct = correct(ref)
        name = "top-1"

        def score(outs: list[dict[str, np.ndarray]]) -> float:
            return 100.0 * float(np.mean(correct(outs)))

        def drop(outs: list[dict[str, np.ndarray]]) -> tuple[float, float] | None:
            got = correct(outs)
            return bootstrap_interval(len(got), lambda w: 100.0 * float(w @ (ref_correct - got)) / float(w.sum()))

    outputs = _outputs(runner_for, canvases)

    def metric(model: bytes) -> float:
        return score(outputs(model))

    def interval(model: bytes) -> tuple[float, float] | None:
        return drop(outputs(model))

    return name + (" (labels)" if labelled else " (vs float)"), metric, score(ref), interval
