"""What a build's worker process tells its supervisor, and the process hygiene both sides share.

The worker (:mod:`mobilekit.worker`) reports each stage, and the artifact and kernel set native code is running, as
JSON lines on a pipe the supervisor (:mod:`mobilekit.supervise`) gave it (:func:`stage`, :func:`where`), so a native
crash is still one line naming where it happened. Low-level modules (the bundle writer, the LiteRT runners, the
process pools) report through here and clean up after dead processes (:func:`sweep`); this module imports nothing
of mobilekit but its errors, so any layer can use it without reaching up to the supervisor or the CLI.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mobilekit.errors import EXIT_CRASH, EXIT_INTERNAL, MobilekitError


def quiet_tf() -> None:
    """TensorFlow, absl and coremltools quiet before they load: the CLI's and the worker's output is ours."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("TQDM_DISABLE", "1")  # coremltools' per-pass progress bars
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass


#: The worker writes its events to this file descriptor (set by the supervisor).
EVENTS_FD = "MOBILEKIT_EVENTS_FD"
#: Fault injection for tests and for checking a deployment's error handling: ``abort:<stage text>`` aborts the
#: worker natively (SIGABRT) when a stage whose description contains the text starts, or native work on
#: '<artifact> with <kernels>' containing it (``abort:tflite-int8 with LiteRT reference``); ``raise:<text>`` raises
#: an unexpected Python exception there instead (an internal error).
FAULT = "MOBILEKIT_FAULT"
#: The supervisor's pid, for the worker to check that it is still there.
SUPERVISOR = "MOBILEKIT_SUPERVISOR"
#: Set to run the build in the CLI's own process (no crash isolation), e.g. under pdb or a profiler.
IN_PROCESS = "MOBILEKIT_IN_PROCESS"
RUN_PREFIX = "mobilekit-run-"

_site: dict[str, str | None] = {"stage": None, "artifact": None, "kernels": None}


def _emit(event: dict[str, Any]) -> None:
    fd = os.environ.get(EVENTS_FD)
    if fd:
        os.write(int(fd), (json.dumps(event) + "\n").encode())


def stage(text: str) -> None:
    """A new build stage starts (worker side): tells the supervisor, clears the artifact and kernels."""
    _site.update(stage=text, artifact=None, kernels=None)
    _emit({"step": text})
    fault(text)


def detail(text: str) -> None:
    """Progress within the current stage (worker side), e.g. parity's images done and ETA: the CLI shows it on
    the stage's line."""
    _emit({"detail": text})


def where(artifact: str | None, kernels: str | None) -> None:
    """The worker is about to run native code on ``artifact`` with ``kernels``; cheap when nothing changes."""
    if (_site["artifact"], _site["kernels"]) != (artifact, kernels):
        _site.update(artifact=artifact, kernels=kernels)
        _emit({"where": {"artifact": artifact, "kernels": kernels}})
        if artifact:
            fault(f"{artifact} with {kernels}")


def fault(text: str) -> None:
    """The fault that ``MOBILEKIT_FAULT`` asks for, when ``text`` (a stage, or '<artifact> with <kernels>') matches."""
    fault = os.environ.get(FAULT, "")
    kind, _, match = fault.partition(":")
    if match and match.lower() in text.lower():
        if kind == "abort":
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an injected crash leaves no core file
            os.abort()
        if kind == "raise":
            raise RuntimeError(f"fault injected by {FAULT}={fault}")


@contextmanager
def at(artifact: str, kernels: str) -> Iterator[None]:
    """``where`` for one block of native work (a conversion); the site is cleared afterwards."""
    where(artifact, kernels)
    try:
        yield
    finally:
        where(None, None)


def wrap(artifact: str, kernels: str, run: Callable[..., Any]) -> Callable[..., Any]:
    """A runner that says where it is before every call (parity runs many artifacts image by image)."""

    def located(*args: Any, **kwargs: Any) -> Any:
        where(artifact, kernels)
        return run(*args, **kwargs)

    return located


class ReportedError(MobilekitError):
    """An error the worker reported: its exit code and one line, and a parity failure's checks."""

    def __init__(self, line: str, exit_code: int, failures: list[dict[str, Any]] | None = None) -> None:
        super().__init__(line)
        self.exit_code = exit_code
        self.failures = failures or []


class NativeCrash(MobilekitError):
    """The worker died from a signal inside native code (a worker that exits without a word is an internal error)."""

    exit_code = EXIT_CRASH


def error_record(e: BaseException) -> dict[str, Any]:
    """What the worker hands back for an error: the supervisor rebuilds it as a :class:`ReportedError`."""
    if isinstance(e, MobilekitError):
        return {"line": e.one_line(), "exit_code": e.exit_code, "failures": getattr(e, "failures", None)}
    where_text = f" in stage '{_site['stage']}'" if _site["stage"] else ""
    return {"line": f"internal error{where_text}: {e.__class__.__name__}: {e}. This is a bug in mobilekit: "
                    "please report it with the command and config", "exit_code": EXIT_INTERNAL}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dead_owner(name: str, prefix: str) -> bool:
    """Whether ``<prefix><pid>-...`` names a process that is gone (not this one)."""
    m = re.match(re.escape(prefix) + r"(\d{1,9})(?:-|$)", name)
    return bool(m) and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1)))


def sweep(folder: Path, prefix: str) -> list[Path]:
    """Remove ``<prefix><pid>-*`` entries in ``folder`` whose process is gone (left by killed builds). Best effort:
    an entry that cannot be removed (another user's) is left."""
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not dead_owner(entry.name, prefix):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
        except OSError:
            continue
    return removed


def die_with_parent() -> None:
    """The kernel kills this process when its parent dies (Linux ``PR_SET_PDEATHSIG``): parity's worker processes
    do not run on after the build that started them."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def die_with_supervisor() -> None:
    """In the worker: the kernel kills it when the supervisor dies (Linux), so a build killed with SIGKILL does not
    go on writing a bundle nobody waits for. Set here rather than in a ``preexec_fn``, which is unsafe in the
    supervisor (rich's progress display runs a thread); a supervisor already gone by then ends the worker too."""
    die_with_parent()
    if os.getppid() != int(os.environ.get(SUPERVISOR, os.getppid())):
        os._exit(EXIT_CRASH)
