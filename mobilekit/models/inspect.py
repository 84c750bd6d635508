"""Model introspection: parameters, multiply-accumulates and a per-layer table.

MACs count the layers that dominate mobile inference time (convolutions, depthwise convolutions, dense layers);
element-wise layers are counted as zero, as is usual for MAC budgets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mobilekit.models.loader import LoadedModel
from mobilekit.models.xnnpack_rewrite import find


def _shape(t: Any) -> list[int]:
    return [int(d) if d is not None else 1 for d in t.shape]


def layer_macs(layer: Any) -> int:
    kind = type(layer).__name__
    try:
        out = _shape(layer.output)
        inp = _shape(layer.input if not isinstance(layer.input, list) else layer.input[0])
    except (AttributeError, ValueError, IndexError):
        return 0
    if kind in ("Conv2D", "Conv1D", "Conv2DTranspose"):
        k = int(np.prod(layer.kernel_size))
        groups = getattr(layer, "groups", 1) or 1
        spatial = int(np.prod(out[1:-1])) if kind != "Conv2DTranspose" else int(np.prod(inp[1:-1]))
        cin = inp[-1]
        return spatial * k * (cin // groups) * out[-1]
    if kind == "DepthwiseConv2D":
        return int(np.prod(out[1:-1])) * int(np.prod(layer.kernel_size)) * out[-1]
    if kind == "SeparableConv2D":
        k = int(np.prod(layer.kernel_size))
        spatial = int(np.prod(out[1:-1]))
        return spatial * k * inp[-1] * layer.depth_multiplier + spatial * inp[-1] * layer.depth_multiplier * out[-1]
    if kind == "Dense":
        return int(np.prod(out[1:-1])) * inp[-1] * out[-1]
    return 0


def describe(loaded: LoadedModel) -> dict[str, Any]:
    model = loaded.keras_model
    layers = []
    params = 0
    if model is not None:
        for layer in model.layers:
            n = int(layer.count_params()) if layer.built else 0
            try:
                shape = _shape(layer.output)
            except (AttributeError, ValueError):
                shape = []
            layers.append({"name": layer.name, "type": type(layer).__name__, "output_shape": shape, "params": n,
                           "macs": layer_macs(layer)})
        params = int(model.count_params())
    else:
        params = int(sum(int(np.prod(v.shape)) for v in getattr(loaded.saved, "variables", [])))
    return {
        "kind": loaded.kind,
        "input": {"name": loaded.input_name, "shape": loaded.input_shape},
        "outputs": loaded.output_shapes,
        "params": params,
        "macs": int(sum(r["macs"] for r in layers)),
        "layers": layers,
        # before any build: the activations whose int8 op XNNPACK does not take, and what the build does to each
        "outside_xnnpack_int8": [h.to_dict() for h in find(model)] if model is not None else [],
    }
