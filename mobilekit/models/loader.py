"""Load Keras 3 ``.keras``, tf_keras/Keras 2 ``.h5`` and TensorFlow SavedModel directories behind one interface.

Each failure a user can hit (missing, truncated, not a model, unresolvable custom layer, non-image input, NaN
weights) becomes one :class:`ModelError` line that names the file and the fix, instead of a 60-line traceback.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mobilekit.errors import ModelError


@dataclass
class LoadedModel:
    path: Path
    kind: str  # keras3 | tf_keras | saved_model
    keras_model: Any | None  # None for SavedModel
    signature: Any | None  # SavedModel serving signature
    saved: Any | None  # keeps the SavedModel's variables alive
    input_name: str
    input_shape: list[int | None]  # batch first
    output_shapes: dict[str, list[int]]  # batch of one

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The model's float outputs for input ``x``, by output name in the model's output order."""
        import tensorflow as tf

        if self.keras_model is not None:
            y = self.keras_model(x, training=False)
            # a dict's keys need not be the output layers' names: its flattened order is the outputs' order
            y = dict(zip(self.output_shapes, tf.nest.flatten(y), strict=True))
        else:
            y = self.signature(**{self.input_name: tf.constant(x)})
        return {k: np.asarray(y[k]) for k in self.output_shapes}

    @property
    def keras_module(self) -> Any:
        if self.kind == "tf_keras":
            import tf_keras

            return tf_keras
        import keras

        return keras


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


#: the full registered name (``package>Class``, ``zoo/coco>DecodePredictions``), not just its first word
_CUSTOM = [re.compile(p) for p in (r"Could not locate class '([^']+)'", r"Unknown (?:layer|object)\W*'([^']+)'",
                                   r"Unknown (?:layer|object)\W*([^\s'.,]+)")]


def _registered_name(path: Path, name: str) -> str:
    """The name a custom class was registered under (``zoo/coco>Scale``), read from the ``.keras`` file's config:
    Keras' own message names the bare class."""
    import json
    import zipfile

    if ">" in name or not zipfile.is_zipfile(path):
        return name
    try:
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
    except (OSError, KeyError, ValueError):
        return name
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("class_name") == name and isinstance(node.get("registered_name"), str):
                return node["registered_name"]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return name


def _load_error(path: Path, e: Exception) -> ModelError:
    text = str(e)
    m = next((m for m in (p.search(text) for p in _CUSTOM) if m), None)
    if m or "custom_objects" in text or "register_keras_serializable" in text:
        name = _registered_name(path, m.group(1)) if m else "a custom object"
        return ModelError(f"custom layer '{name}' cannot be resolved", path=path,
                          fix="name the module that registers it under imports: in mobilekit.yaml (or pass --import "
                              "MODULE); a class of your own needs @keras.saving.register_keras_serializable()")
    if "could not be deserialized" in text and "Exception encountered:" in text:
        cause = (text.rsplit("Exception encountered:", 1)[1].strip().splitlines() or ["(no message)"])[0][:200]
        return ModelError(f"could not be rebuilt from its config: its layers' code raised: {cause}", path=path,
                          fix="the package that defines its layers (imports:) fails to rebuild them: pin the "
                              "version the model was saved with, or export it as a SavedModel "
                              "(model.export('saved_model')) and point model: at that folder")
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()] or [e.__class__.__name__]
    first = " ".join(lines[:2] if lines[0].endswith(":") else lines[:1])[:200]  # "...: <the example error>"
    return ModelError(f"could not be loaded as a model ({e.__class__.__name__}: {first})", path=path,
                      fix="re-save the model with model.save('model.keras') and check the file is complete")


def _finite_weights(path: Path, weights: list[np.ndarray]) -> None:
    for w in weights:
        if not np.all(np.isfinite(w)):
            raise ModelError("the model has NaN or Inf weights", path=path,
                             fix="re-export from a checkpoint taken before training diverged")


def _functional(path: Path, model: Any) -> Any:
    """A subclassed model (``call`` only, no graph of layers) traced once into a functional one at the input shape
    it was built with; the layers inside stay the user's, so weights and outputs are identical."""
    try:
        model.inputs  # noqa: B018 (raises on a subclassed model)
        return model
    except (AttributeError, ValueError):
        pass
    build = model.get_build_config() if hasattr(model, "get_build_config") else None
    shape = (build or {}).get("input_shape")
    how = ("build it before saving (model.build((None, H, W, 3))), or save a functional model: "
           "inp = keras.Input((H, W, 3)); keras.Model(inp, model(inp)).save('model.keras')")
    if not shape or len(shape) != 4:
        raise ModelError("is a subclassed Keras model saved without an input shape, so it cannot be traced",
                         path=path, fix=how)
    import keras

    try:
        inp = keras.Input(tuple(shape[1:]), name="image")
        return keras.Model(inp, model(inp), name=model.name)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise ModelError(f"is a subclassed Keras model that cannot be traced at {list(shape)}: {first}", path=path,
                         fix=how) from None


def _from_keras(path: Path, model: Any, kind: str) -> LoadedModel:
    model = _functional(path, model)
    if len(model.inputs) != 1:
        raise ModelError(f"the model takes {len(model.inputs)} inputs; mobilekit exports single-image models",
                         path=path, fix="export a model with one [1, H, W, 3] image input")
    shape = list(model.inputs[0].shape)
    if len(shape) != 4:
        raise ModelError(f"the model's input has shape {shape}, not an image [batch, H, W, C]", path=path,
                         fix="export a vision model whose input is an image tensor")
    _finite_weights(path, [np.asarray(w) for w in model.get_weights()])
    outs = output_shapes(model)
    in_name = getattr(model.inputs[0], "name", "image").split(":")[0] or "image"
    return LoadedModel(path, kind, model, None, None, in_name, shape, outs)


def output_shapes(model: Any) -> dict[str, list[int]]:
    """A Keras model's outputs by name, batch of one, ``-1`` where a size is unknown until the input is bound."""
    return {str(name): [1, *[int(d) if d is not None else -1 for d in t.shape[1:]]]
            for name, t in zip(model.output_names, model.outputs, strict=True)}


def from_keras(path: Path, model: Any, kind: str) -> LoadedModel:
    """An in-memory Keras model (a compressed one) behind the same interface as a loaded file."""
    return _from_keras(path, model, kind)


def _load_keras3(path: Path) -> LoadedModel:
    if not zipfile.is_zipfile(path):
        raise ModelError("is not a Keras 3 archive (truncated or not a model)", path=path,
                         fix="re-save the model with model.save('model.keras')")
    import keras

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as e:
        raise _load_error(path, e) from None
    return _from_keras(path, model, "keras3")


def _load_h5(path: Path) -> LoadedModel:
    import h5py

    if not h5py.is_hdf5(path):
        raise ModelError("is not an HDF5 model file (truncated or not a model)", path=path,
                         fix="re-save the model with model.save('model.h5') or use the .keras format")
    import tf_keras

    try:
        model = tf_keras.models.load_model(path, compile=False)
    except Exception as e:
        raise _load_error(path, e) from None
    if not isinstance(model, tf_keras.Model) or not model.inputs:
        raise ModelError("holds weights only, not a model", path=path, fix="save the whole model, not weights")
    return _from_keras(path, model, "tf_keras")


def _load_saved_model(path: Path) -> LoadedModel:
    import tensorflow as tf

    if not (path / "saved_model.pb").is_file():
        raise ModelError("directory holds no saved_model.pb", path=path,
                         fix="point model: at a SavedModel directory, a .keras or a .h5 file")
    try:
        saved = tf.saved_model.load(str(path))
    except Exception as e:
        raise _load_error(path, e) from None
    sig = saved.signatures.get("serving_default")
    if sig is None:
        raise ModelError("SavedModel has no 'serving_default' signature", path=path,
                         fix="save with signatures={'serving_default': ...}")
    specs = sig.structured_input_signature[1]
    if len(specs) != 1:
        raise ModelError(f"the signature takes {len(specs)} inputs; mobilekit exports single-image models",
                         path=path, fix="export a signature with one image input")
    in_name, spec = next(iter(specs.items()))
    shape = spec.shape.as_list()
    if len(shape) != 4:
        raise ModelError(f"the model's input has shape {shape}, not an image [batch, H, W, C]", path=path,
                         fix="export a vision model whose input is an image tensor")
    _finite_weights(path, [v.numpy() for v in saved.variables] if hasattr(saved, "variables") else [])
    outs = {k: [1, *[int(d) if d is not None else -1 for d in v.shape.as_list()[1:]]]
            for k, v in sorted(sig.structured_outputs.items())}
    return LoadedModel(path, "saved_model", None, sig, saved, in_name, shape, outs)


def load_model(path: str | Path) -> LoadedModel:
    p = Path(path)
    if not p.exists():
        raise ModelError("model file not found", path=p, fix="check the 'model:' path in your config")
    if p.is_dir():
        return _load_saved_model(p)
    if p.stat().st_size == 0:
        raise ModelError("model file is empty", path=p, fix="re-save the model")
    loaders = {".keras": _load_keras3, ".h5": _load_h5, ".hdf5": _load_h5}
    loader = loaders.get(p.suffix.lower())
    if loader is None:
        raise ModelError(f"unsupported model format '{p.suffix}'", path=p,
                         fix="use a Keras 3 .keras file, a Keras 2 .h5 file or a SavedModel directory")
    return loader(p)
