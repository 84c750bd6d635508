"""Reference decode and NMS for every head format: the truth the generated SDKs are tested against."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mobilekit.contract import Contract, HeadSpec, InputSpec, NmsSpec, OutputSpec
from mobilekit.data.preprocess import resize_plan
from mobilekit.heads.ssd import ssd_anchors
from mobilekit.postprocess import classify, detect, iou_one_to_many, nms

INPUT = InputSpec("image", 100, 200, 3, "NHWC", "RGB", "letterbox", 114, [1 / 255] * 3, [0.0] * 3)


def contract(head: HeadSpec, **nms_kw) -> Contract:
    nms_spec = NmsSpec(**{"score_threshold": 0.3, "iou_threshold": 0.5, "max_detections": 10,
                          "class_agnostic": False, **nms_kw})
    return Contract("t", "detection", INPUT, [OutputSpec("boxes", [], ""), OutputSpec("scores", [], "")], head,
                    ["a", "b", "c"], nms_spec)


IDENTITY = resize_plan(100, 200, 100, 200, "stretch")

# Three boxes in xyxy input pixels: two overlapping of class 0, one apart of class 1.
XYXY = np.array([[10, 10, 50, 50], [12, 12, 52, 52], [100, 20, 150, 80]], np.float64)
SCORES = np.array([[0.9, 0.1, 0.0], [0.8, 0.1, 0.0], [0.1, 0.7, 0.0]], np.float64)


def cxcywh(b):
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)


def check(dets):
    assert dets.classes.tolist() == [0, 1]
    assert np.allclose(dets.boxes, XYXY[[0, 2]], atol=1e-4)
    assert np.allclose(dets.scores, [0.9, 0.7], atol=1e-6)


def test_yolo_split_and_single_output_agree():
    c = contract(HeadSpec("yolo", 3))
    check(detect({"boxes": cxcywh(XYXY)[None], "scores": SCORES[None]}, c, IDENTITY))
    check(detect({"predictions": np.concatenate([cxcywh(XYXY), SCORES], 1)[None]}, c, IDENTITY))


def test_yolo_transposed():
    c = contract(HeadSpec("yolo_transposed", 3))
    check(detect({"boxes": cxcywh(XYXY).T[None], "scores": SCORES.T[None]}, c, IDENTITY))
    check(detect({"predictions": np.concatenate([cxcywh(XYXY), SCORES], 1).T[None]}, c, IDENTITY))


@pytest.mark.parametrize("fmt", ["xyxy", "yxyx", "cxcywh"])
def test_decoded_formats_and_normalized_units(fmt):
    norm = XYXY / np.array([200, 100, 200, 100])
    boxes = {"xyxy": norm, "yxyx": norm[:, [1, 0, 3, 2]], "cxcywh": cxcywh(norm)}[fmt]
    c = contract(HeadSpec("decoded", 3, box_format=fmt, box_units="normalized"))
    check(detect({"boxes": boxes[None], "scores": SCORES[None]}, c, IDENTITY))


def test_logit_scores_with_sigmoid():
    c = contract(HeadSpec("decoded", 3, box_format="xyxy", score_activation="sigmoid"))
    logits = np.log(SCORES.clip(1e-9, 1 - 1e-9) / (1 - SCORES.clip(1e-9, 1 - 1e-9)))
    check(detect({"boxes": XYXY[None], "scores": logits[None]}, c, IDENTITY))


@pytest.mark.parametrize("order", ["yxhw", "xywh"])
def test_ssd_decodes_encoded_boxes(order):
    anchors = ssd_anchors([[2, 4]], 0.3, 0.3, [1.0, 2.0])  # 16 anchors
    assert anchors.shape == (16, 4)
    v = [0.1, 0.1, 0.2, 0.2]
    idx = [0, 5, 13]
    a = anchors[idx].astype(np.float64)
    g = XYXY / np.array([200, 100, 200, 100])
    gcy, gcx, gh, gw = (g[:, 1] + g[:, 3]) / 2, (g[:, 0] + g[:, 2]) / 2, g[:, 3] - g[:, 1], g[:, 2] - g[:, 0]
    enc = np.stack([(gcy - a[:, 0]) / a[:, 2] / v[0], (gcx - a[:, 1]) / a[:, 3] / v[1],
                    np.log(gh / a[:, 2]) / v[2], np.log(gw / a[:, 3]) / v[3]], 1)
    if order == "xywh":
        enc = enc[:, [1, 0, 3, 2]]
    deltas = np.zeros((16, 4))
    deltas[idx] = enc
    logits = np.full((16, 4), -9.0)
    logits[:, 0] = 9.0  # background everywhere ...
    for i, k in enumerate(idx):  # ... but where the boxes are
        logits[k] = np.log(np.r_[1e-3, SCORES[i]].clip(1e-6))
    head = HeadSpec("ssd", 3, score_activation="softmax", background_class=True,
                    params={"anchors": anchors.tolist(), "variances": v, "delta_order": order})
    dets = detect({"boxes": deltas[None], "scores": logits[None]}, contract(head), IDENTITY)
    assert dets.classes.tolist() == [0, 1]
    assert np.allclose(dets.boxes, XYXY[[0, 2]], atol=1e-3)


def test_class_agnostic_nms_and_max_detections():
    boxes = np.array([[10, 10, 50, 50], [11, 11, 51, 51]], float)
    scores = np.array([[0.9, 0.0, 0.0], [0.0, 0.8, 0.0]])
    per_class = detect({"boxes": boxes[None], "scores": scores[None]},
                       contract(HeadSpec("decoded", 3, box_format="xyxy")), IDENTITY)
    agnostic = detect({"boxes": boxes[None], "scores": scores[None]},
                      contract(HeadSpec("decoded", 3, box_format="xyxy"), class_agnostic=True), IDENTITY)
    capped = detect({"boxes": boxes[None], "scores": scores[None]},
                    contract(HeadSpec("decoded", 3, box_format="xyxy"), max_detections=1), IDENTITY)
    assert len(per_class) == 2 and len(agnostic) == 1 and len(capped) == 1


def test_letterbox_undo_maps_to_original_pixels():
    plan = resize_plan(400, 800, 100, 200, "letterbox")  # scale 1/4
    c = contract(HeadSpec("decoded", 3, box_format="xyxy"))
    dets = detect({"boxes": XYXY[None], "scores": SCORES[None]}, c, plan)
    assert np.allclose(dets.boxes[0], XYXY[0] * 4)


def test_ties_keep_candidate_order():
    boxes = np.array([[0, 0, 10, 10], [50, 50, 60, 60], [80, 80, 90, 90]], float)
    keep = nms(boxes, np.array([0.5, 0.5, 0.5]), np.zeros(3, int), 0.5, 10, False)
    assert keep.tolist() == [0, 1, 2]


def test_classifier_top_k():
    c = Contract("t", "classification", INPUT, [OutputSpec("scores", [1, 3], "")],
                 HeadSpec("classifier", 3, score_activation="softmax", top_k=2), ["a", "b", "c"])
    top = classify({"scores": np.array([[0.0, 2.0, 1.0]])}, c)
    assert [k for k, _ in top] == [1, 2] and top[0][1] == pytest.approx(np.exp(2) / np.exp([0, 2, 1]).sum())


BOXES = arrays(np.float64, st.tuples(st.integers(1, 40), st.just(4)),
               elements=st.floats(0, 100, allow_nan=False, allow_infinity=False))


@settings(max_examples=150, deadline=None)
@given(BOXES, st.data(), st.floats(0.1, 0.9), st.integers(1, 50), st.booleans())
def test_nms_properties(raw, data, iou_thr, max_det, agnostic):
    boxes = np.concatenate([np.minimum(raw[:, :2], raw[:, 2:]), np.maximum(raw[:, :2], raw[:, 2:])], 1)
    n = len(boxes)
    scores = np.asarray(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    classes = np.asarray(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    keep = nms(boxes, scores, classes, iou_thr, max_det, agnostic)
    assert len(keep) <= max_det and len(set(keep.tolist())) == len(keep)
    assert np.all(np.diff(scores[keep]) <= 0)  # sorted by score
    for i, a in enumerate(keep):
        for b in keep[i + 1:]:
            if agnostic or classes[a] == classes[b]:
                assert iou_one_to_many(boxes[a], boxes[b][None])[0] <= iou_thr
    if len(keep) < max_det:  # every dropped box is suppressed by a kept one of higher or equal rank
        for j in set(range(n)) - set(keep.tolist()):
            same = keep if agnostic else keep[classes[keep] == classes[j]]
            assert same.size and np.any(iou_one_to_many(boxes[j], boxes[same]) > iou_thr)
