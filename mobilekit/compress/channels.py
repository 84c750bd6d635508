"""Which conv/dense output channels can be removed together: the channel spaces of a functional Keras graph.

Every tensor with a channel axis carries a list of *spaces* (one per concatenated part). A conv or dense layer opens
a new space (its output channels); BatchNorm, depthwise convs, activations and pooling carry their input's space
through; residual ``Add``/``Multiply`` merge the spaces they join (so a whole residual stream or squeeze-excite
gate is pruned as one group); ``Concatenate`` lists its parts. A space is *frozen* (kept whole) when it reaches
something that would need its channel order: the model's input or outputs, a reshape that is not a pure channel
squeeze, an op this analysis does not know, or a layer the user excluded. What is left are the groups the pruner
may shrink. Layer handlers are registered by class name; an unknown layer freezes what it touches, so the analysis
is conservative rather than wrong.

Works on Keras 3 and tf_keras functional configs (their node formats differ; both are parsed here).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mobilekit.registry import Registry


@dataclass
class Space:
    id: int
    size: int
    producers: list[str] = field(default_factory=list)  # conv/dense layers whose output channels these are
    channelwise: list[str] = field(default_factory=list)  # BN / depthwise layers that carry them (sliced alike)
    frozen: str | None = None  # why it must stay whole


Channels = list[int]  # space ids, in concatenation order; [] = not a channel tensor we track


@dataclass
class LayerUse:
    """A weighted layer's place in the graph: its input channels (for slicing) and output space."""

    name: str
    kind: str  # conv | dense | depthwise | separable | bn | other
    inputs: Channels
    output: int | None


@dataclass
class Graph:
    spaces: dict[int, Space]
    parent: dict[int, int]
    uses: dict[str, LayerUse]
    order: list[str]

    def root(self, sid: int) -> int:
        while self.parent[sid] != sid:
            self.parent[sid] = self.parent[self.parent[sid]]
            sid = self.parent[sid]
        return sid

    def groups(self) -> dict[int, Space]:
        """Root id → merged space (producers, channelwise layers and freeze reasons of its members)."""
        out: dict[int, Space] = {}
        for sid, s in self.spaces.items():
            r = self.root(sid)
            g = out.setdefault(r, Space(r, s.size))
            g.producers += s.producers
            g.channelwise += s.channelwise
            g.frozen = g.frozen or s.frozen
        return out

    def prunable(self) -> dict[int, Space]:
        return {r: g for r, g in self.groups().items() if not g.frozen and g.producers}


class _Builder:
    def __init__(self, exclude: set[str]) -> None:
        self.spaces: dict[int, Space] = {}
        self.parent: dict[int, int] = {}
        self.uses: dict[str, LayerUse] = {}
        self.exclude = exclude

    def new(self, size: int, producer: str | None = None, frozen: str | None = None) -> int:
        sid = len(self.spaces)
        self.spaces[sid] = Space(sid, size, [producer] if producer else [], frozen=frozen)
        self.parent[sid] = sid
        return sid

    def root(self, sid: int) -> int:
        while self.parent[sid] != sid:
            sid = self.parent[sid]
        return sid

    def merge(self, a: int, b: int) -> int:
        ra, rb = self.root(a), self.root(b)
        if ra != rb:
            if self.spaces[ra].size != self.spaces[rb].size:
                self.freeze([a, b], "joined tensors of different widths")
            self.parent[rb] = ra
        return ra

    def freeze(self, channels: Channels, why: str) -> None:
        for sid in channels:
            s = self.spaces[self.root(sid)]
            s.frozen = s.frozen or why


@dataclass
class Node:
    name: str
    cls: str
    config: dict[str, Any]
    inputs: list[str]  # inbound layer names, in order
    shape: tuple  # output shape (batch first), () when unknown
    scalar_operands: bool = False  # an elementwise op whose non-tensor operands are all plain numbers


Handler = Callable[[_Builder, Node, list[Channels]], Channels]
HANDLERS: Registry[Handler] = Registry("channel handler")
handles = HANDLERS.register


def _width(node: Node) -> int:
    return int(node.shape[-1]) if node.shape and node.shape[-1] is not None else 0


@handles("InputLayer")
def _input(b: _Builder, node: Node, ins: list[Channels]) -> Channels:
    return [b.new(_width(node), frozen="the model input")]


@handles("Conv2D", "Conv1D", "Dense")
def _producer(b: _Builder, node: Node, ins: list[Channels]) -> Channels:
    kind = "dense" if node.cls == "Dense" else "conv"
    if node.config.get("groups", 1) != 1:
        b.freeze(ins[0], f"grouped convolution {node.name}")
        out = b.new(_width(node), node.name, frozen=f"grouped convolution {node.name}")
    else:
        out = b.new(_width(node), node.name)
    b.uses[node.name] = LayerUse(node.name, kind, ins[0], out)
    return [out]


@handles("SeparableConv2D")
def _separable(b: _Builder, node: Node, ins: list[Channels]) -> Channels:
    if node.config.get("depth_multiplier", 1) != 1:
        b.freeze(ins[0], f"depth multiplier of {node.name}")
    out = b.new(_width(node), node.name)
    b.uses[node.name] = LayerUse(node.name, "separable", ins[0], out)
    return [out]


@handles("DepthwiseConv2D", "BatchNormalization")
def _channelwise(b: _Builder, node: Node, ins: list[Channels]) -> Channels:
    kind = "bn" if node.cls == "BatchNormalization" else "depthwise"
    axis = node.config.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    ok = len(ins[0]) == 1 and (kind != "depthwise" or node.config.get("depth_multiplier", 1) == 1) and \
        axis in (-1, len(node.shape) - 1)
    if not ok:
        b.freeze(ins[0], f"{node.name} mixes or multiplies channels")
        out = b.new(_width(node), frozen=f"output of {node.name}")
        b.uses[node.name] = LayerUse(node.name, "other", ins[0], out)
        return [out]
    b.spaces[ins[0][0]].channelwise.append(node.name)
    b.uses[node.name] = LayerUse(node.name, kind, ins[0], ins[0][0])
    return ins[0]


@handles("ReLU", "Activation", "Dropout", "SpatialDropout2D", "ZeroPadding2D", "MaxPooling2D", "AveragePooling2D",
         "GlobalAveragePooling2D", "GlobalMaxPooling2D", "UpSampling2D", "LeakyReLU", "ELU", "Identity",
         "Cropping2D", "Rescaling", "GaussianNoise", "ActivityRegularization")
def _passthrough(b: _Builder, node: Node, ins: list[Channels]) -> Channels:
    if node.cls == "Rescaling" and isinstance(node.config.get("scale"), list):
        b.freeze(ins[0], f"per-channel rescaling {node.name}")
    if node.cls in ("GlobalAveragePooling2D", "GlobalMaxPooling2D") and node.config.get("data_format") == \
            "channels_first":
        b.freeze(ins[0], f"channels-first pooling {node.name}")
    return ins[0]


@handles("Add", "Multiply", "Subtract", "Average", "Maximum", "Minimum")
def _merge(b: _Builder, node: Node, ins: list[Channels]) -> Channels:
    if len(ins) == 1 and len(ins[0]) == 1 and node.scalar_operands:
        return ins[0]  # x + 3.0, x * (1/6): hard-sigmoid / hard-swish written with keras.ops keep the channels
    if any(len(c) != 1 for c in ins) or len(ins) < 2:
        for c in ins:
            b.freeze(c, f"{node.name} joins composite tensors")
        return [b.new(_width(node), frozen=f"output of {node.name}")]
    sid = ins[0][0]
    for c in ins[1:]:
        sid = b.merge(sid, c[0])
    return [sid]


@handles("Concatenate")
def _concat(b: _Builder, node: Node, ins: list[Channels]) -> Channels:
    axis = node.config.get("axis", -1)
    if axis not in (-1, len(node.shape) - 1) or any(not c for c in ins):
        for c in ins:
            b.freeze(c, f"{node.name} concatenates along another axis")
        return [b.new(_width(node), frozen=f"output of {node.name}")]
    return [sid for c in ins for sid in c]


@handles("Reshape")
def _reshape(b: _Builder, node: Node, ins: list[Channels]) -> Channels:
    target = list(node.config.get("target_shape", []))
    if len(ins[0]) == 1 and target and all(d == 1 for d in target[:-1]):
        return ins[0]  # a pure channel squeeze / unsqueeze (squeeze-excite): the target's last dim follows
    b.freeze(ins[0], f"reshape {node.name} spreads channels")
    return []


def _opaque(b: _Builder, node: Node, ins: list[Channels]) -> Channels:
    for c in ins:
        b.freeze(c, f"{node.cls} {node.name} is not understood by the pruner")
    return [b.new(_width(node), frozen=f"output of {node.name}")] if _width(node) else []


def _history(obj: Any, out: list[str]) -> None:
    """Inbound layer names of a Keras 3 node, in argument order."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            out.append(obj["config"]["keras_history"][0])
            return
        for v in obj.values():
            _history(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _history(v, out)


def _legacy(obj: Any, names: set[str], out: list[str]) -> None:
    """Inbound layer names of a tf_keras node: ``[name, node_index, tensor_index, kwargs]`` entries."""
    if isinstance(obj, list):
        if len(obj) >= 3 and isinstance(obj[0], str) and obj[0] in names and isinstance(obj[1], int):
            out.append(obj[0])
            if len(obj) > 3:
                _legacy(obj[3], names, out)
            return
        for v in obj:
            _legacy(v, names, out)
    elif isinstance(obj, dict):
        for v in obj.values():
            _legacy(v, names, out)


def nodes_of(model: Any, config: dict[str, Any]) -> list[Node]:
    names = {layer["name"] for layer in config["layers"]}
    out = []
    for layer in config["layers"]:
        inbound = layer.get("inbound_nodes") or []
        if len(inbound) > 1:
            raise ValueError(f"layer {layer['name']} is shared (called {len(inbound)} times); the pruner needs "
                             "each layer called once")
        ins: list[str] = []
        scalar = False
        if inbound and isinstance(inbound[0], dict):
            _history(inbound[0], ins)
            operands = [a for a in inbound[0].get("args", []) if not (isinstance(a, dict) and
                                                                      a.get("class_name") == "__keras_tensor__")]
            scalar = bool(operands) and all(isinstance(a, (int, float)) for a in operands)
        else:
            _legacy(inbound, names, ins)
        try:
            shape = tuple(model.get_layer(layer["name"]).output.shape)
        except (AttributeError, ValueError):
            shape = ()
        out.append(Node(layer["name"], layer["class_name"], layer["config"], ins, shape, scalar))
    return out


def output_names(config: dict[str, Any]) -> list[str]:
    outs = config["output_layers"]
    if outs and isinstance(outs[0], str):  # a single [name, node, tensor] triple
        outs = [outs]
    return [o[0] for o in outs]


def analyse(model: Any, exclude: list[str] | None = None) -> tuple[Graph, list[Node]]:
    """Channel spaces of a functional model (a Sequential one must be made functional first)."""
    config = model.get_config()
    if "layers" not in config or "output_layers" not in config:
        raise ValueError("structured pruning needs a functional model (keras.Model(inputs, outputs))")
    b = _Builder(set(exclude or []))
    nodes = nodes_of(model, config)
    produced: dict[str, Channels] = {}
    for node in nodes:
        ins = [produced.get(n, []) for n in node.inputs]
        handler = HANDLERS.get(node.cls, _opaque)
        produced[node.name] = handler(b, node, ins)
        if node.name in b.exclude:
            b.freeze(produced[node.name], f"{node.name} is excluded in the config")
    for name in output_names(config):
        b.freeze(produced.get(name, []), f"model output {name}")
    return Graph(b.spaces, b.parent, b.uses, [n.name for n in nodes]), nodes
