"""Each head on its own: encode is the inverse of its numpy decode, and its TensorFlow decode (the one compiled
into the Vision pipeline) agrees with the numpy reference."""

from __future__ import annotations

import catalogue
import numpy as np
import pytest
from helpers import DETECTOR_N, detector_contract

from mobilekit.contract import Contract
from mobilekit.heads import HEADS, get_head

DETECTORS = [n for n in HEADS if n != "classifier"]
N, C = DETECTOR_N, 3


def _boxes(rng: np.random.Generator, fmt: str = "", contract: Contract | None = None) -> np.ndarray:
    if fmt == "dfl":  # a DFL candidate's box holds its cell centre (distances are non-negative)
        from mobilekit.heads.dfl import anchor_points

        pts = anchor_points(contract.head.params["strides"], contract.input)
        return np.concatenate([pts[:, :2] - rng.uniform(1, 30, (N, 2)), pts[:, :2] + rng.uniform(1, 30, (N, 2))], 1)
    x0, y0 = rng.uniform(0, 60, N), rng.uniform(0, 40, N)
    return np.stack([x0, y0, x0 + rng.uniform(4, 30, N), y0 + rng.uniform(4, 20, N)], axis=1)


def _raw(fmt: str, contract: Contract, boxes: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    enc = get_head(fmt).encode(boxes, np.arange(N), contract)
    if fmt == "grid":  # objectness first, certain (sigmoid(40) == 1 in float64): the scores are the classes'
        scores = np.concatenate([np.full((len(scores), 1), 40.0), scores], 1)
    if fmt == "yolo_transposed":
        return {"boxes": enc.T[None], "scores": scores.T[None]}
    return {"boxes": enc[None], "scores": scores[None]}


@pytest.mark.parametrize("fmt", DETECTORS)
@pytest.mark.parametrize("convention", [("cxcywh", "pixels"), ("xyxy", "normalized"), ("yxyx", "pixels")])
def test_encode_then_decode_gives_the_boxes_back(fmt, convention):
    contract = detector_contract(fmt, *convention)
    rng = np.random.default_rng(0)
    boxes, logits = _boxes(rng, fmt, contract), rng.normal(size=(N, C))
    cand = get_head(fmt).candidates(_raw(fmt, contract, boxes, logits), contract)
    assert np.allclose(cand.boxes, boxes, atol=1e-6)
    assert np.allclose(cand.scores, 1 / (1 + np.exp(-logits)))


@pytest.mark.parametrize("fmt", DETECTORS)
def test_tensorflow_decode_matches_the_numpy_reference(fmt):
    import tensorflow as tf

    contract = detector_contract(fmt, "xyxy", "pixels")
    rng = np.random.default_rng(1)
    raw = _raw(fmt, contract, _boxes(rng, fmt, contract), rng.normal(size=(N, C)))
    ref = get_head(fmt).candidates(raw, contract)
    boxes, scores = get_head(fmt).decode_tf({k: tf.constant(v, tf.float32) for k, v in raw.items()}, contract)
    cx, cy, w, h = np.asarray(boxes, np.float64).T * np.array([[96], [64], [96], [64]])
    assert np.allclose(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1), ref.boxes, atol=1e-3)
    assert np.allclose(1 / (1 + np.exp(-np.asarray(scores, np.float64))), ref.scores, atol=1e-6)


def test_every_head_declares_where_its_channels_are():
    assert {n: get_head(n).channel_axis for n in DETECTORS} == {"decoded": 2, "ssd": 2, "yolo": 2, "dfl": 2, "grid": 2,
                                                                "retinanet": 2, "yolo_transposed": 1}


def test_head_params_are_the_heads_to_check_and_stay_out_of_contracts_without_them(tmp_path):
    """``detection.params`` belong to the chosen head: a head without any rejects them by name; a contract whose
    head added none is written as before (no empty ``params``)."""
    from helpers import write_config

    from mobilekit.config_file import load_config
    from mobilekit.errors import ConfigError

    cfg = {"model": "m.keras", "task": "detection", "detection": {"head": "yolo", "params": {"reg_max": 16}},
           "calibration": {"images": "imgs"}}
    with pytest.raises(ConfigError, match=r"detection\.params\.reg_max: the 'yolo' head takes no params"):
        load_config(write_config(tmp_path, cfg))
    contract = detector_contract("yolo")
    assert "params" not in contract.to_dict()["head"]
    contract.head.params = {"strides": [8, 16, 32]}
    assert Contract.from_dict(contract.to_dict()).head.params == {"strides": [8, 16, 32]}


@pytest.mark.parametrize("shapes", [{"box": [1, 4], "prob": [1, 10]}, {"box": [1, 5, 4], "prob": [1, 5]}])
def test_two_output_heads_refuse_outputs_of_another_rank_in_one_line(shapes):
    """A face detector's rank-2 outputs (box, probability) used to end in an IndexError (exit 1)."""
    from mobilekit.errors import ModelError

    with pytest.raises(ModelError) as e:
        get_head("decoded").bind(shapes, {"boxes": "box", "scores": "prob"})
    assert e.value.exit_code == 2 and "[1, N, 4]" in e.value.one_line() and "Fix:" in e.value.one_line()


def test_a_dfl_box_output_is_refused_with_what_it_is():
    """keras-cv's YOLOV8 outputs 64 DFL bins per anchor as 'box': a head that reads 4 box channels says so (exit 2)
    instead of decoding bins as coordinates."""
    import pytest

    from mobilekit.errors import ModelError
    from mobilekit.heads import get_head

    shapes = {"box": [1, 2100, 64], "class": [1, 2100, 80]}
    with pytest.raises(ModelError, match=r"has 64 \(16 distribution bins per side: a DFL head\)"):
        get_head("decoded").bind(shapes, {"boxes": "box", "scores": "class"})


def test_dfl_settings_and_candidate_count_are_checked_in_one_line(tmp_path):
    """The DFL head needs its strides; the candidates must be the strides' cells at the input size; a single
    [1, N, 4 * reg_max + C] output counts classes after the bins."""
    from mobilekit.config_file import parse_config
    from mobilekit.errors import ConfigError, ModelError
    from mobilekit.heads.dfl import DflHead

    base = {"model": "m.keras", "task": "detection", "detection": {"head": "dfl"}}
    with pytest.raises(ConfigError, match=r"detection.params.strides: a DFL head needs the stride"):
        parse_config(base, tmp_path)
    bad = {**base, "detection": {"head": "dfl", "params": {"strides": [8], "reg_max": 1}}}
    with pytest.raises(ConfigError, match=r"detection.params.reg_max"):
        parse_config(bad, tmp_path)
    contract = detector_contract("dfl")
    contract.head.params["strides"] = [8]  # 12 x 8 = 96 cells, not the model's 24
    with pytest.raises(ModelError, match=r"has 24 candidates, but strides \[8\] at 96x64 give 96 cells"):
        DflHead().check(contract)
    roles, _ = DflHead().bind({"raw": [1, 24, 67]}, {})
    assert roles == {"predictions": "raw"}


@pytest.mark.parametrize("box", ["yolox", "anchors"])
@pytest.mark.parametrize("order", ["anchor_first", "cell_first"])
def test_raw_grid_boxes_round_trip_and_match_tensorflow(box, order):
    """YOLOX and YOLOv5 raw boxes: encode then decode gives the boxes back (two anchors per cell, in either
    candidate order), the TensorFlow decode agrees, and scores are objectness x class."""
    import tensorflow as tf

    contract = detector_contract("grid")
    contract.head.params.update(box=box, order=order, strides=[32],  # 3 x 2 cells x 2 anchors = 12 candidates
                                anchors=[[[20, 30], [50, 40]]] if box == "anchors" else [])
    if box == "yolox":
        contract.head.params["strides"] = [16]  # 6 x 4 cells, one candidate each
    n = 12 if box == "anchors" else N
    head = get_head("grid")
    rng = np.random.default_rng(3)
    cells = __import__("mobilekit.heads.grid", fromlist=["cells"]).cells(contract.head.params, contract.input)
    assert len(cells) == n
    centre = (cells[:, :2] + 0.5) * cells[:, 2:3] + rng.uniform(-4, 4, (n, 2))
    size = rng.uniform(10, 60, (n, 2))
    boxes = np.concatenate([centre - size / 2, centre + size / 2], 1)
    obj, cls = rng.normal(size=(n, 1)), rng.normal(size=(n, C))
    raw = {"boxes": head.encode(boxes, np.arange(n), contract)[None], "scores": np.concatenate([obj, cls], 1)[None]}
    cand = head.candidates(raw, contract)
    assert np.allclose(cand.boxes, boxes, atol=1e-6)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    assert np.allclose(cand.scores, sig(obj) * sig(cls))
    tf_boxes, tf_scores = head.decode_tf({k: tf.constant(v, tf.float32) for k, v in raw.items()}, contract)
    cx, cy, w, h = np.asarray(tf_boxes, np.float64).T * np.array([[96], [64], [96], [64]])
    assert np.allclose(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1), boxes, atol=1e-3)
    assert np.allclose(sig(np.asarray(tf_scores, np.float64)), sig(obj) * sig(cls), atol=1e-5)


def test_dfl_binds_yolov8_with_a_class_count_divisible_by_four_and_checks_reg_max():
    """keras-cv's YOLOV8 with 80 classes: both outputs have a multiple of 4 channels; the 64 bins decide. A
    reg_max that does not match the bins output is refused in one line."""
    from mobilekit.errors import ModelError
    from mobilekit.heads.dfl import DflHead

    roles, classes = DflHead().bind({"box": [1, 2100, 64], "class": [1, 2100, 80]}, {})
    assert roles == {"boxes": "box", "scores": "class"} and classes == 80
    contract = detector_contract("dfl")
    contract.head.params["reg_max"] = 8
    with pytest.raises(ModelError, match=r"64 channels, not 4 x reg_max = 32") as err:
        DflHead().check(contract)
    assert "reg_max: 16" in err.value.fix


#: Anchors generated by the libraries themselves at 320x320, levels 3-7 (keras-hub 0.32 ``AnchorGenerator``
#: with RetinaNetObjectDetector's defaults; keras-cv 0.9 ``RetinaNet.default_anchor_generator``), xyxy, at
#: candidates 0, 1, 5, 8, 17000 and the last (19205). The whole tables matched (max error 0 and 1.8e-5) when
#: these were taken.
LIBRARY_ANCHORS = {
    "keras-hub": (catalogue.HUB_RETINA,
                  [[-23.0, -11.0, 23.0, 11.0], [-28.0, -14.0, 28.0, 14.0], [-25.0, -25.0, 25.0, 25.0],
                   [-18.0, -35.0, 18.0, 35.0], [92.0, 153.0, 164.0, 295.0], [-75.0, -362.0, 499.0, 786.0]]),
    "keras-cv": (catalogue.CV_RETINA,
                 [[0.0, 0.0, 15.3137, 26.6274], [0.0, 0.0, 20.0, 20.0], [0.0, 0.0, 32.5088, 18.2544],
                  [0.0, 0.0, 39.9188, 21.9594], [64.1624, 196.0812, 207.8376, 267.9188], [0.0, 32.6497, 320.0, 320.0]]),
}


@pytest.mark.parametrize("library", sorted(LIBRARY_ANCHORS))
def test_multilevel_anchors_match_the_libraries(library):
    """keras-hub (torchvision's conventions: centres at x * stride, integer sizes, rounded half extents, h/w
    ratios, ratio-major) and keras-cv (centres at (x + 0.5) * stride, w/h ratios, scale-major, clipped) differ in
    every one of these; each is a setting, and together they give the libraries' own anchors."""
    from types import SimpleNamespace

    from mobilekit.heads.retinanet import anchors, resolve

    params, want = LIBRARY_ANCHORS[library]
    inp = SimpleNamespace(width=320, height=320)
    a = anchors(resolve(params, inp), inp)
    assert len(a) == 19206
    xyxy = np.stack([a[:, 0] - a[:, 2] / 2, a[:, 1] - a[:, 3] / 2, a[:, 0] + a[:, 2] / 2, a[:, 1] + a[:, 3] / 2], 1)
    assert np.allclose(xyxy[[0, 1, 5, 8, 17000, 19205]], want, atol=1e-3)


def test_grid_reads_objectness_as_its_own_output():
    """After the int8 split a grid head's objectness is a third output: the candidates are the same as from the
    scores with objectness in place (first or last, as the head says)."""
    contract = detector_contract("grid", "xyxy", "pixels")
    rng = np.random.default_rng(2)
    boxes, obj, cls = _boxes(rng), rng.normal(size=(N, 1)), rng.normal(size=(N, C))
    head = get_head("grid")
    for where in ("first", "last"):
        contract.head.params["objectness"] = where
        joined = np.concatenate([obj, cls] if where == "first" else [cls, obj], 1)
        ref = head.candidates({"boxes": boxes[None], "scores": joined[None]}, contract)
        got = head.candidates({"boxes": boxes[None], "objectness": obj[None], "scores": cls[None]}, contract)
        np.testing.assert_array_equal(got.scores, ref.scores)
        np.testing.assert_array_equal(got.boxes, ref.boxes)
