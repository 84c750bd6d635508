"""Split a detector's single ``[boxes | scores]`` output into one output per role before int8 conversion.

Boxes (0..640 pixels) and class scores (0..1) quantized with one int8 scale lose either the scores (a step of
~2.5 against a range of 1) or the boxes. Rewiring the Keras graph to output each role's channels from where they
are computed gives each its own scale. The walk goes back from the output through layers that only move values:
- a final ``Permute((2, 1))`` (``[1, 4+C, N]`` exports), an ``Identity``, a linear ``Activation`` (the float32
  cast of mixed-precision models);
- a concatenation along the channel axis, whose inputs are regrouped by role (an input holding several roles is
  walked into in turn);
- a concatenation along the anchor axis of per-level blocks (FPN/PAN heads): every level is split by role, and the
  levels are concatenated per role;
- a ``Reshape`` of a ``[1, H, W, A * K]`` feature map into ``[1, H*W*A, K]`` anchors, whose channels are split
  before it (with several anchors per cell, a role's channels interleave: they are picked by index).
Graphs built from TensorFlow ops are walked alike: a ``TFOpLambda`` of ``tf.concat`` is a concatenation (its axis
read from the call), and an elementwise activation (an ``Activation`` layer other than softmax, or a
``TFOpLambda`` of ``tf.nn.sigmoid`` and its kin) is applied to each role's part after the split, as the
tf_keras-era zoos apply the class sigmoid to the concatenated head.

Anything else stops the walk, a convolution whose filters hold several roles included (YOLOv5's ``A * (5 + C)``
per level: splitting it into one convolution per role would copy weights that compression then trains, and
tfmot's wrappers hide it from the compressed model's walk, so the float and int8 roles would differ), and the
reason (the layers walked) goes to the manifest and the console.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any


def _node(tensor: Any) -> tuple[Any, Any]:
    hist = tensor._keras_history
    op = getattr(hist, "operation", None) or getattr(hist, "layer", None)
    return op, op._inbound_nodes[hist.node_index]


def _producer(tensor: Any) -> tuple[Any, list[Any]]:
    op, node = _node(tensor)
    inputs = node.input_tensors
    return op, list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


#: TensorFlow functions that act on each value alone, called on the tensor alone (no argument that changes what
#: they compute), and the Keras activation that computes the same: a TFOpLambda of one of them splits like that
#: activation, applied to each role's part as an ``Activation`` layer of a deterministic name
ELEMENTWISE = {"sigmoid": "sigmoid", "relu": "relu", "tanh": "tanh", "exp": "exponential", "swish": "swish",
               "silu": "swish", "elu": "elu", "softplus": "softplus"}
#: Keras activations that act on each value alone (an Activation layer of one of them splits the same way); a
#: custom callable or a normalizing one (softmax, glu, sparsemax) is not one of them
ACTIVATIONS = {"sigmoid", "relu", "relu6", "tanh", "exponential", "swish", "silu", "elu", "selu", "softplus",
               "softsign", "hard_sigmoid", "hard_silu", "hard_swish", "gelu", "leaky_relu", "mish", "linear"}


def _tf_function(op: Any) -> str | None:
    """The TensorFlow function a ``TFOpLambda`` / ``SlicingOpLambda`` wraps (``concat``, ``sigmoid``), or None."""
    fn = getattr(op, "function", None) if type(op).__name__ in ("TFOpLambda", "SlicingOpLambda") else None
    return getattr(fn, "__name__", None) if fn is not None else None


def _concat_axis(op: Any, tensor: Any) -> int | None:
    """The axis of a concatenation: a ``Concatenate`` layer (or Keras 3 op), or a ``TFOpLambda`` of ``tf.concat``
    (its axis is a call argument)."""
    if type(op).__name__ == "Concatenate":
        return int(op.axis)
    if _tf_function(op) == "concat":
        _, node = _node(tensor)
        kwargs, args = getattr(node, "call_kwargs", None) or {}, getattr(node, "call_args", None) or ()
        axis = kwargs.get("axis", args[1] if len(args) > 1 else None)
        return int(axis) if isinstance(axis, int) else None
    return None


#: Keras 3 ops (``keras.ops.sigmoid`` on a functional graph's tensors) that act on each value alone
KERAS_ELEMENTWISE = {"Sigmoid", "Relu", "Relu6", "Tanh", "Exp", "Silu", "Swish", "HardSigmoid", "LeakyRelu", "Elu",
                     "Softplus"}


def _elementwise(op: Any, tensor: Any) -> bool:
    if type(op).__name__ == "Activation":
        fn = getattr(op, "activation", None)
        return getattr(fn, "__name__", fn) in ACTIVATIONS
    if type(op).__name__ in KERAS_ELEMENTWISE and type(op).__module__.startswith("keras.src.ops"):
        return True  # the operation object keeps its own arguments (a leaky slope): reapplied as it is
    if _tf_function(op) not in ELEMENTWISE:
        return False
    _, node = _node(tensor)  # tf.nn.silu(x, beta=2.0) is not silu: only the tensor alone, or a name, is passed
    args, kwargs = getattr(node, "call_args", None) or (), getattr(node, "call_kwargs", None) or {}
    return len(args) <= 1 and set(kwargs) <= {"name"}


def float32(t: Any, keras_mod: Any, name: str) -> Any:
    """``t`` as float32: a mixed-precision model's outputs behind its final cast are float16, and the served
    outputs (the float reference of every parity check) must stay float32."""
    if str(getattr(t, "dtype", "float32")).endswith("float32"):
        return t
    return keras_mod.layers.Activation("linear", dtype="float32", name=name)(t)


def _passthrough(op: Any) -> bool:
    """A layer that leaves values as they are: ``Identity``, or ``Activation('linear')`` (the float32 output cast
    of mixed-precision models); the concatenation behind it can be split just the same."""
    kind = type(op).__name__
    if kind == "Identity":
        return True
    fn = getattr(op, "activation", None)
    return kind == "Activation" and getattr(fn, "__name__", fn) == "linear"


class _Stop(Exception):
    """The walk met a layer it cannot see through."""


@dataclass
class _Walk:
    km: Any
    roles: list[str]
    trail: list[str] = field(default_factory=list)
    levels: int = 1
    used: set[str] = field(default_factory=set)

    def name(self, base: str) -> str:
        """A layer name unique in the new model (a layer shared by several levels is walked once per level)."""
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def split(self, t: Any, axis: int, sizes: list[int]) -> list[Any]:
        """``t`` cut along ``axis`` into consecutive parts of ``sizes``, rewired from where the parts are made."""
        bounds = list(itertools.accumulate([0, *sizes]))
        return self.pick(t, axis, [list(range(a, b)) for a, b in itertools.pairwise(bounds)])

    def pick(self, t: Any, axis: int, groups: list[list[int]]) -> list[Any]:
        """``t``'s channels along ``axis`` gathered into one tensor per group of (ascending) indices, rewired from
        where they are made; a role's channels may interleave with another's (A anchors x [box, obj, classes])."""
        if len(groups) == 1 and groups[0] == list(range(int(t.shape[axis]))):
            return [t]
        op, inputs = _producer(t)
        kind = type(op).__name__
        self.trail.append(kind)
        rank = len(t.shape)
        if _passthrough(op) and len(inputs) == 1:
            return self.pick(inputs[0], axis, groups)
        cat = _concat_axis(op, t)
        if cat is not None and cat % rank == axis % rank:
            return self._channels(op, inputs, axis, groups)
        if cat is not None:
            per = [self.pick(x, axis, groups) for x in inputs]
            self.levels = max(self.levels, len(inputs))
            return [self.km.layers.Concatenate(axis=cat, name=self.name(f"{op.name}_{self.roles[r]}"))(
                [p[r] for p in per])
                    for r in range(len(groups))]
        if _elementwise(op, t) and len(inputs) == 1:  # the same activation on each role's part
            return [self._activation(op, p, self.roles[r]) for r, p in enumerate(self.pick(inputs[0], axis, groups))]
        src = inputs[0] if inputs else None
        if kind == "Reshape" and rank == 3 and axis % rank == 2 and len(src.shape) == 4 and \
                int(src.shape[-1]) % int(t.shape[-1]) == 0:
            # [1, H, W, A * K] -> [1, H * W * A, K]: a role's channels are its K-channels of every anchor
            k, anchors = int(t.shape[-1]), int(src.shape[-1]) // int(t.shape[-1])
            parts = self.pick(src, 3, [[a * k + c for a in range(anchors) for c in g] for g in groups])
            return [self.km.layers.Reshape((-1, len(g)), name=self.name(f"{op.name}_{self.roles[r]}"))(p)
                    for r, (p, g) in enumerate(zip(parts, groups, strict=True))]
        raise _Stop(kind)

    def _activation(self, op: Any, part: Any, role: str) -> Any:
        if type(op).__name__ == "Activation":
            return self.km.layers.Activation(op.activation, name=self.name(f"{op.name}_{role}"))(part)
        fn = _tf_function(op)
        if fn is not None:  # a TFOpLambda: its Keras activation, named (an auto-named layer would differ per run)
            return self.km.layers.Activation(ELEMENTWISE[fn], name=self.name(f"{op.name}_{role}"))(part)
        return op(part)  # a Keras 3 op: the same operation on the part

    def _channels(self, op: Any, inputs: list[Any], axis: int, groups: list[list[int]]) -> list[Any]:
        """Regroup a channel concatenation's inputs by role; an input that holds several roles is picked apart."""
        pieces: list[list[Any]] = [[] for _ in groups]
        offset = 0
        for x in inputs:
            size = int(x.shape[axis])
            local = [[i - offset for i in g if offset <= i < offset + size] for g in groups]
            present = [r for r, ids in enumerate(local) if ids]
            for r, part in zip(present, self.pick(x, axis, [local[r] for r in present]), strict=True):
                pieces[r].append(part)
            offset += size
        return [p[0] if len(p) == 1 else
                self.km.layers.Concatenate(axis=axis, name=self.name(f"{op.name}_{self.roles[r]}"))(p)
                for r, p in enumerate(pieces)]


def split_concat(model: Any, keras_mod: Any, channel_axis: int, box: int = 4,
                 parts: list[tuple[str, int]] | None = None) -> tuple[Any | None, dict[str, Any]]:
    """Return ``(model with one output per role, info)`` or ``(None, info with the reason)``. ``parts``: the
    roles and their channel counts in channel order (a head's, e.g. boxes, objectness, scores); by default the box
    role is the first ``box`` channels (4 coordinates, or 4 x reg_max DFL bins) and the scores the rest."""
    if len(model.outputs) != 1:
        return None, {"applied": False, "reason": f"the model has {len(model.outputs)} outputs"}
    out = model.outputs[0]
    op, inputs = _producer(out)
    while _passthrough(op) and len(inputs) == 1:  # a float32 cast (mixed precision), an identity
        out = inputs[0]
        op, inputs = _producer(out)
    permute = None
    if type(op).__name__ == "Permute" and tuple(op.dims) == (2, 1):
        permute, out = op, inputs[0]
        channel_axis = 2 if channel_axis == 1 else 1
    channels = int(out.shape[channel_axis])
    parts = parts or [("boxes", box), ("scores", channels - box)]
    sizes = [n for _, n in parts]
    walk = _Walk(keras_mod, [r for r, _ in parts], used={layer.name for layer in model.layers})
    try:
        tensors = walk.split(out, channel_axis, sizes)
    except _Stop as stop:
        path = " > ".join(walk.trail) or str(stop)
        return None, {"applied": False,
                      "reason": f"the output's channels cannot be traced to separate box and class layers (walked "
                                f"{path}), so {' and '.join(walk.roles)} share one int8 scale; export the model with "
                                f"two outputs, its {sizes[0]} box channels and its {sum(sizes[1:])} score channels, "
                                "named in detection.outputs: {boxes: ..., scores: ...}, to give each its own"}
    name = _producer(out)[0].name
    groups = []
    # explicit names: auto-named layers get per-process counters, which would leak into the converted graphs'
    # tensor names and make two identical builds differ
    for role, t in zip(walk.roles, tensors, strict=True):
        if permute is not None:
            t = keras_mod.layers.Permute((2, 1), name=walk.name(f"{name}_{role}_transposed"))(t)
        groups.append(float32(t, keras_mod, walk.name(f"{name}_{role}_float32")))
    new = keras_mod.Model(model.inputs, groups, name=f"{model.name}_split")
    return new, {"applied": True, "layer": name, "parts": sizes, "roles": walk.roles, "levels": walk.levels,
                 "reason": f"{', '.join(walk.roles)} are separate int8 outputs with their own scales"
                           + (f" (split in each of {walk.levels} levels)" if walk.levels > 1 else "")}
