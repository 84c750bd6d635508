"""A classifier's final softmax/sigmoid leaves the int8 graph: the served model outputs logits, the contract
records the activation, and the probabilities are what they were."""

from __future__ import annotations

import numpy as np
import pytest

from mobilekit.heads.base import activate
from mobilekit.models.activation_cut import cut_activation


def _models(keras):
    inp = keras.Input((8, 8, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(6, 3)(inp))
    yield "dense_softmax", keras.Model(inp, keras.layers.Dense(5, activation="softmax")(h)), "softmax"
    yield "softmax_layer", keras.Model(inp, keras.layers.Softmax()(keras.layers.Dense(5)(h))), "softmax"
    yield "activation_sigmoid", keras.Model(inp, keras.layers.Activation("sigmoid")(keras.layers.Dense(5)(h))), \
        "sigmoid"


@pytest.mark.parametrize("module", ["keras", "tf_keras"])
def test_cut_models_give_the_same_probabilities_from_logits(module):
    keras = __import__(module)
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    for name, model, activation in _models(keras):
        new, info = cut_activation(model, keras)
        assert info["applied"] and info["activation"] == activation, name
        probs = activate(np.asarray(new(x)), activation)
        np.testing.assert_allclose(probs, np.asarray(model(x)), rtol=1e-5, atol=1e-6, err_msg=name)


def test_a_linear_output_is_left_alone():
    import keras

    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, keras.layers.Dense(5)(keras.layers.Flatten()(inp)))
    assert cut_activation(model, keras) == (None, {})
