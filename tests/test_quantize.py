"""int8 quantization (mobilekit.quantize): the split converter, activation ranges, Keras-side weight preparation and
selective precision, on real converters and LiteRT.

The models are built here without training (the int8-hostile outlier classifier of mobilekit.example.hard, whose
float function is fixed by construction), so nothing depends on how well a model learned on this CPU; every
accuracy comparison is between int8 variants of one model with a margin far above kernel differences.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import write_config

from mobilekit.cli import main
from mobilekit.quantize import ptq, ranges, weights

SIZE = 32


@pytest.fixture(scope="module")
def hostile():
    """The outlier classifier (channel 0 of bn1 x100, compensated in c2) and 24 calibration inputs."""
    from mobilekit.example.hard import outlier_classifier

    rng = np.random.default_rng(0)
    images = [rng.uniform(-1, 1, (1, SIZE, SIZE, 3)).astype(np.float32) for _ in range(24)]
    return outlier_classifier(SIZE, classes=5, factor=100.0), images


def _serving(model):
    from mobilekit.config_file import parse_config
    from mobilekit.derive import plan
    from mobilekit.models.loader import from_keras
    from mobilekit.models.serving import build_serving

    cfg = parse_config({"model": "m.keras", "task": "classification", "calibration": {"images": "x"}},
                       Path("/tmp/mobilekit.yaml"))
    loaded = from_keras(Path("m.keras"), model, "keras3")
    return build_serving(loaded, plan(cfg, loaded), cut=False)  # softmax kept


def _run(model: bytes, xs: list[np.ndarray]) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    out = []
    for x in xs:
        s, z = i["quantization"]
        it.set_tensor(i["index"], np.clip(np.round(x / s + z), -128, 127).astype(np.int8) if s else x)
        it.invoke()
        y = it.get_tensor(o["index"]).astype(np.float64)
        s, z = o["quantization"]
        out.append((y - z) * s if s else y)
    return np.concatenate(out)


def _snr(ref: np.ndarray, got: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - got) ** 2), 1e-30)))


def _float(model, xs):
    return np.concatenate([np.asarray(model(x, training=False)) for x in xs]).astype(np.float64)


def test_split_conversion_is_the_converters(hostile):
    """Calibrate-then-quantize with min-max ranges gives the converter's model: every tensor's name, dtype and
    quantization, every weight and every output (the bytes differ only in the converter's metadata)."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    model, xs = hostile
    serving = _serving(model)
    conv = tf.lite.TFLiteConverter.from_concrete_functions([serving.fn])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x] for x in xs)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    plain = conv.convert()
    ours, _ = ptq.convert_int8(serving, lambda: iter(xs), "int8", "minmax")
    a, b = Interpreter(model_content=plain), Interpreter(model_content=ours)
    a.allocate_tensors()
    b.allocate_tensors()
    ta, tb = a.get_tensor_details(), b.get_tensor_details()
    assert [(t["name"], t["dtype"]) for t in ta] == [(t["name"], t["dtype"]) for t in tb]
    for x, y in zip(ta, tb, strict=True):
        qa, qb = x["quantization_parameters"], y["quantization_parameters"]
        assert np.array_equal(qa["scales"], qb["scales"]) and np.array_equal(qa["zero_points"], qb["zero_points"])
    assert np.array_equal(_run(plain, xs), _run(ours, xs))


def test_mse_range_clips_a_heavy_tail_and_minmax_does_not():
    """A heavy-tailed activation (Student's t, 2 degrees of freedom): min-max spends the int8 steps on a few tail
    values, MSE clips them for a finer step on the bulk; a single far outlier costs more clipped than rounded, so
    MSE keeps it."""
    rng = np.random.default_rng(0)
    o = ranges.Observed(per_image=1 << 16)
    for _ in range(8):
        o.add(np.abs(rng.standard_t(2, 4096)), rng)
    lo, hi = ranges.mse(o)
    assert ranges.minmax(o) == (o.lo, o.hi) and 0 < hi < o.hi
    assert ranges._int8_error(o.sample, lo, hi) < ranges._int8_error(o.sample, o.lo, o.hi)
    assert ranges.percentile(o)[1] < o.hi
    single = ranges.Observed(per_image=1 << 16)
    single.add(np.concatenate([rng.normal(0, 1, 32767), [60.0]]), rng)
    assert ranges.mse(single)[1] > 50.0


def test_model_input_and_outputs_keep_their_minmax_ranges(hostile):
    """Only inner activations are clipped: the input's range is the normalization's, an output's tail is what the
    app reads."""
    from ai_edge_litert.tools import flatbuffer_utils

    model, xs = hostile
    calibrated = ptq.calibrate(_serving(model), lambda: iter(xs))
    clipped = ranges.recalibrate(calibrated, "mse", iter(xs), len(xs))

    def stats(m: bytes) -> dict[int, tuple[float, float]]:
        obj = flatbuffer_utils.convert_bytearray_to_object(bytearray(m))
        return {i: (float(t.quantization.min[0]), float(t.quantization.max[0]))
                for i, t in enumerate(obj.subgraphs[0].tensors) if t.quantization is not None
                and t.quantization.min is not None and len(t.quantization.min) == 1}

    before, after = stats(calibrated), stats(clipped)
    sub = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated)).subgraphs[0]
    for i in [*sub.inputs, *sub.outputs]:
        assert after[int(i)] == before[int(i)]
    assert any(after[i][1] < before[i][1] for i in before), "mse clipped nothing on the outlier channel"


def test_equalization_keeps_the_float_model_and_recovers_the_outlier_channel(hostile):
    """CLE on the pair (c1+bn1 → ReLU → c2) leaves the float outputs as they were and brings int8 back: the outlier
    channel no longer owns the activation's int8 range."""
    from mobilekit.example.hard import outlier_classifier

    _, xs = hostile
    model = outlier_classifier(SIZE, classes=5, factor=100.0)
    ref = _float(model, xs)
    plain, _ = ptq.convert_int8(_serving(model), lambda: iter(xs), "int8", "minmax")
    us = weights.units(model)
    pairs = {(u.layer.name, u.next.layer.name) for u in us if u.next is not None}
    assert {("c1", "c2"), ("c2", "dw")} <= pairs
    info = weights.equalize(model, us, lambda: iter(xs))
    assert np.allclose(_float(model, xs), ref, rtol=1e-4, atol=1e-6)
    equalized, _ = ptq.convert_int8(_serving(model), lambda: iter(xs), "int8", "minmax")
    before, after = _snr(ref, _run(plain, xs)), _snr(ref, _run(equalized, xs))
    assert after > before + 10.0, (before, after, info)  # measured: 16.6 dB -> 43.6 dB


def test_relu6_channels_that_reach_the_clip_are_not_scaled():
    """Through ReLU6 a channel may only be scaled where the calibration images never reach 6 at the new scale."""
    import keras

    keras.utils.set_random_seed(1)
    inp = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(2, 1, use_bias=True, name="a")(inp)
    x = keras.layers.ReLU(6.0)(x)
    out = keras.layers.Conv2D(3, 1, name="b")(x)
    model = keras.Model(inp, out)
    k = np.asarray(model.get_layer("a").weights[0])
    k[:] = [[[[50.0, 0.01], [50.0, 0.01]]]]  # channel 0 saturates at 6 on these inputs, channel 1 never does
    model.get_layer("a").set_weights([k, np.zeros(2, np.float32)])
    xs = [np.full((1, 8, 8, 2), v, np.float32) for v in (0.5, 1.0)]
    ref = _float(model, xs)
    us = weights.units(model)
    weights.equalize(model, us, lambda: iter(xs))
    after = np.asarray(model.get_layer("a").weights[0])
    assert after[0, 0, 0, 0] == pytest.approx(50.0)  # clipped channel: untouched
    assert after[0, 0, 0, 1] != pytest.approx(0.01)  # free channel: equalized
    assert np.allclose(_float(model, xs), ref, rtol=1e-5, atol=1e-6)


def test_bias_correction_cancels_the_expected_rounding_shift(hostile):
    """After correction, E[x] through the int8-rounded kernel plus the new bias equals E[x] through the float
    kernel plus the old bias, per output channel (exact for 1x1 convs and dense layers)."""
    from mobilekit.example.hard import outlier_classifier

    _, xs = hostile
    model = outlier_classifier(SIZE, classes=5, factor=100.0)
    us = [u for u in weights.units(model) if u.layer.name in ("c2", "fc")]
    originals = {id(u): u.folded() for u in us}
    means = weights.input_means(model, us, lambda: iter(xs))
    weights.correct_bias(us, means, originals)
    for u, m in zip(us, means, strict=True):
        w0, b0 = originals[id(u)]
        w, b = u.folded()
        flat = lambda k: k.reshape(-1, k.shape[-1])  # noqa: E731 - 1x1 kernel or dense: input x output
        assert np.allclose(m @ flat(weights.quantized(w)) + b, m @ flat(w0) + b0, rtol=1e-5, atol=1e-6)


def test_adaround_weights_are_what_the_converter_stores(hostile):
    """AdaRound writes weights on the int8 grid with each channel's scale kept: the converter's int8 kernels,
    dequantized, are exactly the folded Keras kernels, and some weights round away from nearest."""
    from ai_edge_litert.interpreter import Interpreter

    from mobilekit.example.hard import outlier_classifier

    _, xs = hostile
    model = outlier_classifier(SIZE, classes=5, factor=100.0)
    us = weights.units(model)
    scales = {u.layer.name: weights._scale(u.folded()[0]) for u in us}
    info = weights.adaround(model, us, lambda: iter(xs), images=8, iters=60)
    assert 0 < info["rounded_away_from_nearest"] < 0.5
    int8, _ = ptq.convert_int8(_serving(model), lambda: iter(xs), "int8", "minmax")
    it = Interpreter(model_content=int8)
    kernels = [t for t in it.get_tensor_details() if t["dtype"] == np.int8 and len(t["shape"]) >= 2
               and len(t["quantization_parameters"]["scales"]) > 1]
    c2 = next(u for u in us if u.layer.name == "c2")
    w, _ = c2.folded()
    want = w.reshape(-1, w.shape[-1]).T  # TFLite conv kernels are O, H, W, I
    match = [t for t in kernels if t["shape"][0] == w.shape[-1] and np.prod(t["shape"]) == w.size
             and np.allclose(it.get_tensor(t["index"]).reshape(w.shape[-1], -1)
                             * t["quantization_parameters"]["scales"][:, None], want, rtol=1e-6, atol=1e-9)]
    assert match, "the int8 c2 kernel is not the AdaRound weights"
    assert np.allclose(match[0]["quantization_parameters"]["scales"], scales["c2"], rtol=1e-6)


def test_selective_precision_writes_a_separate_mixed_artifact(tmp_path, hostile, shapes_dataset):
    """max_drop below what full-int8 reaches: the build keeps full-int8 as it is and adds tflite-int8-mixed with
    the ops that measurably help in float, said in the manifest, the delegate report and the console."""
    model, _ = hostile
    model.save(tmp_path / "hostile.keras")
    (tmp_path / "labels.txt").write_text("a\nb\nc\nd\ne\n")
    cfg = {"model": str(tmp_path / "hostile.keras"), "name": "Hostile", "task": "classification",
           "labels": str(tmp_path / "labels.txt"),
           "input": {"normalization": {"mean": [127.5] * 3, "std": [127.5] * 3}},
           "calibration": {"images": str(shapes_dataset), "count": 40},
           "parity": {"images": 40, "enforce": False}, "coreml": {"enabled": False},
           "quantization": {"calibration": "minmax", "max_drop": 1.0}}
    out = tmp_path / "bundle"
    result = CliRunner().invoke(main, ["build", str(write_config(tmp_path / "cfg", cfg)), "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    sel = manifest["quantization"]["selective"]
    assert sel["int8_drop"] > 5.0 and sel["met"] and sel["float_ops"], sel  # measured: 22.5 -> 0 points
    lo, hi = sel["int8_drop_interval"]  # how well 40 images pin that drop down, said beside it
    assert lo <= sel["int8_drop"] <= hi and "90% interval" in " ".join(result.output.split())
    kinds = {a["kind"]: a for a in manifest["artifacts"]}
    assert "tflite-int8-mixed" in kinds and manifest["verification"]["tflite-int8"]["full_integer"]
    contract = json.loads((out / "contract.json").read_text())["artifacts"]
    full, mixed = contract["tflite-int8"], contract["tflite-int8-mixed"]
    assert [(t["dtype"], t["scale"]) for t in full["inputs"]] == [(t["dtype"], t["scale"]) for t in mixed["inputs"]]
    report = json.loads((out / "report" / "delegates.json").read_text())["tflite-int8-mixed"]["float_ops"]
    assert any(op.split("#")[0] in {o["op"] for o in sel["float_ops"]} for op in report["ops"])
    parity = json.loads((out / "report" / "parity.json").read_text())["artifacts"]
    assert parity["tflite-int8-mixed"]["resolvers"]["xnnpack"]["top1_agreement"] > \
        parity["tflite-int8"]["resolvers"]["xnnpack"]["top1_agreement"]
    assert "tflite-int8-mixed leaves" in " ".join(result.output.split())


def test_unknown_calibration_method_is_one_line_with_a_suggestion(tmp_path, shapes_dataset):
    cfg = {"model": "m.keras", "calibration": {"images": str(shapes_dataset)},
           "quantization": {"calibration": "mes"}}
    result = CliRunner().invoke(main, ["build", str(write_config(tmp_path, cfg)), "--quiet"])
    assert result.exit_code == 2
    assert "did you mean 'mse'" in result.output


def test_classifier_top1_accuracy_from_class_folders(tmp_path, hostile, shapes_dataset):
    """Evaluation images in folders named as labels: parity reports the top-1 accuracy of the float model and of
    each artifact against those labels (the figure users compare), besides top-1 agreement."""
    import shutil

    model, _ = hostile
    model.save(tmp_path / "hostile.keras")
    labels = ["a", "b", "c", "d", "e"]
    (tmp_path / "labels.txt").write_text("\n".join(labels) + "\n")
    for k, img in enumerate(sorted(shapes_dataset.rglob("*.png"))[:30]):
        (tmp_path / "eval" / labels[k % 5]).mkdir(parents=True, exist_ok=True)
        shutil.copy(img, tmp_path / "eval" / labels[k % 5] / img.name)
    cfg = {"model": str(tmp_path / "hostile.keras"), "task": "classification", "labels": str(tmp_path / "labels.txt"),
           "input": {"normalization": {"mean": [127.5] * 3, "std": [127.5] * 3}},
           "calibration": {"images": str(shapes_dataset), "count": 20},
           "evaluation": {"images": str(tmp_path / "eval")},
           "parity": {"images": 30, "enforce": False}, "coreml": {"enabled": False}, "export": {"fp16": False}}
    out = tmp_path / "bundle"
    result = CliRunner().invoke(main, ["build", str(write_config(tmp_path / "cfg", cfg)), "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    parity = json.loads((out / "report" / "parity.json").read_text())
    res = parity["artifacts"]["tflite-int8"]["resolvers"]["xnnpack"]
    assert 0 <= parity["top1_float"] <= 100 and res["top1_drop"] == pytest.approx(parity["top1_float"] - res["top1"])
    assert "top-1 accuracy of the float model" in " ".join(result.output.split())


@pytest.mark.slow
def test_qat_runs_on_demand_when_ptq_and_selective_precision_miss(tmp_path, shapes_dataset):
    """The outlier classifier with logits out (nothing to cut) and one float op allowed: neither full-int8 nor a
    single float op recovers it (the outlier needs its producer and consumer in float), so QAT runs, into its own
    artifact that parity measures beside the others."""
    import keras

    from mobilekit.example.hard import outlier_classifier

    model = outlier_classifier(SIZE, classes=5, factor=100.0)
    logits = keras.Model(model.input, keras.layers.Dense(5, name="logits")(model.get_layer("gap").output))
    logits.get_layer("logits").set_weights(model.get_layer("fc").get_weights())
    logits.save(tmp_path / "logits.keras")
    (tmp_path / "labels.txt").write_text("a\nb\nc\nd\ne\n")
    cfg = {"model": str(tmp_path / "logits.keras"), "task": "classification", "labels": str(tmp_path / "labels.txt"),
           "input": {"normalization": {"mean": [127.5] * 3, "std": [127.5] * 3}},
           "calibration": {"images": str(shapes_dataset), "count": 24},
           "parity": {"images": 24, "enforce": False}, "coreml": {"enabled": False}, "export": {"fp16": False},
           "quantization": {"calibration": "minmax", "max_drop": 0.0, "max_float_ops": 1, "qat_on_demand": True},
           "compression": {"distill": {"epochs": 2, "batch_size": 8}}}
    out = tmp_path / "bundle"
    result = CliRunner().invoke(main, ["build", str(write_config(tmp_path / "cfg", cfg)), "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    sel = manifest["quantization"]["selective"]
    assert not sel["met"] and "drop" in sel["qat"], sel
    assert {"tflite-int8", "tflite-int8-qat"} <= {a["kind"] for a in manifest["artifacts"]}
    parity = json.loads((out / "report" / "parity.json").read_text())["artifacts"]
    assert "xnnpack" in parity["tflite-int8-qat"]["resolvers"]
    assert "QAT (tflite-int8-qat): drop" in " ".join(result.output.split())
