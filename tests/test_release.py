"""Release-grade bundle: byte-identical rebuilds, `mobilekit verify`, the HTML report in a real browser, drift
diagnosis on a parity failure, atomic output under write failures, and `mobilekit doctor`."""

from __future__ import annotations

import errno
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import NO_GATE, detector_config, write_config

from mobilekit.cli import main
from mobilekit.errors import EXIT_OUTPUT, EXIT_PARITY, EXIT_VERIFY
from mobilekit.process import IN_PROCESS

pytestmark = pytest.mark.slow  # two full builds, a browser, a build per failure


def _build(tmp: Path, cfg: dict, out: Path, *extra: str):
    return CliRunner().invoke(main, ["build", str(write_config(tmp, cfg)), "--out", str(out), *extra])


@pytest.fixture(scope="module")
def twin_bundles(tmp_path_factory, yolo_model, shapes_dataset, cache):
    """The same model and config built twice (TFLite, Core ML with a compressed variant and Vision, both SDKs)."""
    work = tmp_path_factory.mktemp("twins")
    cfg = detector_config(yolo_model, shapes_dataset, cache / "labels.txt")
    cfg.update({"parity": {"images": 8, **NO_GATE}, "coreml": {"input": "image", "vision": True}})
    outs = []
    for i in (1, 2):
        res = _build(work, cfg, work / f"b{i}", "--quiet")
        assert res.exit_code == 0, res.output
        outs.append(work / f"b{i}")
    return outs


def test_two_builds_give_byte_identical_artifacts(twin_bundles):
    a, b = (json.loads((d / "manifest.json").read_text()) for d in twin_bundles)
    ha = {x["path"]: x["sha256"] for x in a["artifacts"]}
    hb = {x["path"]: x["sha256"] for x in b["artifacts"]}
    assert ha.keys() == hb.keys()
    kinds = {x["path"]: x["kind"] for x in a["artifacts"]}
    # they hold latency figures, per-op CPU times and run-time memory, measured per run
    measured = {"manifest", "parity-report", "report", "op-profile"}
    differ = [p for p in ha if ha[p] != hb[p] and kinds[p] not in measured]
    assert not differ, differ
    for kind in ("tflite-int8", "coreml", "android-sdk", "ios-sdk", "ios-sdk-resource", "contract"):
        assert any(k == kind for k in kinds.values()), kind
    timed = ("artifacts", "latency_ms", "latency_note", "op_profile", "memory", "xnnpack_rewrite")
    assert {k: v for k, v in a.items() if k not in timed} == {k: v for k, v in b.items() if k not in timed}


def test_verify_accepts_a_good_bundle_and_names_a_tampered_file(twin_bundles, tmp_path):
    bundle = tmp_path / "copy"
    shutil.copytree(twin_bundles[0], bundle)
    res = CliRunner().invoke(main, ["verify", str(bundle)])
    assert res.exit_code == 0 and "match the manifest" in res.output
    (bundle / "android" / "labels.txt").write_text("tampered\n")
    weights = next((bundle / "ios").glob("*palettize6.mlpackage")) / "Data" / "com.apple.CoreML" / "weights"
    blob = next(weights.iterdir())
    blob.write_bytes(blob.read_bytes()[:-1] + b"\0")
    (bundle / "extra.bin").write_bytes(b"x")
    res = CliRunner().invoke(main, ["verify", str(bundle), "--json"])
    assert res.exit_code == EXIT_VERIFY
    problems = {p["path"]: p["status"] for p in json.loads(res.output)["problems"]}
    assert problems["android/labels.txt"] in ("size", "sha256")
    assert any(p.endswith("palettize6.mlpackage") for p in problems) and problems["extra.bin"] == "unlisted"
    res = CliRunner().invoke(main, ["verify", str(tmp_path)])
    assert res.exit_code == EXIT_OUTPUT and "no manifest.json" in res.output


def chromium() -> str:
    found = next((shutil.which(c) for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None)
    if found is None:
        pytest.fail("Chromium is missing: apt-get install chromium (Debian) — the report is checked in a real browser")
    return found


def test_report_renders_in_headless_chromium(twin_bundles, tmp_path):
    report = twin_bundles[0] / "report" / "index.html"
    text = report.read_text()
    assert 'src="http' not in text and "<link" not in text and "<script src" not in text  # self-contained
    dom = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                          "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'data-images-loaded="(\d+)" data-tables="(\d+)"', dom)
    assert m, dom[:500]
    assert int(m.group(1)) >= 4 and int(m.group(2)) >= 3  # histograms, drift, bars, overlays; three tables
    for heading in ("Parity checks", "Where int8 drifts", "Evaluation images"):
        assert heading in dom
    shot = tmp_path / "report.png"
    subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,2400",
                    f"--screenshot={shot}", report.as_uri()], capture_output=True, timeout=120)
    assert shot.stat().st_size > 50_000  # a rendered page with plots, not a blank one
    parity = json.loads((twin_bundles[0] / "report" / "parity.json").read_text())
    assert parity["drift"]["layers"] and {"boxes", "scores"} <= set(parity["histograms"])
    assert set(parity["histograms"]["scores"]["counts"]) >= {"tflite-int8", "coreml-fp16"}


def test_parity_failure_names_the_drifting_layer_and_the_fixes(tmp_path, yolo_model, shapes_dataset, cache):
    cfg = detector_config(yolo_model, shapes_dataset, cache / "labels.txt")
    cfg.update({"coreml": {"enabled": False}, "parity": {"images": 8, "min_snr_db": 200.0}})
    res = _build(tmp_path, cfg, tmp_path / "b")
    assert res.exit_code == EXIT_PARITY
    line = next(ln for ln in res.output.splitlines() if ln.startswith("error:"))
    words = " ".join(res.output.split())
    # the debugger's first layer above one int8 step, or (none is) its largest error, said as such
    assert re.search(r"int8 drift starts at layer \S+|the largest int8 error is at layer \S+", words), words
    assert "calibration.count" in res.output
    assert "compression.qat" in " ".join(res.output.split()) and line
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("failure", [errno.ENOSPC, errno.EIO])
def test_a_failed_write_leaves_the_previous_bundle_untouched(failure, tmp_path, twin_bundles, monkeypatch,
                                                             yolo_model, shapes_dataset, cache):
    out = tmp_path / "release"
    shutil.copytree(twin_bundles[0], out)
    before = (out / "manifest.json").read_bytes()
    # the disk fills (or fails) while the Swift package's model resources are copied, late in the write (the build
    # runs in this process so that the patched copy is the one it uses)
    monkeypatch.setenv(IN_PROCESS, "1")
    monkeypatch.setattr(shutil, "copytree", _failing_copytree(failure))
    cfg = detector_config(yolo_model, shapes_dataset, cache / "labels.txt")
    cfg.update({"parity": {"images": 8, **NO_GATE}})
    res = _build(tmp_path, cfg, out)
    assert res.exit_code == EXIT_OUTPUT, res.output
    assert "failed" in res.output and "Fix:" in res.output
    assert (out / "manifest.json").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".release")], list(tmp_path.iterdir())


def test_an_interrupted_build_keeps_the_previous_bundle(tmp_path, twin_bundles, monkeypatch, yolo_model,
                                                        shapes_dataset, cache):
    from mobilekit.bundle.writer import BundleWriter

    out = tmp_path / "release"
    shutil.copytree(twin_bundles[0], out)
    before = (out / "manifest.json").read_bytes()

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setenv(IN_PROCESS, "1")
    monkeypatch.setattr(BundleWriter, "commit", interrupted)  # Ctrl-C just before the bundle moves into place
    cfg = detector_config(yolo_model, shapes_dataset, cache / "labels.txt")
    cfg.update({"coreml": {"enabled": False}, "parity": {"images": 4, **NO_GATE}})
    res = _build(tmp_path, cfg, out)
    assert res.exit_code == 130 and "interrupted" in res.output
    assert (out / "manifest.json").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".release")]


def _failing_copytree(code: int):
    real = shutil.copytree

    def copy(src, dst, *a, **kw):
        if "Resources" in str(dst):
            raise OSError(code, "simulated " + errno.errorcode[code])
        return real(src, dst, *a, **kw)

    return copy


def test_unwritable_output_location(tmp_path, yolo_model, shapes_dataset, cache):
    cfg = detector_config(yolo_model, shapes_dataset, cache / "labels.txt")
    cfg.update({"coreml": {"enabled": False}, "parity": {"images": 4, **NO_GATE}})
    res = _build(tmp_path, cfg, Path("/proc/mobilekit-bundle"))
    assert res.exit_code == EXIT_OUTPUT, res.output
    assert "error: /proc" in res.output and "cannot write here" in res.output and "Fix:" in res.output


def test_doctor_lists_what_the_machine_has():
    res = CliRunner().invoke(main, ["doctor", "--json"])
    assert res.exit_code == 0
    found = {c["name"]: c for c in json.loads(res.output)}
    assert found["tensorflow"]["found"] and found["coremltools"]["found"] and found["ai-edge-litert"]["found"]
    assert {"java", "kotlin compiler", "swift", "chromium"} <= set(found)
    assert "macOS" in found["Core ML runtime"]["how"]
    res = CliRunner().invoke(main, ["doctor"])
    assert res.exit_code == 0 and "mobilekit doctor" in res.output
