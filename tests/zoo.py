"""The tf_keras-era model zoo of the decode tests: keras_cv_attention_models' detectors, built without weights.

Run as a script (``python tests/zoo.py OUT [--perturbed]``) because the zoo turns legacy Keras on as it imports,
which only takes before TensorFlow loads: the test process has TensorFlow loaded already. Each family is saved as
the user would hand it over, ``model.save("<family>.h5")``, with the decode layer the zoo attaches to it.

``--perturbed``: the same models with every kernel redrawn (LeCun normal) and batch-norm statistics taken from one
batch of noise. As the zoo builds them, the untrained heads' box outputs vanish to nearly constant values, so
every box convention decodes them alike and a decode check would prove nothing; perturbed, each convention moves
every box.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: family -> (zoo module, constructor): YOLOX, YOLOv7 (YOLOR anchors), YOLOv8 (DFL) and EfficientDet-Lite
FAMILIES = {"yolox": ("yolox", "YOLOXNano"), "yolov7": ("yolov7", "YOLOV7_Tiny"), "yolov8": ("yolov8", "YOLOV8_N"),
            "efficientdet": ("efficientdet", "EfficientDetLite0")}
#: the input size: small enough for a build in about a minute, every pyramid level at least one cell;
#: EfficientDet's at 160, where its top levels have 3 and 2 cells (53.3 and 80 pixels apart, not 64 and 128)
SIZE = 128
SIZES = {"efficientdet": 160}


def main(out: Path, perturbed: bool) -> None:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import importlib

    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for family, (module, ctor) in FAMILIES.items():
        zoo = importlib.import_module(f"keras_cv_attention_models.{module}")
        size = SIZES.get(family, SIZE)
        model = getattr(zoo, ctor)(pretrained=None, input_shape=(size, size, 3))
        if perturbed:
            weights = []
            for w in model.weights:
                a = w.numpy()
                if "kernel" in w.name and a.ndim >= 2:
                    fan_in = int(np.prod(a.shape[:2] if "depthwise" in w.name else a.shape[:-1]))
                    a = rng.normal(0, np.sqrt(1.0 / fan_in), a.shape).astype(a.dtype)
                weights.append(a)
            model.set_weights(weights)
            for layer in model.layers:
                if type(layer).__name__ == "BatchNormalization":
                    layer.momentum = 0.0
            model(rng.uniform(0, 1, (4, size, size, 3)).astype("float32"), training=True)
        model.save(out / f"{family}.h5")


if __name__ == "__main__":
    main(Path(sys.argv[1]), "--perturbed" in sys.argv[2:])
