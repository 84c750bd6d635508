"""Render SDK sources from the contract: one jinja2 environment, identifier sanitizing, exact number literals.

Templates receive the contract (and names derived from it) as their only context, so the generated code cannot
disagree with what Python measured. Literals are printed so the target language parses back the very same value:
float32 constants as the shortest decimal of the float32 value, doubles with 17 significant digits.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from mobilekit.contract import Contract


def _templates() -> Path:
    """``templates/`` beside ``mobilekit/`` in a checkout; ``mobilekit/templates`` in an installed wheel (``setup.py``
    copies it there as package data, so an installed mobilekit generates SDKs too)."""
    installed = Path(__file__).resolve().parents[1] / "templates"
    return installed if installed.is_dir() else Path(__file__).resolve().parents[2] / "templates"


TEMPLATES = _templates()
SAMPLE_APPS = TEMPLATES / "sample_apps"

KOTLIN_KEYWORDS = {
    "as", "break", "class", "continue", "do", "else", "false", "for", "fun", "if", "in", "interface", "is", "null",
    "object", "package", "return", "super", "this", "throw", "true", "try", "typealias", "typeof", "val", "var",
    "when", "while",
}


def type_name(raw: str, keywords: set[str] = KOTLIN_KEYWORDS) -> str:
    """``"shapes detector-v2"`` → ``ShapesDetectorV2``; never a keyword, never starting with a digit."""
    words = [w for w in re.split(r"[^0-9A-Za-z]+", raw) if w]
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Model"
    if name[0].isdigit():
        name = "M" + name
    return name + "Model" if name.lower() in keywords else name


def api_class(base: str, task: str) -> str:
    """The SDK's entry type: ``<Base>Detector`` / ``<Base>Classifier``, without doubling a suffix the name has."""
    suffix = "Detector" if task == "detection" else "Classifier"
    return base if base.endswith(suffix) else base + suffix


def package_name(raw: str, keywords: set[str] = KOTLIN_KEYWORDS) -> str:
    part = re.sub(r"[^0-9a-z]+", "", raw.lower()) or "model"
    if part[0].isdigit():
        part = "m" + part
    if part in keywords:
        part += "model"
    return f"ai.mobilekit.{part}"


def f32(v: float) -> str:
    """A float32 literal that parses back to the same float32 (Kotlin ``f`` suffix)."""
    x = np.float32(v)
    if not np.isfinite(x):
        raise ValueError(f"non-finite constant {v}")
    return f"{np.format_float_positional(x, unique=True, trim='0')}f".replace(".f", ".0f")


def swift_f32(v: float) -> str:
    """A Swift ``Float`` literal that parses back to the same float32 (no suffix: the type does it)."""
    return f32(v)[:-1]


def swift_string(v: str) -> str:
    """A Swift string literal: backslashes (so no ``\\(`` interpolation), quotes and control characters escaped."""
    out = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{out}"'


def kotlin_string(v: str) -> str:
    """A Kotlin string literal: backslashes, quotes and ``$`` (no ``${...}`` templates) escaped."""
    out = v.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{out}"'


def f64(v: float) -> str:
    """A double literal that parses back to the same double (Python's shortest round-trip repr)."""
    return repr(float(v))


def environment(root: Path = TEMPLATES) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(root)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["f32"] = f32
    env.filters["f64"] = f64
    env.filters["swift_f32"] = swift_f32
    env.filters["swift_string"] = swift_string
    env.filters["kotlin_string"] = kotlin_string
    return env


def render_tree(folder: str, contract: Contract, extra: dict[str, Any] | None = None,
                base: Path = TEMPLATES) -> dict[str, str]:
    """Render every ``*.j2`` under ``<base>/<folder>``; returns relative output path → text, sorted. A template that
    renders to nothing (a file only some tasks need) is left out."""
    env = environment(base)
    context = {"c": contract, "type_name": type_name(contract.name), "package": package_name(contract.name),
               **(extra or {})}
    out: dict[str, str] = {}
    root = base / folder
    for tpl in sorted(root.rglob("*.j2")):
        rel = tpl.relative_to(base).as_posix()
        text = env.get_template(rel).render(**context)
        if not text.strip():
            continue
        dest = tpl.relative_to(root).as_posix()[: -len(".j2")]
        dest = dest.replace("__Name__", context["type_name"]).replace("__package__",
                                                                       context["package"].replace(".", "/"))
        if "cls" in context:
            dest = dest.replace("__Cls__", context["cls"])
        if "kit" in context:
            dest = dest.replace("__Kit__", context["kit"])
        out[dest] = text
    return dict(sorted(out.items()))
