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

from mobilekit.config import Config, scalar

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


KNOBS: dict[str, Knob] = {}


def knob(name: str, what: str, kind: type, valid: Callable[[Any], str | None], current: Callable[[Config], Any],
         read: Callable[[Any], Any] | None = None) -> Callable[[Callable[[Mapping, Any, Config], None]], Knob]:
    """Register the decorated ``apply(mapping, value, cfg)`` as the knob ``name``."""

    def register(apply: Callable[[Mapping, Any, Config], None]) -> Knob:
        KNOBS[name] = Knob(name, what, kind, valid, current, apply, read)
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


def _palettized(cfg: Config) -> int:
    bits = [int(r.removeprefix("palettize")) for r in cfg.coreml.compression
            if r.removeprefix("palettize").isdigit()]
    return bits[0] if bits else 16


@knob("palettize_bits", "Core ML weight palettization: 2, 4, 6 or 8 bits per weight; 16 = the fp16 package only",
      int, lambda v: None if v in (2, 4, 6, 8, 16) else "must be 2, 4, 6, 8 or 16 (no palettization)", _palettized)
def _palettize(data: Mapping, value: int, cfg: Config) -> None:
    """Replaces the config's ``palettizeN`` recipe; its other Core ML recipes (``linear8``, ...) stay."""
    others = [r for r in cfg.coreml.compression if not r.removeprefix("palettize").isdigit()]
    _section(data, "coreml")["compression"] = ([] if value == 16 else [f"palettize{value}"]) + others


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


def parse_space(space: Mapping, fail: Fail) -> dict[str, list[Any]]:
    """``search.space`` as each knob's list of distinct choices, checked."""
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
