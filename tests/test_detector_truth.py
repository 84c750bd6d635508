"""Ground truth for detector fine-tuning: every head's box encoding inverts its decoding, candidates are matched
to labelled objects on the teacher's own boxes, and the packed losses read the model's real layout."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import HEAD_SETTINGS, detector_config

from mobilekit.compress import data as compress_data
from mobilekit.compress import detector_loss, truth
from mobilekit.config_file import parse_config
from mobilekit.derive import derive_contract, plan
from mobilekit.heads.base import get_head
from mobilekit.models.loader import load_model
from mobilekit.models.serving import build_serving


def _setup(model, shapes_dataset, cache, tmp_path, head="yolo"):
    extra = {"detection": HEAD_SETTINGS[head]} if head in HEAD_SETTINGS else {}
    cfg = parse_config(detector_config(model, shapes_dataset, cache / "labels.txt", head=head, **extra),
                       tmp_path / "mobilekit.yaml")
    loaded = load_model(model)
    serving = build_serving(loaded, plan(cfg, loaded))
    contract = derive_contract(cfg, serving.input_shape, serving.input_name, serving.outputs, serving.num_classes,
                               serving.split)
    return cfg, serving, contract


def _role_outputs(serving, x):
    outs = [serving.run(x[i:i + 1]) for i in range(len(x))]
    return {role: np.concatenate([o[role] for o in outs]) for role in ("boxes", "scores")}


@pytest.fixture(params=["yolo", "transposed", "decoded", "ssd"])
def detector(request, yolo_model, yolo_variants, ssd_model, shapes_dataset, cache, tmp_path):
    model = {"yolo": yolo_model, "ssd": ssd_model}.get(request.param) or yolo_variants[request.param]
    head = {"transposed": "yolo_transposed"}.get(request.param, request.param)
    return _setup(model, shapes_dataset, cache, tmp_path, head)


def test_targets_decode_back_to_the_labelled_boxes(detector):
    cfg, serving, contract = detector
    images, labels = compress_data.training_set(cfg, contract)
    assert isinstance(labels, truth.DetectionTruth) and sum(len(b) for b in labels.boxes) > 0
    x = images[:6]
    subset = truth.DetectionTruth(labels.boxes[:6], labels.classes[:6])
    outputs = _role_outputs(serving, x)
    t = truth.targets(outputs, subset, contract)
    head = get_head(contract.head.format)
    transposed = contract.head.format == "yolo_transposed"
    matched = 0
    for i in range(len(x)):
        pos = np.flatnonzero(t.positive[i])
        assert len(subset.boxes[i]) == 0 or len(pos) >= 1  # every image with objects trains some candidates
        raw = t.boxes[i:i + 1]
        decoded = head.candidates({"boxes": np.swapaxes(raw, 1, 2) if transposed else raw,
                                   "scores": outputs["scores"][i:i + 1]}, contract).boxes
        owners = truth.match(subset.boxes[i], head.candidates(
            {role: o[i:i + 1] for role, o in outputs.items()}, contract).boxes)
        np.testing.assert_allclose(decoded[pos], subset.boxes[i][owners[pos]], atol=1e-3)
        shift = 1 if contract.head.background_class else 0
        assert (t.classes[i, pos].argmax(-1) == subset.classes[i][owners[pos]] + shift).all()
        if shift:
            assert (t.classes[i, t.positive[i] == 0, 0] == 1).all()
        matched += len(pos)
    assert matched > 0


def test_every_object_gets_candidates_and_each_candidate_one_object():
    candidates = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [52, 50, 62, 60], [200, 200, 201, 201],
                           [5, 0, 15, 10]], np.float64)
    gt = np.array([[0, 0, 10, 10], [51, 50, 61, 60], [100, 100, 140, 140]], np.float64)
    owner = truth.match(gt, candidates)
    assert owner[0] == 0 and owner[1] == 0  # both overlap the first object well
    assert owner[2] == 1 and owner[3] == 1
    assert owner[4] == -1  # nowhere near an object
    assert owner[5] == 0  # IoU 1/3: not a match by threshold, but among the object's three best
    # the third object has no candidate near it: nothing is forced onto it
    assert 2 not in owner


def test_mirrored_truth_flips_boxes():
    t = truth.DetectionTruth([np.array([[10.0, 5.0, 30.0, 25.0]])], [np.array([2])])
    m = t.mirrored(100)
    np.testing.assert_allclose(m.boxes[0], [[70.0, 5.0, 90.0, 25.0]])
    assert len((t + m).boxes) == 2


def test_packed_losses_read_the_model_layout(yolo_variants, shapes_dataset, cache, tmp_path):
    """A transposed head's predictions are [B, 4+C, N] while targets are candidate-major: at the teacher's own
    outputs the box distillation term is exactly zero, and the truth terms are finite and positive."""
    import tensorflow as tf

    cfg, serving, contract = _setup(yolo_variants["transposed"], shapes_dataset, cache, tmp_path, "yolo_transposed")
    images, labels = compress_data.training_set(cfg, contract)
    outputs = _role_outputs(serving, images[:4])
    roles = ["boxes", "scores"]
    plain, losses = detector_loss.pack([outputs[r] for r in roles], roles, "none", True, False, 0.5, None)
    assert plain[0].shape == (4, outputs["boxes"].shape[2], 5)
    assert float(losses[0](tf.constant(plain[0]), tf.constant(outputs["boxes"]))) == pytest.approx(0.0, abs=1e-9)
    t = truth.targets(outputs, truth.DetectionTruth(labels.boxes[:4], labels.classes[:4]), contract)
    packed, losses = detector_loss.pack([outputs[r] for r in roles], roles, "none", True, False, 0.5, t)
    for k, r in enumerate(roles):
        value = float(losses[k](tf.constant(packed[k]), tf.constant(outputs[r])))
        assert np.isfinite(value) and value > 0
