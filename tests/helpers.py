"""Helpers the tests share: paths, the fixtures' seed, parity bars, config builders and the Swift driver.

Plain functions and constants, imported by the test modules (``from helpers import ...``); the fixtures that use
them live in ``conftest.py``.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

#: The fixtures' seed; the suite must pass for any of them.
SEED = int(os.environ.get("MOBILEKIT_TEST_SEED", "0"))
#: The parity gate off, for tests about something other than accuracy (SDKs, codegen, bundles, errors).
NO_GATE = {"enforce": False}
#: The bar for parity-gate tests on the fixtures: every shapes image (40, ~100 objects, so one detection moves
#: mAP@0.5 by about a point) and bars with a margin. Measured on the fixture detectors under seeds 0 and 1 and
#: oneDNN on and off, the worst artifacts were: cosine 0.999, SNR 27 dB, detection recall 0.818 and precision 0.94,
#: mAP@0.5 drop 2.6 points (SSD int8, oneDNN on): the default release bar (0.8 recall, 2 points) is a bar for
#: real models on real validation sets, not for 40 synthetic images. A broken conversion (a shared int8 scale for
#: boxes and scores, a wrong layout) lands far below these.
WIDE_BAR = {"images": 40, "min_cosine": 0.95, "min_snr_db": 10.0, "min_detection_recall": 0.6,
            "min_detection_precision": 0.6, "max_map50_drop": 8.0, "min_top1_agreement": 0.75}
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COCO128 = SHARED / "coco128"


def write_config(folder: Path, data: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mobilekit.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def train_constants(name: str) -> Any:
    """A fixture head's settings as ``mobilekit.example.train`` builds it (one definition for both), a copy."""
    import copy

    from mobilekit.example import train

    return copy.deepcopy(getattr(train, name))


# what the config must say for the fixture models whose head cannot be read from the outputs alone
#: The DFL fixture: the YOLO fixture's boxes as YOLOv8's raw bins (one level, stride 8) and class logits.
DFL = {"head": "dfl", "score_activation": "sigmoid", "params": {"strides": [8], "reg_max": 16}}
#: The decode conventions of a tf_keras zoo (keras_cv_attention_models), one fixture each, re-headed from the YOLO
#: fixture: YOLOv8's DFL sides top, left, bottom, right; YOLOX with y-first raw boxes, objectness last and the
#: scores' sigmoid applied in the model; YOLOv7 with the sigmoid on every channel, boxes included, and its anchor
#: listed [h, w]; EfficientDet's cell spacing (a fourth level of 2 cells 48 pixels apart, not 64).
CONVENTIONS = {
    "dfl_tlbr": {"head": "dfl", "score_activation": "sigmoid",
                 "params": {"strides": [8], "reg_max": 16, "sides": "tlbr"}},
    "grid_yolox_zoo": {"head": "grid", "box_order": "yx", "score_activation": "none",
                       "params": {"box": "yolox", "objectness": "last", "strides": [8]}},
    "grid_yolov7_zoo": {"head": "grid", "box_order": "yx", "score_activation": "none",
                        "params": {"box": "anchors", "objectness": "last", "strides": [8], "anchor_order": "hw",
                                   "anchors": [[train_constants("ZOO_ANCHOR")[::-1]]], "activated": ["boxes"]}},
    "retinanet_cells": {"head": "retinanet", "score_activation": "sigmoid", "params": train_constants("RETINA_CELLS")},
}
#: The grid fixtures: [box, objectness, classes] with boxes decoded (probabilities), or raw as YOLOX and YOLOv5
#: emit them (logits), one level at stride 8; the YOLOv5 one has one 48-pixel anchor per cell.
GRID = {
    "grid_decoded": {"head": "grid", "params": {"box": "decoded", "objectness": "first"}},
    "grid_yolox": {"head": "grid", "score_activation": "sigmoid",
                   "params": {"box": "yolox", "objectness": "first", "strides": [8]}},
    "grid_anchors": {"head": "grid", "score_activation": "sigmoid",
                     "params": {"box": "anchors", "objectness": "first", "strides": [8], "anchors": [[[48, 48]]]}},
}
#: The multi-level anchor fixtures (strides 8/16/32, sigmoid class logits): keras-cv's conventions with two
#: concatenated outputs, and torchvision's (keras-hub's) with one box and one class map per level.
RETINA = {
    "retinanet": {"head": "retinanet", "score_activation": "sigmoid", "params": train_constants("RETINA")},
    "retinanet_levels": {"head": "retinanet", "score_activation": "sigmoid",
                         "params": train_constants("RETINA_LEVELS")},
}
HEAD_SETTINGS: dict[str, dict[str, Any]] = {
    **{k: {**v, "score_threshold": 0.2, "max_detections": 20} for k, v in {**GRID, **RETINA, **CONVENTIONS}.items()},
    "dfl": {**DFL, "score_threshold": 0.2, "max_detections": 20},
    "decoded": {"head": "decoded", "box_format": "xyxy", "box_units": "normalized", "score_threshold": 0.2,
                "max_detections": 20},
    "ssd": {"head": "ssd", "score_activation": "softmax", "background_class": True, "score_threshold": 0.3,
            "max_detections": 20, "outputs": {"boxes": "box_deltas", "scores": "class_logits"},
            "anchors": {"feature_maps": [[12, 12]], "min_scale": 0.35, "max_scale": 0.35,
                        "aspect_ratios": [1.0, 2.0, 0.5]}},
}


def detector_config(model: Path, images: Path, labels: Path, head: str = "yolo", **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "model": str(model),
        "name": "Shapes Detector",
        "task": "detection",
        "labels": str(labels),
        "input": {"normalization": {"scale": 1 / 255, "offset": 0.0}},
        "detection": {"head": head, "score_threshold": 0.2, "max_detections": 20},
        "calibration": {"images": str(images), "format": "yolo", "count": 40},
        "parity": dict(WIDE_BAR),
    }
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = {**cfg[k], **v}
        else:
            cfg[k] = v
    return cfg


def swift() -> str:
    """The Swift driver; a test that needs it fails (never skips) without it, and says how to get it."""
    found = shutil.which("swift") or ("/opt/swift/usr/bin/swift" if Path("/opt/swift/usr/bin/swift").exists() else None)
    if found is None:
        pytest.fail("Swift is missing: install a Swift 6 toolchain for Linux from swift.org (e.g. into /opt/swift) "
                    "and put its usr/bin on PATH; the generated Swift package is checked with it")
    return found


def run_swift(*args: str, cwd: Path, timeout: int = 1800) -> subprocess.CompletedProcess:
    res = subprocess.run([swift(), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"swift {' '.join(args)} failed:\n{res.stdout[-6000:]}\n{res.stderr[-6000:]}"
    return res


@functools.cache
def swift_version() -> str:
    return run_swift("--version", cwd=Path.cwd()).stdout.strip()


def swift_built(name: str, package: Path, *commands: tuple[str, ...]) -> tuple[Path, list[str]]:
    """The Swift package at ``package`` copied as it is and built by each ``swift`` command in turn (each must
    succeed): the copy (with its ``.build``) and each command's output. Made once per content of the package, the
    commands and the toolchain (the suite's cache), so a second run with nothing changed reuses the build."""
    import testcache

    def run(out: Path) -> str:
        root = out / package.name
        shutil.copytree(package, root)
        outputs = []
        for args in commands:
            res = run_swift(*args, cwd=root)
            outputs.append(res.stdout + res.stderr)
        return json.dumps(outputs)

    key = testcache.digest(swift_version(), commands, sources=testcache.files_under(package), base=package)
    out, outputs = testcache.cached_run(name, key, run)
    return out / package.name, json.loads(outputs)


def swift_modules(bin_path: Path) -> Path:
    """Where a debug build (`.build/debug`) puts its `.swiftmodule`s: `Modules/` since SwiftPM 6."""
    return bin_path / "Modules" if (bin_path / "Modules").is_dir() else bin_path


DETECTOR_N = 24


def detector_contract(fmt: str, box_format: str = "cxcywh", units: str = "pixels") -> Any:
    """A hand-made detector contract (96x64 input, DETECTOR_N candidates, 3 classes) for unit tests."""
    from mobilekit.contract import Contract, HeadSpec, InputSpec, NmsSpec, OutputSpec
    from mobilekit.heads.ssd import ssd_anchors

    N, C = DETECTOR_N, 3
    inp = InputSpec(name="image", height=64, width=96, channels=3, layout="NHWC", color="RGB", resize="letterbox",
                    pad_value=114, scale=[1 / 255] * 3, offset=[0.0] * 3)
    head = HeadSpec(format=fmt, num_classes=C, box_format=box_format, box_units=units, score_activation="sigmoid")
    if fmt == "ssd":
        head.params = {"anchors": ssd_anchors([[2, 4]], 0.3, 0.3, [1.0, 2.0, 0.5]).tolist()[:N],
                       "variances": [0.1, 0.1, 0.2, 0.2], "delta_order": "yxhw"}
        head.box_format, head.box_units = "cxcywh", "normalized"
    box = 4
    if fmt == "dfl":  # stride 16 on 96x64: 6 x 4 = 24 cells, one candidate each
        head.params, head.box_format, head.box_units = {"strides": [16], "reg_max": 16}, "xyxy", "pixels"
        box = 64
    extra = 0
    if fmt == "grid":  # [box | objectness, classes]: boxes as the conventions say, objectness first
        head.params = {"box": "decoded", "objectness": "first", "strides": [16], "anchors": [],
                       "order": "anchor_first", "objectness_channels": 1}
        extra = 1
    if fmt == "retinanet":  # stride 32 on 96x64: 3 x 2 cells, 4 anchors each (2 scales x 2 ratios), clipped
        from mobilekit.heads.retinanet import resolve

        head.params = resolve({"strides": [32], "anchor_scale": 1, "octaves": 2, "aspect_ratios": [0.5, 2.0],
                               "variances": [0.1, 0.1, 0.2, 0.2], "clip": True}, inp)
        head.box_format = "cxcywh"
    outputs = [OutputSpec("boxes", [1, N, box], "boxes"), OutputSpec("scores", [1, N, C + extra], "scores")]
    return Contract("t", "detection", inp, outputs, head, ["a", "b", "c"], NmsSpec(0.25, 0.45, 10, False))


#: Every head format once, as the SDK tests build the fixture detectors (config changes per head). The score
#: threshold is low on purpose: the golden tests compare detections, and how confident a fixture trained on this CPU
#: and seed came out (seed 2 with oneDNN left the YOLO fixture below 0.2 on every image) must not decide whether
#: there are any to compare.
SDK_HEADS: dict[str, dict[str, Any]] = {
    "yolo": {"detection": {"score_threshold": 0.01}},
    "yolo_transposed": {"detection": {"score_threshold": 0.01}},
    "ssd": {"detection": {"head": "ssd", "score_activation": "softmax", "background_class": True,
                          "score_threshold": 0.01, "max_detections": 20,
                          "outputs": {"boxes": "box_deltas", "scores": "class_logits"},
                          "anchors": {"feature_maps": [[12, 12]], "min_scale": 0.35, "max_scale": 0.35,
                                      "aspect_ratios": [1.0, 2.0, 0.5]}}},
    "decoded": {"detection": {"head": "decoded", "box_format": "xyxy", "box_units": "normalized",
                              "score_threshold": 0.01, "max_detections": 20}},
    "dfl": {"detection": {**DFL, "score_threshold": 0.01, "max_detections": 20}},
    **{k: {"detection": {**v, "score_threshold": 0.01, "max_detections": 20}}
       for k, v in {**GRID, **RETINA, **CONVENTIONS}.items()},
}


#: The SDK bundles, every head once: key → (Core ML input, Vision pipeline, int8 model I/O type). The Swift and the
#: Kotlin tests share them (one build each: building them twice cost the suite two minutes); both I/O types, both
#: Core ML input kinds and both Vision routes are covered. "_unsplit": the same head as one predictions output.
SDK_BUNDLES = {"yolo": ("image", True, "int8"), "yolo_transposed": ("tensor", False, "int8"),
               "ssd": ("tensor", False, "uint8"), "decoded": ("image", True, "uint8"), "dfl": ("image", True, "int8"),
               "grid_decoded": ("image", True, "uint8"), "grid_yolox": ("image", True, "int8"),
               "grid_anchors": ("tensor", False, "uint8"), "retinanet": ("image", True, "int8"),
               "retinanet_levels": ("tensor", False, "uint8"), "yolo_unsplit": ("image", True, "int8"),
               "yolo_transposed_unsplit": ("tensor", False, "uint8"), "dfl_tlbr": ("image", True, "int8"),
               "grid_yolox_zoo": ("image", True, "uint8"), "grid_yolov7_zoo": ("tensor", False, "int8"),
               "retinanet_cells": ("image", True, "uint8")}


def build_bundles(tmp_path_factory: Any, configs: dict[str, dict[str, Any]], *flags: str) -> dict[str, Path]:
    """Each config built with the CLI (``mobilekit build CONFIG --out DIR --quiet *flags``), once per content: the
    bundles sit in the suite's cache keyed by the config, the flags and every file of the ``mobilekit`` package and
    of ``templates/`` (a change to the code under test builds them anew), built in parallel when several xdist
    workers ask; key → bundle.
    A test must not change a bundle: it copies what it builds or writes into (``swift build`` on a copy)."""
    import testcache
    from click.testing import CliRunner

    from mobilekit.cli import main

    code = testcache.files_under(testcache.REPO / "mobilekit", testcache.REPO / "templates")
    folder = testcache.root() / "bundles"

    def make(key: str, cfg: dict[str, Any]):
        def build(out: Path) -> None:
            work = tmp_path_factory.mktemp(key)
            res = CliRunner().invoke(main, ["build", str(write_config(work, cfg)), "--out", str(out), "--quiet",
                                            *flags])
            assert res.exit_code == 0, res.output
        return build

    def entry(key: str, cfg: dict[str, Any]) -> Path:
        return folder / f"{key.replace(' ', '_')}-{testcache.digest(cfg, flags, sources=code)}"

    return testcache.cached_many({key: (entry(key, cfg), make(key, cfg)) for key, cfg in configs.items()})
