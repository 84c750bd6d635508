"""The build, stage by stage: config → model → contract → int8/fp16 TFLite → verification → parity → bundle.

Each stage is a call into its own module with plain inputs and outputs; this file only wires them and reports
progress. The bundle is written atomically at the very end, after the parity gate, so a build that fails leaves
the previous release untouched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mobilekit import __version__
from mobilekit.bundle import sdks
from mobilekit.bundle.manifest import build_manifest
from mobilekit.bundle.writer import BundleWriter
from mobilekit.compress import data as compress_data
from mobilekit.compress.run import compress
from mobilekit.config import Config, DataSettings
from mobilekit.contract import Contract, derive_contract
from mobilekit.data.datasets import ImageRecord, list_dataset, load_image
from mobilekit.data.preprocess import ResizePlan, letterbox, normalize
from mobilekit.emulate.coreml import CoreMLEmulator, Fp16Event
from mobilekit.emulate.coreml.vision import VisionPipelineEmulator
from mobilekit.emulate.coreml.watch import summarize_fp16
from mobilekit.emulate.litert import LiteRTRunner
from mobilekit.errors import ParityError
from mobilekit.export import coreml, delegates, tflite, verify
from mobilekit.export.ane import ane_report
from mobilekit.export.vision import convert_vision
from mobilekit.models.loader import file_sha256, load_model
from mobilekit.models.serving import build_serving
from mobilekit.parity.drift import layer_drift
from mobilekit.parity.gate import Check, evaluate
from mobilekit.parity.run import measure
from mobilekit.report.html import histogram_data, render
from mobilekit.supervise import at, wrap

Step = Callable[[str], None]


@dataclass
class BuildResult:
    out: Path | None
    contract: Contract
    manifest: dict[str, Any]
    checks: list[Check] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


def safe_name(name: str) -> str:
    """File-name-safe model name (code identifiers get their own sanitizer in codegen)."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "model"


def _images(cfg: Config, ds: DataSettings, count: int, contract: Contract
            ) -> tuple[list[ImageRecord], list[np.ndarray], list[ResizePlan]]:
    folder = cfg.resolve(ds.images)
    ann = cfg.resolve(ds.annotations) if ds.annotations else None
    records = list_dataset(folder, ds.format, ann, count)
    inp = contract.input
    canvases, plans = [], []
    for r in records:
        c, p = letterbox(load_image(r.path), inp.height, inp.width, inp.resize, inp.pad_value)
        canvases.append(c)
        plans.append(p)
    return records, canvases, plans


def build(cfg: Config, out: Path, step: Step = lambda s: None, measure_latency: bool = True,
          sample_apps: bool = False) -> BuildResult:
    """Run every stage; the bundle appears at ``out`` only when all of them, and the parity gate, pass."""
    with tempfile.TemporaryDirectory(prefix="mobilekit-staging-") as staging:
        return _build(cfg, out, step, measure_latency, Path(staging), sample_apps)


def _build(cfg: Config, out: Path, step: Step, measure_latency: bool, staging: Path,
           sample_apps: bool = False) -> BuildResult:
    step("Loading model")
    model_path = cfg.resolve(cfg.model)
    loaded = load_model(model_path)
    serving = build_serving(loaded, cfg)
    contract = derive_contract(cfg, serving.input_shape, serving.input_name, serving.outputs,
                               serving.num_classes, serving.split)
    compressed = None
    int8_serving = serving
    if cfg.compression.enabled:
        images, labels = compress_data.training_set(cfg, contract)
        compressed = compress(loaded, cfg, contract, images, labels, compress_data.evaluation_set(cfg, contract),
                              staging, step)
        loaded = compressed.loaded
        serving = build_serving(loaded, cfg)
        contract = derive_contract(cfg, serving.input_shape, serving.input_name, serving.outputs,
                                   serving.num_classes, serving.split)
        int8_serving = build_serving(compressed.qat_loaded, cfg) if compressed.qat_loaded else serving
    inp = contract.input
    name = safe_name(contract.name)

    step("Reading calibration images")
    _, calib, _ = _images(cfg, cfg.calibration, cfg.calibration.count, contract)

    def calibration() -> Iterator[np.ndarray]:
        for c in calib:
            yield normalize(c, inp.scale, inp.offset, inp.color, inp.layout)

    step(f"Converting to full-integer TFLite ({len(calib)} calibration images)")
    io = cfg.export.int8_io
    int8_path = f"android/{name}_int8.tflite"
    with at("tflite-int8", "the TFLite converter"):
        int8 = tflite.convert_int8(int8_serving, calibration, io)
    integer = verify.require_full_integer(int8, io == "float32", int8_path)
    contract.artifacts["tflite-int8"] = tflite.bindings(int8, int8_serving, "tflite-int8", int8_path)
    models: dict[str, bytes] = {"tflite-int8": int8}
    if cfg.export.fp16:
        step("Converting to fp16 TFLite (GPU delegate)")
        fp16_path = f"android/{name}_fp16.tflite"
        with at("tflite-fp16", "the TFLite converter"):
            models["tflite-fp16"] = tflite.convert_fp16(serving)
        contract.artifacts["tflite-fp16"] = tflite.bindings(models["tflite-fp16"], serving, "tflite-fp16", fp16_path)
    if cfg.export.float32:
        f32_path = f"android/{name}_float32.tflite"
        with at("tflite-float32", "the TFLite converter"):
            models["tflite-float32"] = tflite.convert_float32(serving)
        contract.artifacts["tflite-float32"] = tflite.bindings(models["tflite-float32"], serving,
                                                               "tflite-float32", f32_path)

    step("Analysing delegate support")
    op_counts = {kind: integer.op_counts if kind == "tflite-int8" else verify.inspect_integer(m, True).op_counts
                 for kind, m in models.items()}
    delegate_info = {kind: delegates.delegate_report(m, op_counts[kind], integer=kind == "tflite-int8")
                     for kind, m in models.items()}

    coreml_dirs: dict[str, Path] = {}
    ane: dict[str, Any] = {}
    if cfg.coreml.enabled:
        step(f"Converting to Core ML (fp16 mlprogram, {coreml.deployment_target(cfg.coreml)})")
        with at("coreml-fp16", "coremltools"):
            base = coreml.convert(serving, contract, cfg.coreml)
        variants = {"coreml-fp16": base}
        for recipe in cfg.coreml.compression:
            step(f"Compressing Core ML weights: {recipe}")
            with at(f"coreml-{recipe}", "coremltools"):
                variants[f"coreml-{recipe}"] = coreml.compress(base, recipe, contract, cfg.coreml)
        if cfg.coreml.vision:
            step("Building the Vision-ready pipeline (decoder + NonMaximumSuppression)")
            with at("coreml-vision", "coremltools"):
                variants["coreml-vision"] = convert_vision(serving, contract, cfg.coreml,
                                                           coreml.deployment_target(cfg.coreml))
        for kind, m in variants.items():
            suffix = "" if kind == "coreml-fp16" else "_" + kind.removeprefix("coreml-")
            rel = f"ios/{name}{suffix}.mlpackage"
            coreml_dirs[kind] = coreml.save(m, staging / rel)
            contract.artifacts[kind] = (coreml.vision_artifact(rel, serving, contract) if kind == "coreml-vision"
                                        else coreml.artifact(kind, rel, serving, cfg.coreml))

    step("Measuring parity on LiteRT" + (" and the Core ML emulator" if coreml_dirs else ""))
    eval_ds = cfg.evaluation or cfg.calibration
    records, canvases, plans = _images(cfg, eval_ds, cfg.parity.images, contract)
    labelled = all(r.labelled for r in records) and contract.task == "detection"
    gt = [(r.boxes, r.classes) for r in records] if labelled else None
    runners: dict[str, dict[str, Callable]] = {}
    for kind, m in models.items():
        resolvers = ("xnnpack", "reference") if kind == "tflite-int8" else ("xnnpack",)
        runners[kind] = {r: wrap(kind, f"LiteRT {r} kernels", LiteRTRunner(m, contract.artifacts[kind], contract,
                                                                           r).run) for r in resolvers}
    fp16_events: dict[str, list[Fp16Event]] = {}
    for kind, path in coreml_dirs.items():
        if kind == "coreml-vision":
            fp16_events[kind] = []
            runners[kind] = {"emulator": wrap(kind, "the Core ML emulator", _vision_runner(
                VisionPipelineEmulator(path), contract, fp16_events[kind]))}
            continue
        emulator = CoreMLEmulator(path)
        fp16_events[kind] = []
        runners[kind] = {"emulator": wrap(kind, "the Core ML emulator", _coreml_runner(emulator, contract,
                                                                                       fp16_events[kind]))}
        if kind == "coreml-fp16":
            ane = ane_report(emulator.function)
    keep: dict[str, Any] = {}
    parity = measure(contract, canvases, plans, wrap("keras-float", "TensorFlow", serving.run), runners, gt, keep)
    checks = evaluate(parity, cfg.parity, contract.task)
    step("Finding which layers drift in int8 (quantization debugger)")
    with at("tflite-int8", "TFLite's quantization debugger"):
        parity["drift"] = layer_drift(int8_serving, calibration)
    parity["histograms"] = histogram_data(keep.get("errors", {}))
    parity["fp16_watch"] = {kind: summarize_fp16(events) for kind, events in fp16_events.items()}
    for kind, summary in parity["fp16_watch"].items():
        bad = summary["overflow_values"] + summary["nonfinite_values"]
        if not cfg.coreml.allow_fp16_overflow:
            checks.append(Check(kind, "emulator", "fp16_overflow_or_nan", float(bad), 0.0, False))
    parity["checks"] = [c.to_dict() for c in checks]

    latency: dict[str, float] = {}
    if measure_latency:
        step("Measuring LiteRT CPU latency")
        for kind, m in models.items():
            with at(kind, "LiteRT xnnpack kernels"):
                latency[kind] = LiteRTRunner(m, contract.artifacts[kind], contract, "xnnpack").latency_ms(canvases[0])

    failed = [c for c in checks if not c.passed]
    config_bytes = json.dumps({k: v for k, v in dataclasses.asdict(cfg).items() if k != "base_dir"},
                              sort_keys=True, default=str).encode()
    if failed and cfg.parity.enforce:
        drift = parity["drift"].get("drift_start") or parity["drift"].get("worst")
        raise ParityError(f"parity below the configured bar in {len(failed)} check(s)"
                          + (f"; int8 drift starts at layer {drift}" if drift else ""),
                          [c.to_dict() for c in failed], path=str(model_path),
                          fix=_parity_advice(cfg, contract, drift))

    step("Writing bundle")
    with BundleWriter(out) as w:
        for kind, m in models.items():
            w.write(contract.artifacts[kind].path, m, kind)
        for kind, path in coreml_dirs.items():
            w.write_tree(contract.artifacts[kind].path, path, "coreml")
        w.write("android/labels.txt", "\n".join(contract.labels) + "\n", "labels")
        sdks.write_android(w, contract, models)
        if coreml_dirs:
            sdks.write_ios(w, contract, coreml_dirs, coreml.deployment_target(cfg.coreml))
        if sample_apps:
            step("Writing the sample apps")
            sdks.write_sample_apps(w, cfg, contract, bool(coreml_dirs))
        if ane:
            w.write_json("report/ane.json", ane, "ane-report")
        w.write("contract.json", contract.to_json(), "contract")
        w.write_json("report/parity.json", parity, "parity-report")
        step("Writing the HTML report")
        w.write("report/index.html", render(
            contract, {"artifacts": list(w.artifacts), "latency_ms": latency, "mobilekit": __version__,
                       "compression": compressed.to_dict() if compressed else None},
            parity, {**keep, "canvases": canvases[:4], "plans": plans[:4]}), "report")
        w.write_json("report/delegates.json", delegate_info, "delegate-report")
        summary = {
            "passed": not failed,
            "enforced": cfg.parity.enforce,
            "checks": len(checks),
            "images": parity["images"],
            "worst": _worst(checks),
            **({"map50_float": parity.get("map50_float")} if "map50_float" in parity else {}),
        }
        manifest = build_manifest(
            w.artifacts,
            model={"path": str(cfg.model), "sha256": file_sha256(model_path)},
            config_sha256=hashlib.sha256(config_bytes).hexdigest(),
            parity=summary,
            verification={"tflite-int8": {"full_integer": integer.full_integer, "ops": integer.ops,
                                          "per_channel_weights": integer.per_channel_weights,
                                          "per_tensor_weights": integer.per_tensor_weights,
                                          "io_dtype": io}},
            split=contract.head.split,
            coreml={"deployment_target": coreml.deployment_target(cfg.coreml), "compute_units":
                    cfg.coreml.compute_units, "variants": sorted(coreml_dirs), "ane_likely_all": ane.get(
                        "likely_all_on_ane")} if coreml_dirs else None,
            latency_ms=latency,
            compression=compressed.to_dict() if compressed else None,
        )
        w.write_json("manifest.json", manifest, "manifest")
        w.commit()
    return BuildResult(out, contract, manifest, checks, latency)


def _parity_advice(cfg: Config, contract: Contract, drift: str | None) -> str:
    """What to try, most specific first, from what this build did."""
    tips = []
    if contract.head.split and not contract.head.split.get("applied", True):
        tips.append("keep boxes and scores as separate model outputs (one int8 scale cannot serve both)")
    if cfg.compression.prune and drift:
        tips.append(f"exclude the layer producing {drift} from pruning (compression.prune.exclude)")
    tips.append(f"calibrate on more or more representative images (calibration.count is {cfg.calibration.count})")
    if not cfg.compression.qat:
        tips.append("enable quantization-aware training (compression.qat: true)")
    return "; ".join(tips)


def _coreml_runner(emulator: CoreMLEmulator, contract: Contract, events: list[Fp16Event]) -> Callable:
    inp = contract.input

    binding = contract.artifacts["coreml-fp16"].inputs[0]

    def run(canvas: np.ndarray) -> dict[str, np.ndarray]:
        if binding.dtype == "image":  # the program applies the model's scale and bias itself
            x = _pixels(canvas, inp.color)
        else:
            x = normalize(canvas, inp.scale, inp.offset, inp.color, inp.layout)
        out = emulator.run({binding.name: x}, events)
        return {role: out[role].astype(np.float32) for role in contract.roles}

    return run


def _pixels(canvas: np.ndarray, color: str) -> np.ndarray:
    """A canvas as a Core ML image input sees it: [1, 3, H, W] float pixels in the image's channel order."""
    px = canvas[..., ::-1] if color == "BGR" else canvas
    return np.transpose(px, (2, 0, 1))[None].astype(np.float32)


def _vision_runner(emulator: VisionPipelineEmulator, contract: Contract, events: list[Fp16Event]) -> Callable:
    return lambda canvas: emulator.run(_pixels(canvas, contract.input.color), watch=events)


def _worst(checks: list[Check]) -> dict[str, float]:
    worst: dict[str, float] = {}
    for c in checks:
        key = c.metric.split(".")[-1]
        v = c.value
        if key not in worst or (v < worst[key] if c.at_least else v > worst[key]):
            worst[key] = v
    return worst
