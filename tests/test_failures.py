"""Every failure ends in one line and a documented exit code, also under ``--json``; nothing is left behind.

Each build here is the real command in its own process (``python -m mobilekit build ... --json``) with a private
``TMPDIR``, so the tests see exactly what a pipeline sees: stdout holds one JSON object and nothing else, and the
temporary directory is as it was before the build, whatever the outcome, a native crash (SIGABRT) included.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import NO_GATE, write_config

from mobilekit.errors import EXIT_BAD_INPUT, EXIT_CONVERSION, EXIT_CRASH, EXIT_INTERNAL, EXIT_OUTPUT, EXIT_PARITY
from mobilekit.process import FAULT, RUN_PREFIX


@pytest.fixture(scope="module")
def cumsum_model(tmp_path_factory) -> Path:
    """A classifier with an op that has no int8 TFLite kernel (CUMSUM): the int8 file cannot be full-integer."""
    import keras

    inp = keras.Input((96, 96, 3), name="image")
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, strides=4)(inp))
    out = keras.layers.Dense(3, activation="softmax")(keras.ops.cumsum(h, axis=-1))
    path = tmp_path_factory.mktemp("cumsum") / "cumsum.keras"
    keras.Model(inp, out).save(path)
    return path


def _config(model: Path, images: Path, labels: Path, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {"model": str(model), "name": "failing", "task": "classification", "labels": str(labels),
                           "calibration": {"images": str(images), "count": 6}, "coreml": {"enabled": False},
                           "export": {"fp16": False}, "parity": {"images": 4, **NO_GATE}}
    cfg.update(extra)
    return cfg


def _cli(args: list[str], tmp: Path, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    """Run the command as a user does, with a private TMPDIR that must be empty again afterwards."""
    tmpdir = tmp / "tmpdir"
    tmpdir.mkdir(exist_ok=True)
    res = subprocess.run([sys.executable, "-m", "mobilekit", *args], capture_output=True, text=True, timeout=900,
                         env={**os.environ, "TMPDIR": str(tmpdir), **(env or {})}, cwd=tmp)
    assert sorted(p.name for p in tmpdir.iterdir()) == [], res.stderr[-3000:]
    return res.returncode, json.loads(res.stdout), res.stderr  # the whole of stdout is one JSON object


def _last_line(stderr: str) -> str:
    return [ln for ln in stderr.splitlines() if ln.strip()][-1]


CASES = {
    # exit code → (config changes, environment, out is a file, what the line says)
    # (its fix, "write mean: [a, b, c]", has brackets: the human line must keep them as the JSON does)
    EXIT_BAD_INPUT: ({"input": {"normalization": {"mean": [1, 2], "std": [1, 1, 1]}}}, {}, False,
                     "input.normalization.mean: expected 1 or 3 numbers"),
    EXIT_PARITY: ({"parity": {"images": 4, "min_snr_db": 1000.0, "min_cosine": 0.0, "min_top1_agreement": 0.0}},
                  {}, False, "parity below the configured bar"),
    EXIT_CONVERSION: ({"model": "cumsum"}, {}, False, "not full-integer"),
    EXIT_OUTPUT: ({}, {}, True, "output path is a file"),
    EXIT_INTERNAL: ({}, {FAULT: "raise:Reading calibration images"}, False, "internal error in stage"),
    EXIT_CRASH: ({}, {FAULT: "abort:Measuring parity"}, False, "crashed natively (SIGABRT) in stage 'Measuring parity"),
}


@pytest.mark.parametrize("code", list(CASES), ids=lambda c: f"exit{c}")
def test_every_exit_code_is_one_json_object_and_one_line(code, tmp_path, classifier_model, cumsum_model,
                                                         shapes_dataset, cache):
    changes, env, out_is_file, says = CASES[code]
    model = cumsum_model if changes.get("model") == "cumsum" else classifier_model
    cfg = _config(model, shapes_dataset, cache / "labels.txt", **{k: v for k, v in changes.items() if k != "model"})
    out = tmp_path / "bundle"
    if out_is_file:
        out.write_text("not a folder")
    rc, obj, stderr = _cli(["build", str(write_config(tmp_path, cfg)), "--out", str(out), "--json"], tmp_path, env)
    assert rc == code == obj["exit_code"] and obj["ok"] is False, (obj, stderr[-2000:])
    assert says in obj["error"] and "\n" not in obj["error"]
    assert _last_line(stderr) == f"error: {obj['error']}"  # the same one line closes the human output
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".bundle")]
    assert not left and (out.is_file() if out_is_file else not out.exists()), left
    if code == EXIT_PARITY:  # the failing checks themselves, not only the summary
        assert obj["failures"] and all(set(f) >= {"artifact", "kernels", "metric", "value", "bar"}
                                       for f in obj["failures"])
        assert {f["metric"].split(".")[-1] for f in obj["failures"]} == {"snr_db"}
        assert {f["kernels"] for f in obj["failures"]} == {"xnnpack", "reference"}


@pytest.mark.slow
def test_a_crash_inside_a_kernel_names_the_artifact_and_kernels(tmp_path, classifier_model, shapes_dataset, cache):
    """A native abort while XNNPACK (what phones run) runs the int8 model is reported with that artifact and kernel
    set; the Core ML conversion's temporary packages (coremltools writes them to TMPDIR) go with the run folder."""
    cfg = _config(classifier_model, shapes_dataset, cache / "labels.txt", coreml={"enabled": True, "compression": []})
    rc, obj, _ = _cli(["build", str(write_config(tmp_path, cfg)), "--out", str(tmp_path / "b"), "--json"], tmp_path,
                      {FAULT: "abort:tflite-int8 with LiteRT xnnpack"})
    assert rc == EXIT_CRASH == obj["exit_code"], obj
    assert "in stage 'Measuring parity" in obj["error"] and "on tflite-int8 with LiteRT xnnpack kernels" in \
        obj["error"] and "last Python frame" in obj["error"], obj


@pytest.mark.slow
def test_an_abort_in_the_reference_kernels_is_contained(tmp_path, classifier_model, shapes_dataset, cache):
    """LiteRT's reference kernels run in a child: when they abort (a real SIGABRT, injected in the child), the
    build goes on, the int8 model keeps its XNNPACK parity, and the crash is said and recorded."""
    cfg = _config(classifier_model, shapes_dataset, cache / "labels.txt")
    rc, obj, stderr = _cli(["build", str(write_config(tmp_path, cfg)), "--out", str(tmp_path / "b"), "--json"],
                           tmp_path, {FAULT: "abort:tflite-int8 with LiteRT reference kernels"})
    assert rc == 0 and obj["ok"], (obj, stderr[-2000:])
    parity = json.loads((tmp_path / "b" / "report" / "parity.json").read_text())
    assert set(parity["artifacts"]["tflite-int8"]["resolvers"]) == {"xnnpack"}
    crash = parity["kernel_crashes"][0]
    assert (crash["artifact"], crash["kernels"], crash["signal"], crash["image"]) == \
        ("tflite-int8", "reference", "SIGABRT", 0), crash
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["parity"]["kernel_crashes"] == parity["kernel_crashes"]


def _workers(run_dir: Path) -> list[int]:
    """Pids of worker processes still running for ``run_dir``."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(run_dir) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.mark.slow
def test_a_killed_build_leaves_nothing_the_next_build_keeps(tmp_path, classifier_model, shapes_dataset, cache):
    """SIGKILL the CLI mid-build: its worker dies with it, and the next build into the same output removes what
    the dead build left (its run folder in TMPDIR, a bundle temp folder beside the output); a live build's temp
    folder stays. The bundle's root follows the umask like its subfolders."""
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    cfg = write_config(tmp_path, _config(classifier_model, shapes_dataset, cache / "labels.txt"))
    cmd = [sys.executable, "-m", "mobilekit", "build", str(cfg), "--out", str(tmp_path / "bundle"), "--json"]
    victim = subprocess.Popen(cmd, env={**os.environ, "TMPDIR": str(tmpdir)}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, cwd=tmp_path)
    deadline = time.monotonic() + 300
    while not (runs := list(tmpdir.glob(f"{RUN_PREFIX}*"))) or not _workers(runs[0]):
        assert time.monotonic() < deadline and victim.poll() is None, "the build never started its worker"
        time.sleep(0.2)
    time.sleep(2)  # into the build
    victim.kill()
    victim.wait()
    while _workers(runs[0]):  # the kernel ends the worker with its supervisor (PR_SET_PDEATHSIG)
        assert time.monotonic() < deadline, "the worker outlived its killed supervisor"
        time.sleep(0.2)
    assert runs[0].is_dir()  # SIGKILL: nobody could clean up
    dead = tmp_path / f".bundle.tmp-{victim.pid}-x1y2"  # as if it had died while writing the bundle
    live = tmp_path / f".bundle.tmp-{os.getpid()}-live"  # a build that is still running: not ours to remove
    for d in (dead, live):
        (d / "sub").mkdir(parents=True)
    old = os.umask(0o022)
    try:
        rc, obj, stderr = _cli(cmd[3:], tmp_path)  # asserts that TMPDIR is empty afterwards
    finally:
        os.umask(old)
    assert rc == 0 and obj["ok"], stderr[-2000:]
    assert not dead.exists() and live.is_dir()
    modes = {stat.S_IMODE(p.stat().st_mode) for p in [tmp_path / "bundle", *(tmp_path / "bundle").rglob("*")]
             if p.is_dir()}
    assert modes == {0o755}, modes


def test_a_previous_bundle_caught_mid_commit_is_restored(tmp_path):
    """A build that died between commit's two renames left the previous bundle as .<out>.old-<pid> and no <out>:
    the next build puts it back before anything else (and only sweeps what is really stale)."""
    from mobilekit.bundle.writer import BundleWriter

    dead = subprocess.Popen(["true"])
    dead.wait()
    previous = tmp_path / f".release.old-{dead.pid}"
    (previous / "android").mkdir(parents=True)
    (previous / "manifest.json").write_text("{}")
    with BundleWriter(tmp_path / "release") as w:
        assert (tmp_path / "release" / "manifest.json").read_text() == "{}" and not previous.exists()
        w.abort()
    assert (tmp_path / "release" / "manifest.json").is_file()



@pytest.mark.slow
def test_an_op_the_reference_kernels_lack_is_contained(tmp_path, shapes_dataset, cache):
    """FPN necks upsample with UpSampling2D, an int8 TILE (version 3) that LiteRT's reference kernels cannot load
    (every keras-hub and keras-cv detector): the build goes on with XNNPACK's parity and names the op."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((96, 96, 3), name="image")
    x = keras.layers.Conv2D(4, 3, strides=4, activation="relu")(inp)
    x = keras.layers.Conv2D(4, 1)(keras.layers.UpSampling2D(2)(x))
    out = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inp, out).save(tmp_path / "fpn.keras")
    cfg = _config(tmp_path / "fpn.keras", shapes_dataset, cache / "labels.txt")
    rc, obj, stderr = _cli(["build", str(write_config(tmp_path, cfg)), "--out", str(tmp_path / "b"), "--json"],
                           tmp_path)
    assert rc == 0 and obj["ok"], (obj, stderr[-2000:])
    parity = json.loads((tmp_path / "b" / "report" / "parity.json").read_text())
    assert set(parity["artifacts"]["tflite-int8"]["resolvers"]) == {"xnnpack"}
    crash = parity["kernel_crashes"][0]
    assert crash["op"] == "TILE version 3" and "Didn't find op for builtin opcode 'TILE'" in crash["error"], crash


def test_a_contained_child_that_fails_for_its_own_reasons_is_an_internal_error(tmp_path, classifier_model,
                                                                                 shapes_dataset, cache):
    """Only LiteRT refusing the model or a kernel's crash costs the reference parity; any other error of the child
    (here an injected exception) is not passed off as the kernels' and ends the build as an internal error."""
    cfg = _config(classifier_model, shapes_dataset, cache / "labels.txt")
    rc, obj, _ = _cli(["build", str(write_config(tmp_path, cfg)), "--out", str(tmp_path / "b"), "--json"], tmp_path,
                      {FAULT: "raise:tflite-int8 with LiteRT reference kernels"})
    assert rc == EXIT_INTERNAL == obj["exit_code"], obj
    assert "contained LiteRT reference child failed" in obj["error"] and "fault injected" in obj["error"], obj
