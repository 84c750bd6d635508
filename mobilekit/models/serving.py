"""The serving graph: the user's model as one frozen TensorFlow function with outputs in contract (role) order.

Built once; the float reference run, every TFLite conversion and (later) Core ML conversion use this same
function, so the "float model" that parity compares against is exactly what was converted. It is built from a
contract, never from the config: a model's first graph from the plan (:func:`mobilekit.derive.plan`: the input and
the head before the outputs are known), every later one (QAT, the XNNPACK rewrite, prepared weights) from the
derived contract, so the input layout and the head have one source.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mobilekit.contract import Contract, OutputSpec
from mobilekit.errors import ModelError
from mobilekit.heads import get_head
from mobilekit.models.activation_cut import cut_activation
from mobilekit.models.loader import LoadedModel, output_shapes
from mobilekit.models.split import split_concat


@dataclass
class Serving:
    fn: Any  # frozen tf ConcreteFunction: [1, H, W, C] float32 -> tuple of outputs in role order
    input_name: str
    input_shape: list[int]
    outputs: list[OutputSpec]
    num_classes: int
    split: dict[str, Any] = field(default_factory=dict)
    keras_model: Any | None = None  # the (possibly rewired) Keras model, for per-layer tools
    positions: dict[str, int] = field(default_factory=dict)  # role -> index among keras_model's outputs

    @property
    def roles(self) -> list[str]:
        return [o.role for o in self.outputs]

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        import tensorflow as tf

        res = self.fn(tf.constant(x, dtype=tf.float32))
        res = res if isinstance(res, (list, tuple)) else [res]
        return {role: np.asarray(t) for role, t in zip(self.roles, res, strict=True)}


def _bound_shapes(loaded: LoadedModel, shape: list[int]) -> dict[str, list[int]]:
    """Output shapes at the serving input size: a model that accepts any image size has outputs of unknown size
    (``-1``) until the input is bound, and a head must count classes and anchors from the bound ones. A Keras
    model is always run: a layer's declared output shape can be wrong (keras-cv's reloaded RetinaNet declares 20,700
    anchors and computes 19,206)."""
    if loaded.keras_model is None and all(d >= 0 for s in loaded.output_shapes.values() for d in s):
        return loaded.output_shapes
    import tensorflow as tf

    x = tf.zeros(shape, tf.float32)
    if loaded.keras_model is not None:
        y = loaded.keras_model(x, training=False)
        # a dict's keys need not be the output layers' names: its flattened order is the outputs' order
        y = dict(zip(loaded.output_shapes, tf.nest.flatten(y), strict=True))
    else:
        y = loaded.signature(**{loaded.input_name: x})
    return {name: [1, *[int(d) for d in y[name].shape[1:]]] for name in loaded.output_shapes}


def _per_level(head: Any, loaded: LoadedModel, plan: Contract) -> tuple[Any, dict[str, Any]]:
    """The Keras model with its per-level maps joined (``models.levels``), or ``(None, {})`` when its outputs are
    not per-level maps."""
    bound = _bound_shapes(loaded, plan.input.shape)
    if plan.task != "detection" or len(bound) < 2 or not all(len(s) == 4 for s in bound.values()):
        return None, {}
    grids = head.levels(plan.head, plan.input)
    if grids is None:  # a head whose outputs are never per-level maps
        return None, {}
    if loaded.keras_model is None:
        raise ModelError("per-level outputs of a SavedModel cannot be joined (the graph cannot be rewired)",
                         path=loaded.path, fix="build from the Keras model, or export the levels concatenated")
    from mobilekit.models.levels import join_levels

    return join_levels(loaded.keras_model, loaded.keras_module, bound, grids, head.box_channels(plan.head))


def _bind(head: Any, loaded: LoadedModel, plan: Contract, bound: dict[str, list[int]] | None = None
          ) -> tuple[dict[str, str], int, int]:
    """Roles → output names, the class count, and the channels of the box role (4, or 4 x reg_max DFL bins)."""
    bound = bound or _bound_shapes(loaded, plan.input.shape)
    try:
        roles, num_classes = head.bind(bound, plan.head.outputs)
    except ModelError as e:
        e.path = e.path or str(loaded.path)
        raise
    box = head.box_channels(plan.head)
    if "predictions" in roles:  # less the box channels, and objectness where the head has it
        num_classes = bound[roles["predictions"]][head.channel_axis] - box - head.extra_score_channels
    if plan.head.background_class:
        num_classes -= 1  # the leading background column is not a class
    return roles, num_classes, box


def serving_shapes(loaded: LoadedModel, plan: Contract) -> dict[str, list[int]]:
    """Every output's shape at the serving input size (measured: the model runs once)."""
    return _bound_shapes(loaded, plan.input.shape)


def bound_roles(loaded: LoadedModel, plan: Contract, bound: dict[str, list[int]] | None = None
                ) -> tuple[list[OutputSpec], int] | None:
    """The model's own outputs as the head reads them, unsplit (each role an output of the user's model), and the
    class count: what the decode check decodes beside the model's own decoder, for any head settings. ``None`` when
    the outputs are per-level maps the build joins first. ``bound``: the output shapes at the serving input size,
    when the caller has them (each measurement runs the model)."""
    bound = bound or _bound_shapes(loaded, plan.input.shape)
    if len(bound) >= 2 and all(len(s) == 4 for s in bound.values()):
        return None
    roles, num_classes, _ = _bind(get_head(plan.head.format), loaded, plan, bound)
    return [OutputSpec(role=r, shape=bound[n], source=n) for r, n in roles.items()], num_classes


def _split_roles(head: Any, loaded: LoadedModel, plan: Contract, roles: dict[str, str], box: int, training: bool
                 ) -> tuple[Any, dict[str, str], dict[str, int], dict[str, Any]]:
    """A single ``predictions`` output split into one output per role (the head's parts: boxes, scores, and
    objectness where the head has it), or left whole with the reason: (model, roles, positions, split info).
    For training, boxes and scores only: the detector losses and ground-truth targets read scores with
    objectness among them."""
    if loaded.keras_model is None:
        return None, roles, {}, {"applied": False, "reason": "a SavedModel graph cannot be rewired; boxes and scores "
                                 "share one int8 scale. Export the Keras model instead, or separate outputs"}
    channels = loaded.output_shapes[roles["predictions"]][head.channel_axis]
    parts = None if training else head.parts(plan.head, channels)
    new, split = split_concat(loaded.keras_model, loaded.keras_module, head.channel_axis, box, parts)
    if new is None:
        return loaded.keras_model, roles, {}, split
    return new, {r: f"{split['layer']}[{r} channels]" for r in split["roles"]}, \
        {r: k for k, r in enumerate(split["roles"])}, split


def build_serving(loaded: LoadedModel, plan: Contract, cut: bool = True, training: bool = False) -> Serving:
    """``loaded`` served as ``plan`` (a contract, or the plan of one) reads it: the input shape, the head's roles,
    a concatenated output split per role, per-level maps joined, and a classifier's final activation cut (``cut``)
    so post-processing applies it."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    head = get_head(plan.head.format)
    shape = plan.input.shape
    joined, levels = _per_level(head, loaded, plan)
    if joined is not None:  # from here on, the model with its levels joined is the user's model
        loaded = replace(loaded, keras_model=joined, output_shapes=output_shapes(joined))
    keras_model = loaded.keras_model
    split: dict[str, Any] = {}
    roles, num_classes, box = _bind(head, loaded, plan)
    positions: dict[str, int] = {}
    if "predictions" in roles:
        keras_model, roles, positions, split = _split_roles(head, loaded, plan, roles, box, training)
    if cut and plan.task == "classification" and keras_model is not None:
        new, split = cut_activation(keras_model, loaded.keras_module)
        if new is not None:
            keras_model, positions = new, {"scores": 0}
            configured = plan.head.score_activation
            if configured not in ("none", split["activation"]):  # the model's own activation wins: say so
                split["reason"] += (f"; classification.score_activation: {configured} is not applied on top "
                                    "(the model ends in its own activation)")
    if levels:  # said in the manifest with the split: what was rewired, and why
        split = {**split, "levels_joined": levels}
    order = list(roles)

    if keras_model is not None:
        names = [str(n) for n in keras_model.output_names]
        positions = positions or {r: names.index(roles[r]) for r in order}

        def call(x):
            # a dict of outputs (keras-cv's detectors) flattens in the outputs' order, as _bound_shapes reads it
            y = tf.nest.flatten(keras_model(x, training=False))
            return tuple(y[positions[r]] for r in order)
    else:
        sig = loaded.signature

        def call(x):
            y = sig(**{loaded.input_name: x})
            return tuple(y[roles[r]] for r in order)

    spec = tf.TensorSpec(shape, tf.float32, name="image")
    fn = convert_variables_to_constants_v2(tf.function(call).get_concrete_function(spec))
    probe = fn(tf.zeros(shape, tf.float32))
    probe = probe if isinstance(probe, (list, tuple)) else [probe]
    outputs = [OutputSpec(role=r, shape=[int(d) for d in t.shape], source=roles[r])
               for r, t in zip(order, probe, strict=True)]
    return Serving(fn, "image", shape, outputs, num_classes, split, keras_model, positions)
