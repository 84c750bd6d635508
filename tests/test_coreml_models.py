"""Whole models through Core ML conversion and the emulator: faithfulness, compression, the build's Core ML stage."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import NO_GATE, WIDE_BAR, detector_config, write_config

from mobilekit.config import CoreMLSettings
from mobilekit.emulate.coreml import CoreMLEmulator
from mobilekit.export import coreml
from mobilekit.export.coreml_compress import RECIPES
from mobilekit.parity.metrics import tensor_metrics


def _serving(model, size: int):
    from mobilekit.config_file import parse_config
    from mobilekit.derive import plan
    from mobilekit.models.loader import LoadedModel
    from mobilekit.models.serving import build_serving

    loaded = LoadedModel(path=None, kind="keras3", keras_model=model, signature=None, saved=None,
                         input_name="image", input_shape=[None, size, size, 3],
                         output_shapes={model.output_names[0]: [1, *[int(d) for d in model.outputs[0].shape[1:]]]})
    cfg = parse_config({"model": "m.keras", "task": "classification", "calibration": {"images": "x"}},
                       __import__("pathlib").Path("/tmp/c.yaml"))
    return build_serving(loaded, plan(cfg, loaded)), cfg


def _contract(serving, cfg):
    from mobilekit.derive import derive_contract

    return derive_contract(cfg, serving.input_shape, serving.input_name, serving.outputs, serving.num_classes, {})


APPS = {
    "MobileNetV2": lambda k: k.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None, alpha=0.5),
    "MobileNetV3Small": lambda k: k.applications.MobileNetV3Small(input_shape=(96, 96, 3), weights=None),
    "EfficientNetB0": lambda k: k.applications.EfficientNetB0(input_shape=(96, 96, 3), weights=None),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(APPS))
def test_keras_applications_fp32_faithful_and_fp16_runs(tmp_path, name):
    """fp32 programs match TensorFlow to ~1e-5 relative; fp16 programs run with every op known and show their error."""
    import keras

    keras.utils.set_random_seed(0)
    serving, cfg = _serving(APPS[name](keras), 96)
    contract = _contract(serving, cfg)
    x = np.random.default_rng(1).uniform(0, 255 if name == "EfficientNetB0" else 1, (1, 96, 96, 3)).astype(np.float32)
    ref = serving.run(x)["scores"]
    for fp32 in (True, False):
        model = coreml.convert(serving, contract, CoreMLSettings(), fp32=fp32)
        path = coreml.save(model, tmp_path / f"{fp32}.mlpackage")
        em = CoreMLEmulator(path)
        got = em.run({"image": x})["scores"]
        eager = em.run({"image": x}, eager=True)["scores"]  # the op-by-op reference path
        assert em._graph is not None and np.allclose(got, eager, rtol=2e-3, atol=1e-6), name
        rel = float(np.abs(got - ref).max() / np.abs(ref).max())
        if fp32:
            assert rel < 2e-5, (name, rel)
        else:
            assert np.all(np.isfinite(got)) and tensor_metrics(ref, got)["cosine"] > 0.99, (name, rel)


@pytest.mark.slow
def test_every_compression_recipe_executes(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    serving, cfg = _serving(APPS["MobileNetV2"](keras), 96)
    contract = _contract(serving, cfg)
    settings = CoreMLSettings(deployment_target="iOS18", compression=sorted(RECIPES))
    base = coreml.convert(serving, contract, settings)
    x = np.random.default_rng(2).uniform(0, 1, (1, 96, 96, 3)).astype(np.float32)
    ref = serving.run(x)["scores"]
    base_path = coreml.save(base, tmp_path / "fp16.mlpackage")
    sizes = {"fp16": coreml.weight_bytes(base_path)}
    for recipe in sorted(RECIPES):
        path = coreml.save(coreml.compress(base, recipe, contract, settings), tmp_path / f"{recipe}.mlpackage")
        em = CoreMLEmulator(path)
        kinds = {o.op_type for o in em.function.operations if o.op_type.startswith("constexpr_")}
        assert kinds, f"{recipe} produced no compressed weights"
        got = em.run({"image": x})["scores"]
        assert np.all(np.isfinite(got)) and tensor_metrics(ref, got)["cosine"] > 0.5, recipe
        sizes[recipe] = coreml.weight_bytes(path)
    assert sizes["palettize4"] < 0.3 * sizes["fp16"] and sizes["palettize8"] < 0.55 * sizes["fp16"]
    assert sizes["palettize4"] < sizes["palettize_mixed46"] < sizes["palettize6"]


def test_mixed_bits_puts_the_largest_tensors_at_4_bits_until_half_the_weights():
    from mobilekit.export.coreml_compress import mixed_bits

    # one tensor holding most weights: only it goes to 4 bits (the small, sensitive ones keep 6)
    assert mixed_bits({"head": 6144, "big": 331776, "dw": 2592}) == {"big": 4, "head": 6, "dw": 6}
    # equal tensors: 4 bits until half are covered; ties broken by name, so the choice is the same on every machine
    assert mixed_bits({"d": 10, "c": 10, "b": 10, "a": 10}) == {"a": 4, "b": 4, "c": 6, "d": 6}


@pytest.mark.slow
def test_build_ships_coreml_packages_with_parity(tmp_path, yolo_model, shapes_dataset, cache):
    from click.testing import CliRunner

    from mobilekit.cli import main

    cfg = detector_config(yolo_model, shapes_dataset, cache / "labels.txt",
                          coreml={"compression": ["palettize8", "linear8"]})
    out = tmp_path / "bundle"
    res = CliRunner().invoke(main, ["build", str(write_config(tmp_path, cfg)), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    coreml_arts = [a for a in manifest["artifacts"] if a["kind"] == "coreml"]
    assert sorted(a["path"] for a in coreml_arts) == ["ios/Shapes_Detector.mlpackage",
                                                      "ios/Shapes_Detector_linear8.mlpackage",
                                                      "ios/Shapes_Detector_palettize8.mlpackage"]
    assert (out / "ios/Shapes_Detector.mlpackage/Manifest.json").is_file()
    parity = json.loads((out / "report/parity.json").read_text())
    for kind in ("coreml-fp16", "coreml-palettize8", "coreml-linear8"):
        res_ = parity["artifacts"][kind]["resolvers"]["emulator"]
        assert res_["tensors"]["scores"]["cosine"] > 0.98
        assert res_["detection"]["recall"] >= WIDE_BAR["min_detection_recall"]
    assert parity["fp16_watch"]["coreml-fp16"]["overflow_values"] == 0
    ane = json.loads((out / "report/ane.json").read_text())
    assert ane["compute_ops"] > 10
    import coremltools as ct

    meta = ct.models.MLModel(str(out / "ios/Shapes_Detector.mlpackage"), skip_model_load=True).user_defined_metadata
    assert json.loads(meta["labels"]) == ["circle", "square", "triangle"]
    assert json.loads(meta["mobilekit.contract"])["head"]["format"] == "yolo"
    assert "com.github.apple.coremltools.conversion_date" not in meta


@pytest.mark.slow
def test_fp16_overflow_fails_the_build(tmp_path, shapes_dataset, cache):
    """A model whose activations exceed fp16's range works in float and int8 but not on the Neural Engine."""
    import keras
    from click.testing import CliRunner

    from mobilekit.cli import main

    inp = keras.Input((96, 96, 3), name="image")
    x = keras.layers.Conv2D(8, 3, strides=4, activation="relu", name="hot_conv")(inp)
    x = keras.layers.Rescaling(2e5, name="amplify")(x)  # ~1e5: fine in fp32, inf in fp16
    x = keras.layers.ReLU(name="keep_apart")(x)  # stops the converter folding the two scales together
    x = keras.layers.Rescaling(1e-5, name="attenuate")(x)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    path = tmp_path / "hot.keras"
    keras.Model(inp, out).save(path)
    cfg = {"model": str(path), "task": "classification", "labels": str(cache / "labels.txt"),
           "calibration": {"images": str(shapes_dataset), "count": 8}, "parity": {"images": 4},
           "coreml": {"compression": []}}
    res = CliRunner().invoke(main, ["build", str(write_config(tmp_path, cfg)), "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 3, res.output
    assert "fp16_overflow" in res.output and "coreml-fp16" in res.output
    cfg["coreml"]["allow_fp16_overflow"] = True
    cfg["parity"].update({"min_cosine": 0.0, "min_snr_db": -1000.0, "min_top1_agreement": 0.0})
    res = CliRunner().invoke(main, ["build", str(write_config(tmp_path, cfg)), "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 0, res.output
    watch = json.loads((tmp_path / "o/report/parity.json").read_text())["fp16_watch"]["coreml-fp16"]
    assert watch["overflow_values"] + watch["nonfinite_values"] > 0, watch
    assert watch["overflow_values"] > 0 and any("amplify" in r["layer"] for r in watch["ops"]), watch


@pytest.mark.slow
def test_image_input_applies_the_models_own_normalization(tmp_path, classifier_model, shapes_dataset, cache):
    from click.testing import CliRunner

    from mobilekit.cli import main
    from mobilekit.contract import Contract

    cfg = {"model": str(classifier_model), "task": "classification", "labels": str(cache / "labels.txt"),
           "input": {"normalization": {"mean": [10, 20, 30], "std": [255, 255, 255]}},
           "calibration": {"images": str(shapes_dataset), "count": 10}, "parity": {"images": 10, **NO_GATE},
           "coreml": {"input": "image", "compression": []}}
    res = CliRunner().invoke(main, ["build", str(write_config(tmp_path, cfg)), "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 0, res.output
    contract = Contract.load(tmp_path / "o/contract.json")
    assert contract.artifacts["coreml-fp16"].inputs[0].dtype == "image"
    parity = json.loads((tmp_path / "o/report/parity.json").read_text())
    assert parity["artifacts"]["coreml-fp16"]["resolvers"]["emulator"]["tensors"]["scores"]["cosine"] > 0.999
    cfg["input"]["normalization"]["std"] = [58.4, 57.1, 57.4]
    res = CliRunner().invoke(main, ["build", str(write_config(tmp_path, cfg)), "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 2 and "coreml.input" in res.output and "one scale" in res.output


@pytest.mark.slow
def test_vision_pipeline_agrees_with_the_reference(tmp_path, ssd_model, shapes_dataset, cache):
    """Decoder + NonMaximumSuppression pipeline, executed in the emulator, against the Python reference."""
    from click.testing import CliRunner

    from mobilekit.cli import main

    cfg = detector_config(ssd_model, shapes_dataset, cache / "labels.txt", "ssd", detection={
        "head": "ssd", "score_activation": "softmax", "background_class": True, "score_threshold": 0.3,
        "outputs": {"boxes": "box_deltas", "scores": "class_logits"},
        "anchors": {"feature_maps": [[12, 12]], "min_scale": 0.35, "max_scale": 0.35,
                    "aspect_ratios": [1.0, 2.0, 0.5]}},
        coreml={"input": "image", "vision": True, "compression": []}, parity={"images": 24, **NO_GATE})
    res = CliRunner().invoke(main, ["build", str(write_config(tmp_path, cfg)), "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 0, res.output
    import coremltools as ct

    spec = ct.models.MLModel(str(tmp_path / "o/ios/Shapes_Detector_vision.mlpackage"), skip_model_load=True).get_spec()
    assert [m.WhichOneof("Type") for m in spec.pipeline.models] == ["mlProgram", "nonMaximumSuppression"]
    assert [o.name for o in spec.description.output] == ["confidence", "coordinates"]
    det = json.loads((tmp_path / "o/report/parity.json").read_text())["artifacts"]["coreml-vision"]
    d = det["resolvers"]["emulator"]["detection"]
    assert d["reference_detections"] > 0 and d["recall"] > 0.95 and d["precision"] > 0.95
    res = CliRunner().invoke(main, ["build", str(write_config(tmp_path, {**cfg, "coreml": {"vision": True}})),
                                    "--out", str(tmp_path / "o2"), "--quiet"])
    assert res.exit_code == 2 and "coreml.vision" in res.output


def test_coreml_nms_semantics():
    from mobilekit.emulate.coreml.vision import coreml_nms

    conf = np.array([[0.9, 0.0], [0.8, 0.0], [0.0, 0.7], [0.1, 0.05]], np.float32)
    coords = np.array([[0.5, 0.5, 0.2, 0.2], [0.51, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2], [0.1, 0.1, 0.1, 0.1]],
                      np.float32)
    c, b = coreml_nms(conf, coords, iou=0.5, threshold=0.3, per_class=True)
    assert np.allclose(c[:, :].max(1), [0.9, 0.7]) and np.allclose(b[1], coords[2])  # other class survives
    c, b = coreml_nms(conf, coords, iou=0.5, threshold=0.3, per_class=False)
    assert np.allclose(c.max(1), [0.9])  # class-agnostic: the class-1 box overlaps and goes
