"""A deliberately int8-hostile model: one activation channel far larger than its neighbours.

Real nets get such channels from training (a BatchNorm gamma that grew, a bias that dominates); min-max int8 then
spends the whole per-tensor activation range on that channel and rounds the others to a few steps. Here it is made
on purpose, without changing what the float model computes: channel ``c`` of a BatchNorm is scaled by ``factor``
and the next conv reads that input channel scaled down by the same factor (through a ReLU, which commutes with a
positive scale). Tests and ``bench/quantization.py`` use it to show what each quantization technique recovers.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def scale_channel(model: Any, bn: str, conv: str, channel: int = 0, factor: float = 100.0) -> None:
    """Make ``bn``'s output channel ``channel`` ``factor`` times larger and ``conv`` (which reads it through a
    ReLU) compensate: the float function is unchanged, its int8 activation range is not."""
    layer = model.get_layer(bn)
    gamma, beta, mean, var = (np.asarray(w).copy() for w in layer.weights)
    gamma[channel] *= factor
    beta[channel] *= factor
    layer.set_weights([gamma, beta, mean, var])
    target = model.get_layer(conv)
    weights = [np.asarray(w).copy() for w in target.weights]
    weights[0][:, :, channel, :] /= factor
    target.set_weights(weights)


def outlier_classifier(size: int = 64, classes: int = 5, factor: float = 100.0, seed: int = 0,
                       train: tuple[np.ndarray, np.ndarray] | None = None, epochs: int = 0) -> Any:
    """Conv-BN-ReLU → Conv1x1-BN-ReLU → DW-BN-ReLU6 → GAP → Dense(softmax), with the outlier channel made after
    training (``train``: images in [-1, 1] and labels, for ``epochs``) or on BatchNorm statistics of random
    images when there is no training."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inp = keras.Input((size, size, 3), name="image")
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="c1")(inp)
    x = layers.ReLU(name="r1")(layers.BatchNormalization(name="bn1")(x))
    x = layers.Conv2D(16, 1, use_bias=False, name="c2")(x)
    x = layers.ReLU(name="r2")(layers.BatchNormalization(name="bn2")(x))
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = layers.ReLU(6.0, name="r3")(layers.BatchNormalization(name="bn3")(x))
    out = layers.Dense(classes, activation="softmax", name="fc")(layers.GlobalAveragePooling2D(name="gap")(x))
    model = keras.Model(inp, out, name="outlier_classifier")
    if train is not None and epochs:
        model.compile(keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(train[0], train[1], batch_size=32, epochs=epochs, verbose=0)
        images = train[0][:256]
    else:
        images = np.random.default_rng(seed).uniform(-1, 1, (64, size, size, 3)).astype(np.float32)
    bns = [la for la in model.layers if isinstance(la, layers.BatchNormalization)]
    for b in bns:  # statistics of exactly these weights, so inference is what training saw
        b.momentum = 0.0
    model(images, training=True)
    scale_channel(model, "bn1", "c2", 0, factor)
    return model
