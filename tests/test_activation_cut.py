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


@pytest.mark.slow
def test_qat_keeps_the_activation_where_it_cannot_be_cut(tmp_path, classifier_model, shapes_dataset, cache):
    """QAT wraps the final Dense(softmax), so its int8 model still outputs probabilities: the contract must then
    keep the activation in the graph too (no softmax applied twice by the SDKs)."""
    import json

    from click.testing import CliRunner
    from helpers import NO_GATE, write_config

    from mobilekit.cli import main

    cfg = {"model": str(classifier_model), "task": "classification", "labels": str(cache / "labels.txt"),
           "calibration": {"images": str(shapes_dataset), "count": 10}, "coreml": {"enabled": False},
           "export": {"fp16": False}, "parity": {"images": 8, **NO_GATE},
           "compression": {"qat": True, "distill": {"epochs": 1}}}
    res = CliRunner().invoke(main, ["build", str(write_config(tmp_path, cfg)), "--out", str(tmp_path / "b"),
                                    "--quiet"])
    assert res.exit_code == 0, res.output
    contract = json.loads((tmp_path / "b" / "contract.json").read_text())
    assert contract["head"]["score_activation"] == "none" and not contract["head"]["split"], contract["head"]
    parity = json.loads((tmp_path / "b" / "report" / "parity.json").read_text())
    assert parity["artifacts"]["tflite-int8"]["resolvers"]["xnnpack"]["tensors"]["scores"]["cosine"] > 0.9

