"""The head interface and its registry.

A head owns everything specific to one output format, in one module: the config it needs (``validate``), how to
recognise its outputs (``bind``, ``channel_axis``), the contract fields it adds (``complete``), decoding in numpy
(``candidates``, the reference every runtime is compared with) and in TensorFlow ops (``decode_tf``, compiled into
the Vision pipeline), and its inverse (``encode``, ground truth for fine-tuning). Its Kotlin and Swift decode code
are template partials under ``templates/heads/<name>/`` (beside ``mobilekit/``) that the SDK templates include by
head name.
Thresholding, NMS and letterbox undo are shared (``mobilekit.postprocess``), so every head is post-processed
identically. Adding a head is adding its module (imported in ``heads/__init__.py``) and its partials.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from mobilekit.errors import ModelError
from mobilekit.registry import Registry

if TYPE_CHECKING:
    from mobilekit.config import DetectionSettings
    from mobilekit.contract import Contract, HeadSpec, InputSpec

    Fail = Callable[[str, str, str], NoReturn]  # (config key, what is wrong, the fix) -> raises ConfigError


@dataclass
class Candidates:
    boxes: np.ndarray  # [N, 4] xyxy in model-input pixels (float64)
    scores: np.ndarray  # [N, C] class probabilities (float64)


@dataclass
class Reading:
    """One way to read a model's outputs that ``mobilekit init`` proposes: the detection settings (as the config
    writes them), why they fit, and which of them are guesses. A head proposes it (:meth:`Head.readings`), so
    ``init`` ranks readings without knowing any head."""

    detection: dict[str, Any]
    why: str
    guesses: list[str] = field(default_factory=list)
    read: bool = False  # the settings were read from the model: ranked above any guess
    plausibility: float | None = None  # set by ``init`` from sample images

    @property
    def name(self) -> str:
        box = self.detection.get("params", {}).get("box")
        return self.detection["head"] + (f" ({box})" if box else "")


#: Stride sets of the detector families mobilekit knows, tried in this order against a raw head's candidate count.
STRIDE_SETS = [[8, 16, 32], [8, 16, 32, 64], [16, 32, 64], [4, 8, 16, 32], [8], [16], [32], [4]]


def cell_count(strides: list[int], h: int, w: int) -> int:
    return sum((h // s) * (w // s) for s in strides)


def strides_for(n: int, h: int, w: int, per_cell: int = 1) -> list[int] | None:
    """The first known stride set whose cells (``per_cell`` candidates each) at ``h x w`` are ``n`` candidates."""
    return next((s for s in STRIDE_SETS if cell_count(s, h, w) * per_cell == n), None)


class Head:
    """The whole surface of a head plugin. Subclasses implement the first five methods; the rest have defaults that
    say "this head does not need it", so the build calls every method on every head and never probes for one."""

    name: str
    channel_axis: int = 2  # where the box/class channels are in a [1, N, C] (2) or [1, C, N] (1) output
    rank: int = 50  # where the head is listed to users (config errors, docs): the most common formats first
    extra_score_channels: int = 0  # channels of a joined output that are neither box nor class (objectness)

    def bind(self, shapes: dict[str, list[int]], wanted: dict[str, str]) -> tuple[dict[str, str], int]:
        """Map roles to model output names; return the mapping and the number of classes."""
        raise NotImplementedError

    def candidates(self, outputs: dict[str, np.ndarray], contract: Contract) -> Candidates:
        """Raw float outputs (batch of one, keyed by role) → candidates."""
        raise NotImplementedError

    def encode(self, boxes: np.ndarray, index: np.ndarray, contract: Contract) -> np.ndarray:
        """The inverse of decoding: xyxy boxes in model-input pixels, meant for candidates ``index``, → the raw
        values the boxes output holds there (ground-truth targets for fine-tuning)."""
        raise NotImplementedError

    def decode_tf(self, outs: dict[str, Any], contract: Contract) -> tuple[Any, Any]:
        """TensorFlow twin of ``candidates`` for one image: normalized ``cx, cy, w, h`` boxes [N, 4] and the raw
        class scores [N, C(+1)] (activation, background column and NMS are shared)."""
        raise NotImplementedError

    def validate(self, det: DetectionSettings, fail: Fail) -> None:
        """Reject detection settings this head cannot work with (called by the config loader)."""
        raise NotImplementedError

    def complete(self, spec: HeadSpec, det: DetectionSettings) -> None:
        """Add the contract fields this head needs (anchors, variances, ...) to ``spec``."""

    def prepare(self, spec: HeadSpec, inp: InputSpec) -> None:
        """Resolve what follows from the input size (anchor grids), once, when the contract is derived."""

    def check(self, contract: Contract) -> None:
        """Check what only the bound model shows (the candidate count the strides imply), failing in one line."""

    def alternatives(self, det: DetectionSettings) -> list[dict[str, Any]]:
        """Single changes of the head's convention settings (``{"box_order": "yx"}``, ``{"params.sides":
        "tlbr"}``), most likely first: what the decode check tries when the decode differs from the model's own."""
        return []

    def box_channels(self, spec: HeadSpec) -> int:
        """Channels of one candidate's box: 4, or 4 x ``reg_max`` DFL bins."""
        return 4

    def levels(self, spec: HeadSpec, inp: InputSpec) -> list[tuple[int, int, int]] | None:
        """Per output level (grid height, grid width, candidates per cell) when the head reads per-level maps the
        build joins first; ``None`` for a head whose outputs are never per level. ``spec`` is prepared for
        ``inp``'s size."""
        return None

    def objectness(self, spec: HeadSpec) -> str | None:
        """Where the head reads an objectness channel among the score channels (``first``, ``last``), or ``None``:
        ``init`` weighs a reading by whether the outputs show one there."""
        return None

    def listed(self, shapes: dict[str, list[int]]) -> int:
        """Where ``init`` lists this head's readings of outputs of these shapes (lower first)."""
        return self.rank

    def carried(self, model: Any) -> dict[str, Any] | None:
        """The head's settings as the model object carries them (an anchor generator kept on a keras-hub or
        keras-cv detector), read before ``init`` rewires the model; ``None`` when it carries none."""
        return None

    def readings(self, shapes: dict[str, list[int]], h: int, w: int, carried: dict[str, Any] | None
                 ) -> list[Reading]:
        """Every way this head can read outputs it binds (``shapes`` at ``h x w``), with the settings their
        shapes imply and the rest marked as guesses: what ``init`` ranks on sample images. ``carried``: what
        :meth:`carried` read from the model. An empty list: the head's settings cannot be guessed from shapes."""
        return []

    def parts(self, spec: HeadSpec, channels: int) -> list[tuple[str, int]] | None:
        """The roles of a joined output's channels in order (role, count), when they are more than boxes and
        scores (objectness); ``None``: boxes then scores."""
        return None


def no_params(head: str, det: DetectionSettings, fail: Fail) -> None:
    """A head that takes no ``detection.params`` says so instead of ignoring them."""
    if det.params:
        fail(f"detection.params.{sorted(det.params)[0]}", f"the '{head}' head takes no params",
             "remove detection.params, or choose the head these settings belong to")


def only_xy(det: DetectionSettings, fail: Fail, setting: str) -> None:
    """A head whose box channel order is its own setting refuses ``box_order`` and names that setting."""
    if det.box_order != "xy":
        fail("detection.box_order", f"the '{det.head}' head orders its box channels with {setting}",
             f"remove detection.box_order and set {setting}")


def yx_once(det: DetectionSettings, fail: Fail) -> None:
    """``box_format: yxyx`` is y-first already: with ``box_order: yx`` the channels would be swapped twice."""
    if det.box_order == "yx" and det.box_format == "yxyx":
        fail("detection.box_order", "yxyx boxes are y-first already (box_order yx would swap them back)",
             "keep box_format: yxyx with box_order: xy, or write box_format: xyxy with box_order: yx")


#: y-first box channels (``cy, cx, h, w``; ``y1, x1, y2, x2``) → x-first, and back: the permutation is its own inverse
YX = [1, 0, 3, 2]


def xy_first(boxes: Any, order: str) -> Any:
    """The 4 box channels of ``[N, 4]`` boxes (numpy or TensorFlow) in x-first order."""
    if order != "yx":
        return boxes
    if isinstance(boxes, np.ndarray):
        return boxes[:, YX]
    import tensorflow as tf

    return tf.gather(boxes, YX, axis=1)


def flip(value: str, a: str, b: str) -> str:
    return b if value == a else a


def score_alternatives(det: DetectionSettings, choices: tuple[str, ...] = ("none", "sigmoid", "softmax")
                       ) -> list[dict[str, Any]]:
    """The other score activations (the model may apply its own: then ``none``)."""
    return [{"score_activation": a} for a in choices if a != det.score_activation]


def strides_ok(params: dict[str, Any]) -> bool:
    """``params.strides`` is a non-empty list of positive integers (one per output level, in output order)."""
    s = params.get("strides")
    return isinstance(s, list) and bool(s) and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in s)


class BoxHead(Head):
    """What heads whose boxes come out already decoded (in one of the box conventions) share."""

    def validate(self, det: DetectionSettings, fail: Fail) -> None:
        no_params(self.name, det, fail)
        yx_once(det, fail)

    def complete(self, spec: HeadSpec, det: DetectionSettings) -> None:
        pass

    def alternatives(self, det: DetectionSettings) -> list[dict[str, Any]]:
        """The other values of each convention setting, one change each, most likely first (the decode check
        tries them to name the one that matches the model's own decoder)."""
        return [{"box_order": flip(det.box_order, "xy", "yx")},
                *({"box_format": f} for f in ("cxcywh", "xyxy", "yxyx") if f != det.box_format),
                {"box_units": flip(det.box_units, "pixels", "normalized")}, *score_alternatives(det)]

    def readings(self, shapes: dict[str, list[int]], h: int, w: int, carried: dict[str, Any] | None
                 ) -> list[Reading]:
        """Boxes the model decodes itself: every box convention is a reading, the images decide."""
        return [Reading({"head": self.name, "box_format": fmt, "box_units": units},
                        f"outputs {list(shapes.values())} match a '{self.name}' head with {fmt} {units} boxes",
                        guesses=["box_format", "box_units"])
                for fmt, units in (("cxcywh", "pixels"), ("xyxy", "pixels"), ("xyxy", "normalized"),
                                   ("cxcywh", "normalized"), ("yxyx", "normalized"))]

    def read_tf(self, outs: dict[str, Any]) -> tuple[Any, Any]:
        """Boxes [N, 4] and scores [N, C] of the first image, as TensorFlow tensors."""
        return outs["boxes"][0], outs["scores"][0]

    def decode_tf(self, outs: dict[str, Any], contract: Contract) -> tuple[Any, Any]:
        boxes, scores = self.read_tf(outs)
        return normalized_cxcywh_tf(xy_first(boxes, contract.head.box_order), contract), scores


def normalized_cxcywh_tf(boxes: Any, contract: Contract) -> Any:
    """x-first boxes in the head's ``box_format`` / ``box_units`` → normalized ``cx, cy, w, h`` (TensorFlow)."""
    import tensorflow as tf

    head, inp = contract.head, contract.input
    if head.box_format == "xyxy":
        boxes = tf.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2,
                          boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
    elif head.box_format == "yxyx":
        boxes = tf.stack([(boxes[:, 1] + boxes[:, 3]) / 2, (boxes[:, 0] + boxes[:, 2]) / 2,
                          boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]], axis=1)
    if head.box_units == "pixels":
        boxes = boxes / tf.constant([inp.width, inp.height, inp.width, inp.height], tf.float32)
    return boxes


HEADS: Registry[Head] = Registry("detection head format")


def register(head: Head) -> Head:
    return HEADS.register(head.name)(head)


def get_head(name: str) -> Head:
    return HEADS.lookup(name)


def activate(x: np.ndarray, activation: str, axis: int = -1) -> np.ndarray:
    x = x.astype(np.float64)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if activation == "softmax":
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)
    return x


def to_xyxy(boxes: np.ndarray, fmt: str, units: str, inp: InputSpec) -> np.ndarray:
    """Any supported box convention → xyxy in model-input pixels."""
    b = boxes.astype(np.float64)
    if fmt == "cxcywh":
        cx, cy, w, h = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
        b = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    elif fmt == "yxyx":
        b = b[:, [1, 0, 3, 2]]
    if units == "normalized":
        b = b * np.array([inp.width, inp.height, inp.width, inp.height], dtype=np.float64)
    return b


def from_xyxy(boxes: np.ndarray, fmt: str, units: str, inp: InputSpec) -> np.ndarray:
    """xyxy in model-input pixels → the model's box convention (the inverse of ``to_xyxy``)."""
    b = np.asarray(boxes, np.float64).copy()
    if units == "normalized":
        b = b / np.array([inp.width, inp.height, inp.width, inp.height], dtype=np.float64)
    if fmt == "cxcywh":
        b = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)
    elif fmt == "yxyx":
        b = b[:, [1, 0, 3, 2]]
    return b


def class_scores(scores: np.ndarray, head: HeadSpec) -> np.ndarray:
    p = activate(scores, head.score_activation)
    return p[:, 1:] if head.background_class else p


def bind_two(shapes: dict[str, list[int]], wanted: dict[str, str], box_axis: int, head: str) -> dict[str, str]:
    """Find the boxes and scores outputs: by the config's names, else the one whose box axis is 4."""
    if set(wanted) >= {"boxes", "scores"}:
        missing = [n for n in wanted.values() if n not in shapes]
        if missing:
            raise ModelError(f"output '{missing[0]}' named in detection.outputs is not a model output "
                             f"(outputs: {', '.join(shapes)})", fix="correct detection.outputs")
        return _rank3({"boxes": wanted["boxes"], "scores": wanted["scores"]}, shapes, head, box_axis)
    if len(shapes) != 2:
        raise ModelError(f"a '{head}' head needs two outputs (boxes and scores); the model has {len(shapes)}",
                         fix="set detection.head to the model's format, or map detection.outputs")
    fours = [n for n, s in shapes.items() if len(s) == 3 and s[box_axis] == 4]
    if len(fours) != 1:
        raise ModelError(f"cannot tell boxes from scores among outputs {shapes}",
                         fix="name them in detection.outputs: {boxes: <name>, scores: <name>}")
    other = next(n for n in shapes if n != fours[0])
    return _rank3({"boxes": fours[0], "scores": other}, shapes, head, box_axis)


def _rank3(roles: dict[str, str], shapes: dict[str, list[int]], head: str, box_axis: int) -> dict[str, str]:
    """Both outputs batch-first and rank 3, with a known channel count (``box_axis`` holds the 4 box and the C
    class channels): what every two-output head decodes."""
    bad = {r: shapes[n] for r, n in roles.items() if len(shapes[n]) != 3 or shapes[n][box_axis] in (None, -1)}
    if bad:
        want = "[1, 4, N] and [1, C, N]" if box_axis == 1 else "[1, N, 4] and [1, N, C]"
        raise ModelError(f"a '{head}' head reads boxes and scores as {want}, but the model's outputs are "
                         f"{shapes}", fix="choose the head format that matches the outputs (yolo, yolo_transposed, "
                         "ssd, decoded), or export the detector with its decoded boxes and class scores as outputs")
    boxes = shapes[roles["boxes"]][box_axis]
    if boxes != 4:
        dfl = boxes % 4 == 0 and boxes > 4
        what = f" ({boxes // 4} distribution bins per side: a DFL head)" if dfl else ""
        raise ModelError(f"a '{head}' head reads 4 box channels, but output '{roles['boxes']}' has {boxes}{what}",
                         fix=f"set detection.head: dfl with detection.params.strides (reg_max: {boxes // 4})" if dfl
                         else "export the detector with decoded [x, y, x, y] boxes as an output, or map "
                              "detection.outputs to the output that holds 4 box channels")
    return roles
