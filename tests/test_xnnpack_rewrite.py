"""The XNNPACK activation rewrite and the run-time memory figure.

Each rewrite is held to the original activation in float, layer by layer; each catalogue entry's claim (the int8 op
falls outside XNNPACK, the rewritten form does not) is checked by converting and asking LiteRT's delegate; a CLI
build of a trained PReLU / hard-swish / capped-ReLU classifier rewrites its int8 graph only, keeps the same parity
gate and measures each artifact's memory, which a fresh process's RSS growth confirms within 20%. Nothing here
depends on timing: builds use ``xnnpack_rewrite: always`` (``measured`` picks by time, which another CPU may not
repeat).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import testcache
from click.testing import CliRunner
from helpers import write_config

from mobilekit.cli import main
from mobilekit.models import xnnpack_rewrite as xr


def _alpha(k: Any, lo: float, hi: float) -> Any:
    return k.initializers.RandomUniform(lo, hi, seed=3)


def _every_form(k: Any) -> Any:
    """One layer of every rewritten kind: per-channel PReLU slopes on both sides of 1, an unshared PReLU,
    hard-swish as an Activation and built into a Conv2D, hard_silu, capped ReLUs, the sparse and shrink activations
    of Keras' catalogue, and a PReLU inside a nested model."""
    inner_in = k.Input((12, 12, 8))
    inner = k.Model(inner_in, k.layers.PReLU(alpha_initializer=_alpha(k, 0.2, 1.6), name="nested_prelu")(inner_in),
                    name="inner")
    inp = k.Input((12, 12, 3))
    x = k.layers.Conv2D(8, 3, padding="same")(inp)
    x = k.layers.PReLU(shared_axes=[1, 2], alpha_initializer=_alpha(k, 0.0, 1.8), name="prelu_shared")(x)
    x = k.layers.Activation("hard_swish", name="hswish")(k.layers.Conv2D(8, 1)(x))
    x = k.layers.Conv2D(8, 3, padding="same", activation="hard_swish", name="conv_hswish")(x)
    x = k.layers.Activation("hard_silu", name="hsilu")(k.layers.Conv2D(8, 1)(x))
    x = k.layers.ReLU(max_value=4.0, name="capped")(k.layers.Conv2D(8, 1)(x))
    x = k.layers.ReLU(max_value=3.0, negative_slope=0.1, name="capped_leaky")(k.layers.Conv2D(8, 1)(x))
    for seed, name in enumerate(("sparse_sigmoid", "sparse_plus", "soft_shrink")):  # wide enough to pass every knee
        wide = k.initializers.RandomNormal(stddev=1.0, seed=seed)
        x = k.layers.Activation(name, name=name)(k.layers.Conv2D(8, 1, kernel_initializer=wide)(x))
    x = k.layers.PReLU(alpha_initializer=_alpha(k, 0.1, 0.9), name="prelu_unshared")(inner(k.layers.Conv2D(8, 1)(x)))
    return k.Model(inp, k.layers.Conv2D(4, 1, name="head")(x))


#: where each activation changes form (hard-swish's knees, the caps; below 0 for the slopes): the inputs reach past
KNEES = {"hswish": (-3.0, 3.0), "hsilu": (-3.0, 3.0), "capped": (0.0, 4.0), "capped_leaky": (0.0, 3.0),
         "sparse_sigmoid": (-1.0, 1.0), "sparse_plus": (-1.0, 1.0), "soft_shrink": (-0.5, 0.5)}


def test_every_rewrite_is_exact_in_float_layer_by_layer():
    """Each rewritten layer's output against the original layer's, on inputs that reach every piece (beyond the
    ReLU caps and hard-swish's +-3 knees): equal within float32 rounding; the whole model too."""
    import keras

    keras.utils.set_random_seed(0)
    model = _every_form(keras)
    done = xr.rewrite(model, keras)
    rewritten = {h.layer for h in done.hits if h.rewrite}
    assert rewritten == {"prelu_shared", "hswish", "conv_hswish", "hsilu", "capped", "capped_leaky",
                         "sparse_sigmoid", "sparse_plus", "soft_shrink", "prelu_unshared", "nested_prelu"}
    x = np.random.default_rng(0).uniform(-16, 16, (4, 12, 12, 3)).astype(np.float32)
    for name in rewritten - {"nested_prelu"}:
        # layer by layer: the form and the original activation on the same input (the form's, in the rewritten
        # graph), so rounding upstream is not counted against this layer
        form = done.outputs[name]._keras_history[0]
        layer = model.get_layer(name)
        pre_rw = keras.Model(done.model.inputs, form.input)(x)
        got = np.asarray(form(pre_rw))
        ref = np.asarray(layer.activation(pre_rw) if name == "conv_hswish" else layer(pre_rw))
        if name != "conv_hswish":  # the knees (+-3), the caps (4, 3) and the negative side are reached
            pre = np.asarray(keras.Model(model.inputs, model.get_layer(name).input)(x))
            lo, hi = KNEES.get(name, (0.0, 0.0))  # a PReLU's only knee is 0
            assert pre.max() > hi and pre.min() < lo, (name, pre.min(), pre.max())
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max(), err_msg=name)
    # the nested model's layer: its rewritten output lives in the rewritten inner graph
    assert "nested_prelu" in done.outputs
    ref, got = np.asarray(model(x)), np.asarray(done.model(x))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    # the layers are shared, not copied: the rewritten model holds the user's weights
    assert done.model.get_layer("head") is model.get_layer("head")


def _int8(model: Any) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(1)
    conv.representative_dataset = lambda: ([rng.uniform(-4, 4, (1, 12, 12, 3)).astype(np.float32)] for _ in range(8))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return conv.convert()


def _one(k: Any, make: Any) -> Any:
    inp = k.Input((12, 12, 3), batch_size=1)
    x = k.layers.Conv2D(8, 3, padding="same")(inp)
    return k.Model(inp, k.layers.Conv2D(4, 1)(make(x)))


REWRITTEN = {
    "prelu": lambda k: k.layers.PReLU(shared_axes=[1, 2], alpha_initializer=_alpha(k, 0.05, 1.5)),
    "hard_swish": lambda k: k.layers.Activation("hard_swish"),
    "capped_relu": lambda k: k.layers.ReLU(max_value=4.0),
    "capped_relu_leaky": lambda k: k.layers.ReLU(max_value=4.0, negative_slope=0.2),
    **{name: (lambda k, n=name: k.layers.Activation(n)) for name in ("sparse_sigmoid", "sparse_plus", "soft_shrink")},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REWRITTEN))
def test_each_rewrite_moves_its_op_onto_xnnpack_in_int8(name):
    """The catalogue's claim, measured: the activation's int8 op runs outside XNNPACK, its rewrite runs inside."""
    import keras

    from mobilekit.emulate.litert import outside_xnnpack

    keras.utils.set_random_seed(0)
    model = _one(keras, REWRITTEN[name](keras))
    done = xr.rewrite(model, keras)
    [hit] = [h for h in done.hits if h.rewrite]
    assert set(outside_xnnpack(_int8(model))) == {op.strip() for op in hit.op.split(",")}
    assert outside_xnnpack(_int8(done.model)) == {}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gelu", "mish", "softplus", "exponential", "softmax", "sparsemax"])
def test_activations_without_a_form_are_named_with_their_int8_op(name):
    """What ``find`` says of an activation no rewrite serves is what the converter and LiteRT do with it."""
    import keras

    from mobilekit.emulate.litert import outside_xnnpack

    model = _one(keras, keras.layers.Activation(name))
    [hit] = xr.find(model)
    assert hit.rewrite is None and "no exact form" in hit.why
    # the ops named are outside; so may be more (mish's ADD of exp(x) + 1 leaves XNNPACK's int8 scale ratios when
    # exp(x) spans far more than 1)
    assert {op.strip() for op in hit.op.split(",")} <= set(outside_xnnpack(_int8(model)))
    assert xr.rewrite(model, keras).model is None  # nothing to rewrite: the int8 graph stays the user's


def _subclassed(k: Any) -> Any:
    """A subclassed network (Python ``call``, no graph of layers), as PyPI packages ship them, wrapped in a
    functional model as a user saves it: a PReLU, a hard-swish built into a Conv2D, a hard_silu, and one capped ReLU
    tracked twice (an attribute and inside a block) and applied twice. The network is called on two crops (a
    siamese use), so each replacement must be made once and called on both."""

    class Net(k.Model):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.conv1 = k.layers.Conv2D(8, 3, padding="same", name="conv1")
            self.prelu1 = k.layers.PReLU(shared_axes=[1, 2], alpha_initializer=_alpha(k, 0.05, 1.5), name="prelu1")
            self.conv2 = k.layers.Conv2D(8, 1, activation="hard_swish", name="conv2")
            self.hsilu = k.layers.Activation("hard_silu", name="hsilu")
            self.cap = k.layers.ReLU(max_value=4.0, name="cap")
            self.block = k.Sequential([k.layers.Conv2D(8, 1, name="conv3"), self.cap], name="block")
            self.head = k.layers.Conv2D(4, 1, name="head")

        def call(self, x: Any) -> Any:
            return self.head(self.cap(self.block(self.hsilu(self.conv2(self.prelu1(self.conv1(x)))))))

    a, b = k.Input((12, 12, 3), batch_size=1), k.Input((12, 12, 3), batch_size=1)
    net = Net(name="net")
    return k.Model([a, b], k.layers.Add(name="both")([net(a), net(b)]))


def test_a_subclassed_network_is_rewritten_inside_its_call():
    """A subclassed model's activations are found (each once) and rewritten (swapped for their forms while the int8
    graph calls it, the user's layers and weights kept): exact in float, and the user's model unchanged after."""
    import keras

    keras.utils.set_random_seed(0)
    model = _subclassed(keras)
    net = model.get_layer("net")
    activation = net.conv2.activation
    done = xr.rewrite(model, keras)
    assert {h.layer: h.rewrite for h in done.hits} == {"prelu1": "prelu", "conv2": "hard_swish", "hsilu": "hard_swish",
                                                       "cap": "capped_relu"}
    rng = np.random.default_rng(0)
    x = [rng.uniform(-16, 16, (1, 12, 12, 3)).astype(np.float32) for _ in range(2)]
    ref, got = np.asarray(model(x)), np.asarray(done.model(x))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    assert "call" not in net.prelu1.__dict__ and "call" not in net.cap.__dict__  # the swaps are undone
    assert net.conv2.activation is activation
    patched = [layer for layer in done.model.layers if type(layer).__name__ == "XnnpackPatched"]
    assert len(patched) == 1 and patched[0].inner is net  # one wrapper, on the user's network, for both calls


@pytest.mark.slow
def test_a_subclassed_networks_ops_move_onto_xnnpack_in_int8():
    """What the swaps are for, measured: PRELU, HARD_SWISH and MINIMUM leave LiteRT's built-in kernels."""
    import keras

    from mobilekit.emulate.litert import outside_xnnpack

    keras.utils.set_random_seed(0)
    inp = keras.Input((12, 12, 3), batch_size=1)
    model = _subclassed(keras)
    single = keras.Model(inp, model.get_layer("net")(inp))
    assert {"PRELU", "HARD_SWISH", "MINIMUM"} <= set(outside_xnnpack(_int8(single)))
    assert outside_xnnpack(_int8(xr.rewrite(single, keras).model)) == {}


#: the registration module a user writes so a saved model holding mtcnn's network class loads (config ``imports``)
MTCNN_MODULE = """import keras
from mtcnn.network.onet import ONet

keras.saving.register_keras_serializable("mtcnn")(ONet)
"""
#: the user's script that saves mtcnn's trained O-Net as a face / not-face classifier
SAVE_ONET = """import keras
import mtcnn_keras  # registers the class before saving, as the loading side will
from mtcnn.network.onet import ONet
from mtcnn.utils.tensorflow import load_weights

onet = ONet()
onet.build()
onet.set_weights(load_weights("onet.lz4"))
inp = keras.Input((48, 48, 3))
keras.Model(inp, onet(inp)[2], name="onet").save("onet.keras")
"""


def _user(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """A command in its own process, with the environment a user's shell has: keras_cv_attention_models, imported
    by other tests in this process, sets TF_USE_LEGACY_KERAS=1 on import, which turns mtcnn's ``tf.keras`` network
    into a tf_keras one in any process that inherits it."""
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_a_trained_pypi_face_net_is_rewritten_through_the_cli(tmp_path, coco128):
    """mtcnn's trained O-Net (PyPI; a subclassed Keras network with five PReLUs, weights in the wheel) saved by the
    user's script, then through init and build as a user runs them: the int8 model's PReLUs run on XNNPACK and it
    meets the same gate. The rewrite is forced (``always``): under ``measured``, whether it is kept depends on this
    CPU's timings."""
    import yaml

    if importlib.util.find_spec("mtcnn") is None:
        pytest.fail("mtcnn is missing: pip install -e '.[test]' installs it")
    (tmp_path / "mtcnn_keras.py").write_text(MTCNN_MODULE)
    (tmp_path / "save_onet.py").write_text(SAVE_ONET)
    res = _user("save_onet.py", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    res = _user("-m", "mobilekit", "init", "onet.keras", "--images", str(coco128 / "images" / "train2017"),
                "--import", "mtcnn_keras", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    cfg = yaml.safe_load((tmp_path / "mobilekit.yaml").read_text())
    (tmp_path / "labels.txt").write_text("not_face\nface\n")
    cfg.update(labels="labels.txt", coreml={"enabled": False}, quantization={"xnnpack_rewrite": "always"})
    cfg["input"]["normalization"] = {"scale": 1 / 128, "offset": -127.5 / 128}  # mtcnn's (x - 127.5) / 128
    cfg["calibration"]["count"] = 32
    (tmp_path / "mobilekit.yaml").write_text(yaml.safe_dump(cfg))
    res = _user("-m", "mobilekit", "build", "mobilekit.yaml", "--out", "out", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    m = json.loads(res.stdout.strip().splitlines()[-1])["manifest"]
    rw = m["xnnpack_rewrite"]
    assert rw["applied"] and sorted(h["layer"] for h in rw["layers"] if h.get("rewrite")) == \
        [f"prelu{i}" for i in range(1, 6)]
    assert "PRELU" not in m["outside_xnnpack"]["tflite-int8"]
    assert m["parity"]["passed"]


def test_a_softmax_that_makes_an_output_is_not_listed():
    """A classifier's final softmax is cut from the serving graph (post-processing applies it): listing it as an op
    outside XNNPACK would be false. One inside the graph is listed."""
    import keras

    inp = keras.Input((8, 8, 3))
    x = keras.layers.Activation("softmax", name="inner_softmax")(keras.layers.Conv2D(4, 1)(inp))
    out = keras.layers.Dense(3, activation="softmax", name="classes")(keras.layers.GlobalAveragePooling2D()(x))
    assert [h.layer for h in xr.find(keras.Model(inp, out))] == ["inner_softmax"]


def test_inspect_lists_what_falls_outside_xnnpack_before_any_build(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((12, 12, 3))
    x = keras.layers.PReLU(name="face_prelu")(keras.layers.Conv2D(4, 3)(inp))
    x = keras.layers.Activation("gelu", name="gelu_act")(x)
    keras.Model(inp, keras.layers.Conv2D(2, 1)(x)).save(tmp_path / "m.keras")
    res = CliRunner().invoke(main, ["inspect", str(tmp_path / "m.keras"), "--json"])
    assert res.exit_code == 0, res.output
    hits = {h["layer"]: h for h in json.loads(res.output)["outside_xnnpack_int8"]}
    assert hits["face_prelu"]["op"] == "PRELU" and hits["face_prelu"]["rewrite"] == "prelu"
    assert hits["gelu_act"]["op"] == "GELU" and "rewrite" not in hits["gelu_act"]
    table = CliRunner().invoke(main, ["inspect", str(tmp_path / "m.keras")], terminal_width=200).output
    assert "Activations outside XNNPACK's int8 kernels" in table and "face_prelu" in table


# ------------------------------------------------------------------------------------------------ a CLI build


def _train(path: Path) -> None:
    """A shapes classifier whose backbone uses every rewritten kind, trained briefly (decisive outputs, so the
    parity gate measures the rewrite, not noise)."""
    import keras

    from mobilekit.example import shapes, train

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    imgs = shapes.make_images(400, 11, max_objects=1)
    x, _ = train._canvas(imgs)
    y = np.asarray([im.classes[0] for im in imgs])
    inp = keras.Input((train.SIZE, train.SIZE, 3), name="image")
    h = keras.layers.Rescaling(1 / 255)(inp)
    h = keras.layers.PReLU(shared_axes=[1, 2])(keras.layers.Conv2D(32, 3, strides=2, padding="same")(h))
    h = keras.layers.Conv2D(48, 3, strides=2, padding="same", activation="hard_swish")(h)
    h = keras.layers.ReLU(max_value=4.0)(keras.layers.Conv2D(64, 3, strides=2, padding="same")(h))
    h = keras.layers.Activation("hard_swish")(keras.layers.Conv2D(96, 3, strides=2, padding="same")(h))
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inp, keras.layers.Dense(len(train.LABELS), activation="softmax")(h))
    model.compile(keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=6, verbose=0)
    train.save(model, path)


@pytest.fixture(scope="module")
def rewritten_bundle(tmp_path_factory, shapes_dataset, cache) -> tuple[Path, Path]:
    """The classifier built by the CLI with the rewrite and without it (``off``): the two bundles."""
    model = testcache.cached(cache / "xnnpack_classifier.keras", _train)
    outs = []
    for mode in ("always", "off"):
        work = tmp_path_factory.mktemp(f"rewrite-{mode}")
        cfg = {"model": str(model), "task": "classification", "labels": str(cache / "labels.txt"),
               "calibration": {"images": str(shapes_dataset), "count": 24}, "export": {"float32": True},
               "quantization": {"xnnpack_rewrite": mode}, "parity": {"images": 24}, "coreml": {"enabled": False}}
        res = CliRunner().invoke(main, ["build", str(write_config(work, cfg)), "--out", str(work / "out"),
                                        "--quiet"])
        assert res.exit_code == 0, res.output
        outs.append(work / "out")
    return outs[0], outs[1]


@pytest.mark.slow
def test_the_build_rewrites_the_int8_graph_only_and_keeps_the_gate(rewritten_bundle):
    out, plain = rewritten_bundle
    m = json.loads((out / "manifest.json").read_text())
    off = json.loads((plain / "manifest.json").read_text())
    rw = m["xnnpack_rewrite"]
    assert rw["applied"] and rw["kept"] == "rewritten" and rw["float_difference"] < 1e-4
    assert {h["activation"] for h in rw["layers"] if h.get("rewrite")} == {"prelu", "hard_swish", "capped_relu"}
    assert rw["outside_xnnpack"]["rewritten"] == {}
    assert "tflite-int8" not in m.get("outside_xnnpack", {})  # every int8 op on XNNPACK
    assert {"PRELU", "HARD_SWISH", "MINIMUM"} <= set(off["outside_xnnpack"]["tflite-int8"])
    assert "xnnpack_rewrite" not in off
    # parity: the same gate passes, and the rewritten int8 model is as close to the float model as the original's
    assert m["parity"]["passed"] and off["parity"]["passed"]
    assert m["parity"]["worst"]["cosine"] >= off["parity"]["worst"]["cosine"] - 0.01
    # the float artifacts keep the user's graph: byte for byte the build without the rewrite
    for kind in ("fp16", "float32"):
        name = next(a["path"] for a in m["artifacts"] if a["kind"] == f"tflite-{kind}")
        assert (out / name).read_bytes() == (plain / name).read_bytes()
    ops = m["verification"]["tflite-int8"]
    assert ops["full_integer"]


_RSS = textwrap.dedent('''
    import sys
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

    before = status("VmRSS")
    kind = {"xnnpack": OpResolverType.AUTO, "reference": OpResolverType.BUILTIN_REF}[sys.argv[2]]
    it = Interpreter(model_path=sys.argv[1], num_threads=2, experimental_op_resolver_type=kind)
    it.allocate_tensors()
    rng = np.random.default_rng(7)  # pixels, not zeros: a kernel's scratch pages that only zeros touch stay shared
    for d in it.get_input_details():
        it.set_tensor(d["index"], rng.integers(0, 100, d["shape"]).astype(d["dtype"]))
    for _ in range(3):
        it.invoke()
    print(status("VmRSS") - before, status("VmHWM") - before)
''')


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_memory_figure_matches_a_fresh_processes_rss_growth(rewritten_bundle):
    """Every TFLite artifact's figure, per kernel set, against the RSS growth of a fresh process that loads the
    file (memory-mapped, as an app does), allocates and runs it, written here without the module's means (no peak
    reset: the highest RSS since the process started, less the RSS before loading): within 20%. The reference
    kernels free their scratch after a run (the RSS after it is below the peak), so the peak is what is compared;
    on XNNPACK the two agree. Core ML is said to be unmeasured."""
    out, _ = rewritten_bundle
    m = json.loads((out / "manifest.json").read_text())
    tflite = [a for a in m["artifacts"] if a["kind"].startswith("tflite")]
    assert {a["kind"] for a in tflite} == set(m["memory"]) == {"tflite-int8", "tflite-fp16", "tflite-float32"}
    for a in tflite:
        mem = m["memory"][a["kind"]]
        assert mem["path"] == a["path"]
        for kernels, fig in mem["kernels"].items():
            assert fig["model_bytes"] == a["size"] and fig["peak_bytes"] > 0
            after, peak = map(int, subprocess.run([sys.executable, "-c", _RSS, str(out / a["path"]), kernels],
                                                  capture_output=True, text=True, check=True).stdout.split()[-2:])
            assert abs(fig["peak_bytes"] - peak) <= 0.2 * peak, (a["kind"], kernels, fig, peak)
            if kernels == "xnnpack":
                assert abs(fig["peak_bytes"] - after) <= 0.2 * after, (a["kind"], fig, after)
    html = (out / "report/index.html").read_text()
    assert "peak run-time memory" in html and "xnnpack" in html


def test_memory_cells_and_rewrite_line_say_what_was_measured():
    from mobilekit.cli import memory_cell, rewrite_line
    from mobilekit.emulate.memory import COREML_NOTE

    cell = memory_cell({"path": "a.tflite", "kernels": {"xnnpack": {"peak_bytes": 3 * 2**20},
                                                        "reference": {"error": "abort"}}})
    assert cell == "3.00 MiB / failed"
    assert "not measured" in memory_cell({"path": "x.mlpackage", "weight_bytes": 2048, "note": COREML_NOTE})
    assert "not a phone figure" in COREML_NOTE
    line = rewrite_line({"applied": True, "summary": "prelu x5 (PRELU -> f)",
                         "latency_ms": {"original": 1.2, "rewritten": 0.3},
                         "layers": [{"layer": "g", "op": "GELU", "why": "no exact form"}]})
    assert "prelu x5" in line and "1.20 ms -> 0.30 ms" in line and "g (GELU)" in line
    assert "not applied" in rewrite_line({"applied": False, "reason": "measured slower", "layers": []})
