"""Built-in Keras layers that FPN/PAN necks and third-party heads use, converted by coremltools and executed by the
emulator at fp32: every MIL op they become must exist in the emulator and agree with TensorFlow (~1e-5)."""

from __future__ import annotations

import numpy as np
import pytest

from mobilekit.emulate.coreml import CoreMLEmulator

LAYERS = {
    "upsample_nearest": lambda k: k.layers.UpSampling2D(2, interpolation="nearest"),
    "upsample_bilinear": lambda k: k.layers.UpSampling2D(2, interpolation="bilinear"),
    "resize_nearest_up": lambda k: k.layers.Resizing(30, 20, interpolation="nearest"),
    "resize_nearest_down": lambda k: k.layers.Resizing(5, 7, interpolation="nearest"),
    "resize_bilinear_up": lambda k: k.layers.Resizing(30, 20, interpolation="bilinear"),
    "resize_bilinear_down": lambda k: k.layers.Resizing(5, 7, interpolation="bilinear"),
    # half_pixel_centers=False at a fractional scale (1.5): coremltools emits upsample_nearest_neighbor
    "upsample_nearest_fractional": lambda k: k.layers.Lambda(
        lambda t: __import__("tensorflow").compat.v1.image.resize_nearest_neighbor(t, (18, 15))),
    "prelu": lambda k: k.layers.PReLU(shared_axes=[1, 2]),
    "elu": lambda k: k.layers.ELU(),
    # exact GELU (erfc) has no coremltools conversion: that build fails in conversion (exit 4), not here
    "gelu_tanh": lambda k: k.layers.Activation(lambda t: k.activations.gelu(t, approximate=True)),
    "layer_norm": lambda k: k.layers.LayerNormalization(),
}


def _convert(model, shape, path):
    import coremltools as ct
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(tf.TensorSpec(shape, tf.float32))
    mlmodel = ct.convert([fn], source="tensorflow", convert_to="mlprogram", inputs=[ct.TensorType(shape=shape)],
                         compute_precision=ct.precision.FLOAT32, minimum_deployment_target=ct.target.iOS16)
    mlmodel.save(str(path))
    return path


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_runs_in_the_emulator_as_in_tensorflow(name, tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    shape = (1, 12, 10, 3)
    inp = keras.Input(shape[1:])
    x = keras.layers.Conv2D(4, 3, padding="same")(inp)
    out = LAYERS[name](keras)(x)
    model = keras.Model(inp, out)
    if name == "prelu":  # random slopes, not the zero default, so the op's alpha matters
        model.layers[-1].set_weights([np.random.default_rng(1).uniform(0.1, 0.9, (1, 1, 4)).astype("float32")])
    em = CoreMLEmulator(_convert(model, shape, tmp_path / f"{name}.mlpackage"))
    x = np.random.default_rng(2).normal(size=shape).astype("float32")
    got = em.run({next(iter(em.function.inputs)): x}, eager=True)
    want = np.asarray(model(x))
    if name == "resize_nearest_down":  # coremltools converts a nearest downscale as a bilinear one (its TF frontend)
        import tensorflow as tf

        features = keras.Model(inp, model.layers[-2].output)(x)
        want = np.asarray(tf.image.resize(features, (5, 7), method="bilinear"))
    out_name = em.outputs[0]
    assert got[out_name].shape == want.shape, (got[out_name].shape, want.shape)
    np.testing.assert_allclose(got[out_name], want, rtol=1e-4, atol=1e-5)
