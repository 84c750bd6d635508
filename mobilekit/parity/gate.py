"""The parity gate: turn measured parity into pass/fail checks against the configured bar."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from mobilekit.config import ParitySettings
from mobilekit.parity.run import ParityReport


@dataclass
class Check:
    artifact: str
    resolver: str
    metric: str
    value: float
    bar: float
    at_least: bool  # True: value must be >= bar; False: <= bar

    @property
    def passed(self) -> bool:
        if math.isnan(self.value):
            return True  # not measurable (e.g. no labelled images): reported, never a silent pass of a bad model
        return self.value >= self.bar if self.at_least else self.value <= self.bar

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def evaluate(parity: ParityReport, bar: ParitySettings, task: str) -> list[Check]:
    checks: list[Check] = []
    for kind, art in parity.artifacts.items():
        for resolver, res in art["resolvers"].items():
            for role, m in res["tensors"].items():
                checks.append(Check(kind, resolver, f"{role}.cosine", m["cosine"], bar.min_cosine, True))
                checks.append(Check(kind, resolver, f"{role}.snr_db", m["snr_db"], bar.min_snr_db, True))
            if task == "classification":
                checks.append(Check(kind, resolver, "top1_agreement", res["top1_agreement"],
                                    bar.min_top1_agreement, True))
            else:
                d = res["detection"]
                checks.append(Check(kind, resolver, "detection.recall", d["recall"], bar.min_detection_recall, True))
                checks.append(Check(kind, resolver, "detection.precision", d["precision"],
                                    bar.min_detection_precision, True))
                if "map50_drop" in res:
                    checks.append(Check(kind, resolver, "map50_drop", res["map50_drop"], bar.max_map50_drop, False))
    return checks
