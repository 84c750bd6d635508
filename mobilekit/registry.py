"""One registry shape for every "kind of thing" mobilekit can be extended with.

Heads, Core ML emulator ops, TensorFlow ops of the Vision decoder, channel handlers of the pruner, compression
stages and Core ML compression recipes are each a :class:`Registry`: adding one is defining it under the
registry's decorator, in its own module, and a lookup that misses names the closest entries.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Registry(dict[str, T]):
    """``name → entry``. ``@registry.register("a", "b")`` files a function (or any object) under each name."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def register(self, *names: str) -> Callable[[T], T]:
        def deco(entry: T) -> T:
            for n in names:
                if n in self:
                    raise ValueError(f"{self.what} '{n}' is registered twice")
                self[n] = entry
            return entry

        return deco

    def lookup(self, name: str) -> T:
        """The entry named ``name``; a miss says what is known and what is closest."""
        if name in self:
            return self[name]
        close = difflib.get_close_matches(name, list(self), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(sorted(self))}"
        raise KeyError(f"no {self.what} named '{name}'{hint}")
