"""Third-party models through ``mobilekit build`` exactly as a user runs it: one YAML each, the CLI, ``--json``.

    python bench/model_zoo.py [--arch MobileNetV2 ...] [--size 96] [--no-coreml]

keras.applications architectures and third-party detectors (keras-hub's and keras-cv's RetinaNet and YOLOV8 when
installed, and a YOLOX-style head: ``tests/catalogue.py``) are built without weights (nothing is downloaded),
calibrated and evaluated on held-out halves of coco128. The table: exit code, wall time, peak RSS of the build,
per-output int8 cosine (XNNPACK kernels) against the float model, Core ML variants emulated, SDKs written, kernel
sets whose crash was contained, and the one line of a failure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import catalogue  # noqa: E402  (the third-party detectors, shared with bench/coreml_coverage.py)

COCO = ROOT.parent / "shared" / "data" / "coco128" / "images" / "train2017"
#: every keras.applications family, its smallest member (each builds without weights at a small input)
DEFAULT = ["MobileNet", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large", "EfficientNetB0", "EfficientNetV2B0",
           "ResNet50", "ResNet50V2", "DenseNet121", "NASNetMobile", "ConvNeXtTiny", "Xception", "InceptionV3",
           "VGG16"]
MIN_SIZE = {"Xception": 71, "InceptionV3": 75, "NASNetMobile": 224}
#: The gate measures and reports but does not stop the build: with random weights, top-1 and detection agreement
#: are decided by noise (near-equal scores), so the table shows every figure and which checks would fail.
PARITY = {"images": 16, "enforce": False}


def _halves(work: Path) -> None:
    """Calibration and evaluation on held-out halves of coco128 (with its YOLO labels beside the photos)."""
    photos = sorted(COCO.glob("*.jpg"))
    half = len(photos) // 2
    for name, part in (("calib", photos[:half]), ("eval", photos[half:])):
        (work / name / "images").mkdir(parents=True)
        (work / name / "labels").mkdir()
        for p in part:
            (work / name / "images" / p.name).symlink_to(p)
            label = COCO.parent.parent / "labels" / COCO.name / f"{p.stem}.txt"
            if label.is_file():
                (work / name / "labels" / label.name).symlink_to(label)


def _project(arch: str, size: int, work: Path, coreml: bool) -> Path:
    import keras

    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, arch)(weights=None, input_shape=(size, size, 3))
    model.save(work / "model.keras")
    _halves(work)
    (work / "labels.txt").write_text("\n".join(f"c{i}" for i in range(model.output.shape[-1])) + "\n")
    cfg = {"model": "model.keras", "name": arch, "task": "classification", "labels": "labels.txt",
           # keras.applications rescale inside the model: feed 0..255 pixels
           "input": {"normalization": {"scale": 1.0, "offset": 0.0}},
           "calibration": {"images": "calib/images", "count": 32}, "evaluation": {"images": "eval/images"},
           "parity": PARITY, "coreml": {"enabled": coreml}}
    path = work / "mobilekit.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _detector_project(name: str, work: Path, coreml: bool) -> Path:
    """A third-party detector as its user would hand it over: saved (.keras, or a SavedModel where the package
    cannot reload its own .keras), a YAML naming the package under ``imports:``, coco128 halves with labels."""
    import keras

    build, package, form, detection, scale = catalogue.THIRD_PARTY[name]
    keras.utils.set_random_seed(0)
    model = build()
    if form == "savedmodel":
        model.export(str(work / "model"), verbose=False)
    else:
        model.save(work / "model.keras")
    _halves(work)
    cfg = {"model": "model" if form == "savedmodel" else "model.keras", "name": name.split(" (")[0],
           "task": "detection", "labels": str(COCO.parent.parent / "names.txt"),
           **({"imports": [package]} if package != "keras" else {}),
           "input": {"normalization": {"scale": scale, "offset": 0.0}}, "detection": detection,
           "calibration": {"images": "calib/images", "format": "yolo", "count": 32},
           "evaluation": {"images": "eval/images", "format": "yolo"},
           "parity": PARITY, "coreml": {"enabled": coreml}}
    path = work / "mobilekit.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run(arch: str, size: int, coreml: bool) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"zoo-{arch.replace(' ', '-')}-"))
    cfg = (_detector_project(arch, work, coreml) if arch in catalogue.THIRD_PARTY
           else _project(arch, size, work, coreml))
    start = time.monotonic()
    # GNU time reports the largest resident set among the CLI and its worker (waited-for descendants)
    res = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(work / "rss"), sys.executable, "-m", "mobilekit",
                          "build", str(cfg), "--out", str(work / "bundle"), "--json"], capture_output=True, text=True)
    seconds = time.monotonic() - start
    rss = int((work / "rss").read_text().split()[-1]) / 1024
    out = json.loads(res.stdout) if res.stdout.strip() else {"exit_code": res.returncode, "error": "no JSON"}
    row = {"arch": arch, "size": size, "exit": res.returncode, "seconds": seconds, "rss_mb": rss}
    if out.get("ok"):
        parity = json.loads((work / "bundle" / "report" / "parity.json").read_text())
        int8 = parity["artifacts"]["tflite-int8"]["resolvers"]["xnnpack"]["tensors"]
        row["contained"] = [c.get("op") or c.get("error") or f"{c['signal']}, op not isolated"
                            for c in parity.get("kernel_crashes", [])]
        row["int8_cosine"] = {role: round(m["cosine"], 4) for role, m in int8.items()}
        manifest = out["manifest"]
        row["coreml"] = (manifest.get("coreml") or {}).get("variants", [])
        row["sdks"] = sorted({a["kind"] for a in manifest["artifacts"] if a["kind"] in ("android-sdk", "ios-sdk")})
        row["cut"] = (manifest.get("split") or {}).get("activation")
        split = manifest.get("split") or {}
        row["split"] = (f"split in {split.get('levels', 1)} level(s)" if split.get("applied") and
                        "activation" not in split else "")
        row["gate"] = sorted({f"{c['artifact']}:{c['metric'].split('.')[-1]}"
                              for c in parity["checks"] if not c["passed"]})
    else:
        failed = sorted({f"{f['artifact']}:{f['metric'].split('.')[-1]}={f['value']:.3g}"
                         for f in out.get("failures", [])})
        row["error"] = (f"checks {', '.join(failed)}: " if failed else "") + out.get("error", "")[:160]
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", nargs="*", default=DEFAULT + list(catalogue.THIRD_PARTY),
                    help="keras.applications names and the third-party detectors of tests/catalogue.py")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--no-coreml", action="store_true")
    args = ap.parse_args()
    print(f"{'model':24} {'exit':>4} {'time':>7} {'peak RSS':>9}  int8 cosine / Core ML / SDKs / or the error")
    for arch in args.arch:
        r = run(arch, max(args.size, MIN_SIZE.get(arch, 0)), not args.no_coreml)
        tail = (f"{r['int8_cosine']} {','.join(v.removeprefix('coreml-') for v in r['coreml'])} "
                f"{'+'.join(r['sdks'])}{' (softmax cut)' if r.get('cut') else ''} {r.get('split', '')}"
                f" gate: {', '.join(r['gate']) + ' below the bar' if r.get('gate') else 'passed'}"
                f"{' reference kernels contained: ' + '; '.join(r['contained']) if r.get('contained') else ''}"
                if "error" not in r else r["error"])
        print(f"{arch:24} {r['exit']:>4} {r['seconds']:6.0f}s {r['rss_mb']:7.0f}MB  {tail}", flush=True)


if __name__ == "__main__":
    main()
