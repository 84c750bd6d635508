"""Bench: mobilekit's decoding of third-party raw heads against the libraries' own decoders, on the same outputs.

    python bench/third_party_decode.py            # needs keras-hub and/or keras-cv installed

Built without weights, a detector's scores say nothing (keras-cv's RetinaNet scores every anchor near its 0.01
prior, so there is no detection to agree on), but its boxes still decode: the raw box output of each model (320x320,
one shapes image) is decoded by the library's own code (keras-hub: ``keras.utils.bounding_boxes
.decode_deltas_to_boxes`` with its ``AnchorGenerator``; keras-cv: ``RetinaNet.decode_predictions``' anchor generator
and ``_decode_deltas_to_boxes`` with its box variance) and by mobilekit's ``retinanet`` head with the settings of
``tests/catalogue.py`` (what ``mobilekit init`` reads from the models). The table: the largest difference over all
19,206 boxes, in pixels, next to the box sizes.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import catalogue  # noqa: E402  (the third-party builders and their head settings)


def _ours(params: dict, deltas: np.ndarray) -> np.ndarray:
    from mobilekit.heads.retinanet import RetinaNetHead, resolve

    inp = SimpleNamespace(width=320, height=320)
    head = SimpleNamespace(params=resolve(params, inp), score_activation="sigmoid", background_class=False)
    contract = SimpleNamespace(head=head, input=inp)
    scores = np.zeros((1, len(deltas[0]), 1), np.float32)
    return RetinaNetHead().candidates({"boxes": deltas, "scores": scores}, contract).boxes


def _box_output(outputs: object) -> np.ndarray:
    """The ``[1, N, 4]`` deltas among a model's outputs (a list, or a dict)."""
    values = outputs.values() if isinstance(outputs, dict) else outputs
    return next(np.asarray(o) for o in values if o.shape[-1] == 4)


def _hub(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import keras
    import keras_hub  # noqa: F401

    keras.utils.set_random_seed(0)
    det = catalogue._hub_retinanet()
    deltas = _box_output(det(x))
    from keras_hub.src.layers.modeling.anchor_generator import AnchorGenerator

    gen = AnchorGenerator("xyxy", min_level=3, max_level=7, num_scales=3, aspect_ratios=[0.5, 1.0, 2.0],
                          anchor_size=4)
    anchors = np.concatenate([np.asarray(a) for a in gen(x).values()])
    ref = keras.utils.bounding_boxes.decode_deltas_to_boxes(anchors=anchors, boxes_delta=deltas,
                                                            encoded_format="center_xywh", anchor_format="xyxy",
                                                            box_format="xyxy", image_shape=(320, 320, 3))
    return np.asarray(ref)[0], _ours(catalogue.HUB_RETINA, deltas)


def _cv(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import keras
    import keras_cv
    from keras_cv.src.bounding_box.converters import _decode_deltas_to_boxes
    from keras_cv.src.models.object_detection.retinanet.retinanet import BOX_VARIANCE

    keras.utils.set_random_seed(0)
    deltas = _box_output(catalogue._cv_retinanet()(x))
    gen = keras_cv.models.RetinaNet.default_anchor_generator("xyxy")
    anchors = np.concatenate([np.asarray(a) for a in gen(image_shape=(320, 320, 3)).values()])
    ref = _decode_deltas_to_boxes(anchors=anchors, boxes_delta=deltas, anchor_format="xyxy", box_format="xyxy",
                                  variance=BOX_VARIANCE, image_shape=(320, 320, 3))
    return np.asarray(ref)[0], _ours(catalogue.CV_RETINA, deltas)


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from mobilekit.data.datasets import list_folder, load_image
    from mobilekit.data.preprocess import letterbox

    image = load_image(list_folder(ROOT.parent / "shared" / "data" / "coco128" / "images")[0].path)
    canvas, _ = letterbox(image, 320, 320, "letterbox", 114)
    x = canvas[None].astype("float32")
    table = Table(title="Third-party RetinaNet box decoding: the library's decoder vs mobilekit's retinanet head")
    for col in ("model", "boxes", "median box size (px)", "max |difference| (px)"):
        table.add_column(col)
    for name, package, run in (("keras-hub RetinaNet R18", "keras_hub", _hub),
                               ("keras-cv RetinaNet R18", "keras_cv", _cv)):
        if importlib.util.find_spec(package) is None:
            table.add_row(name, "-", "-", f"{package} not installed")
            continue
        ref, ours = run(x * catalogue.THIRD_PARTY[name][4])  # the input scale the model takes
        size = np.median(np.maximum(ref[:, 2] - ref[:, 0], ref[:, 3] - ref[:, 1]))
        table.add_row(name, str(len(ref)), f"{size:.1f}", f"{np.abs(ref - ours).max():.2e}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
