"""Head formats: one module each, registered by name when this package is imported (every module here but
``base``, in name order), so adding a head is adding its module (and its SDK partials, ``templates/heads``)."""

import difflib
import importlib
import pkgutil
from typing import Any

from mobilekit.config import SECTION_CHECKS, Config, Fail
from mobilekit.heads.base import HEADS, Candidates, Head, get_head

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["HEADS", "Candidates", "Head", "get_head"]


def _check_detection(det: Any, cfg: Config, fail: Fail) -> None:
    """``detection.head`` names a registered head (most common first in the message), which checks its settings."""
    names = sorted((n for n in HEADS if n != "classifier"), key=lambda n: (HEADS[n].rank, n))
    if det.head not in names:
        close = difflib.get_close_matches(str(det.head), names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        fail("detection.head", f"'{det.head}' is not allowed{hint}", f"use one of: {', '.join(names)}")
    get_head(det.head).validate(det, fail)


SECTION_CHECKS.setdefault("detection", []).append(_check_detection)
