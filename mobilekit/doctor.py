"""``mobilekit doctor``: what this machine can do — converters and runtimes, and the compilers the SDK checks need —
with how to get what is missing."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from importlib import metadata


@dataclass
class Check:
    name: str
    found: str | None  # version or path; None when missing
    needed_for: str
    how: str


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _run(cmd: list[str]) -> str | None:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (res.stdout + res.stderr).strip().splitlines()
    return text[0] if res.returncode == 0 and text else None


def swift_path() -> str | None:
    return shutil.which("swift") or ("/opt/swift/usr/bin/swift" if os.path.exists("/opt/swift/usr/bin/swift")
                                     else None)


def kotlin_jar() -> str | None:
    jars = os.path.join(sysconfig.get_paths()["purelib"], "run_kotlin_kernel", "jars")
    found = glob.glob(os.path.join(jars, "kotlin-jupyter-kernel-*-all.jar"))
    return found[0] if found else None


def checks() -> list[Check]:
    out = []
    for pkg, use in (("tensorflow", "loading models, TFLite conversion"), ("tf-keras", "compression stages (tfmot)"),
                     ("tensorflow-model-optimization", "sparsity, clustering, QAT"),
                     ("coremltools", "Core ML conversion and compression"), ("ai-edge-litert", "LiteRT parity runs"),
                     ("matplotlib", "the HTML report's plots")):
        out.append(Check(pkg, _version(pkg), use, f"pip install {pkg}  (or pip install -e .)"))
    java = _run(["java", "-version"]) if shutil.which("java") else None
    out.append(Check("java", java, "Kotlin SDK checks", "install a JDK 17 (Debian: apt-get install openjdk-17-jdk)"))
    jar = kotlin_jar()
    out.append(Check("kotlin compiler", os.path.basename(jar) if jar else None, "Kotlin SDK checks",
                     "pip install kotlin-jupyter-kernel  (ships the Kotlin 2 compiler)"))
    swift = swift_path()
    out.append(Check("swift", _run([swift, "--version"]) if swift else None, "Swift SDK checks",
                     "install a Swift 6 toolchain for Linux from swift.org (e.g. into /opt/swift)"))
    chromium = next((c for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None)
    out.append(Check("chromium", chromium, "the report's browser test",
                     "Debian: apt-get install chromium"))
    out.append(Check("Core ML runtime", None, "running .mlpackage models natively",
                     "only on macOS/iOS; here mobilekit runs them in its Core ML emulator"))
    return out
