"""Bench: the Android SDK's live path on the JVM, before and after it stopped allocating per pixel.

    python bench/android_live.py [--bundle DIR] [--width 640 --height 480]

Per frame (640x480 by default, upright and turned 90 degrees), from the camera's pixels to the model's input bytes:
milliseconds and bytes allocated by the converting thread (``ThreadMXBean``), for the Bitmap path as the SDK ran it
before (a new ``getPixels`` array, a boxed ``Pair`` per pixel to turn the frame, a new canvas and input array), the
Bitmap path now (buffers reused), and the CameraX ``ImageProxy`` path (YUV_420_888 planes converted and turned in
one pass). The generated Kotlin of the bundle is compiled with the real Kotlin compiler and run on this JVM: a
phone's ART and its CPU differ, so the ratios matter more than the milliseconds. CameraX's own ``toBitmap()``
(libyuv, native) that the old path needed first is not on the JVM and not counted. Without ``--bundle``, the
example bundle is built with the CLI (``mobilekit example --out build/example``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import jinja2
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_kotlin_core import classpath, kotlinc, shipped_module, stub_sources  # noqa: E402

from mobilekit.codegen.android import names  # noqa: E402
from mobilekit.contract import Contract  # noqa: E402


def bundle_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    out = ROOT / "build" / "example"
    if not (out / "contract.json").is_file():
        subprocess.run([sys.executable, "-m", "mobilekit", "example", "--out", str(out)], check=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    args = ap.parse_args()
    bundle = bundle_dir(args.bundle)
    contract = Contract.load(bundle / "contract.json")
    package, _ = names(contract)
    with tempfile.TemporaryDirectory() as tmp:
        harness = Path(tmp) / "LiveBench.kt"
        harness.write_text(jinja2.Template((ROOT / "bench" / "kotlin" / "LiveBench.kt.j2").read_text()).render(
            package=package))
        classes, _ = kotlinc(stub_sources() + sorted(shipped_module(bundle).rglob("*.kt")) + [harness])
        out = subprocess.run(["java", "-cp", classpath(classes), f"{package}.bench.LiveBench", str(args.width),
                              str(args.height)], check=True, capture_output=True, text=True).stdout
    table = Table(title=f"{args.width}x{args.height} frame → {contract.input.width}x{contract.input.height} int8 "
                        "input, per frame (JVM)")
    for col in ("turn", "path", "ms", "KB allocated"):
        table.add_column(col, justify="left" if col == "path" else "right")
    for line in out.splitlines():
        turn, name, ms, allocated, _ = line.split("|")
        table.add_row(f"{turn}°", name, f"{float(ms):.2f}", f"{int(allocated) / 1024:,.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
