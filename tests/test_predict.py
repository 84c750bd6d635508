"""``mobilekit predict``: one artifact of a bundle on images, through the CLI; its detections are the SDK path's
(LiteRT outputs, the contract's decode and NMS), its candidates every one the model outputs, in order."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from mobilekit.cli import main
from mobilekit.contract import Contract
from mobilekit.data.datasets import list_yolo, load_image
from mobilekit.data.preprocess import letterbox
from mobilekit.emulate.litert import LiteRTRunner
from mobilekit.heads import get_head
from mobilekit.postprocess import detect

pytestmark = pytest.mark.slow  # the SDK bundles


def _predict(*args: str) -> tuple[int, list[dict]]:
    res = CliRunner().invoke(main, ["predict", *args, "--json"], catch_exceptions=False)
    return res.exit_code, [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def test_detections_and_candidates_are_the_sdk_paths(sdk_bundles, shapes_dataset):
    bundle = sdk_bundles["grid_yolox_zoo"]
    contract = Contract.load(bundle / "contract.json")
    images = [r.path for r in list_yolo(shapes_dataset)[:3]]
    code, records = _predict(str(bundle), *map(str, images))
    assert code == 0 and len(records) == 3
    runner = LiteRTRunner((bundle / contract.artifacts["tflite-int8"].path).read_bytes(),
                          contract.artifacts["tflite-int8"], contract)
    for rec, path in zip(records, images, strict=True):
        assert rec["image"] == str(path) and rec["artifact"] == "tflite-int8"
        canvas, plan = letterbox(load_image(path), contract.input.height, contract.input.width, "letterbox", 114)
        want = detect(runner.run(canvas), contract, plan)
        assert [d["class"] for d in rec["detections"]] == want.classes.tolist()
        assert [d["label"] for d in rec["detections"]] == [contract.labels[k] for k in want.classes]
        np.testing.assert_allclose([d["box"] for d in rec["detections"]], want.boxes.reshape(-1, 4), atol=1e-6)
        np.testing.assert_allclose([d["score"] for d in rec["detections"]], want.scores, atol=1e-9)
        assert all(len(d["scores"]) == len(contract.labels) for d in rec["detections"])
    code, records = _predict(str(bundle), str(images[0]), "--candidates", "--artifact", "tflite-fp16")
    assert code == 2  # the SDK bundles carry no fp16 model: one line names what the bundle has
    code, records = _predict(str(bundle), str(images[0]), "--candidates", "--artifact", "coreml-fp16")
    assert code == 0
    cands = records[0]["candidates"]
    assert len(cands) == contract.outputs[0].shape[1]  # every candidate, in the model's order
    canvas, plan = letterbox(load_image(images[0]), contract.input.height, contract.input.width, "letterbox", 114)
    from mobilekit.emulate.coreml import CoreMLEmulator
    from mobilekit.run.shards import coreml_runner

    path = bundle / contract.artifacts["coreml-fp16"].path
    want = get_head("grid").candidates(coreml_runner(CoreMLEmulator(path), contract, [])(canvas), contract)
    np.testing.assert_allclose([c["box"] for c in cands], plan.to_source(want.boxes).reshape(-1, 4), atol=1e-4)
    np.testing.assert_allclose([c["scores"] for c in cands], want.scores, atol=1e-7)


def test_a_classifier_predicts_its_top_classes(sdk_bundles, shapes_dataset):
    images = [r.path for r in list_yolo(shapes_dataset)[:2]]
    code, records = _predict(str(sdk_bundles["classifier"]), *map(str, images))
    assert code == 0 and len(records) == 2
    for rec in records:
        scores = [c["score"] for c in rec["classes"]]
        assert scores == sorted(scores, reverse=True) and 0 <= scores[-1] <= scores[0] <= 1
        assert {c["label"] for c in rec["classes"]} <= {"circle", "square", "triangle"}
