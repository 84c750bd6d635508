"""What a release pipeline installs: the wheel, not an editable checkout.

`pip install mobilekit` must be able to generate both SDKs and the report, so the templates are package data. The
test builds the wheel, installs it (no ``-e``) into a fresh virtualenv whose only other packages are this
environment's dependencies (linked by a ``.pth`` path, so nothing is downloaded), and runs ``mobilekit example``
from a folder outside the checkout (its trained model seeded from the suite's cache: the wheel's code writes the
data and the config and runs the whole build).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    res = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=1200,
                         env={**os.environ, **(env or {})})
    assert res.returncode == 0, f"{' '.join(args)}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout


def _example_model() -> Path:
    """The example's trained detector, trained once by the checkout's ``make_example`` (the code the wheel holds) and
    kept in the suite's cache: the wheel is under test here, not the training (half this test's time, done again
    by every run before)."""
    import keras
    import tensorflow as tf
    import testcache

    from mobilekit.example.project import make_example

    def make(path: Path) -> None:
        with tempfile.TemporaryDirectory() as work:
            make_example(Path(work))
            shutil.copy(Path(work) / "model" / "shapes_yolo.keras", path)

    key = testcache.digest(os.environ.get("TF_ENABLE_ONEDNN_OPTS"), tf.__version__, keras.__version__,
                           sources=testcache.files_under(ROOT / "mobilekit" / "example", suffixes=(".py",)))
    return testcache.cached(testcache.root() / f"example-model-{key}.keras", make)


@pytest.mark.slow
@pytest.mark.swift
@pytest.mark.kotlin
def test_installed_wheel_builds_both_sdks_and_the_report(tmp_path, apple_stub_modules):
    # built from a copy of the sources: an in-tree build would leave build/ behind, whose stale files later
    # wheels would pack
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__",
                                                             ".pytest_cache", ".ruff_cache", ".hypothesis"))
    _run(sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w",
         str(tmp_path / "dist"), cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("mobilekit-*.whl"))
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", str(venv), cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
         str(wheel), cwd=tmp_path)
    site = Path(_run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                     cwd=tmp_path).strip())
    # this environment's packages (tensorflow, coremltools, ...) without its editable mobilekit: a plain path line
    # does not run the .pth files (the editable finder) of the folder it adds
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_test_dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
    where = _run(str(python), "-c", "import mobilekit.codegen.render as r; print(r.TEMPLATES)", cwd=tmp_path)
    assert where.strip().startswith(str(site)), where  # the installed copy, not the checkout
    out = tmp_path / "bundle"
    (tmp_path / "work" / "model").mkdir(parents=True)
    shutil.copy(_example_model(), tmp_path / "work" / "model" / "shapes_yolo.keras")
    _run(str(venv / "bin" / "mobilekit"), "example", "--workdir", str(tmp_path / "work"), "--out", str(out),
         "--quiet", cwd=tmp_path, env={"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"})
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert any(f.startswith("sdk/android/") and f.endswith("/build.gradle.kts") for f in files), sorted(files)
    assert any(f.startswith("sdk/ios/") and f.endswith("Kit/Package.swift") for f in files), sorted(files)
    assert any(f.startswith("sdk/ios/") and f.endswith("ModelCache.swift") for f in files)
    assert "report/index.html" in files and "manifest.json" in files
    _check_checkout_sample_apps(out, apple_stub_modules, tmp_path / "ios-check")


def _check_checkout_sample_apps(bundle: Path, apple_stub_modules: Path, work: Path) -> None:
    """The repository's sample_apps/ are the apps the example renders (`mobilekit example` writes them into its
    bundle, as `--with-sample-app` does for any model), wired to build/example; and both compile as they stand in
    the repository: the Android app with the example's SDK module against the API stubs, the iOS app with the
    example's Swift package against the Apple stubs (Swift 6 mode, no warning)."""
    from test_kotlin_core import kotlinc, stub_sources
    from test_sample_apps import ios_apps_built

    from mobilekit.codegen import ios
    from mobilekit.codegen.sample_apps import render_checkout
    from mobilekit.contract import Contract

    checkout = ROOT / "sample_apps"
    want = {rel: data for rel, data in render_checkout(bundle).items() if not rel.endswith(".jpg")}
    have = {p.relative_to(checkout).as_posix(): p.read_bytes() for p in checkout.rglob("*")
            if p.is_file() and p.suffix != ".jpg"}
    assert have == want, "sample_apps/ is stale: python -m mobilekit.codegen.sample_apps build/example"
    shipped = {p.relative_to(bundle / "sample_apps").as_posix() for p in (bundle / "sample_apps").rglob("*")
               if p.is_file()}
    assert shipped == {p.relative_to(checkout).as_posix() for p in checkout.rglob("*") if p.is_file()}
    module = next((bundle / "sdk" / "android").iterdir())
    sources = stub_sources() + sorted(module.rglob("*.kt")) + sorted((checkout / "android").rglob("*.kt"))
    classes, warnings = kotlinc(sources)
    assert not [ln for ln in warnings.splitlines() if "warning" in ln.lower() and "sample_apps" in ln], warnings
    assert any(classes.rglob("MainActivity.class"))
    contract = Contract.load(bundle / "contract.json")
    app = next((checkout / "ios").glob("*.swiftpm"))
    text = ios_apps_built([(app, bundle / "sdk" / "ios" / ios.kit_name(contract), contract)], apple_stub_modules,
                          work)
    assert not [ln for ln in text.splitlines() if "warning:" in ln], text
