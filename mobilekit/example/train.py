"""Train the small models behind ``mobilekit example`` and the test fixtures (seconds on a laptop CPU).

The detectors reproduce the export shapes users bring: a YOLO-style head whose boxes are decoded in the graph and
concatenated with the class scores (the int8 trap mobilekit splits), its transposed twin, an SSD head with anchors
and variances, and a two-output already-decoded head. All use standard Keras 3 layers and ``keras.ops`` only, so
the saved ``.keras`` files load without custom objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mobilekit.data.preprocess import letterbox, normalize
from mobilekit.example.shapes import LABELS, ShapeImage
from mobilekit.heads.ssd import encode_deltas, ssd_anchors
from mobilekit.postprocess import iou_matrix

SIZE = 96
STRIDE = 8
GRID = SIZE // STRIDE
SSD_RATIOS = [1.0, 2.0, 0.5]
SSD_SCALE = 0.35
SSD_VARIANCES = [0.1, 0.1, 0.2, 0.2]


def _canvas(images: list[ShapeImage]) -> tuple[np.ndarray, list[np.ndarray]]:
    xs, boxes = [], []
    for im in images:
        canvas, plan = letterbox(im.pixels, SIZE, SIZE, "letterbox", 114)
        xs.append(normalize(canvas, [1 / 255] * 3, [0.0] * 3, "RGB", "NHWC")[0])
        boxes.append(plan.to_input(im.boxes))
    return np.stack(xs), boxes


def _backbone(keras: Any, inp: Any) -> Any:
    x = inp
    for filters, stride in [(16, 2), (32, 2), (32, 1), (64, 2), (64, 1)]:
        x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU(6.0)(x)
    return x


def yolo_head(keras: Any, features: Any, num_classes: int, size: int, stride: int) -> Any:
    """``[1, N, 4 + C]``: decoded ``cx, cy, w, h`` in input pixels concatenated with sigmoid class scores."""
    grid = size // stride
    n = grid * grid
    xy = keras.layers.Reshape((n, 2))(keras.layers.Conv2D(2, 1, activation="sigmoid", name="xy")(features))
    wh = keras.layers.Reshape((n, 2))(keras.layers.Conv2D(2, 1, activation="sigmoid", name="wh")(features))
    cls = keras.layers.Reshape((n, num_classes))(
        keras.layers.Conv2D(num_classes, 1, activation="sigmoid", name="cls")(features))
    gy, gx = np.mgrid[0:grid, 0:grid]
    offsets = ((np.stack([gx, gy], -1).reshape(1, n, 2) - 0.5) * stride).astype("float32")
    xy = keras.ops.add(keras.ops.multiply(xy, 2.0 * stride), offsets)  # (2σ - 0.5 + g) · stride
    wh = keras.layers.Rescaling(float(size))(wh)
    return keras.layers.Concatenate(axis=-1, name="predictions")([xy, wh, cls])


def build_yolo(num_classes: int = len(LABELS)) -> Any:
    import keras

    inp = keras.Input((SIZE, SIZE, 3), name="image")
    return keras.Model(inp, yolo_head(keras, _backbone(keras, inp), num_classes, SIZE, STRIDE), name="shapes_yolo")


def yolo_targets(boxes: list[np.ndarray], classes: list[np.ndarray], num_classes: int, size: int = SIZE,
                 stride: int = STRIDE) -> np.ndarray:
    """Each object is positive in its centre cell and the two nearest neighbours (YOLOv5's assignment)."""
    grid = size // stride
    n = grid * grid
    y = np.zeros((len(boxes), n, 4 + num_classes + 1), np.float32)
    for i, (bx, cl) in enumerate(zip(boxes, classes, strict=True)):
        for (x0, y0, x1, y1), c in zip(bx, cl, strict=True):
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            gx, gy = min(grid - 1, int(cx // stride)), min(grid - 1, int(cy // stride))
            fx, fy = cx / stride - gx, cy / stride - gy
            cells = [(gx, gy), (gx - 1 if fx < 0.5 else gx + 1, gy), (gx, gy - 1 if fy < 0.5 else gy + 1)]
            for cx_, cy_ in cells:
                if 0 <= cx_ < grid and 0 <= cy_ < grid:
                    k = cy_ * grid + cx_
                    y[i, k, :4] = [cx / size, cy / size, (x1 - x0) / size, (y1 - y0) / size]
                    y[i, k, 4 + c] = 1.0
                    y[i, k, -1] = 1.0
    return y


def yolo_loss(keras: Any, num_classes: int, size: int) -> Any:
    """L1 on normalized boxes at positive cells + class BCE with positives weighted up (few cells hold objects)."""

    def loss(y_true, y_pred):
        ops = keras.ops
        pos = y_true[..., -1]
        l_box = ops.sum(ops.abs(y_pred[..., :4] / size - y_true[..., :4]) * pos[..., None]) / (ops.sum(pos) + 1.0)
        p = ops.clip(y_pred[..., 4:], 1e-6, 1 - 1e-6)
        t = y_true[..., 4:4 + num_classes]
        bce = -(t * ops.log(p) * 8.0 + (1 - t) * ops.log(1 - p))
        return 5.0 * l_box + ops.mean(ops.sum(bce, axis=-1)) * 0.5

    return loss


def train_yolo(images: list[ShapeImage], epochs: int = 12, seed: int = 0) -> Any:
    import keras

    keras.backend.clear_session()  # fresh layer-name counters: the same names whatever was built before
    keras.utils.set_random_seed(seed)
    c = len(LABELS)
    x, boxes = _canvas(images)
    y = yolo_targets(boxes, [im.classes for im in images], c)
    model = build_yolo(c)
    model.compile(keras.optimizers.Adam(3e-3), loss=yolo_loss(keras, c, SIZE))
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, shuffle=True)
    return model


#: Bins per box side of the DFL variant, and how sharply its bins peak at the distance (logits -SHARPNESS * |k - d|)
REG_MAX = 16
DFL_SHARPNESS = 3.0


def _dfl_head(keras: Any, xy: Any, wh: Any, cls: Any, sides: str = "ltrb") -> Any:
    """YOLOv8's raw head from the trained one's boxes: per cell, the left/top/right/bottom distances from the cell
    centre (in strides, clipped to the bins) as REG_MAX logits peaked at each distance, then class logits; one
    ``[1, N, 4 * REG_MAX + C]`` output, as a raw YOLOv8 export. ``sides``: the order of the four sides' bins
    (``tlbr``: keras_cv_attention_models' YOLOv8)."""
    ops = keras.ops
    grid = SIZE // STRIDE
    gy, gx = np.mgrid[0:grid, 0:grid]
    centres = ((np.stack([gx, gy], -1).reshape(1, grid * grid, 2) + 0.5) * STRIDE).astype("float32")
    half = ops.multiply(wh, 0.5)
    lt = ops.divide(ops.subtract(centres, ops.subtract(xy, half)), float(STRIDE))
    rb = ops.divide(ops.subtract(ops.add(xy, half), centres), float(STRIDE))
    d = ops.clip(ops.concatenate([lt, rb], axis=-1), 0.0, REG_MAX - 1.0)  # l, t, r, b
    if sides != "ltrb":
        d = ops.take(d, ["ltrb".index(c) for c in sides], axis=-1)
    bins = np.arange(REG_MAX, dtype="float32")
    logits = ops.multiply(ops.abs(ops.subtract(ops.expand_dims(d, -1), bins)), -DFL_SHARPNESS)
    logits = keras.layers.Reshape((grid * grid, 4 * REG_MAX), name="dfl_bins")(logits)
    p = ops.clip(cls, 1e-6, 1 - 1e-6)
    class_logits = ops.subtract(ops.log(p), ops.log(ops.subtract(1.0, p)))
    return keras.layers.Concatenate(axis=-1, name="raw_head")([logits, class_logits])


#: The anchor of the YOLOv5-style variant (one per cell, input pixels): (2 sigmoid)^2 * 48 covers the fixture's sizes
GRID_ANCHOR = 48.0


#: The anchor of the YOLOv7-style variant, ``[w, h]`` (its config lists it ``[h, w]``, as the zoo does)
ZOO_ANCHOR = [40.0, 56.0]


def _grid_head(keras: Any, xy: Any, wh: Any, cls: Any, box: str) -> Any:
    """``[box, objectness, classes]`` from the trained head: objectness is the best class probability, the
    classes stay (no division in the graph: an int8 divisor can round to 0). ``decoded``: cx, cy, w, h in pixels, all as
    probabilities; ``yolox`` and ``anchors``: the raw channels of YOLOX and YOLOv5 for the same boxes, scores as
    logits. ``yolox_zoo`` and ``yolov7_zoo``: as keras_cv_attention_models exports them, ``[box, classes,
    objectness]`` with y-first box channels and the scores already activated (YOLOv7: the boxes' sigmoid too, and
    a ``[w, h]`` anchor of :data:`ZOO_ANCHOR`)."""
    ops = keras.ops
    grid = SIZE // STRIDE
    gy, gx = np.mgrid[0:grid, 0:grid]
    cell = np.stack([gx, gy], -1).reshape(1, grid * grid, 2).astype("float32")
    obj = ops.max(cls, axis=-1, keepdims=True)  # score = obj x class: the best class squared, its ranking kept
    probs = cls
    if box == "decoded":
        return keras.layers.Concatenate(axis=-1, name="raw_head")([xy, wh, obj, probs])

    def logit(p):
        p = ops.clip(p, 1e-6, 1 - 1e-6)
        return ops.subtract(ops.log(p), ops.log(ops.subtract(1.0, p)))

    def y_first(t):  # [a, b] -> [b, a]
        return ops.take(t, [1, 0], axis=-1)

    if box == "yolox_zoo":
        raw = [ops.subtract(ops.divide(xy, float(STRIDE)), cell), ops.log(ops.divide(ops.maximum(wh, 1e-3), STRIDE))]
        return keras.layers.Concatenate(axis=-1, name="raw_head")([*map(y_first, raw), probs, obj])
    if box == "yolov7_zoo":
        anchor = np.asarray(ZOO_ANCHOR, "float32")
        s = [ops.divide(ops.add(ops.subtract(ops.divide(xy, float(STRIDE)), cell), 0.5), 2.0),
             ops.divide(ops.sqrt(ops.divide(ops.maximum(wh, 1e-3), anchor)), 2.0)]
        s = [ops.clip(v, 0.0, 1.0) for v in s]  # a sigmoid's range
        return keras.layers.Concatenate(axis=-1, name="raw_head")([*map(y_first, s), probs, obj])
    if box == "yolox":
        raw = [ops.subtract(ops.divide(xy, float(STRIDE)), cell), ops.log(ops.divide(ops.maximum(wh, 1e-3), STRIDE))]
    else:
        raw = [logit(ops.divide(ops.add(ops.subtract(ops.divide(xy, float(STRIDE)), cell), 0.5), 2.0)),
               logit(ops.divide(ops.sqrt(ops.divide(wh, GRID_ANCHOR)), 2.0))]
    return keras.layers.Concatenate(axis=-1, name="raw_head")([*raw, logit(obj), logit(probs)])


#: The multi-level anchor fixtures (strides 8/16/32 at 96 pixels: 12, 6 and 3 cells per side): keras-cv's
#: conventions with its variances and clipped anchors, and torchvision's (keras-hub's), one output per level.
RETINA = {"strides": [8, 16, 32], "anchor_scale": 4, "octaves": 2, "aspect_ratios": [0.5, 1.0, 2.0],
          "variances": [0.1, 0.1, 0.2, 0.2], "clip": True}
#: EfficientDet's spacing (keras_cv_attention_models): RETINA with a fourth level of stride 64, which has
#: ceil(96 / 64) = 2 cells 48 pixels apart, its anchors sized from 48, not 64
RETINA_CELLS = {"strides": [8, 16, 32, 64], "anchor_scale": 4, "octaves": 2, "aspect_ratios": [0.5, 1.0, 2.0],
                "variances": [0.1, 0.1, 0.2, 0.2], "clip": True, "spacing": "cells"}
RETINA_LEVELS = {"strides": [8, 16, 32], "anchor_scale": 4, "octaves": 1, "aspect_ratios": [0.5, 1.0, 2.0],
                 "ratio": "h/w", "order": "ratio_first", "offset": 0, "rounding": "torchvision", "deltas": "xywh"}


def _tile(layers: Any, t: Any, a: int, name: str) -> Any:
    """``t`` once per anchor, along the channels."""
    return layers.Concatenate(name=name)([t] * a) if a > 1 else t


def _level_deltas(keras: Any, m: Any, an: np.ndarray, p: dict[str, Any], level: int) -> Any:
    """``[1, HW, A * 4]`` deltas of one level's cell boxes ``m`` (``[1, HW, 4]`` cx, cy, w, h pixels) against its
    anchors ``an`` (``[1, HW, A, 4]``), in the head's channel order and over its variances. Every op runs once per
    level on anchor-tiled tensors: a slice fanned out to per-anchor ops with different constants stayed float in
    int8."""
    ops, layers = keras.ops, keras.layers
    _, hw, a, _ = an.shape
    xy_, wh_ = m[:, :, 0:2], m[:, :, 2:4]
    if p["deltas"] == "yxhw":
        xy_ = layers.Concatenate(name=f"yx_{level}")([m[:, :, 1:2], m[:, :, 0:1]])
        wh_ = layers.Concatenate(name=f"hw_{level}")([m[:, :, 3:4], m[:, :, 2:3]])
    order = [1, 0] if p["deltas"] == "yxhw" else [0, 1]
    centre, extent = an[..., :2][..., order], an[..., 2:][..., order]  # [1, HW, A, 2], the deltas' order
    dxy = ops.add(ops.divide(_tile(layers, xy_, a, f"xy_tiled_{level}"), extent.reshape(1, hw, 2 * a)),
                  (-centre / extent).reshape(1, hw, 2 * a))
    dwh = ops.log(ops.divide(ops.maximum(_tile(layers, wh_, a, f"wh_tiled_{level}"), 1e-3),
                             extent.reshape(1, hw, 2 * a)))
    d = layers.Concatenate(axis=-1, name=f"deltas_{level}")(
        [layers.Reshape((hw, a, 2))(dxy), layers.Reshape((hw, a, 2))(dwh)])
    v = np.asarray(p["variances"], "float32")
    return ops.divide(layers.Reshape((hw, a * 4))(d), np.tile(v, a))


def _retina_head(keras: Any, model: Any, xy: Any, wh: Any, levels: bool, settings: dict[str, Any] | None = None
                 ) -> list[Any]:
    """RetinaNet's raw head from the trained one's boxes: level 0 is the trained grid, levels 1 and 2 every
    2nd and 4th cell of it (scores halved and quartered); every anchor of a cell holds the cell's box as deltas against
    itself (``heads.retinanet``'s anchors, so the encoding is the head's inverse) and the trained class logits,
    each anchor a little less confident than the one before. ``levels``: one ``[1, H, W, A * 4]`` and one
    ``[1, H, W, A * C]`` output per level, as torchvision's and keras-hub's heads compute them; else the levels
    concatenated into box deltas ``[1, N, 4]`` and class logits ``[1, N, C]``."""
    from types import SimpleNamespace

    from mobilekit.heads.retinanet import anchors, resolve

    ops, layers = keras.ops, keras.layers
    size = SimpleNamespace(width=SIZE, height=SIZE)
    p = resolve(settings or (RETINA_LEVELS if levels else RETINA), size)
    table = anchors(p, size).astype("float32")
    # the class logits of the trained head: its sigmoid convolution again, linear (logits computed from int8
    # probabilities in the graph would lose every low score)
    trained = model.get_layer("cls")
    classes = int(trained.filters)
    logit_conv = layers.Conv2D(classes, 1, name="cls_logits")
    cls_maps = logit_conv(trained.input)
    logit_conv.set_weights(trained.get_weights())
    maps = layers.Reshape((GRID, GRID, 4), name="head_maps")(layers.Concatenate(name="head_in")([xy, wh]))
    outs: dict[str, list[Any]] = {"boxes": [], "scores": []}
    start = 0
    for level, ((gh, gw), shapes) in enumerate(zip(p["grids"], p["shapes"], strict=True)):
        k = GRID // gh  # every k-th cell of the trained grid, from the middle of the first k
        m = maps if level == 0 else maps[:, k // 2::k, k // 2::k, :]
        c = cls_maps if level == 0 else cls_maps[:, k // 2::k, k // 2::k, :]
        # an identity 1x1 convolution per level: its output takes its own int8 scale (without it the converter
        # met conflicting scales for the slices of one shared tensor and left a level's arithmetic in float)
        conv = layers.Conv2D(4, 1, use_bias=False, name=f"level_{level}")
        m = conv(m)
        conv.set_weights([np.eye(4, dtype="float32").reshape(1, 1, 4, 4)])
        m = layers.Reshape((gh * gw, 4), name=f"cells_{level}")(m)
        cell_logits = layers.Reshape((gh * gw, classes), name=f"cell_logits_{level}")(c)
        a = len(shapes)
        an = table[start:start + gh * gw * a].reshape(1, gh * gw, a, 4)
        start += gh * gw * a
        d = _level_deltas(keras, m, an, p, level)
        # each anchor a little less confident than the one before, coarser levels less than finer ones
        offset = np.repeat(np.log((0.5 ** level) * (1.0 - 0.05 * np.arange(a, dtype="float32"))), classes)
        logits = ops.add(_tile(layers, cell_logits, a, f"cls_tiled_{level}"),
                         np.broadcast_to(offset, (1, gh * gw, a * classes)).astype("float32"))
        shape_b, shape_s = ((gh, gw, a * 4), (gh, gw, a * classes)) if levels else ((-1, 4), (-1, classes))
        outs["boxes"].append(layers.Reshape(shape_b, name=f"box_deltas_p{level + 3}")(d))
        outs["scores"].append(layers.Reshape(shape_s, name=f"class_logits_p{level + 3}")(logits))
    if levels:
        return [t for pair in zip(outs["boxes"], outs["scores"], strict=True) for t in pair]
    return [layers.Concatenate(axis=1, name=f"{'box_deltas' if r == 'boxes' else 'class_logits'}")(ts)
            for r, ts in outs.items()]


def yolo_variant(model: Any, variant: str) -> Any:
    """Re-head a trained YOLO model: ``transposed`` ([1, 4+C, N]), ``decoded`` (xyxy normalized + scores), ``dfl``
    (YOLOv8's raw DFL bins + class logits, one output; ``dfl_tlbr`` with the sides in that order),
    ``grid_decoded`` / ``grid_yolox`` / ``grid_anchors`` (``[box, objectness, classes]``, boxes decoded or raw as
    YOLOX and YOLOv5 emit them; ``grid_yolox_zoo`` / ``grid_yolov7_zoo`` as a tf_keras zoo does), or ``retinanet`` /
    ``retinanet_levels`` / ``retinanet_cells`` (multi-level anchor deltas and class logits, concatenated or one
    output per level; EfficientDet's cell spacing)."""
    import keras

    pred = model.get_layer("predictions")
    xy, wh, cls = pred.input
    if variant.startswith(("dfl", "retinanet", "grid_")):
        # rebuilt in a fresh session with the trained weights: the raw head's ops are auto-named ("multiply"), and
        # names counted afresh in this process would repeat the loaded model's
        weights, classes = model.get_weights(), int(cls.shape[-1])
        keras.utils.clear_session()
        fresh = build_yolo(classes)
        fresh.set_weights(weights)
        xy, wh, cls = fresh.get_layer("predictions").input
        if variant.startswith("retinanet"):
            out = _retina_head(keras, fresh, xy, wh, levels=variant.endswith("levels"),
                               settings=RETINA_CELLS if variant == "retinanet_cells" else None)
        elif variant.startswith("dfl"):
            out = _dfl_head(keras, xy, wh, cls, sides=variant.removeprefix("dfl").strip("_") or "ltrb")
        else:
            out = _grid_head(keras, xy, wh, cls, variant[5:])
        return keras.Model(fresh.inputs, out, name=f"shapes_{variant}")
    if variant == "transposed":
        out = keras.layers.Permute((2, 1), name="transpose")(
            keras.layers.Concatenate(axis=-1, name="joined")([xy, wh, cls]))
        return keras.Model(model.inputs, out, name="shapes_yolo_t")
    # named: auto-names ("add") can collide with the loaded model's own layers in a fresh process
    half = keras.layers.Rescaling(0.5 / SIZE, name="half_size")(wh)
    c = keras.layers.Rescaling(1.0 / SIZE, name="centre")(xy)
    boxes = keras.layers.Concatenate(axis=-1, name="boxes")([keras.layers.Subtract(name="top_left")([c, half]),
                                                             keras.layers.Add(name="bottom_right")([c, half])])
    scores = keras.layers.Activation("linear", name="scores")(cls)
    return keras.Model(model.inputs, [boxes, scores], name="shapes_decoded")


def ssd_anchor_array() -> np.ndarray:
    return ssd_anchors([[GRID, GRID]], SSD_SCALE, SSD_SCALE, SSD_RATIOS)


def build_ssd(num_classes: int = len(LABELS)) -> Any:
    import keras

    a = len(SSD_RATIOS)
    n = GRID * GRID * a
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    x = _backbone(keras, inp)
    deltas = keras.layers.Reshape((n, 4), name="box_deltas")(keras.layers.Conv2D(4 * a, 1)(x))
    logits = keras.layers.Reshape((n, num_classes + 1), name="class_logits")(
        keras.layers.Conv2D((num_classes + 1) * a, 1)(x))
    return keras.Model(inp, [deltas, logits], name="shapes_ssd")


def _ssd_targets(boxes: list[np.ndarray], classes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    anchors = ssd_anchor_array().astype(np.float64)
    cy, cx, ah, aw = anchors.T
    anchor_xyxy = np.stack([cx - aw / 2, cy - ah / 2, cx + aw / 2, cy + ah / 2], 1)
    v = SSD_VARIANCES
    deltas = np.zeros((len(boxes), len(anchors), 5), np.float32)  # 4 deltas + positive flag
    labels = np.zeros((len(boxes), len(anchors)), np.int64)
    for i, (bx, cl) in enumerate(zip(boxes, classes, strict=True)):
        if len(bx) == 0:
            continue
        g = bx / SIZE
        iou = iou_matrix(anchor_xyxy, g)
        best_gt = iou.argmax(1)
        pos = iou.max(1) >= 0.45
        pos[iou.argmax(0)] = True
        best_gt[iou.argmax(0)] = np.arange(len(g))
        enc = encode_deltas(g[best_gt], anchors, v)
        deltas[i, pos, :4] = enc[pos]
        deltas[i, pos, 4] = 1
        labels[i, pos] = cl[best_gt[pos]] + 1
    return deltas, labels


def train_ssd(images: list[ShapeImage], epochs: int = 12, seed: int = 0) -> Any:
    import keras

    keras.backend.clear_session()  # fresh layer-name counters: the same names whatever was built before
    keras.utils.set_random_seed(seed)
    x, boxes = _canvas(images)
    deltas, labels = _ssd_targets(boxes, [im.classes for im in images])
    model = build_ssd()

    def box_loss(y_true, y_pred):
        ops = keras.ops
        pos = y_true[..., 4]
        d = ops.abs(y_true[..., :4] - y_pred)
        huber = ops.where(d < 1.0, 0.5 * d * d, d - 0.5)
        return ops.sum(ops.sum(huber, -1) * pos) / (ops.sum(pos) + 1.0)

    def cls_loss(y_true, y_pred):
        ops = keras.ops
        ce = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        weight = ops.where(y_true > 0, 3.0, 1.0)
        return ops.mean(ce * weight)

    model.compile(keras.optimizers.Adam(3e-3), loss=[box_loss, cls_loss])
    model.fit(x, [deltas, labels], batch_size=32, epochs=epochs, verbose=0, shuffle=True)
    return model


def train_classifier(images: list[ShapeImage], epochs: int = 8, seed: int = 0) -> Any:
    """Classify the largest shape in the image."""
    import keras

    keras.backend.clear_session()  # fresh layer-name counters: the same names whatever was built before
    keras.utils.set_random_seed(seed)
    x, _ = _canvas(images)
    area = [((im.boxes[:, 2] - im.boxes[:, 0]) * (im.boxes[:, 3] - im.boxes[:, 1])) for im in images]
    y = np.asarray([im.classes[int(np.argmax(a))] for im, a in zip(images, area, strict=True)])
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    h = keras.layers.GlobalAveragePooling2D()(_backbone(keras, inp))
    out = keras.layers.Dense(len(LABELS), activation="softmax", name="probabilities")(h)
    model = keras.Model(inp, out, name="shapes_classifier")
    model.compile(keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, shuffle=True)
    return model


def save(model: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path
