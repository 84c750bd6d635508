"""Importing the modules that register a model's custom layers, before the model loads.

Keras resolves a saved custom layer by its registered name (``package>Class``), so the module that registers it
must be imported first. Users name those modules in ``imports:`` of ``mobilekit.yaml`` or with ``--import``; a
module beside the config file imports too.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from pathlib import Path

from mobilekit.errors import ConfigError


def import_modules(names: Iterable[str], near: Path | Iterable[Path] | None = None,
                   source: Path | str | None = None) -> None:
    """Import each module; the ``near`` folders (the config's, the shell's) are searched first, so
    ``imports: [my_layers]`` finds ``my_layers.py`` beside the config. A module that cannot be imported is a
    config error naming it."""
    names = list(names)
    if not names:
        return
    folders = [near] if isinstance(near, Path) else list(near or [])
    added = [str(f) for f in folders if str(f) not in sys.path]
    sys.path[:0] = added
    try:
        for i, name in enumerate(names):
            try:
                importlib.import_module(name)
            except Exception as e:  # an import error, or the module's own failure on import
                raise ConfigError(f"imports[{i}]: module '{name}' cannot be imported ({e.__class__.__name__}: {e})",
                                  path=source, fix="install the package that provides it, or correct the module "
                                                   "name (a module beside the config file imports too)") from None
    finally:
        for f in added:
            sys.path.remove(f)
