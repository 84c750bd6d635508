"""DFL heads (YOLOv8 / YOLO11 raw, keras-cv's YOLOV8Detector): per candidate, 4 x ``reg_max`` distribution bins
and C class logits, over the cells of every stride.

A candidate is a cell centre ``((x + 0.5) * stride, (y + 0.5) * stride)`` in input pixels, levels in ``strides``
order, cells row-major. Each side (left, top, right, bottom: bins ``[side * reg_max, (side + 1) * reg_max)``) is a
softmax over ``reg_max`` bins whose expectation is the distance from the centre in strides. Zoos differ in two
settings: ``sides``, the order of the four sides' bins (``ltrb``; keras_cv_attention_models' YOLOv8 emits ``tlbr``),
and ``activated: [boxes]`` when the model applied the softmax itself. Two outputs (``boxes``:
``[1, N, 4 * reg_max]``, ``scores``: ``[1, N, C]``) or one ``[1, N, 4 * reg_max + C]`` that mobilekit splits before
int8 conversion, so the bins and the class logits each get their own scale; the softmax, the expectation and the
grid stay in float, in post-processing (Python, Kotlin, Swift and the Vision decoder alike).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np

from mobilekit.errors import ModelError
from mobilekit.heads.base import (
    Candidates,
    Head,
    Reading,
    class_scores,
    only_xy,
    register,
    score_alternatives,
    strides_for,
    strides_ok,
)

if TYPE_CHECKING:
    from mobilekit.config import DetectionSettings
    from mobilekit.contract import Contract, HeadSpec, InputSpec
    from mobilekit.heads.base import Fail


def anchor_points(strides: list[int], inp: InputSpec) -> np.ndarray:
    """``[N, 3]``: cell centre x, y (input pixels) and stride of every candidate, in the head's order."""
    rows = []
    for s in strides:
        gy, gx = np.mgrid[0:inp.height // s, 0:inp.width // s]
        rows.append(np.stack([(gx.ravel() + 0.5) * s, (gy.ravel() + 0.5) * s, np.full(gx.size, s)], axis=1))
    return np.concatenate(rows).astype(np.float64)


SIDES = "ltrb"


def side_order(sides: str) -> list[int]:
    """Where each of left, top, right, bottom sits among the model's four sides (``tlbr`` → ``[1, 0, 3, 2]``)."""
    return [sides.index(c) for c in SIDES]


def expectation(bins: np.ndarray, reg_max: int, activated: bool = False) -> np.ndarray:
    """``[N, 4 * reg_max]`` logits (probabilities when ``activated``) → ``[N, 4]`` expected distances (in strides),
    in the model's side order: softmax over each side's bins, then the mean bin index."""
    b = bins.astype(np.float64).reshape(-1, 4, reg_max)
    if activated:
        return b @ np.arange(reg_max, dtype=np.float64)
    e = np.exp(b - b.max(axis=2, keepdims=True))
    return (e / e.sum(axis=2, keepdims=True)) @ np.arange(reg_max, dtype=np.float64)


class DflHead(Head):
    name = "dfl"
    channel_axis = 2
    rank = 4

    def validate(self, det: DetectionSettings, fail: Fail) -> None:
        p = det.params
        unknown = set(p) - {"strides", "reg_max", "sides", "activated"}
        if unknown:
            fail(f"detection.params.{sorted(unknown)[0]}", "the 'dfl' head takes strides, reg_max, sides, activated",
                 "remove it")
        only_xy(det, fail, "detection.params.sides (ltrb, tlbr, ...)")
        if not isinstance(p.get("sides", SIDES), str) or sorted(p.get("sides", SIDES)) != sorted(SIDES):
            fail("detection.params.sides", "must order the four sides l, t, r, b",
                 "Ultralytics and keras-cv: ltrb; keras_cv_attention_models: tlbr")
        if p.get("activated", []) not in ([], ["boxes"]):
            fail("detection.params.activated", "a DFL head's only activation inside a model is the bins' softmax",
                 "activated: [boxes] when the model applies it; the classes' is detection.score_activation")
        if not strides_ok(p):
            fail("detection.params.strides", "a DFL head needs the stride of each output level, in output order",
                 "e.g. strides: [8, 16, 32] (YOLOv8 at P3-P5)")
        reg_max = p.get("reg_max", 16)
        if not isinstance(reg_max, int) or reg_max < 2:
            fail("detection.params.reg_max", "must be an integer of at least 2 (bins per box side)",
                 "YOLOv8 and YOLO11 use 16")

    def complete(self, spec: HeadSpec, det: DetectionSettings) -> None:
        spec.params = {"strides": list(det.params["strides"]), "reg_max": int(det.params.get("reg_max", 16)),
                       "sides": side_order(det.params.get("sides", SIDES)),
                       "box_activated": det.params.get("activated", []) == ["boxes"]}
        spec.box_format, spec.box_units = "xyxy", "pixels"

    def alternatives(self, det: DetectionSettings) -> list[dict[str, Any]]:
        sides = det.params.get("sides", SIDES)
        others = ["".join(p) for p in itertools.permutations(SIDES)]
        common = [s for s in ("tlbr", "ltrb") if s != sides]
        return [*({"params.sides": s} for s in common), *score_alternatives(det),
                {"params.activated": [] if det.params.get("activated") else ["boxes"]},
                *({"params.sides": s} for s in others if s != sides and s not in common)]

    def readings(self, shapes: dict[str, list[int]], h: int, w: int, carried: dict[str, Any] | None
                 ) -> list[Reading]:
        """The cells of the stride set the candidate count gives, sides ltrb (YOLOv8) or tlbr."""
        n = next((s[1] for s in shapes.values() if len(s) == 3), 0)
        fit = [s[2] for s in shapes.values() if len(s) == 3 and s[2] % 4 == 0 and s[2] > 4]
        box = 64 if 64 in fit or len(shapes) != 2 or not fit else fit[0]  # as bind: YOLOv8's 64 decide
        strides = strides_for(n, h, w)
        if strides is None:
            return []
        return [Reading({"head": "dfl", "score_activation": "sigmoid",
                         "params": {"strides": strides, "reg_max": box // 4,
                                    **({"sides": sides} if sides != SIDES else {})}},
                        f"{n} candidates = the cells of strides {strides}"
                        + (f", sides {sides}" if sides != SIDES else ""),
                        guesses=["score_activation", *(["params.sides"] if sides != SIDES else [])])
                for sides in (SIDES, "tlbr")]

    def box_channels(self, spec: HeadSpec) -> int:
        """Channels of the box role: 4 sides x reg_max bins (what the split cuts off a single output)."""
        return 4 * int(spec.params["reg_max"])

    def levels(self, spec: HeadSpec, inp: InputSpec) -> list[tuple[int, int, int]]:
        """Per level: rows, columns, one candidate per cell (to join per-level outputs, ``models.levels``)."""
        return [(inp.height // s, inp.width // s, 1) for s in spec.params["strides"]]

    def bind(self, shapes: dict[str, list[int]], wanted: dict[str, str]) -> tuple[dict[str, str], int]:
        """Roles and classes; a single output's classes are its channels less ``box_channels`` (the caller knows
        reg_max), so it returns -1 for them."""
        if len(shapes) == 1:
            name, shape = next(iter(shapes.items()))
            if len(shape) != 3:
                raise ModelError(f"output '{name}' has shape {shape}; a 'dfl' head expects [1, N, 4 * reg_max + C]",
                                 fix="set detection.head to the model's format")
            return {"predictions": name}, -1
        if set(wanted) >= {"boxes", "scores"}:
            roles = {"boxes": wanted["boxes"], "scores": wanted["scores"]}
        else:
            fit = [n for n, s in shapes.items() if len(s) == 3 and s[2] % 4 == 0 and s[2] > 4]
            # 80 or 20 classes are multiples of 4 too: YOLOv8's 64 bins decide, else the one candidate
            bins = [n for n in fit if shapes[n][2] == 64] or fit
            if len(shapes) != 2 or len(bins) != 1:
                raise ModelError(f"cannot tell the DFL bins from the class scores among outputs {shapes}",
                                 fix="name them in detection.outputs: {boxes: <bins output>, scores: <classes>}")
            roles = {"boxes": bins[0], "scores": next(n for n in shapes if n != bins[0])}
        for role, name in roles.items():
            if name not in shapes or len(shapes[name]) != 3:
                raise ModelError(f"output '{name}' ({role}) is not a [1, N, K] model output (outputs: {shapes})",
                                 fix="correct detection.outputs")
        return roles, shapes[roles["scores"]][2]

    def check(self, contract: Contract) -> None:
        """The candidates must be the cells of the strides at this input size."""
        n = sum((contract.input.height // s) * (contract.input.width // s) for s in contract.head.params["strides"])
        out = contract.outputs[0].shape[1]
        if out != n:
            raise ModelError(f"the model has {out} candidates, but strides {contract.head.params['strides']} at "
                             f"{contract.input.width}x{contract.input.height} give {n} cells",
                             fix="list detection.params.strides in the order of the model's levels")
        bins = next((o.shape[2] for o in contract.outputs if o.role == "boxes"), None)
        if bins is not None and bins != 4 * contract.head.params["reg_max"]:
            raise ModelError(f"the boxes output has {bins} channels, not 4 x reg_max = "
                             f"{4 * contract.head.params['reg_max']}", fix=f"set detection.params.reg_max: {bins // 4}")

    def _split(self, outputs: dict[str, np.ndarray], contract: Contract) -> tuple[np.ndarray, np.ndarray]:
        r4 = 4 * contract.head.params["reg_max"]
        if "predictions" in outputs:
            p = outputs["predictions"][0]
            return p[:, :r4], p[:, r4:]
        return outputs["boxes"][0], outputs["scores"][0]

    def candidates(self, outputs: dict[str, np.ndarray], contract: Contract) -> Candidates:
        bins, scores = self._split(outputs, contract)
        head = contract.head
        pts = anchor_points(head.params["strides"], contract.input)
        p = head.params
        d = expectation(bins, p["reg_max"], p.get("box_activated", False))[:, p.get("sides", [0, 1, 2, 3])]
        d = d * pts[:, 2:3]
        boxes = np.stack([pts[:, 0] - d[:, 0], pts[:, 1] - d[:, 1], pts[:, 0] + d[:, 2], pts[:, 1] + d[:, 3]], 1)
        return Candidates(boxes, class_scores(np.asarray(scores), head))

    def encode(self, boxes: np.ndarray, index: np.ndarray, contract: Contract) -> np.ndarray:
        """Boxes → bin logits whose softmax is the two-hot distribution of each side's distance (DFL's target),
        as logs: ``decode(encode(b)) == b`` for distances inside ``[0, reg_max - 1]`` strides."""
        reg_max = contract.head.params["reg_max"]
        pts = anchor_points(contract.head.params["strides"], contract.input)[index]
        b = np.asarray(boxes, np.float64)
        d = np.stack([pts[:, 0] - b[:, 0], pts[:, 1] - b[:, 1], b[:, 2] - pts[:, 0], b[:, 3] - pts[:, 1]], 1)
        d = np.clip(d / pts[:, 2:3], 0, reg_max - 1 - 1e-6)
        lo = np.floor(d).astype(int)
        probs = np.zeros((len(b), 4, reg_max))
        rows, sides = np.indices(lo.shape)
        probs[rows, sides, lo] = lo + 1 - d
        probs[rows, sides, lo + 1] = d - lo
        model = np.empty_like(probs)  # the model's side order
        model[:, contract.head.params.get("sides", [0, 1, 2, 3])] = probs
        out = model if contract.head.params.get("box_activated") else np.log(model + 1e-12)
        return out.reshape(len(b), 4 * reg_max)

    def decode_tf(self, outs: dict[str, Any], contract: Contract) -> tuple[Any, Any]:
        import tensorflow as tf

        head, inp = contract.head, contract.input
        reg_max = head.params["reg_max"]
        if "predictions" in outs:
            p = outs["predictions"][0]
            bins, scores = p[:, : 4 * reg_max], p[:, 4 * reg_max:]
        else:
            bins, scores = outs["boxes"][0], outs["scores"][0]
        pts = tf.constant(anchor_points(head.params["strides"], inp).astype(np.float32))
        probs = tf.reshape(bins, [-1, 4, reg_max])
        if not head.params.get("box_activated"):
            probs = tf.nn.softmax(probs, axis=2)
        d = tf.reduce_sum(probs * tf.range(reg_max, dtype=tf.float32), axis=2)
        d = tf.gather(d, head.params.get("sides", [0, 1, 2, 3]), axis=1) * pts[:, 2:3]
        x1, y1 = pts[:, 0] - d[:, 0], pts[:, 1] - d[:, 1]
        x2, y2 = pts[:, 0] + d[:, 2], pts[:, 1] + d[:, 3]
        size = tf.constant([inp.width, inp.height, inp.width, inp.height], tf.float32)
        return tf.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=1) / size, scores


register(DflHead())
