"""The peak memory a TFLite artifact needs at run time, measured in a fresh child process per kernel set.

What an app pays to hold and run the model: the model's bytes (the weights), the interpreter's tensor arena, the
kernels' own buffers (XNNPACK packs every weight again in its layout; an fp16 model's weights are unpacked to
float32) and scratch. LiteRT reports none of these from Python, and the build's own process has already
allocated gigabytes whose freed pages a new interpreter would reuse, so the figure is the growth of the peak
resident set of a fresh process that loads the model, allocates its tensors and runs it: ``VmHWM`` minus the
``VmRSS`` before loading, with the peak reset after the imports (``/proc/self/clear_refs``; without ``/proc``,
the growth of ``ru_maxrss``, which cannot be reset and so can only under-state). The child imports numpy and
LiteRT only (this file runs as a script), so nothing of mobilekit or TensorFlow is in the figure.

Core ML is not measured this way: the emulator runs the MIL program in NumPy, and its peak is not what an iPhone's
Neural Engine or GPU allocates; the manifest gives the package's weight bytes and says what is not measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

#: what the manifest says of a Core ML package's memory
COREML_NOTE = ("measured: the package's weight bytes (what a device loads before compiling); not measured: run-time "
               "memory on a device (the compiled model, Neural Engine / GPU buffers): the emulator's peak is NumPy's, "
               "not a phone figure")


def _status() -> dict[str, int]:
    """VmRSS and VmHWM in bytes, from ``/proc/self/status`` (empty without ``/proc``)."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0]) * 1024
    return out


def _maxrss() -> int:
    import resource

    v = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return v if sys.platform == "darwin" else v * 1024  # bytes on macOS, KiB on Linux


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux 4.0+)
        return True
    except OSError:
        return False


def child(path: str, kernels: str, threads: int, runs: int) -> dict[str, Any]:
    """In the fresh process: load, allocate and run ``path`` on ``kernels``; the peak growth and how it was read."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from mobilekit.emulate.litert import random_inputs

    resolver = {"xnnpack": OpResolverType.AUTO, "reference": OpResolverType.BUILTIN_REF}[kernels]
    reset = _reset_peak()
    before = _status().get("VmRSS") if reset else _maxrss()
    data = Path(path).read_bytes()
    it = Interpreter(model_content=data, num_threads=threads, experimental_op_resolver_type=resolver)
    it.allocate_tensors()
    random_inputs(it)
    for _ in range(runs):
        it.invoke()
    peak = _status().get("VmHWM") if reset else _maxrss()
    return {"peak_bytes": int(peak - before), "model_bytes": len(data),
            "method": "VmHWM growth" if reset else "ru_maxrss growth (peak not resettable: a lower bound)"}


def measure(model: bytes, kernels: str = "xnnpack", threads: int = 2, runs: int = 3,
            timeout: float = 300.0) -> dict[str, Any]:
    """``{"peak_bytes", "model_bytes", "method"}`` for ``model`` on ``kernels``, from a fresh child process; a
    kernel set that cannot load or run the model gives ``{"error": ...}`` (the child's last line) instead."""
    with tempfile.TemporaryDirectory(prefix="mobilekit-memory-") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(model)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        proc = subprocess.run([sys.executable, __file__, str(path), kernels, str(threads), str(runs)],
                              capture_output=True, text=True, timeout=timeout, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return {"error": last[:200]}
    return json.loads(lines[-1])


def measure_all(model: bytes, kernel_sets: tuple[str, ...] = ("xnnpack", "reference"), threads: int = 2
                ) -> dict[str, Any]:
    """Per kernel set, the peak run-time memory of ``model`` (each in its own fresh process)."""
    return {k: measure(model, k, threads) for k in kernel_sets}


def coreml_weights(package: Path) -> dict[str, Any]:
    """A Core ML package's weight bytes and what is and is not measured."""
    weights = sum(p.stat().st_size for p in package.rglob("*") if p.is_file() and "weights" in p.parts)
    return {"weight_bytes": weights, "note": COREML_NOTE}


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
