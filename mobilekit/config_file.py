"""Reading a config file: YAML → the typed :class:`~mobilekit.config.Config`, with one line per mistake.

The schema (:mod:`mobilekit.config`) is core and imports no plugin; what a head, a Core ML recipe, a calibration
method or a search knob accepts is checked by the plugin itself, registered in
:data:`~mobilekit.config.SECTION_CHECKS` when it loads. This module loads them all first, so a config read here is
checked whole.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

# each plugin package registers its section check in SECTION_CHECKS as it loads
import mobilekit.export.coreml_compress
import mobilekit.heads
import mobilekit.quantize.ranges
import mobilekit.search.knobs
import mobilekit.search.measures  # noqa: F401  (registers the search targets' check)
from mobilekit.config import SECTION_CHECKS, Config, describe, scalar
from mobilekit.errors import ConfigError

REQUIRED = {"model": "the path of the trained model (.keras, .h5 or a SavedModel directory)"}


class _Loader:
    def __init__(self, file: Path) -> None:
        self.file = file

    def fail(self, key: str, message: str, fix: str) -> typing.NoReturn:
        raise ConfigError(f"{key}: {message}", path=self.file, fix=fix)

    def load(self, cls: type, data: Any, key: str) -> Any:
        if not isinstance(data, dict):
            self.fail(key or "<top level>", f"expected a mapping, got {type(data).__name__}",
                      f"write {key or 'the file'} as 'key: value' lines")
        hints = typing.get_type_hints(cls)
        public = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
        for k in data:
            if k not in public:
                close = difflib.get_close_matches(str(k), list(public), n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(public)}"
                self.fail(_join(key, str(k)), "unknown key", f"remove it or rename it; {hint}")
        kwargs = {}
        for name in public:
            if name in data:
                kwargs[name] = self.value(hints[name], data[name], _join(key, name))
        return cls(**kwargs)

    def value(self, tp: Any, v: Any, key: str) -> Any:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (Union, types.UnionType):
            if v is None and type(None) in args:
                return None
            stage = next((a for a in args if dataclasses.is_dataclass(a)), None)
            if isinstance(v, bool) and stage is not None and type(None) in args:
                return stage() if v else None  # `qat: true` switches an optional section on with its defaults
            errors = []
            for alt in (a for a in args if a is not type(None)):
                try:
                    return self.value(alt, v, key)
                except ConfigError as e:
                    errors.append(e)
            raise errors[-1]
        if origin is Literal:
            if v not in args:
                close = difflib.get_close_matches(str(v), [str(a) for a in args], n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.fail(key, f"'{v}' is not allowed{hint}", f"use one of: {', '.join(map(str, args))}")
            return v
        if dataclasses.is_dataclass(tp):
            return self.load(tp, v, key)
        if origin is list:
            if not isinstance(v, list):
                self.fail(key, f"expected a list, got {describe(v)}", f"write it as [a, b, ...] under {key}")
            return [self.value(args[0], item, f"{key}[{i}]") for i, item in enumerate(v)]
        if origin is dict:
            if not isinstance(v, dict):
                self.fail(key, f"expected a mapping, got {describe(v)}", f"write {key} as 'name: value' lines")
            return {str(k2): self.value(args[1], v2, f"{key}.{k2}") for k2, v2 in v.items()}
        if tp in (bool, int, float, str):
            return scalar(tp, v, key, self.fail)
        if tp is Any:  # free-form (a head's params): the owner checks it
            return v
        raise TypeError(f"config schema type {tp!r} not handled")  # a bug in the schema, not user input


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def parse_config(data: Any, file: Path) -> Config:
    """Validate an already-parsed mapping; ``file`` names the source in errors and anchors relative paths."""
    loader = _Loader(file)
    if data is None:
        data = {}
    cfg: Config = loader.load(Config, data, "")
    for key, what in REQUIRED.items():
        if not getattr(cfg, key):
            loader.fail(key, "is missing", f"add '{key}:' with {what}")
    cfg.base_dir = file.parent if file.suffix else file
    _check_semantics(cfg, loader)
    return cfg


def load_config(path: str | Path) -> Config:
    file = Path(path)
    if not file.is_file():
        raise ConfigError("config file not found", path=file, fix="pass the path of your mobilekit.yaml")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise ConfigError(f"not valid YAML{where}", path=file, fix="check indentation and quoting") from None
    return parse_config(data, file.resolve())


def _check_semantics(cfg: Config, ld: _Loader) -> None:
    """Each section checks its own rules (types were checked already); the sections a task does not use are
    skipped."""
    cfg.input.check(ld.fail)
    if cfg.task == "detection":
        cfg.detection.check(ld.fail)
        _sections(cfg, "detection", cfg.detection, ld)
    for section in ("calibration", "evaluation"):
        ds = getattr(cfg, section)
        if ds is not None:
            ds.check(ld.fail, section)
    cfg.coreml.check(ld.fail, cfg)
    _sections(cfg, "coreml", cfg.coreml, ld)
    cfg.android.check(ld.fail)
    if not re.fullmatch(r"[\w.+\-]+", cfg.version):
        ld.fail("version", f"'{cfg.version}' is not a version string", "write letters, digits, '.', '-' or '+', "
                "e.g. 1.2.0")
    cfg.compression.check(ld.fail)
    cfg.parity.check(ld.fail)
    cfg.quantization.check(ld.fail)
    _sections(cfg, "quantization", cfg.quantization, ld)
    if cfg.search is not None:
        cfg.search.check(ld.fail, cfg)


def _sections(cfg: Config, name: str, settings: Any, ld: _Loader) -> None:
    """The checks the plugins owning a section's vocabulary registered (heads, Core ML recipes, calibration
    methods, the search's knobs and measures): they know what is valid; the schema does not import them."""
    for check in SECTION_CHECKS.get(name, []):
        check(settings, cfg, ld.fail)
