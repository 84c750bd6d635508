"""The knobs a recipe search turns, one registered :class:`Knob` each.

A knob reads its choices from ``search.space`` (a list, or ``{low, high, step}`` for a number), says which value
the config as written has (the default recipe, always a candidate), and writes a chosen value into the YAML mapping
of a trial's config. Knobs write YAML rather than the parsed config because each trial is the user's own command
on its own file (``mobilekit build trials/NNNN/mobilekit.yaml``): the recipe the search picks is that file, ready
to use. A new knob is one function decorated with :func:`knob`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from mobilekit.config import SECTION_CHECKS, Config, scalar

Fail = Callable[[str, str, str], NoReturn]
Mapping = dict[str, Any]


@dataclass(frozen=True)
class Knob:
    """One dimension of the recipe space."""

    name: str
    what: str  # said in the README and the search report
    kind: type  # float, int, bool or str: how its choices are read
    valid: Callable[[Any], str | None]  # why a choice is impossible, or None
    current: Callable[[Config], Any]  # the value the config as written has
    apply: Callable[[Mapping, Any, Config], None]  # write a value into a trial's YAML mapping
    read: Callable[[Any], Any] | None = None  # a choice as written -> its value (ValueError: not one); default: kind
    fits: Callable[[Config, list[Any]], str | None] | None = None  # why these choices cannot apply to this config


KNOBS: dict[str, Knob] = {}


def knob(name: str, what: str, kind: type, valid: Callable[[Any], str | None], current: Callable[[Config], Any],
         read: Callable[[Any], Any] | None = None, fits: Callable[[Config, list[Any]], str | None] | None = None,
         ) -> Callable[[Callable[[Mapping, Any, Config], None]], Knob]:
    """Register the decorated ``apply(mapping, value, cfg)`` as the knob ``name``."""

    def register(apply: Callable[[Mapping, Any, Config], None]) -> Knob:
        KNOBS[name] = Knob(name, what, kind, valid, current, apply, read, fits)
        return KNOBS[name]

    return register


def _section(data: Mapping, dotted: str) -> Mapping:
    """The mapping at ``dotted`` in ``data``, made (or turned from ``true`` into a mapping) on the way."""
    node = data
    for part in dotted.split("."):
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    return node


def holder(data: Mapping, dotted: str) -> tuple[Mapping | None, str]:
    """The mapping that holds ``dotted``'s last key (None when a parent is missing or not a mapping), and that key:
    how knobs remove a setting and how a trial's paths are found to rebase them."""
    *parents, last = dotted.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), last


def _remove(data: Mapping, dotted: str) -> None:
    node, last = holder(data, dotted)
    if node is not None:
        node.pop(last, None)


@knob("prune_ratio", "structured pruning: the share of MACs (or parameters) removed; 0 = no pruning", float,
      lambda v: None if 0 <= v < 0.95 else "must be in [0, 0.95)",
      lambda cfg: cfg.compression.prune.ratio if cfg.compression.prune else 0.0)
def _prune_ratio(data: Mapping, value: float, cfg: Config) -> None:
    if value == 0:
        _remove(data, "compression.prune")
    else:
        _section(data, "compression.prune")["ratio"] = value


@knob("qat", "quantization-aware training before the int8 export (compression.qat)", bool, lambda v: None,
      lambda cfg: cfg.compression.qat is not None and cfg.compression.qat.enabled)
def _qat(data: Mapping, value: bool, cfg: Config) -> None:
    if value:
        _section(data, "compression.qat")["enabled"] = True
    else:
        _remove(data, "compression.qat")


def _shipped(cfg: Config) -> str:
    """The Core ML recipe whose package the Swift package ships (:func:`mobilekit.kinds.shipped_coreml`), or
    ``fp16`` for the uncompressed package."""
    from mobilekit.kinds import coreml_variant, shipped_coreml

    kind = shipped_coreml([coreml_variant(r) for r in cfg.coreml.compression] + ["coreml-fp16"])
    return str(kind).removeprefix("coreml-")


def _ship_only(data: Mapping, recipe: str) -> None:
    """The config's Core ML variants become the one recipe (none: the fp16 package): the iOS model a recipe is
    measured by is then the one its Swift package ships."""
    _section(data, "coreml")["compression"] = [] if recipe == "fp16" else [recipe]


def _palettized(cfg: Config) -> int | None:
    shipped = _shipped(cfg)
    return 16 if shipped == "fp16" else int(p) if (p := shipped.removeprefix("palettize")).isdigit() else None


@knob("palettize_bits", "Core ML weight palettization: 2, 4, 6 or 8 bits per weight; 16 = the fp16 package only",
      int, lambda v: None if v in (2, 4, 6, 8, 16) else "must be 2, 4, 6, 8 or 16 (no palettization)", _palettized,
      fits=lambda cfg, values: None if _palettized(cfg) is not None else
      f"the config ships the Core ML recipe {_shipped(cfg)}, which is no palettization: search coreml_recipe")
def _palettize(data: Mapping, value: int, cfg: Config) -> None:
    _ship_only(data, "fp16" if value == 16 else f"palettize{value}")


def _recipe_name(v: str) -> str | None:
    from mobilekit.export.coreml_compress import RECIPES

    return None if v == "fp16" or v in RECIPES else f"is no Core ML recipe; use fp16 or one of: {', '.join(RECIPES)}"


def _recipes_fit(cfg: Config, values: list[Any]) -> str | None:
    from mobilekit.export.coreml_compress import too_new

    have = cfg.coreml.deployment_target
    late = too_new([v for v in values if v != "fp16"], have) if have else []
    if "palettize_bits" in (cfg.search.space if cfg.search else {}):
        return "and palettize_bits both choose the Core ML model: search one of them"
    return f"{', '.join(late)} cannot run on coreml.deployment_target {have}" if late else None


@knob("coreml_recipe", "the Core ML package the Swift package ships: a coreml.compression recipe, or fp16", str,
      _recipe_name, _shipped, fits=_recipes_fit)
def _coreml_recipe(data: Mapping, value: str, cfg: Config) -> None:
    _ship_only(data, value)


@knob("max_float_ops", "selective precision: the most ops left in float in tflite-int8-mixed; 0 = full-int8 only",
      int, lambda v: None if 0 <= v <= 64 else "must be in [0, 64]",
      lambda cfg: 0 if cfg.quantization.max_drop is None else cfg.quantization.max_float_ops)
def _max_float_ops(data: Mapping, value: int, cfg: Config) -> None:
    if value == 0:
        _remove(data, "quantization.max_drop")
        return
    q = _section(data, "quantization")
    q["max_float_ops"] = value
    if cfg.quantization.max_drop is None:  # what selective precision aims for: the search's own budget, or 0
        q["max_drop"] = float((cfg.search.budgets if cfg.search else {}).get("max_drop", 0.0))


def _calibration_method(v: str) -> str | None:
    from mobilekit.quantize.ranges import METHODS

    return None if v in METHODS else f"unknown method; use one of: {', '.join(METHODS)}"


@knob("calibration", "how int8 activation ranges are chosen (quantization.calibration)", str, _calibration_method,
      lambda cfg: cfg.quantization.calibration)
def _calibration(data: Mapping, value: str, cfg: Config) -> None:
    _section(data, "quantization")["calibration"] = value


def _size(v: Any) -> str:
    """``[320, 320]`` or ``"320x320"`` -> ``"320x320"`` (Optuna's choices are plain values); ``"model"``: the model's
    own input size."""
    if v == "model":
        return v
    hw = v.lower().split("x") if isinstance(v, str) else v
    if not isinstance(hw, list) or len(hw) != 2 or not all(str(x).isdigit() and int(x) >= 8 for x in hw):
        raise ValueError("is not [height, width] of at least 8 pixels, nor 'model'")
    return f"{int(hw[0])}x{int(hw[1])}"


@knob("input_size", "the input size (input.size) of a model that takes any image size; 'model': its own", str,
      lambda v: None, lambda cfg: _size(cfg.input.size) if cfg.input.size else "model", _size)
def _input_size(data: Mapping, value: str, cfg: Config) -> None:
    if value == "model":
        _remove(data, "input.size")
    else:
        _section(data, "input")["size"] = [int(x) for x in value.split("x")]


def _typed(name: str, kind: type, v: Any, fail: Fail) -> Any:
    """A choice read as the config reads a setting of that type (same checks, same messages)."""
    return scalar(kind, v, f"search.space.{name}", fail)


def _read(name: str, k: Knob, v: Any, fail: Fail) -> Any:
    if k.read is None:
        return _typed(name, k.kind, v, fail)
    try:
        return k.read(v)
    except ValueError as e:
        fail(f"search.space.{name}", f"{v!r} {e}", "remove that choice")


def _steps(name: str, k: Knob, spec: Mapping, fail: Fail) -> list[Any]:
    """``{low, high, step}``: every step from low to high, both included."""
    if k.kind not in (int, float) or set(spec) != {"low", "high", "step"}:
        fail(f"search.space.{name}", "a range needs exactly low, high and step (numbers only)",
             "write e.g. {low: 0.0, high: 0.6, step: 0.1}, or list the choices")
    low, high, step = (_typed(name, k.kind if k.kind is int else float, spec[x], fail) for x in ("low", "high", "step"))
    if step <= 0 or high < low:
        fail(f"search.space.{name}", "needs step > 0 and high >= low", "write e.g. {low: 0.0, high: 0.6, step: 0.1}")
    n = math.floor((high - low) / step + 1e-9) + 1
    return [k.kind(round(low + i * step, 6)) for i in range(n)]


def parse_space(space: Mapping, fail: Fail, cfg: Config | None = None) -> dict[str, list[Any]]:
    """``search.space`` as each knob's list of distinct choices, checked (against ``cfg`` too when given)."""
    import difflib

    out = {}
    for name, spec in space.items():
        k = KNOBS.get(name)
        if k is None:
            close = difflib.get_close_matches(name, list(KNOBS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            fail(f"search.space.{name}", f"unknown knob{hint}", f"use one of: {', '.join(KNOBS)}")
        if isinstance(spec, dict):
            values = _steps(name, k, spec, fail)
        elif isinstance(spec, list) and spec:
            values = [_read(name, k, v, fail) for v in spec]
        else:
            fail(f"search.space.{name}", "expected a list of choices or {low, high, step}",
                 "write e.g. [0, 0.25, 0.5]")
        for v in values:
            if why := k.valid(v):
                fail(f"search.space.{name}", f"{v!r} {why}", "remove that choice")
        out[name] = list(dict.fromkeys(values))
        if cfg is not None and k.fits and (why := k.fits(cfg, out[name])):
            fail(f"search.space.{name}", why, "change the choices or the config")
    return out


def default_recipe(cfg: Config, space: dict[str, list[Any]]) -> dict[str, Any]:
    """What the config as written chooses for each searched knob."""
    return {name: KNOBS[name].current(cfg) for name in space}


def with_default(space: dict[str, list[Any]], default: dict[str, Any]) -> dict[str, list[Any]]:
    """The space with the config's own value among each knob's choices (the default recipe is always tried)."""
    return {name: values if default[name] in values else [default[name], *values] for name, values in space.items()}


def apply_recipe(data: Mapping, recipe: dict[str, Any], cfg: Config) -> None:
    """Write every knob's chosen value into ``data`` (a trial's YAML mapping)."""
    for name, value in recipe.items():
        KNOBS[name].apply(data, value, cfg)


def _check_space(settings: Any, cfg: Config, fail: Fail) -> None:
    parse_space(settings.space, fail, cfg)


SECTION_CHECKS.setdefault("search", []).append(_check_space)
