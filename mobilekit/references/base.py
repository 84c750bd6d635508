"""What a reference plugin is and where it registers: the package's modules import this, not the package, so the
package can import them (to register them) without a cycle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Reference = Callable[..., tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Finder:
    """A plugin that recognises a decoder attached to a model."""

    name: str  # how the report names the reference ("keras_cv_attention_models DecodePredictions")
    find: Callable[[Any], Reference | None]
    settings: Callable[[Any], dict[str, Any] | None]


FINDERS: list[Finder] = []


def register(finder: Finder) -> Finder:
    FINDERS.append(finder)
    return finder
