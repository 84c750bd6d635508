"""Model loading across formats, one-line errors for bad files, and the boxes/scores concat split."""

from __future__ import annotations

import numpy as np
import pytest

from mobilekit.errors import ModelError
from mobilekit.models.inspect import describe
from mobilekit.models.loader import load_model, output_shapes


def one_line(exc) -> str:
    line = exc.value.one_line()
    assert "\n" not in line and "Fix:" in line
    return line


def test_missing_file(tmp_path):
    with pytest.raises(ModelError) as e:
        load_model(tmp_path / "model.keras")
    assert "not found" in one_line(e)


def test_truncated_keras_file(tmp_path, yolo_model):
    bad = tmp_path / "cut.keras"
    bad.write_bytes(yolo_model.read_bytes()[:5000])
    with pytest.raises(ModelError) as e:
        load_model(bad)
    assert "cut.keras" in one_line(e)


def test_not_a_model(tmp_path):
    for name, data in (("notes.keras", b"hello"), ("weights.h5", b"\x00" * 64), ("empty.keras", b"")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ModelError) as e:
            load_model(tmp_path / name)
        assert name in one_line(e)
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(ModelError, match="unsupported model format"):
        load_model(tmp_path / "model.onnx")
    (tmp_path / "dir").mkdir()
    with pytest.raises(ModelError, match=r"saved_model\.pb"):
        load_model(tmp_path / "dir")


def test_unresolvable_custom_layer(tmp_path):
    import keras

    @keras.saving.register_keras_serializable(package="userpkg")
    class Swish2(keras.layers.Layer):
        def call(self, x):
            return x * keras.ops.sigmoid(x)

    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, Swish2()(keras.layers.Conv2D(2, 3)(inp)))
    path = tmp_path / "custom.keras"
    model.save(path)
    keras.saving.get_custom_objects().pop("userpkg>Swish2")
    with pytest.raises(ModelError) as e:
        load_model(path)
    line = one_line(e)
    assert "custom layer" in line and "Swish2" in line and "register_keras_serializable" in line


def test_non_image_input_and_nan_weights(tmp_path):
    import keras

    inp = keras.Input((16,))
    flat = keras.Model(inp, keras.layers.Dense(3)(inp))
    flat.save(tmp_path / "flat.keras")
    with pytest.raises(ModelError, match="not an image"):
        load_model(tmp_path / "flat.keras")
    img = keras.Input((8, 8, 3))
    nan = keras.Model(img, keras.layers.Conv2D(2, 3)(img))
    w = nan.get_weights()
    w[0][0, 0, 0, 0] = np.nan
    nan.set_weights(w)
    nan.save(tmp_path / "nan.keras")
    with pytest.raises(ModelError, match="NaN or Inf"):
        load_model(tmp_path / "nan.keras")


def test_all_three_formats_load(yolo_model, h5_classifier, saved_model_dir):
    k3, k2, sm = load_model(yolo_model), load_model(h5_classifier), load_model(saved_model_dir)
    assert (k3.kind, k2.kind, sm.kind) == ("keras3", "tf_keras", "saved_model")
    assert k3.output_shapes == {"predictions": [1, 144, 7]}
    assert list(k2.output_shapes.values()) == [[1, 3]]
    assert sorted(sm.output_shapes.values()) == [[1, 144, 3], [1, 144, 4]]


def test_inspect_counts_params_and_macs(yolo_model):
    info = describe(load_model(yolo_model))
    assert info["params"] > 50_000
    conv = next(r for r in info["layers"] if r["type"] == "Conv2D")
    # first conv: 48x48 outputs, 3x3 kernel, 3 in, 16 out
    assert conv["macs"] == 48 * 48 * 9 * 3 * 16
    assert info["macs"] == sum(r["macs"] for r in info["layers"]) > 10_000_000


def test_concat_split_keeps_the_float_outputs(yolo_model, yolo_variants, tmp_path):
    """Splitting rewires the graph only: outputs equal slicing the original concat (graph vs eager rounding)."""
    from mobilekit.config_file import parse_config
    from mobilekit.derive import plan
    from mobilekit.models.serving import build_serving

    x = np.random.default_rng(0).random((1, 96, 96, 3), np.float32)
    for path, head in ((yolo_model, "yolo"), (yolo_variants["transposed"], "yolo_transposed")):
        cfg = parse_config({"model": str(path), "calibration": {"images": "x"}, "detection": {"head": head}},
                           tmp_path / "c.yaml")
        loaded = load_model(path)
        serving = build_serving(loaded, plan(cfg, loaded))
        assert serving.split["applied"] and serving.roles == ["boxes", "scores"]
        full = np.asarray(loaded.keras_model(x))
        got = serving.run(x)
        axis = 1 if head == "yolo_transposed" else 2
        assert np.allclose(got["boxes"], np.take(full, range(4), axis=axis), rtol=1e-5, atol=1e-4)
        assert np.allclose(got["scores"], np.take(full, range(4, 7), axis=axis), rtol=1e-5, atol=1e-6)


def test_split_explains_when_it_cannot(tmp_path):
    import keras

    from mobilekit.models.split import split_concat

    inp = keras.Input((8, 8, 3))
    out = keras.layers.Reshape((36, 7))(keras.layers.BatchNormalization()(keras.layers.Conv2D(7, 3)(inp)))
    new, info = split_concat(keras.Model(inp, out), keras, 2)
    assert new is None and "Reshape > BatchNormalization" in info["reason"] and not info["applied"]


def test_split_walks_keras_ops_and_applies_an_activation_to_each_part():
    """A graph built from Keras 3 ops (``keras.ops.concatenate``, ``keras.ops.sigmoid`` on the class channels after
    the concatenation, as zoos apply it): the split applies, each role keeps its values, and the activation runs on
    the scores' part only, as before."""
    import keras
    from keras import ops

    from mobilekit.models.split import split_concat

    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=8, padding="same")(inp)
    boxes = keras.layers.Reshape((16, 4))(keras.layers.Conv2D(4, 1)(x))
    logits = keras.layers.Reshape((16, 3))(keras.layers.Conv2D(3, 1)(x))
    plain = keras.Model(inp, keras.layers.Activation("linear", dtype="float32")(
        ops.concatenate([boxes, ops.sigmoid(logits)], axis=-1)))
    new, info = split_concat(plain, keras, 2)
    assert info["applied"] and info["parts"] == [4, 3], info
    xs = np.random.default_rng(0).uniform(size=(1, 32, 32, 3)).astype("float32")
    b, s = new(xs)
    assert np.allclose(np.concatenate([b, s], -1), plain(xs), atol=1e-6)
    # a softmax is not per value: the walk stops there and says so
    soft = keras.Model(inp, keras.layers.Activation("softmax")(ops.concatenate([boxes, logits], axis=-1)))
    new, info = split_concat(soft, keras, 2)
    assert new is None and "Activation" in info["reason"]


def test_split_walks_tf_ops_of_a_tf_keras_graph():
    """A tf_keras model built from TensorFlow functions, as the tf_keras-era zoos build their heads: ``tf.concat``
    of per-level blocks, each a ``tf.concat`` of boxes, ``tf.nn.sigmoid`` classes and objectness (TFOpLambda
    layers): split per level into boxes, objectness and classes, each with the concatenation's values."""
    import tensorflow as tf
    import tf_keras

    from mobilekit.models.split import split_concat

    inp = tf_keras.Input((32, 32, 3))
    levels = []
    for k, stride in enumerate((8, 16)):
        x = tf_keras.layers.Conv2D(8, 3, strides=stride, padding="same", name=f"stem{k}")(inp)
        cells = (32 // stride) ** 2
        box = tf_keras.layers.Reshape((cells, 4))(tf_keras.layers.Conv2D(4, 1)(x))
        cls = tf.nn.sigmoid(tf_keras.layers.Reshape((cells, 3))(tf_keras.layers.Conv2D(3, 1)(x)))
        obj = tf_keras.layers.Reshape((cells, 1))(tf_keras.layers.Conv2D(1, 1)(x))
        levels.append(tf.concat([box, cls, obj], axis=-1))
    model = tf_keras.Model(inp, tf.concat(levels, axis=1))
    new, info = split_concat(model, tf_keras, 2, parts=[("boxes", 4), ("scores", 3), ("objectness", 1)])
    assert info["applied"] and info["levels"] == 2 and info["roles"] == ["boxes", "scores", "objectness"], info
    xs = np.random.default_rng(0).uniform(size=(1, 32, 32, 3)).astype("float32")
    assert np.allclose(np.concatenate([np.asarray(t) for t in new(xs)], -1), model(xs), atol=1e-6)
    # a function called with arguments that change what it computes (a leaky slope, silu's beta), or an activation
    # that is not per value (a custom normalizing callable), is not walked: the split stops instead of changing the
    # outputs
    joined = tf.concat([box, cls, obj], axis=-1)
    for out in (tf.nn.leaky_relu(joined, alpha=0.1), tf.nn.silu(joined, beta=2.0),
                tf_keras.layers.Activation(lambda z: z / tf.reduce_sum(z, -1, keepdims=True))(joined)):
        assert split_concat(tf_keras.Model(inp, out), tf_keras, 2)[0] is None


def test_split_looks_through_a_float32_cast():
    """Mixed-precision detectors end in Activation('linear', dtype='float32') after the concatenation: the split
    still applies, and each part keeps the values of the concatenation's."""
    import keras

    from mobilekit.models.split import split_concat

    inp = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(8, 3)(inp)
    boxes = keras.layers.Reshape((36, 4))(keras.layers.Conv2D(4, 1)(h))
    scores = keras.layers.Reshape((36, 3))(keras.layers.Conv2D(3, 1, activation="sigmoid")(h))
    out = keras.layers.Activation("linear", dtype="float32")(keras.layers.Concatenate(axis=-1)([boxes, scores]))
    model = keras.Model(inp, out)
    new, info = split_concat(model, keras, 2)
    assert info["applied"] and info["parts"] == [4, 3]
    x = np.random.default_rng(0).normal(size=(1, 8, 8, 3)).astype("float32")
    b, s = new(x)
    assert np.allclose(np.concatenate([b, s], -1), model(x), atol=1e-6)


def test_split_applies_per_level_to_fpn_heads():
    """A YOLOX-style head (per level: [box, cls, obj] on channels, reshaped to anchors; levels concatenated along
    the anchor axis; a float32 linear Activation last) is split in every level and concatenated per role: the
    parts hold exactly the single output's values. A DFL head (64 box channels) cannot separate 4 box channels,
    and the reason names the layers walked."""
    import catalogue
    import keras

    from mobilekit.models.split import split_concat

    keras.utils.set_random_seed(0)
    model = catalogue.yolox_head(classes=6)
    new, info = split_concat(model, keras, 2)
    assert info["applied"] and info["levels"] == 3 and info["parts"] == [4, 7], info
    x = np.random.default_rng(0).normal(size=(1, 64, 64, 3)).astype("float32")
    boxes, scores = new(x)
    np.testing.assert_array_equal(np.concatenate([boxes, scores], -1), model(x))
    new, info = split_concat(catalogue.yolov8_pan(classes=6), keras, 2)
    assert new is None and "Concatenate > Reshape > Concatenate > Conv2D" in info["reason"], info


def test_split_picks_interleaved_roles_through_the_anchor_reshape():
    """YOLOv5's raw head per level: A anchors x [box, obj, classes] channels, the anchors' roles interleaved in
    one [1, H, W, A * K] map. Made by concatenating each role's layers, the roles are picked by channel index
    through the reshape into anchors: boxes, objectness and classes each an output, holding exactly the joined
    output's channels. Made by one convolution, the walk stops there and says so."""
    import keras

    from mobilekit.models.levels import join_levels
    from mobilekit.models.split import split_concat

    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    f8 = keras.layers.Conv2D(8, 3, strides=8, padding="same", activation="relu")(inp)
    f16 = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(f8)

    def per_anchor(f, k):  # [box 4, obj 1, classes 2] per anchor, 3 anchors, from separate convolutions
        return keras.layers.Concatenate(name=f"detect_{k}")(
            [keras.layers.Conv2D(n, 1)(f) for _ in range(3) for n in (4, 1, 2)])

    parts = [("boxes", 4), ("objectness", 1), ("scores", 2)]
    x = np.random.default_rng(0).normal(size=(1, 32, 32, 3)).astype("float32")
    for maps, split in (([per_anchor(f8, 0), per_anchor(f16, 1)], True),
                        ([keras.layers.Conv2D(21, 1)(f) for f in (f8, f16)], False)):
        model = keras.Model(inp, maps)
        shapes = output_shapes(model)
        joined, _ = join_levels(model, keras, shapes, [(4, 4, 3), (2, 2, 3)], box=4)
        new, info = split_concat(joined, keras, 2, parts=parts)
        if not split:
            assert new is None and info["reason"].count("Conv2D") == 1, info
            continue
        assert info["applied"] and info["levels"] == 2, info
        got = [np.asarray(t) for t in new(x)]
        assert [g.shape for g in got] == [(1, 60, 4), (1, 60, 1), (1, 60, 2)]
        np.testing.assert_array_equal(np.concatenate(got, -1), np.asarray(joined(x)))


def test_split_gives_objectness_its_own_output():
    """A grid head's split has three roles: the YOLOX head's [box, cls, obj] channels become boxes, class scores
    and objectness outputs (each an int8 scale of its own), holding exactly the single output's values."""
    import catalogue
    import keras

    from mobilekit.models.split import split_concat

    keras.utils.set_random_seed(0)
    model = catalogue.yolox_head(classes=6)
    parts = [("boxes", 4), ("scores", 6), ("objectness", 1)]
    new, info = split_concat(model, keras, 2, parts=parts)
    assert info["applied"] and info["roles"] == ["boxes", "scores", "objectness"] and info["parts"] == [4, 6, 1]
    x = np.random.default_rng(0).normal(size=(1, 64, 64, 3)).astype("float32")
    np.testing.assert_array_equal(np.concatenate(new(x), -1), model(x))


def test_split_names_layers_uniquely_when_levels_share_a_layer():
    """One Reshape instance applied to every level (a common way to write a head) is walked once per level: the
    split's new layers get distinct names instead of a Keras name clash."""
    import keras

    from mobilekit.models.split import split_concat

    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    to_anchors = keras.layers.Reshape((-1, 7), name="to_anchors")
    levels = []
    for stride in (4, 8):
        f = keras.layers.Conv2D(8, 3, strides=stride, padding="same")(inp)
        levels.append(to_anchors(keras.layers.Concatenate()([keras.layers.Conv2D(4, 1)(f),
                                                             keras.layers.Conv2D(3, 1)(f)])))
    model = keras.Model(inp, keras.layers.Concatenate(axis=1)(levels))
    new, info = split_concat(model, keras, 2)
    assert info["applied"] and info["levels"] == 2, info
    x = np.random.default_rng(0).normal(size=(1, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(np.concatenate(new(x), -1), model(x))


def test_levels_join_reads_one_layout_for_every_map():
    """Per-level maps in [1, K, H, W] (a PyTorch port) are transposed, every one of them: a [1, 8, 8, 8] map that
    would read either way follows the others. Levels of one grid size take the maps in output order."""
    import keras

    from mobilekit.models.levels import join_levels

    inp = keras.Input((64, 64, 3))
    f8 = keras.layers.Conv2D(8, 3, strides=8, padding="same")(inp)  # 8 x 8 cells
    f16 = keras.layers.Conv2D(8, 3, strides=16, padding="same")(inp)  # 4 x 4 cells
    chw = [keras.layers.Permute((3, 1, 2), name=f"p{k}")(keras.layers.Conv2D(c, 1)(f))
           for k, (f, c) in enumerate(((f8, 8), (f16, 8)))]  # [1, 8, 8, 8] and [1, 8, 4, 4]
    model = keras.Model(inp, chw)
    shapes = output_shapes(model)
    joined, _ = join_levels(model, keras, shapes, [(8, 8, 1), (4, 4, 1)], box=4)
    x = np.random.default_rng(0).normal(size=(1, 64, 64, 3)).astype("float32")
    y = [np.asarray(t) for t in model(x)]
    want = np.concatenate([np.transpose(t, (0, 2, 3, 1)).reshape(1, -1, 8) for t in y], 1)
    np.testing.assert_array_equal(np.asarray(joined(x)), want)
    # two levels of one grid size (a P6 and P7 that stop shrinking): filled in output order
    same = keras.Model(inp, [keras.layers.Conv2D(6, 1)(f16), keras.layers.Conv2D(6, 1)(f16)])
    shapes = output_shapes(same)
    joined, _ = join_levels(same, keras, shapes, [(4, 4, 1), (4, 4, 1)], box=4)
    np.testing.assert_array_equal(np.asarray(joined(x)),
                                  np.concatenate([np.asarray(t).reshape(1, -1, 6) for t in same(x)], 1))
    # a box and a class map per level, box maps listed first, two levels of one grid size: paired by kind
    boxes = [keras.layers.Conv2D(4, 1, name=f"box_{k}")(f16) for k in range(2)]
    classes = [keras.layers.Conv2D(3, 1, name=f"cls_{k}")(f16) for k in range(2)]
    paired = keras.Model(inp, [*boxes, *classes])
    shapes = output_shapes(paired)
    joined, _ = join_levels(paired, keras, shapes, [(4, 4, 1), (4, 4, 1)], box=4)
    y = [np.asarray(t) for t in paired(x)]
    got_boxes, got_scores = (np.asarray(t) for t in joined(x))
    np.testing.assert_array_equal(got_boxes, np.concatenate([t.reshape(1, -1, 4) for t in y[:2]], 1))
    np.testing.assert_array_equal(got_scores, np.concatenate([t.reshape(1, -1, 3) for t in y[2:]], 1))
