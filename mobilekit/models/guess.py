"""``mobilekit init``: a commented config for a model mobilekit has never seen.

Everything is read from the model where it can be: the input size, in-graph preprocessing (a leading
``Rescaling``: the model takes 0..255 pixels), the task and the class count (output shapes), which head formats can
bind the outputs, and the strides that make a raw head's candidate count. What cannot be read is guessed and
marked as a guess, with the alternatives. With images, each candidate decoding is run on the float model and
ranked by plausibility: the top-scoring boxes of a right decoding lie inside the image with a positive size, and
its scores are probabilities of which few are high.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mobilekit.errors import ConfigError, ModelError
from mobilekit.heads.base import Reading
from mobilekit.models.loader import LoadedModel, output_shapes
from mobilekit.references import attached, attached_settings

#: class counts that people's models have (a single class, VOC, COCO's 80/90/91, ImageNet): a reading that leaves
#: one of them is ranked above one that leaves another count (85 channels: YOLOX's 4 + 80 + 1, not a DFL 64 + 21)
CLASS_PRIORS = {1, 20, 80, 90, 91, 1000}
#: the prior's weight on a reading that leaves any other class count
OTHER_COUNT = 0.6
#: two readings closer than this in plausibility are not told apart by the images
TIE = 0.05
#: a normalization is read from the first batch norm when its statistics are this close (a mismatch under 0.5: half
#: a learned standard deviation on the mean, or a variance within 65%; a few images' own spread costs about 0.3) and
#: twice as close as any normalization that differs from it: statistics that training left unconverged (biased
#: toward their initial 0 and 1) match none this well, and stay a GUESS
MATCHED = 0.5
#: images the first batch norm's statistics are measured on
BN_IMAGES = 32
#: the first line of a config whose readings the images could not tell apart
UNDECIDED = ("init could not tell the best readings of the outputs apart on these images (an untrained model, or "
             "images without objects): set detection.reference to the model's own decoder and the build's decode "
             "check decides")
#: the input normalizations people train with, on 0..255 pixels: what the first batch norm's statistics are
#: matched against
NORMALIZATIONS: dict[str, dict[str, Any]] = {
    "pixels / 255": {"scale": 1 / 255, "offset": 0.0},
    "[-1, 1] (pixels / 127.5 - 1)": {"scale": 1 / 127.5, "offset": -1.0},
    "(pixels - 127.5) / 128": {"scale": 1 / 128, "offset": -127.5 / 128},
    "ImageNet mean/std": {"mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375]},
    "0..255 pixels": {"scale": 1.0, "offset": 0.0},
}


def candidates(shapes: dict[str, list[int]], h: int, w: int, carried: dict[str, dict[str, Any]] | None = None
               ) -> list[Reading]:
    """Every reading of these outputs by every head that binds them, as each head proposes them (``carried``: the
    settings each head read from the model object, by head name)."""
    from mobilekit.heads import HEADS

    out: list[Reading] = []
    for head in sorted(HEADS.values(), key=lambda x: x.listed(shapes)):
        try:
            head.bind(shapes, {})
        except ModelError:
            continue
        out.extend(head.readings(shapes, h, w, (carried or {}).get(head.name)))
    return out


def carried(loaded: LoadedModel) -> dict[str, dict[str, Any]]:
    """What each head reads from the model object itself (an anchor generator), by head name: before any
    rewiring, as a joined model no longer holds it."""
    from mobilekit.heads import HEADS

    found = {name: head.carried(loaded.keras_model) for name, head in HEADS.items()}
    return {name: settings for name, settings in found.items() if settings is not None}


def _contract(cand: Reading, h: int, w: int, classes: int) -> Any:
    from mobilekit.config_file import parse_config
    from mobilekit.contract import Contract, InputSpec, NmsSpec
    from mobilekit.derive import head_spec

    det = parse_config({"model": "m", "task": "detection", "detection": cand.detection,
                        "calibration": {"images": "."}}, Path("x.yaml")).detection
    inp = InputSpec("image", h, w, 3, "NHWC", "RGB", "letterbox", 114, [1.0] * 3, [0.0] * 3)
    return Contract("guess", "detection", inp, [], head_spec(det, classes, inp), [], NmsSpec(0.25, 0.45, 100, False))


def _agreement(b: np.ndarray) -> float:
    """Share of boxes that overlap another (IoU > 0.3), weighted by the mean best IoU: a right decoding's top
    candidates cluster on the objects (neighbouring cells and a cell's anchors see the same one); a wrong one
    scatters them, one per cell, or spreads them a little."""
    x1, y1 = np.maximum(b[:, None, 0], b[None, :, 0]), np.maximum(b[:, None, 1], b[None, :, 1])
    x2, y2 = np.minimum(b[:, None, 2], b[None, :, 2]), np.minimum(b[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    iou = inter / np.maximum(area[:, None] + area[None, :] - inter, 1e-9)
    np.fill_diagonal(iou, 0)
    best = iou.max(axis=1)
    # the share that overlaps at all, refined by how tightly: conventions that differ by a few pixels (anchor
    # centres at x or x + 0.5 strides, a ratio read as w/h or h/w) all overlap, but only the right one agrees
    return float(np.mean(best > 0.3) * (0.5 + 0.5 * np.mean(best)))


def objectness(raw_scores: np.ndarray) -> str | None:
    """``first`` or ``last`` when that score channel tracks the best of the others (Pearson r > 0.9 over every
    candidate): objectness, not a class."""
    s = raw_scores.reshape(-1, raw_scores.shape[-1]).astype(np.float64)
    if s.shape[1] < 4:  # objectness and at least 3 classes: with fewer, classes alone can correlate
        return None
    r = {}
    for where, ch, rest in (("first", s[:, 0], s[:, 1:]), ("last", s[:, -1], s[:, :-1])):
        best = rest.max(axis=1)
        if ch.std() > 0 and best.std() > 0:
            r[where] = float(np.corrcoef(ch, best)[0, 1])
    # both ends can track the best of the rest (a class channel next to an objectness that is its maximum): the
    # one that tracks it more closely is objectness
    where = max(r, key=r.get, default=None)
    return where if where is not None and r[where] > 0.9 else None


def plausibility(cand: Reading, outputs: list[dict[str, np.ndarray]], h: int, w: int, classes: int) -> float:
    """0..1: of each image's 20 highest-scoring candidates, the share whose box lies inside the image (10% margin)
    with a positive size smaller than it, times the share that overlaps another, times the share of scores that
    are probabilities; halved when objectness evidence and the head disagree."""
    from mobilekit.heads import get_head

    head = get_head(cand.detection["head"])
    try:
        contract = _contract(cand, h, w, classes)
    except (ConfigError, ModelError):  # settings the head refuses: not a reading of these outputs
        return 0.0
    good, prob = [], []
    for raw in outputs:
        try:
            c = head.candidates(raw, contract)
        except (ModelError, ValueError, IndexError):
            return 0.0
        if not len(c.scores):
            return 0.0
        best = np.argsort(-c.scores.max(axis=1))[:20]
        b = c.boxes[best]
        bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        inside = (b[:, 0] > -0.1 * w) & (b[:, 1] > -0.1 * h) & (b[:, 2] < 1.1 * w) & (b[:, 3] < 1.1 * h)
        # objects that win a detector's top scores are seldom under 3% of the image: a misread (raw offsets and log
        # sizes read as decoded pixels) piles pixel-sized boxes that agree with each other in one corner
        seen = np.maximum(bw, bh) > 0.03 * max(h, w)
        good.append(np.mean(inside & seen & (bw > 1) & (bh > 1) & (bw < 1.1 * w) & (bh < 1.1 * h)) * _agreement(b))
        prob.append(np.mean((c.scores >= 0) & (c.scores <= 1)))
    score = float(np.mean(good) * np.mean(prob))
    if objectness(np.concatenate([_score_channels(contract, o) for o in outputs])) != head.objectness(contract.head):
        score *= 0.5  # an objectness channel the reading does not expect, or none where it expects one
    return score


def _score_channels(contract: Any, raw: dict[str, np.ndarray]) -> np.ndarray:
    """``[N, K]``: the channels after the box ones, candidates first, as the reading's contract reads the outputs."""
    from mobilekit.heads import get_head

    head = get_head(contract.head.format)
    p = raw["scores"][0] if "scores" in raw else raw["predictions"][0]
    p = p.T if head.channel_axis == 1 else p
    return p[:, head.box_channels(contract.head):] if "predictions" in raw else p


def rescaling(loaded: LoadedModel) -> dict[str, float] | None:
    """The model's own input scaling: a ``Rescaling`` among its first layers means it takes 0..255 pixels."""
    model = loaded.keras_model
    if model is None:
        return None
    for layer in itertools.islice(model.layers, 6):
        if type(layer).__name__ in ("Rescaling", "Normalization"):
            return {"scale": 1.0, "offset": 0.0}
        if hasattr(layer, "layers"):  # a backbone nested as a model (keras-cv: include_rescaling=True)
            inner = next((x for x in itertools.islice(layer.layers, 6)
                          if type(x).__name__ in ("Rescaling", "Normalization")), None)
            if inner is not None:
                return {"scale": 1.0, "offset": 0.0}
    return None


def _first_batch_norm(model: Any) -> Any:
    """The first ``BatchNormalization`` of a (flat) functional model, in graph order; None without one."""
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "BatchNormalization":
            return layer
    return None


def batch_norm_normalization(loaded: LoadedModel, canvases: list[np.ndarray], layout: str
                             ) -> tuple[str, dict[str, Any], float, float] | None:
    """The input normalization under which the first batch norm sees the statistics it learned (its moving mean
    and variance, per channel): ``(name, normalization, its mismatch, the next best's)``. None when the model has
    no such layer, or its statistics are the initial ones (0 and 1: an untrained model says nothing)."""
    from mobilekit.data.preprocess import normalize

    model = loaded.keras_model
    bn = _first_batch_norm(model)
    if bn is None or not canvases:
        return None
    mean = np.asarray(bn.moving_mean, np.float64)
    var = np.asarray(bn.moving_variance, np.float64)
    if np.allclose(mean, 0) and np.allclose(var, 1):
        return None
    try:
        probe = loaded.keras_module.Model(model.inputs, bn.input)
    except Exception:  # the layer is inside a nested model or reused: its input is not reachable from here
        return None
    axis = 1 if layout == "NCHW" else -1
    from mobilekit.config import Normalization, scale_offset

    scored = []
    for name, norm in NORMALIZATIONS.items():
        scale, offset = scale_offset(Normalization(**norm))
        x = np.concatenate([normalize(c, scale, offset, "RGB", layout) for c in canvases])
        feats = np.moveaxis(np.asarray(probe(x, training=False), np.float64), axis, -1).reshape(-1, len(mean))
        m, v = feats.mean(0), feats.var(0)
        # the batch norm's own view: how many of its learned standard deviations the mean is off, and how far the
        # variance is from the learned one (log ratio), averaged over channels
        err = float(np.mean(np.abs(m - mean) / np.sqrt(var + 1e-3) + np.abs(np.log((v + 1e-3) / (var + 1e-3)))))
        scored.append((err, name, norm))
    scored.sort(key=lambda t: t[0])
    best, name, norm = scored[0]
    # [-1, 1] and (pixels - 127.5) / 128 differ by 0.4%: the runner-up is the best normalization that differs
    second = next(err for err, _, other in scored[1:] if not _same(norm, other))
    return name, norm, best, second


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two normalizations within 1% of each other in scale and offset (per channel, on 0..255 pixels)."""
    from mobilekit.config import Normalization, scale_offset

    (sa, oa), (sb, ob) = scale_offset(Normalization(**a)), scale_offset(Normalization(**b))
    return bool(np.allclose(sa, sb, rtol=0.01) and np.allclose(oa, ob, rtol=0.01, atol=0.01))


@dataclass
class Guess:
    """What ``init`` found: the config text, the ranked candidates (detectors) and the facts read."""

    text: str
    candidates: list[Reading]
    facts: dict[str, Any]


def guess(model_path: Path, loaded: LoadedModel, images: Path | None, imports: list[str]) -> Guess:
    """The commented ``mobilekit.yaml`` for ``loaded``, ranked against ``images`` when given."""
    from mobilekit.models.serving import _bound_shapes

    shape = list(loaded.input_shape)
    layout = "NCHW" if shape[1] == 3 and shape[3] != 3 else "NHWC"
    hw = shape[2:4] if layout == "NCHW" else shape[1:3]
    dynamic = hw[0] is None or hw[1] is None
    h, w = (640, 640) if dynamic else (int(hw[0]), int(hw[1]))
    shapes = _bound_shapes(loaded, [1, 3, h, w] if layout == "NCHW" else [1, h, w, 3])
    settings = carried(loaded)  # before joining levels: the joined model no longer holds an anchor generator
    zoo = attached_settings(loaded.keras_model)  # a decoder the model carries: its settings, and the oracle
    decoder = attached(loaded.keras_model)
    loaded, shapes, levels = _join_levels(loaded, shapes, h, w)
    facts: dict[str, Any] = {"input": [h, w], "dynamic": dynamic, "outputs": shapes, "layout": layout,
                             "levels": levels, **_normalization(loaded, images, h, w, layout)}
    ranked: list[Reading] = []
    if len(shapes) == 1 and len(next(iter(shapes.values()))) == 2:
        facts["task"], facts["classes"] = "classification", next(iter(shapes.values()))[1]
    else:
        facts["task"] = "detection"
        ranked = _readings(model_path, shapes, h, w, settings, zoo, decoder)
        listed = list(ranked)
        if images is not None:
            outs = _sample_outputs(loaded, images, h, w, facts["normalization"], layout)
            decoded = _reference(decoder, outs, h, w)
            for c in ranked:
                _score(c, shapes, outs, h, w, decoded)
            ranked.sort(key=lambda c: -(c.plausibility or 0.0))
            facts["undecided"] = not ranked[0].read and len(ranked) > 1 and \
                (ranked[0].plausibility or 0.0) - (ranked[1].plausibility or 0.0) < TIE
        else:
            ranked.sort(key=lambda c: -_prior(c, shapes))
        # what the model says beats any plausibility; readings that all decode as the model's own decoder does (an
        # untrained head, whose outputs every convention reads alike) keep the order they were listed in: the
        # usual conventions first
        order = {id(c): k for k, c in enumerate(listed)}
        ranked.sort(key=lambda c: (not c.read, order[id(c)] if c.read else 0))
        alike = [c for c in ranked if c.read and "decodes as the model's own decoder" in c.why]
        facts["alike"] = len(alike)
        if len(alike) > 1 and zoo is None:  # what the matching readings disagree on stays a guess (the decoder's
            # own settings, when it has them, are what they are)
            ranked[0].guesses = _differing(alike)
        facts["classes"] = _classes(ranked[0], shapes)
    return Guess(_yaml(model_path, facts, ranked, images, imports), ranked, facts)


def _normalization(loaded: LoadedModel, images: Path | None, h: int, w: int, layout: str) -> dict[str, Any]:
    """``normalization`` (None: a guess) and, when read from the first batch norm, ``normalization_read``: a
    leading ``Rescaling`` first, else the statistics the first batch norm learned, when they tell."""
    norm = rescaling(loaded)
    if norm is not None or images is None:
        return {"normalization": norm}
    found = batch_norm_normalization(loaded, _canvases(images, h, w, BN_IMAGES), layout)
    if found is None or found[2] >= MATCHED or found[2] >= 0.5 * found[3]:
        return {"normalization": None}
    name, norm, best, second = found
    return {"normalization": norm, "normalization_read": f"the first batch norm's learned statistics match {name} "
                                                         f"(mismatch {best:.2f}; the next best {second:.2f})"}


def _readings(model_path: Path, shapes: dict[str, list[int]], h: int, w: int, settings: dict[str, dict[str, Any]],
              zoo: tuple[str, dict[str, Any]] | None, decoder: tuple[str, Any] | None) -> list[Reading]:
    """Every reading of the outputs: the settings an attached decoder gives first, then every head that binds."""
    ranked = candidates(shapes, h, w, settings)
    if zoo is not None:
        name, settings = zoo
        ranked.insert(0, Reading({**settings, "reference": "attached"}, f"read: the model's own decoder ({name})",
                                   read=True))
    elif decoder is not None:  # a decoder whose settings come from elsewhere (keras-cv's anchor generator):
        for c in ranked:  # the build holds whichever reading is chosen to it
            c.detection["reference"] = "attached"
    if not ranked:
        raise ModelError(f"no head format mobilekit knows binds outputs {shapes}", path=model_path,
                         fix="see README 'detection.head'; an SSD head needs its anchors: write the config by hand")
    return ranked


def _score(c: Reading, shapes: dict[str, list[int]], outs: list[dict[str, np.ndarray]], h: int, w: int,
           decoder: tuple[str, Any] | None) -> None:
    """A reading on the sample outputs: its score activation, its plausibility and, with an attached decoder
    (its name and its decode of ``outs``), whether it decodes as the decoder does."""
    from mobilekit.heads import get_head

    roles, _ = get_head(c.detection["head"]).bind(shapes, {})
    raw = [{r: o[n] for r, n in roles.items()} for o in outs]
    try:
        contract = _contract(c, h, w, _classes(c, shapes))
    except (ConfigError, ModelError):  # settings the head refuses: plausibility says 0
        contract = None
    if contract is not None and "score_activation" in c.detection and not c.read:  # scores in [0, 1]: no sigmoid
        s = np.concatenate([_score_channels(contract, r) for r in raw])
        if s.size and np.all((s >= 0) & (s <= 1)):
            c.detection["score_activation"] = "none"
        c.guesses = [g for g in c.guesses if g != "score_activation"]
    c.plausibility = plausibility(c, raw, h, w, _classes(c, shapes)) * _prior(c, shapes)
    if decoder is not None:
        held = _held_to(c, decoder, outs, raw, h, w, _classes(c, shapes))
        if c.read and not held and "decodes as" not in c.why:  # read from the decoder, and yet
            c.read = False
            c.why += "; but it does not decode these images as the decoder does: check it"
            c.guesses = ["params (read from the model's decoder, which decodes otherwise)"]


def _join_levels(loaded: LoadedModel, shapes: dict[str, list[int]], h: int, w: int
                 ) -> tuple[LoadedModel, dict[str, list[int]], dict[str, Any] | None]:
    """Per-level maps (every output ``[1, H, W, K]``) joined as the build will join them (``models.levels``): the
    strides are the input size over each map's, the anchors per cell the box map's channels over 4 (a box and a
    class map per level) or one (one map per level). The candidates are then read from the joined outputs."""
    from dataclasses import replace

    from mobilekit.models.levels import join_levels

    if len(shapes) < 2 or not all(len(s) == 4 for s in shapes.values()) or loaded.keras_model is None:
        return loaded, shapes, None
    sizes = sorted({tuple(s[1:3]) for s in shapes.values()}, reverse=True)
    per_level = len(shapes) // len(sizes)
    chans = sorted({s[3] for s in shapes.values()})
    a = 1
    if per_level == 2 and 64 not in chans:  # the box map: 4 x A channels, A dividing the class map's (64: DFL bins)
        a = next((c // 4 for c in chans if c % 4 == 0 and all(o % (c // 4) == 0 for o in chans)), 1)
    grids = [(gh, gw, a) for gh, gw in sizes]
    try:
        model, _ = join_levels(loaded.keras_model, loaded.keras_module, shapes, grids, 64 if 64 in chans else 4)
    except ModelError:
        return loaded, shapes, None
    joined = output_shapes(model)
    strides = [h // gh for gh, _ in sizes]
    return replace(loaded, keras_model=model, output_shapes=joined), joined, \
        {"strides": strides, "anchors_per_cell": a, "maps": len(shapes)}


def _reference(decoder: tuple[str, Any] | None, outs: list[dict[str, np.ndarray]], h: int, w: int
               ) -> tuple[str, list[tuple[np.ndarray, ...]] | None] | None:
    """The attached decoder's name and its decode of the sample outputs (once, for every reading held to it);
    None for the decode when the decoder fails on them."""
    if decoder is None:
        return None
    name, reference = decoder
    try:
        return name, [tuple(np.asarray(v, np.float64) for v in reference(list(o.values()), (h, w))) for o in outs]
    except Exception:  # a decoder that fails on these outputs holds no reading: not a crash of init
        return name, None


def _held_to(cand: Reading, decoder: tuple[str, Any | None], outs: list[dict[str, np.ndarray]],
             raw: list[dict[str, np.ndarray]], h: int, w: int, classes: int) -> bool:
    """A reading that decodes the sample images as the model's own decoder does (the build's decode check, run
    here) is read, not guessed: it is ranked first and its conventions lose their GUESS marks."""
    from mobilekit.parity.decode import Sample, compare, passes

    name, expected = decoder
    if expected is None:
        return False
    try:
        box, score, _ = compare(_contract(cand, h, w, classes), [Sample(list(o.values()), r)
                                                                   for o, r in zip(outs, raw, strict=True)], expected)
    except Exception:  # a reading the head refuses, or a decoder that fails on it: not held, not a crash of init
        return False
    if passes(box, score):
        cand.read, cand.guesses = True, []
        cand.why += f"; decodes as the model's own decoder does ({name}, within {box:.2g} px)"
    return passes(box, score)


def _differing(cands: list[Reading]) -> list[str]:
    """The settings (``box_order``, ``params.sides``) on which these readings differ."""
    keys: set[str] = set()
    for c in cands:
        keys |= {k for k in c.detection if k not in ("params", "reference")}
        keys |= {f"params.{k}" for k in c.detection.get("params", {})}

    def value(c: Reading, key: str) -> Any:
        if key.startswith("params."):
            return c.detection.get("params", {}).get(key.removeprefix("params."))
        return c.detection.get(key)

    return sorted(k for k in keys if len({repr(value(c, k)) for c in cands}) > 1)


def _prior(cand: Reading, shapes: dict[str, list[int]]) -> float:
    """1 for a reading that leaves a class count people's models have, :data:`OTHER_COUNT` otherwise."""
    return 1.0 if _classes(cand, shapes) in CLASS_PRIORS else OTHER_COUNT


def _canvases(images: Path, h: int, w: int, count: int = 8) -> list[np.ndarray]:
    from mobilekit.data.datasets import list_folder, load_image
    from mobilekit.data.preprocess import letterbox

    return [letterbox(load_image(rec.path), h, w, "letterbox", 114)[0] for rec in list_folder(images)[:count]]


def _classes(cand: Reading, shapes: dict[str, list[int]]) -> int:
    from mobilekit.heads import get_head

    _, classes = get_head(cand.detection["head"]).bind(shapes, {})
    if classes < 0:  # one DFL output: the channels after the bins
        classes = next(iter(shapes.values()))[2] - 4 * cand.detection["params"]["reg_max"]
    return classes


def _sample_outputs(loaded: LoadedModel, images: Path, h: int, w: int, norm: dict[str, Any] | None,
                    layout: str) -> list[dict]:
    from mobilekit.config import Normalization, scale_offset
    from mobilekit.data.preprocess import normalize

    scale, offset = scale_offset(Normalization(**(norm or NORMALIZATIONS["pixels / 255"])))
    return [loaded.run(normalize(c, scale, offset, "RGB", layout)) for c in _canvases(images, h, w)]


def _yaml(model_path: Path, facts: dict[str, Any], ranked: list[Reading], images: Path | None,
          imports: list[str]) -> str:
    """The config, every value either read from the model (said so) or marked ``# GUESS`` with alternatives."""
    import yaml

    def dump(d: Any) -> str:
        text = yaml.safe_dump(d, default_flow_style=True, sort_keys=False, width=10_000).strip()
        return text.removesuffix("\n...").removesuffix("...").strip()  # a plain scalar ends its document

    h, w = facts["input"]
    lines = [f"# written by mobilekit init for {model_path.name}: check every line marked GUESS",
             f"model: {dump(str(model_path.resolve()))}"]
    if facts.get("undecided"):
        lines.insert(0, f"# {UNDECIDED}")
    if facts.get("alike", 0) > 1:
        lines.insert(0, f"# {facts['alike']} readings decode these images as the model's own decoder does (an "
                        "untrained head reads alike under every convention): the first listed is written")
    if imports:
        lines.append(f"imports: {dump(list(imports))}")
    if facts.get("levels"):
        lv = facts["levels"]
        lines.append(f"# read: {lv['maps']} per-level maps at strides {lv['strides']} ({lv['anchors_per_cell']} "
                     "anchor(s) per cell); the build joins them as below")
    lines += [f"task: {facts['task']}  # read: outputs {dump(facts['outputs'])}",
              f"# labels: labels.txt  # {facts['classes']} classes, one name per line (without it: class_0, ...)",
              "input:"]
    lines.append(f"  size: [{h}, {w}]  # GUESS: the model takes any size" if facts["dynamic"]
                 else f"  # size {h}x{w}: read from the model")
    if facts["layout"] == "NCHW":
        lines.append("  layout: NCHW  # read: the input is [1, 3, H, W]")
    if facts.get("normalization_read"):
        lines.append(f"  normalization: {dump(facts['normalization'])}  # read: {facts['normalization_read']}")
    elif facts["normalization"]:
        lines.append(f"  normalization: {dump(facts['normalization'])}  # read: the model rescales 0..255 itself")
    else:
        lines.append("  normalization: {scale: 0.00392156862745098, offset: 0.0}  # GUESS: pixels / 255; "
                     "alternatives: {mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375]} (ImageNet)")
    if facts["task"] == "detection":
        best = ranked[0]
        how = "ranked first" if best.read else \
            f"plausibility {best.plausibility:.2f}" if best.plausibility is not None else "first that binds"
        lines.append(f"detection:  # {best.why}; {how}")
        for key, value in best.detection.items():
            guessed = [g for g in best.guesses if g.split(".")[0].split(" ")[0] == key]
            note = f"  # GUESS: {', '.join(guessed)}" if guessed else ""
            if key == "reference":
                note = "  # the build checks every candidate's decode against the model's own decoder"
            lines.append(f"  {key}: {dump(value) if isinstance(value, dict) else value}{note}")
        for alt in ranked[1:6]:
            score = f" (plausibility {alt.plausibility:.2f})" if alt.plausibility is not None else ""
            lines.append(f"  # alternative{score}: {dump(alt.detection)}")
    images_line = dump(str(images.resolve())) if images else "<folder of representative images>  # GUESS: set it"
    lines += ["calibration:", f"  images: {images_line}", "  count: 200"]
    return "\n".join(lines) + "\n"
