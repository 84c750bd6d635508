"""The build as an ordered list of stages on one typed state.

load → decode check → compress → calibration → TFLite → delegates → Core ML → parity → drift → latency → gate →
bundle. Each stage is a small function of :class:`BuildState` with its own progress label and a condition for
running; :data:`STAGES` is the order. A new stage (a quantization search, a sharded parity runner) is one function
and one entry in the list: it reads what earlier stages left on the state and leaves its own result there. The
contract is derived from the served model, then completed by each exporter's artifact bindings
(:meth:`BuildState.add`). The bundle is written atomically at the very end, after the parity gate, so a build that
fails leaves the previous release untouched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mobilekit import __version__
from mobilekit.bundle import sdks
from mobilekit.bundle.manifest import build_manifest
from mobilekit.bundle.result import BuildResult
from mobilekit.bundle.writer import BundleWriter, digest
from mobilekit.bundle.writer import sha256 as writer_sha256
from mobilekit.compress import data as compress_data
from mobilekit.compress.run import Compressed, compress, teacher_copy
from mobilekit.config import Config, DataSettings
from mobilekit.contract import ArtifactSpec, Contract, Identity
from mobilekit.data.datasets import ImageRecord, list_dataset
from mobilekit.data.preprocess import ResizePlan, normalize
from mobilekit.derive import derive_contract, plan
from mobilekit.emulate import memory
from mobilekit.emulate.coreml import CoreMLEmulator, Fp16Event
from mobilekit.emulate.coreml.runtime import require_supported
from mobilekit.emulate.coreml.watch import summarize_fp16
from mobilekit.emulate.litert import LiteRTRunner, interleaved_latency_ms, outside_xnnpack
from mobilekit.emulate.litert_contained import KernelCrash
from mobilekit.emulate.profile import op_counts, profile
from mobilekit.errors import ParityError
from mobilekit.export import coreml, delegates, tflite, verify
from mobilekit.export.ane import ane_report
from mobilekit.export.vision import convert_vision
from mobilekit.kinds import Kind, coreml_variant
from mobilekit.models import xnnpack_rewrite
from mobilekit.models.loader import LoadedModel, file_sha256, load_model
from mobilekit.models.plugins import import_modules
from mobilekit.models.serving import Serving, bound_roles, build_serving, serving_shapes
from mobilekit.parity import decode as decode_check
from mobilekit.parity.decode import DecodeCheck, Sample
from mobilekit.parity.drift import layer_drift
from mobilekit.parity.gate import Check, evaluate
from mobilekit.parity.run import ParityAcc, ParityReport, Samples
from mobilekit.process import at
from mobilekit.quantize import ptq, selective, weights
from mobilekit.quantize.selective import Selection
from mobilekit.references import resolve as resolve_reference
from mobilekit.report.html import histogram_data, render
from mobilekit.run import pool
from mobilekit.run.pool import threads_per_worker
from mobilekit.run.shards import ParityJob, letterboxed

Step = Callable[[str], None]


@dataclass
class BuildState:
    """What the stages share: the inputs, then each stage's results in the order the stages produce them."""

    cfg: Config
    out: Path
    staging: Path
    step: Step
    measure_latency: bool = True
    sample_apps: bool = False
    progress: Step = lambda text: None  # a stage's own progress lines (parity's images done, ETA)
    workers: int = 1  # parity's local worker processes (1: in this process)
    ray: str | None = None  # a Ray cluster's address for parity's shards (``auto``: this machine's)
    loaded: LoadedModel | None = None
    serving: Serving | None = None  # the float model every artifact is measured against
    int8_serving: Serving | None = None  # what the int8 converter reads (the QAT model after QAT)
    int8_loaded: LoadedModel | None = None  # the model with its activations rewritten for XNNPACK's int8 kernels
    plain_int8_serving: Serving | None = None  # the int8 graph without the rewrite, when the rewrite is measured
    rewrite: dict[str, Any] = field(default_factory=dict)  # what the XNNPACK rewrite did, for the manifest
    contract: Contract | None = None
    compressed: Compressed | None = None
    calibration: list[np.ndarray] = field(default_factory=list)  # letterboxed canvases
    calibration_paths: set[Path] = field(default_factory=set)  # their files, to tell a held-out evaluation set
    calibration_plans: list[ResizePlan] = field(default_factory=list)
    calibration_truth: list[tuple[np.ndarray, np.ndarray]] | None = None  # labels, when every image has them
    calibrated: bytes | None = None  # the float TFLite model with its chosen activation ranges
    selection: Selection | None = None
    selection_metric: Callable[[bytes], float] | None = None  # the task metric on the calibration images
    weight_prep: dict[str, Any] = field(default_factory=dict)  # what equalization / AdaRound / bias correction did
    drift: dict[str, Any] = field(default_factory=dict)  # the quantization debugger's per-layer int8 error
    models: dict[str, bytes] = field(default_factory=dict)  # TFLite artifact kind -> flatbuffer
    integer: verify.IntegerReport | None = None
    delegates: dict[str, Any] = field(default_factory=dict)
    coreml_dirs: dict[str, Path] = field(default_factory=dict)  # Core ML artifact kind -> staged .mlpackage
    ane: dict[str, Any] = field(default_factory=dict)
    parity: ParityReport | None = None
    decode: DecodeCheck | None = None  # the decode held to the model's own decoder (detectors)
    samples: Samples = field(default_factory=Samples)  # the first evaluation images, what the report draws
    fp16_events: dict[str, list[Fp16Event]] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    latency: dict[str, float] = field(default_factory=dict)
    outside_xnnpack: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> op -> count, when any
    op_profiles: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> per-op CPU time summary
    memory: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> peak run-time memory per kernel set
    kernel_crashes: list[KernelCrash] = field(default_factory=list)  # contained kernel sets that aborted
    result: BuildResult | None = None

    @property
    def name(self) -> str:
        return safe_name(self.contract.name)

    def add(self, kind: str, spec: ArtifactSpec) -> None:
        """An exporter's artifact joins the contract: its path and tensor bindings, which the SDKs read."""
        self.contract.artifacts[kind] = spec

    def calibration_inputs(self) -> Iterator[np.ndarray]:
        inp = self.contract.input
        for c in self.calibration:
            yield normalize(c, inp.scale, inp.offset, inp.color, inp.layout)


@dataclass(frozen=True)
class Stage:
    """One step of the build: ``run`` when ``when`` holds, announced by ``label`` (text, or made from the state).

    ``reads`` and ``writes`` name the :class:`BuildState` fields the stage uses (space-separated), so the table
    below shows the data flow; ``tests/test_structure.py`` checks them against what the code touches."""

    name: str
    run: Callable[[BuildState], None]
    label: str | Callable[[BuildState], str] | None = None  # None: the stage announces its own steps
    when: Callable[[BuildState], bool] = lambda st: True
    reads: str = ""
    writes: str = ""


def safe_name(name: str) -> str:
    """File-name-safe model name (code identifiers get their own sanitizer in codegen)."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "model"


def _images(cfg: Config, ds: DataSettings, count: int, contract: Contract
            ) -> tuple[list[ImageRecord], list[np.ndarray], list[ResizePlan]]:
    records = _records(cfg, ds, count)
    return records, *letterboxed(records, contract)


def _records(cfg: Config, ds: DataSettings, count: int) -> list[ImageRecord]:
    return list_dataset(cfg.resolve(ds.images), ds.format, cfg.resolve(ds.annotations) if ds.annotations else None,
                        count)


def _serve(st: BuildState, loaded: LoadedModel, cut: bool = True) -> None:
    """The served form of ``loaded`` and the contract derived from it (once per model)."""
    st.loaded = loaded
    st.serving = build_serving(loaded, plan(st.cfg, loaded), cut)
    s = st.serving
    st.contract = derive_contract(st.cfg, s.input_shape, s.input_name, s.outputs, s.num_classes, s.split)


def load(st: BuildState) -> None:
    # custom layers register before the model loads
    import_modules(st.cfg.imports, [st.cfg.base_dir, *st.cfg.import_dirs], st.cfg.base_dir / "mobilekit.yaml")
    _serve(st, load_model(st.cfg.resolve(st.cfg.model)))
    st.int8_serving = st.serving


#: evaluation images the decode check decodes both ways (every candidate of each)
DECODE_IMAGES = 8


def check_decode(st: BuildState) -> None:
    """mobilekit's decode against the model's own decoder (``detection.reference``) on the float outputs of the
    first evaluation images; exit 3 when they differ (unless ``parity.enforce`` is off), naming the setting that
    matches. Before any conversion: a wrong decode fails in seconds, not after minutes of artifacts."""
    cfg, det = st.cfg, st.cfg.detection
    if det.reference is None:
        st.decode = DecodeCheck(None)
        return
    name, reference = resolve_reference(det.reference, st.loaded.keras_model)
    records = _records(cfg, cfg.evaluation or cfg.calibration, min(cfg.parity.images, DECODE_IMAGES))
    canvases, _ = letterboxed(records, st.contract)
    inp, s = st.contract.input, st.serving
    bound = serving_shapes(st.loaded, st.contract)  # measured once (it runs the model): every alternative binds these
    own = bound_roles(st.loaded, st.contract, bound)  # None: per-level maps, decoded as the build joins them

    def contract_for(c: Config) -> Contract:
        outputs, classes = bound_roles(st.loaded, plan(c, st.loaded), bound) if own else (s.outputs, s.num_classes)
        return derive_contract(c, s.input_shape, s.input_name, outputs, classes, {})

    samples = []
    for canvas in canvases:
        x = normalize(canvas, inp.scale, inp.offset, inp.color, inp.layout)
        raw = st.loaded.run(x)
        roles = {o.role: raw[o.source] for o in own[0]} if own else s.run(x)
        samples.append(Sample(list(raw.values()), roles))
    st.decode = decode_check.run(cfg, contract_for(cfg), contract_for, name, reference, samples)
    if not st.decode.passed and cfg.parity.enforce:
        what, fix = decode_check.failure_line(st.decode)
        d = st.decode
        checks = [Check("decode", "float outputs", "max_box_px", d.max_box_px, decode_check.MAX_BOX_PX, False),
                  Check("decode", "float outputs", "max_score_diff", d.max_score_diff, decode_check.MAX_SCORE_DIFF,
                        False)]
        raise ParityError(what, [c.to_dict() for c in checks if not c.passed], path=str(cfg.resolve(cfg.model)),
                          fix=fix)


def compress_model(st: BuildState) -> None:
    """Compression stages (their own progress steps); the float reference becomes the compressed model."""
    images, labels = compress_data.training_set(st.cfg, st.contract)
    st.compressed = compress(st.loaded, st.cfg, st.contract, images, labels,
                             compress_data.evaluation_set(st.cfg, st.contract), st.staging, st.step)
    _serve(st, st.compressed.loaded)
    qat = st.compressed.qat_loaded
    st.int8_serving = build_serving(qat, st.contract) if qat else st.serving
    if st.int8_serving.split.get("activation") != st.serving.split.get("activation"):
        # QAT wraps the final layer, so its activation cannot be cut there: keep it in every graph, so the
        # contract (and every SDK) and the int8 model agree on what the output is
        _serve(st, st.compressed.loaded, cut=False)
        st.int8_serving = build_serving(qat, st.contract, cut=False)


def read_calibration(st: BuildState) -> None:
    records, st.calibration, st.calibration_plans = _images(st.cfg, st.cfg.calibration, st.cfg.calibration.count,
                                                            st.contract)
    st.calibration_paths = {Path(r.path).resolve() for r in records}
    st.calibration_truth = _truth(records, st.contract)


def _truth(records: list[ImageRecord], contract: Contract) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Per image (boxes, classes) when every image is labelled: a detector's YOLO/COCO labels, or a classifier's
    class folders (``<label>/image.jpg``, the folder named as a label)."""
    if contract.task == "detection":
        return [(r.boxes, r.classes) for r in records] if all(r.labelled for r in records) else None
    ids = compress_data.class_labels(records, contract) if records else None
    return None if ids is None else [(np.zeros((0, 4)), np.array([i])) for i in ids]


def _rewritable(st: BuildState) -> bool:
    """The rewrite runs when it is on, the int8 graph is the user's Keras model (not QAT's) and it has an
    activation a rewrite serves."""
    model = st.loaded.keras_model if st.loaded else None
    return (st.cfg.quantization.xnnpack_rewrite != "off" and model is not None and st.int8_serving is st.serving
            and any(h.rewrite for h in xnnpack_rewrite.find(model)))


def _rewrite_label(st: BuildState) -> str:
    hits = xnnpack_rewrite.find(st.loaded.keras_model)
    return f"Rewriting activations for XNNPACK's int8 kernels (int8 graph only): {xnnpack_rewrite.summary(hits)}"


#: the largest difference, relative to the output's range, a rewrite may make in float (float32 rounding)
REWRITE_TOLERANCE = 1e-4


def rewrite_for_xnnpack(st: BuildState) -> None:
    """The int8 graph with each activation XNNPACK's int8 kernels do not take replaced by an exact form they take
    (:mod:`mobilekit.models.xnnpack_rewrite`); the float reference and every float artifact keep the user's
    graph. The rewritten graph is held to the original on a calibration image: a difference above float rounding
    keeps the original (said in the manifest)."""
    model = st.loaded.keras_model
    st.rewrite = {"applied": False, "mode": st.cfg.quantization.xnnpack_rewrite,
                  "layers": [h.to_dict() for h in xnnpack_rewrite.find(model)]}
    try:
        done = xnnpack_rewrite.rewrite(model, st.loaded.keras_module)
        loaded = dataclasses.replace(st.loaded, keras_model=done.model)
        serving = build_serving(loaded, st.contract) if done.model is not None else None
    except Exception as e:  # an optimization: a graph it cannot rebuild keeps the user's, and the manifest says why
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        st.rewrite["reason"] = f"the rewrite could not rebuild this graph ({type(e).__name__}: {first}): kept as it is"
        return
    st.rewrite["layers"] = [h.to_dict() for h in done.hits]
    if serving is None:
        st.rewrite["reason"] = done.skipped or "no activation a rewrite serves"
        return
    x = next(iter(st.calibration_inputs()))
    ref, got = st.serving.run(x), serving.run(x)
    diff = max(float(np.max(np.abs(ref[r] - got[r]))) / max(1.0, float(np.max(np.abs(ref[r])))) for r in ref)
    st.rewrite["float_difference"] = diff
    if diff > REWRITE_TOLERANCE:
        st.rewrite["reason"] = f"the rewritten graph differs from the original by {diff:.2g} in float: kept as it is"
        return
    st.int8_loaded, st.int8_serving = loaded, serving
    st.plain_int8_serving = st.serving if st.cfg.quantization.xnnpack_rewrite == "measured" else None
    st.rewrite.update(applied=True, summary=xnnpack_rewrite.summary(done.hits),
                      reason="XNNPACK's int8 kernels do not take these activations' ops: each runs in LiteRT's "
                             "built-in code, cut out of the delegate; the forms are exact in float and run on XNNPACK")


def prepare_int8_weights(st: BuildState) -> None:
    """Equalization, AdaRound and bias correction on a copy of the weights the int8 converter reads; the float
    reference and every float artifact keep the user's weights (restored after the int8 graph is frozen)."""
    q, model = st.cfg.quantization, st.loaded.keras_model
    if model is None or (st.int8_serving is not st.serving and st.int8_loaded is None):
        why = "a SavedModel has no Keras layers" if model is None else "QAT learned its own int8 weights"
        st.weight_prep = {"skipped": why}
        return
    saved = model.get_weights()
    ada = {"images": q.adaround_images, "iterations": q.adaround_iterations} if q.adaround else None
    try:
        with at(Kind.TFLITE_INT8, "int8 weight preparation"):
            st.weight_prep = weights.prepare(model, q.equalize, q.bias_correction, ada, st.calibration_inputs,
                                             st.step)
            if st.int8_loaded is not None:  # rewritten again: a built-in activation's twin copies its weights
                st.int8_loaded = dataclasses.replace(st.loaded, keras_model=xnnpack_rewrite.rewrite(
                    model, st.loaded.keras_module).model)
                st.plain_int8_serving = build_serving(st.loaded, st.contract) if st.plain_int8_serving else None
            st.int8_serving = build_serving(st.int8_loaded or st.loaded, st.contract)
    finally:
        model.set_weights(saved)


def export_int8(st: BuildState) -> None:
    io = st.cfg.export.int8_io
    path = f"android/{st.name}_int8.tflite"
    with at(Kind.TFLITE_INT8, "the TFLite converter"):
        model, st.calibrated = ptq.convert_int8(st.int8_serving, st.calibration_inputs, io,
                                                st.cfg.quantization.calibration)
        if st.rewrite.get("applied"):
            model = _measure_rewrite(st, model)
    st.integer = verify.require_full_integer(model, io == "float32", path)
    st.add(Kind.TFLITE_INT8, tflite.bindings(model, st.int8_serving, Kind.TFLITE_INT8, path))
    st.models[Kind.TFLITE_INT8] = model


def _measure_rewrite(st: BuildState, rewritten: bytes) -> bytes:
    """What the rewrite did to the int8 model: its ops outside XNNPACK, and (``measured``) the original graph's
    int8 model converted too and both timed on LiteRT XNNPACK (2 threads, interleaved): the faster is kept."""
    st.rewrite["outside_xnnpack"] = {"rewritten": outside_xnnpack(rewritten)}
    if st.plain_int8_serving is None:
        st.rewrite["kept"] = "rewritten"
        return rewritten
    plain, calibrated = ptq.convert_int8(st.plain_int8_serving, st.calibration_inputs, st.cfg.export.int8_io,
                                         st.cfg.quantization.calibration)
    st.rewrite["outside_xnnpack"]["original"] = outside_xnnpack(plain)
    ms = interleaved_latency_ms({"rewritten": rewritten, "original": plain})
    st.rewrite["latency_ms"] = ms
    if ms["rewritten"] <= ms["original"]:
        st.rewrite["kept"] = "rewritten"
        return rewritten
    st.rewrite.update(kept="original", applied=False,
                      reason=f"measured slower than the original graph ({ms['rewritten']:.2f} ms against "
                             f"{ms['original']:.2f} ms, LiteRT XNNPACK, 2 threads): the int8 model keeps it")
    st.int8_serving, st.int8_loaded, st.calibrated = st.plain_int8_serving, None, calibrated
    return plain


def select_precision(st: BuildState) -> None:
    """Accuracy-aware selective precision (``quantization.max_drop``): a separate ``tflite-int8-mixed`` artifact
    with the fewest float ops that bring the drop within the bar, when full-int8 misses it."""
    q, io = st.cfg.quantization, st.cfg.export.int8_io
    with at(Kind.TFLITE_INT8, "TFLite's quantization debugger"):
        st.drift = layer_drift(st.int8_serving, st.calibration_inputs, calibrated=st.calibrated)

    def runner_for(model: bytes) -> Callable:
        spec = tflite.bindings(model, st.int8_serving, Kind.TFLITE_INT8_MIXED, "")
        return LiteRTRunner(model, spec, st.contract).run

    name, metric, flt, interval = selective.task_metric(st.contract, st.calibration, st.calibration_plans,
                                                        st.calibration_truth, st.serving.run, runner_for)
    st.selection_metric = metric
    with at(Kind.TFLITE_INT8_MIXED, "the TFLite quantizer"):
        st.selection, model = selective.select(st.calibrated, io, st.drift["layers"], metric, flt,
                                               metric(st.models[Kind.TFLITE_INT8]), q.max_drop, q.max_float_ops,
                                               name, st.step)
        st.selection.int8_interval = interval(st.models[Kind.TFLITE_INT8])
    if model is not None:
        path = f"android/{st.name}_int8_mixed.tflite"
        st.add(Kind.TFLITE_INT8_MIXED, tflite.bindings(model, st.int8_serving, Kind.TFLITE_INT8_MIXED, path))
        st.models[Kind.TFLITE_INT8_MIXED] = model


def qat_on_demand(st: BuildState) -> None:
    """Quantization-aware training when PTQ and selective precision both miss ``quantization.max_drop``: the
    compression QAT stage on a copy of the model (the float reference stays the user's), exported as a separate
    ``tflite-int8-qat`` artifact that parity measures beside them; what it reached on the calibration images goes
    beside the selection."""
    from mobilekit.config import QatSettings
    from mobilekit.models.loader import from_keras

    if st.loaded.keras_model is None:
        st.selection.qat = {"skipped": "a SavedModel has no Keras layers to train"}
        return
    cfg = dataclasses.replace(st.cfg, compression=dataclasses.replace(
        st.cfg.compression, prune=None, sparsity=None, cluster=None, qat=QatSettings()))
    kind = st.loaded.kind if st.loaded.kind == "tf_keras" else "keras3"
    student = from_keras(st.loaded.path, teacher_copy(st.loaded, kind), kind)
    images, labels = compress_data.training_set(cfg, st.contract)
    done = compress(student, cfg, st.contract, images, labels, compress_data.evaluation_set(cfg, st.contract),
                    st.staging, st.step)
    serving = build_serving(done.qat_loaded, st.contract)
    if serving.split.get("activation") != st.serving.split.get("activation"):
        st.selection.qat = {"skipped": "QAT keeps the classifier's final activation, which the contract cuts; "
                                       "use compression.qat, which builds the whole bundle around it"}
        return
    path = f"android/{st.name}_int8_qat.tflite"
    with at(Kind.TFLITE_INT8_QAT, "the TFLite converter"):
        model, _ = ptq.convert_int8(serving, st.calibration_inputs, st.cfg.export.int8_io,
                                    st.cfg.quantization.calibration)
    verify.require_full_integer(model, st.cfg.export.int8_io == "float32", path)
    got = st.selection_metric(model)
    st.selection.qat = {"metric": got, "drop": st.selection.float_metric - got,
                        "met": st.selection.float_metric - got <= st.cfg.quantization.max_drop}
    st.add(Kind.TFLITE_INT8_QAT, tflite.bindings(model, serving, Kind.TFLITE_INT8_QAT, path))
    st.models[Kind.TFLITE_INT8_QAT] = model


def _export_float(st: BuildState, kind: str, convert: Callable[[Serving], bytes]) -> None:
    path = f"android/{st.name}_{kind.removeprefix('tflite-')}.tflite"
    with at(kind, "the TFLite converter"):
        st.models[kind] = convert(st.serving)
    st.add(kind, tflite.bindings(st.models[kind], st.serving, kind, path))


def export_fp16(st: BuildState) -> None:
    _export_float(st, Kind.TFLITE_FP16, tflite.convert_fp16)


def export_float32(st: BuildState) -> None:
    _export_float(st, Kind.TFLITE_FLOAT32, tflite.convert_float32)


def delegate_support(st: BuildState) -> None:
    for kind, m in st.models.items():
        counts = st.integer.op_counts if kind == Kind.TFLITE_INT8 else verify.inspect_integer(m, True).op_counts
        integer = kind in (Kind.TFLITE_INT8, Kind.TFLITE_INT8_MIXED, Kind.TFLITE_INT8_QAT)
        st.delegates[kind] = delegates.delegate_report(m, counts, integer=integer)
        if kind == Kind.TFLITE_INT8_MIXED:
            st.delegates[kind]["float_ops"] = {
                "ops": verify.inspect_integer(m, st.cfg.export.int8_io == "float32").float_ops,
                "note": "left in float by selective precision: XNNPACK and the GPU delegate run them; an "
                        "integer-only NPU runs them on the CPU, splitting the graph at each (de)quantize"}


def export_coreml(st: BuildState) -> None:
    """The fp16 ``mlprogram``, each compressed variant and the Vision pipeline, staged as ``.mlpackage``s."""
    cfg, target = st.cfg.coreml, coreml.deployment_target(st.cfg.coreml)
    st.step(f"Converting to Core ML (fp16 mlprogram, {target})")
    with at(Kind.COREML_FP16, "coremltools"):
        base = coreml.convert(st.serving, st.contract, cfg)
        _stage_coreml(st, Kind.COREML_FP16, base)
    # every op must run in the emulator, or parity cannot prove the package: say so before minutes of variants
    require_supported(st.coreml_dirs[Kind.COREML_FP16], st.cfg.resolve(st.cfg.model))
    for recipe in cfg.compression:
        st.step(f"Compressing Core ML weights: {recipe}")
        with at(coreml_variant(recipe), "coremltools"):
            _stage_coreml(st, coreml_variant(recipe), coreml.compress(base, recipe, st.contract, cfg))
    if cfg.vision:
        st.step("Building the Vision-ready pipeline (decoder + NonMaximumSuppression)")
        with at(Kind.COREML_VISION, "coremltools"):
            _stage_coreml(st, Kind.COREML_VISION, convert_vision(st.serving, st.contract, cfg, target))


def _stage_coreml(st: BuildState, kind: str, model: Any) -> None:
    suffix = "" if kind == Kind.COREML_FP16 else "_" + kind.removeprefix("coreml-")
    rel = f"ios/{st.name}{suffix}.mlpackage"
    st.coreml_dirs[kind] = coreml.save(model, st.staging / rel)
    st.add(kind, coreml.vision_artifact(rel, st.serving, st.contract) if kind == Kind.COREML_VISION
           else coreml.artifact(kind, rel, st.serving, st.cfg.coreml))


def measure_parity(st: BuildState) -> None:
    """Parity streamed over the evaluation images in shards of ``parity.shard_images`` (here, on local worker
    processes or on Ray): memory is bounded by the shard, not the image count, and the merged metrics are the same
    whatever the shard size or the worker count."""
    records = _records(st.cfg, st.cfg.evaluation or st.cfg.calibration, st.cfg.parity.images)
    truth = _truth(records, st.contract)
    job = ParityJob.of(st.contract, st.serving.fn, st.models, st.coreml_dirs, threads_per_worker(st.workers))
    acc, start = ParityAcc(), time.monotonic()
    parts = pool.shards(records, truth, st.cfg.parity.shard_images)
    for res in pool.evaluate(job, parts, st.workers, st.ray):
        acc.merge(res.acc)
        st.kernel_crashes += [c for c in res.crashes if not any(k.artifact == c.artifact and k.kernels == c.kernels
                                                                for k in st.kernel_crashes)]
        for kind, events in res.fp16_events.items():
            st.fp16_events.setdefault(kind, []).extend(events)
        if len(parts) > 1:
            st.progress(_eta(acc.images, len(records), time.monotonic() - start, res.seconds))
    for crash in st.kernel_crashes:  # measured on the shards before the crash only: not measured
        acc.artifacts.get(crash.artifact, {}).pop(crash.kernels, None)
    if Kind.COREML_FP16 in st.coreml_dirs:
        with at(Kind.COREML_FP16, "the Core ML emulator"):
            st.ane = ane_report(CoreMLEmulator(st.coreml_dirs[Kind.COREML_FP16]).function)
    st.parity, st.samples = acc.report(), acc.samples
    seen = sum(Path(r.path).resolve() in st.calibration_paths for r in records)
    if seen:  # accuracy measured on the images int8 was calibrated on flatters it: held-out figures are the honest ones
        st.parity.evaluation_overlap = {"images": seen, "of": len(records)}
    st.parity.kernel_crashes = [c.to_dict() for c in st.kernel_crashes]
    st.checks = evaluate(st.parity, st.cfg.parity, st.contract.task)


def _eta(done: int, total: int, seconds: float, shard_seconds: float) -> str:
    """``640/5,000 images, 12.3 img/s, last shard 5.2 s, ETA 6 min``."""
    rate = done / max(seconds, 1e-9)
    left = (total - done) / max(rate, 1e-9)
    eta = f"{left / 60:.0f} min" if left >= 90 else f"{left:.0f} s"
    return f"{done:,}/{total:,} images, {rate:.1f} img/s, last shard {shard_seconds:.1f} s, ETA {eta}"


def find_drift(st: BuildState) -> None:
    if not st.drift:  # selective precision ran the debugger already
        with at(Kind.TFLITE_INT8, "TFLite's quantization debugger"):
            st.drift = layer_drift(st.int8_serving, st.calibration_inputs, calibrated=st.calibrated)
    st.parity.drift = st.drift


def watch_fp16(st: BuildState) -> None:
    """The report's error histograms and the fp16 overflow watch, a check per Core ML artifact."""
    st.parity.histograms = histogram_data(st.samples.errors)
    st.parity.fp16_watch = {kind: summarize_fp16(events) for kind, events in st.fp16_events.items()}
    for kind, summary in st.parity.fp16_watch.items():
        bad = summary["overflow_values"] + summary["nonfinite_values"]
        if not st.cfg.coreml.allow_fp16_overflow:
            st.checks.append(Check(kind, "emulator", "fp16_overflow_or_nan", float(bad), 0.0, False))
    st.parity.checks = [c.to_dict() for c in st.checks]


def measure_latency(st: BuildState) -> None:
    for kind, m in st.models.items():
        with at(kind, "LiteRT xnnpack kernels"):
            runner = LiteRTRunner(m, st.contract.artifacts[kind], st.contract, "xnnpack")
            st.latency[kind] = runner.latency_ms(st.samples.canvases[0])
            if missed := outside_xnnpack(m):
                st.outside_xnnpack[kind] = missed
        with at(kind, "the per-op LiteRT profile"):
            st.op_profiles[kind] = profile(m)


def measure_memory(st: BuildState) -> None:
    """Each TFLite artifact's peak run-time memory per kernel set, each in a fresh process
    (:mod:`mobilekit.emulate.memory`); for Core ML, the weight bytes and what is not measured."""
    for kind, m in st.models.items():
        with at(kind, "the memory measurement (a child process)"):
            st.memory[kind] = {"path": st.contract.artifacts[kind].path, "kernels": memory.measure_all(m)}
    for kind, path in st.coreml_dirs.items():
        st.memory[kind] = {"path": st.contract.artifacts[kind].path, **memory.coreml_weights(path)}


def int8_slower_than_float(latency: dict[str, float], outside: dict[str, int] | None = None,
                           outside_ms: float | None = None) -> str | None:
    """One plain sentence when the int8 model is slower than the float one on this CPU (XNNPACK); None otherwise.

    Users pick int8 for speed; on a CPU it is sometimes slower (int8 ops without optimized kernels, such as PReLU,
    run in reference code), and then the GPU/float path or selective precision is the better default there.
    ``outside``: the int8 model's ops XNNPACK leaves to the built-in kernels, named as the likely cause, with
    their one-thread time from the per-op profile (``outside_ms``) when it was measured."""
    int8 = latency.get(Kind.TFLITE_INT8)
    floats = {k: v for k, v in latency.items() if k in (Kind.TFLITE_FP16, Kind.TFLITE_FLOAT32)}
    if int8 is None or not floats:
        return None
    kind, best = min(floats.items(), key=lambda kv: kv[1])
    if int8 <= best:
        return None
    cost = f", {outside_ms:.2f} ms of one-thread time" if outside_ms else ""
    cause = f"{op_counts(outside)} run outside XNNPACK{cost}" if outside else "every op runs in XNNPACK"
    return (f"the int8 model is {int8 / best:.1f}x slower than {kind} on this CPU (LiteRT XNNPACK, {int8:.2f} ms "
            f"against {best:.2f} ms; {cause})")


def gate(st: BuildState) -> None:
    """Exit 3 below the bar (unless ``parity.enforce`` is off), naming the drifting layer and what to try."""
    failed = [c for c in st.checks if not c.passed]
    if failed and st.cfg.parity.enforce:
        words, drift = _drift_words(st.parity.drift, failed)
        raise ParityError(f"parity below the configured bar in {len(failed)} check(s){words}",
                          [c.to_dict() for c in failed], path=str(st.cfg.resolve(st.cfg.model)),
                          fix=_parity_advice(st.cfg, st.contract, drift))


def write_bundle(st: BuildState) -> None:
    """Every artifact, the SDKs, the reports and the manifest, moved into place at once."""
    _identify(st)
    with BundleWriter(st.out) as w:
        for kind, m in st.models.items():
            w.write(st.contract.artifacts[kind].path, m, kind)
        for kind, path in st.coreml_dirs.items():
            w.write_tree(st.contract.artifacts[kind].path, path, "coreml")
        w.write("android/labels.txt", "\n".join(st.contract.labels) + "\n", "labels")
        sdks.write_android(w, st.contract, st.models, st.cfg.android)
        if st.coreml_dirs:
            sdks.write_ios(w, st.contract, st.coreml_dirs, coreml.deployment_target(st.cfg.coreml))
        if st.sample_apps:
            st.step("Writing the sample apps")
            sdks.write_sample_apps(w, st.cfg, st.contract, bool(st.coreml_dirs))
        if st.ane:
            w.write_json("report/ane.json", st.ane, "ane-report")
        w.write("contract.json", st.contract.to_json(), "contract")
        w.write_json("report/parity.json", {**st.parity.to_dict(),
                                            **({"decode": st.decode.to_dict()} if st.decode else {})},
                     "parity-report")
        st.step("Writing the HTML report")
        w.write("report/index.html", render(
            st.contract, {"artifacts": list(w.artifacts), "latency_ms": st.latency, "mobilekit": __version__,
                          "compression": st.compressed.to_dict() if st.compressed else None,
                          "quantization": {**({"selective": st.selection.to_dict()} if st.selection else {})},
                          "op_profile": st.op_profiles, "memory": st.memory,
                          "decode": st.decode.to_dict() if st.decode else None},
            st.parity, st.samples, st.samples.canvases, st.samples.plans), "report")
        w.write_json("report/delegates.json", st.delegates, "delegate-report")
        if st.op_profiles:
            w.write_json("report/op_profile.json", st.op_profiles, "op-profile")
        manifest = _manifest(st, w.artifacts)
        w.write_json("manifest.json", manifest, "manifest")
        w.commit()
    st.result = BuildResult(st.out, st.contract, manifest, st.checks, st.latency)


def _identify(st: BuildState) -> None:
    """The contract learns what it ships: each artifact's digest (the manifest's) and the model's identity, which
    the SDKs report as ``modelInfo`` and the iOS cache keys compiled models by, so nothing is hashed on a device."""
    for kind, m in st.models.items():
        st.contract.artifacts[kind].sha256 = writer_sha256(m)
    for kind, path in st.coreml_dirs.items():
        st.contract.artifacts[kind].sha256 = digest(path)[1]
    st.contract.identity = Identity(st.contract.name, st.cfg.version, file_sha256(st.cfg.resolve(st.cfg.model)),
                                    __version__)


def _map_drops(parity: ParityReport) -> dict[str, dict[str, Any]]:
    """Each artifact's mAP@0.5:0.95 drop on the XNNPACK kernels with its 90% bootstrap interval over the images."""
    out = {}
    for kind, art in parity.artifacts.items():
        res = art["resolvers"].get("xnnpack") or {}
        if "map50_95_drop" in res:
            out[kind] = {"drop": res["map50_95_drop"], "interval": res.get("map50_95_drop_interval")}
    return out


def _manifest(st: BuildState, artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    cfg, integer = st.cfg, st.integer
    failed = [c for c in st.checks if not c.passed]
    config_bytes = json.dumps({k: v for k, v in dataclasses.asdict(cfg).items() if k != "base_dir"},
                              sort_keys=True, default=str).encode()
    summary = {"passed": not failed, "enforced": cfg.parity.enforce, "checks": len(st.checks),
               "images": st.parity.images, "worst": _worst(st.checks),
               **({"map50_float": st.parity.map50_float, "map50_95_float": st.parity.map50_95_float,
                   "map50_95_drops": _map_drops(st.parity)} if st.parity.map50_float is not None else {}),
               **({"top1_float": st.parity.top1_float} if st.parity.top1_float is not None else {}),
               **({"kernel_crashes": st.parity.kernel_crashes} if st.parity.kernel_crashes else {}),
               **({"evaluation_overlap": st.parity.evaluation_overlap} if st.parity.evaluation_overlap else {})}
    slower = int8_slower_than_float(st.latency, st.outside_xnnpack.get(Kind.TFLITE_INT8),
                                    st.op_profiles.get(Kind.TFLITE_INT8, {}).get("outside_xnnpack_ms"))
    return build_manifest(
        artifacts,
        model={"path": str(cfg.model), "sha256": st.contract.identity.source_sha256 if st.contract.identity
               else file_sha256(cfg.resolve(cfg.model))},
        config_sha256=hashlib.sha256(config_bytes).hexdigest(),
        parity=summary,
        verification={Kind.TFLITE_INT8: {"full_integer": integer.full_integer, "ops": integer.ops,
                                      "per_channel_weights": integer.per_channel_weights,
                                      "per_tensor_weights": integer.per_tensor_weights,
                                      "io_dtype": cfg.export.int8_io}},
        split=st.contract.head.split,
        android=dataclasses.asdict(cfg.android),  # which Android Gradle plugin the module is for, NPU, Maven group
        **({"decode": st.decode.to_dict()} if st.decode else {}),
        coreml={"deployment_target": coreml.deployment_target(cfg.coreml), "compute_units": cfg.coreml.compute_units,
                "variants": sorted(st.coreml_dirs), "ane_likely_all": st.ane.get("likely_all_on_ane")}
        if st.coreml_dirs else None,
        quantization={"calibration": cfg.quantization.calibration,
                      **({"weights": st.weight_prep} if st.weight_prep else {}),
                      **({"selective": st.selection.to_dict()} if st.selection else {})},
        latency_ms=st.latency,
        **({"memory": st.memory} if st.memory else {}),
        **({"xnnpack_rewrite": st.rewrite} if st.rewrite else {}),
        **({"latency_note": slower} if slower else {}),
        **({"outside_xnnpack": st.outside_xnnpack} if st.outside_xnnpack else {}),
        **({"op_profile": {k: {f: v for f, v in p.items() if f != "per_op"} for k, p in st.op_profiles.items()}}
           if st.op_profiles else {}),
        compression=st.compressed.to_dict() if st.compressed else None,
    )


#: The build, in order. Insert a stage here; it sees what the stages before it left on the state.
STAGES: list[Stage] = [
    Stage("load", load, "Loading model",
          reads="cfg",
          writes="contract int8_serving loaded serving"),
    Stage("decode", check_decode, lambda st: "Checking the decode against the model's own decoder"
          if st.cfg.detection.reference else "Decode not checked: no detection.reference",
          lambda st: st.cfg.task == "detection",
          reads="cfg contract loaded serving",
          writes="decode"),
    Stage("compress", compress_model, when=lambda st: st.cfg.compression.enabled,
          reads="cfg",
          writes="compressed contract int8_serving loaded serving"),
    Stage("calibration", read_calibration, "Reading calibration images",
          reads="cfg contract",
          writes="calibration calibration_paths calibration_plans calibration_truth"),
    Stage("xnnpack-rewrite", rewrite_for_xnnpack, _rewrite_label, _rewritable,
          reads="calibration cfg contract loaded serving",
          writes="int8_loaded int8_serving plain_int8_serving rewrite"),
    Stage("int8-weights", prepare_int8_weights, "Preparing the int8 weights",
          lambda st: st.cfg.quantization.equalize or st.cfg.quantization.bias_correction
          or st.cfg.quantization.adaround,
          reads="calibration cfg contract loaded serving",
          writes="int8_loaded int8_serving plain_int8_serving weight_prep"),
    Stage(Kind.TFLITE_INT8, export_int8,
          lambda st: f"Converting to full-integer TFLite ({len(st.calibration)} calibration images)",
          reads="calibration cfg plain_int8_serving",
          writes="calibrated contract int8_loaded int8_serving integer models rewrite"),
    Stage(Kind.TFLITE_INT8_MIXED, select_precision, "Selective precision: ranking ops by int8 sensitivity",
          lambda st: st.cfg.quantization.max_drop is not None,
          reads="calibrated calibration calibration_plans calibration_truth cfg int8_serving serving",
          writes="contract drift models selection selection_metric"),
    Stage(Kind.TFLITE_INT8_QAT, qat_on_demand, "Quantization-aware training (PTQ and selective precision miss "
          "quantization.max_drop)", lambda st: st.cfg.quantization.qat_on_demand and st.selection is not None
          and not st.selection.met,
          reads="calibration cfg loaded selection selection_metric serving",
          writes="contract models"),
    Stage(Kind.TFLITE_FP16, export_fp16, "Converting to fp16 TFLite (GPU delegate)", lambda st: st.cfg.export.fp16,
          reads="serving",
          writes="contract models"),
    Stage(Kind.TFLITE_FLOAT32, export_float32, None, lambda st: st.cfg.export.float32,
          reads="serving",
          writes="contract models"),
    Stage("delegates", delegate_support, "Analysing delegate support",
          reads="cfg integer models",
          writes="delegates"),
    Stage("coreml", export_coreml, when=lambda st: st.cfg.coreml.enabled,
          reads="cfg serving",
          writes="contract coreml_dirs"),
    Stage("parity", measure_parity,
          lambda st: "Measuring parity on LiteRT" + (" and the Core ML emulator" if st.coreml_dirs else ""),
          reads="calibration_paths cfg contract coreml_dirs models ray serving workers",
          writes="ane checks fp16_events kernel_crashes parity samples"),
    Stage("drift", find_drift, "Finding which layers drift in int8 (quantization debugger)",
          reads="calibrated calibration contract int8_serving parity",
          writes="drift"),
    Stage("fp16-watch", watch_fp16,
          reads="cfg fp16_events parity samples",
          writes="checks"),
    Stage("latency", measure_latency, "Measuring LiteRT CPU latency", lambda st: st.measure_latency,
          reads="contract models samples",
          writes="latency op_profiles outside_xnnpack"),
    Stage("memory", measure_memory, "Measuring each artifact's peak run-time memory (fresh processes)",
          reads="contract coreml_dirs models",
          writes="memory"),
    Stage("gate", gate,
          reads="cfg checks contract parity",),
    Stage("bundle", write_bundle, "Writing bundle",
          reads="ane cfg checks compressed coreml_dirs decode delegates integer latency memory models op_profiles "
                "out outside_xnnpack parity rewrite sample_apps samples selection weight_prep",
          writes="contract result"),
]


def build(cfg: Config, out: Path, step: Step = lambda s: None, measure_latency: bool = True,
          sample_apps: bool = False, progress: Step = lambda s: None, workers: int = 1,
          ray: str | None = None) -> BuildResult:
    """Run every stage; the bundle appears at ``out`` only when all of them, and the parity gate, pass."""
    with tempfile.TemporaryDirectory(prefix="mobilekit-staging-") as staging:
        st = BuildState(cfg, out, Path(staging), step, measure_latency, sample_apps, progress, workers=workers, ray=ray)
        run_stages(st)
        assert st.result is not None
        return st.result


def run_stages(st: BuildState, before: str | None = None) -> None:
    """The stages in order, each announced, up to (not including) the one named ``before`` (benches and tests stop
    where they measure)."""
    for stage in STAGES:
        if stage.name == before:
            return
        if not stage.when(st):
            continue
        if stage.label is not None:
            st.step(stage.label if isinstance(stage.label, str) else stage.label(st))
        stage.run(st)


def _drift_words(drift: dict[str, Any], failed: list[Check]) -> tuple[str, str | None]:
    """What the quantization debugger says, when an int8 check failed: the first layer whose error exceeds the
    bar, or (none does) the layer with the largest error, said as such; and that layer."""
    if not any(c.artifact.startswith(Kind.TFLITE_INT8) for c in failed):
        return "", None
    if drift.get("drift_start"):
        return f"; int8 drift starts at layer {drift['drift_start']}", drift["drift_start"]
    if drift.get("worst"):
        return (f"; no int8 layer drifts above {drift.get('bar_steps', 1.0):g} int8 step, the largest int8 error is "
                f"at layer {drift['worst']}"), drift["worst"]
    return "", None


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


def _worst(checks: list[Check]) -> dict[str, float]:
    worst: dict[str, float] = {}
    for c in checks:
        key = c.metric.split(".")[-1]
        v = c.value
        if key not in worst or (v < worst[key] if c.at_least else v > worst[key]):
            worst[key] = v
    return worst
