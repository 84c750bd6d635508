"""End-to-end builds through the real CLI: every head format, both int8 I/O dtypes, the parity gate, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import HEAD_SETTINGS, NO_GATE, WIDE_BAR, detector_config, write_config

from mobilekit.bundle.writer import digest
from mobilekit.cli import main
from mobilekit.contract import Contract
from mobilekit.errors import EXIT_BAD_INPUT, EXIT_OUTPUT, EXIT_PARITY


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def build(tmp_path: Path, cfg: dict, out: Path) -> tuple[int, str]:
    return run_cli("build", str(write_config(tmp_path / "cfg", cfg)), "--out", str(out), "--quiet")


def check_bundle(out: Path) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    for art in manifest["artifacts"]:
        assert digest(out / art["path"]) == (art["size"], art["sha256"]), art["path"]
    kinds = {a["kind"] for a in manifest["artifacts"]}
    assert {"tflite-int8", "tflite-fp16", "contract", "parity-report", "delegate-report", "labels",
            "android-sdk", "android-sdk-asset"} <= kinds
    gradle = [a["path"] for a in manifest["artifacts"] if a["path"].endswith("build.gradle.kts")]
    assert len(gradle) == 1 and gradle[0].startswith("sdk/android/")
    assert manifest["verification"]["tflite-int8"]["full_integer"]
    assert manifest["verification"]["tflite-int8"]["per_channel_weights"] > 0
    assert manifest["parity"]["passed"]
    assert not list(out.parent.glob(f".{out.name}.tmp-*")), "temp dir left behind"
    return manifest


# the YOLO build is the fast tier's end-to-end build (every stage, both SDKs, the report); the other heads are slow
@pytest.mark.parametrize("head", ["yolo", *(pytest.param(h, marks=pytest.mark.slow) for h in (
    "yolo_transposed", "decoded", "ssd", "dfl", "grid_decoded", "grid_yolox", "grid_anchors", "retinanet",
    "retinanet_levels"))])
def test_detector_builds_for_every_head(tmp_path, head, yolo_model, yolo_variants, ssd_model, shapes_dataset,
                                        cache):
    labels = cache / "labels.txt"
    # yolo_variants: decoded, dfl and the grid forms, re-headed from the trained YOLO fixture
    fixtures = {"yolo": yolo_model, "yolo_transposed": yolo_variants["transposed"], "ssd": ssd_model}
    model = {**fixtures, **yolo_variants}[head]
    extra = {"detection": HEAD_SETTINGS[head]} if head in HEAD_SETTINGS else {}
    out = tmp_path / "bundle"
    code, text = build(tmp_path, detector_config(model, shapes_dataset, labels, head, **extra), out)
    assert code == 0, text
    manifest = check_bundle(out)
    contract = Contract.load(out / "contract.json")
    assert contract.head.format == head.removesuffix("_decoded").removesuffix("_yolox").removesuffix("_anchors") \
        .removesuffix("_levels")
    assert contract.labels == ["circle", "square", "triangle"]
    int8 = contract.artifacts["tflite-int8"]
    roles = {b.role: b for b in int8.outputs}
    # a grid head's objectness is an int8 output of its own; every other head has boxes and scores
    assert set(roles) == ({"boxes", "objectness", "scores"} if head.startswith("grid") else {"boxes", "scores"})
    # Boxes and scores carry their own scales: scores in [0, 1] get a fine step, pixel boxes a coarse one.
    if head in ("yolo", "yolo_transposed"):
        assert manifest["split"]["applied"]
        assert roles["scores"].scale < 0.01 < roles["boxes"].scale
    if head.startswith("grid"):  # one raw output [box, obj, classes]: split into 4 box channels, objectness and 3
        assert manifest["split"]["applied"] and manifest["split"]["parts"] == [4, 1, 3]  # classes, each its scale
        assert manifest["split"]["roles"] == ["boxes", "objectness", "scores"]
    if head == "retinanet_levels":  # six per-level maps joined into boxes and scores: 3 levels x 3 anchors per cell
        assert manifest["split"]["levels_joined"]["levels"] == 3
        assert roles["boxes"].shape == [1, (144 + 36 + 9) * 3, 4] and roles["scores"].shape == [1, 567, 3]
    if head == "dfl":  # one raw output, split into 64 bins and 3 class logits, each with its own scale
        assert manifest["split"]["applied"] and manifest["split"]["parts"] == [64, 3]
        assert roles["boxes"].shape == [1, 144, 64] and roles["scores"].shape == [1, 144, 3]
    parity = json.loads((out / "report/parity.json").read_text())
    det = parity["artifacts"]["tflite-int8"]["resolvers"]["reference"]["detection"]
    assert det["reference_detections"] > 0, "the fixture must actually detect something"
    assert parity["map50_float"] > 0 and 0 < parity["map50_95_float"] <= parity["map50_float"]  # COCO beside @0.5
    res = parity["artifacts"]["tflite-int8"]["resolvers"]["xnnpack"]
    assert res["map50_95_drop"] == pytest.approx(parity["map50_95_float"] - res["map50_95"])
    # how much of that drop 40 images can tell from noise: a paired bootstrap interval, in parity.json and the console
    lo, hi = res["map50_95_drop_interval"]
    assert lo <= hi and manifest["parity"]["map50_95_drops"]["tflite-int8"]["interval"] == [lo, hi]
    assert "90% interval over these 40 images" in " ".join(text.split())  # as rich wraps it
    # evaluated on the calibration images (no evaluation split): the console, parity.json and the report say so
    assert parity["evaluation_overlap"]["images"] > 0 and "not held out" in text
    assert "not held out" in (out / "report/index.html").read_text()
    # no reference decoder configured: the decode is not proven, and the manifest, parity.json, console and report
    # say so (tests/test_zoo.py builds detectors that carry their own decoder)
    assert manifest["decode"] == parity["decode"] == {"reference": None, "candidates": 0, "images": 0,
                                                      "max_box_px": None, "max_score_diff": None, "passed": None,
                                                      "note": "decode not checked against a reference"}
    assert "decode not checked against a reference" in " ".join(text.split())
    assert "decode not checked against a reference" in (out / "report/index.html").read_text()


@pytest.mark.slow
def test_uint8_io_and_classifier(tmp_path, classifier_model, shapes_dataset, cache):
    cfg = {"model": str(classifier_model), "task": "classification", "labels": str(cache / "labels.txt"),
           "input": {"normalization": {"mean": [0, 0, 0], "std": [255, 255, 255]}},
           "calibration": {"images": str(shapes_dataset), "count": 30},
           "export": {"int8_io": "uint8"}, "parity": WIDE_BAR}
    out = tmp_path / "bundle"
    code, text = build(tmp_path, cfg, out)
    assert code == 0, text
    check_bundle(out)
    contract = Contract.load(out / "contract.json")
    b = contract.artifacts["tflite-int8"].inputs[0]
    assert b.dtype == "uint8" and contract.artifacts["tflite-int8"].outputs[0].dtype == "uint8"
    parity = json.loads((out / "report/parity.json").read_text())
    agreement = parity["artifacts"]["tflite-int8"]["resolvers"]["xnnpack"]["top1_agreement"]
    assert agreement >= WIDE_BAR["min_top1_agreement"]


@pytest.mark.slow
def test_h5_and_saved_model_sources(tmp_path, h5_classifier, saved_model_dir, shapes_dataset, cache):
    labels = cache / "labels.txt"
    cls_cfg = {"model": str(h5_classifier), "task": "classification", "labels": str(labels),
               "calibration": {"images": str(shapes_dataset), "count": 20}, "parity": {"images": 12, **NO_GATE}}
    code, text = build(tmp_path / "a", cls_cfg, tmp_path / "a" / "out")
    assert code == 0, text
    det_cfg = detector_config(saved_model_dir, shapes_dataset, labels, "decoded", parity=NO_GATE,
                              detection={"head": "decoded", "box_format": "xyxy", "box_units": "normalized"})
    code, text = build(tmp_path / "b", det_cfg, tmp_path / "b" / "out")
    assert code == 0, text


@pytest.mark.slow
def test_blank_calibration_breaks_parity_and_exits_3(tmp_path, yolo_model, shapes_dataset, cache):
    """Calibrating on blank frames gives activation ranges that clip real images; the gate must catch it."""
    from PIL import Image

    blank = tmp_path / "blank"
    blank.mkdir()
    for i in range(8):
        Image.new("RGB", (96, 96), (0, 0, 0)).save(blank / f"{i}.png")
    cfg = detector_config(yolo_model, blank, cache / "labels.txt",
                          evaluation={"images": str(shapes_dataset), "format": "yolo", "count": 24})
    cfg["calibration"] = {"images": str(blank), "count": 8}
    cfg["parity"] = {"images": 24}  # the default release bar: a clipped int8 model must fail it
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "previous-release.txt").write_text("keep me")
    code, text = build(tmp_path, cfg, out)
    assert code == EXIT_PARITY, text
    assert "Parity checks that failed" in text and "tflite-int8" in text
    assert (out / "previous-release.txt").read_text() == "keep me", "a failed build must not touch the bundle"
    assert not list(tmp_path.glob(".bundle.tmp-*"))


@pytest.mark.slow
def test_bad_inputs_exit_2_with_one_line(tmp_path, yolo_model, shapes_dataset, cache):
    labels = cache / "labels.txt"
    cases = {
        "missing model": detector_config(tmp_path / "nope.keras", shapes_dataset, labels),
        "missing folder": detector_config(yolo_model, tmp_path / "nothing", labels),
        "wrong head": detector_config(yolo_model, shapes_dataset, labels, "ssd",
                                      detection={"head": "ssd", "anchors": {"feature_maps": [[4, 4]]}}),
    }
    bad_labels = tmp_path / "two.txt"
    bad_labels.write_text("a\nb\n")
    cases["labels count"] = detector_config(yolo_model, shapes_dataset, bad_labels)
    empty = tmp_path / "empty"
    empty.mkdir()
    cases["empty folder"] = detector_config(yolo_model, empty, labels)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "readme.txt").write_text("no pictures here")
    cases["non-images"] = detector_config(yolo_model, notes, labels)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_bytes(b"not a jpeg")
    cases["corrupt image"] = detector_config(yolo_model, junk, labels)
    expect = {"missing model": "nope.keras", "missing folder": "nothing", "wrong head": "detection.head",
              "labels count": "2 labels", "empty folder": "empty", "corrupt image": "a.jpg",
              "non-images": "notes"}
    for name, cfg in cases.items():
        out = tmp_path / name.replace(" ", "_")
        code, text = build(tmp_path / name.replace(" ", "_"), cfg, out / "bundle")
        assert code == EXIT_BAD_INPUT, (name, text)
        error = [ln for ln in text.splitlines() if ln.startswith("error:")]
        assert error and expect[name] in text and "Fix:" in text, (name, text)
        assert not (out / "bundle").exists()


@pytest.mark.slow
def test_output_dir_that_is_a_file(tmp_path, yolo_model, shapes_dataset, cache):
    target = tmp_path / "file"
    target.write_text("x")
    code, text = build(tmp_path, detector_config(yolo_model, shapes_dataset, cache / "labels.txt"), target)
    assert code == EXIT_OUTPUT and "is a file" in text


@pytest.mark.slow
def test_grayscale_rgba_and_odd_sizes_calibrate(tmp_path, yolo_model, cache):
    from PIL import Image

    folder = tmp_path / "mixed"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (37, 211), dtype=np.uint8), "L").save(folder / "gray.png")
    Image.fromarray(rng.integers(0, 255, (300, 17, 4), dtype=np.uint8), "RGBA").save(folder / "rgba.png")
    Image.fromarray(rng.integers(0, 255, (640, 480, 3), dtype=np.uint8)).save(folder / "big.jpg")
    cfg = detector_config(yolo_model, folder, cache / "labels.txt")
    cfg["calibration"] = {"images": str(folder), "count": 3}
    cfg["parity"] = {"images": 3, "min_detection_recall": 0.0, "min_detection_precision": 0.0,
                     "min_cosine": 0.0, "min_snr_db": -100.0}
    code, text = build(tmp_path, cfg, tmp_path / "out")
    assert code == 0, text


@pytest.mark.slow
def test_coco128_calibration_and_map(tmp_path, yolo_model, cache, coco128):
    """Real photographs as calibration data through the YOLO-format reader (the fixture's classes differ, so mAP
    is not meaningful; the point is that real images of every size flow through letterbox and calibration)."""
    cfg = detector_config(yolo_model, coco128 / "images" / "train2017", cache / "labels.txt")
    cfg["calibration"] = {"images": str(coco128 / "images" / "train2017"), "format": "folder", "count": 32}
    cfg["parity"] = {**WIDE_BAR, "images": 16, "min_detection_recall": 0.0, "min_detection_precision": 0.0}
    code, text = build(tmp_path, cfg, tmp_path / "out")
    assert code == 0, text
    parity = json.loads((tmp_path / "out" / "report/parity.json").read_text())
    assert parity["artifacts"]["tflite-int8"]["resolvers"]["xnnpack"]["tensors"]["scores"]["cosine"] > 0.9


def test_inspect_prints_a_layer_table(yolo_model):
    code, text = run_cli("inspect", str(yolo_model))
    assert code == 0 and "MACs" in text and "Conv2D" in text and "predictions" in text
    code, text = run_cli("inspect", "/nonexistent/model.keras")
    assert code == EXIT_BAD_INPUT and "not found" in text
