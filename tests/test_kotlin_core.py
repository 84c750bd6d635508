"""The generated Kotlin core (contract constants, pre- and post-processing), compiled with a real Kotlin compiler and
run on the JVM against the Python reference: real images' pixels → the same input tensor bytes; LiteRT's raw int8
outputs for those images → the same detections (count, labels, order; boxes and scores within 1e-4)."""

from __future__ import annotations

import glob
import os
import shutil
import struct
import subprocess
import sysconfig
from pathlib import Path

import jinja2
import numpy as np
import pytest
from helpers import NO_GATE, SDK_HEADS, build_bundles, detector_config

from mobilekit.codegen.android import module_name, names, render_core, render_module
from mobilekit.contract import Contract
from mobilekit.data.datasets import list_yolo, load_image
from mobilekit.data.preprocess import letterbox
from mobilekit.emulate.litert import LiteRTRunner
from mobilekit.postprocess import detect


def kotlin_jars() -> tuple[str, str]:
    site = sysconfig.get_paths()["purelib"]
    jars = os.path.join(site, "run_kotlin_kernel", "jars")
    compiler = glob.glob(os.path.join(jars, "kotlin-jupyter-kernel-*-all.jar"))
    stdlib = glob.glob(os.path.join(jars, "kotlin-stdlib-*.jar"))
    if not compiler or not stdlib or shutil.which("java") is None:
        pytest.fail("the Kotlin compiler is missing: pip install kotlin-jupyter-kernel (and a JDK 17 'java')")
    return compiler[0], stdlib[0]


def kotlinc(sources: list[Path], out: Path) -> str:
    compiler, stdlib = kotlin_jars()
    res = subprocess.run(["java", "-cp", compiler, "org.jetbrains.kotlin.cli.jvm.K2JVMCompiler", "-no-stdlib",
                          "-no-reflect", "-cp", stdlib, "-d", str(out), *map(str, sources)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return res.stderr


def jvm(classes: Path, main_class: str, *args: str) -> None:
    _, stdlib = kotlin_jars()
    subprocess.run(["java", "-cp", f"{classes}{os.pathsep}{stdlib}", main_class, *args], check=True, timeout=300)


#: bundle → the int8 model's I/O type (both are covered); "_unsplit": the same head as one predictions output
HEADS = {"yolo": "int8", "ssd": "uint8", "yolo_transposed": "int8", "decoded": "uint8", "dfl": "int8",
         "grid_decoded": "uint8", "grid_yolox": "int8", "grid_anchors": "uint8", "retinanet": "int8",
         "retinanet_levels": "uint8", "yolo_unsplit": "int8",
         "yolo_transposed_unsplit": "uint8"}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, detector_models, unsplit_models, shapes_dataset, cache):
    configs = {}
    for key, io in HEADS.items():
        head = key.removesuffix("_unsplit")
        model = unsplit_models[head] if key.endswith("_unsplit") else detector_models[head]
        cfg = detector_config(model, shapes_dataset, cache / "labels.txt", head, **SDK_HEADS[head])
        if key.endswith("_unsplit"):  # one int8 scale for boxes and scores can round every score to 0: keep all
            cfg["detection"]["score_threshold"] = 0.0  # candidates, so there are always detections to compare
        cfg.update({"name": f"{key} det", "export": {"int8_io": io, "fp16": False}, "coreml": {"enabled": False},
                    "parity": {"images": 8, **NO_GATE}})
        configs[key] = cfg
    return build_bundles(tmp_path_factory, configs)


@pytest.fixture(scope="module")
def classifier_bundle(tmp_path_factory, classifier_model, shapes_dataset, cache):
    cfg = {"model": str(classifier_model), "name": "shapes-classifier", "task": "classification",
           "labels": str(cache / "labels.txt"), "calibration": {"images": str(shapes_dataset), "count": 10},
           "parity": {"images": 8, **NO_GATE}, "coreml": {"enabled": False}}
    return build_bundles(tmp_path_factory, {"cls": cfg})["cls"]


STUBS = Path(__file__).parent / "stubs" / "android"


def shipped_module(bundle: Path) -> Path:
    """The Android library module as the bundle holds it (what the tests compile and read, never a re-render)."""
    return bundle / "sdk" / "android" / module_name(Contract.load(bundle / "contract.json"))


@pytest.fixture(scope="module")
def compiled(bundles, classifier_bundle, tmp_path_factory):
    """Every shipped module's Kotlin sources (core, API), each with a golden harness added beside them, and the API
    stubs, in one kotlinc run."""
    src = tmp_path_factory.mktemp("kt_src")
    sources = sorted(STUBS.rglob("*.java"))
    for key, bundle, harness in [("classifier", classifier_bundle, "GoldenClassifier.kt.j2"),
                                 *((head, b, "Golden.kt.j2") for head, b in bundles.items())]:
        shipped = sorted(shipped_module(bundle).rglob("*.kt"))
        assert len(shipped) >= 4, shipped
        sources += shipped
        contract = Contract.load(bundle / "contract.json")
        package, tname = names(contract)
        h = src / key / "Golden.kt"
        h.parent.mkdir(parents=True)
        h.write_text(jinja2.Template((Path(__file__).parent / "kotlin" / harness).read_text()).render(
            package=package, type_name=tname, unsplit="predictions" in contract.roles,
            objectness="objectness" in contract.roles))
        sources.append(h)
    classes = tmp_path_factory.mktemp("kt_classes")
    warnings = kotlinc(sources, classes)
    return classes, warnings


def test_generation_is_deterministic_and_names_are_sanitized(bundles):
    contract = Contract.load(bundles["yolo_transposed"] / "contract.json")
    assert render_core(contract) == render_core(contract)
    package, tname = names(contract)
    assert package == "ai.mobilekit.yolotransposeddet" and tname == "YoloTransposedDet"
    from mobilekit.codegen.render import package_name, type_name

    assert type_name("class") == "ClassModel" and type_name("3d boxes") == "M3dBoxes"
    assert package_name("fun") == "ai.mobilekit.funmodel"


def test_compiles_warning_clean(compiled):
    """Core and API of every module compile against the stubs; no warning comes from generated code."""
    _, warnings = compiled
    ours = [ln for ln in warnings.splitlines() if "warning" in ln.lower() and "/stubs/" not in ln]
    assert not ours, warnings


def test_module_layout(bundles):
    contract = Contract.load(bundles["yolo"] / "contract.json")
    module = shipped_module(bundles["yolo"])
    files = {p.relative_to(module).as_posix(): p for p in module.rglob("*") if p.is_file()}
    assert {rel: p.read_text() for rel, p in files.items() if not rel.startswith("src/main/assets/")} == \
        {rel: text for rel, text in render_module(contract).items()}  # the bundle ships what codegen renders
    package_dir = names(contract)[0].replace(".", "/")
    kt = f"src/main/kotlin/{package_dir}"
    want = {"build.gradle.kts", "src/main/AndroidManifest.xml", "README.md", "consumer-rules.pro",
            f"{kt}/YoloDetDetector.kt", f"{kt}/Preprocess.kt", f"{kt}/Postprocess.kt", f"{kt}/YoloDetSpec.kt"}
    assert want <= set(files)
    assert module_name(contract) == "yoloDet-sdk" and "NNAPI is deprecated" in files["README.md"].read_text()


def _stub_version(pattern: str) -> set[str]:
    """The API versions the compile-only stubs say they mirror (their first line names it)."""
    import re

    return {m.group(1) for p in STUBS.rglob("*.java") if (m := re.search(pattern, p.read_text().splitlines()[0]))}


@pytest.mark.parametrize("head", list(HEADS))
def test_shipped_gradle_file_matches_the_sources_and_the_stubs(head, bundles):
    """The shipped build.gradle.kts, read as it is: its namespace is the Kotlin package, it depends on exactly the
    LiteRT release the stubs mirror (so the compile test checks the API the app will get), compiles against the
    Android API level the stubs mirror, keeps .tflite uncompressed, and every asset the sources open is shipped."""
    import re

    module = shipped_module(bundles[head])
    gradle = (module / "build.gradle.kts").read_text()
    package = names(Contract.load(bundles[head] / "contract.json"))[0]
    assert re.search(r'namespace = "([\w.]+)"', gradle).group(1) == package
    for kt in (module / "src/main/kotlin").rglob("*.kt"):
        assert re.search(r"^package ([\w.]+)", kt.read_text(), re.M).group(1) == package, kt
    deps = dict(re.findall(r'implementation\("([\w.\-]+:[\w.\-]+):([\w.\-]+)"\)', gradle))
    litert = _stub_version(r"LiteRT (\d+\.\d+)")
    assert set(deps) == {"com.google.ai.edge.litert:litert", "com.google.ai.edge.litert:litert-gpu",
                         "com.google.ai.edge.litert:litert-gpu-api"}
    assert {v.rsplit(".", 1)[0] for v in deps.values()} == litert, (deps, litert)
    api = _stub_version(r"Android API level (\d+)")
    assert re.search(r"compileSdk = (\d+)", gradle).group(1) in api and 'noCompress += "tflite"' in gradle
    sources = "\n".join(p.read_text() for p in (module / "src/main/kotlin").rglob("*.kt"))
    assets = {p.name for p in (module / "src/main/assets").iterdir()}
    named = set(re.findall(r'"([\w.\-]+\.(?:tflite|txt))"', sources))
    assert named and named <= assets, (named, assets)


def _open(bundle: Path) -> tuple[Contract, str, LiteRTRunner]:
    """The bundle's contract, generated package and a LiteRT runner of its int8 model."""
    contract = Contract.load(bundle / "contract.json")
    art = contract.artifacts["tflite-int8"]
    return contract, names(contract)[0], LiteRTRunner((bundle / art.path).read_bytes(), art, contract)


def _canvas(path: Path, contract: Contract):
    inp = contract.input
    return letterbox(load_image(path), inp.height, inp.width, inp.resize, inp.pad_value)


@pytest.mark.parametrize("head", list(HEADS))
def test_preprocessing_matches_python_byte_for_byte(head, bundles, compiled, shapes_dataset, coco128, tmp_path):
    classes, _ = compiled
    contract, package, runner = _open(bundles[head])
    images = [r.path for r in list_yolo(shapes_dataset)[:3]]
    images += sorted((coco128 / "images" / "train2017").glob("*.jpg"))[:3]  # real photos of every size
    for i, path in enumerate(images):
        rgb = load_image(path).astype(np.uint32)
        h, w = rgb.shape[:2]
        argb = (0xFF << 24) | (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        (tmp_path / f"in{i}").write_bytes(struct.pack("<ii", w, h) + argb.astype("<u4").tobytes())
        jvm(classes, f"{package}.golden.Golden", "pre", str(tmp_path / f"in{i}"), str(tmp_path / f"out{i}"))
        canvas, _ = _canvas(path, contract)
        want = runner.input_tensor(canvas)[0].tobytes()
        assert (tmp_path / f"out{i}").read_bytes() == want, path


@pytest.mark.parametrize("head", list(HEADS))
def test_postprocessing_matches_python_on_litert_outputs(head, bundles, compiled, shapes_dataset, tmp_path):
    classes, _ = compiled
    contract, package, runner = _open(bundles[head])
    signed = contract.artifacts["tflite-int8"].inputs[0].dtype == "int8"
    total = 0
    for i, rec in enumerate(list_yolo(shapes_dataset)[:8]):
        img = load_image(rec.path)
        canvas, plan = _canvas(rec.path, contract)
        raw = runner.run_raw(runner.input_tensor(canvas))
        want = detect(runner.dequantize(raw), contract, plan)
        arrays = [raw["predictions"]] if "predictions" in raw else \
            [raw[r] for r in ("boxes", "objectness", "scores") if r in raw]
        payload = struct.pack("<ii", img.shape[1], img.shape[0]) + b"".join(
            struct.pack("<i", a.nbytes) + a.tobytes() for a in arrays) + struct.pack("<i", 1 if signed else 0)
        (tmp_path / f"raw{i}").write_bytes(payload)
        jvm(classes, f"{package}.golden.Golden", "post", str(tmp_path / f"raw{i}"), str(tmp_path / f"det{i}"))
        lines = [ln.split(" ", 6) for ln in (tmp_path / f"det{i}").read_text().splitlines() if ln.strip()]
        assert len(lines) == len(want), (head, rec.path)
        for got, k in zip(lines, range(len(want)), strict=True):
            assert int(got[0]) == int(want.classes[k]) and got[6] == contract.labels[int(want.classes[k])]
            assert abs(float(got[1]) - want.scores[k]) < 1e-4
            assert np.allclose([float(v) for v in got[2:6]], want.boxes[k], atol=1e-4, rtol=0)
        total += len(want)
    assert total > 0, "the fixture must produce detections to compare"


def test_classifier_top_k_matches_python(classifier_bundle, compiled, shapes_dataset, tmp_path):
    from mobilekit.postprocess import classify

    classes, _ = compiled
    contract, package, runner = _open(classifier_bundle)
    for i, rec in enumerate(list_yolo(shapes_dataset)[:6]):
        canvas, _ = _canvas(rec.path, contract)
        raw = runner.run_raw(runner.input_tensor(canvas))
        want = classify(runner.dequantize(raw), contract)
        (tmp_path / f"s{i}").write_bytes(raw["scores"].tobytes())
        jvm(classes, f"{package}.golden.GoldenClassifier", str(tmp_path / f"s{i}"), str(tmp_path / f"c{i}"))
        got = [ln.split() for ln in (tmp_path / f"c{i}").read_text().splitlines()]
        assert [int(g[0]) for g in got] == [k for k, _ in want]
        assert np.allclose([float(g[1]) for g in got], [p for _, p in want], atol=1e-4)
