"""Keras 3 → tf_keras, for the stages that need tensorflow-model-optimization (it wraps tf_keras layers only).

The Keras 3 functional (or sequential) graph is rebuilt node by node in tf_keras: each standard layer from its own
config (Keras-3-only keys dropped, dtype policies turned back into names), the elementwise ``keras.ops`` nodes a
functional graph can hold (add, subtract, multiply, divide, maximum, minimum with tensors or constants) as a small
op layer, and the weights copied layer by layer. The two models are then run on the same images and must agree;
anything else (custom layers, other ops, nested or shared layers) is refused with a message naming the node.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from mobilekit.errors import ModelError

OPS = {"Add": "add", "Subtract": "subtract", "Multiply": "multiply", "Divide": "divide", "TrueDivide": "divide",
       "Maximum": "maximum", "Minimum": "minimum"}
_DROP_SUFFIXES = ("_initializer", "_regularizer", "_constraint")


class BridgeError(ModelError):
    pass


def _op_layer_class(tf_keras: Any) -> type:
    import tensorflow as tf

    class ElementwiseOp(tf_keras.layers.Layer):
        """``fn(a, b)`` where either side is the input tensor or a constant (a bridged ``keras.ops`` node)."""

        def __init__(self, fn: str, constants: list, slots: list[bool], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.fn, self.constants, self.slots = fn, constants, slots

        def call(self, inputs):
            tensors = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
            args, t, k = [], 0, 0
            for is_tensor in self.slots:
                if is_tensor:
                    args.append(tensors[t])
                    t += 1
                else:
                    args.append(tf.constant(self.constants[k], tf.float32))
                    k += 1
            return getattr(tf.math, self.fn)(*args)

        def get_config(self):
            return {**super().get_config(), "fn": self.fn, "constants": self.constants, "slots": self.slots}

    return ElementwiseOp


def _activations(tf_keras: Any) -> dict[str, str]:
    """Keras 3 activation names whose tf_keras meaning differs or is missing → registered equivalents."""
    import tensorflow as tf

    fns = {
        "mk_hard_silu": lambda x: x * tf.nn.relu6(x + 3.0) / 6.0,
        "mk_hard_sigmoid": lambda x: tf.nn.relu6(x + 3.0) / 6.0,  # Keras 3's; tf_keras' is a different slope
        "mk_relu6": tf.nn.relu6,
        "mk_silu": tf.nn.silu,
    }
    for name, fn in fns.items():
        tf_keras.utils.get_custom_objects()[name] = fn
    return {"hard_silu": "mk_hard_silu", "hard_swish": "mk_hard_silu", "hard_sigmoid": "mk_hard_sigmoid",
            "relu6": "mk_relu6", "silu": "mk_silu", "swish": "mk_silu"}


def _clean(config: dict[str, Any], cls: type, renamed: dict[str, str]) -> dict[str, Any]:
    params = inspect.signature(cls.__init__).parameters
    allowed = set(params) | {"name", "trainable", "dtype"}
    out = {}
    for k, v in config.items():
        if k not in allowed or k.endswith(_DROP_SUFFIXES):
            continue
        if k == "dtype" and isinstance(v, dict):
            v = v.get("config", {}).get("name", "float32")
        if k == "activation" and isinstance(v, str):
            v = renamed.get(v, v)
        out[k] = v
    return out


def _constant(v: Any) -> Any:
    if isinstance(v, dict) and v.get("class_name") in ("__numpy__", "__tensor__"):
        return np.asarray(v["config"]["value"], dtype=np.float32).tolist()
    if isinstance(v, (int, float)):
        return float(v)
    return None


def _is_tensor(v: Any) -> bool:
    return isinstance(v, dict) and v.get("class_name") == "__keras_tensor__"


def _sub(v: Any, tensors: dict[str, Any]) -> Any:
    if _is_tensor(v):
        return tensors[v["config"]["keras_history"][0]]
    if isinstance(v, (list, tuple)):
        return [_sub(x, tensors) for x in v]
    if isinstance(v, dict):
        return {k: _sub(x, tensors) for k, x in v.items()}
    return v


def _op_node(op_layer: Any, name: str, cls_name: str, node: dict[str, Any], tensors: dict[str, Any]) -> Any:
    """A ``keras.ops`` call node rebuilt as a tf_keras op layer on its inputs; None when its arguments cannot be."""
    args = node["args"]
    slots = [_is_tensor(a) for a in args]
    consts = [_constant(a) for a in args if not _is_tensor(a)]
    if any(c is None for c in consts) or not any(slots) or node.get("kwargs"):
        return None
    layer = op_layer(OPS[cls_name], consts, slots, name=name)
    ins = [tensors[a["config"]["keras_history"][0]] for a in args if _is_tensor(a)]
    return layer(ins if len(ins) > 1 else ins[0])


def to_tf_keras(model: Any, path: Any = None) -> Any:
    """A tf_keras twin of a Keras 3 model, same weights; :class:`BridgeError` names what cannot be bridged."""
    import keras
    import tf_keras

    if isinstance(model, keras.Sequential):
        model = keras.Model(model.inputs, model.outputs)
    config = model.get_config()
    if "layers" not in config:
        raise BridgeError("only functional and sequential Keras 3 models can be rebuilt in tf_keras", path=path,
                          fix="save the model as a functional keras.Model, or give a tf_keras .h5 model")
    op_layer = _op_layer_class(tf_keras)
    renamed = _activations(tf_keras)
    tensors: dict[str, Any] = {}
    inputs = []
    refused = []
    for entry in config["layers"]:
        name, cls_name, module = entry["name"], entry["class_name"], entry.get("module") or ""
        nodes = entry.get("inbound_nodes") or []
        if len(nodes) > 1:
            refused.append(f"{name} (shared layer)")
            continue
        if cls_name == "InputLayer":
            c = entry["config"]
            shape = c.get("batch_shape") or c.get("batch_input_shape")
            t = tf_keras.Input(batch_shape=shape, name=name, dtype=c.get("dtype", "float32")
                               if isinstance(c.get("dtype"), str) else "float32")
            tensors[name] = t
            inputs.append(t)
            continue
        node = nodes[0] if nodes else {"args": [], "kwargs": {}}
        if module.startswith("keras.src.ops") and cls_name in OPS:
            out = _op_node(op_layer, name, cls_name, node, tensors)
            if out is None:
                refused.append(f"{name} (keras.ops.{OPS[cls_name]} with arguments it cannot rebuild)")
            else:
                tensors[name] = out
            continue
        cls = getattr(tf_keras.layers, cls_name, None)
        if not module.startswith("keras.layers") or cls is None:
            refused.append(f"{name} ({module}.{cls_name})")
            continue
        layer = cls(**_clean(entry["config"], cls, renamed))
        args = _sub(node["args"], tensors)
        kwargs = _sub(node.get("kwargs", {}), tensors)
        tensors[name] = layer(*args, **kwargs)
    if refused:
        raise BridgeError("tensorflow-model-optimization needs tf_keras, and these Keras 3 nodes have no tf_keras "
                          f"twin: {', '.join(refused[:6])}{' ...' if len(refused) > 6 else ''}", path=path,
                          fix="use standard keras.layers (or a tf_keras .h5 model) for sparsity, clustering and QAT; "
                              "structured pruning and distillation work on Keras 3 directly")
    outs = config["output_layers"]
    outs = [outs] if outs and isinstance(outs[0], str) else outs
    twin = tf_keras.Model(inputs, [tensors[o[0]] for o in outs] if len(outs) > 1 else tensors[outs[0][0]],
                          name=model.name)
    for layer in model.layers:
        w = layer.get_weights()
        if w:
            twin.get_layer(layer.name).set_weights(w)
    return twin


def check_same(a: Any, b: Any, x: np.ndarray, path: Any = None, tolerance: float = 1e-4) -> float:
    """Largest output difference of two models on ``x``, relative to the output range; refuses above tolerance."""
    ya = a(x, training=False)
    yb = b(x, training=False)
    ya = ya if isinstance(ya, (list, tuple)) else [ya]
    yb = yb if isinstance(yb, (list, tuple)) else [yb]
    worst = 0.0
    for p, q in zip(ya, yb, strict=True):
        p, q = np.asarray(p), np.asarray(q)
        worst = max(worst, float(np.max(np.abs(p - q)) / (np.max(np.abs(p)) + 1e-6)))
    if worst > tolerance:
        raise BridgeError(f"the tf_keras rebuild differs from the Keras 3 model (relative error {worst:.2e})",
                          path=path, fix="report the model's layers; use a tf_keras .h5 model meanwhile")
    return worst
