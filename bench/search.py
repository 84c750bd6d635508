"""Bench: `mobilekit search` on a detector, against the build a user runs by hand (the config as written).

``--case coco128``: bench/quantization.py's coco128 MobileNetV2(alpha 0.5)-YOLO model (trained once on 96 images and
cached in ``--work``, about 40 minutes on 2 quiet cores). ``--case example``: ``mobilekit example``'s shapes detector
(trained in a minute; calibrated on 100 images, evaluated on 64 others).

The default recipe (no pruning, full-int8, 6-bit palettized Core ML) is built first, as a user would build it; the
budgets are then set from it so that it misses them: the Android int8 model at most
``--size-fraction`` of the default's size, and the task metric (COCO mAP@0.5:0.95, worst shipped model, against
the labels) at most ``--max-drop`` points below the original float model. The search then runs ``--trials`` real
builds through the CLI (``mobilekit search CONFIG --out DIR --json``) over prune ratio, palettization bits,
selective precision and the calibration method.

mAP is measured on the 96 images the detector was trained and calibrated on: trained from scratch on 96 images it
does not generalize (held-out float mAP is ~0, bench/quantization.py), so held-out drops would say nothing; every
recipe is measured on the same images, so they compare with each other fairly.

    python bench/search.py --case coco128 --work /tmp/mk-bench-q --trials 10 --workers 1
    # the iOS route: a Core ML size budget, the shipped Core ML recipe searched
    python bench/search.py --case coco128 --work /tmp/mk-bench-q --trials 8 --size-of coreml_kb --size-fraction 0.9 \
        --prune 0 --calibrations mse --max-drop 4 --objectives drop int8_kb coreml_kb \
        --coreml-recipes palettize6 palettize8 palettize4 palettize4_grouped palettize_mixed46
    python bench/search.py --case example --work /tmp/mk-bench-search --trials 10 --workers 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

SPACE = {"prune_ratio": [0.0, 0.2, 0.35, 0.5], "palettize_bits": [4, 6, 8], "max_float_ops": [0, 4],
         "calibration": ["mse", "minmax"]}


def example_config(work: Path, distill_epochs: int) -> dict[str, Any]:
    """The example project's config (its model, images and labels made once in ``work``), paths absolute."""
    from mobilekit.example.project import make_example

    path = make_example(work / "example")
    cfg = yaml.safe_load(path.read_text())
    for section in ("calibration", "evaluation"):
        cfg[section]["images"] = str(path.parent / cfg[section]["images"])
    cfg["model"], cfg["labels"] = str(path.parent / cfg["model"]), str(path.parent / cfg["labels"])
    cfg["compression"] = {"distill": {"epochs": distill_epochs, "label_weight": 0.5}}
    return cfg


def config(work: Path, distill_epochs: int) -> dict[str, Any]:
    from quantization import COCO, COCO_EPOCHS, coco_split, train_coco

    model = train_coco(work, COCO_EPOCHS)
    train_dir, _ = coco_split(work)
    names = [n for n in (COCO / "names.txt").read_text().split("\n") if n.strip()]
    (work / "coco_labels.txt").write_text("\n".join(names) + "\n")
    return {"model": str(model), "name": "Coco128Detector", "task": "detection",
            "labels": str(work / "coco_labels.txt"),
            "input": {"normalization": {"mean": [127.5] * 3, "std": [127.5] * 3}},
            "detection": {"head": "yolo", "score_threshold": 0.05, "iou_threshold": 0.5, "max_detections": 100},
            "calibration": {"images": str(train_dir), "format": "yolo", "count": 96},
            "evaluation": {"images": str(train_dir), "format": "yolo", "count": 96},
            "parity": {"images": 96, "min_cosine": 0.9, "min_snr_db": 5.0, "min_detection_recall": 0.5,
                       "min_detection_precision": 0.5, "max_map50_drop": 100.0},
            "coreml": {"compression": ["palettize6"]},
            "compression": {"distill": {"epochs": distill_epochs, "label_weight": 0.5}}}


def _cli(*args: str) -> tuple[int, dict[str, Any], float]:
    start = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "mobilekit", *args, "--json"], capture_output=True, text=True)
    lines = res.stdout.strip().splitlines()
    if not lines:
        raise SystemExit(f"mobilekit {' '.join(args)} printed nothing:\n{res.stderr[-3000:]}")
    return res.returncode, json.loads(lines[-1]), time.monotonic() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", choices=["coco128", "example"], default="coco128")
    ap.add_argument("--work", type=Path, default=Path("/tmp/mk-bench-q"))
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--size-fraction", type=float, default=0.8)
    ap.add_argument("--size-of", choices=["int8_kb", "coreml_kb"], default="int8_kb",
                    help="the model the size budget is on: the Android int8 one or the iOS package")
    ap.add_argument("--prune", type=float, nargs="+", default=SPACE["prune_ratio"], help="prune ratios to try")
    ap.add_argument("--coreml-recipes", nargs="+",
                    help="search the shipped Core ML recipe among these (coreml_recipe) instead of palettize_bits")
    ap.add_argument("--calibrations", nargs="+", default=SPACE["calibration"])
    ap.add_argument("--max-drop", type=float, default=6.0)
    ap.add_argument("--distill-epochs", type=int, default=20)
    ap.add_argument("--objectives", nargs="+", default=["drop", "int8_kb", "cpu_ms"],
                    help="drop cpu_ms when the machine is busy: latency is measured inside each build")
    args = ap.parse_args()
    folder = args.work / f"search-{args.case}"
    folder.mkdir(parents=True, exist_ok=True)
    cfg = (config if args.case == "coco128" else example_config)(args.work, args.distill_epochs)
    # the build by hand: measured, never stopped by the gate (the search counts the gate as a constraint)
    by_hand = {**cfg, "parity": {**cfg["parity"], "enforce": False}}
    (folder / "default.yaml").write_text(yaml.safe_dump(by_hand, sort_keys=False))
    code, built, seconds = _cli("build", str(folder / "default.yaml"), "--out", str(folder / "default-bundle"))
    if code != 0:
        raise SystemExit(f"the default build failed: {built['error']}")
    m = built["manifest"]
    int8 = next(a["size"] for a in m["artifacts"] if a["kind"] == "tflite-int8") / 1024
    ios = sum(a["size"] for a in m["artifacts"]  # the package under ios/ (the SDK holds a copy of it)
              if a["kind"] == "coreml" and a["path"].endswith("_palettize6.mlpackage")) / 1024
    size = int8 if args.size_of == "int8_kb" else ios
    budgets = {f"max_{args.size_of}": round(args.size_fraction * size, 1), "max_drop": args.max_drop}
    print(f"default build (by hand): {seconds:.0f} s, int8 {int8:.1f} KiB, Core ML {ios:.1f} KiB, "
          f"CPU {m['latency_ms']['tflite-int8']:.2f} ms"
          f", float mAP@0.5:0.95 {m['parity']['map50_95_float']:.2f}; budgets {budgets}", flush=True)
    space: dict[str, Any] = {**SPACE, "prune_ratio": args.prune, "calibration": args.calibrations}
    if args.coreml_recipes:
        del space["palettize_bits"]
        space["coreml_recipe"] = args.coreml_recipes
    as_written = {"prune_ratio": [0.0], "calibration": ["mse"]}  # what the bench's configs already have
    space = {k: v for k, v in space.items() if as_written.get(k) != v}
    search = {"space": space, "budgets": budgets, "objectives": args.objectives, "trials": args.trials}
    (folder / "mobilekit.yaml").write_text(yaml.safe_dump({**cfg, "search": search}, sort_keys=False))
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "mobilekit", "search", str(folder / "mobilekit.yaml"), "--out",
                           str(folder / "study"), "--trials", str(args.trials), "--workers", str(args.workers)])
    print(f"search: exit {proc.returncode}, {time.monotonic() - start:.0f} s for {args.trials} trials on "
          f"{args.workers} worker(s); table above, plot in {folder / 'study' / 'search.html'}")


if __name__ == "__main__":
    main()
