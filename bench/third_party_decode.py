"""Bench: third-party detectors with their own decoders, through ``mobilekit init`` and ``mobilekit build`` as a
user runs them. Per model: what init picked, the decode error against the model's own decoder, and each role's
int8 cosine (against the float model, on the same images) with the split against one shared int8 scale.

    python bench/third_party_decode.py            # needs the test extra (keras-cv-attention-models)

The models are keras_cv_attention_models' YOLOX-Nano, YOLOv7-Tiny, YOLOv8-N and EfficientDet-Lite0 as
``tests/zoo.py`` builds them (no weights can be downloaded here): perturbed weights, so that every box convention
moves the boxes and every role carries signal, 128 pixels (EfficientDet 160). Each is built twice: as mobilekit
builds it (the split gives boxes, objectness and classes their own int8 scales where the graph concatenates them,
``tf.concat`` included) and with the split off, the one scale a plain ``TFLiteConverter`` gives a single output.
The cosines are per role over 8 COCO images, int8 against the bundle's float32 TFLite model. keras-cv's and
keras-hub's detectors are held to their own decoders in ``tests/test_zoo.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT.parent / "shared" / "data" / "coco128" / "images" / "train2017"
sys.path.insert(0, str(ROOT / "tests"))

import zoo  # noqa: E402  (the corpus)

#: a build with the split off, in a process that imports the zoo before TensorFlow (as the build worker does)
ONE_SCALE = """
import sys
from pathlib import Path
import keras_cv_attention_models  # noqa: F401  (legacy Keras on, before TensorFlow)
import mobilekit.models.serving as serving
serving.split_concat = lambda *a, **k: (None, {"applied": False, "reason": "one scale (bench)"})
from mobilekit.config_file import load_config
from mobilekit.pipeline import build
build(load_config(sys.argv[1]), Path(sys.argv[2]), lambda text: None, measure_latency=False)
"""


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mobilekit", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=1800)


def _pick(det: dict) -> str:
    """init's choice in a few words: the head and the conventions it read."""
    keys = ("box_order", "score_activation")
    params = det.get("params", {})
    conv = [f"{k} {det[k]}" for k in keys if k in det]
    conv += [f"{k} {', '.join(params[k]) if isinstance(params[k], list) else params[k]}"
             for k in ("box", "objectness", "sides", "anchor_order", "activated", "spacing") if k in params]
    return f"{det['head']}: {', '.join(conv)}"


def _role_cosines(bundle: Path, images: list[Path]) -> dict[str, float]:
    """Each role's cosine, int8 against float32 TFLite, over ``images`` (a single output cut into the roles the
    contract's head reads)."""
    from mobilekit.contract import Contract
    from mobilekit.data.datasets import load_image
    from mobilekit.data.preprocess import letterbox
    from mobilekit.emulate.litert import LiteRTRunner

    contract = Contract.load(bundle / "contract.json")
    runners = {k: LiteRTRunner((bundle / contract.artifacts[k].path).read_bytes(), contract.artifacts[k], contract)
               for k in ("tflite-int8", "tflite-float32")}
    acc: dict[str, list[np.ndarray]] = {}
    for path in images:
        canvas, _ = letterbox(load_image(path), contract.input.height, contract.input.width, "letterbox", 114)
        for kind, runner in runners.items():
            for role, values in _roles(runner.run(canvas), contract).items():
                acc.setdefault(f"{kind} {role}", []).append(values.ravel())
    out = {}
    for key in acc:
        if key.startswith("tflite-int8"):
            role = key.split(" ", 1)[1]
            a, b = np.concatenate(acc[key]), np.concatenate(acc[f"tflite-float32 {role}"])
            out[role] = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
    return out


def _roles(outputs: dict[str, np.ndarray], contract) -> dict[str, np.ndarray]:
    if "predictions" not in outputs:
        return {r: v for r, v in outputs.items()}
    p = outputs["predictions"][0]
    head = contract.head
    box = 4 * head.params["reg_max"] if head.format == "dfl" else 4
    if head.format == "grid":
        first = head.params["objectness"] == "first"
        obj, cls = (p[:, 4:5], p[:, 5:]) if first else (p[:, -1:], p[:, 4:-1])
        return {"boxes": p[:, :4], "objectness": obj, "scores": cls}
    return {"boxes": p[:, :box], "scores": p[:, box:]}


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    work = Path(tempfile.mkdtemp(prefix="third-party-decode-"))
    try:
        models = work / "models"
        subprocess.run([sys.executable, zoo.__file__, str(models), "--perturbed"], check=True, capture_output=True)
        images = work / "images"
        images.mkdir()
        for p in sorted(IMAGES.glob("*.jpg"))[:24]:
            shutil.copy(p, images)
        table = Table(title="Third-party detectors with their own decoders: init's pick, the decode check, and the "
                            "int8 cosine per role (split | one scale)")
        for col in ("model", "init's pick", "decode vs its decoder", "boxes", "objectness", "classes"):
            table.add_column(col, overflow="fold")
        for family in zoo.FAMILIES:
            folder = work / family
            folder.mkdir()
            res = _cli("init", str(models / f"{family}.h5"), "--images", str(images), "--import",
                       "keras_cv_attention_models", "--out", "mobilekit.yaml", cwd=folder)
            if res.returncode:
                table.add_row(family, res.stderr.strip().splitlines()[-1], "", "", "", "")
                continue
            cfg = yaml.safe_load((folder / "mobilekit.yaml").read_text())
            cfg.update({"parity": {"enforce": False, "images": 8}, "export": {"float32": True},
                        "coreml": {"enabled": False}})
            (folder / "mobilekit.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
            res = _cli("build", "mobilekit.yaml", "--out", "split", "--quiet", cwd=folder)
            if res.returncode:
                table.add_row(family, _pick(cfg["detection"]), res.stderr.strip().splitlines()[-1], "", "", "")
                continue
            subprocess.run([sys.executable, "-c", ONE_SCALE, str(folder / "mobilekit.yaml"), str(folder / "one")],
                           check=True, capture_output=True, cwd=folder)
            decode = json.loads((folder / "split" / "manifest.json").read_text())["decode"]
            sample = sorted(images.glob("*.jpg"))[:8]
            split, one = _role_cosines(folder / "split", sample), _role_cosines(folder / "one", sample)
            cells = [f"{split[r]:.3f} | {one[r]:.3f}" if r in split else "-" for r in ("boxes", "objectness",
                                                                                        "scores")]
            table.add_row(family, _pick(cfg["detection"]),
                          f"{decode['max_box_px']:.1e} px, scores {decode['max_score_diff']:.0e} "
                          f"({decode['candidates']:,} x {decode['images']})", *cells)
        Console(width=160).print(table)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
