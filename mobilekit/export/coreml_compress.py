"""Core ML weight-compression recipes, registered by name (``coreml.compression`` in the config).

Each recipe states the lowest deployment target that can run it: per-tensor palettization and per-channel linear
int8 run from iOS 16; grouped-channel palettization, 4-bit blockwise and joint sparse + palettized weights need the
iOS 18 ops.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mobilekit.config import SECTION_CHECKS, Config, Fail
from mobilekit.registry import Registry

TARGET_ORDER = ["iOS16", "iOS17", "iOS18"]


@dataclass(frozen=True)
class Recipe:
    name: str
    min_target: str
    describe: str
    apply: Callable[[Any], Any]


RECIPES: Registry[Recipe] = Registry("Core ML compression recipe")


def _register(name: str, min_target: str, describe: str):
    def deco(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        RECIPES.register(name)(Recipe(name, min_target, describe, fn))
        return fn

    return deco


def _palettize(nbits: int, per_tensor: Callable[[Any], dict[str, int]] | None = None,
              **kw: Any) -> Callable[[Any], Any]:
    """k-means palettization at ``nbits``; ``per_tensor(model)`` may set other bits for named weight tensors."""

    def run(model: Any) -> Any:
        import coremltools.optimize.coreml as cto

        per_op = {name: cto.OpPalettizerConfig(mode="kmeans", nbits=b, **kw)
                  for name, b in (per_tensor(model) if per_tensor else {}).items()}
        cfg = cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(mode="kmeans", nbits=nbits, **kw),
                                     op_name_configs=per_op or None)
        return cto.palettize_weights(model, cfg)

    return run


for _bits in (2, 4, 6, 8):
    _register(f"palettize{_bits}", "iOS16", f"k-means {_bits}-bit palettization, one table per tensor")(
        _palettize(_bits))
_register("palettize4_grouped", "iOS18", "k-means 4-bit palettization, a table per 16 output channels")(
    _palettize(4, granularity="per_grouped_channel", group_size=16))


#: the share of the palettized weights the mixed recipe puts at 4 bits (the largest tensors first)
MIXED_LOW_SHARE = 0.5


def mixed_bits(sizes: dict[str, int], low: int = 4, high: int = 6, share: float = MIXED_LOW_SHARE) -> dict[str, int]:
    """Bits per weight tensor for mixed-bit palettization: the largest tensors at ``low`` bits until they hold
    ``share`` of all the weights, every other one at ``high``.

    Why by size: the bytes saved are in the few large tensors (a MobileNetV2's last 1x1 convolutions hold most of its
    weights), while the small ones (stem, depthwise, detection head) have few weights each, every one of which moves
    an output a lot. Measured on the coco128 MobileNetV2-YOLO (bench/palettize.py, output SNR against fp16, boxes /
    scores): 6 bits everywhere 39.2 / 15.6 dB, 4 bits everywhere 26.9 / 4.8 dB, this recipe (4 bits on its largest
    tensor only) 36.1 / 14.8 dB with 81% of the 6-bit weight bytes. Data-free, so it works as every other recipe (on
    the model alone).
    """
    total, covered, bits = sum(sizes.values()), 0, {}
    for name, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        bits[name] = low if covered < share * total else high
        covered += n if bits[name] == low else 0
    return bits


def _mixed_bits_of(model: Any) -> dict[str, int]:
    import coremltools.optimize.coreml as cto

    threshold = cto.OpPalettizerConfig(nbits=6).weight_threshold  # smaller tensors stay fp16, as in every recipe
    weights = cto.get_weights_metadata(model, weight_threshold=threshold)
    return mixed_bits({name: int(meta.val.size) for name, meta in weights.items()})


_register("palettize_mixed46", "iOS16",
          "k-means palettization, 4 bits for the largest tensors (half the weights), 6 bits for the rest")(
    _palettize(6, per_tensor=_mixed_bits_of))


@_register("linear8", "iOS16", "linear symmetric int8 weights, per output channel")
def _linear8(model: Any) -> Any:
    import coremltools.optimize.coreml as cto

    return cto.linear_quantize_weights(
        model, cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric")))


@_register("sparse_palettize4", "iOS18", "50% magnitude sparsity, then 4-bit palettization of the kept weights")
def _sparse_pal(model: Any) -> Any:
    import coremltools.optimize.coreml as cto

    sparse = cto.prune_weights(
        model, cto.OptimizationConfig(global_config=cto.OpMagnitudePrunerConfig(target_sparsity=0.5)))
    return cto.palettize_weights(
        sparse, cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(mode="kmeans", nbits=4)),
        joint_compression=True)


def too_new(names: list[str], target: str) -> list[str]:
    """The recipes among ``names`` that ``target`` cannot run (the config's check and the search's knob both ask)."""
    return [n for n in names if TARGET_ORDER.index(RECIPES[n].min_target) > TARGET_ORDER.index(target)]


def required_target(names: list[str]) -> str:
    """The lowest deployment target every chosen recipe can run on (iOS 16 at least, for fp16 I/O)."""
    levels = [TARGET_ORDER.index(RECIPES[n].min_target) for n in names] or [0]
    return TARGET_ORDER[max(levels)]


def _check_coreml(settings: Any, cfg: Config, fail: Fail) -> None:
    """``coreml.compression`` names registered recipes, and ``deployment_target`` runs them all."""
    for i, name in enumerate(settings.compression):
        if name not in RECIPES:
            close = difflib.get_close_matches(name, list(RECIPES), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            fail(f"coreml.compression[{i}]", f"unknown recipe '{name}'{hint}", f"use one of: {', '.join(RECIPES)}")
    need = required_target(settings.compression)
    have = settings.deployment_target
    if have and too_new(settings.compression, have):
        fail("coreml.deployment_target", f"{have} cannot run {', '.join(settings.compression)} (needs {need})",
             f"set deployment_target: {need} or choose iOS 16 recipes (palettize2/4/6/8, palettize_mixed46, linear8)")


SECTION_CHECKS.setdefault("coreml", []).append(_check_coreml)
