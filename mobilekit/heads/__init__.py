"""Head formats: one module each, registered by name when this package is imported (every module here but
``base``, in name order), so adding a head is adding its module (and its SDK partials, ``templates/heads``)."""

import importlib
import pkgutil

from mobilekit.heads.base import HEADS, Candidates, Head, get_head

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["HEADS", "Candidates", "Head", "get_head"]
