"""Parameters and multiply-accumulates of a Keras model, per layer, from its weights and output shapes.

One formula serves two callers: measuring a built model, and predicting a pruned one from channel counts alone
(the pruner searches its ratio with it before building anything).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass
class LayerCost:
    """What one weighted layer costs as a function of its input and output channel counts."""

    kind: str  # conv | dense | depthwise | separable | bn | other
    spatial: int  # output positions (H_out * W_out, or the product of a dense layer's leading dims)
    window: int  # kernel positions (kh * kw); 1 for dense
    bias: bool
    fixed_params: int = 0  # layers the formulas do not cover: counted as they are

    def params(self, cin: int, cout: int) -> int:
        b = cout if self.bias else 0
        if self.kind in ("conv", "dense"):
            return self.window * cin * cout + b
        if self.kind == "depthwise":
            return self.window * cin + (cin if self.bias else 0)
        if self.kind == "separable":
            return self.window * cin + cin * cout + b
        if self.kind == "bn":
            return 4 * cin
        return self.fixed_params

    def macs(self, cin: int, cout: int) -> int:
        if self.kind in ("conv", "dense"):
            return self.spatial * self.window * cin * cout
        if self.kind == "depthwise":
            return self.spatial * self.window * cin
        if self.kind == "separable":
            return self.spatial * (self.window * cin + cin * cout)
        return 0


def _kind(layer: Any) -> str:
    name = type(layer).__name__
    if name in ("Conv2D", "Conv1D"):
        return "conv"
    return {"Dense": "dense", "DepthwiseConv2D": "depthwise", "SeparableConv2D": "separable",
            "BatchNormalization": "bn"}.get(name, "other")


def layer_cost(layer: Any) -> tuple[LayerCost, int, int]:
    """The layer's cost model and its current (cin, cout)."""
    kind = _kind(layer)
    weights = layer.get_weights()
    shape = tuple(layer.output.shape) if hasattr(layer, "output") else ()
    if kind == "other" or not weights:
        return LayerCost("other", 0, 0, False, sum(int(w.size) for w in weights)), 0, 0
    k = weights[0].shape
    if kind == "conv":
        spatial, window, cin, cout = math.prod(shape[1:-1]), math.prod(k[:-2]), k[-2], k[-1]
    elif kind == "dense":
        spatial, window, cin, cout = math.prod(shape[1:-1]) if len(shape) > 2 else 1, 1, k[0], k[1]
    elif kind == "depthwise":
        spatial, window, cin, cout = math.prod(shape[1:-1]), math.prod(k[:2]), k[2], k[2]
    elif kind == "separable":
        spatial, window, cin, cout = math.prod(shape[1:-1]), math.prod(k[:2]), k[2], weights[1].shape[-1]
    else:  # bn
        spatial, window, cin, cout = 0, 0, weights[0].shape[0], weights[0].shape[0]
    bias = bool(layer.get_config().get("use_bias", False)) if kind != "bn" else False
    return LayerCost(kind, int(spatial), int(window), bias), int(cin), int(cout)


def count(model: Any) -> dict[str, int]:
    """Total parameters (all weights, trainable or not) and MACs of a built model."""
    params = macs = 0
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:  # a nested model
            inner = count(layer)
            params, macs = params + inner["params"], macs + inner["macs"]
            continue
        c, cin, cout = layer_cost(layer)
        params += c.params(cin, cout) if c.kind != "other" else c.fixed_params
        macs += c.macs(cin, cout)
    return {"params": int(params), "macs": int(macs)}
