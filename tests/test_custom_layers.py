"""Models with custom layers registered by a module (a model zoo's package, or a module beside the config): the
build names the full registered name and the fix when the module is not imported, and builds when it is
(``imports:`` in the config, ``--import`` on the command line)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

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
