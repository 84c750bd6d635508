"""``mobilekit init`` on models it has never seen: it picks the head form of every fixture from the outputs and
the images, marks its guesses, and ``build`` runs on the file it wrote, unedited."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

from mobilekit.cli import main

#: fixture → the detection settings init must choose (head, and the box form or convention that matters)
EXPECTED = {
    "yolo": {"head": "yolo", "box_format": "cxcywh", "box_units": "pixels"},
    "yolo_transposed": {"head": "yolo_transposed", "box_format": "cxcywh", "box_units": "pixels"},
    "decoded": {"head": "decoded", "box_format": "xyxy", "box_units": "normalized"},
    "dfl": {"head": "dfl", "params": {"strides": [8], "reg_max": 16}},
    "grid_decoded": {"head": "grid", "params": {"box": "decoded", "objectness": "first"}},
    "grid_yolox": {"head": "grid", "params": {"box": "yolox", "objectness": "first", "strides": [8]}},
    "grid_anchors": {"head": "grid", "params": {"box": "anchors", "objectness": "first", "strides": [8]}},
    # the conventions are told apart by how tightly a cell's anchors agree (keras-cv's vs torchvision's)
    "retinanet": {"head": "retinanet", "params": {"strides": [8, 16, 32], "octaves": 2, "clip": True,
                                                  "variances": [0.1, 0.1, 0.2, 0.2]}},
    "retinanet_levels": {"head": "retinanet", "params": {"strides": [8, 16, 32], "octaves": 1, "ratio": "h/w",
                                                         "offset": 0, "rounding": "torchvision", "deltas": "xywh"}},
    # the conventions of a tf_keras zoo, told apart by where the decoded boxes land; on a square input x-first and
    # y-first boxes land equally well (see test_init_says_when_the_images_cannot_tell_readings_apart)
    "dfl_tlbr": {"head": "dfl", "params": {"strides": [8], "sides": "tlbr"}},
    "grid_yolox_zoo": {"head": "grid", "score_activation": "none", "params": {"box": "yolox", "objectness": "last"}},
    "grid_yolov7_zoo": {"head": "grid", "params": {"box": "anchors", "objectness": "last"}},
}


def _init(model, images, out):
    res = CliRunner().invoke(main, ["init", str(model), "--images", str(images), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


@pytest.mark.parametrize("fixture", list(EXPECTED))
def test_init_picks_the_head_form_of_every_fixture(fixture, detector_models, yolo_model, yolo_variants,
                                                   shapes_dataset, tmp_path):
    model = {"yolo": yolo_model, "yolo_transposed": yolo_variants["transposed"], **detector_models}[fixture]
    obj = _init(model, shapes_dataset, tmp_path / "mobilekit.yaml")
    chosen = obj["candidates"][0]["detection"]
    for key, want in EXPECTED[fixture].items():
        got = {k: chosen["params"][k] for k in want} if key == "params" else chosen.get(key)
        assert got == want, (fixture, key, obj["candidates"][:3])
    text = (tmp_path / "mobilekit.yaml").read_text()
    assert "GUESS" in text and "# alternative" in text  # guesses are marked, the runners-up listed


@pytest.mark.parametrize("fixture", ["grid_yolox_zoo", "grid_yolov7_zoo"])
def test_init_says_when_the_images_cannot_tell_readings_apart(fixture, detector_models, shapes_dataset, tmp_path):
    """The zoo fixtures' boxes are y-first; on their square input, x-first boxes are as plausible (inside the image,
    agreeing): init cannot tell, says so on the file's first line and the console, lists both readings, and names
    the reference check as the way to decide."""
    from mobilekit.models.guess import UNDECIDED

    obj = _init(detector_models[fixture], shapes_dataset, tmp_path / "mobilekit.yaml")
    assert obj["undecided"]
    orders = {c["detection"].get("box_order", "xy") for c in obj["candidates"][:2]}
    assert orders == {"xy", "yx"}, obj["candidates"][:2]
    text = (tmp_path / "mobilekit.yaml").read_text()
    assert text.splitlines()[0] == f"# {UNDECIDED}" and "detection.reference" in UNDECIDED


@pytest.mark.slow
def test_init_then_build_works_unedited(classifier_model, yolo_variants, shapes_dataset, tmp_path):
    """The written config builds as it is: a raw DFL detector, a RetinaNet with one box and one class map per
    level (joined in the graph) and a classifier (0..255 pixels scaled by the model are read from its Rescaling
    layer when it has one; here the guess is pixels / 255)."""
    for name, model in (("dfl", yolo_variants["dfl"]), ("retinanet_levels", yolo_variants["retinanet_levels"]),
                        ("classifier", classifier_model)):
        cfg = tmp_path / f"{name}.yaml"
        obj = _init(model, shapes_dataset, cfg)
        assert obj["task"] == ("classification" if name == "classifier" else "detection")
        data = yaml.safe_load(cfg.read_text())
        assert data["calibration"]["images"] == str(shapes_dataset)
        res = subprocess.run([sys.executable, "-m", "mobilekit", "build", str(cfg), "--out", str(tmp_path / name),
                              "--json"], capture_output=True, text=True, timeout=900)
        out = json.loads(res.stdout)
        # built, or stopped only by the parity bar (the release bar, on 32 synthetic images): never a config error
        assert res.returncode == 0 or (res.returncode == 3 and out["failures"]), out


def test_init_refuses_to_overwrite_and_says_what_it_cannot_read(yolo_model, tmp_path):
    out = tmp_path / "mobilekit.yaml"
    out.write_text("mine\n")
    res = CliRunner().invoke(main, ["init", str(yolo_model), "--out", str(out), "--json"])
    assert res.exit_code == 5 and "does not overwrite" in json.loads(res.stdout)["error"]
    res = CliRunner().invoke(main, ["init", str(yolo_model), "--out", str(out), "--force"])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert "images: <folder of representative images>  # GUESS" in text and "plausibility" not in text


def test_init_reads_a_channels_first_input_and_dict_outputs(shapes_dataset, tmp_path):
    """A [1, 3, H, W] input is said as layout NCHW and fed so; outputs given as a dict (keys that are not the
    output layers' names) are read in the model's output order."""
    import keras

    inp = keras.Input((3, 32, 32), name="image")
    # channels-last inside (TensorFlow's CPU convolutions are NHWC only), a [1, 3, H, W] input outside
    x = keras.layers.Conv2D(4, 3, strides=4, activation="relu")(keras.layers.Permute((2, 3, 1))(inp))
    x = keras.layers.Flatten()(x)
    boxes = keras.layers.Reshape((16, 4), name="box")(keras.layers.Dense(64, activation="sigmoid")(x))
    scores = keras.layers.Reshape((16, 3), name="cls")(keras.layers.Dense(48, activation="sigmoid")(x))
    keras.Model(inp, {"boxes": boxes, "scores": scores}).save(tmp_path / "nchw.keras")
    obj = _init(tmp_path / "nchw.keras", shapes_dataset, tmp_path / "m.yaml")
    text = (tmp_path / "m.yaml").read_text()
    assert obj["task"] == "detection" and "layout: NCHW" in text and "# size 32x32" in text, text
    assert obj["candidates"][0]["detection"]["head"] == "decoded"


@pytest.mark.parametrize("name", ["pixels / 255", "ImageNet mean/std", "[-1, 1] (pixels / 127.5 - 1)"])
def test_init_reads_the_normalization_the_first_batch_norm_learned(name, classifier_model, shapes_dataset,
                                                                   tmp_path):
    """A model's first batch norm learned the statistics of its inputs under the normalization it was trained
    with: the classifier fixture's statistics are set to those of the shapes images under ``name`` (what training
    converges to), and init reads ``name`` back; with the fixture's own, unconverged statistics it keeps a GUESS."""
    import keras
    import numpy as np

    from mobilekit.config import Normalization, scale_offset
    from mobilekit.data.datasets import list_folder, load_image
    from mobilekit.data.preprocess import letterbox, normalize
    from mobilekit.models.guess import NORMALIZATIONS

    model = keras.saving.load_model(classifier_model, compile=False)
    bn = next(layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    scale, offset = scale_offset(Normalization(**NORMALIZATIONS[name]))
    x = np.concatenate([normalize(letterbox(load_image(r.path), 96, 96, "letterbox", 114)[0], scale, offset, "RGB",
                                  "NHWC") for r in list_folder(shapes_dataset)])
    feats = np.asarray(keras.Model(model.inputs, bn.input)(x)).reshape(-1, bn.input.shape[-1])
    bn.moving_mean.assign(feats.mean(0))
    bn.moving_variance.assign(feats.var(0))
    model.save(tmp_path / "calibrated.keras")
    _init(tmp_path / "calibrated.keras", shapes_dataset, tmp_path / "mobilekit.yaml")
    line = next(ln for ln in (tmp_path / "mobilekit.yaml").read_text().splitlines() if "normalization:" in ln)
    assert f"# read: the first batch norm's learned statistics match {name}" in line, line
    _init(classifier_model, shapes_dataset, tmp_path / "own.yaml")
    line = next(ln for ln in (tmp_path / "own.yaml").read_text().splitlines() if "normalization:" in ln)
    assert "# GUESS" in line, line
