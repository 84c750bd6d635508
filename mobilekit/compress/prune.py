"""Structured channel pruning that really shrinks the graph.

Channels are ranked per prunable group (see :mod:`mobilekit.compress.channels`) by the BatchNorm scale magnitude
times the filter L1 norm (or either alone), a uniform fraction of every group is removed, and the fraction is found by
bisection so the model loses the configured share of its MACs or parameters. The model is then rebuilt from its own
config with the new widths, and every weight is sliced to the kept channels: conv and dense kernels on both axes,
depthwise kernels, biases, BatchNorm statistics. The result is an ordinary, smaller Keras model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mobilekit.compress.channels import Graph, Node, analyse
from mobilekit.compress.cost import LayerCost, layer_cost
from mobilekit.compress.probe import layer_outputs
from mobilekit.config import PruneSettings


@dataclass
class PrunePlan:
    keep: dict[int, np.ndarray]  # group root → kept channel indices (ascending)
    ratio: float  # the uniform per-group fraction removed
    predicted: dict[str, int]  # params / macs of the pruned model, predicted


ACTIVATION_IMAGES = 128  # images the activation criterion measures on
ACTIVATIONS = {"ReLU", "Activation", "LeakyReLU", "PReLU", "ELU", "Softmax"}


def _observed(nodes: list[Node], name: str) -> str:
    """The layer whose output the next layers read for ``name``'s channels: a single following activation, if any
    (a channel a ReLU always zeroes contributes nothing, whatever its BatchNorm scale)."""
    consumers = [n for n in nodes if name in n.inputs]
    if len(consumers) == 1 and consumers[0].cls in ACTIVATIONS:
        return consumers[0].name
    return name


def _activation_scores(model: Any, keras: Any, graph: Graph, nodes: list[Node], images: np.ndarray
                       ) -> dict[int, np.ndarray]:
    """Per prunable group, the mean magnitude of each channel on real images, where the next layers read it: what
    removing it takes away from them. Data-driven, so it sees dead channels and BatchNorm shifts that |gamma| and
    filter norms do not."""
    watch: dict[int, list[str]] = {}
    for root, g in graph.prunable().items():
        members = [n for n in g.channelwise if graph.uses[n].kind == "bn"] or g.producers
        watch[root] = [_observed(nodes, n) for n in members]
    names = sorted({n for ns in watch.values() for n in ns})
    sums = {n: 0.0 for n in names}
    for outs in layer_outputs(model, keras, names, images):
        for n, o in zip(names, outs, strict=True):
            sums[n] = sums[n] + np.abs(o).sum(0)
    out, groups = {}, graph.groups()
    for root, ns in watch.items():
        acc = np.zeros(groups[root].size)
        for n in ns:
            acc += sums[n] / (np.max(sums[n]) + 1e-12)
        out[root] = acc / len(ns)
    return out


def _scores(model: Any, graph: Graph, criterion: str) -> dict[int, np.ndarray]:
    """Per prunable group, one importance score per channel (higher = keep), from the weights alone."""
    out = {}
    for root, g in graph.prunable().items():
        l1 = np.zeros(g.size)
        for name in g.producers:
            k = model.get_layer(name).get_weights()
            kernel = k[1] if type(model.get_layer(name)).__name__ == "SeparableConv2D" else k[0]
            norm = np.abs(kernel.reshape(-1, kernel.shape[-1])).sum(0)
            l1 += norm / (norm.max() + 1e-12)
        gamma = np.zeros(g.size)
        bns = [n for n in g.channelwise if graph.uses[n].kind == "bn"]
        for name in bns:
            layer = model.get_layer(name)
            w = layer.get_weights()
            scale = np.abs(w[0]) if layer.get_config().get("scale", True) else np.ones(g.size)
            gamma += scale / (scale.max() + 1e-12)
        if criterion == "l1" or not bns:
            out[root] = l1
        elif criterion == "bn":
            out[root] = gamma
        else:
            out[root] = (gamma / len(bns)) * (l1 / max(len(g.producers), 1))
    return out


def _keep_count(n: int, ratio: float, s: PruneSettings) -> int:
    m = s.multiple if n >= 2 * s.multiple else 1
    k = round(n * (1.0 - ratio) / m) * m
    return int(min(n, max(k, min(s.min_channels, n), m)))


def _cost_table(model: Any, graph: Graph) -> list[tuple[LayerCost, list[int], int | None, int, int]]:
    rows = []
    for layer in model.layers:
        c, cin, cout = layer_cost(layer)
        use = graph.uses.get(layer.name)
        rows.append((c, use.inputs if use else [], use.output if use else None, cin, cout))
    return rows


def _predict(rows, graph: Graph, widths: dict[int, int]) -> dict[str, int]:
    params = macs = 0
    for c, inputs, output, cin, cout in rows:
        if c.kind == "other":
            params += c.fixed_params
            continue
        new_in = sum(widths.get(graph.root(s), graph.spaces[s].size) for s in inputs) if inputs else cin
        if c.kind in ("bn", "depthwise"):
            new_out = new_in
        else:
            new_out = widths.get(graph.root(output), cout) if output is not None else cout
        params += c.params(new_in, new_out)
        macs += c.macs(new_in, new_out)
    return {"params": params, "macs": macs}


def plan(model: Any, settings: PruneSettings, keras: Any = None, images: np.ndarray | None = None
         ) -> tuple[PrunePlan, Graph]:
    """Which channels each group keeps. ``images`` (normalized, NHWC) and the model's ``keras`` module are needed by
    the data-driven ``activation`` criterion only."""
    graph, nodes = analyse(model, settings.exclude)
    groups = graph.prunable()
    if not groups:
        raise ValueError("no prunable channel groups (every conv/dense output reaches an output, a reshape or an "
                         "excluded layer)")
    rows = _cost_table(model, graph)
    base = _predict(rows, graph, {})
    goal = base[settings.target] * (1.0 - settings.ratio)
    lo, hi = 0.0, 0.95
    for _ in range(30):  # bisection on the uniform per-group ratio
        mid = (lo + hi) / 2
        widths = {r: _keep_count(g.size, mid, settings) for r, g in groups.items()}
        if _predict(rows, graph, widths)[settings.target] > goal:
            lo = mid
        else:
            hi = mid
    widths = {r: _keep_count(g.size, hi, settings) for r, g in groups.items()}
    if settings.criterion == "activation":
        if images is None or keras is None:
            raise ValueError("the activation criterion needs images to measure channels on")
        scores = _activation_scores(model, keras, graph, nodes, images[:ACTIVATION_IMAGES])
    else:
        scores = _scores(model, graph, settings.criterion)
    keep = {r: np.sort(np.argsort(-scores[r], kind="stable")[:widths[r]]) for r in groups}
    return PrunePlan(keep, hi, _predict(rows, graph, widths)), graph


def _indices(graph: Graph, channels: list[int], keep: dict[int, np.ndarray]) -> np.ndarray | None:
    """Kept input indices of a (possibly concatenated) channel tensor; None when all are kept."""
    parts, offset, pruned = [], 0, False
    for sid in channels:
        size = graph.spaces[sid].size
        k = keep.get(graph.root(sid))
        if k is not None and len(k) < size:
            pruned = True
            parts.append(k + offset)
        else:
            parts.append(np.arange(size) + offset)
        offset += size
    return np.concatenate(parts) if pruned else None


def _slice(kind: str, weights: list[np.ndarray], cin: np.ndarray | None, cout: np.ndarray | None) -> list[np.ndarray]:
    w = [np.asarray(x) for x in weights]
    if kind == "conv" or kind == "dense":
        if cin is not None:
            w[0] = np.take(w[0], cin, axis=-2)
        if cout is not None:
            w[0] = np.take(w[0], cout, axis=-1)
            if len(w) > 1:
                w[1] = w[1][cout]
    elif kind == "depthwise":
        if cin is not None:
            w[0] = np.take(w[0], cin, axis=2)
            if len(w) > 1:
                w[1] = w[1][cin]
    elif kind == "separable":
        if cin is not None:
            w[0] = np.take(w[0], cin, axis=2)
            w[1] = np.take(w[1], cin, axis=2)
        if cout is not None:
            w[1] = np.take(w[1], cout, axis=-1)
            if len(w) > 2:
                w[2] = w[2][cout]
    elif kind == "bn" and cin is not None:
        w = [x[cin] for x in w]
    return w


def apply(model: Any, keras: Any, pruned: PrunePlan, graph: Graph) -> Any:
    """Rebuild ``model`` with the planned widths and sliced weights (same Keras flavour as the input)."""
    config = model.get_config()
    width = {r: len(k) for r, k in pruned.keep.items()}
    by_name = {layer["name"]: layer for layer in config["layers"]}
    for name, use in graph.uses.items():
        if use.kind in ("conv", "dense", "separable") and use.output is not None:
            r = graph.root(use.output)
            if r in width:
                key = "units" if use.kind == "dense" else "filters"
                by_name[name]["config"][key] = width[r]
    _retarget_reshapes(model, config, graph, width)
    for layer in config["layers"]:
        layer.pop("build_config", None)  # Keras 3 would build each layer at its old width before wiring it
    new = keras.Model.from_config(config)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        use = graph.uses.get(layer.name)
        if use is None:
            new.get_layer(layer.name).set_weights(weights)
            continue
        cin = _indices(graph, use.inputs, pruned.keep) if use.inputs else None
        cout = None
        if use.output is not None and use.kind in ("conv", "dense", "separable"):
            k = pruned.keep.get(graph.root(use.output))
            cout = k if k is not None and len(k) < graph.spaces[use.output].size else None
        new.get_layer(layer.name).set_weights(_slice(use.kind, weights, cin, cout))
    return new


def _retarget_reshapes(model: Any, config: dict[str, Any], graph: Graph, width: dict[int, int]) -> None:
    """Channel squeezes (``Reshape((1, 1, C))`` in squeeze-excite blocks) follow their input's new width."""
    from mobilekit.compress.channels import nodes_of

    nodes = {n.name: n for n in nodes_of(model, config)}
    space_of: dict[str, int] = {}
    for name, use in graph.uses.items():
        if use.output is not None:
            space_of[name] = use.output
    for layer in config["layers"]:
        if layer["class_name"] != "Reshape":
            continue
        src = _trace(nodes, layer["name"], space_of)
        if src is not None and graph.root(src) in width:
            target = list(layer["config"]["target_shape"])
            target[-1] = width[graph.root(src)]
            layer["config"]["target_shape"] = target


def _trace(nodes: dict, name: str, space_of: dict[str, int]) -> int | None:
    """The space feeding a single-input chain ending at ``name`` (through pass-through layers)."""
    node = nodes[name]
    seen = 0
    while node.inputs and seen < 64:
        prev = node.inputs[0]
        if prev in space_of:
            return space_of[prev]
        node = nodes[prev]
        seen += 1
    return None
