"""Errors a user can act on.

Every failure the user can fix is raised as a :class:`MobilekitError` carrying the offending file, what is wrong
and the fix, so the CLI prints exactly one line and exits with a documented code. Release pipelines gate on the
code, so each class of failure has its own.
"""

from __future__ import annotations

from pathlib import Path

#: Exit codes, documented in the README; pipelines depend on them, so never renumber.
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_PARITY = 3
EXIT_CONVERSION = 4
EXIT_OUTPUT = 5
EXIT_VERIFY = 6  # mobilekit verify: an artifact is missing or differs from the manifest
EXIT_CRASH = 7  # native code (converter, LiteRT, coremltools) crashed the build's worker process
EXIT_NO_RECIPE = 8  # mobilekit search: no recipe tried meets every budget
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM


class MobilekitError(Exception):
    """A failure with a one-line explanation: ``<file>: <what>. Fix: <how>``."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, path: str | Path | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.fix = fix

    def one_line(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        if self.fix:
            text += f". Fix: {self.fix}"
        return " ".join(text.split())


class InternalError(MobilekitError):
    """A bug in mobilekit, reported in one line like every other failure."""

    exit_code = EXIT_INTERNAL


class ConfigError(MobilekitError):
    """The config file is malformed or names something impossible."""

    exit_code = EXIT_BAD_INPUT


class ModelError(MobilekitError):
    """The model file is missing, broken, or not a model mobilekit can export."""

    exit_code = EXIT_BAD_INPUT


class DataError(MobilekitError):
    """Calibration/evaluation images or labels are missing or unusable."""

    exit_code = EXIT_BAD_INPUT


class ConversionError(MobilekitError):
    """A converter produced something that is not what its name promises (e.g. not full-integer)."""

    exit_code = EXIT_CONVERSION


class OutputError(MobilekitError):
    """The output directory cannot be written."""

    exit_code = EXIT_OUTPUT


class ParityError(MobilekitError):
    """A converted model disagrees with the float model beyond the configured bar."""

    exit_code = EXIT_PARITY

    def __init__(self, message: str, failures: list[dict], **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.failures = failures


class NoRecipeError(MobilekitError):
    """``mobilekit search`` finished and no recipe it tried meets every budget (and passes the parity gate)."""

    exit_code = EXIT_NO_RECIPE


class Interrupted(MobilekitError):
    """Ctrl-C or SIGTERM, said with what was kept (a search's study) where the default line would not say it."""

    exit_code = EXIT_INTERRUPTED
