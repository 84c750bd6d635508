"""What a recipe search measures on each trial's bundle, one registered :class:`Measure` each (all minimized).

A trial ships two models: the Android one (``tflite-int8-mixed`` when selective precision made it, else the
full-int8 ``tflite-int8``) and, when Core ML is on, the iOS one (the palettized package when the recipe has one,
else the fp16 package). Every measure reads the trial's bundle as the build wrote it: the manifest, the contract's
artifact paths and ``report/parity.json``. The task metric (COCO mAP@0.5:0.95 for a detector, top-1 for a
classifier) is measured against the evaluation labels, and a drop is counted from the *original* float model's
metric (the search's reference build), not from the trial's own float model: a pruned model's float metric is
already lower, and parity measures every artifact against the model it was converted from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from mobilekit.config import SECTION_CHECKS, Config
from mobilekit.kinds import Kind, shipped_coreml

Fail = Callable[[str, str, str], NoReturn]


@dataclass
class Outcome:
    """A finished trial build: what its CLI printed (``--json``) and what its bundle holds."""

    exit_code: int
    error: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)  # report/parity.json
    paths: dict[str, str] = field(default_factory=dict)  # artifact kind -> path in the bundle (contract.json)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def android(self) -> str:
        """The Android model this recipe ships."""
        mixed = Kind.TFLITE_INT8_MIXED in self.parity.get("artifacts", {})
        return Kind.TFLITE_INT8_MIXED if mixed else Kind.TFLITE_INT8

    def ios(self) -> str | None:
        """The iOS model this recipe ships (the one the Swift package runs), or None without Core ML."""
        return shipped_coreml(self.parity.get("artifacts", {}))

    def size_kb(self, kind: str) -> float:
        """Bytes of the artifact's file (or of every file of its package) over 1,024."""
        path = self.paths[kind]
        files = [a["size"] for a in self.manifest["artifacts"] if a["path"] == path or a["path"].startswith(path + "/")]
        return sum(files) / 1024


def task_metric(parity: dict[str, Any]) -> tuple[str, str] | None:
    """(parity key, name) of the task metric the evaluation labels allow, or None without labels."""
    if "map50_95_float" in parity:
        return "map50_95", "mAP@0.5:0.95"
    if "top1_float" in parity:
        return "top1", "top-1 %"
    return None


def artifact_metric(outcome: Outcome, kind: str) -> float:
    """The task metric of ``kind`` on the kernels a phone runs: XNNPACK for TFLite, the emulator for Core ML."""
    key, _ = task_metric(outcome.parity) or ("", "")
    resolvers = outcome.parity["artifacts"][kind]["resolvers"]
    res = resolvers.get("xnnpack") or resolvers.get("emulator") or next(iter(resolvers.values()))
    return float(res[key])


@dataclass(frozen=True)
class Measure:
    name: str
    unit: str
    what: str
    value: Callable[[Outcome, float], float]  # (trial, the original float model's task metric) -> value


MEASURES: dict[str, Measure] = {}


def measure(name: str, unit: str, what: str) -> Callable[[Callable[[Outcome, float], float]], Measure]:
    def register(fn: Callable[[Outcome, float], float]) -> Measure:
        MEASURES[name] = Measure(name, unit, what, fn)
        return MEASURES[name]

    return register


@measure("drop", "points", "task-metric drop of the worst shipped model (Android, iOS) vs the original float model")
def _drop(o: Outcome, reference: float) -> float:
    shipped = [k for k in (o.android(), o.ios()) if k]
    return reference - min(artifact_metric(o, k) for k in shipped)


@measure("int8_kb", "KiB", "size of the Android model (full-int8, or the mixed one selective precision made)")
def _int8_kb(o: Outcome, reference: float) -> float:
    return o.size_kb(o.android())


@measure("cpu_ms", "ms", "LiteRT CPU latency of the Android model (XNNPACK, one image, median)")
def _cpu_ms(o: Outcome, reference: float) -> float:
    return float(o.manifest["latency_ms"][o.android()])


@measure("coreml_kb", "KiB", "size of the iOS package the Swift package ships (compressed when the recipe is)")
def _coreml_kb(o: Outcome, reference: float) -> float:
    kind = o.ios()
    return o.size_kb(kind) if kind else 0.0


def check_measures(objectives: list[str], budgets: dict[str, float], prefer: str, fail: Fail) -> None:
    """``search.objectives``, ``search.budgets`` and ``search.prefer`` name measures that exist."""
    names = ", ".join(MEASURES)
    for i, name in enumerate(objectives):
        if name not in MEASURES:
            fail(f"search.objectives[{i}]", f"unknown measure '{name}'", f"use some of: {names}")
    if len(set(objectives)) != len(objectives) or not objectives:
        fail("search.objectives", "needs at least one measure, each once", f"use some of: {names}")
    for key in budgets:
        if not key.startswith("max_") or key.removeprefix("max_") not in MEASURES:
            fail(f"search.budgets.{key}", "unknown budget", f"use max_<measure>, for one of: {names}")
    if prefer not in objectives:
        fail("search.prefer", f"'{prefer}' is not among the objectives", f"use one of: {', '.join(objectives)}")


def measured(outcome: Outcome, reference: float) -> dict[str, float]:
    """Every measure of a finished trial."""
    return {name: m.value(outcome, reference) for name, m in MEASURES.items()}


def read_bundle(bundle: Path, exit_code: int, printed: dict[str, Any], seconds: float) -> Outcome:
    """A trial's outcome from its CLI's ``--json`` object and, when it built, its bundle's files."""
    import json

    if exit_code != 0 or not printed.get("ok"):
        return Outcome(exit_code or 1, printed.get("error") or f"the build exited with code {exit_code}",
                       seconds=seconds)
    contract = json.loads((bundle / "contract.json").read_text())
    return Outcome(0, None, printed["manifest"], json.loads((bundle / "report" / "parity.json").read_text()),
                   {k: a["path"] for k, a in contract["artifacts"].items() if a.get("path")}, seconds)


def _check_targets(settings: Any, cfg: Config, fail: Fail) -> None:
    check_measures(settings.objectives, settings.budgets, settings.prefer, fail)


SECTION_CHECKS.setdefault("search", []).append(_check_targets)
