"""References: the model's own decoder, the oracle the build's decode check holds mobilekit's decode to.

A reference is a callable ``fn(outputs, size, **args) -> (boxes, scores)``: ``outputs`` the model's raw float outputs
for one image (a list in the model's output order, batch of one), ``size`` the input ``(height, width)``; it returns
every candidate's box ``[N, 4]`` as ``x1, y1, x2, y2`` in input pixels and its class scores ``[N, C]`` (or the best
class's score ``[N]`` when the decoder gives only that), in the model's candidate order.

Users name one as ``detection.reference: module:function``. ``detection.reference: attached`` asks the plugins in
this package for a decoder that travels with the model (a zoo's decode layer saved in the model file): each plugin
module defines ``find(model) -> Reference | None`` and ``settings(model) -> dict | None`` (what ``init`` reads from
it), and registers itself in :data:`FINDERS` on import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from mobilekit.errors import ConfigError, ModelError
from mobilekit.references.base import FINDERS, Finder, Reference, register  # noqa: F401  (the plugin API)


def _first(model: Any, ask: Callable[[Finder], Callable[[Any], Any]]) -> tuple[str, Any] | None:
    """The first plugin's answer about ``model`` (with the plugin's name), or None."""
    if model is None:
        return None
    for f in FINDERS:
        found = ask(f)(model)
        if found is not None:
            return f.name, found
    return None


def attached(model: Any) -> tuple[str, Reference] | None:
    """The decoder a model carries, found by the first plugin that recognises it."""
    return _first(model, lambda f: f.find)


def attached_settings(model: Any) -> tuple[str, dict[str, Any]] | None:
    """The head settings an attached decoder implies (for ``init``), with the plugin's name."""
    return _first(model, lambda f: f.settings)


def resolve(name: str, model: Any) -> tuple[str, Reference]:
    """``attached`` or ``module:function`` → (how the report names it, the callable)."""
    if name == "attached":
        found = attached(model)
        if found is None:
            raise ModelError("detection.reference is 'attached', but the model carries no decoder mobilekit knows "
                             f"({', '.join(f.name for f in FINDERS)})",
                             fix="name your decoder as detection.reference: module:function, or remove the setting")
        return found
    module, _, func = name.partition(":")
    try:
        fn = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"detection.reference '{name}' cannot be imported ({e.__class__.__name__}: {e})",
                          fix="name an importable module:function (a module beside the config imports too)") from None
    if not callable(fn):
        raise ConfigError(f"detection.reference '{name}' is not callable", fix="name a function")
    return name, fn


from mobilekit.references import kecam, keras_cv, keras_hub  # noqa: E402,F401  (each registers its finder)
