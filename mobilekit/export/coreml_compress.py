"""Core ML weight-compression recipes, registered by name (``coreml.compression`` in the config).

Each recipe states the lowest deployment target that can run it: per-tensor palettization and per-channel linear
int8 run from iOS 16; grouped-channel palettization, 4-bit blockwise and joint sparse + palettized weights need the
iOS 18 ops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def _palettize(nbits: int, **kw: Any) -> Callable[[Any], Any]:
    def run(model: Any) -> Any:
        import coremltools.optimize.coreml as cto

        cfg = cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(mode="kmeans", nbits=nbits, **kw))
        return cto.palettize_weights(model, cfg)

    return run


for _bits in (2, 4, 6, 8):
    _register(f"palettize{_bits}", "iOS16", f"k-means {_bits}-bit palettization, one table per tensor")(
        _palettize(_bits))
_register("palettize4_grouped", "iOS18", "k-means 4-bit palettization, a table per 16 output channels")(
    _palettize(4, granularity="per_grouped_channel", group_size=16))


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


def required_target(names: list[str]) -> str:
    """The lowest deployment target every chosen recipe can run on (iOS 16 at least, for fp16 I/O)."""
    levels = [TARGET_ORDER.index(RECIPES[n].min_target) for n in names] or [0]
    return TARGET_ORDER[max(levels)]
