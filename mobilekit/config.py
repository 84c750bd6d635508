"""``mobilekit.yaml`` → typed, validated settings.

The schema is the dataclasses below; one generic loader walks them, so a new setting is one annotated field. Every
error names the file, the dotted key, what was expected and the fix; unknown keys are errors with a "did you mean",
because a misspelt threshold that is silently ignored is how a bad model ships.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

Task = Literal["detection", "classification"]
#: (config key, what is wrong, the fix) -> raises ConfigError; each section's ``check`` reports through it.
Fail = Callable[[str, str, str], NoReturn]

#: Detection head formats: every registered head but the classifier's (a new head module adds its name here).
#: a registered head (:mod:`mobilekit.heads`); the config file loader checks the name against them
HeadName = str
BoxFormat = Literal["cxcywh", "xyxy", "yxyx"]
BoxUnits = Literal["pixels", "normalized"]
Activation = Literal["none", "sigmoid", "softmax"]
IoDtype = Literal["int8", "uint8", "float32"]
DataFormat = Literal["folder", "yolo", "coco"]


@dataclass
class Normalization:
    """``x = pixel * scale + offset`` per channel, or ``(pixel - mean) / std``; pixels are 0..255."""

    #: per-channel mean (one or three numbers) subtracted from pixels 0..255; with std
    mean: list[float] | None = None
    #: per-channel standard deviation the pixels are divided by; with mean
    std: list[float] | None = None
    #: x = pixel * scale + offset, one or three numbers; the alternative to mean/std
    scale: float | list[float] | None = None
    #: added after scale
    offset: float | list[float] | None = None

    def check(self, fail: Fail) -> None:
        has_ms = self.mean is not None or self.std is not None
        has_so = self.scale is not None or self.offset is not None
        if has_ms == has_so:
            fail("input.normalization", "give either mean/std or scale/offset",
                 "write 'mean: [..], std: [..]' or 'scale: 0.0039, offset: 0'")
        if has_ms:
            for k in ("mean", "std"):
                vals = getattr(self, k)
                if vals is None or len(vals) not in (1, 3):
                    fail(f"input.normalization.{k}", "expected 1 or 3 numbers", f"write {k}: [a, b, c]")
            if any(s == 0 for s in self.std or []):
                fail("input.normalization.std", "a std of 0 divides by zero", "use the std your model was trained with")
        else:
            for k in ("scale", "offset"):
                vals = getattr(self, k)
                if isinstance(vals, list) and len(vals) not in (1, 3):
                    fail(f"input.normalization.{k}", "expected a number or 3 numbers", f"write {k}: 0.0039")


@dataclass
class InputSettings:
    size: list[int] | None = None  # [height, width]; default: the model's own input size
    #: the model's input layout: NHWC, or NCHW for a channels-first model
    layout: Literal["NHWC", "NCHW"] = "NHWC"
    #: the channel order the model was trained on
    color: Literal["RGB", "BGR"] = "RGB"
    normalization: Normalization = field(default_factory=lambda: Normalization(scale=1 / 255, offset=0.0))
    #: letterbox keeps the aspect ratio and pads; stretch scales each axis to the input size
    resize: Literal["letterbox", "stretch"] = "letterbox"
    #: the letterbox padding's pixel value (114: YOLO's grey)
    pad_value: int = 114

    def check(self, fail: Fail) -> None:
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 8):
            fail("input.size", f"expected [height, width] of at least 8 pixels, got {self.size}",
                 "write e.g. [320, 320]")
        self.normalization.check(fail)
        if not 0 <= self.pad_value <= 255:
            fail("input.pad_value", f"{self.pad_value} is not a pixel value", "use 0..255 (114 is YOLO's grey)")


@dataclass
class AnchorSettings:
    """SSD anchor generation: one grid per feature map, anchors per cell from scales × aspect ratios."""

    feature_maps: list[list[int]] = field(default_factory=list)  # [[h, w], ...] per level
    #: the smallest anchor scale, relative to the input (first level)
    min_scale: float = 0.2
    #: the largest anchor scale (last level)
    max_scale: float = 0.95
    #: width / height of each cell's anchors
    aspect_ratios: list[float] = field(default_factory=lambda: [1.0, 2.0, 0.5])
    #: the box-delta variances (centre y, centre x, height, width)
    variances: list[float] = field(default_factory=lambda: [0.1, 0.1, 0.2, 0.2])
    #: the order of the 4 box deltas the model emits
    delta_order: Literal["yxhw", "xywh"] = "yxhw"


@dataclass
class DetectionSettings:
    #: the output format: yolo, yolo_transposed, dfl, grid, ssd, retinanet or decoded (mobilekit.heads)
    head: HeadName = "yolo"
    #: how the 4 box channels are read: centre and size, or corners
    box_format: BoxFormat = "cxcywh"
    #: box values in input pixels, or normalized to 0..1
    box_units: BoxUnits = "pixels"
    #: the order of the 4 box channels: x first (``cx, cy, w, h``; ``x1, y1, x2, y2``) or y first (``cy, cx, h, w``;
    #: TF's and the tf_keras zoos' convention): decoded boxes of yolo/decoded heads and raw grid boxes
    box_order: Literal["xy", "yx"] = "xy"
    #: applied to the class scores in post-processing when the model outputs logits
    score_activation: Activation = "none"
    background_class: bool = False  # scores include a leading background column (SSD softmax heads)
    #: candidates below it are dropped before NMS (the SDKs' default; changeable at run time)
    score_threshold: float = 0.25
    #: NMS overlap above which the weaker box is suppressed
    iou_threshold: float = 0.45
    #: the most detections returned per image
    max_detections: int = 100
    #: true: one NMS over all classes; false: per class
    class_agnostic_nms: bool = False
    outputs: dict[str, str] = field(default_factory=dict)  # role -> model output name, for two-output heads
    #: SSD anchor generation (ssd head)
    anchors: AnchorSettings = field(default_factory=AnchorSettings)
    #: settings of the chosen head's own (strides, reg_max, ...): the head module checks them (``validate``) and
    #: puts what decoding needs into the contract (``complete``), so a new head needs no new config fields
    params: dict[str, Any] = field(default_factory=dict)
    #: the model's own decoder, the oracle of the build's decode check: ``module:function`` (a callable of the raw
    #: outputs, ``mobilekit.references``), or ``attached`` (a decode layer the model carries, found by a reference
    #: plugin); ``reference_args`` are passed to the function as keywords
    reference: str | None = None
    #: keyword arguments passed to the reference decoder function
    reference_args: dict[str, Any] = field(default_factory=dict)

    def check(self, fail: Fail) -> None:
        if not 0 <= self.score_threshold < 1:
            fail("detection.score_threshold", "must be in [0, 1)", "use e.g. 0.25")
        if not 0 < self.iou_threshold <= 1:
            fail("detection.iou_threshold", "must be in (0, 1]", "use e.g. 0.45")
        if self.max_detections < 1:
            fail("detection.max_detections", "must be at least 1", "use e.g. 100")
        if self.reference is not None and self.reference != "attached" and not re.fullmatch(
                r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", self.reference):
            fail("detection.reference", f"'{self.reference}' is neither attached nor module:function",
                 "e.g. reference: attached (the model's own decode layer), or reference: my_zoo.decode:candidates")
        if len(self.anchors.variances) != 4 or any(v <= 0 for v in self.anchors.variances):
            fail("detection.anchors.variances", "expected 4 positive numbers", "use [0.1, 0.1, 0.2, 0.2]")
        bad = set(self.outputs) - {"boxes", "scores"}
        if bad:
            fail(f"detection.outputs.{sorted(bad)[0]}", "unknown output role",
                 "map 'boxes' and 'scores' to your model's output names")


@dataclass
class ClassificationSettings:
    #: applied to the scores in post-processing when the model outputs logits (set by the softmax cut)
    score_activation: Activation = "none"
    #: how many classes a classification returns
    top_k: int = 5


@dataclass
class DataSettings:
    #: a folder of images (per-label subfolders for a labelled classifier set), relative to this file
    images: str = ""
    #: folder (images, optionally one subfolder per label), yolo (labels beside the images) or coco
    format: DataFormat = "folder"
    annotations: str | None = None  # COCO json; YOLO labels are found beside the images
    #: how many images to use, at most
    count: int = 100

    def check(self, fail: Fail, section: str) -> None:
        if section == "calibration" and not self.images:
            fail("calibration.images", "is missing",
                 "name a folder of representative images (the int8 model is calibrated on them)")
        if self.count < 1:
            fail(f"{section}.count", "must be at least 1", "use e.g. 100")
        if self.format == "coco" and not self.annotations:
            fail(f"{section}.annotations", "a COCO dataset needs its json", "name the instances_*.json file")


@dataclass
class ParitySettings:
    """The bar a converted model must clear against the float model; the build exits 3 below it."""

    #: the least cosine similarity of every output against the float model
    min_cosine: float = 0.98
    #: the least signal-to-noise ratio of every output, in dB
    min_snr_db: float = 12.0
    #: classifiers: the least share of images whose top-1 class matches the float model's
    min_top1_agreement: float = 0.9
    #: detectors: the least share of the float model's detections found again
    min_detection_recall: float = 0.8
    #: detectors: the least share of detections that the float model also makes
    min_detection_precision: float = 0.8
    max_map50_drop: float = 2.0  # points of mAP@0.5
    #: how many evaluation images parity runs on
    images: int = 32
    #: images read, run and reduced at a time: parity's memory is bounded by this, not by ``images`` (the metrics
    #: do not depend on it)
    shard_images: int = 64
    #: false: measure and report every check (manifest, report, console) but never fail the build on them; for
    #: exploratory builds and for tests about something other than accuracy. Release builds keep the gate.
    enforce: bool = True

    def check(self, fail: Fail) -> None:
        for k in ("min_cosine", "min_top1_agreement", "min_detection_recall", "min_detection_precision"):
            if not 0 <= getattr(self, k) <= 1:
                fail(f"parity.{k}", "must be in [0, 1]", "use e.g. 0.9")
        if self.images < 1:
            fail("parity.images", "must be at least 1", "use e.g. 32")
        if self.shard_images < 1:
            fail("parity.shard_images", "must be at least 1", "use e.g. 64")


@dataclass
class ExportSettings:
    """Which TFLite models the bundle carries beside the full-integer one, and the int8 model's I/O type."""

    #: the int8 model's input and output type: int8, uint8, or float32 (quantize and dequantize inside)
    int8_io: IoDtype = "int8"
    #: also export the fp16-weight model with float I/O (the GPU path)
    fp16: bool = True
    #: also export a float32 TFLite model (for reference and speed comparisons)
    float32: bool = False


@dataclass
class QuantizationSettings:
    """How the int8 model is made from the calibration images (``mobilekit.quantize``).

    ``calibration`` picks each activation's int8 range: ``mse`` (default) the clip with the least int8 error on the
    calibration images, ``percentile`` 99.99%, ``minmax`` the TFLite converter's own. ``max_drop`` (points of the task
    metric: mAP@0.5:0.95 for detectors, top-1 for classifiers, measured against the float model's own predictions on
    the calibration images) asks for accuracy-aware selective precision: when full-int8 loses more, the ops whose
    int8 error costs most are left in float, cheapest first, into a separate ``tflite-int8-mixed`` artifact; the
    full-int8 model stays the default one."""

    #: how each activation's int8 range is picked: mse, percentile or minmax
    calibration: str = "mse"
    #: points of the task metric full-int8 may lose before selective precision keeps ops in float
    max_drop: float | None = None
    max_float_ops: int = 8  # the most ops selective precision may leave in float before it gives up
    # Keras-side preparation of the int8 model's weights (mobilekit.quantize.weights), each measured alone in
    # bench/quantization.py: cross-layer equalization, bias correction, AdaRound
    equalize: bool = False
    #: correct each layer's bias for the mean int8 weight error
    bias_correction: bool = False
    #: AdaRound: learn each weight's rounding direction on the calibration images
    adaround: bool = False
    #: calibration images AdaRound learns from
    adaround_images: int = 16
    #: AdaRound's optimization steps per layer
    adaround_iterations: int = 400
    # when full-int8 and selective precision both miss max_drop: quantization-aware training (compression.qat with
    # compression.distill's budget) into a separate tflite-int8-qat artifact, measured beside them
    qat_on_demand: bool = False
    # activations XNNPACK's int8 kernels do not take (hard-swish, PReLU, capped ReLU) rewritten into exact forms
    # it takes, in the int8 graph only (mobilekit.models.xnnpack_rewrite): ``measured`` converts both graphs and
    # keeps the faster on LiteRT XNNPACK, ``always`` keeps the rewrite, ``off`` leaves the graph as it is
    xnnpack_rewrite: Literal["measured", "always", "off"] = "measured"

    def check(self, fail: Fail) -> None:
        if self.max_drop is not None and self.max_drop < 0:
            fail("quantization.max_drop", "must be at least 0", "use e.g. 0.5 (points)")
        if self.max_float_ops < 1:
            fail("quantization.max_float_ops", "must be at least 1", "use e.g. 8")


@dataclass
class CoreMLSettings:
    """Core ML ``mlprogram`` export for the Neural Engine; ``compression`` names recipes from
    ``mobilekit.export.coreml_compress.RECIPES`` (each adds one compressed variant beside the fp16 package)."""

    #: false: no Core ML packages and no Swift package
    enabled: bool = True
    deployment_target: Literal["iOS16", "iOS17", "iOS18"] | None = None  # default: the lowest the recipes allow
    #: where Core ML may run the model; the Swift package's default configuration
    compute_units: Literal["CPU_AND_NE", "ALL", "CPU_ONLY", "CPU_AND_GPU"] = "CPU_AND_NE"
    input: Literal["tensor", "image"] = "tensor"  # image: Core ML applies the normalization (one scale)
    #: one compressed package per recipe beside the fp16 one (the first is the one the Swift package ships)
    compression: list[str] = field(default_factory=lambda: ["palettize6"])
    vision: bool = False  # also emit the Vision-ready pipeline (decoder + NonMaximumSuppression), detectors only
    #: true: an fp16 overflow the emulator finds is reported, not a failure
    allow_fp16_overflow: bool = False
    #: the packages' author metadata
    author: str = "mobilekit"
    #: the packages' version metadata
    version: str = "1.0"

    def check(self, fail: Fail, cfg: Config) -> None:
        if self.input == "image":
            scale, _ = normalization_of(cfg)
            if max(scale) - min(scale) > 1e-9 * max(abs(v) for v in scale):
                fail("coreml.input", "Core ML image inputs take one scale for all channels, but the normalization "
                     f"has per-channel scales {[round(v, 6) for v in scale]}",
                     "use coreml.input: tensor (the app normalizes), or a single std")
            if cfg.input.layout != "NHWC":
                fail("coreml.input", "image inputs need an NHWC model", "use coreml.input: tensor")
        if self.vision and (cfg.task != "detection" or self.input != "image"):
            fail("coreml.vision", "the Vision-ready form needs a detector with an image input (Vision feeds images)",
                 "set task: detection and coreml.input: image, or remove coreml.vision")


@dataclass
class AndroidSettings:
    """The generated Android library module: which Android Gradle plugin its build files are for, whether it tries
    the NPU, and the Maven coordinates of its publication."""

    agp: Literal[8, 9] = 9  # 8: the Kotlin Android plugin applied; 9: AGP's built-in Kotlin
    #: try LiteRT's NPU first; it runs only where the vendor's dispatch library is in the app (see the module README)
    npu: bool = False
    group: str | None = None  # Maven groupId of the publication; default: the Kotlin package

    def check(self, fail: Fail) -> None:
        if self.group is not None and not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", self.group):
            fail("android.group", f"'{self.group}' is not a Maven group id", "write dotted words, e.g. com.example.ml")


@dataclass
class PruneSettings:
    """Structured channel pruning: whole conv/dense output channels are removed and every consumer rewritten."""

    #: what ratio removes: MACs or parameters
    target: Literal["macs", "params"] = "macs"
    ratio: float = 0.5  # fraction of the model's MACs (or parameters) to remove
    # bn_l1: BatchNorm |gamma| x filter L1 norm (or either alone); activation: mean channel magnitude on the images
    criterion: Literal["bn_l1", "bn", "l1", "activation"] = "bn_l1"
    multiple: int = 8  # kept channel counts are rounded to this (layers narrower than 2x it: to 1)
    #: no layer is cut below this many channels
    min_channels: int = 4
    exclude: list[str] = field(default_factory=list)  # layer names whose output channels are kept
    # share of the fine-tuning budget spent fading the removed channels to zero on the full model before they are
    # cut (0: cut at once, then fine-tune): gradual pruning keeps a model with little redundancy from collapsing
    fade: float = 0.5


@dataclass
class SparsitySettings:
    """Magnitude pruning (tensorflow-model-optimization) to zeros kept in the weights; wrappers are stripped."""

    sparsity: float = 0.5  # final fraction of zero weights (unstructured); ignored for 2:4
    #: unstructured, or 2:4 (two zeros in every four weights)
    pattern: Literal["unstructured", "2:4"] = "unstructured"


@dataclass
class ClusterSettings:
    """Weight clustering (tensorflow-model-optimization): each layer's weights share ``clusters`` values."""

    #: distinct weight values per layer after clustering
    clusters: int = 16


@dataclass
class QatSettings:
    """Quantization-aware training (tensorflow-model-optimization), then the same full-int8 export as PTQ."""

    #: false keeps the section but skips quantization-aware training
    enabled: bool = True
    # QAT fine-tunes at this fraction of distill.learning_rate: fake-quantized weights and activations diverge at a
    # rate a float fine-tune takes (MobileNetV2 on digits: 1e-3 → 13% top-1, 1e-4 → 97.7%)
    learning_rate_scale: float = 0.1


@dataclass
class DistillSettings:
    """The fine-tuning engine of every training stage: the original float model teaches the compressed one on the
    calibration images (output matching); a labelled set (classifiers: one sub-folder per label) adds the task
    loss."""

    #: passes over the training images per stage
    epochs: int = 10
    #: images per training step
    batch_size: int = 16
    #: the optimizer's starting learning rate
    learning_rate: float = 1e-3
    images: DataSettings | None = None  # default: the calibration images
    minutes: float | None = None  # a time budget per stage, whatever the epochs
    schedule: Literal["cosine", "constant"] = "cosine"  # cosine: decays over the epochs or the time, what ends first
    label_weight: float = 0.5  # weight of the label loss when labels are available
    # after pruning: weight of the inner-feature hints (kept channels vs the teacher's). Off by default: on the
    # pruned coco128 detector they gave no gain per step (mAP 4.0 after 295 steps, 3.7 after 219 without) and
    # made each step 25% slower
    hint_weight: float = 0.0
    #: the training's random seed
    seed: int = 0


@dataclass
class CompressionSettings:
    """Stages run in this order: prune → sparsity → cluster → qat, each fine-tuned by distillation."""

    prune: PruneSettings | None = None
    sparsity: SparsitySettings | None = None
    cluster: ClusterSettings | None = None
    qat: QatSettings | None = None
    distill: DistillSettings = field(default_factory=DistillSettings)

    @property
    def enabled(self) -> bool:
        return any(s is not None for s in (self.prune, self.sparsity, self.cluster, self.qat))

    def check(self, fail: Fail) -> None:
        if self.prune and not 0 < self.prune.ratio < 0.95:
            fail("compression.prune.ratio", "must be in (0, 0.95)", "use e.g. 0.5 (half the MACs or parameters)")
        if self.prune and not 0 <= self.prune.fade <= 0.9:
            fail("compression.prune.fade", "must be in [0, 0.9] (the rest of the budget fine-tunes the cut model)",
                 "use e.g. 0.5, or 0 to cut at once")
        if self.qat and not 0 < self.qat.learning_rate_scale <= 1:
            fail("compression.qat.learning_rate_scale", "must be in (0, 1]", "use e.g. 0.1")
        d = self.distill
        if d.minutes is not None and d.minutes <= 0:
            fail("compression.distill.minutes", "must be positive", "use e.g. 5, or remove it to train by epochs")
        if d.learning_rate <= 0 or d.epochs < 1:
            fail("compression.distill", "needs a positive learning_rate and epochs >= 1", "use e.g. 0.001 and 10")
        for key in ("label_weight", "hint_weight"):
            if getattr(d, key) < 0:
                fail(f"compression.distill.{key}", "must be >= 0", "use e.g. 0.5, or 0 to turn it off")


#: Checks of a section that the modules owning its vocabulary register when they load (``search``: the knobs and
#: the measures), section → checks ``(settings, config, fail)``.
SECTION_CHECKS: dict[str, list[Callable[[Any, Config, Fail], None]]] = {}


@dataclass
class SearchSettings:
    """``mobilekit search``: the recipes to try and what a recipe must meet (:mod:`mobilekit.search`); a build
    ignores this section. ``space`` maps a knob of :data:`mobilekit.search.knobs.KNOBS` to its choices (a list, or
    ``{low, high, step}``); ``budgets`` maps ``max_<measure>`` of :data:`mobilekit.search.measures.MEASURES` to the
    most a recipe may have; ``objectives`` are the measures the Pareto front trades off (each minimized) and
    ``prefer`` the one that picks the recipe among the Pareto trials that meet every budget."""

    #: knob → its choices (a list, or {low, high, step}): what the search tries
    space: dict[str, Any] = field(default_factory=dict)
    #: max_<measure> → the most a recipe may have (max_drop, max_int8_kb, max_cpu_ms, max_coreml_kb)
    budgets: dict[str, float] = field(default_factory=dict)
    #: the measures the Pareto front trades off, each minimized
    objectives: list[str] = field(default_factory=lambda: ["drop", "int8_kb", "cpu_ms"])
    #: the measure that picks the recipe among the Pareto trials that meet every budget
    prefer: str = "drop"
    trials: int = 12  # ``--trials`` overrides
    #: the sampler's seed
    seed: int = 0

    def check(self, fail: Fail, cfg: Config) -> None:
        if not self.space:
            fail("search.space", "is empty: there is nothing to search",
                 "name at least one knob, e.g. 'prune_ratio: [0, 0.25, 0.5]'")
        # the knobs and the measures check their own keys (registered by mobilekit.search when it loads, as
        # `mobilekit search` loads it before the config): the schema imports no plugin
        for check in SECTION_CHECKS.get("search", []):
            check(self, cfg, fail)
        if self.trials < 1:
            fail("search.trials", "must be at least 1", "use e.g. 12")


@dataclass
class Config:
    #: the trained model: a .keras (Keras 3) or .h5 (tf_keras) file, or a SavedModel directory, relative to this file
    model: str = ""
    #: detection or classification
    task: Task = "detection"
    #: names the files and the generated classes (default: the model file's name)
    name: str | None = None
    #: the release version of the model: the SDKs' ``modelInfo`` and the Android publication's Maven version
    version: str = "1.0.0"
    #: a text file with one class name per line, in the model's class order (default: class_0, class_1, ...)
    labels: str | None = None
    #: the image input: size, layout, colour order, normalization, resize
    input: InputSettings = field(default_factory=InputSettings)
    #: the detector's head and its decoding, NMS, and the model's own decoder (task: detection)
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    #: the classifier's score activation and top-k (task: classification)
    classification: ClassificationSettings = field(default_factory=ClassificationSettings)
    #: the images the int8 model is calibrated on (and the default for parity and distillation)
    calibration: DataSettings = field(default_factory=DataSettings)
    #: held-out images for parity and accuracy figures (default: the calibration images, with a warning)
    evaluation: DataSettings | None = None
    parity: ParitySettings = field(default_factory=ParitySettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    quantization: QuantizationSettings = field(default_factory=QuantizationSettings)
    coreml: CoreMLSettings = field(default_factory=CoreMLSettings)
    android: AndroidSettings = field(default_factory=AndroidSettings)
    compression: CompressionSettings = field(default_factory=CompressionSettings)
    #: the bundle's folder when --out is not given
    output: str | None = None
    #: modules imported before the model loads: those that register the model's custom layers (a model zoo's
    #: package, or a module beside this file); ``--import MODULE`` on the command line adds to them
    imports: list[str] = field(default_factory=list)
    search: SearchSettings | None = None  # what ``mobilekit search`` tries; a build ignores it

    #: Directory relative paths in the file are resolved against (not a YAML key).
    base_dir: Path = field(default=Path("."), metadata={"internal": True})
    #: Where ``--import`` modules are searched besides ``base_dir`` (the shell's folder; not a YAML key).
    import_dirs: list[Path] = field(default_factory=list, metadata={"internal": True})

    def resolve(self, path: str) -> Path:
        """Paths in the config are relative to the config file, not the shell's cwd."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def model_name(self) -> str:
        return self.name or Path(self.model).stem or "Model"


def normalization_of(cfg: Config) -> tuple[list[float], list[float]]:
    """Config normalization (mean/std or scale/offset, scalar or per channel) → per-channel scale and offset."""
    return scale_offset(cfg.input.normalization)


def scale_offset(n: Normalization) -> tuple[list[float], list[float]]:
    """A normalization (mean/std or scale/offset, scalar or per channel) → per-channel scale and offset."""

    def three(v: float | list[float] | None, default: float) -> list[float]:
        if v is None:
            return [default] * 3
        if isinstance(v, list):
            return [float(x) for x in (v * 3 if len(v) == 1 else v)]
        return [float(v)] * 3

    if n.mean is not None:
        mean, std = three(n.mean, 0.0), three(n.std, 1.0)
        return [1.0 / s for s in std], [-m / s for m, s in zip(mean, std, strict=True)]
    return three(n.scale, 1.0), three(n.offset, 0.0)


def scalar(tp: type, v: Any, key: str, fail: Fail) -> Any:
    """``v`` checked as a ``tp`` setting (bool, int, float or str) at ``key``; ints read as floats where a float is
    asked. Shared by the config loader and the search space's choices, so both say the same thing."""
    if tp is bool:
        if not isinstance(v, bool):
            fail(key, f"expected true or false, got {describe(v)}", "write true or false")
        return v
    if tp is int:
        if isinstance(v, bool) or not isinstance(v, int):
            fail(key, f"expected a whole number, got {describe(v)}", "write a whole number such as 100")
        return v
    if tp is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            fail(key, f"expected a number, got {describe(v)}", "write a number such as 0.5")
        return float(v)
    if tp is str:
        if not isinstance(v, str) or not v:
            fail(key, f"expected a non-empty string, got {describe(v)}", "write a text value")
        return v
    raise TypeError(f"{tp!r} is not a scalar setting type")


def describe(v: Any) -> str:
    """A value as an error line shows it: its type and its text, cut at 60 characters."""
    return f"{type(v).__name__} {v!r}"[:60]
