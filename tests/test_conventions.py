"""Decode conventions as settings (y-first boxes, DFL side order, activations the model applied, [h, w] anchors,
EfficientDet's cell spacing): each convention fixture is re-headed from the trained YOLO fixture with the same
boxes as its canonical twin, so its settings must decode it to the twin's boxes and scores; and the build's decode
check, given the model's own decoder, names the setting that differs."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import CONVENTIONS, HEAD_SETTINGS, detector_config

from mobilekit.config_file import parse_config
from mobilekit.data.datasets import list_yolo, load_image
from mobilekit.data.preprocess import letterbox, normalize
from mobilekit.derive import derive_contract, plan
from mobilekit.heads import get_head
from mobilekit.models.loader import load_model
from mobilekit.models.serving import build_serving

#: convention fixture -> its canonical twin (the same trained boxes, the head's default conventions)
TWINS = {"dfl_tlbr": "dfl", "grid_yolox_zoo": "grid_yolox", "grid_yolov7_zoo": "grid_anchors",
         "retinanet_cells": "retinanet"}


def _decoded(model, head, shapes_dataset, cache, tmp_path, images):
    extra = {"detection": HEAD_SETTINGS[head]}
    cfg = parse_config(detector_config(model, shapes_dataset, cache / "labels.txt", head=head, **extra),
                       tmp_path / f"{head}.yaml")
    loaded = load_model(model)
    s = build_serving(loaded, plan(cfg, loaded))
    contract = derive_contract(cfg, s.input_shape, s.input_name, s.outputs, s.num_classes, s.split)
    out = []
    for path in images:
        canvas, _ = letterbox(load_image(path), contract.input.height, contract.input.width, "letterbox", 114)
        x = normalize(canvas, contract.input.scale, contract.input.offset, "RGB", "NHWC")
        out.append(get_head(contract.head.format).candidates(s.run(x), contract))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("fixture", list(CONVENTIONS))
def test_a_convention_fixture_decodes_to_its_canonical_twins_detections(fixture, detector_models, shapes_dataset,
                                                                        cache, tmp_path):
    images = [r.path for r in list_yolo(shapes_dataset)[:4]]
    ours = _decoded(detector_models[fixture], fixture, shapes_dataset, cache, tmp_path, images)
    twin = _decoded(detector_models[TWINS[fixture]], TWINS[fixture], shapes_dataset, cache, tmp_path, images)
    for a, b in zip(ours, twin, strict=True):
        if fixture == "retinanet_cells":
            # a fourth level of 2 x 2 cells (6 anchors each) over the trained grid's cells 3 and 9 (of 12): each of
            # its anchors holds the twin's level-0 box of that cell; the first three levels are the twin's
            n = len(b.boxes)
            top = [((3 + 6 * y) * 12 + 3 + 6 * x) * 6 + k for y in (0, 1) for x in (0, 1) for k in range(6)]
            np.testing.assert_allclose(a.boxes[n:], b.boxes[top], atol=0.05)
            a.boxes, a.scores = a.boxes[:n], a.scores[:n]
        confident = np.argsort(-b.scores.max(axis=1))[:20]  # the twin's best candidates, however well it trained
        np.testing.assert_allclose(a.scores[confident], b.scores[confident], atol=2e-3)
        np.testing.assert_allclose(a.boxes[confident], b.boxes[confident], atol=0.05)


# ------------------------------------------------------------------------------------------- each head, in numpy
H, W = 64, 96
#: head settings per convention: a head at 96x64 whose decode depends on the setting
CASES = {
    "yolo box_order yx": {"head": "yolo", "box_order": "yx", "score_activation": "sigmoid"},
    "decoded box_order yx": {"head": "decoded", "box_order": "yx", "box_format": "xyxy",
                             "score_activation": "sigmoid"},
    "grid yolox y-first, objectness last": {"head": "grid", "box_order": "yx", "score_activation": "sigmoid",
                                            "params": {"box": "yolox", "objectness": "last", "strides": [16]}},
    "grid anchors activated, [h, w]": {"head": "grid", "box_order": "yx", "score_activation": "sigmoid",
                                       "params": {"box": "anchors", "objectness": "last", "strides": [16],
                                                  "anchors": [[[30, 20]]], "anchor_order": "hw",
                                                  "activated": ["boxes"]}},
    "dfl tlbr": {"head": "dfl", "score_activation": "sigmoid", "params": {"strides": [16], "reg_max": 16,
                                                                          "sides": "tlbr"}},
    "dfl activated": {"head": "dfl", "score_activation": "sigmoid",
                      "params": {"strides": [16], "reg_max": 16, "sides": "btlr", "activated": ["boxes"]}},
    "retinanet cells": {"head": "retinanet", "score_activation": "sigmoid",
                        "params": {"strides": [16, 40], "anchor_scale": 2, "octaves": 1, "aspect_ratios": [1.0],
                                   "spacing": "cells"}},
}


def _config(settings: dict, tmp_path) -> object:
    return parse_config({"model": "m.keras", "task": "detection", "detection": settings,
                         "calibration": {"images": "."}}, tmp_path / "mobilekit.yaml")


def _contract(cfg) -> object:
    """The contract a head derives for these settings, with outputs of the candidate count its settings give."""
    from types import SimpleNamespace

    from mobilekit.contract import Contract, HeadSpec, InputSpec, NmsSpec, OutputSpec

    det = cfg.detection
    inp = InputSpec("image", H, W, 3, "NHWC", "RGB", "letterbox", 114, [1.0] * 3, [0.0] * 3)
    spec = HeadSpec(format=det.head, num_classes=C, box_format=det.box_format, box_units=det.box_units,
                    box_order=det.box_order, score_activation=det.score_activation)
    head = get_head(det.head)
    head.complete(spec, det)
    if hasattr(head, "prepare"):
        head.prepare(spec, inp)
    n = len(_centres(SimpleNamespace(head=spec, input=inp)))
    box = 4 * spec.params["reg_max"] if det.head == "dfl" else 4
    extra = 1 if det.head == "grid" else 0
    outputs = [OutputSpec("boxes", [1, n, box], "boxes"), OutputSpec("scores", [1, n, C + extra], "scores")]
    return Contract("t", "detection", inp, outputs, spec, ["a", "b", "c"], NmsSpec(0.25, 0.45, 10, False))


C = 3


def _centres(contract) -> np.ndarray:
    """Each candidate's anchor centre (input pixels): boxes around it decode inside every head's range."""
    from mobilekit.heads import dfl, grid, retinanet

    fmt, p = contract.head.format, contract.head.params
    if fmt == "dfl":
        return dfl.anchor_points(p["strides"], contract.input)[:, :2]
    if fmt == "grid":
        c = grid.cells(p, contract.input)
        return (c[:, :2] + 0.5) * c[:, 2:3]
    if fmt == "retinanet":
        return retinanet.anchors(p, contract.input)[:, :2]
    return np.stack(np.meshgrid(np.arange(8, W, 16.0), np.arange(8, H, 16.0)), -1).reshape(-1, 2)


def _outputs(contract, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Raw outputs encoding boxes around each candidate's centre, and those boxes."""
    rng = np.random.default_rng(seed)
    centre = _centres(contract)
    n = len(centre)
    centre = centre + rng.uniform(-3, 3, (n, 2))
    size = rng.uniform(8, 40, (n, 2))
    if contract.head.format == "grid" and contract.head.params["box"] == "anchors":
        size = np.minimum(size, 1.9 * np.asarray(contract.head.params["anchors"][0][0]))  # (2 sigmoid)^2 < 4
    if contract.head.format == "dfl":
        size = np.minimum(size, 14 * 16)
    boxes = np.concatenate([centre - size / 2, centre + size / 2], 1)
    head = get_head(contract.head.format)
    extra = 1 if contract.head.format == "grid" else 0
    scores = rng.normal(size=(n, C + extra))
    if contract.head.score_activation == "none":
        scores = 1 / (1 + np.exp(-scores))
    return {"boxes": head.encode(boxes, np.arange(n), contract)[None], "scores": scores[None]}, boxes


@pytest.mark.parametrize("case", list(CASES))
def test_a_convention_round_trips_and_tensorflow_decodes_it_alike(case, tmp_path):
    import tensorflow as tf

    contract = _contract(_config(CASES[case], tmp_path))
    raw, boxes = _outputs(contract)
    head = get_head(contract.head.format)
    cand = head.candidates(raw, contract)
    np.testing.assert_allclose(cand.boxes, boxes, atol=1e-5)
    tf_boxes, tf_scores = head.decode_tf({k: tf.constant(v, tf.float32) for k, v in raw.items()}, contract)
    cx, cy, w, h = np.asarray(tf_boxes, np.float64).T * np.array([[W], [H], [W], [H]])
    np.testing.assert_allclose(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1), boxes, atol=2e-3)
    probs = np.asarray(tf_scores, np.float64)
    probs = 1 / (1 + np.exp(-probs)) if contract.head.score_activation == "sigmoid" else probs
    np.testing.assert_allclose(probs, cand.scores, atol=1e-5)


#: the setting each case's decode check must name when the config leaves it at its default
MISSING = {"yolo box_order yx": ("box_order", "detection.box_order: yx"),
           "grid yolox y-first, objectness last": ("box_order", "detection.box_order: yx"),
           "grid anchors activated, [h, w]": ("params.activated", "detection.params.activated: [boxes]"),
           "dfl tlbr": ("params.sides", "detection.params.sides: tlbr"),
           "retinanet cells": ("params.spacing", "detection.params.spacing: cells")}


@pytest.mark.parametrize("case", list(MISSING))
def test_the_decode_check_names_the_setting_that_matches_the_models_decoder(case, tmp_path):
    """The reference decodes outputs made under the case's conventions (here: mobilekit's head with them, standing
    in for a zoo's decoder; the zoo tests use the zoos' own); the config leaves one convention at its default:
    the check fails, then names the one change under which the decode agrees within 0.5 px."""
    from mobilekit.parity import decode

    right = _config(CASES[case], tmp_path)
    truth = _contract(right)
    raw, _ = _outputs(truth)
    key, line = MISSING[case]
    settings = {**CASES[case], "params": dict(CASES[case].get("params", {}))}
    if key.startswith("params."):
        settings["params"].pop(key.removeprefix("params."))
    else:
        settings.pop(key)
    wrong = _config(settings, tmp_path)

    def reference(outputs, size):
        c = get_head(truth.head.format).candidates({"boxes": outputs[0], "scores": outputs[1]}, truth)
        return c.boxes, c.scores

    samples = [decode.Sample([raw["boxes"], raw["scores"]], raw)]
    check = decode.run(wrong, _contract(wrong), _contract, "test", reference, samples)
    assert not check.passed and check.max_box_px > 0.5
    assert check.fix is not None and check.fix["settings"] == line, check.fix
    assert check.fix["max_box_px"] <= 0.5
    what, fix = decode.failure_line(check)
    assert line in fix and "differs from the model's own decoder (test)" in what


@pytest.mark.parametrize(("settings", "key"), [
    ({"head": "dfl", "params": {"strides": [8], "sides": "ltrr"}}, "detection.params.sides"),
    ({"head": "dfl", "params": {"strides": [8], "activated": ["classes"]}}, "detection.params.activated"),
    ({"head": "grid", "params": {"box": "yolox", "strides": [8], "activated": ["boxes"]}},
     "detection.params.activated"),
    ({"head": "grid", "score_activation": "sigmoid",
      "params": {"box": "yolox", "strides": [8], "activated": ["objectness"]}}, "detection.params.activated"),
    ({"head": "grid", "params": {"box": "anchors", "strides": [8], "anchors": [[[8, 8]]], "anchor_order": "xy"}},
     "detection.params.anchor_order"),
    ({"head": "ssd", "box_order": "yx", "anchors": {"feature_maps": [[2, 2]]}}, "detection.box_order"),
    ({"head": "retinanet", "params": {"strides": [8], "spacing": "grid"}}, "detection.params.spacing"),
    ({"head": "yolo", "reference": "not a function"}, "detection.reference"),
    ({"head": "decoded", "box_order": "yx", "box_format": "yxyx"}, "detection.box_order"),
])
def test_convention_settings_are_checked_in_one_line(settings, key, tmp_path):
    from mobilekit.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        _config(settings, tmp_path)
    assert key in err.value.one_line()
