"""The Core ML emulator's coverage catalogue: the Keras graphs whose MIL ops the emulator must execute.

Coverage is enumerated, not listed by hand where Keras lets us enumerate: every ``keras.applications`` constructor,
every function in ``keras.activations``, the vision layers of ``keras.layers`` (convolutions, pooling,
normalization, resizing, merging, reshaping, activations as layers), and detector necks and heads built like the
third-party ones users bring (an FPN with P6/P7 and a shared head, a PAN with C2f-style splits and a DFL head, a
YOLOX-style head that concatenates ``[box, cls, obj]`` per level along the anchor axis). When keras-hub or keras-cv
are installed, their detectors join (``bench/coreml_coverage.py``).

Shared by ``tests/test_coreml_catalogue.py`` (fp32 conversion, emulator vs TensorFlow for every entry) and
``bench/coreml_coverage.py`` (the op coverage table at fp16 and with every compression recipe). Weights are random
and inputs small: ops, not accuracy, are under test.
"""

from __future__ import annotations

import inspect
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Entry:
    """One catalogue graph: ``build()`` returns a Keras model taking ``shape``; ``pixels`` feeds 0..255 images
    (models with their own preprocessing), else standard normal values."""

    name: str
    source: str
    build: Callable[[], Any]
    shape: tuple[int, ...]
    pixels: bool = False
    #: the TensorFlow reference when the converter changes the op's meaning on purpose (see ``resize_nearest_down``)
    reference: Callable[[Any, np.ndarray], np.ndarray] | None = None
    family: str = ""
    tags: set[str] = field(default_factory=set)


# ---------------------------------------------------------------------------------------------- keras.applications
#: The smallest input each family accepts without weights (the rest take 32).
MIN_SIZE = {"xception": 71, "inception_v3": 75, "inception_resnet_v2": 75}


def applications() -> list[Entry]:
    """Every constructor in ``keras.applications``, at its smallest input, 10 classes, logits out."""
    import keras

    out = []
    for name, fn in sorted(vars(keras.applications).items()):
        if not (inspect.isfunction(fn) and name[0].isupper()):
            continue
        family = fn.__module__.rsplit(".", 1)[-1]
        size = MIN_SIZE.get(family, 32)

        def build(fn=fn, size=size):
            return fn(weights=None, input_shape=(size, size, 3), classes=10, classifier_activation=None)

        out.append(Entry(name, "keras.applications", build, (1, size, size, 3), pixels=True, family=family))
    return out


#: Size words of keras.applications names, smallest first (numbered members such as B0 or 50 come before them).
SIZE_WORDS = ("Tiny", "Small", "Mobile", "S", "Base", "M", "Large", "L", "XLarge")


def size_key(name: str) -> tuple[int, int]:
    """Order a family's members by size from their names alone (building 40 models to count weights is slow)."""
    number = re.search(r"(\d+)(?:V\d)?$", name)  # ResNet50V2: 50
    if number:
        return 0, int(number.group(1))
    word = next((w for w in sorted(SIZE_WORDS, key=len, reverse=True) if name.endswith(w)), "XLarge")
    return 1, SIZE_WORDS.index(word)


def smallest_per_family(entries: list[Entry]) -> list[Entry]:
    """One architecture per family: members of a family differ in width and depth, not in ops."""
    seen: dict[str, Entry] = {}
    for e in sorted(entries, key=lambda e: size_key(e.name)):
        seen.setdefault(e.family, e)
    return sorted(seen.values(), key=lambda e: e.name)


# ------------------------------------------------------------------------------------------------- keras.layers
def _conv_then(layer: Callable[[Any], Any], channels: int = 4) -> Callable[[], Any]:
    """A conv (so the op under test sees real features) followed by the layer under test."""

    def build():
        import keras

        inp = keras.Input((12, 10, 3))
        x = keras.layers.Conv2D(channels, 3, padding="same")(inp)
        return keras.Model(inp, layer(keras)(x))

    return build


def _nearest_down_reference(model: Any, x: np.ndarray) -> np.ndarray:
    """coremltools converts a nearest *downscale* as a bilinear one (its TensorFlow frontend): hold the emulator
    to what the package says, and let parity measure the converter's change."""
    import keras
    import tensorflow as tf

    features = keras.Model(model.input, model.layers[-2].output)(x)
    return np.asarray(tf.image.resize(features, (5, 7), method="bilinear"))


def _resize_v1(k: Any) -> Any:
    import tensorflow as tf

    # half_pixel_centers=False at a fractional scale (1.5): coremltools emits upsample_nearest_neighbor
    return k.layers.Lambda(lambda t: tf.compat.v1.image.resize_nearest_neighbor(t, (18, 15)))


LAYERS: dict[str, Callable[[Any], Any]] = {
    "conv_strided_valid": lambda k: k.layers.Conv2D(6, 3, strides=2, padding="valid"),
    "conv_dilated": lambda k: k.layers.Conv2D(6, 3, dilation_rate=2, padding="same"),
    "conv_grouped": lambda k: k.layers.Conv2D(8, 3, groups=2, padding="same"),
    "conv_1x1_bias_free": lambda k: k.layers.Conv2D(6, 1, use_bias=False),
    "depthwise": lambda k: k.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
    "separable": lambda k: k.layers.SeparableConv2D(6, 3, padding="same"),
    "conv_transpose": lambda k: k.layers.Conv2DTranspose(5, 3, strides=2, padding="same"),
    # outputs beyond the full extent (stride above the kernel, output_padding): rows no input reaches
    "conv_transpose_sparse": lambda k: k.layers.Conv2DTranspose(4, 1, strides=2, padding="same"),
    "conv_transpose_output_padding": lambda k: k.layers.Conv2DTranspose(4, 3, strides=2, output_padding=1),
    "max_pool": lambda k: k.layers.MaxPooling2D(3, strides=2, padding="same"),
    "avg_pool": lambda k: k.layers.AveragePooling2D(2),
    "global_avg_pool": lambda k: k.layers.GlobalAveragePooling2D(keepdims=True),
    "global_max_pool": lambda k: k.layers.GlobalMaxPooling2D(),
    "batch_norm": lambda k: k.layers.BatchNormalization(),
    "layer_norm": lambda k: k.layers.LayerNormalization(),
    "group_norm": lambda k: k.layers.GroupNormalization(groups=2),
    "upsample_nearest": lambda k: k.layers.UpSampling2D(2, interpolation="nearest"),
    "upsample_bilinear": lambda k: k.layers.UpSampling2D(2, interpolation="bilinear"),
    "resize_nearest_up": lambda k: k.layers.Resizing(30, 20, interpolation="nearest"),
    "resize_nearest_down": lambda k: k.layers.Resizing(5, 7, interpolation="nearest"),
    "resize_bilinear_up": lambda k: k.layers.Resizing(30, 20, interpolation="bilinear"),
    "resize_bilinear_down": lambda k: k.layers.Resizing(5, 7, interpolation="bilinear"),
    "upsample_nearest_fractional": _resize_v1,
    "zero_padding": lambda k: k.layers.ZeroPadding2D(((1, 2), (0, 1))),
    "cropping": lambda k: k.layers.Cropping2D(((1, 0), (2, 1))),
    "prelu": lambda k: k.layers.PReLU(shared_axes=[1, 2],
                                      alpha_initializer=k.initializers.RandomUniform(0.1, 0.9, seed=1)),
    "leaky_relu": lambda k: k.layers.LeakyReLU(negative_slope=0.2),
    "relu_capped": lambda k: k.layers.ReLU(max_value=4.0, negative_slope=0.1, threshold=0.5),
    "elu_layer": lambda k: k.layers.ELU(),
    "softmax_channels": lambda k: k.layers.Softmax(axis=-1),
    "rescaling": lambda k: k.layers.Rescaling(1 / 127.5, offset=-1),
    "dense_on_channels": lambda k: k.layers.Dense(5),
    "permute": lambda k: k.layers.Permute((3, 1, 2)),
    "reshape_flat": lambda k: k.layers.Reshape((-1, 4)),
    "flatten": lambda k: k.layers.Flatten(),
    "squeeze_excite": lambda k: _squeeze_excite(k),
    "split_concat": lambda k: _split_concat(k),
}


def _squeeze_excite(k: Any) -> Any:
    def block(x):
        s = k.layers.GlobalAveragePooling2D(keepdims=True)(x)
        s = k.layers.Conv2D(4, 1, activation="hard_sigmoid")(s)
        return k.layers.Multiply()([x, s])

    return block


def _split_concat(k: Any) -> Any:
    def block(x):  # the C2f pattern of YOLOv8-style necks: split channels, transform one half, concatenate
        a, b = k.ops.split(x, 2, axis=-1)
        return k.layers.Concatenate()([a, k.layers.Conv2D(2, 3, padding="same", activation="silu")(b), b])

    return block


#: ``keras.activations`` functions that take no required argument besides ``x`` (``softmax`` and ``log_softmax``
#: run over channels); anything else there is a helper, not an activation.
_NOT_ACTIVATIONS = {"get", "serialize", "deserialize"}


def activations() -> dict[str, Callable[[Any], Any]]:
    """Every activation function of ``keras.activations``, as an ``Activation`` layer."""
    import keras

    out = {}
    for name, fn in sorted(vars(keras.activations).items()):
        if name.startswith("_") or name in _NOT_ACTIVATIONS or not inspect.isfunction(fn):
            continue
        required = [p for p in list(inspect.signature(fn).parameters.values())[1:]
                    if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
        if required:
            continue
        out[f"activation_{name}"] = lambda k, fn=fn: k.layers.Activation(fn)
    out["activation_gelu_tanh"] = lambda k: k.layers.Activation(lambda t: k.activations.gelu(t, approximate=True))
    return out


def layers() -> list[Entry]:
    out = []
    for name, layer in {**LAYERS, **activations()}.items():
        reference = _nearest_down_reference if name == "resize_nearest_down" else None
        out.append(Entry(name, "keras.layers" if not name.startswith("activation_") else "keras.activations",
                         _conv_then(layer), (1, 12, 10, 3), reference=reference, family=name))
    return out


# ------------------------------------------------------------------------------------------------------ detectors
def _backbone(k: Any, inp: Any, widths: tuple[int, ...] = (8, 12, 16, 24, 32)) -> list[Any]:
    """A small strided backbone: features at strides 2..32 (C1..C5)."""
    x, feats = inp, []
    for w in widths:
        x = k.layers.Conv2D(w, 3, strides=2, padding="same", use_bias=False)(x)
        x = k.layers.BatchNormalization()(x)
        x = k.layers.Activation("swish")(x)
        feats.append(x)
    return feats


def retinanet_fpn(classes: int = 6, anchors: int = 9) -> Any:
    """RetinaNet's layout (keras-hub / keras-cv): FPN on C3..C5 with P6, P7 from strided convs, one shared head
    per role applied to every level, reshaped and concatenated along the anchor axis."""
    import keras as k

    inp = k.Input((64, 64, 3))
    c3, c4, c5 = _backbone(k, inp)[2:]
    p5 = k.layers.Conv2D(16, 1)(c5)
    p4 = k.layers.Add()([k.layers.Conv2D(16, 1)(c4), k.layers.UpSampling2D(2)(p5)])
    p3 = k.layers.Add()([k.layers.Conv2D(16, 1)(c3), k.layers.UpSampling2D(2)(p4)])
    p6 = k.layers.Conv2D(16, 3, strides=2, padding="same")(c5)
    p7 = k.layers.Conv2D(16, 3, strides=2, padding="same")(k.layers.ReLU()(p6))
    levels = [k.layers.Conv2D(16, 3, padding="same")(p) for p in (p3, p4)] + [p5, p6, p7]
    box_conv, cls_conv = k.layers.Conv2D(anchors * 4, 3, padding="same"), k.layers.Conv2D(anchors * classes, 3,
                                                                                          padding="same")
    boxes = k.layers.Concatenate(axis=1)([k.layers.Reshape((-1, 4))(box_conv(p)) for p in levels])
    scores = k.layers.Concatenate(axis=1)([k.layers.Reshape((-1, classes))(cls_conv(p)) for p in levels])
    return k.Model(inp, [boxes, scores])


def yolov8_pan(classes: int = 6, reg_max: int = 16) -> Any:
    """YOLOv8's layout (keras-cv): a PAN neck with C2f blocks (split, conv, concatenate), a DFL box branch of
    4 x reg_max bins and a class branch per level, concatenated per level and along the anchor axis."""
    import keras as k

    def c2f(x, w):
        x = k.layers.Conv2D(w, 1, activation="swish")(x)
        a, b = k.ops.split(x, 2, axis=-1)
        b2 = k.layers.Conv2D(w // 2, 3, padding="same", activation="swish")(b)
        return k.layers.Conv2D(w, 1, activation="swish")(k.layers.Concatenate()([a, b, b2]))

    inp = k.Input((64, 64, 3))
    c3, c4, c5 = _backbone(k, inp)[2:]
    p4 = c2f(k.layers.Concatenate()([k.layers.UpSampling2D(2)(c5), c4]), 16)
    p3 = c2f(k.layers.Concatenate()([k.layers.UpSampling2D(2)(p4), c3]), 16)
    n4 = c2f(k.layers.Concatenate()([k.layers.Conv2D(16, 3, strides=2, padding="same")(p3), p4]), 16)
    n5 = c2f(k.layers.Concatenate()([k.layers.Conv2D(16, 3, strides=2, padding="same")(n4), c5]), 24)
    outs = []
    for p in (p3, n4, n5):
        box = k.layers.Conv2D(4 * reg_max, 1)(k.layers.Conv2D(16, 3, padding="same", activation="swish")(p))
        cls = k.layers.Conv2D(classes, 1)(k.layers.Conv2D(16, 3, padding="same", activation="swish")(p))
        outs.append(k.layers.Reshape((-1, 4 * reg_max + classes))(k.layers.Concatenate()([box, cls])))
    out = k.layers.Concatenate(axis=1)(outs)
    return k.Model(inp, k.layers.Activation("linear", dtype="float32")(out))


def yolox_head(classes: int = 6, size: int = 64) -> Any:
    """YOLOX's layout (Keras model zoos): decoupled ``[box, cls, obj]`` per level, concatenated on channels,
    reshaped to anchors and concatenated along the anchor axis, ending in a float32 linear Activation."""
    import keras as k

    inp = k.Input((size, size, 3))
    c3, c4, c5 = _backbone(k, inp)[2:]
    p4 = k.layers.Concatenate()([k.layers.UpSampling2D(2, interpolation="nearest")(c5), c4])
    p3 = k.layers.Concatenate()([k.layers.UpSampling2D(2, interpolation="nearest")(p4), c3])
    outs = []
    for p in (p3, p4, c5):
        stem = k.layers.Conv2D(16, 1, activation="swish")(p)
        box = k.layers.Conv2D(4, 1)(stem)
        obj = k.layers.Conv2D(1, 1, activation="sigmoid")(stem)
        cls = k.layers.Conv2D(classes, 1, activation="sigmoid")(stem)
        outs.append(k.layers.Reshape((-1, 5 + classes))(k.layers.Concatenate()([box, cls, obj])))
    out = k.layers.Concatenate(axis=1)(outs)
    return k.Model(inp, k.layers.Activation("linear", dtype="float32")(out))


def detectors() -> list[Entry]:
    return [Entry(fn.__name__, "detector necks", fn, (1, 64, 64, 3), family=fn.__name__)
            for fn in (retinanet_fpn, yolov8_pan, yolox_head)]


#: How keras-hub and keras-cv RetinaNets lay out their anchors (levels P3-P7, 3 scales x 3 ratios per cell), each
#: convention as the library's own generator has it (tests/test_heads.py holds them to the libraries' tables).
HUB_RETINA = {"strides": [8, 16, 32, 64, 128], "anchor_scale": 4, "octaves": 3, "aspect_ratios": [0.5, 1.0, 2.0],
              "ratio": "h/w", "order": "ratio_first", "offset": 0, "rounding": "torchvision", "deltas": "xywh"}
CV_RETINA = {"strides": [8, 16, 32, 64, 128], "sizes": [32, 64, 128, 256, 512], "octaves": 3,
             "aspect_ratios": [0.5, 1.0, 2.0], "clip": True, "variances": [0.1, 0.1, 0.2, 0.2]}


def _hub_retinanet(wrapped: bool = True) -> Any:
    """keras-hub's RetinaNet (ResNet-18), as a functional model of its raw outputs, or (``wrapped=False``) the
    detector itself, which carries its anchor generator and decoder."""
    import keras
    import keras_hub

    enc = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[2, 2, 2, 2], stackwise_num_strides=[1, 2, 2, 2], block_type="basic_block",
        use_pre_activation=False, image_shape=(320, 320, 3))
    backbone = keras_hub.models.RetinaNetBackbone(image_encoder=enc, min_level=3, max_level=7, use_p5=False,
                                                  image_shape=(320, 320, 3))
    det = keras_hub.models.RetinaNetObjectDetector(backbone=backbone, num_classes=80)
    return keras.Model(det.inputs, det.outputs, name="hub_retinanet_r18") if wrapped else det


def _cv_retinanet(wrapped: bool = True) -> Any:
    import keras
    import keras_cv

    backbone = keras_cv.models.ResNetBackbone(
        stackwise_filters=[64, 128, 256, 512], stackwise_blocks=[2, 2, 2, 2], stackwise_strides=[1, 2, 2, 2],
        include_rescaling=True, block_type="basic_block", input_shape=(320, 320, 3))
    det = keras_cv.models.RetinaNet(num_classes=80, bounding_box_format="xyxy", backbone=backbone)
    return keras.Model(det.inputs, det.outputs, name="cv_retinanet_r18") if wrapped else det


def _cv_yolov8(wrapped: bool = True) -> Any:
    import keras
    import keras_cv

    backbone = keras_cv.models.YOLOV8Backbone(stackwise_channels=[32, 64, 128, 256], stackwise_depth=[1, 2, 2, 1],
                                              include_rescaling=True, activation="swish", input_shape=(320, 320, 3))
    det = keras_cv.models.YOLOV8Detector(num_classes=80, bounding_box_format="xyxy", backbone=backbone, fpn_depth=1)
    return keras.Model(det.inputs, det.outputs, name="cv_yolov8_xs") if wrapped else det


def _yolox_320() -> Any:
    return yolox_head(classes=79, size=320)  # 79 classes + objectness: 80 score channels, as coco128 has names


#: name -> (builder, package, how a user hands it over, the detection config, input scale)
THIRD_PARTY: dict[str, tuple[Callable[[], Any], str, str, dict[str, Any], float]] = {
    # keras-hub 0.32 cannot reload its own RetinaNet from .keras (PredictionHead.build gets a list): a SavedModel,
    # the fix mobilekit's load error names
    "keras-hub RetinaNet R18": (_hub_retinanet, "keras_hub", "savedmodel",
                                # the SavedModel names its outputs output_0/1: the 4-channel one is found alone
                                {"head": "retinanet", "score_activation": "sigmoid", "params": HUB_RETINA}, 1 / 255),
    "keras-cv RetinaNet R18": (_cv_retinanet, "keras_cv", "keras",
                               {"head": "retinanet", "score_activation": "sigmoid",
                                "outputs": {"boxes": "box", "scores": "classification"}, "params": CV_RETINA}, 1.0),
    # YOLOV8's raw head: 64 DFL bins per anchor point and sigmoid class scores, strides 8/16/32
    "keras-cv YOLOV8 xs": (_cv_yolov8, "keras_cv", "keras",
                           {"head": "dfl", "score_activation": "none", "outputs": {"boxes": "box", "scores": "class"},
                            "params": {"strides": [8, 16, 32], "reg_max": 16}}, 1.0),
    "YOLOX-style head (own)": (_yolox_320, "keras", "keras",
                               {"head": "yolo", "box_format": "cxcywh", "box_units": "pixels",
                                "score_activation": "none"}, 1 / 255),
}


def third_party() -> list[Entry]:
    """keras-hub's and keras-cv's detectors, built without weights, when those packages are installed."""
    import importlib.util

    return [Entry(name, "third-party detectors", build, (1, 320, 320, 3), pixels=True, family=name)
            for name, (build, package, *_rest) in THIRD_PARTY.items()
            if package != "keras" and importlib.util.find_spec(package) is not None]


# ---------------------------------------------------------------------------------------------------- conversion
def convert(model: Any, shape: tuple[int, ...], path: Path, fp32: bool = True, target: str = "iOS16") -> Path:
    """The package coremltools makes of the model's inference function (as mobilekit converts: the TensorFlow
    frontend on a concrete function, ML Program, iOS 16)."""
    import coremltools as ct
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn = convert_variables_to_constants_v2(  # frozen and inlined, as mobilekit's serving function is
        tf.function(lambda x: model(x, training=False)).get_concrete_function(tf.TensorSpec(shape, tf.float32)))
    precision = ct.precision.FLOAT32 if fp32 else ct.precision.FLOAT16
    mlmodel = ct.convert([fn], source="tensorflow", convert_to="mlprogram", inputs=[ct.TensorType(shape=shape)],
                         compute_precision=precision, minimum_deployment_target=getattr(ct.target, target))
    mlmodel.save(str(path))
    return path


def mil_ops(path: Path) -> Counter[str]:
    """Op types of a package's main function, constants excluded."""
    from mobilekit.emulate.coreml.runtime import load_program

    function, _ = load_program(path)
    return Counter(o.op_type for o in function.operations if o.op_type != "const")


def sample(entry: Entry, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if entry.pixels:
        return rng.uniform(0, 255, entry.shape).astype("float32")
    return rng.normal(size=entry.shape).astype("float32")


def reference(entry: Entry, model: Any, x: np.ndarray) -> list[np.ndarray]:
    if entry.reference is not None:
        return [entry.reference(model, x)]
    out = model(x, training=False)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]
