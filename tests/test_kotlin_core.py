"""The generated Kotlin core (contract constants, pre- and post-processing), compiled with a real Kotlin compiler and
run on the JVM against the Python reference: real images' pixels → the same input tensor bytes; LiteRT's raw int8
outputs for those images → the same detections (count, labels, order; boxes and scores within 1e-4)."""

from __future__ import annotations

import glob
import os
import re
import shutil
import struct
import subprocess
import sysconfig
from pathlib import Path

import jinja2
import numpy as np
import pytest
import testcache
from helpers import SDK_BUNDLES

from mobilekit.codegen.android import AGP, module_name, names, render_core, render_module
from mobilekit.contract import Contract
from mobilekit.data.datasets import list_yolo, load_image
from mobilekit.data.preprocess import letterbox
from mobilekit.emulate.litert import LiteRTRunner
from mobilekit.postprocess import detect

#: every test here needs the SDK bundles (minutes to build) or a compiler
pytestmark = [pytest.mark.slow, pytest.mark.kotlin]


def kotlin_jars() -> tuple[str, str]:
    site = sysconfig.get_paths()["purelib"]
    jars = os.path.join(site, "run_kotlin_kernel", "jars")
    compiler = glob.glob(os.path.join(jars, "kotlin-jupyter-kernel-*-all.jar"))
    stdlib = glob.glob(os.path.join(jars, "kotlin-stdlib-*.jar"))
    if not compiler or not stdlib or shutil.which("java") is None:
        pytest.fail("the Kotlin compiler is missing: pip install kotlin-jupyter-kernel (and a JDK 17 'java')")
    return compiler[0], stdlib[0]


def coroutines_jar() -> str:
    """kotlinx-coroutines-core (the module's one dependency beside LiteRT), as a jar of its own: the Kotlin compiler's
    jar carries release 1.10.2 unshaded, so its classes are copied out once (cached) for compiling and running."""
    import zipfile

    compiler, _ = kotlin_jars()

    def make(path: Path) -> None:
        with zipfile.ZipFile(compiler) as src, zipfile.ZipFile(path, "w") as dst:
            for name in src.namelist():
                if name.startswith("kotlinx/coroutines/") or name == "META-INF/kotlinx-coroutines-core.kotlin_module":
                    dst.writestr(name, src.read(name))
            assert src.read("META-INF/kotlinx_coroutines_core.version").decode().strip() == "1.10.2"

    return str(testcache.cached(testcache.root() / f"coroutines-{Path(compiler).name}.jar", make))


def kotlinc(sources: list[Path]) -> tuple[Path, str]:
    """``sources`` compiled by kotlinc: the classes' folder and the compiler's warnings. A compiler run is made once
    per content of its sources and the compiler (the suite's cache): a second run with nothing changed reuses it."""
    compiler, stdlib = kotlin_jars()
    coroutines = coroutines_jar()

    def run(out: Path) -> str:
        res = subprocess.run(["java", "-cp", compiler, "org.jetbrains.kotlin.cli.jvm.K2JVMCompiler", "-no-stdlib",
                              "-no-reflect", "-cp", f"{stdlib}{os.pathsep}{coroutines}", "-d", str(out),
                              *map(str, sources)],
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr
        return res.stderr

    return testcache.cached_run("kotlinc", testcache.digest(Path(compiler).name, Path(stdlib).name, sources=sources),
                                run)


def classpath(classes: Path) -> str:
    """The JVM class path of compiled harnesses: their classes, the Kotlin standard library, kotlinx.coroutines."""
    return os.pathsep.join([str(classes), kotlin_jars()[1], coroutines_jar()])


def jvm(classes: Path, main_class: str, *args: str) -> str:
    """Runs ``main_class``; its standard output."""
    return subprocess.run(["java", "-cp", classpath(classes), main_class, *args], check=True, timeout=300,
                          capture_output=True, text=True).stdout


#: bundle → the int8 model's I/O type (both are covered)
HEADS = {key: io for key, (_, _, io) in SDK_BUNDLES.items()}


@pytest.fixture(scope="module")
def bundles(sdk_bundles):
    """The detector bundles (the Swift tests build them with Core ML too: one build serves both)."""
    return {k: v for k, v in sdk_bundles.items() if k != "classifier"}


@pytest.fixture(scope="module")
def classifier_bundle(sdk_bundles):
    return sdk_bundles["classifier"]


STUBS = Path(__file__).parent / "stubs" / "android"


def stub_sources() -> list[Path]:
    """The Android, AndroidX and LiteRT API stubs: Java, and Kotlin where the real API is Kotlin (LiteRT 2.x)."""
    return sorted(STUBS.rglob("*.java")) + sorted(STUBS.rglob("*.kt"))


def shipped_module(bundle: Path) -> Path:
    """The Android library module as the bundle holds it (what the tests compile and read, never a re-render)."""
    return bundle / "sdk" / "android" / module_name(Contract.load(bundle / "contract.json"))


@pytest.fixture(scope="module")
def compiled(bundles, classifier_bundle, tmp_path_factory):
    """Every shipped module's Kotlin sources (core, API), each with a golden harness added beside them, and the API
    stubs, in one kotlinc run: its classes' folder and warnings."""
    src = tmp_path_factory.mktemp("kt_src")
    sources = stub_sources()
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
        if key == "yolo":  # the phone-behaviour harness: backend choice, cancellable load, the YUV live path
            phone = src / key / "Phone.kt"
            phone.write_text(jinja2.Template((Path(__file__).parent / "kotlin" / "Phone.kt.j2").read_text()).render(
                package=package, type_name=tname))
            sources.append(phone)
        if key == "classifier":  # the live-mode harness, over one shipped InferenceThread / LatestFrame
            live = src / key / "Live.kt"
            live.write_text(jinja2.Template((Path(__file__).parent / "kotlin" / "Live.kt.j2").read_text()).render(
                package=package))
            sources.append(live)
    return kotlinc(sources)


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
    want = {"build.gradle.kts", "consumer-rules.pro", "src/main/AndroidManifest.xml", "README.md",
            f"{kt}/YoloDetDetector.kt", f"{kt}/Preprocess.kt", f"{kt}/Postprocess.kt", f"{kt}/YoloDetSpec.kt",
            f"{kt}/Orientation.kt", f"{kt}/InferenceThread.kt", f"{kt}/Backends.kt", f"{kt}/Errors.kt", f"{kt}/Yuv.kt"}
    assert want <= set(files)
    assert module_name(contract) == "yoloDet-sdk" and "CompiledModel" in files["README.md"].read_text()
    # LiteRT's own manifest comes with its AAR: the module does not repeat it
    assert "uses-native-library" not in files["src/main/AndroidManifest.xml"].read_text()
    assert 'consumerProguardFiles("consumer-rules.pro")' in files["build.gradle.kts"].read_text()


def gradle_blocks(text: str) -> dict[str, str]:
    """Top-level `name { ... }` blocks of a Gradle Kotlin script (comments and strings hold no braces here)."""
    import re

    text = re.sub(r"//[^\n]*", "", text)
    out: dict[str, str] = {}
    i = 0
    while (m := re.compile(r"^(\w+)\s*\{", re.M).search(text, i)) is not None:
        depth, j = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        out[m.group(1)] = text[m.end():j - 1]
        i = j
    return out


#: Android Gradle plugin minor → the lowest Gradle it runs on (AGP 8.x / 9.x release notes, developer.android.com).
AGP_MIN_GRADLE = {(8, 13): (8, 13, 0), (9, 0): (9, 1, 0),
                  (9, 1): (9, 3, 1), (9, 2): (9, 4, 1), (9, 3): (9, 5, 0), (9, 4): (9, 6, 0)}


def assert_agp9_rules(gradle: str) -> None:
    """The documented AGP 9 rules for a module script (developer.android.com/build/migrate-to-built-in-kotlin): Kotlin
    is built in, so the Kotlin Android plugin (an error under AGP 9) and kapt are not applied and `kotlinOptions`
    (removed with built-in Kotlin) is not used; compiler options live in `kotlin { compilerOptions { } }` with the
    JVM target of `compileOptions`; compileSdk uses the `release(N)` spec."""
    import re

    blocks = gradle_blocks(gradle)
    code = re.sub(r"//[^\n]*", "", gradle)
    plugins = re.findall(r'id\("([\w.\-]+)"\)', blocks["plugins"])
    assert plugins and all(p.startswith("com.android.") or p == "maven-publish" for p in plugins), plugins
    for banned in ("org.jetbrains.kotlin.android", "kotlin-android", "kotlin-kapt", "kotlinOptions"):
        assert banned not in code, banned
    android_body = blocks["android"]
    assert re.search(r"compileSdk\s*\{\s*version = release\(\d+\)\s*\}", android_body), android_body
    java = re.search(r"targetCompatibility = JavaVersion\.VERSION_(\d+)", android_body).group(1)
    kotlin_body = blocks["kotlin"]
    assert "compilerOptions" in kotlin_body and f"jvmTarget = JvmTarget.JVM_{java}" in kotlin_body, kotlin_body
    assert "import org.jetbrains.kotlin.gradle.dsl.JvmTarget" in gradle


def assert_agp8_rules(gradle: str) -> None:
    """The documented AGP 8 rules for a Kotlin module script: the Kotlin Android plugin is applied beside the Android
    plugin (AGP 8 has no built-in Kotlin), compiler options live in `kotlin { compilerOptions { } }` (`kotlinOptions`
    is an error from Kotlin Gradle plugin 2.2) with the JVM target of `compileOptions`, and compileSdk is an
    integer (the `release(N)` spec is AGP 9's)."""
    import re

    blocks = gradle_blocks(gradle)
    code = re.sub(r"//[^\n]*", "", gradle)
    plugins = re.findall(r'id\("([\w.\-]+)"\)', blocks["plugins"])
    assert "com.android.library" in plugins and "org.jetbrains.kotlin.android" in plugins, plugins
    assert "kotlinOptions" not in code and "kotlin-kapt" not in code
    android_body = blocks["android"]
    assert re.search(r"^\s*compileSdk = \d+\s*$", android_body, re.M), android_body
    assert "release(" not in android_body
    java = re.search(r"targetCompatibility = JavaVersion\.VERSION_(\d+)", android_body).group(1)
    assert f"jvmTarget = JvmTarget.JVM_{java}" in blocks["kotlin"]


def assert_publication(gradle: str, group: str, artifact: str, version: str) -> None:
    """`maven-publish` publishes the release variant (AAR + POM, with sources) under the given coordinates."""
    blocks = gradle_blocks(gradle)
    assert 'singleVariant("release")' in blocks["android"] and "withSourcesJar()" in blocks["android"]
    pub = blocks["publishing"]
    assert 'register<MavenPublication>("release")' in pub and 'from(components["release"])' in pub
    assert f'groupId = "{group}"' in pub and f'artifactId = "{artifact}"' in pub and f'version = "{version}"' in pub


def test_module_scripts_follow_the_rules_of_agp_8_and_9(bundles):
    """`android.agp: 8 | 9` generates the module script for that plugin, each held to its documented rules, with
    the same dependencies, keep rules and publication; the group and version come from the config."""
    from mobilekit.config import AndroidSettings

    contract = Contract.load(bundles["yolo"] / "contract.json")
    package = names(contract)[0]
    version = contract.identity.version
    for agp, rules in ((8, assert_agp8_rules), (9, assert_agp9_rules)):
        files = render_module(contract, AndroidSettings(agp=agp, group="com.example.ml"))
        gradle = files["build.gradle.kts"]
        rules(gradle)
        assert_publication(gradle, "com.example.ml", module_name(contract), version)
        assert 'consumerProguardFiles("consumer-rules.pro")' in gradle and "consumer-rules.pro" in files
        deps = dict(re.findall(r'implementation\("([\w.\-]+:[\w.\-]+):([\w.\-]+)"\)', gradle))
        assert set(deps) == {"com.google.ai.edge.litert:litert", "org.jetbrains.kotlinx:kotlinx-coroutines-core"}
        # the sources do not depend on the plugin: only the build file differs
        others = {k: v for k, v in files.items() if k != "build.gradle.kts" and not k.endswith("README.md")}
        assert others == {k: v for k, v in render_module(contract).items()
                          if k != "build.gradle.kts" and not k.endswith("README.md")}
    assert_publication(render_module(contract)["build.gradle.kts"], package, module_name(contract), version)
    for agp, versions in AGP.items():  # each wrapper Gradle runs its plugin (release notes' minimum)
        pinned = tuple(int(v) for v in versions["gradle_version"].split("."))
        pinned += (0,) * (3 - len(pinned))
        assert pinned >= AGP_MIN_GRADLE[tuple(int(v) for v in versions["agp_version"].split(".")[:2])], agp
    with pytest.raises(AssertionError):
        assert_agp8_rules(render_module(contract)["build.gradle.kts"])
    with pytest.raises(AssertionError):
        assert_agp9_rules(render_module(contract, AndroidSettings(agp=8))["build.gradle.kts"])


def test_consumer_rules_keep_what_litert_jni_looks_up(bundles):
    """Every class LiteRT 2.1.5's JNI finds by name (FindClass in litert/kotlin/src/main/jni) is kept for R8, with
    its constructors (the JNI calls `<init>`), the ElementType enum's fields (GetStaticFieldID) and native
    methods' names."""
    rules = (shipped_module(bundles["yolo"]) / "consumer-rules.pro").read_text()
    jni_classes = ["LiteRtException", "TensorType", "TensorType$Layout", "TensorBufferRequirements"]
    for cls in jni_classes:
        assert f"-keep class com.google.ai.edge.litert.{cls} {{ <init>(...); }}" in rules, cls
    assert "-keep enum com.google.ai.edge.litert.TensorType$ElementType { *; }" in rules
    assert "native <methods>;" in rules and "-keepclasseswithmembernames" in rules


def _stub_version(pattern: str) -> set[str]:
    """The API versions the compile-only stubs say they mirror (their first line names it)."""
    import re

    return {m.group(1) for p in stub_sources() if (m := re.search(pattern, p.read_text().splitlines()[0]))}


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
    # 2.x: CompiledModel and Interpreter in one artifact; kotlinx.coroutines for the cancellable load, at the release
    # the JVM tests compile and run against
    assert set(deps) == {"com.google.ai.edge.litert:litert", "org.jetbrains.kotlinx:kotlinx-coroutines-core"}
    assert deps["com.google.ai.edge.litert:litert"].rsplit(".", 1)[0] in litert, (deps, litert)
    assert deps["org.jetbrains.kotlinx:kotlinx-coroutines-core"] == "1.10.2"
    api = _stub_version(r"Android API level (\d+)")
    assert re.search(r"compileSdk \{\s*version = release\((\d+)\)", gradle).group(1) in api
    assert 'noCompress += "tflite"' in gradle
    assert_agp9_rules(gradle)
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


def test_agp9_rule_check_rejects_the_old_module_script():
    """The checker fails the module script mobilekit shipped before AGP 9 (Kotlin plugin, kotlinOptions)."""
    old = """plugins {\n    id("com.android.library")\n    id("org.jetbrains.kotlin.android")\n}\nandroid {
    compileSdk = 35\n    compileOptions {\n        targetCompatibility = JavaVersion.VERSION_17\n    }
    kotlinOptions {\n        jvmTarget = "17"\n    }\n}\n"""
    with pytest.raises(AssertionError):
        assert_agp9_rules(old)


def test_live_mode_latest_frame_wins_and_close_is_safe(compiled, classifier_bundle):
    """The shipped InferenceThread / LatestFrame under a fast camera and a slow fake model: at most one frame waits,
    none runs twice, every frame is released once, results carry their timestamps; close() during a running frame
    releases the model after it and delivers nothing more."""
    classes, _ = compiled
    package = names(Contract.load(classifier_bundle / "contract.json"))[0]
    jvm(classes, f"{package}.golden.Live")


ORIENTATIONS = [(d, m) for d in (0, 90, 180, 270) for m in (False, True)]


@pytest.mark.parametrize("head", ["yolo", "ssd"])
def test_rotated_frames_give_pythons_upright_canvas(head, bundles, compiled, coco128, tmp_path):
    """A sensor frame with its rotation (and mirroring): the Kotlin canvas equals Python's letterbox of the upright
    frame, byte for byte, for every rotation and mirror, on a real non-square photo."""
    from mobilekit.data.orientation import upright

    classes, _ = compiled
    contract, package, runner = _open(bundles[head])
    path = sorted((coco128 / "images" / "train2017").glob("*.jpg"))[1]
    rgb = load_image(path).astype(np.uint32)
    h, w = rgb.shape[:2]
    assert h != w
    argb = (0xFF << 24) | (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    (tmp_path / "in").write_bytes(struct.pack("<ii", w, h) + argb.astype("<u4").tobytes())
    for degrees, mirrored in ORIENTATIONS:
        out = tmp_path / f"out{degrees}{mirrored}"
        jvm(classes, f"{package}.golden.Golden", "pre", str(tmp_path / "in"), str(out), str(degrees),
            "1" if mirrored else "0")
        inp = contract.input
        canvas, _ = letterbox(upright(load_image(path), degrees, mirrored), inp.height, inp.width, inp.resize,
                              inp.pad_value)
        assert out.read_bytes() == runner.input_tensor(canvas)[0].tobytes(), (degrees, mirrored)


def test_boxes_map_back_to_the_sensor_frame_as_python_does(bundles, compiled):
    from mobilekit.data.orientation import to_sensor

    classes, _ = compiled
    package = names(Contract.load(bundles["yolo"] / "contract.json"))[0]
    _, stdlib = kotlin_jars()
    rng = np.random.default_rng(0)
    for degrees, mirrored in ORIENTATIONS:
        w, h = 640, 480
        uw, uh = (h, w) if degrees in (90, 270) else (w, h)
        x = np.sort(rng.uniform(0, uw, 2))
        y = np.sort(rng.uniform(0, uh, 2))
        box = [float(x[0]), float(y[0]), float(x[1]), float(y[1])]
        res = subprocess.run(["java", "-cp", f"{classes}{os.pathsep}{stdlib}", f"{package}.golden.Golden", "tosensor",
                              str(w), str(h), str(degrees), "1" if mirrored else "0", *map(repr, box)],
                             capture_output=True, text=True, check=True, timeout=120)
        got = [float(v) for v in res.stdout.split()]
        assert np.allclose(got, to_sensor(np.array(box), w, h, degrees, mirrored), atol=1e-9), (degrees, mirrored)


def test_category_allow_and_deny_lists_match_python(bundles, compiled, shapes_dataset, tmp_path):
    """Allow / deny lists: the Kotlin detections equal Python's with the same class mask (a denied class neither wins
    a candidate nor suppresses a box); an unknown label is refused."""
    classes, _ = compiled
    contract, package, runner = _open(bundles["yolo"])
    signed = contract.artifacts["tflite-int8"].inputs[0].dtype == "int8"
    labels = contract.labels
    cases = [({labels[0]}, set()), (set(), {labels[0]}), (set(labels[:2]), {labels[1]})]
    total = 0
    for i, rec in enumerate(list_yolo(shapes_dataset)[:4]):
        img = load_image(rec.path)
        canvas, plan = _canvas(rec.path, contract)
        raw = runner.run_raw(runner.input_tensor(canvas))
        payload = struct.pack("<ii", img.shape[1], img.shape[0]) + b"".join(
            struct.pack("<i", raw[r].nbytes) + raw[r].tobytes() for r in ("boxes", "scores")) + struct.pack(
            "<i", 1 if signed else 0)
        (tmp_path / f"raw{i}").write_bytes(payload)
        for k, (allow, deny) in enumerate(cases):
            mask = np.array([(not allow or lb in allow) and lb not in deny for lb in labels])
            want = detect(runner.dequantize(raw), contract, plan, allowed=mask)
            out = tmp_path / f"det{i}_{k}"
            jvm(classes, f"{package}.golden.Golden", "post", str(tmp_path / f"raw{i}"), str(out),
                ",".join(sorted(allow)) or "-", ",".join(sorted(deny)) or "-")
            got = [ln.split(" ", 6) for ln in out.read_text().splitlines() if ln.strip()]
            assert [int(g[0]) for g in got] == [int(c) for c in want.classes], (allow, deny)
            assert all(mask[int(g[0])] for g in got)
            assert np.allclose([[float(v) for v in g[2:6]] for g in got], want.boxes.reshape(-1, 4), atol=1e-4)
            total += len(want)
    assert total > 0
    _, stdlib = kotlin_jars()
    res = subprocess.run(["java", "-cp", f"{classes}{os.pathsep}{stdlib}", f"{package}.golden.Golden", "post",
                          str(tmp_path / "raw0"), str(tmp_path / "x"), "no such label", "-"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "unknown categories" in res.stderr


def _compiled_model_outputs(path: Path, tensor: np.ndarray, artifact) -> list[np.ndarray]:
    """LiteRT's CompiledModel (the C++ runtime under the Kotlin API) on the CPU, fed as the generated Kotlin feeds
    it: the quantized input as raw int8 bytes (`writeInt8`, also for a uint8 model), outputs read back as int8
    (`readInt8`) or float (`readFloat`), in the order of `createOutputBuffers()`."""
    from ai_edge_litert.compiled_model import CompiledModel

    model = CompiledModel.from_file(str(path))
    inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
    quantized = tensor.dtype != np.float32
    inputs[0].write(tensor.view(np.int8) if quantized else tensor)
    model.run_by_index(0, inputs, outputs)
    out = []
    for buffer, spec in zip(outputs, sorted(artifact.outputs, key=lambda b: b.position), strict=True):
        n = int(np.prod(spec.shape))
        out.append(buffer.read(n, np.int8).view(np.dtype(spec.dtype)) if quantized else buffer.read(n, np.float32))
    return out


@pytest.mark.parametrize("head", ["yolo", "ssd", "grid_decoded", "yolo_unsplit"])
def test_compiled_model_path_matches_the_interpreter(head, bundles, shapes_dataset):
    """The SDK's default path: CompiledModel's output buffers come in the positions the generated Spec names (the
    Interpreter's output order; a model's signature may list them in another), and raw int8 / uint8 bytes written
    and read as int8 give the Interpreter's outputs."""
    contract, _, runner = _open(bundles[head])
    art = contract.artifacts["tflite-int8"]
    for rec in list_yolo(shapes_dataset)[:3]:
        canvas, _ = _canvas(rec.path, contract)
        tensor = runner.input_tensor(canvas)
        want = runner.run_raw(tensor)
        got = _compiled_model_outputs(bundles[head] / art.path, tensor, art)
        for spec in art.outputs:
            a = got[spec.position].astype(np.int32).reshape(-1)
            b = want[spec.role].astype(np.int32).reshape(-1)
            assert a.shape == b.shape and np.abs(a - b).max() <= 1, (head, spec.role)


def test_compiled_model_path_runs_the_fp16_model(classifier_bundle, shapes_dataset):
    """The GPU path's model (fp16 weights, float I/O) through CompiledModel (here on the CPU), float in and out, at
    the Spec's FLOAT_*_POSITION: the same values as the Interpreter on the same file."""
    from ai_edge_litert.interpreter import Interpreter

    from mobilekit.data.preprocess import normalize

    contract, _, _ = _open(classifier_bundle)
    art = contract.artifacts["tflite-fp16"]
    it = Interpreter(model_path=str(classifier_bundle / art.path))
    it.allocate_tensors()
    inp = contract.input
    for rec in list_yolo(shapes_dataset)[:3]:
        canvas, _ = _canvas(rec.path, contract)
        x = normalize(canvas, inp.scale, inp.offset, inp.color, inp.layout).astype(np.float32).reshape(
            it.get_input_details()[0]["shape"])
        got = _compiled_model_outputs(classifier_bundle / art.path, x, art)
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        for spec in art.outputs:
            want = it.get_tensor(it.get_output_details()[spec.position]["index"]).reshape(-1)
            assert got[spec.position].shape == want.shape
            assert np.allclose(got[spec.position], want, atol=1e-4, rtol=1e-3), spec.role


def _phone(compiled, bundles, *args: str) -> str:
    classes, _ = compiled
    package = names(Contract.load(bundles["yolo"] / "contract.json"))[0]
    return jvm(classes, f"{package}.golden.Phone", *args)


def test_backend_choice_says_what_runs(compiled, bundles, tmp_path):
    """The shipped backend choice with fake devices: no NPU library → GPU, and the NPU's reason; GPU refusing an op
    → GPU with CPU; everything refusing → the Interpreter with every reason; nothing → the sealed NoBackend. The
    NPU check reads the library directory as LiteRT's runtime does (dispatch library, and the compiler plugin
    unless the model is compiled ahead of time)."""
    lines = dict(ln.split("|", 1) for ln in _phone(compiled, bundles, "backends", str(tmp_path)).splitlines())
    assert lines["npu-supported-no-library"].startswith("no vendor dispatch library (libLiteRtDispatch_*.so)")
    assert lines["npu-unsupported-soc"] == "this SoC is not one LiteRT's NPU runtime supports"
    assert lines["npu-ready"] == "null" and lines["npu-dispatch-only-aot"] == "null"
    assert lines["npu-dispatch-only"].startswith("no compiler plugin")
    backend, reason = lines["no-npu-library"].split("|")
    assert backend == "GPU" and reason.startswith("NPU: no vendor dispatch library")
    assert lines["npu-runs"] == "NPU|"
    assert lines["gpu-refuses-an-op"] == "GPU_CPU|GPU: 1 op (CUSTOM) is not supported by the GPU"
    backend, reason = lines["everything-refuses"].split("|")
    assert backend == "INTERPRETER"
    assert reason == "NPU: no vendor dispatch library; GPU: no OpenCL; GPU_CPU: no OpenCL; CPU: CompiledModel failed"
    assert lines["nothing-loads"] == "NONE|GPU: no; GPU_CPU: no; CPU: no; INTERPRETER: no"


def test_cancelled_load_releases_the_model_and_the_thread(compiled, bundles):
    """`load()`'s machinery (InferenceThread.start) under a cancelled coroutine: the caller resumes at once, the model
    the runtime returns late is closed on its thread, the thread ends; cancelled while queued, nothing loads."""
    assert "thread ended" in _phone(compiled, bundles, "cancel")


def _planes_file(path: Path, rgb: np.ndarray, y_stride: int, uv_stride: int, uv_pixel: int, degrees: int,
                 mirrored: bool, full: bool) -> tuple[bytes, bytes, bytes]:
    from mobilekit.data.yuv import rgb_to_yuv420

    h, w = rgb.shape[:2]
    y, u, v = rgb_to_yuv420(rgb, y_stride, uv_stride, uv_pixel, full)
    path.write_bytes(struct.pack("<8i", w, h, y_stride, uv_stride, uv_pixel, degrees, int(mirrored), int(full))
                     + b"".join(struct.pack("<i", len(p)) + p for p in (y, u, v)))
    return y, u, v


@pytest.mark.parametrize("layout", ["i420", "semi-planar"])
def test_yuv_live_path_matches_python_byte_for_byte(layout, compiled, bundles, coco128, tmp_path):
    """A camera frame as ImageProxy's planes (padded rows; planar or semi-planar chroma; full and limited BT.601
    range; turned and mirrored): the Kotlin live path's upright RGB equals mobilekit.data.yuv's, and its model input
    equals Python's letterbox of that image, byte for byte."""
    from mobilekit.data.orientation import upright
    from mobilekit.data.yuv import yuv420_to_rgb

    contract, _, runner = _open(bundles["yolo"])
    rgb = load_image(sorted((coco128 / "images" / "train2017").glob("*.jpg"))[1])[:, :-1]  # an odd width too
    h, w = rgb.shape[:2]
    pixel = 1 if layout == "i420" else 2
    y_stride, uv_stride = w + 64, ((w + 1) // 2) * pixel + 32
    for degrees, mirrored, full in [(0, False, True), (90, False, True), (270, True, False), (180, False, False)]:
        planes = tmp_path / f"planes{degrees}"
        y, u, v = _planes_file(planes, rgb, y_stride, uv_stride, pixel, degrees, mirrored, full)
        _phone(compiled, bundles, "yuv", str(planes), str(tmp_path / f"out{degrees}"))
        want = upright(yuv420_to_rgb(y, u, v, w, h, y_stride, uv_stride, pixel, full), degrees, mirrored)
        assert (tmp_path / f"out{degrees}.rgb").read_bytes() == np.ascontiguousarray(want).tobytes(), degrees
        inp = contract.input
        canvas, _ = letterbox(want, inp.height, inp.width, inp.resize, inp.pad_value)
        assert (tmp_path / f"out{degrees}.tensor").read_bytes() == runner.input_tensor(canvas)[0].tobytes()


def test_yuv_reference_inverts_the_encoder():
    """The Python reference decodes what a BT.601 encoder wrote to within rounding (the same matrix both ways), in
    both ranges: a test of the reference itself, not of the SDK."""
    from mobilekit.data.yuv import rgb_to_yuv420, yuv420_to_rgb

    rng = np.random.default_rng(0)
    flat = np.repeat(np.repeat(rng.integers(30, 225, (8, 10, 3)), 2, axis=0), 2, axis=1).astype(np.uint8)
    for full in (True, False):
        y, u, v = rgb_to_yuv420(flat, 24, 12, 1, full)
        back = yuv420_to_rgb(y, u, v, 20, 16, 24, 12, 1, full)
        assert np.abs(back.astype(int) - flat).max() <= 2, full


def test_live_path_allocates_no_frame_buffers(compiled, bundles):
    """Steady state of both live paths on a 640x480 frame turned 90 degrees, to the model's input: bytes allocated
    per frame by the converting thread (ThreadMXBean) stay under 64 KB (before: about 6.4 MB, a boxed Pair per
    pixel and four frame copies)."""
    for line in _phone(compiled, bundles, "alloc", "640", "480", "90").splitlines():
        name, ms, allocated, _ = line.split("|")
        assert int(allocated) <= 64 * 1024, (name, allocated)
        assert float(ms) > 0
