"""A tf_keras-era model zoo's detectors (keras_cv_attention_models: YOLOX, YOLOv7, YOLOv8, EfficientDet-Lite), run
through ``mobilekit init`` and ``mobilekit build`` as a user runs them, with the zoo's own decode layer as the oracle.

Each model carries ``DecodePredictions``, the layer the zoo decodes with; ``init`` reads its settings (the
conventions: y-first boxes, objectness last, activations already applied, ``tlbr`` DFL sides, YOLOR's ``[h, w]``
anchors, EfficientDet's cell spacing) and writes ``reference: attached``; the build decodes every candidate of
the evaluation images both ways. The CLI runs in its own process: the zoo turns legacy Keras on as it imports,
which only takes before TensorFlow loads.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import catalogue
import pytest
import testcache
import yaml
import zoo
from helpers import COCO128

pytestmark = pytest.mark.slow
#: the zoo's tests need it; keras-cv's and keras-hub's theirs (all in the test extra: pip install -e '.[test]')
ZOO = pytest.mark.skipif(__import__("importlib.util").util.find_spec("keras_cv_attention_models") is None,
                         reason="keras-cv-attention-models is not installed")

#: what init must read from each family's decode layer
READ = {"yolox": ("grid", {"box_order": "yx"}, {"box": "yolox", "objectness": "last"}),
        "yolov7": ("grid", {"box_order": "yx"}, {"box": "anchors", "anchor_order": "hw", "activated": ["boxes"]}),
        "yolov8": ("dfl", {}, {"sides": "tlbr", "reg_max": 16}),
        "efficientdet": ("retinanet", {}, {"spacing": "cells", "anchor_scale": 3.0})}
#: one convention left out of init's file, and the fix the build must name
WRONG = {"yolox": (("box_order",), "detection.box_order: yx"),
         "yolov7": (("params", "activated"), "detection.params.activated: [boxes]"),
         "yolov8": (("params", "sides"), "detection.params.sides: tlbr"),
         "efficientdet": (("params", "spacing"), "detection.params.spacing: cells")}


def _corpus(perturbed: bool) -> Path:
    import keras_cv_attention_models
    import tensorflow as tf

    key = testcache.digest(perturbed, keras_cv_attention_models.__version__, tf.__version__,
                           sources=[Path(zoo.__file__)])

    def make(out: Path) -> None:
        subprocess.run([sys.executable, zoo.__file__, str(out), *(["--perturbed"] if perturbed else [])],
                       check=True, capture_output=True, timeout=900)

    return testcache.cached(testcache.root() / f"zoo-{key}", make)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """24 COCO photos: what init ranks on and the build calibrates and checks on."""
    folder = tmp_path_factory.mktemp("images")
    for p in sorted((COCO128 / "images" / "train2017").glob("*.jpg"))[:24]:
        shutil.copy(p, folder)
    return folder


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mobilekit", *args], capture_output=True, text=True, timeout=900,
                          cwd=cwd)


def _init(model: Path, images: Path, tmp_path: Path) -> dict:
    res = _cli("init", str(model), "--images", str(images), "--import", "keras_cv_attention_models", "--out",
               "mobilekit.yaml", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    return yaml.safe_load((tmp_path / "mobilekit.yaml").read_text())


@ZOO
@pytest.mark.parametrize("family", list(zoo.FAMILIES))
def test_init_reads_the_zoos_decoder_and_the_build_holds_the_decode_to_it(family, images, tmp_path):
    model = _corpus(perturbed=False) / f"{family}.h5"
    cfg = _init(model, images, tmp_path)
    det = cfg["detection"]
    head, top, params = READ[family]
    assert det["head"] == head and det["reference"] == "attached"
    assert {k: det[k] for k in top} == top and {k: det["params"][k] for k in params} == params
    # as the zoo builds them, the untrained class heads score every candidate near their prior (YOLOv8: 4e-5),
    # below int8's sigmoid step of 1/256: the gate measures that, not the decode, so it reports without failing
    # and 8 evaluation images (the decode check's own count) keep the four builds within the suite's budget
    cfg["parity"] = {"enforce": False, "images": 8}
    (tmp_path / "mobilekit.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    res = _cli("build", "mobilekit.yaml", "--out", "bundle", "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    decode = manifest["decode"]
    assert decode["passed"] and decode["max_box_px"] <= 0.5 and decode["max_score_diff"] <= 1e-4, decode
    assert decode["reference"] == "keras_cv_attention_models DecodePredictions" and decode["candidates"] > 0
    parity = json.loads((tmp_path / "bundle" / "report" / "parity.json").read_text())
    assert parity["decode"] == decode
    report = (tmp_path / "bundle" / "report" / "index.html").read_text()
    assert "decode agrees with keras_cv_attention_models DecodePredictions" in report
    # the zoo concatenates its roles with tf.concat (and applies the class sigmoid after): split all the same,
    # except YOLOv7's, whose one convolution per level computes every role (its filters interleave them)
    assert manifest["split"]["applied"] == (family != "yolov7"), manifest["split"]


@ZOO
@pytest.mark.parametrize("family", list(zoo.FAMILIES))
def test_a_convention_left_out_stops_the_build_naming_the_fix(family, images, tmp_path):
    """Perturbed weights, so that every convention moves the boxes: init's file with one convention taken out
    exits 3 at the decode check, before any conversion, and names the setting under which the decode agrees."""
    model = _corpus(perturbed=True) / f"{family}.h5"
    cfg = _init(model, images, tmp_path)
    path, fix = WRONG[family]
    holder = cfg["detection"]
    for k in path[:-1]:
        holder = holder[k]
    holder.pop(path[-1])
    (tmp_path / "mobilekit.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    res = _cli("build", "mobilekit.yaml", "--out", "bundle", "--json", cwd=tmp_path)
    assert res.returncode == 3, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["exit_code"] == 3 and "differs from the model's own decoder" in out["error"]
    assert f"Fix: set {fix} " in out["error"], out["error"]
    assert {f["metric"] for f in out["failures"]} & {"max_box_px", "max_score_diff"}
    assert not (tmp_path / "bundle").exists()


@pytest.mark.parametrize(("name", "how"), [
    *((n, "attached") for n, v in catalogue.THIRD_PARTY.items() if v[1] != "keras"),
    ("keras-hub RetinaNet R18", "function")])  # keras-cv's reload as themselves: their decoder is found attached
def test_keras_cv_and_keras_hub_detectors_decode_as_their_own_decoders(name, how, tmp_path):
    """keras-cv's YOLOV8 and RetinaNet and keras-hub's RetinaNet, built without weights: the decode check, with the
    libraries' own decode functions as the reference (the detector's own, or keras-hub's by module:function, the
    route of a SavedModel), passes with the settings the catalogue gives them, every one of ~19,000 candidates."""
    import importlib.util

    import keras
    import numpy as np
    import tensorflow as tf

    from mobilekit.config_file import parse_config
    from mobilekit.contract import OutputSpec
    from mobilekit.derive import derive_contract
    from mobilekit.heads import get_head
    from mobilekit.parity import decode
    from mobilekit.references import attached, resolve

    build, package, _how, det, scale = catalogue.THIRD_PARTY[name]
    if importlib.util.find_spec(package) is None:
        pytest.fail(f"{package} is not installed: pip install -e '.[test]' (the decode check's oracle)")
    keras.utils.set_random_seed(0)
    model = build(wrapped=False)
    x = np.random.default_rng(0).uniform(0, 255, (1, 320, 320, 3)).astype("float32") * scale
    names = [str(n) for n in model.output_names]
    outs = [np.asarray(v) for v in tf.nest.flatten(model(x))]
    ref_name, reference = attached(model) if how == "attached" else \
        resolve("mobilekit.references.keras_hub:retinanet", None)
    assert ref_name.startswith(package.replace("_", "-")) or how == "function"
    cfg = parse_config({"model": "m.keras", "task": "detection", "detection": det, "calibration": {"images": "."}},
                       tmp_path / "mobilekit.yaml")
    shapes = {n: list(o.shape) for n, o in zip(names, outs, strict=True)}
    roles, classes = get_head(det["head"]).bind(shapes, det.get("outputs", {}))

    def contract_for(c):
        return derive_contract(c, [1, 320, 320, 3], "image", [OutputSpec(r, shapes[n], n) for r, n in roles.items()],
                               classes, {})

    by_name = dict(zip(names, outs, strict=True))
    sample = decode.Sample(outs, {r: by_name[n] for r, n in roles.items()})
    check = decode.run(cfg, contract_for(cfg), contract_for, ref_name, reference, [sample])
    assert check.passed and check.candidates == outs[0].shape[1], check.to_dict()
    assert check.max_box_px <= 0.5 and check.max_score_diff <= 1e-4


def test_init_holds_its_readings_to_an_attached_decoder(images, tmp_path):
    """keras-cv's YOLOV8 carries its decoder but no settings to read: init decodes the images with every reading
    and the decoder, and the readings that agree are read, not guessed; an untrained head reads alike under both
    DFL side orders, and init says so and writes the usual one (ltrb), with reference: attached."""
    import importlib.util

    import keras
    from click.testing import CliRunner

    from mobilekit.cli import main

    if importlib.util.find_spec("keras_cv") is None:
        pytest.fail("keras-cv is not installed: pip install -e '.[test]' (the decode check's oracle)")
    keras.utils.set_random_seed(0)
    catalogue._cv_yolov8(wrapped=False).save(tmp_path / "yolov8.keras")
    res = CliRunner().invoke(main, ["init", str(tmp_path / "yolov8.keras"), "--images", str(images), "--import",
                                    "keras_cv", "--out", str(tmp_path / "mobilekit.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    best = json.loads(res.output)["candidates"][0]
    assert "decodes as the model's own decoder does (keras-cv decode_predictions" in best["why"]
    text = (tmp_path / "mobilekit.yaml").read_text()
    det = yaml.safe_load(text)["detection"]
    assert det["head"] == "dfl" and det["reference"] == "attached" and "sides" not in det["params"]
    assert text.startswith("# 2 readings decode these images as the model's own decoder does")
