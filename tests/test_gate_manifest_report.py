"""The gate, the manifest and the report on their own, from hand-made inputs (no model, no converter)."""

from __future__ import annotations

import math

from helpers import detector_contract

from mobilekit.bundle.manifest import MANIFEST_SCHEMA, build_manifest
from mobilekit.config import ParitySettings
from mobilekit.parity.gate import Check, evaluate
from mobilekit.parity.run import ParityReport, Samples
from mobilekit.report.html import render


def _parity(cosine: float, recall: float, drop: float) -> ParityReport:
    tensors = {"boxes": {"cosine": cosine, "snr_db": 30.0}, "scores": {"cosine": 0.999, "snr_db": 25.0}}
    res = {"tensors": tensors, "detection": {"recall": recall, "precision": 1.0}, "map50_drop": drop}
    return ParityReport(3, {"tflite-int8": {"resolvers": {"xnnpack": res, "reference": res}}})


def test_gate_checks_every_metric_of_every_kernel_set_against_its_bar():
    checks = evaluate(_parity(0.97, 0.9, 2.5), ParitySettings(), "detection")
    assert len(checks) == 2 * 7  # 2 outputs x (cosine, snr) + recall, precision, mAP drop; per kernel set
    failed = {(c.resolver, c.metric) for c in checks if not c.passed}
    assert failed == {(r, m) for r in ("xnnpack", "reference") for m in ("boxes.cosine", "map50_drop")}
    loose = evaluate(_parity(0.97, 0.9, 2.5), ParitySettings(min_cosine=0.9, max_map50_drop=3.0), "detection")
    assert all(c.passed for c in loose)


def test_an_unmeasurable_metric_is_reported_not_failed():
    c = Check("tflite-int8", "xnnpack", "map50_drop", math.nan, 2.0, False)
    assert c.passed and c.to_dict()["passed"] and math.isnan(c.to_dict()["value"])


def test_manifest_sorts_artifacts_and_names_its_schema_and_tools():
    arts = [{"kind": "labels", "path": "b.txt", "size": 1, "sha256": "x"},
            {"kind": "tflite-int8", "path": "a.tflite", "size": 2, "sha256": "y"}]
    m = build_manifest(arts, model={"path": "m.keras", "sha256": "z"}, config_sha256="c", parity={"passed": True})
    assert m["schema_version"] == MANIFEST_SCHEMA and [a["path"] for a in m["artifacts"]] == ["a.tflite", "b.txt"]
    assert {"tensorflow", "coremltools", "ai-edge-litert"} <= set(m["versions"]) and m["parity"] == {"passed": True}
    assert "time" not in str(sorted(m)).lower()  # no timestamps: identical builds, identical manifests


def test_report_escapes_what_it_is_given_and_marks_failures():
    contract = detector_contract("yolo")
    contract.name = 'Cars <script>alert("x")</script>'
    parity = _parity(0.97, 0.9, 2.5)
    parity.checks = [c.to_dict() for c in evaluate(parity, ParitySettings(), "detection")]
    page = render(contract, {"artifacts": [], "latency_ms": {}, "mobilekit": "0"}, parity, Samples(), [], [])
    assert "<script>alert" not in page and "Cars &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert page.count('<span class="bad">FAIL</span>') == 4 and '<span class="ok">ok</span>' in page
    assert page.count("<table>") == 3 and "<td>parity</td><td>FAILED</td>" in page


def test_the_parity_line_names_a_drift_start_only_when_there_is_one():
    """The debugger's first layer above one int8 step is "where drift starts"; when no layer is above it, the
    line names the largest error as such; when only Core ML checks failed, int8 layers are not mentioned."""
    from mobilekit.pipeline import _drift_words

    int8 = [Check("tflite-int8", "xnnpack", "scores.snr_db", 5.0, 20.0, True)]
    coreml = [Check("coreml-fp16", "emulator", "scores.snr_db", 5.0, 20.0, True)]
    drift = {"drift_start": "conv_3", "worst": "conv_9", "bar_steps": 1.0}
    assert _drift_words(drift, int8) == ("; int8 drift starts at layer conv_3", "conv_3")
    words, layer = _drift_words({**drift, "drift_start": None}, int8)
    assert layer == "conv_9" and "drift starts" not in words and "largest int8 error is at layer conv_9" in words
    assert _drift_words(drift, coreml) == ("", None)
    assert _drift_words({"layers": [], "drift_start": None, "error": "x"}, int8) == ("", None)


def test_int8_slower_than_float_is_said_plainly():
    """The build says so when int8 is slower than the float model on the CPU, against the fastest float form."""
    from mobilekit.kinds import Kind
    from mobilekit.pipeline import int8_slower_than_float

    slow = int8_slower_than_float({Kind.TFLITE_INT8: 3.0, Kind.TFLITE_FP16: 2.0, Kind.TFLITE_FLOAT32: 1.5})
    assert slow is not None and "2.0x slower than tflite-float32" in slow and "every op runs in XNNPACK" in slow
    named = int8_slower_than_float({Kind.TFLITE_INT8: 3.0, Kind.TFLITE_FP16: 2.0}, {"PRELU": 8})
    assert named is not None and "PRELU x8 run outside XNNPACK" in named
    assert int8_slower_than_float({Kind.TFLITE_INT8: 1.0, Kind.TFLITE_FP16: 2.0}) is None
    assert int8_slower_than_float({Kind.TFLITE_INT8: 1.0}) is None  # no float model measured: nothing to compare


def test_ops_outside_xnnpack_are_found(tmp_path):
    """An int8 PReLU has no XNNPACK kernel: the walk over the delegate's nodes names it; its float twin has none."""
    import numpy as np
    import tensorflow as tf

    from mobilekit.emulate.litert import outside_xnnpack

    inp = tf.keras.Input((16, 16, 3))
    x = tf.keras.layers.PReLU(shared_axes=[1, 2])(tf.keras.layers.Conv2D(8, 3, padding="same")(inp))
    model = tf.keras.Model(inp, tf.keras.layers.Conv2D(4, 1)(x))
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    floats = conv.convert()
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([np.random.default_rng(k).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)]
                                           for k in range(8))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    int8 = conv.convert()
    assert outside_xnnpack(int8) == {"PRELU": 1}
    assert outside_xnnpack(floats) == {}
    conv.representative_dataset, conv.target_spec.supported_ops = None, [tf.lite.OpsSet.TFLITE_BUILTINS]
    conv.target_spec.supported_types = [tf.float16]
    fp16 = conv.convert()

    # per op: every op timed alone, where it ran said; an fp16 weight's DEQUANTIZE costs nothing per frame
    from mobilekit.emulate.profile import op_profile, profile

    prof = profile(int8)
    assert prof["ops"] == len(op_profile(int8)) and prof["whole_ms"] > 0
    assert [(r["op"], r["dtype"], r["count"]) for r in prof["outside_xnnpack"]] == [("PRELU", "int8", 1)]
    assert prof["outside_xnnpack"][0]["ms"] > 0 and prof["outside_xnnpack_ms"] == prof["outside_xnnpack"][0]["ms"]
    half = op_profile(fp16)
    assert {t.op for t in half if t.ms == 0.0} == {"DEQUANTIZE"} and all(t.xnnpack for t in half if t.op != "PRELU")
    assert all(t.ms > 0 for t in half if t.op == "CONV_2D")
