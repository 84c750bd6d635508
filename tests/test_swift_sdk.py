"""The generated Swift package, built and run with a real Swift toolchain against the Python reference.

Every head format (and a classifier) is built into a bundle with Core ML. Each shipped package is copied as it is
and built with its own Package.swift (`swift build --build-tests`: the core, the Kit target with its resources,
type-checked against Apple API stubs from tests/stubs/ios passed with `-Xswiftc -I`, and the shipped tests), then
tested (`swift test`). A golden check package compiles every core from the shipped sources beside one harness
executable. On real images: the Swift pre-processing gives the model input byte for byte as Python does, and the
Core ML emulator's outputs (and the Vision pipeline's) give the same detections (count, labels, order; boxes and
scores within 1e-4), also with a category mask; a camera frame with any of the eight EXIF orientations gives the
model input of Python's ``letterbox(upright(frame))`` byte for byte, and boxes map back to the sensor as
``orientation.to_sensor`` does. The packages build in Swift 6 language mode (strict concurrency) without warnings.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import jinja2
import numpy as np
import pytest
from helpers import SDK_BUNDLES, run_swift, swift, swift_built, swift_modules

from mobilekit.codegen import ios
from mobilekit.contract import Contract
from mobilekit.data.datasets import list_yolo, load_image
from mobilekit.data.orientation import EXIF, to_sensor, upright
from mobilekit.data.preprocess import letterbox, normalize
from mobilekit.emulate.coreml import CoreMLEmulator
from mobilekit.emulate.coreml.vision import VisionPipelineEmulator
from mobilekit.postprocess import classify, detect, vision_detections

#: every test here needs the SDK bundles (minutes to build) or a compiler
pytestmark = [pytest.mark.slow, pytest.mark.swift]

HERE = Path(__file__).parent


#: bundle → (Core ML input kind, Vision pipeline)
HEADS = {key: (inp, vision) for key, (inp, vision, _) in SDK_BUNDLES.items()}


@pytest.fixture(scope="module")
def bundles(sdk_bundles):
    return sdk_bundles


def _package(bundle: Path) -> tuple[Contract, Path]:
    contract = Contract.load(bundle / "contract.json")
    return contract, bundle / "sdk" / "ios" / ios.kit_name(contract)


class Shipped(NamedTuple):
    root: Path  # the copy of the package that was built
    bin: Path  # its build products
    build: str  # output of `swift build --build-tests`
    tests: str  # output of `swift test`


@pytest.fixture(scope="module")
def shipped(bundles, apple_stub_modules) -> dict[str, Shipped]:
    """Every shipped package, copied as it is and built with its own Package.swift: all its targets (the core, the
    Kit with its resources, the tests), then its tests run (once per package content: ``swift_built``)."""
    stubs = ("-Xswiftc", "-I", "-Xswiftc", str(apple_stub_modules))

    def one(key: str) -> Shipped:
        _, pkg = _package(bundles[key])
        root, (build, tests) = swift_built("swift-shipped", pkg, ("build", "--build-tests", *stubs),
                                           ("test", "--skip-build", *stubs))
        return Shipped(root, root / ".build" / "debug", build, tests)

    # two packages at a time: a small package's build is mostly serial steps (manifest, link), so two overlap well
    with ThreadPoolExecutor(2) as pool:
        return dict(zip(bundles, pool.map(one, bundles), strict=True))


@pytest.fixture(scope="module")
def check(bundles, tmp_path_factory):
    """The golden check package (every core compiled from the shipped sources, one harness), built; returns its
    build's output and the harness executable."""
    root = tmp_path_factory.mktemp("swift_check")
    models = []
    for bundle in bundles.values():
        contract, pkg = _package(bundle)
        name = ios.swift_name(contract)
        shutil.copytree(pkg / "Sources" / f"{name}Core", root / "Cores" / f"{name}Core")
        models.append({"name": name, "task": contract.task, "unsplit": "predictions" in contract.roles,
                       "objectness": "objectness" in contract.roles})
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    (root / "Package.swift").write_text(env.from_string((HERE / "swift" / "Package.swift.j2").read_text()).render(
        models=models))
    (root / "Golden").mkdir()
    (root / "Golden" / "main.swift").write_text(env.from_string((HERE / "swift" / "main.swift.j2").read_text()).render(
        models=models))
    built, (build,) = swift_built("swift-golden", root, ("build",))
    return build, built / ".build" / "debug" / "Golden"


def test_package_layout_and_manifest(bundles):
    """The generated manifest parses with SwiftPM and says what the issue asks: two targets, the models (copied as
    folders, never processed) and labels as resources, platforms from the deployment target."""
    contract, pkg = _package(bundles["yolo"])
    name = ios.swift_name(contract)
    files = {p.relative_to(pkg).as_posix() for p in pkg.rglob("*") if p.is_file()}
    assert {"Package.swift", "README.md", f"Sources/{name}Core/{name}Spec.swift",
            f"Sources/{name}Core/Preprocess.swift", f"Sources/{name}Core/Postprocess.swift",
            f"Sources/{name}Core/ModelCache.swift", f"Sources/{name}Core/Orientation.swift",
            f"Sources/{name}Core/Live.swift", f"Sources/{name}Core/Gate.swift", f"Sources/{name}Core/BufferPool.swift",
            f"Sources/{name}Core/ImageLayout.swift", f"Sources/{name}Core/ModelInfo.swift",
            f"Sources/{name}Kit/{name}Detector.swift",
            f"Sources/{name}Kit/Resources/labels.txt", f"Tests/{name}CoreTests/{name}CoreTests.swift"} <= files
    shipped = ios.resources(contract)
    assert list(shipped) == ["coreml-palettize6", "coreml-vision"]
    for filename in shipped.values():
        assert (pkg / f"Sources/{name}Kit/Resources/{filename}/Manifest.json").is_file()
    manifest = json.loads(run_swift("package", "dump-package", cwd=pkg).stdout)
    assert manifest["toolsVersion"]["_version"] == "6.0.0" and manifest["swiftLanguageVersions"] == ["6"]
    assert (pkg / "Package.swift").read_text().startswith("// swift-tools-version: 6.0\n")
    assert {p["platformName"]: p["version"] for p in manifest["platforms"]} == {"ios": "16.0", "macos": "13.0"}
    targets = {t["name"]: t for t in manifest["targets"]}
    assert set(targets) == {f"{name}Kit", f"{name}Core", f"{name}CoreTests"}
    assert [p["name"] for p in manifest["products"]] == [f"{name}Kit"]
    assert [d["byName"][0] for d in targets[f"{name}Kit"]["dependencies"]] == [f"{name}Core"]
    assert sorted((r["path"], *r["rule"]) for r in targets[f"{name}Kit"]["resources"]) == sorted(
        [(f"Resources/{f}", "copy") for f in shipped.values()] + [("Resources/labels.txt", "copy")])
    api = (pkg / f"Sources/{name}Kit/{name}Detector.swift").read_text()
    assert "computeUnits = .cpuAndNeuralEngine" in api and f"public actor {name}Detector {{" in api
    assert "func detectWithVision(_ image: CGImage, orientation: CGImagePropertyOrientation = .up)" in api
    assert "func detect(\n        _ pixelBuffer: CVPixelBuffer, orientation: CGImagePropertyOrientation = .up\n" \
           "    ) async throws -> [Detection] {" in api
    # loads with the async Core ML API, compiles (async) only what the cache does not hold; no blocking init
    assert "try await MLModel.load(\n            contentsOf: try await compiledURL(" in api
    assert "try await MLModel.compileModel(at: $0)" in api
    assert "MLModel(contentsOf:" not in api and "try MLModel.compileModel" not in api
    assert "init(configuration:" not in api
    assert "modelNotCompiled" not in api and "ModelCache.applicationSupport()" in api
    assert "model.value.prediction(from: features.value, options: MLPredictionOptions())" in api
    # one prediction at a time through the core's cancellable gate, taken before and released after each prediction
    assert "try await gate.acquire()\n        defer { gate.release() }" in api
    assert "private let gate = TurnGate()" in api
    assert "LiveSession<CameraFrame, LiveResult>" in api and "public struct CameraFrame: @unchecked Sendable" in api
    # model inputs from an IOSurface-backed pool made once per size, each buffer held until its prediction is over
    assert "kCVPixelBufferIOSurfacePropertiesKey as String: [String: Any]()" in api
    assert "CVPixelBufferPoolCreate(nil, nil, attributes as CFDictionary, &pool)" in api
    assert "CVPixelBufferPoolCreatePixelBuffer(nil, pool, &out)" in api and "CVPixelBufferCreate(" not in api
    assert "withExtendedLifetime(input.lease) {}" in api.split("let outputs = try await predict(input.features)")[1]
    # the cache is keyed by the Spec's build-time digest: nothing hashes the package at load
    assert "compiledURL({{T}}.modelResource, sha256: {{T}}.modelResourceSHA256)".replace("{{T}}", f"{name}Spec") in api
    assert "public static var modelInfo: ModelInfo" in api and "public nonisolated var modelInfo: ModelInfo" in api
    spec = (pkg / f"Sources/{name}Core/{name}Spec.swift").read_text()
    listed = {a["path"]: a["sha256"] for a in json.loads((bundles["yolo"] / "manifest.json").read_text())["artifacts"]}
    for kind, stem in zip(shipped, ("modelResource", "visionModelResource"), strict=True):
        assert contract.artifacts[kind].sha256 == listed[contract.artifacts[kind].path]  # the manifest's digest
        assert f'{stem}SHA256: String{"?" if stem.startswith("vision") else ""} = "{contract.artifacts[kind].sha256}"' \
            in spec
    ident = contract.identity
    assert f'modelSHA256: "{ident.source_sha256}", mobilekitVersion: "{ident.mobilekit}"' in spec
    core = "\n".join(p.read_text() for p in (pkg / f"Sources/{name}Core").glob("*.swift"))
    assert "func digest(of" not in core and "contentsOf: file" not in core
    assert {ln.strip() for ln in core.splitlines() if ln.startswith("import ")} == {"import Foundation"}
    assert f'appendingPathComponent("{name}Kit", isDirectory: true)' in core  # Application Support/<Kit>/


@pytest.mark.parametrize("key", [*HEADS, "classifier"])
def test_shipped_package_builds_with_its_resources(key, bundles, shipped):
    """`swift build` of the shipped package as it is: both targets compiled, and the Kit's resource bundle holds
    each `.mlpackage` as a whole folder (so `Bundle.module` finds it for the on-device compile) and the labels."""
    contract, pkg = _package(bundles[key])
    name, kit = ios.swift_name(contract), ios.kit_name(contract)
    built = shipped[key]
    assert (built.root / "Package.swift").read_bytes() == (pkg / "Package.swift").read_bytes()
    modules = swift_modules(built.bin)
    for module in (f"{name}Core", kit):
        assert (modules / f"{module}.swiftmodule").exists(), (module, sorted(p.name for p in modules.iterdir()))
    bundle = next(built.bin.glob(f"{kit}_{kit}.resources"), None) or next(built.bin.glob(f"{kit}_{kit}.bundle"))
    assert (bundle / "labels.txt").read_text() == (pkg / ios.resource_dir(contract) / "labels.txt").read_text()
    for filename in ios.resources(contract).values():
        source = pkg / ios.resource_dir(contract) / filename
        copied = bundle / filename
        assert (copied / "Manifest.json").is_file()
        want = {p.relative_to(source).as_posix(): p.read_bytes() for p in source.rglob("*") if p.is_file()}
        got = {p.relative_to(copied).as_posix(): p.read_bytes() for p in copied.rglob("*") if p.is_file()}
        assert got == want, filename
    assert not list(bundle.glob("*.mlmodel")) and not (bundle / "Manifest.json").exists()  # nothing flattened


def _warnings(*outputs: str) -> list[str]:
    return [ln for out in outputs for ln in out.splitlines() if "warning:" in ln]


def test_the_golden_package_of_every_core_builds_warning_free(check):
    """Every shipped core compiled together (the golden harness's package) gives no warning."""
    build, _ = check
    assert not _warnings(build), "\n".join(_warnings(build))


def test_every_package_builds_warning_free_and_its_tests_pass(shipped):
    ours = _warnings(*(s.build for s in shipped.values()))
    assert not ours, "\n".join(ours)
    total = 0
    for key, built in shipped.items():
        executed = re.findall(r"Executed (\d+) tests?, with 0 failures", built.tests)
        assert executed and int(executed[-1]) >= 20, (key, built.tests)
        total += int(executed[-1])
    assert total >= 20 * len(HEADS) + 20


def test_generation_is_deterministic_and_names_are_sanitized(bundles):
    contract, _ = _package(bundles["decoded"])
    assert ios.render_package(contract, "iOS16") == ios.render_package(contract, "iOS16")
    for raw, want, cls in (("class", "ClassModel", "ClassModelDetector"), ("3d boxes", "M3dBoxes", "M3dBoxesDetector"),
                           ("vision", "VisionModel", "VisionModelDetector"),
                           ("my detector", "MyDetector", "MyDetector")):
        contract.name = raw
        assert ios.swift_name(contract) == want and ios.kit_name(contract) == want + "Kit"
        assert ios.render_package(contract, "iOS16")[f"Sources/{want}Kit/{cls}.swift"]
    assert ios.PLATFORMS["iOS18"] == ("18.0", "15.0")


def _images(shapes_dataset: Path, coco128: Path) -> list[Path]:
    """Shapes images and real photos of every size."""
    photos = sorted((coco128 / "images" / "train2017").glob("*.jpg"))[:3]
    return [r.path for r in list_yolo(shapes_dataset)[:3]] + photos


def _pixels(rgb: np.ndarray, order: int, pad: int) -> tuple[bytes, int]:
    """4-byte pixels in RGBA (0), BGRA (1) or ARGB (2) order, rows padded by ``pad`` bytes as camera buffers are."""
    h, w = rgb.shape[:2]
    alpha = np.full((h, w, 1), 255, np.uint8)
    px = {0: np.concatenate([rgb, alpha], 2), 1: np.concatenate([rgb[..., ::-1], alpha], 2),
          2: np.concatenate([alpha, rgb], 2)}[order].reshape(h, w * 4)
    rows = np.concatenate([px, np.full((h, pad), 7, np.uint8)], 1)
    return rows.tobytes(), w * 4 + pad


def _canvas(path: Path, contract: Contract):
    inp = contract.input
    return letterbox(load_image(path), inp.height, inp.width, inp.resize, inp.pad_value)


def _model_input(canvas: np.ndarray, contract: Contract, image: bool) -> bytes:
    """What the Core ML model is fed: 32BGRA pixels for an image input, else the normalized Float32 tensor."""
    if image:
        return np.concatenate([canvas[..., ::-1], np.full((*canvas.shape[:2], 1), 255, np.uint8)], 2).tobytes()
    inp = contract.input
    return normalize(canvas, inp.scale, inp.offset, inp.color, inp.layout).astype("<f4").tobytes()


@pytest.mark.parametrize("key", [*HEADS, "classifier"])
def test_preprocessing_matches_python_byte_for_byte(key, bundles, check, shapes_dataset, coco128, tmp_path):
    _, binary = check
    contract, _ = _package(bundles[key])
    name = ios.swift_name(contract)
    image = contract.artifacts[ios.primary_kind(contract)].inputs[0].dtype == "image"
    for i, path in enumerate(_images(shapes_dataset, coco128)):
        rgb = load_image(path)
        order, pad = i % 3, (i % 2) * 64
        data, bytes_per_row = _pixels(rgb, order, pad)
        (tmp_path / f"in{i}").write_bytes(struct.pack("<iiii", rgb.shape[1], rgb.shape[0], order, bytes_per_row) + data)
        subprocess.run([str(binary), name, "pre", str(tmp_path / f"in{i}"), str(tmp_path / f"out{i}")], check=True)
        canvas, _ = _canvas(path, contract)
        assert (tmp_path / f"out{i}").read_bytes() == _model_input(canvas, contract, image), (key, path)


@pytest.mark.parametrize("key", ["yolo", "yolo_transposed", "classifier"])
def test_orientation_matches_python_byte_for_byte(key, bundles, check, shapes_dataset, coco128, tmp_path):
    """A sensor frame with each of the eight EXIF orientations: the Swift model input is Python's
    ``letterbox(upright(frame, degrees, mirrored))`` byte for byte (the pixels are read through the turn)."""
    _, binary = check
    contract, _ = _package(bundles[key])
    name = ios.swift_name(contract)
    image = contract.artifacts[ios.primary_kind(contract)].inputs[0].dtype == "image"
    photos = _images(shapes_dataset, coco128)[3:]  # real photos: not square, so a quarter turn changes the letterbox
    inp = contract.input
    for exif, (degrees, mirrored) in EXIF.items():
        rgb = load_image(photos[exif % len(photos)])
        order, pad = exif % 3, (exif % 2) * 64
        data, bytes_per_row = _pixels(rgb, order, pad)
        header = struct.pack("<iiiii", rgb.shape[1], rgb.shape[0], order, bytes_per_row, exif)
        (tmp_path / f"o{exif}").write_bytes(header + data)
        subprocess.run([str(binary), name, "orient", str(tmp_path / f"o{exif}"), str(tmp_path / f"p{exif}")],
                       check=True)
        canvas, _ = letterbox(upright(rgb, degrees, mirrored), inp.height, inp.width, inp.resize, inp.pad_value)
        assert (tmp_path / f"p{exif}").read_bytes() == _model_input(canvas, contract, image), (key, exif)


def test_boxes_map_back_to_the_sensor_as_python_does(bundles, check, tmp_path):
    """Upright boxes → sensor pixels for the eight EXIF orientations, against ``orientation.to_sensor``."""
    _, binary = check
    name = ios.swift_name(_package(bundles["yolo"])[0])
    rng = np.random.default_rng(3)
    width, height = 640, 480
    for exif, (degrees, mirrored) in EXIF.items():
        uw, uh = (height, width) if degrees in (90, 270) else (width, height)
        corners = rng.uniform(0, 1, (20, 2, 2)) * [uw, uh]
        boxes = np.concatenate([corners.min(1), corners.max(1)], 1)
        boxes[0] = [0, 0, uw, uh]
        payload = struct.pack("<iiii", width, height, exif, len(boxes)) + boxes.astype("<f8").tobytes()
        (tmp_path / f"b{exif}").write_bytes(payload)
        subprocess.run([str(binary), name, "sensor", str(tmp_path / f"b{exif}"), str(tmp_path / f"s{exif}")],
                       check=True)
        got = np.array([[float(v) for v in ln.split()] for ln in (tmp_path / f"s{exif}").read_text().splitlines()])
        want = np.array([to_sensor(b, width, height, degrees, mirrored) for b in boxes])
        assert np.allclose(got, want, atol=1e-9, rtol=0), exif
        assert np.allclose(got[0], [0, 0, width, height]), exif


def _floats(a: np.ndarray) -> bytes:
    flat = np.ascontiguousarray(a, dtype="<f4").ravel()
    return struct.pack("<i", flat.size) + flat.tobytes()


def _parse(text: str) -> list[list[str]]:
    return [ln.split(" ", 6) for ln in text.splitlines() if ln.strip()]


def _compare(got: list[list[str]], want, contract: Contract, where) -> None:
    assert len(got) == len(want), where
    for g, k in zip(got, range(len(want)), strict=True):
        assert int(g[0]) == int(want.classes[k]) and g[6] == contract.labels[int(want.classes[k])], where
        assert abs(float(g[1]) - want.scores[k]) < 1e-4, where
        assert np.allclose([float(v) for v in g[2:6]], want.boxes[k], atol=1e-4, rtol=0), where


def _emulate(contract: Contract, canvas: np.ndarray, emulator: CoreMLEmulator) -> dict[str, np.ndarray]:
    art = contract.artifacts[ios.primary_kind(contract)]
    inp = contract.input
    if art.inputs[0].dtype == "image":
        px = canvas[..., ::-1] if inp.color == "BGR" else canvas
        x = np.transpose(px, (2, 0, 1))[None].astype(np.float32)
    else:
        x = normalize(canvas, inp.scale, inp.offset, inp.color, inp.layout)
    out = emulator.run({art.inputs[0].name: x})
    return {role: out[role].astype(np.float32) for role in contract.roles}


def _raw_payload(img: np.ndarray, outs: dict[str, np.ndarray]) -> bytes:
    """The harness's "post" input: the image size, then each output role's float32 values as the head lays them."""
    arrays = [outs["predictions"]] if "predictions" in outs else \
        [outs[r] for r in ("boxes", "objectness", "scores") if r in outs]
    return struct.pack("<ii", img.shape[1], img.shape[0]) + b"".join(_floats(a) for a in arrays)


def _emulated(bundle: Path, contract: Contract, images: Path, n: int):
    """(path, image, letterbox plan, Core ML emulator outputs) of the first ``n`` shapes images."""
    emulator = CoreMLEmulator(bundle / contract.artifacts[ios.primary_kind(contract)].path)
    for path in [r.path for r in list_yolo(images)[:n]]:
        canvas, plan = _canvas(path, contract)
        yield path, load_image(path), plan, _emulate(contract, canvas, emulator)


@pytest.mark.parametrize("head", list(HEADS))
def test_postprocessing_matches_python_on_emulator_outputs(head, bundles, check, shapes_dataset, tmp_path):
    _, binary = check
    contract, _ = _package(bundles[head])
    name = ios.swift_name(contract)
    total = 0
    for i, (path, img, plan, outs) in enumerate(_emulated(bundles[head], contract, shapes_dataset, 8)):
        want = detect(outs, contract, plan)
        (tmp_path / f"raw{i}").write_bytes(_raw_payload(img, outs))
        subprocess.run([str(binary), name, "post", str(tmp_path / f"raw{i}"), str(tmp_path / f"det{i}")], check=True)
        _compare(_parse((tmp_path / f"det{i}").read_text()), want, contract, (head, path))
        total += len(want)
    assert total > 0, "the fixture must produce detections to compare"


@pytest.mark.parametrize("head", ["yolo", "ssd", "dfl", "grid_anchors", "retinanet", "yolo_unsplit"])
def test_category_mask_matches_python(head, bundles, check, shapes_dataset, tmp_path):
    """The class mask the allow / deny lists make (here: every class but the one detected most) gives Python's
    ``detect(..., allowed=mask)``: a denied class neither wins a candidate nor suppresses an allowed box."""
    _, binary = check
    contract, _ = _package(bundles[head])
    name = ios.swift_name(contract)
    total = 0
    for i, (path, img, plan, outs) in enumerate(_emulated(bundles[head], contract, shapes_dataset, 6)):
        found = detect(outs, contract, plan).classes
        mask = np.ones(len(contract.labels), bool)
        mask[np.bincount(found, minlength=len(mask)).argmax() if len(found) else 0] = False
        want = detect(outs, contract, plan, allowed=mask)
        payload = _raw_payload(img, outs) + struct.pack(f"<i{len(mask)}i", len(mask), *mask.astype(int))
        (tmp_path / f"m{i}").write_bytes(payload)
        subprocess.run([str(binary), name, "post", str(tmp_path / f"m{i}"), str(tmp_path / f"n{i}")], check=True)
        _compare(_parse((tmp_path / f"n{i}").read_text()), want, contract, (head, path))
        assert not set(want.classes.tolist()) & set(np.flatnonzero(~mask).tolist())
        total += len(want)
    assert total > 0, "the fixture must produce allowed detections to compare"


@pytest.mark.parametrize("head", [h for h, (_, vision) in HEADS.items() if vision])
def test_vision_path_matches_python_on_the_pipeline_emulator(head, bundles, check, shapes_dataset, tmp_path):
    """Vision reports each kept row as a box normalized to the model input with a lower-left origin; the package
    maps it back to the image as the Python reference does."""
    _, binary = check
    contract, _ = _package(bundles[head])
    name = ios.swift_name(contract)
    emulator = VisionPipelineEmulator(bundles[head] / contract.artifacts["coreml-vision"].path)
    total = 0
    for i, path in enumerate([r.path for r in list_yolo(shapes_dataset)[:8]]):
        img = load_image(path)
        canvas, plan = _canvas(path, contract)
        px = canvas[..., ::-1] if contract.input.color == "BGR" else canvas
        out = emulator.run(np.transpose(px, (2, 0, 1))[None].astype(np.float32))
        conf, coords = out["confidence"], out["coordinates"]
        want = vision_detections(conf, coords, contract, plan)
        rows = b""
        for c, (cx, cy, w, h) in zip(conf, coords.astype(np.float64), strict=True):
            top = int(np.argmax(c))
            rows += struct.pack("<if4d", top, float(c[top]), cx - w / 2, 1.0 - (cy + h / 2), w, h)
        payload = struct.pack("<iii", img.shape[1], img.shape[0], len(conf)) + rows
        (tmp_path / f"v{i}").write_bytes(payload)
        subprocess.run([str(binary), name, "vision", str(tmp_path / f"v{i}"), str(tmp_path / f"d{i}")], check=True)
        _compare(_parse((tmp_path / f"d{i}").read_text()), want, contract, (head, path))
        total += len(want)
    assert total > 0, "the fixture must produce detections to compare"


def test_classifier_top_k_matches_python(bundles, check, shapes_dataset, tmp_path):
    _, binary = check
    contract, _ = _package(bundles["classifier"])
    name = ios.swift_name(contract)
    emulator = CoreMLEmulator(bundles["classifier"] / contract.artifacts[ios.primary_kind(contract)].path)
    for i, rec in enumerate(list_yolo(shapes_dataset)[:6]):
        canvas, _ = _canvas(rec.path, contract)
        outs = _emulate(contract, canvas, emulator)
        want = classify(outs, contract)
        (tmp_path / f"s{i}").write_bytes(struct.pack("<ii", 1, 1) + _floats(outs["scores"]))
        subprocess.run([str(binary), name, "classify", str(tmp_path / f"s{i}"), str(tmp_path / f"c{i}")], check=True)
        got = [ln.split(" ", 2) for ln in (tmp_path / f"c{i}").read_text().splitlines()]
        assert [int(g[0]) for g in got] == [k for k, _ in want]
        assert [g[2] for g in got] == [contract.labels[k] for k, _ in want]
        assert np.allclose([float(g[1]) for g in got], [p for _, p in want], atol=1e-4)


def test_missing_swift_fails_with_instructions(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(Path, "exists", lambda self: False)
    with pytest.raises(pytest.fail.Exception, match="install a Swift 6 toolchain"):
        swift()
