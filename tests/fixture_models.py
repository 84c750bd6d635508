"""How each trained fixture is made: one function per cache entry, ``make(path, ...)`` writing it at ``path``.

Kept apart from ``conftest.py`` on purpose: this file (with ``mobilekit/example/`` and the modules training uses) is
the fixtures' cache key, so a change to how a fixture is trained retrains it, and a change to the suite's hooks or
fixture wiring does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers import SEED

#: the training images of the detectors (shapes, seed SEED)
TRAIN_IMAGES = 700
#: the YOLO-format shapes dataset the tests calibrate and evaluate on (ground truth included)
DATASET_IMAGES = 40
#: the detectors' head forms derived from the YOLO fixture (``train.yolo_variant``)
VARIANTS = ("transposed", "decoded", "dfl", "grid_decoded", "grid_yolox", "grid_anchors", "retinanet",
            "retinanet_levels", "dfl_tlbr", "grid_yolox_zoo", "grid_yolov7_zoo", "retinanet_cells")


def labels(path: Path) -> None:
    from mobilekit.example import shapes

    path.write_text("\n".join(shapes.LABELS) + "\n")


def shapes_dataset(path: Path) -> None:
    from mobilekit.example import shapes

    shapes.write_yolo_dataset(path, shapes.make_images(DATASET_IMAGES, seed=5))


def train_images() -> list[Any]:
    from mobilekit.example import shapes

    return shapes.make_images(TRAIN_IMAGES, seed=SEED)


def yolo(path: Path) -> None:
    from mobilekit.example import train

    train.save(train.train_yolo(train_images(), epochs=8, seed=SEED), path)


def ssd(path: Path) -> None:
    from mobilekit.example import train

    train.save(train.train_ssd(train_images(), epochs=8, seed=SEED), path)


def classifier(path: Path) -> None:
    from mobilekit.example import shapes, train

    train.save(train.train_classifier(shapes.make_images(500, SEED + 1, max_objects=1), 5, seed=SEED), path)


def yolo_variant(path: Path, yolo_model: Path, variant: str) -> None:
    import keras

    from mobilekit.example import train

    train.save(train.yolo_variant(keras.saving.load_model(yolo_model, compile=False), variant), path)


def saved_model(path: Path, source: Path) -> None:
    """A Keras model exported as a TensorFlow SavedModel directory."""
    import keras

    keras.saving.load_model(source, compile=False).export(str(path), format="tf_saved_model", verbose=False)


def h5_classifier(path: Path) -> None:
    """A tf_keras (Keras 2) classifier saved as .h5, trained briefly on shapes."""
    import numpy as np
    import tf_keras

    from mobilekit.example import shapes, train

    imgs = shapes.make_images(300, SEED + 3, max_objects=1)
    x, _ = train._canvas(imgs)
    y = np.asarray([im.classes[0] for im in imgs])
    tf_keras.backend.clear_session()  # the same layer names whatever the session built before
    tf_keras.utils.set_random_seed(SEED)
    inp = tf_keras.Input((train.SIZE, train.SIZE, 3))
    h = inp
    for f in (16, 32, 64):
        h = tf_keras.layers.Conv2D(f, 3, strides=2, padding="same", activation="relu")(h)
    h = tf_keras.layers.GlobalAveragePooling2D()(h)
    out = tf_keras.layers.Dense(3, activation="softmax")(h)
    m = tf_keras.Model(inp, out)
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(x, y, epochs=4, batch_size=32, verbose=0)
    m.save(path)
