"""keras-hub's ``RetinaNetObjectDetector.decode_predictions``: its ``AnchorGenerator`` (torchvision's conventions)
and ``keras.utils.bounding_boxes.decode_deltas_to_boxes`` (``center_xywh`` deltas), then NMS on sigmoid scores.
The reference runs the same two functions and stops before the NMS.

keras-hub 0.32 cannot reload its RetinaNet from ``.keras``, so it reaches mobilekit as a SavedModel, which keeps no
Python objects: name :func:`retinanet` as ``detection.reference: mobilekit.references.keras_hub:retinanet`` with
the detector's anchor settings as ``reference_args`` (``min_level``, ``max_level``, ``num_scales``,
``aspect_ratios``, ``anchor_size``; keras-hub's defaults otherwise). A keras-hub detector loaded as itself is found
attached.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mobilekit.references.base import Finder, Reference, register

DEFAULTS = {"min_level": 3, "max_level": 7, "num_scales": 3, "aspect_ratios": [0.5, 1.0, 2.0], "anchor_size": 4}


def _decode(generator: Any, outputs: list[np.ndarray], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    import keras

    deltas = next(o for o in outputs if o.shape[-1] == 4)
    logits = next(o for o in outputs if o is not deltas)
    image = np.zeros((1, *size, 3), np.float32)
    anchors = keras.ops.concatenate(list(generator(image).values()), axis=0)
    boxes = keras.utils.bounding_boxes.decode_deltas_to_boxes(
        anchors=anchors, boxes_delta=keras.ops.convert_to_tensor(deltas), encoded_format="center_xywh",
        anchor_format=generator.bounding_box_format, box_format="xyxy", image_shape=(*size, 3))
    return np.asarray(boxes, np.float64)[0], 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)[0]))


def retinanet(outputs: list[np.ndarray], size: tuple[int, int], **anchor: Any) -> tuple[np.ndarray, np.ndarray]:
    """The reference for a keras-hub RetinaNet handed over as a SavedModel (its outputs: box deltas, class logits)."""
    from keras_hub.src.layers.modeling.anchor_generator import AnchorGenerator

    a = {**DEFAULTS, **anchor}
    generator = AnchorGenerator("xyxy", min_level=a["min_level"], max_level=a["max_level"],
                                num_scales=a["num_scales"], aspect_ratios=list(a["aspect_ratios"]),
                                anchor_size=a["anchor_size"])
    return _decode(generator, outputs, size)


def find(model: Any) -> Reference | None:
    if type(model).__name__ != "RetinaNetObjectDetector" or not type(model).__module__.startswith("keras_hub"):
        return None
    return lambda outputs, size, **_: _decode(model.anchor_generator, outputs, size)


def settings(model: Any) -> dict[str, Any] | None:
    return None  # init reads keras-hub's anchor generator itself (heads.retinanet: RetinaNetHead.carried)


register(Finder("keras-hub decode_predictions", find, settings))
