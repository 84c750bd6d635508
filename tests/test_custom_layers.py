"""Models with custom layers registered by a module (a model zoo's package, or a module beside the config): the
build names the full registered name and the fix when the module is not imported, and builds when it is
(``imports:`` in the config, ``--import`` on the command line)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import NO_GATE, write_config

LAYERS = '''
import keras


@keras.saving.register_keras_serializable(package="zoo/coco")
class Scale(keras.layers.Layer):
    def __init__(self, factor=2.0, **kw):
        super().__init__(**kw)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}
'''


def _cli(*args: str, cwd: Path) -> tuple[int, dict]:
    res = subprocess.run([sys.executable, "-m", "mobilekit", *args], capture_output=True, text=True, timeout=900,
                         cwd=cwd)
    return res.returncode, json.loads(res.stdout)


@pytest.mark.slow
def test_custom_layers_resolve_through_imports(tmp_path, shapes_dataset, cache):
    import keras

    (tmp_path / "zoo_layers.py").write_text(LAYERS)
    sys.path.insert(0, str(tmp_path))
    try:
        zoo = importlib.import_module("zoo_layers")
        inp = keras.Input((96, 96, 3), name="image")
        h = keras.layers.GlobalAveragePooling2D()(zoo.Scale(0.5)(keras.layers.Conv2D(4, 3, strides=4)(inp)))
        keras.Model(inp, keras.layers.Dense(3, activation="softmax")(h)).save(tmp_path / "zoo.keras")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("zoo_layers", None)
    cfg = {"model": "zoo.keras", "task": "classification", "labels": str(cache / "labels.txt"),
           "calibration": {"images": str(shapes_dataset), "count": 6}, "coreml": {"enabled": False},
           "export": {"fp16": False}, "parity": {"images": 4, **NO_GATE}}
    work = tmp_path / "elsewhere"  # the CLI runs outside the folder: the config's folder is searched for imports
    work.mkdir()
    code, obj = _cli("build", str(write_config(tmp_path, cfg)), "--out", str(tmp_path / "b"), "--json", cwd=work)
    assert code == 2 and "custom layer 'zoo/coco>Scale' cannot be resolved" in obj["error"], obj
    assert "imports:" in obj["error"] and "--import" in obj["error"]
    code, obj = _cli("build", str(write_config(tmp_path, {**cfg, "imports": ["zoo_layers"]})), "--out",
                     str(tmp_path / "b"), "--json", cwd=work)
    assert code == 0 and obj["ok"], obj
    code, obj = _cli("inspect", str(tmp_path / "zoo.keras"), "--import", "zoo_layers", "--json", cwd=tmp_path)
    assert code == 0 and any(r["type"] == "Scale" for r in obj["layers"]), obj
    code, obj = _cli("build", str(write_config(tmp_path, {**cfg, "imports": ["no_such_zoo"]})), "--out",
                     str(tmp_path / "b"), "--json", cwd=work)
    assert code == 2 and "imports[0]: module 'no_such_zoo' cannot be imported" in obj["error"], obj


SUBCLASSED = '''
import keras


@keras.saving.register_keras_serializable(package="zoo")
class TinyNet(keras.Model):
    def __init__(self, classes=3, **kw):
        super().__init__(**kw)
        self.classes = classes
        self.conv = keras.layers.Conv2D(4, 3, strides=4)
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.dense = keras.layers.Dense(classes)

    def call(self, x):
        return self.dense(self.pool(self.conv(x)))

    def get_config(self):
        return {**super().get_config(), "classes": self.classes}
'''


def _classifier_cfg(shapes_dataset, cache, **extra) -> dict:
    return {"task": "classification", "labels": str(cache / "labels.txt"),
            "calibration": {"images": str(shapes_dataset), "count": 4}, "coreml": {"enabled": False},
            "export": {"fp16": False}, "parity": {"images": 4, **NO_GATE}, **extra}


@pytest.mark.slow
def test_subclassed_model_is_traced_or_refused_in_one_line(tmp_path, shapes_dataset, cache):
    """A model zoo's subclassed model builds when it was saved built (traced at its input shape); saved unbuilt,
    it is refused in one line that says how to export it."""

    (tmp_path / "zoo_nets.py").write_text(SUBCLASSED)
    sys.path.insert(0, str(tmp_path))
    try:
        zoo = importlib.import_module("zoo_nets")
        net = zoo.TinyNet()
        net(np.zeros((1, 96, 96, 3), "float32"))  # built by a call, as training builds it
        net.save(tmp_path / "built.keras")
        zoo.TinyNet().save(tmp_path / "unbuilt.keras")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("zoo_nets", None)
    for name, want in (("built", 0), ("unbuilt", 2)):
        cfg = _classifier_cfg(shapes_dataset, cache, model=f"{name}.keras", imports=["zoo_nets"])
        config = tmp_path / f"{name}.yaml"
        config.write_text(yaml.safe_dump(cfg))
        code, obj = _cli("build", str(config), "--out", str(tmp_path / f"b-{name}"), "--json", cwd=tmp_path)
        assert code == want, obj
    assert "subclassed Keras model saved without an input shape" in obj["error"], obj
    assert "keras.Model(inp, model(inp))" in obj["error"]


@pytest.mark.slow
def test_dynamic_input_counts_classes_at_the_serving_size(tmp_path, shapes_dataset, cache):
    """A model that takes any image size, bound by input.size: its outputs (unknown until then) are measured at
    that size, so the labels are counted against 3 classes, not -1."""
    import keras

    inp = keras.Input((None, None, 3), name="image")
    x = keras.layers.Conv2D(3, 8, strides=8)(inp)  # 32 x 32 -> 4 x 4 x 3
    x = keras.layers.Conv2D(3, 4)(x)  # -> 1 x 1 x 3, flattened to 3 logits only once the size is known
    keras.Model(inp, keras.layers.Flatten()(x)).save(tmp_path / "dyn.keras")
    cfg = _classifier_cfg(shapes_dataset, cache, model="dyn.keras", input={"size": [32, 32]})
    code, obj = _cli("build", str(write_config(tmp_path, cfg)), "--out", str(tmp_path / "b"), "--json", cwd=tmp_path)
    assert code == 0 and obj["ok"], obj
