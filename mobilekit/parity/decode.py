"""The decode check: mobilekit's decode held to the model's own decoder, candidate by candidate, on float outputs.

Parity proves that every artifact agrees with the float model *under mobilekit's decode*; this proves the decode is
the model's. The reference (``mobilekit.references``: a zoo's decode layer saved in the model, or the user's
``detection.reference: module:function``) decodes the model's raw outputs; mobilekit's head decodes the same image's
outputs as the contract reads them. Every candidate's box must agree within :data:`MAX_BOX_PX` input pixels and
every score within :data:`MAX_SCORE_DIFF`.

When they differ, the head's conventions are the usual cause (y-first boxes, DFL side order, an activation applied
twice, a stride rule), so each head lists the alternatives of its settings (``alternatives``) and the check tries
them, one setting at a time and then in pairs, to name the change that matches.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np

from mobilekit.config import Config
from mobilekit.contract import Contract
from mobilekit.errors import ConfigError, ModelError
from mobilekit.heads import get_head

#: the bar: every candidate's box within half a pixel of the reference's, every score within 1e-4
MAX_BOX_PX = 0.5
MAX_SCORE_DIFF = 1e-4
#: box coordinates are compared within this many input sizes of the image: beyond, no one draws the box and float32
#: (the reference's arithmetic) no longer resolves half a pixel (an untrained head's exp(20) x stride is 1e10 px)
WINDOW = 4.0
#: alternatives tried in pairs when no single setting matches (the pairs of the first this many)
PAIRED = 14


@dataclass
class Sample:
    """One image's float outputs: the model's own (its output order, for the reference) and the contract's roles."""

    model: list[np.ndarray]
    roles: dict[str, np.ndarray]


@dataclass
class DecodeCheck:
    """What the check measured (``report/parity.json``'s ``"decode"``)."""

    reference: str | None
    candidates: int = 0
    images: int = 0
    max_box_px: float | None = None
    max_score_diff: float | None = None
    passed: bool | None = None  # None: no reference to check against
    fix: dict[str, Any] | None = None  # the settings that match the reference, when the configured ones do not
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {"reference": self.reference, "candidates": self.candidates, "images": self.images,
               "max_box_px": self.max_box_px, "max_score_diff": self.max_score_diff, "passed": self.passed}
        if self.fix is not None:
            out["fix"] = self.fix
        if self.reference is None:
            out["note"] = "decode not checked against a reference"
        return out


def compare(contract: Contract, samples: list[Sample], expected: list[tuple[np.ndarray, np.ndarray]]
            ) -> tuple[float, float, int]:
    """The largest box difference (input pixels) and score difference over every candidate of every image, and
    the candidates per image. A reference that gives only the best class's score is compared with the best
    class's score; a candidate count that differs is an error naming both."""
    head = get_head(contract.head.format)
    size = max(contract.input.height, contract.input.width)
    lo, hi = -WINDOW * size, (WINDOW + 1) * size
    box, score, n = 0.0, 0.0, 0
    for s, (ref_boxes, ref_scores) in zip(samples, expected, strict=True):
        c = head.candidates(s.roles, contract)
        n = len(c.boxes)
        if len(ref_boxes) != n:
            raise ModelError(f"the reference decoder gives {len(ref_boxes)} candidates, mobilekit's "
                             f"'{contract.head.format}' head {n}",
                             fix="match the head's strides / anchors to the model, or check that the reference "
                                 "returns every candidate (before thresholds and NMS)")
        ours = c.scores.max(axis=1) if ref_scores.ndim == 1 else c.scores
        if ours.shape != ref_scores.shape:
            raise ModelError(f"the reference decoder gives scores of shape {list(ref_scores.shape)}, mobilekit "
                             f"{list(ours.shape)}", fix="return [N, C] class scores (or the best class's [N])")
        box = max(box, _box_error(c.boxes, ref_boxes, lo, hi))
        score = max(score, _error(ours, ref_scores))
    return box, score, n


def _error(ours: np.ndarray, ref: np.ndarray) -> float:
    """The largest difference; a NaN on one side only is an infinite one (both NaN: the same non-value)."""
    if not ours.size:
        return 0.0
    diff = np.abs(ours - ref)
    one = np.isnan(ours) ^ np.isnan(ref)
    return float(np.max(np.where(one, np.inf, np.nan_to_num(diff, nan=0.0))))


def _box_error(ours: np.ndarray, ref: np.ndarray, lo: float, hi: float) -> float:
    """The largest box coordinate difference within the window. A NaN of one side is excused only where the other
    side's value is outside the window: the reference's float32 ``inf - inf`` of an exp that overflowed, where
    mobilekit's float64 has a huge finite box."""
    if not ours.size:
        return 0.0
    other = np.where(np.isnan(ours), ref, ours)
    excused = (np.isnan(ours) ^ np.isnan(ref)) & ((other <= lo) | (other >= hi))
    a, b = np.clip(ours, lo, hi), np.clip(ref, lo, hi)
    return _error(np.where(excused, 0.0, a), np.where(excused, 0.0, b))


def passes(box: float, score: float) -> bool:
    return box <= MAX_BOX_PX and score <= MAX_SCORE_DIFF


def setting_line(change: dict[str, Any]) -> str:
    """``{"params.sides": "tlbr"}`` → ``detection.params.sides: tlbr``."""
    def value(v: Any) -> str:
        return str(v).lower() if isinstance(v, bool) else str(v).replace("'", "")

    return ", ".join(f"detection.{k}: {value(v)}" for k, v in change.items())


def _changed(cfg: Config, change: dict[str, Any]) -> Config:
    det = cfg.detection
    params = dict(det.params)
    top: dict[str, Any] = {}
    anchors = det.anchors
    for key, v in change.items():
        if key.startswith("anchors."):
            anchors = dataclasses.replace(anchors, **{key.removeprefix("anchors."): v})
        elif key.startswith("params."):
            name = key.removeprefix("params.")
            if v is None:
                params.pop(name, None)
            else:
                params[name] = v
        else:
            top[key] = v
    changed = dataclasses.replace(det, params=params, anchors=anchors, **top)

    def refuse(key: str, message: str, fix: str) -> NoReturn:
        raise ConfigError(f"{key}: {message}", fix=fix)

    changed.check(refuse)  # a change the config loader would refuse is not a fix to suggest
    return dataclasses.replace(cfg, detection=changed)


def diagnose(cfg: Config, contract_for: Callable[[Config], Contract], samples: list[Sample],
             expected: list[tuple[np.ndarray, np.ndarray]]) -> tuple[dict[str, Any] | None, float, float]:
    """The change of settings (one, else two) under which the decode matches the reference, with its errors; or
    ``None`` and the closest errors found."""
    alternatives = get_head(cfg.detection.head).alternatives(cfg.detection)
    closest = (float("inf"), float("inf"))
    pairs = ({**a, **b} for a, b in itertools.combinations(alternatives[:PAIRED], 2) if not set(a) & set(b))
    for change in itertools.chain(alternatives, pairs):
        try:
            box, score, _ = compare(contract_for(_changed(cfg, change)), samples, expected)
        except Exception:  # a combination the head or the contract refuses: not the answer
            continue
        if passes(box, score):
            return change, box, score
        closest = min(closest, (box, score))
    return None, *closest


def run(cfg: Config, contract: Contract, contract_for: Callable[[Config], Contract], name: str,
        reference: Callable[..., tuple[np.ndarray, np.ndarray]], samples: list[Sample]) -> DecodeCheck:
    """Decode every sample both ways; on a difference, find the settings that match."""
    size = (contract.input.height, contract.input.width)
    expected = []
    for s in samples:
        boxes, scores = reference(s.model, size, **cfg.detection.reference_args)
        expected.append((np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64)))
    box, score, n = compare(contract, samples, expected)
    check = DecodeCheck(name, n, len(samples), box, score, passes(box, score))
    if not check.passed:
        change, fbox, fscore = diagnose(cfg, contract_for, samples, expected)
        if change is not None:
            check.fix = {"settings": setting_line(change), "max_box_px": fbox, "max_score_diff": fscore}
    return check


def summary(record: dict[str, Any] | None) -> str:
    """One line for the console and the report: what the decode was checked against, and how close it came."""
    if not record or record.get("reference") is None:
        return ("decode not checked against a reference (set detection.reference: attached, or module:function, to "
                "hold the decode to the model's own decoder)")
    verdict = "agrees with" if record["passed"] else "DIFFERS from"
    return (f"decode {verdict} {record['reference']}: boxes within {record['max_box_px']:.2g} px, scores within "
            f"{record['max_score_diff']:.2g}, over {record['candidates']:,} candidates x {record['images']} images")


def failure_line(check: DecodeCheck) -> tuple[str, str]:
    """The one line (and its fix) of a decode that differs from the reference."""
    what = (f"mobilekit's decode differs from the model's own decoder ({check.reference}): boxes up to "
            f"{check.max_box_px:.3g} px apart, scores up to {check.max_score_diff:.2g}, over {check.candidates:,} "
            f"candidates x {check.images} images")
    if check.fix:
        return what, (f"set {check.fix['settings']} (then the decode agrees within "
                      f"{check.fix['max_box_px']:.2g} px and {check.fix['max_score_diff']:.2g})")
    return what, ("no single setting or pair of settings of this head matches: check detection.head and its params "
                  "against the model's decoder, or that detection.reference decodes this model")
