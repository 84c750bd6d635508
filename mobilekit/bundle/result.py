"""What a build hands back to the process that asked for it.

Its own module, free of TensorFlow: the worker pickles it and the CLI's process unpickles it, and unpickling imports
the module a class is defined in (from the pipeline, that cost the CLI a TensorFlow import, about 8 s, after every
build).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mobilekit.contract import Contract
from mobilekit.parity.gate import Check


@dataclass
class BuildResult:
    out: Path | None
    contract: Contract
    manifest: dict[str, Any]
    checks: list[Check] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]
