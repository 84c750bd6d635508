"""Compression stages on real models: structured pruning that really shrinks the graph (proved exact where the
removed channels carry nothing), the Keras 3 → tf_keras bridge, tensorflow-model-optimization sparsity (2:4
included), clustering and QAT, distillation, and the whole build with the stages configured."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import NO_GATE, detector_config, write_config

from mobilekit.cli import main
from mobilekit.compress import bridge, cost, fade, hints, prune, tfmot_stages
from mobilekit.compress.channels import analyse
from mobilekit.compress.distill import finetune
from mobilekit.config import ClusterSettings, DistillSettings, PruneSettings, SparsitySettings
from mobilekit.errors import ModelError


def mobilenet_v2():
    return keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, weights=None, classes=5)


def mobilenet_v3_small():
    return keras.applications.MobileNetV3Small(input_shape=(64, 64, 3), alpha=0.75, weights=None, classes=5,
                                               include_preprocessing=False, dropout_rate=0.0)


def _randomize_bn(model, seed: int = 0) -> None:
    """Untrained BatchNorm is the identity; give it real statistics so slicing mistakes would show."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            w = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, x.shape).astype(np.float32) if i in (0, 3)
                               else rng.normal(0, 0.1, x.shape).astype(np.float32) for i, x in enumerate(w)])


def _silence_pruned(model, plan, graph) -> None:
    """Zero what the planned-away channels carry (producer filters and biases, BatchNorm scale and shift): the
    pruned model must then compute exactly what the full one does."""
    for root, keep in plan.keep.items():
        g = graph.groups()[root]
        drop = np.setdiff1d(np.arange(g.size), keep)
        for name in g.producers:
            layer = model.get_layer(name)
            w = layer.get_weights()
            k = 1 if type(layer).__name__ == "SeparableConv2D" else 0
            w[k][..., drop] = 0.0
            if layer.get_config().get("use_bias"):
                w[-1][drop] = 0.0
            layer.set_weights(w)
        for name in g.channelwise:
            layer = model.get_layer(name)
            if type(layer).__name__ == "BatchNormalization":
                w = layer.get_weights()
                w[0][drop] = 0.0
                w[1][drop] = 0.0
                layer.set_weights(w)


@pytest.mark.parametrize("build", [mobilenet_v2, mobilenet_v3_small], ids=["mobilenet_v2", "mobilenet_v3_small"])
def test_structured_pruning_shrinks_keras_applications_exactly(build, tmp_path):
    model = build()
    _randomize_bn(model)
    settings = PruneSettings(target="macs", ratio=0.5, multiple=8)
    plan, graph = prune.plan(model, settings)
    _silence_pruned(model, plan, graph)
    pruned = prune.apply(model, keras, plan, graph)
    before, after = cost.count(model), cost.count(pruned)
    assert after["macs"] <= 0.5 * before["macs"] * 1.02 and after == plan.predicted
    assert after["params"] < 0.8 * before["params"] and pruned.count_params() == after["params"]
    x = np.random.default_rng(1).uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(pruned(x)), np.asarray(model(x)), atol=2e-5, rtol=1e-4)
    # an ordinary, smaller Keras model: it saves and loads without custom objects
    pruned.save(tmp_path / "pruned.keras")
    again = keras.models.load_model(tmp_path / "pruned.keras", compile=False)
    assert again.count_params() == after["params"]


@pytest.mark.parametrize("build,flavour", [(mobilenet_v2, "keras3"), (mobilenet_v3_small, "keras3"),
                                           (mobilenet_v2, "tf_keras")],
                         ids=["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v2_tf_keras"])
def test_faded_channels_carry_nothing_so_cutting_them_is_exact(build, flavour):
    """Gradual pruning: the planned-away channels shrink with progress and end at zero; the cut model then computes
    exactly what the faded full model does (Keras 3 and tf_keras)."""
    model = build()
    _randomize_bn(model)
    kmod = keras
    if flavour == "tf_keras":
        import tf_keras

        model, kmod = bridge.to_tf_keras(model), tf_keras
    plan, graph = prune.plan(model, PruneSettings(target="macs", ratio=0.5))
    fader = fade.Fader(model, plan, graph)
    assert fader.weights > 0
    x = np.random.default_rng(1).uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32)
    full = np.asarray(model(x))
    fader(0.5)
    assert fader.level == pytest.approx(0.125)
    half = np.asarray(model(x))
    assert not np.allclose(half, full, atol=1e-4)
    fader.finish()
    faded = np.asarray(model(x))
    pruned = prune.apply(model, kmod, plan, graph)
    np.testing.assert_allclose(np.asarray(pruned(x)), faded, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("build", [mobilenet_v2, mobilenet_v3_small], ids=["mobilenet_v2", "mobilenet_v3_small"])
def test_feature_hints_pair_each_kept_channel_with_its_original(build):
    """Every BatchNorm output gets a hint; where a pruned model's kept channels carry what the original's did, every
    gap is zero (so the hints index the right channels), and a change to one kept channel shows in that channel."""
    model = build()
    _randomize_bn(model)
    plan, graph = prune.plan(model, PruneSettings(target="macs", ratio=0.5))
    _silence_pruned(model, plan, graph)
    pruned = prune.apply(model, keras, plan, graph)
    teacher = keras.models.clone_model(model)
    teacher.set_weights(model.get_weights())
    x = np.random.default_rng(1).uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32)
    bns = [layer.name for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for student, cut in ((pruned, True), (model, False)):
        found = hints.hints_for(graph, plan, cut)
        assert sorted(h.layer for h in found) == sorted(bns)
        assert any(h.teacher is not None for h in found)
        assert all((h.student is None) == (cut or h.teacher is None) for h in found)
        trained, losses = hints.training_model(student, teacher, keras, found, x, 1.0)
        gaps = trained(x, training=False)[len(student.outputs):]
        assert len(gaps) == len(losses) == len(found)
        # gaps are in teacher-spread units: float32 noise reaches 1e-3 in narrow channels
        assert max(float(np.abs(np.asarray(g)).max()) for g in gaps) < 1e-2
    h = next(h for h in hints.hints_for(graph, plan, cut=True) if h.teacher is not None)
    w = pruned.get_layer(h.layer).get_weights()
    w[1][0] += 5.0  # beta of the first kept channel
    pruned.get_layer(h.layer).set_weights(w)
    trained, _ = hints.training_model(pruned, teacher, keras, [h], x, 1.0)
    gap = np.abs(np.asarray(trained(x, training=False)[-1])).max(axis=(0, 1, 2))
    assert gap[0] > 1.0 and gap[1:].max() < 1e-2


def test_the_teacher_is_a_copy_the_stages_cannot_change(yolo_model):
    """The stages train and fade the student in place; the teacher must stay the original model."""
    from mobilekit.compress.run import teacher_copy
    from mobilekit.models.loader import load_model

    loaded = load_model(yolo_model)
    teacher = teacher_copy(loaded, "keras3")
    x = np.random.default_rng(0).uniform(0, 1, (2, *loaded.input_shape[1:])).astype(np.float32)
    before = np.asarray(teacher(x))
    np.testing.assert_allclose(before, np.asarray(loaded.keras_model(x)), atol=1e-5)
    for w in loaded.keras_model.trainable_weights:
        w.assign(w * 0.0)
    np.testing.assert_array_equal(np.asarray(teacher(x)), before)


def test_residual_and_squeeze_excite_channels_are_pruned_as_groups():
    graph, _ = analyse(mobilenet_v3_small())
    groups = graph.prunable()
    # a residual stream: several projection convs feed one group through Add
    assert any(len(g.producers) >= 2 for g in groups.values())
    # squeeze-excite: the expand conv's channels join the block's channels through Multiply
    assert any(any("squeeze_excite" in p for p in g.producers) and len(g.channelwise) >= 2 for g in groups.values())
    frozen = {r: g for r, g in graph.groups().items() if g.frozen}
    assert any("model input" in g.frozen for g in frozen.values())


def test_excluded_layers_and_outputs_keep_their_channels(yolo_model):
    model = keras.models.load_model(yolo_model, compile=False)
    plan, graph = prune.plan(model, PruneSettings(ratio=0.4, exclude=["conv2d_1"]))
    pruned = prune.apply(model, keras, plan, graph)
    assert pruned.get_layer("conv2d_1").filters == model.get_layer("conv2d_1").filters
    assert pruned.get_layer("conv2d").filters < model.get_layer("conv2d").filters
    assert [tuple(o.shape) for o in pruned.outputs] == [tuple(o.shape) for o in model.outputs]


def test_activation_criterion_sees_dead_channels_that_weights_hide(yolo_model, shapes_dataset):
    """A channel with the largest |gamma| but a shift its ReLU always zeroes carries nothing: the weight criterion
    keeps it, the data-driven one removes it first."""
    from mobilekit.data.datasets import list_yolo, load_image
    from mobilekit.data.preprocess import letterbox, normalize

    model = keras.models.load_model(yolo_model, compile=False)
    bn = next(layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    w = bn.get_weights()
    w[0][0], w[1][0] = 10.0 * np.abs(w[0]).max(), -1e4
    bn.set_weights(w)
    h, wd = model.input.shape[1:3]
    x = np.concatenate([normalize(letterbox(load_image(r.path), h, wd, "letterbox", 114)[0], [1 / 255] * 3,
                                  [0.0] * 3, "RGB", "NHWC") for r in list_yolo(shapes_dataset)[:16]])
    by_weights, graph = prune.plan(model, PruneSettings(ratio=0.3, multiple=1))
    root = next(r for r, g in graph.prunable().items() if bn.name in g.channelwise)
    assert 0 in by_weights.keep[root]
    by_data, _ = prune.plan(model, PruneSettings(ratio=0.3, multiple=1, criterion="activation"), keras, x)
    assert 0 not in by_data.keep[root]
    assert {r: len(k) for r, k in by_data.keep.items()} == {r: len(k) for r, k in by_weights.keep.items()}
    with pytest.raises(ValueError, match="needs images"):
        prune.plan(model, PruneSettings(criterion="activation"))


def test_cosine_schedule_ends_fine_tuning_at_a_low_rate(tiny):
    fresh, x = tiny
    import tf_keras

    student = fresh()
    settings = DistillSettings(epochs=2, batch_size=16, learning_rate=1e-3)
    report = finetune(student, fresh(), tf_keras, x, settings, classification=True, logits=False)
    assert report.steps == 2 * int(np.ceil(2 * len(x) / 16))
    assert float(student.optimizer.learning_rate.numpy()) < 0.1 * settings.learning_rate


def test_bridge_rebuilds_keras3_in_tf_keras_and_refuses_plainly(yolo_model):
    for model in (keras.models.load_model(yolo_model, compile=False), mobilenet_v3_small()):
        twin = bridge.to_tf_keras(model)
        x = np.random.default_rng(0).uniform(0, 1, (2, *model.input.shape[1:])).astype(np.float32)
        assert bridge.check_same(model, twin, x) < 1e-5
        assert type(twin).__module__.startswith("tf_keras")
    inp = keras.Input((8, 8, 3))
    odd = keras.Model(inp, keras.ops.sin(keras.layers.Conv2D(4, 1)(inp)))
    with pytest.raises(ModelError, match="no tf_keras twin: sin"):
        bridge.to_tf_keras(odd)


@pytest.fixture(scope="module")
def tiny(classifier_model, shapes_dataset):
    """A fresh tf_keras twin of the shapes classifier per call (tfmot wrappers take over the layers they wrap), and a
    few of its real images, normalized."""
    from mobilekit.data.datasets import list_yolo, load_image
    from mobilekit.data.preprocess import letterbox, normalize

    original = keras.models.load_model(classifier_model, compile=False)
    images = [letterbox(load_image(r.path), 96, 96, "letterbox", 114)[0] for r in list_yolo(shapes_dataset)[:32]]
    x = np.concatenate([normalize(c, [1 / 255] * 3, [0.0] * 3, "RGB", "NHWC") for c in images])
    return (lambda: bridge.to_tf_keras(original)), x


def _finetune(teacher, x):
    settings = DistillSettings(epochs=2, batch_size=16)

    def run(student, callbacks):
        import tf_keras

        return finetune(student, teacher, tf_keras, x, settings, classification=True, logits=False,
                        callbacks=callbacks)

    return run


@pytest.mark.slow
def test_sparsity_unstructured_and_2_of_4(tiny):
    fresh, x = tiny
    model = fresh()
    sparse, info = tfmot_stages.sparsity(model, SparsitySettings(sparsity=0.5), _finetune(fresh(), x), steps=8)
    assert info["zero_fraction"] >= 0.45
    assert not any("prune_low_magnitude" in layer.name for layer in sparse.layers)  # wrappers stripped
    model2 = fresh()
    sparse24, info24 = tfmot_stages.sparsity(model2, SparsitySettings(pattern="2:4"), _finetune(fresh(), x), steps=8)
    for layer in sparse24.layers:
        if type(layer).__name__ == "Conv2D" and layer.get_weights()[0].shape[-2] % 4 == 0:
            k = layer.get_weights()[0]
            blocks = np.moveaxis(k, -2, -1).reshape(-1, 4)  # runs of 4 along the input channels
            assert np.all((blocks == 0).sum(axis=1) >= 2), layer.name
    assert info24["pattern"] == "2:4"


def test_clustering_leaves_few_distinct_weights(tiny):
    fresh, x = tiny
    clustered, info = tfmot_stages.cluster(fresh(), ClusterSettings(clusters=8), _finetune(fresh(), x), False)
    assert info["max_distinct_values"] <= 8
    assert not any("cluster" in layer.name for layer in clustered.layers)


@pytest.mark.slow
def test_build_with_compression_records_every_stage(yolo_model, shapes_dataset, cache, tmp_path):
    cfg = detector_config(yolo_model, shapes_dataset, cache / "labels.txt")
    cfg.update({"coreml": {"enabled": False}, "export": {"fp16": False}, "parity": {**cfg["parity"], **NO_GATE},
                "compression": {"prune": {"ratio": 0.4}, "qat": True,
                                "distill": {"epochs": 3, "hint_weight": 1.0}}})
    res = CliRunner().invoke(main, ["build", str(write_config(tmp_path, cfg)), "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert "Compression" in res.output and "qat" in res.output
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    rows = manifest["compression"]["stages"]
    assert [r["stage"] for r in rows] == ["original", "prune", "qat"]
    assert rows[1]["macs"] <= 0.6 * rows[0]["macs"] * 1.02 and rows[1]["params"] < rows[0]["params"]
    assert rows[2]["details"]["scheme"] == "Default8BitQuantizeScheme"
    assert rows[2]["details"]["learning_rate_scale"] == 0.1
    # gradual pruning: a fade phase on the full model, then the cut model is distilled
    assert rows[1]["details"]["fade"]["steps"] > 0 and rows[1]["details"]["distill"]["steps"] > 0
    # the shapes images are labelled (YOLO): their boxes train beside the teacher
    assert rows[1]["details"]["distill"]["labels"] == "boxes"
    assert "fade" in res.output and "steps" in res.output
    for r in rows:
        assert r["int8_bytes"] > 0 and r["latency_ms"] > 0 and r["metric_name"] == "map50"
    assert rows[1]["int8_bytes"] < rows[0]["int8_bytes"]
    # the shipped int8 model is the QAT one, measured against the compressed float model (how well the pruned
    # model learned depends on the CPU it trained on, so the gate is off; the QAT int8 model must still follow
    # its own float model closely)
    assert manifest["split"]["applied"] and manifest["parity"]["enforced"] is False
    parity = json.loads((tmp_path / "b" / "report" / "parity.json").read_text())
    assert parity["artifacts"]["tflite-int8"]["resolvers"]["xnnpack"]["tensors"]["scores"]["cosine"] > 0.9


def test_compression_config_is_validated(tmp_path, yolo_model, shapes_dataset, cache):
    cfg = detector_config(yolo_model, shapes_dataset, cache / "labels.txt")
    cfg["compression"] = {"prune": {"ratoi": 0.5}}
    res = CliRunner().invoke(main, ["build", str(write_config(tmp_path, cfg)), "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "compression.prune.ratoi: unknown key" in res.output and "ratio" in res.output
    cfg["compression"] = {"prune": {"ratio": 0.5, "fade": 1.0}}
    res = CliRunner().invoke(main, ["build", str(write_config(tmp_path, cfg)), "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "compression.prune.fade: must be in [0, 0.9]" in res.output
