"""Grid heads with objectness: YOLOX (anchor-free, raw), YOLOv5/v7/YOLOR (anchor grid, raw) and decoded boxes with
an objectness channel; ``[1, N, 4 + 1 + C]`` or ``[1, N, 4 + C + 1]``, or boxes ``[1, N, 4]`` next to ``[1, N, 1 + C]``.

Described by ``detection.params`` rather than by one format per model family:

- ``box``: how the 4 box channels encode the box. ``decoded`` (``box_format`` / ``box_units`` as for any head),
  ``yolox`` (centre ``(raw + cell) * stride``, size ``exp(raw) * stride``) or ``anchors`` (YOLOv5: centre
  ``(2 * sigmoid(raw) - 0.5 + cell) * stride``, size ``(2 * sigmoid(raw))^2 * anchor``);
- ``objectness``: where the objectness channel sits among the score channels, ``first`` or ``last``; the score of
  a class is objectness x class probability (``score_activation`` applies to both);
- ``strides`` (per level, output order) and, for ``anchors``, ``anchors``: per level a list of ``[w, h]`` in input
  pixels (``[h, w]`` with ``anchor_order: hw``, as the tf_keras zoos list YOLOR's); candidates run level by level,
  then anchor by anchor, then over the cells row-major (Ultralytics' export order), or cell first with
  ``order: cell_first``;
- ``activated``: the roles whose activation the model already applied (``boxes``: the sigmoid of ``anchors`` boxes,
  as YOLOv7 exports apply it to every channel; ``objectness``, ``classes``: the score sigmoid), so it is not applied
  twice. The box channels' order is ``detection.box_order`` (``yx``: ``[dy, dx, dh, dw]``).

The single output is split before int8 like any ``[boxes | scores]`` output: the box channels get their own scale,
objectness and classes share theirs (both probabilities or logits of the same range).
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
    activate,
    flip,
    register,
    score_alternatives,
    strides_for,
    strides_ok,
    to_xyxy,
    xy_first,
    yx_once,
)

if TYPE_CHECKING:
    from mobilekit.config import DetectionSettings
    from mobilekit.contract import Contract, HeadSpec, InputSpec
    from mobilekit.heads.base import Fail

BOXES = ("decoded", "yolox", "anchors")
ROLES = ("boxes", "objectness", "classes")
SETTINGS = ("box", "objectness", "strides", "anchors", "order", "activated", "anchor_order")
#: YOLOv5's COCO anchors, ``init``'s guess for a three-level anchor-grid head (input pixels, per level)
YOLOV5_ANCHORS = [[[10, 13], [16, 30], [33, 23]], [[30, 61], [62, 45], [59, 119]], [[116, 90], [156, 198], [373, 326]]]


def cells(params: dict[str, Any], inp: InputSpec) -> np.ndarray:
    """``[N, 5]`` per candidate: cell x, cell y, stride, anchor w, anchor h (0 without anchors), in head order."""
    rows = []
    for level, s in enumerate(params.get("strides") or []):
        anchors = (params.get("anchors") or [[[0, 0]]] * (level + 1))[level]
        gy, gx = np.mgrid[0:inp.height // s, 0:inp.width // s]
        grid = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float64)
        per = [np.concatenate([grid, np.full((len(grid), 1), s), np.tile(np.asarray(a, np.float64), (len(grid), 1))],
                              1) for a in anchors]
        if params.get("order", "anchor_first") == "anchor_first":
            rows.extend(per)
        else:  # cell by cell, the anchors of a cell together
            rows.append(np.stack(per, 1).reshape(-1, 5))
    return np.concatenate(rows) if rows else np.zeros((0, 5))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _conventions(params: dict[str, Any], why: str, guesses: list[str], activated: bool) -> list[Reading]:
    """A raw grid reading under each convention: objectness first or last, x- or y-first box channels, and (for
    anchor grids) the boxes' sigmoid applied by the model or not."""
    out = []
    for where, order, act in itertools.product(("first", "last"), ("xy", "yx"), (False, True) if activated
                                               else (False,)):
        det = {"head": "grid", **({"box_order": "yx"} if order == "yx" else {}), "score_activation": "sigmoid",
               "params": {**params, "objectness": where, **({"activated": ["boxes"]} if act else {})}}
        out.append(Reading(det, why + (", y-first" if order == "yx" else "") + (", boxes activated" if act else ""),
                           guesses=[*guesses, "params.objectness", *(["box_order"] if order == "yx" else [])]))
    return out


class GridHead(Head):
    name = "grid"
    channel_axis = 2
    rank = 5

    def validate(self, det: DetectionSettings, fail: Fail) -> None:
        p = det.params
        unknown = set(p) - set(SETTINGS)
        if unknown:
            fail(f"detection.params.{sorted(unknown)[0]}", "not a 'grid' head setting", f"use {', '.join(SETTINGS)}")
        self._validate_conventions(det, fail)
        yx_once(det, fail)
        if p.get("box", "decoded") not in BOXES:
            fail("detection.params.box", f"must be one of {', '.join(BOXES)}",
                 "decoded: boxes as the model outputs them; yolox: YOLOX raw; anchors: YOLOv5/v7 raw")
        if p.get("objectness", "last") not in ("first", "last"):
            fail("detection.params.objectness", "must be first or last (where objectness sits among the scores)",
                 "YOLOv5 and YOLOX put it first: [box, obj, classes]")
        if det.score_activation not in ("none", "sigmoid") or det.background_class:
            fail("detection.score_activation", "a 'grid' head scores objectness x class with sigmoid or none",
                 "use sigmoid for logits, none for probabilities; no background class")
        if p.get("order", "anchor_first") not in ("anchor_first", "cell_first"):
            fail("detection.params.order", "must be anchor_first or cell_first", "Ultralytics exports anchor_first")
        strides = p.get("strides")
        if p.get("box", "decoded") != "decoded" and not strides_ok(p):
            fail("detection.params.strides", "raw grid boxes need the stride of each output level, in output order",
                 "e.g. strides: [8, 16, 32]")
        if p.get("box") == "anchors":
            anchors = p.get("anchors")
            if not isinstance(anchors, list) or len(anchors) != len(strides) or not all(
                    isinstance(level, list) and level and all(isinstance(a, list) and len(a) == 2 for a in level)
                    for level in anchors):
                fail("detection.params.anchors", "needs one list of [w, h] anchors (input pixels) per stride",
                     "e.g. YOLOv5s: [[[10, 13], [16, 30], [33, 23]], [[30, 61], [62, 45], [59, 119]], "
                     "[[116, 90], [156, 198], [373, 326]]]")

    def _validate_conventions(self, det: DetectionSettings, fail: Fail) -> None:
        p = det.params
        activated = p.get("activated", [])
        if not isinstance(activated, list) or not set(activated) <= set(ROLES):
            fail("detection.params.activated", f"lists roles among {', '.join(ROLES)}",
                 "e.g. activated: [boxes, objectness, classes] for a YOLOv7 export with sigmoid on every channel")
        if "boxes" in activated and p.get("box", "decoded") != "anchors":
            fail("detection.params.activated", "only anchors boxes have an activation (the sigmoid of YOLOv5/v7)",
                 "remove boxes from activated")
        if det.score_activation == "sigmoid" and ("objectness" in activated) != ("classes" in activated):
            fail("detection.params.activated", "objectness and classes share the score activation",
                 "list both (the model applied the sigmoid to both) or neither")
        if p.get("anchor_order", "wh") not in ("wh", "hw"):
            fail("detection.params.anchor_order", "must be wh or hw (how each anchor pair is listed)",
                 "Ultralytics lists [w, h]; keras_cv_attention_models' YOLOR anchors are [h, w]")

    def alternatives(self, det: DetectionSettings) -> list[dict[str, Any]]:
        p = det.params
        out: list[dict[str, Any]] = [{"box_order": flip(det.box_order, "xy", "yx")},
                                     {"params.objectness": flip(p.get("objectness", "last"), "first", "last")},
                                     *score_alternatives(det, ("none", "sigmoid"))]
        if p.get("box") == "anchors":
            activated = list(p.get("activated", []))
            toggled = [r for r in activated if r != "boxes"] if "boxes" in activated else [*activated, "boxes"]
            out += [{"params.activated": toggled},
                    {"params.anchor_order": flip(p.get("anchor_order", "wh"), "wh", "hw")},
                    {"params.order": flip(p.get("order", "anchor_first"), "anchor_first", "cell_first")}]
        return out

    def complete(self, spec: HeadSpec, det: DetectionSettings) -> None:
        """The settings, with the conventions resolved once: anchors as ``[w, h]``, a score activation the model
        already applied dropped, so every runtime reads one form."""
        p = det.params
        anchors = p.get("anchors") or []
        if p.get("anchor_order", "wh") == "hw":
            anchors = [[[a[1], a[0]] for a in level] for level in anchors]
        activated = set(p.get("activated", []))
        if {"objectness", "classes"} <= activated:
            spec.score_activation = "none"
        spec.params = {"box": p.get("box", "decoded"), "objectness": p.get("objectness", "last"),
                       "strides": list(p.get("strides") or []), "anchors": anchors,
                       "order": p.get("order", "anchor_first"), "objectness_channels": 1,
                       "box_activated": "boxes" in activated}
        if spec.params["box"] != "decoded":
            spec.box_format, spec.box_units = "cxcywh", "pixels"

    #: score channels that are not classes: objectness
    extra_score_channels = 1

    def readings(self, shapes: dict[str, list[int]], h: int, w: int, carried: dict[str, Any] | None
                 ) -> list[Reading]:
        """Decoded boxes, raw YOLOX, raw anchor grids; objectness first or last, box channels x- or y-first, and
        for anchor grids the boxes' sigmoid applied by the model or not (the conventions a tf_keras zoo's YOLOX and
        YOLOv7 follow): the images decide among them."""
        n = next((s[1] for s in shapes.values() if len(s) == 3), 0)
        found = [Reading({"head": "grid", "params": {"box": "decoded", "objectness": where}},
                         f"4 decoded box channels, objectness {where}, classes", guesses=["params.objectness"])
                 for where in ("first", "last")]
        strides = strides_for(n, h, w)
        if strides:
            found += _conventions({"box": "yolox", "strides": strides},
                                  f"raw YOLOX: {n} candidates = the cells of strides {strides}", [], False)
            # one anchor per cell, of a size that cannot be read: 4 strides, marked as a guess
            found += _conventions({"box": "anchors", "strides": strides,
                                   "anchors": [[[4 * s, 4 * s]] for s in strides]},
                                  f"raw anchor grid: one anchor on each cell of strides {strides}",
                                  ["params.anchors (sizes unknown: 4 strides)"], True)
        strides3 = strides_for(n, h, w, per_cell=3)
        if strides3 == [8, 16, 32]:
            found += _conventions({"box": "anchors", "strides": strides3, "anchors": YOLOV5_ANCHORS},
                                  f"raw YOLOv5: {n} candidates = 3 anchors on the cells of strides {strides3}",
                                  ["params.anchors (YOLOv5's COCO anchors)"], True)
        return found

    def levels(self, spec: HeadSpec, inp: InputSpec) -> list[tuple[int, int, int]]:
        """Per level: rows, columns, anchors per cell (to join per-level outputs, ``models.levels``). A joined
        ``[H, W, A * K]`` map runs cell by cell, so several anchors per cell need ``order: cell_first``."""
        p = spec.params
        anchors = p["anchors"] or [[[0, 0]]] * len(p["strides"])
        if any(len(a) > 1 for a in anchors) and p["order"] != "cell_first":
            raise ModelError("per-level outputs [1, H, W, A * K] hold a cell's anchors together, but "
                             "detection.params.order is anchor_first", fix="set detection.params.order: cell_first")
        return [(inp.height // s, inp.width // s, len(a)) for s, a in zip(p["strides"], anchors, strict=True)]

    def bind(self, shapes: dict[str, list[int]], wanted: dict[str, str]) -> tuple[dict[str, str], int]:
        """Roles and classes (the score channels less objectness)."""
        if len(shapes) == 1:
            name, shape = next(iter(shapes.items()))
            if len(shape) != 3 or shape[2] < 6:
                raise ModelError(f"output '{name}' has shape {shape}; a 'grid' head expects [1, N, 4 + 1 + C]",
                                 fix="set detection.head to the model's format")
            return {"predictions": name}, shape[2] - 5
        from mobilekit.heads.base import bind_two

        roles = bind_two(shapes, wanted, 2, self.name)
        return roles, shapes[roles["scores"]][2] - 1

    def check(self, contract: Contract) -> None:
        p = contract.head.params
        if p["box"] == "decoded":
            return
        n = len(cells(p, contract.input))
        out = contract.outputs[0].shape[1]
        if out != n:
            raise ModelError(f"the model has {out} candidates, but strides {p['strides']}"
                             f"{' with their anchors' if p['anchors'] else ''} at {contract.input.width}x"
                             f"{contract.input.height} give {n}",
                             fix="list detection.params.strides (and anchors) in the order of the model's levels")

    def objectness(self, spec: HeadSpec) -> str | None:
        return spec.params["objectness"]

    def parts(self, spec: HeadSpec, channels: int) -> list[tuple[str, int]]:
        """The roles of a single ``[box | scores]`` output, in channel order: objectness is its own int8 output
        (a probability or logit of its own range, next to classes that may sit elsewhere)."""
        obj, classes = ("objectness", 1), ("scores", channels - 5)
        first = spec.params["objectness"] == "first"
        return [("boxes", 4), obj, classes] if first else [("boxes", 4), classes, obj]

    @staticmethod
    def _split(outputs: dict[str, Any], first: bool) -> tuple[Any, Any]:
        """Box channels and score channels (objectness where the head puts it), from one output, two, or three
        (boxes, objectness, classes: the int8 split)."""
        if "predictions" in outputs:
            p = outputs["predictions"][0]
            return p[:, :4], p[:, 4:]
        if "objectness" in outputs:
            obj, cls = outputs["objectness"][0], outputs["scores"][0]
            parts = [obj, cls] if first else [cls, obj]
            if isinstance(obj, np.ndarray):
                return outputs["boxes"][0], np.concatenate(parts, 1)
            import tensorflow as tf

            return outputs["boxes"][0], tf.concat(parts, 1)
        return outputs["boxes"][0], outputs["scores"][0]

    def scores(self, raw: np.ndarray, head: HeadSpec) -> np.ndarray:
        """Objectness x class probability, ``[N, C]``."""
        p = activate(raw, head.score_activation)
        obj, cls = (p[:, :1], p[:, 1:]) if head.params["objectness"] == "first" else (p[:, -1:], p[:, :-1])
        return obj * cls

    def boxes(self, raw: np.ndarray, contract: Contract) -> np.ndarray:
        head = contract.head
        mode = head.params["box"]
        raw = xy_first(np.asarray(raw), head.box_order)
        if mode == "decoded":
            return to_xyxy(raw, head.box_format, head.box_units, contract.input)
        c = cells(head.params, contract.input)
        r = raw.astype(np.float64)
        if mode == "yolox":
            cx, cy = (r[:, 0] + c[:, 0]) * c[:, 2], (r[:, 1] + c[:, 1]) * c[:, 2]
            w, h = np.exp(r[:, 2]) * c[:, 2], np.exp(r[:, 3]) * c[:, 2]
        else:
            s = r if head.params.get("box_activated") else _sigmoid(r)
            cx, cy = (2 * s[:, 0] - 0.5 + c[:, 0]) * c[:, 2], (2 * s[:, 1] - 0.5 + c[:, 1]) * c[:, 2]
            w, h = (2 * s[:, 2]) ** 2 * c[:, 3], (2 * s[:, 3]) ** 2 * c[:, 4]
        return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)

    def candidates(self, outputs: dict[str, np.ndarray], contract: Contract) -> Candidates:
        box, score = self._split(outputs, contract.head.params["objectness"] == "first")
        return Candidates(self.boxes(box, contract), self.scores(np.asarray(score), contract.head))

    def encode(self, boxes: np.ndarray, index: np.ndarray, contract: Contract) -> np.ndarray:
        """xyxy pixels → the raw box channels of candidates ``index`` (the inverse of ``boxes``)."""
        return xy_first(self._encode(boxes, index, contract), contract.head.box_order)

    def _encode(self, boxes: np.ndarray, index: np.ndarray, contract: Contract) -> np.ndarray:
        from mobilekit.heads.base import from_xyxy

        head = contract.head
        mode = head.params["box"]
        if mode == "decoded":
            return from_xyxy(boxes, head.box_format, head.box_units, contract.input)
        c = cells(head.params, contract.input)[index]
        b = np.asarray(boxes, np.float64)
        cx, cy, w, h = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        if mode == "yolox":
            return np.stack([cx / c[:, 2] - c[:, 0], cy / c[:, 2] - c[:, 1], np.log(w / c[:, 2]),
                             np.log(h / c[:, 2])], 1)

        def logit(p: np.ndarray) -> np.ndarray:
            p = np.clip(p, 1e-9, 1 - 1e-9)
            return p if head.params.get("box_activated") else np.log(p / (1 - p))

        return np.stack([logit((cx / c[:, 2] - c[:, 0] + 0.5) / 2), logit((cy / c[:, 2] - c[:, 1] + 0.5) / 2),
                         logit(np.sqrt(w / c[:, 3]) / 2), logit(np.sqrt(h / c[:, 4]) / 2)], 1)

    def decode_tf(self, outs: dict[str, Any], contract: Contract) -> tuple[Any, Any]:
        """Normalized cxcywh boxes and, as the shared post-processing expects raw class scores, logits of
        objectness x class probability (so the shared activation gives the product back)."""
        import tensorflow as tf

        head, inp = contract.head, contract.input
        raw, score = self._split(outs, head.params["objectness"] == "first")
        raw = xy_first(raw, head.box_order)
        mode = head.params["box"]
        size = tf.constant([inp.width, inp.height, inp.width, inp.height], tf.float32)
        if mode == "decoded":
            from mobilekit.heads.base import normalized_cxcywh_tf

            boxes = normalized_cxcywh_tf(raw, contract)
        else:
            c = tf.constant(cells(head.params, inp).astype(np.float32))
            if mode == "yolox":
                xy = (raw[:, :2] + c[:, :2]) * c[:, 2:3]
                wh = tf.exp(raw[:, 2:]) * c[:, 2:3]
            else:
                s = raw if head.params.get("box_activated") else tf.sigmoid(raw)
                xy = (2 * s[:, :2] - 0.5 + c[:, :2]) * c[:, 2:3]
                wh = (2 * s[:, 2:]) ** 2 * c[:, 3:5]
            boxes = tf.concat([xy, wh], 1) / size
        return boxes, self.scores_tf(score, head)

    def scores_tf(self, raw: Any, head: HeadSpec) -> Any:
        import tensorflow as tf

        p = tf.sigmoid(raw) if head.score_activation == "sigmoid" else raw
        obj, cls = (p[:, :1], p[:, 1:]) if head.params["objectness"] == "first" else (p[:, -1:], p[:, :-1])
        prod = tf.clip_by_value(obj * cls, 1e-7, 1 - 1e-7)
        return tf.math.log(prod / (1 - prod)) if head.score_activation == "sigmoid" else prod


register(GridHead())
