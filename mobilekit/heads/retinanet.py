"""Multi-level anchor heads (RetinaNet, EfficientDet, keras-hub's and keras-cv's RetinaNet, torchvision's):
per level ``l`` of stride ``s``, every cell holds ``A`` anchors of base size ``anchor_scale * s * 2^(k / octaves)``
(``k`` over the octave scales) at each aspect ratio; boxes are centre/size deltas against them, scores class
logits. Two outputs (``boxes`` ``[1, N, 4]``, ``scores`` ``[1, N, C]``) or one ``[1, N, 4 + C]`` split before int8.

The families differ in details that move every box, so each is a setting (``detection.params``), not a guess:

- ``offset``: a cell centre is ``(x + offset) * s``: 0.5 in keras-cv and EfficientDet, 0 in torchvision/keras-hub;
- ``ratio``: an aspect ratio ``r`` is ``w/h`` (keras-cv, EfficientDet: ``w = size * sqrt(r)``) or ``h/w``
  (torchvision, keras-hub); a ``[w, h]`` pair multiplies the size directly (EfficientDet's ``(1.4, 0.7)``);
- ``order``: within a cell, ``scale_first`` (every ratio of scale 0, then scale 1: keras-cv, EfficientDet) or
  ``ratio_first`` (torchvision, keras-hub);
- ``rounding: torchvision``: integer base sizes, half extents rounded to even, cell spacing ``size // cells``;
- ``clip``: anchors clipped to the image (keras-cv);
- ``deltas``: channel order ``yxhw`` (TF: keras-cv, EfficientDet) or ``xywh`` (torchvision, keras-hub), each
  multiplied by its ``variances`` entry before decoding: ``cx = dx * wa + cxa``, ``w = exp(dw) * wa``;
- ``spacing``: ``stride`` (cells ``stride`` apart, anchors sized from it) or ``cells`` (EfficientDet's and
  keras_cv_attention_models': the spacing is ``input / cells`` on each axis and sizes follow it, so a 320-pixel
  input's 3-cell top level is 106.67 pixels apart, not 128). Strides may be fractional.

Levels have ``ceil(size / stride)`` cells per side; candidates run level by level, row, column, anchor (the
order in which a ``[1, H, W, A * 4]`` map reshapes). The anchor shapes are resolved once here (``complete``) into
the contract, so Python, Kotlin and Swift loop over the same few numbers.
"""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from mobilekit.errors import ModelError
from mobilekit.heads.base import (
    Candidates,
    Head,
    Reading,
    bind_two,
    class_scores,
    flip,
    only_xy,
    register,
    score_alternatives,
)

if TYPE_CHECKING:
    from mobilekit.config import DetectionSettings
    from mobilekit.contract import Contract, HeadSpec, InputSpec
    from mobilekit.heads.base import Fail

SETTINGS = ("strides", "anchor_scale", "sizes", "octaves", "scales", "aspect_ratios", "ratio", "order", "offset",
            "rounding", "clip", "deltas", "variances", "spacing")
#: keras-cv's RetinaNet, EfficientDet's and TF's conventions
DEFAULTS: dict[str, Any] = {"anchor_scale": 4.0, "octaves": 3, "aspect_ratios": [0.5, 1.0, 2.0], "ratio": "w/h",
                            "order": "scale_first", "offset": 0.5, "rounding": "none", "clip": False,
                            "deltas": "yxhw", "variances": [1.0, 1.0, 1.0, 1.0], "spacing": "stride"}
#: the conventions of the families mobilekit knows, and the level sets ``init`` tries them on
PRESETS: dict[str, dict[str, Any]] = {
    "keras-cv": {"anchor_scale": 4, "octaves": 3, "aspect_ratios": [0.5, 1.0, 2.0], "clip": True,
                 "variances": [0.1, 0.1, 0.2, 0.2]},
    "torchvision/keras-hub": {"anchor_scale": 4, "octaves": 3, "aspect_ratios": [0.5, 1.0, 2.0], "ratio": "h/w",
                              "order": "ratio_first", "offset": 0, "rounding": "torchvision", "deltas": "xywh"},
    "EfficientDet": {"anchor_scale": 4, "octaves": 3, "aspect_ratios": [[1.0, 1.0], [1.4, 0.7], [0.7, 1.4]]},
}
LEVEL_SETS = [[8, 16, 32, 64, 128], [8, 16, 32, 64], [8, 16, 32], [16, 32, 64, 128, 256]]
CHOICES = {"ratio": ("w/h", "h/w"), "order": ("scale_first", "ratio_first"), "rounding": ("none", "torchvision"),
           "deltas": ("yxhw", "xywh"), "spacing": ("stride", "cells")}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def _shapes(size: float, p: dict[str, Any], stretch: tuple[float, float] = (1.0, 1.0)) -> list[list[float]]:
    """The ``[w, h]`` of one level's anchors, in the head's order within a cell; ``stretch`` scales the widths and
    heights (``spacing: cells``: the cells' spacing over the nominal stride, per axis)."""
    scales = p.get("scales") or [2 ** (k / p["octaves"]) for k in range(p["octaves"])]
    pairs = []
    for r in p["aspect_ratios"]:
        if isinstance(r, list):
            pairs.append((float(r[0]), float(r[1])))
        else:
            q = math.sqrt(r)
            pairs.append((q, 1 / q) if p["ratio"] == "w/h" else (1 / q, q))
    combos = [(s, wh) for s in scales for wh in pairs] if p["order"] == "scale_first" else \
        [(s, wh) for wh in pairs for s in scales]
    out = []
    for s, (wm, hm) in combos:
        base = size * s
        if p["rounding"] == "torchvision":  # int(size), then round(w / 2) half to even, as torch.round
            base = float(int(base))
            out.append([2 * float(np.round(base * wm / 2)), 2 * float(np.round(base * hm / 2))])
        else:
            out.append([base * wm * stretch[0], base * hm * stretch[1]])
    return out


def resolve(det_params: dict[str, Any], inp: InputSpec) -> dict[str, Any]:
    """Settings (defaults filled in) plus, per level, the anchor shapes, the grid and the cell spacing: what the
    contract carries and every runtime loops over."""
    p = {**DEFAULTS, **det_params}
    sizes = p.get("sizes") or [p["anchor_scale"] * s for s in p["strides"]]
    grids, spacing, shapes = [], [], []
    for s, size in zip(p["strides"], sizes, strict=True):
        gh, gw = math.ceil(inp.height / s - 1e-9), math.ceil(inp.width / s - 1e-9)
        grids.append([gh, gw])
        if p["rounding"] == "torchvision":
            spacing.append([inp.height // gh, inp.width // gw])
        elif p["spacing"] == "cells":
            spacing.append([inp.height / gh, inp.width / gw])
        else:
            spacing.append([s, s])
        stretch = (spacing[-1][1] / s, spacing[-1][0] / s) if p["spacing"] == "cells" else (1.0, 1.0)
        shapes.append(_shapes(float(size), p, stretch))
    return {**p, "grids": grids, "spacing": spacing, "shapes": shapes}


def anchor_count(p: dict[str, Any]) -> int:
    """Candidates of resolved settings: every level's cells times its anchors per cell."""
    return sum(gh * gw * len(s) for (gh, gw), s in zip(p["grids"], p["shapes"], strict=True))


def anchors(p: dict[str, Any], inp: InputSpec) -> np.ndarray:
    """``[N, 4]`` anchors as ``cx, cy, w, h`` in input pixels, in the head's candidate order."""
    rows = []
    for (gh, gw), (sy, sx), shapes in zip(p["grids"], p["spacing"], p["shapes"], strict=True):
        gy, gx = np.mgrid[0:gh, 0:gw]
        cx = np.repeat((gx.ravel() + p["offset"]) * sx, len(shapes))
        cy = np.repeat((gy.ravel() + p["offset"]) * sy, len(shapes))
        wh = np.tile(np.asarray(shapes, np.float64), (gh * gw, 1))
        rows.append(np.stack([cx, cy, wh[:, 0], wh[:, 1]], 1))
    a = np.concatenate(rows) if rows else np.zeros((0, 4))
    if p["clip"]:
        x1 = np.clip(a[:, 0] - a[:, 2] / 2, 0, inp.width)
        y1 = np.clip(a[:, 1] - a[:, 3] / 2, 0, inp.height)
        x2 = np.clip(a[:, 0] + a[:, 2] / 2, 0, inp.width)
        y2 = np.clip(a[:, 1] + a[:, 3] / 2, 0, inp.height)
        a = np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1)
    return a


class RetinaNetHead(Head):
    name = "retinanet"
    channel_axis = 2
    rank = 3

    def validate(self, det: DetectionSettings, fail: Fail) -> None:
        p = det.params
        unknown = set(p) - set(SETTINGS)
        if unknown:
            fail(f"detection.params.{sorted(unknown)[0]}", "not a 'retinanet' head setting",
                 f"use {', '.join(SETTINGS)}")
        if not (isinstance(p.get("strides"), list) and p["strides"] and all(_number(v) for v in p["strides"])):
            fail("detection.params.strides",
                 "a multi-level anchor head needs the stride of each level, in output order",
                 "e.g. strides: [8, 16, 32, 64, 128] (levels 3-7)")
        for key, choices in CHOICES.items():
            if p.get(key, DEFAULTS[key]) not in choices:
                fail(f"detection.params.{key}", f"must be one of {', '.join(choices)}",
                     "keras-cv/EfficientDet: ratio w/h, order scale_first, deltas yxhw; torchvision/keras-hub: "
                     "ratio h/w, order ratio_first, rounding torchvision, deltas xywh, offset 0")
        only_xy(det, fail, "detection.params.deltas (yxhw or xywh)")
        self._validate_sizes(p, fail)

    def _validate_sizes(self, p: dict[str, Any], fail: Fail) -> None:
        if "sizes" in p and (not isinstance(p["sizes"], list) or len(p["sizes"]) != len(p["strides"])
                             or not all(_number(s) for s in p["sizes"])):
            fail("detection.params.sizes", "needs one base anchor size (input pixels) per stride",
                 "e.g. sizes: [32, 64, 128, 256, 512], or anchor_scale: 4 (size = 4 x stride)")
        if not _number(p.get("anchor_scale", 4.0)):
            fail("detection.params.anchor_scale", "must be a positive number", "RetinaNet and EfficientDet use 4")
        if "scales" in p and (not isinstance(p["scales"], list) or not p["scales"]
                              or not all(_number(s) for s in p["scales"])):
            fail("detection.params.scales", "must list positive size multipliers", "e.g. [1.0, 1.26, 1.587]")
        if not isinstance(p.get("octaves", 3), int) or p.get("octaves", 3) < 1:
            fail("detection.params.octaves", "must be a positive integer (scales 2^(k / octaves))", "RetinaNet: 3")
        ratios = p.get("aspect_ratios", DEFAULTS["aspect_ratios"])
        if not isinstance(ratios, list) or not ratios or not all(
                _number(r) or (isinstance(r, list) and len(r) == 2 and all(_number(v) for v in r)) for r in ratios):
            fail("detection.params.aspect_ratios", "must list ratios, or [w, h] multipliers",
                 "e.g. [0.5, 1.0, 2.0], or EfficientDet's [[1.0, 1.0], [1.4, 0.7], [0.7, 1.4]]")
        if p.get("offset", 0.5) not in (0, 0.5, 0.0):
            fail("detection.params.offset", "must be 0 or 0.5 (where a cell's anchors are centred)",
                 "0.5: keras-cv, EfficientDet; 0: torchvision, keras-hub")
        v = p.get("variances", DEFAULTS["variances"])
        if not isinstance(v, list) or len(v) != 4 or not all(_number(x) for x in v):
            fail("detection.params.variances", "needs 4 positive numbers, in the deltas' channel order",
                 "keras-cv: [0.1, 0.1, 0.2, 0.2]; keras-hub, EfficientDet: [1, 1, 1, 1]")

    def alternatives(self, det: DetectionSettings) -> list[dict[str, Any]]:
        p = {**DEFAULTS, **det.params}
        variances = [1.0, 1.0, 1.0, 1.0] if p["variances"] != [1.0, 1.0, 1.0, 1.0] else [0.1, 0.1, 0.2, 0.2]
        return [{"params.spacing": flip(p["spacing"], "stride", "cells")},
                {"params.deltas": flip(p["deltas"], "yxhw", "xywh")},
                {"params.order": flip(p["order"], "scale_first", "ratio_first")},
                {"params.ratio": flip(p["ratio"], "w/h", "h/w")}, {"params.offset": 0.5 if p["offset"] == 0 else 0},
                {"params.clip": not p["clip"]}, {"params.variances": variances},
                *score_alternatives(det, ("none", "sigmoid")),
                {"params.rounding": flip(p["rounding"], "none", "torchvision")}]

    def complete(self, spec: HeadSpec, det: DetectionSettings) -> None:
        spec.params = {"settings": dict(det.params)}  # resolved against the input size in ``prepare``
        spec.box_format, spec.box_units = "cxcywh", "pixels"

    def prepare(self, spec: HeadSpec, inp: InputSpec) -> None:
        """Resolve the anchor shapes and grids for the input size (called once the contract knows it)."""
        spec.params = {"settings": spec.params["settings"], **resolve(spec.params["settings"], inp)}

    def carried(self, model: Any) -> dict[str, Any] | None:
        """A keras-hub or keras-cv detector keeps its anchor generator: its settings, as ``detection.params``."""
        ag = getattr(model, "anchor_generator", None)
        if ag is None:
            return None
        if hasattr(ag, "min_level") and hasattr(ag, "anchor_size"):  # keras-hub (torchvision's conventions)
            return {"strides": [2 ** k for k in range(ag.min_level, ag.max_level + 1)],
                    "anchor_scale": float(ag.anchor_size), "octaves": int(ag.num_scales),
                    "aspect_ratios": [float(r) for r in ag.aspect_ratios], "ratio": "h/w", "order": "ratio_first",
                    "offset": 0, "rounding": "torchvision", "deltas": "xywh", "variances": [1.0, 1.0, 1.0, 1.0]}
        gens = getattr(ag, "anchor_generators", None)
        if isinstance(gens, dict) and gens:  # keras-cv: one generator per level, centres at (x + 0.5) * stride
            levels = list(gens.values())
            first = levels[0]
            encoder = getattr(model, "label_encoder", None)
            variances = [float(v) for v in np.asarray(getattr(encoder, "box_variance", [1.0] * 4)).ravel()]
            return {"strides": [int(g.stride) for g in levels], "sizes": [float(g.sizes) for g in levels],
                    "scales": [float(s) for s in first.scales],
                    "aspect_ratios": [float(r) for r in first.aspect_ratios], "clip": bool(first.clip_boxes),
                    "variances": variances}
        return None

    def readings(self, shapes: dict[str, list[int]], h: int, w: int, carried: dict[str, Any] | None
                 ) -> list[Reading]:
        """The settings the model carries, else each known convention at each level set whose anchor count is the
        candidate count (the images cannot tell conventions apart well: marked as guesses)."""
        if len(shapes) not in (1, 2) or any(len(s) != 3 for s in shapes.values()):
            return []
        n = next(iter(shapes.values()))[1]
        det = {"head": "retinanet", "score_activation": "sigmoid"}
        if carried is not None:
            return [Reading({**det, "params": carried}, f"read: the model's own anchor generator ({n} anchors)",
                            guesses=["score_activation"], read=True)]
        out = []
        for strides, octaves in itertools.product(LEVEL_SETS, (3, 2, 1)):
            for family, preset in PRESETS.items():
                params = {"strides": strides, **preset, "octaves": octaves}
                if anchor_count(resolve(params, SimpleNamespace(width=w, height=h))) != n:
                    continue
                why = f"{n} candidates = {3 * octaves} anchors on the cells of strides {strides}"
                out.append(Reading({**det, "params": params}, why,
                                   guesses=[f"params (the {family} conventions)", "score_activation"]))
                if any(h % s or w % s for s in strides) and preset.get("rounding") != "torchvision":
                    # a level whose cells do not tile the input: EfficientDet spaces them input / cells apart
                    out.append(Reading({**det, "params": {**params, "spacing": "cells"}},
                                       why + ", spaced input / cells apart",
                                       guesses=[f"params (the {family} conventions, EfficientDet's spacing)",
                                                "score_activation"]))
        return out

    def levels(self, spec: HeadSpec, inp: InputSpec) -> list[tuple[int, int, int]]:
        """Per level: rows, columns, anchors per cell (to join per-level outputs, ``models.levels``)."""
        p = spec.params
        return [(gh, gw, len(s)) for (gh, gw), s in zip(p["grids"], p["shapes"], strict=True)]

    def bind(self, shapes: dict[str, list[int]], wanted: dict[str, str]) -> tuple[dict[str, str], int]:
        if len(shapes) == 1:
            name, shape = next(iter(shapes.items()))
            if len(shape) != 3 or shape[2] < 5:
                raise ModelError(f"output '{name}' has shape {shape}; a 'retinanet' head expects [1, N, 4 + C], or "
                                 "box deltas [1, N, 4] and class logits [1, N, C]",
                                 fix="set detection.head to the model's format")
            return {"predictions": name}, shape[2] - 4
        roles = bind_two(shapes, wanted, 2, self.name)
        return roles, shapes[roles["scores"]][2]

    def check(self, contract: Contract) -> None:
        p = contract.head.params
        n = anchor_count(p)
        out = contract.outputs[0].shape[1]
        if out != n:
            per = len(p["shapes"][0])
            raise ModelError(f"the model has {out} candidates, but strides {p['strides']} with {per} anchors per cell "
                             f"at {contract.input.width}x{contract.input.height} give {n}",
                             fix="match detection.params (strides, octaves/scales, aspect_ratios) to the model's head")

    def _split(self, outputs: dict[str, Any]) -> tuple[Any, Any]:
        if "predictions" in outputs:
            p = outputs["predictions"][0]
            return p[:, :4], p[:, 4:]
        return outputs["boxes"][0], outputs["scores"][0]

    def candidates(self, outputs: dict[str, np.ndarray], contract: Contract) -> Candidates:
        raw, scores = self._split(outputs)
        p = contract.head.params
        a = anchors(p, contract.input)
        d = np.asarray(raw, np.float64) * np.asarray(p["variances"], np.float64)
        if p["deltas"] == "yxhw":
            d = d[:, [1, 0, 3, 2]]
        cx, cy = d[:, 0] * a[:, 2] + a[:, 0], d[:, 1] * a[:, 3] + a[:, 1]
        w, h = np.exp(d[:, 2]) * a[:, 2], np.exp(d[:, 3]) * a[:, 3]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        return Candidates(boxes, class_scores(np.asarray(scores), contract.head))

    def encode(self, boxes: np.ndarray, index: np.ndarray, contract: Contract) -> np.ndarray:
        p = contract.head.params
        a = anchors(p, contract.input)[index]
        b = np.asarray(boxes, np.float64)
        w, h = np.maximum(b[:, 2] - b[:, 0], 1e-6), np.maximum(b[:, 3] - b[:, 1], 1e-6)
        d = np.stack([((b[:, 0] + b[:, 2]) / 2 - a[:, 0]) / a[:, 2], ((b[:, 1] + b[:, 3]) / 2 - a[:, 1]) / a[:, 3],
                      np.log(w / a[:, 2]), np.log(h / a[:, 3])], 1)
        if p["deltas"] == "yxhw":
            d = d[:, [1, 0, 3, 2]]
        return d / np.asarray(p["variances"], np.float64)

    def decode_tf(self, outs: dict[str, Any], contract: Contract) -> tuple[Any, Any]:
        import tensorflow as tf

        raw, scores = self._split(outs)
        p, inp = contract.head.params, contract.input
        a = tf.constant(anchors(p, inp).astype(np.float32))
        d = raw * tf.constant(np.asarray(p["variances"], np.float32))
        if p["deltas"] == "yxhw":
            d = tf.gather(d, [1, 0, 3, 2], axis=1)
        xy = d[:, :2] * a[:, 2:] + a[:, :2]
        wh = tf.exp(d[:, 2:]) * a[:, 2:]
        size = tf.constant([inp.width, inp.height, inp.width, inp.height], tf.float32)
        return tf.concat([xy, wh], 1) / size, scores


register(RetinaNetHead())
