"""The sample apps `mobilekit build --with-sample-app` writes: the Android app's Kotlin compiles with the SDK module
against the Android / CameraX stubs, the iOS app's Swift builds with the Swift package against the Apple stubs,
and the Gradle files and Swift manifests wire exactly the SDKs of the bundle."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import jinja2
import pytest
from helpers import NO_GATE, build_bundles, detector_config, swift_built
from test_kotlin_core import AGP_MIN_GRADLE, assert_agp9_rules, kotlinc, stub_sources

from mobilekit.codegen import android, ios
from mobilekit.codegen.sample_apps import ANDROID_VERSIONS, ios_app
from mobilekit.contract import Contract

HERE = Path(__file__).parent

pytestmark = pytest.mark.slow  # each test builds a sample app or needs two bundles built


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, yolo_model, classifier_model, shapes_dataset, cache):
    det = detector_config(yolo_model, shapes_dataset, cache / "labels.txt")
    det.update({"name": "street detector", "parity": {"images": 8, **NO_GATE},
                "coreml": {"input": "image", "vision": True}})
    cls = {"model": str(classifier_model), "name": "shape classifier", "task": "classification",
           "labels": str(cache / "labels.txt"), "calibration": {"images": str(shapes_dataset), "count": 10},
           "parity": {"images": 8, **NO_GATE}}
    return build_bundles(tmp_path_factory, {"detector": det, "classifier": cls}, "--with-sample-app")


@pytest.mark.kotlin
@pytest.mark.parametrize("key", ["detector", "classifier"])
def test_android_sample_compiles_with_the_sdk_module(key, bundles):
    bundle = bundles[key]
    contract = Contract.load(bundle / "contract.json")
    module = bundle / "sdk" / "android" / android.module_name(contract)
    app = bundle / "sample_apps" / "android"
    sources = stub_sources() + sorted(module.rglob("*.kt")) + sorted(app.rglob("*.kt"))
    classes, warnings = kotlinc(sources)
    ours = [ln for ln in warnings.splitlines() if "warning" in ln.lower() and "sample_apps" in ln]
    assert not ours, warnings
    assert (classes / Path(*android.names(contract)[0].split(".")) / "sample" / "MainActivity.class").is_file()


@pytest.mark.kotlin
@pytest.mark.parametrize("key", ["detector", "classifier"])
def test_android_gradle_files_wire_the_bundle_module(key, bundles):
    bundle = bundles[key]
    contract = Contract.load(bundle / "contract.json")
    module = android.module_name(contract)
    app = bundle / "sample_apps" / "android"
    settings = (app / "settings.gradle.kts").read_text()
    assert f'include(":{module}")' in settings and 'include(":app")' in settings
    path = re.search(rf'project\(":{re.escape(module)}"\)\.projectDir = file\("([^"]+)"\)', settings).group(1)
    sdk = (app / path).resolve()
    assert (sdk / "build.gradle.kts").is_file() and sdk == (bundle / "sdk" / "android" / module).resolve()
    gradle = (app / "app" / "build.gradle.kts").read_text()
    assert f'implementation(project(":{module}"))' in gradle
    deps = dict(re.findall(r'implementation\("([\w.\-]+:[\w.\-]+):([\w.\-]+)"\)', gradle))
    for artifact in ("camera-core", "camera-camera2", "camera-lifecycle", "camera-view"):
        assert deps[f"androidx.camera:{artifact}"] == ANDROID_VERSIONS["camerax_version"]
    package = android.names(contract)[0]
    assert f'namespace = "{package}.sample"' in gradle
    assert f'namespace = "{package}"' in (sdk / "build.gradle.kts").read_text()
    root = (app / "build.gradle.kts").read_text()
    assert f'id("com.android.application") version "{android.AGP[9]["agp_version"]}"' in root
    assert "org.jetbrains.kotlin.android" not in root  # AGP 9: built-in Kotlin
    assert_agp9_rules(gradle)
    assert re.search(r"targetSdk = (\d+)", gradle).group(1) == "36"
    # the Gradle the wrapper pins is one this AGP runs on (AGP release notes' minimum)
    wrapper = (app / "gradle" / "wrapper" / "gradle-wrapper.properties").read_text()
    pinned = tuple(int(v) for v in re.search(r"gradle-([\d.]+)-bin\.zip", wrapper).group(1).split("."))
    agp = tuple(int(v) for v in android.AGP[9]["agp_version"].split(".")[:2])
    assert pinned >= AGP_MIN_GRADLE[agp], (pinned, agp)
    manifest = (app / "app" / "src" / "main" / "AndroidManifest.xml").read_text()
    assert "android.permission.CAMERA" in manifest and 'android:name=".MainActivity"' in manifest
    assert "screenOrientation" not in manifest and "android:configChanges=" in manifest  # turns with the device
    assert (app / "app" / "src" / "main" / "assets" / "sample.jpg").stat().st_size > 1000
    steps = [ln for ln in (app / "README.md").read_text().splitlines() if re.match(r"\d+\. ", ln)]
    assert 1 <= len(steps) <= 3


def ios_apps_built(apps: list[tuple[Path, Path, Any]], stub_modules: Path, root: Path) -> str:
    """Sample apps (each an App Playground folder, with the Swift package it uses and its contract) compiled in
    Swift 6 language mode against their packages as they ship (their own Package.swift, a path dependency) and the
    Apple stub modules: the build output. SwiftPM cannot load an App Playground's own manifest here
    (AppleProductTypes is Xcode's), so a check package stands in for it (tests/swift/SamplePackage.swift.j2)."""
    models = []
    for app, kit_dir, contract in apps:
        name, kit = ios.swift_name(contract), ios.kit_name(contract)
        shutil.copytree(kit_dir, root / "Packages" / kit)
        shutil.copytree(app, root / "Apps" / name)
        models.append({"name": name, "kit": kit, "task": contract.task})
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    (root / "Package.swift").write_text(env.from_string((HERE / "swift" / "SamplePackage.swift.j2").read_text())
                                        .render(models=models))
    assert "swiftLanguageModes: [.v6]" in (root / "Package.swift").read_text()
    stubs = ("-Xswiftc", "-I", "-Xswiftc", str(stub_modules))
    # --target: the app's module, compiled and type-checked; linking needs Apple's frameworks
    _, outputs = swift_built("swift-sample-apps", root, *(("build", "--target", f"{m['name']}App", *stubs)
                                                          for m in models))
    return "".join(outputs)


@pytest.mark.swift
def test_ios_sample_builds_with_the_swift_package(bundles, apple_stub_modules, tmp_path):
    """Both sample apps (their App Playgrounds as they ship) compiled in Swift 6 language mode (strict concurrency)
    against the bundle's Swift package as it ships and the Apple stub modules, with no warning at all."""
    apps = []
    for bundle in bundles.values():
        contract = Contract.load(bundle / "contract.json")
        apps.append((bundle / "sample_apps" / "ios" / ios_app(contract),
                     bundle / "sdk" / "ios" / ios.kit_name(contract), contract))
    text = ios_apps_built(apps, apple_stub_modules, tmp_path / "check")
    ours = [ln for ln in text.splitlines() if "warning:" in ln]
    assert not ours, text


@pytest.mark.swift
def test_ios_sample_is_an_app_playground_on_the_bundle_package(bundles):
    """The iOS sample is an App Playground Xcode opens as an app: a folder ``<Name>Sample.swiftpm`` holding the
    manifest (AppleProductTypes imported after PackageDescription, as Xcode's template has it), the sources and the
    resources, whose only dependency is the bundle's Swift package by a relative path; the README beside it gives
    three steps that open that folder in Xcode."""
    for bundle in bundles.values():
        contract = Contract.load(bundle / "contract.json")
        kit, name = ios.kit_name(contract), ios.swift_name(contract)
        ios_dir = bundle / "sample_apps" / "ios"
        app = ios_dir / f"{name}Sample.swiftpm"
        assert ios_app(contract) == app.name
        assert sorted(p.name for p in ios_dir.iterdir()) == sorted([app.name, "README.md"])
        assert {p.relative_to(app).as_posix() for p in app.rglob("*") if p.is_file()} == {
            "Package.swift", "SampleApp.swift", "ContentView.swift", "Camera.swift", "Resources/sample.jpg"}
        manifest = (app / "Package.swift").read_text()
        assert manifest.startswith("// swift-tools-version: 6.0\n") and "swiftLanguageModes: [.v6]" in manifest
        imports = [ln for ln in manifest.splitlines() if ln.startswith("import ")]
        assert imports == ["import PackageDescription", "import AppleProductTypes"]
        assert f'name: "{name}Sample"' in manifest
        path = re.findall(r'\.package\(path: "([^"]+)"\)', manifest)
        assert len(path) == 1 and ".package(url:" not in manifest
        sdk = (app / path[0]).resolve()
        assert sdk == (bundle / "sdk" / "ios" / kit).resolve() and sdk.name == kit
        sdk_manifest = (sdk / "Package.swift").read_text()
        assert f'.library(name: "{kit}", targets: ["{kit}"])' in sdk_manifest
        assert f'.product(name: "{kit}", package: "{kit}")' in manifest
        ios_version = re.search(r'\.iOS\("([\d.]+)"\)', sdk_manifest).group(1)
        assert f'.iOS("{ios_version}")' in manifest and ".iOSApplication(" in manifest
        assert 'targets: ["AppModule"]' in manifest and 'name: "AppModule"' in manifest and 'path: "."' in manifest
        assert '.process("Resources")' in manifest and (app / "Resources" / "sample.jpg").stat().st_size > 1000
        assert ".camera(purposeString:" in manifest
        readme = (ios_dir / "README.md").read_text()
        steps = [ln for ln in readme.splitlines() if re.match(r"\d+\. ", ln)]
        assert len(steps) == 3
        assert f"`{app.name}`" in steps[0] and "Xcode" in steps[0]
        assert "Signing" in readme and "Swift Playgrounds" in readme and f"../../../sdk/ios/{kit}" in readme


@pytest.mark.swift
def test_ios_sample_asks_for_the_camera_and_places_the_overlay_on_the_image(bundles):
    """Camera access is asked for (``requestAccess``) before any session starts, and a refusal is shown with a way
    to Settings; the still image is laid out with one alignment that the overlay's mapping (the package's tested
    ``ImageLayout``) uses too, and the preview's boxes are mapped as its aspect fill lays it out."""
    for key, bundle in bundles.items():
        contract = Contract.load(bundle / "contract.json")
        app = bundle / "sample_apps" / "ios" / ios_app(contract)
        camera = (app / "Camera.swift").read_text()
        view = (app / "ContentView.swift").read_text()
        start = camera.split("func startCamera()")[1].split("\n    }\n")[0]
        assert start.index("guard hasCameraAccess() else { return }") < start.index("capture.start(")
        access = camera.split("private func hasCameraAccess()")[1].split("\n    }\n")[0]
        assert "AVCaptureDevice.authorizationStatus(for: .video)" in access
        assert "await AVCaptureDevice.requestAccess(for: .video)" in access
        assert "access = .denied" in access and "access = .restricted" in access
        assert "camera.access == .denied" in view and "camera.openSettings()" in view
        assert "UIApplication.openSettingsURLString" in camera
        assert "private static let stillAlignment = ImageLayout.Alignment.top" in view
        assert "alignment: Self.stillFrameAlignment)" in view, key
        if contract.task == "detection":
            assert "scaling: .fit, alignment: Self.stillAlignment)" in view
            assert "scaling: .fill, alignment: .center)" in view and "videoGravity = .resizeAspectFill" in view


@pytest.mark.swift
def test_ios_sample_streams_camera_frames_and_closes_cleanly(bundles):
    """The app loads the model asynchronously, sends each camera frame (with its orientation and timestamp) to the
    package's live mode from the capture queue, reads results on the main actor, and stops everything when the
    screen goes away; it never blocks on inference in the camera callback."""
    for key, bundle in bundles.items():
        contract = Contract.load(bundle / "contract.json")
        app = bundle / "sample_apps" / "ios" / ios_app(contract)
        camera = (app / "Camera.swift").read_text()
        view = (app / "ContentView.swift").read_text()
        cls = ios.template_context(contract, "iOS16")["cls"]
        assert f"try await {cls}.load(configuration: configuration)" in camera, key
        assert "@MainActor\nfinal class Camera: ObservableObject" in camera
        assert "let live = model.live()" in camera and "for await result in live.results" in camera
        assert "live?.submit(CameraFrame(pixelBuffer: buffer," in camera
        assert "orientation: orientation))" in camera and "CMSampleBufferGetPresentationTimeStamp" in camera
        assert "output.setSampleBufferDelegate(self, queue: queue)" in camera
        assert "live?.close()" in camera and "session.stopRunning()" in camera
        assert ".onDisappear { camera.stopCamera() }" in view
        assert "try " + cls not in camera.replace(f"try await {cls}", "")  # no blocking load
        # rotation: the preview and the per-frame orientation follow Apple's RotationCoordinator (iOS 17+) or the
        # device orientation before; the video data output's connection is never rotated (the SDK turns the pixels)
        assert "AVCaptureDevice.RotationCoordinator(device: device, previewLayer: layer)" in camera
        assert "observe(\\.videoRotationAngleForHorizonLevelPreview" in camera
        assert "capture.setOrientation(Self.orientation(rotationAngle: angle, mirrored: front))" in camera
        assert "UIDevice.orientationDidChangeNotification" in camera and "frameOrientation" not in camera
        assert "output.connection(with:" not in camera and "camera.attach(view.previewLayer)" in view
        assert "stopFollowingRotation()" in camera.split("func stopCamera()")[1].split("}")[0]
        manifest = (app / "Package.swift").read_text()
        assert ".landscapeLeft" in manifest and ".landscapeRight" in manifest, key
