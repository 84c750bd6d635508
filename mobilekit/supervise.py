"""Run a build in a child process, so that a native crash is one line and leaves nothing behind.

TFLite's converter, LiteRT's kernels and coremltools are native code: a bad model can abort or segfault inside
them, and a crash in-process kills mobilekit before it can print anything or remove its staging folder. The CLI
therefore runs every build in a worker process (:mod:`mobilekit.worker`) and only supervises it:

- the worker reports each stage, and the artifact and kernel set it is running, as JSON lines on a pipe
  (:func:`where`), so the supervisor knows where a crash happened without the worker's help;
- the worker's temporary files live under one run folder that the supervisor created (its ``TMPDIR``, so
  coremltools' temporary packages land there too) and removes whatever the worker's fate;
- the worker's result, or its error as exit code and one line, comes back as a file in that folder.

A build killed with SIGKILL cannot clean up; the next build removes what dead builds left (run folders in the
temporary directory, ``.<out>.tmp-<pid>-*`` beside the output) by checking that their process is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mobilekit.errors import EXIT_CRASH, EXIT_INTERNAL, InternalError, MobilekitError

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
WORKER_MAIN = "import sys; del sys.path[0]; from mobilekit.worker import entry; entry()"

_site: dict[str, str | None] = {"stage": None, "artifact": None, "kernels": None}


def _emit(event: dict[str, Any]) -> None:
    fd = os.environ.get(EVENTS_FD)
    if fd:
        os.write(int(fd), (json.dumps(event) + "\n").encode())


def stage(text: str) -> None:
    """A new build stage starts (worker side): tells the supervisor, clears the artifact and kernels."""
    _site.update(stage=text, artifact=None, kernels=None)
    _emit({"step": text})
    _fault(text)


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
            _fault(f"{artifact} with {kernels}")


def _fault(text: str) -> None:
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


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _crash_line(rc: int, site: dict[str, str | None], frame: str | None) -> str:
    how = f"crashed natively ({_signal_name(rc)})"
    if rc == -signal.SIGKILL:
        how = "was killed (SIGKILL: often the kernel's out-of-memory killer)"
    text = f"the build {how} in stage '{site['stage'] or 'starting up'}'"
    if site["artifact"]:
        text += f" on {site['artifact']}"
    if site["kernels"]:
        text += f" with {site['kernels']}"
    if frame:
        text += f" (last Python frame: {frame})"
    return text + "; no bundle was written"


def _last_frame(fault_file: Path) -> str | None:
    """The innermost Python frame faulthandler wrote when the worker crashed."""
    try:
        lines = fault_file.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for ln in lines:
        m = re.search(r'File "([^"]+)", line (\d+) in (\S+)', ln)
        if m:
            path = m.group(1)
            short = path.split("site-packages/")[-1] if "site-packages/" in path else Path(path).name
            return f"{short}:{m.group(2)} in {m.group(3)}"
    return None


def _outcome(run_dir: Path) -> Any:
    """The worker's result, or its error raised again here."""
    if (run_dir / "result.pkl").is_file():
        return pickle.loads((run_dir / "result.pkl").read_bytes())
    record = json.loads((run_dir / "error.json").read_text())
    raise ReportedError(record["line"], record["exit_code"], record.get("failures"))


def _in_process(run_dir: Path, step: Callable[[str], None], progress: Callable[[str], None]) -> Any:
    """The worker's job in this process (``MOBILEKIT_IN_PROCESS=1``: for a debugger or profiler); temporary files
    still go under the run folder, but a native crash takes this process down with it."""
    from mobilekit.worker import execute

    saved, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = os.environ["TMPDIR"] = str(run_dir / "tmp")
    sys.stdout.flush()
    saved_fd = os.dup(1)
    os.dup2(2, 1)  # native code prints to fd 1; --json needs stdout for its one object, as in the worker
    try:
        execute(run_dir, lambda text: (stage(text), step(text)), progress)
    finally:
        sys.stdout.flush()
        os.dup2(saved_fd, 1)
        os.close(saved_fd)
        tempfile.tempdir = saved
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
    return _outcome(run_dir)


def run(job: dict[str, Any], step: Callable[[str], None] = lambda s: None,
        progress: Callable[[str], None] = lambda s: None) -> Any:
    """Run ``job`` (see :mod:`mobilekit.worker`) in a worker; return its result or raise its error as one line.
    ``step`` hears each stage start, ``progress`` the stage's own progress lines."""
    tmp_root = Path(tempfile.gettempdir())
    sweep(tmp_root, RUN_PREFIX)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{os.getpid()}-", dir=tmp_root))
    proc: subprocess.Popen | None = None
    try:
        (run_dir / "tmp").mkdir()
        (run_dir / "job.pkl").write_bytes(pickle.dumps(job))
        if os.environ.get(IN_PROCESS, "").lower() in ("1", "true", "yes", "on"):
            return _in_process(run_dir, step, progress)
        read_fd, write_fd = os.pipe()
        env = {**os.environ, "TMPDIR": str(run_dir / "tmp"), EVENTS_FD: str(write_fd), SUPERVISOR: str(os.getpid())}
        try:  # `-c` with sys.path[0] (the cwd) dropped: the worker imports the mobilekit this CLI is, never a
            # checkout that happens to be the current directory
            proc = subprocess.Popen([sys.executable, "-c", WORKER_MAIN, str(run_dir)], env=env, pass_fds=(write_fd,),
                                    stdin=subprocess.DEVNULL, stdout=2)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        site: dict[str, str | None] = {"stage": None, "artifact": None, "kernels": None}
        with os.fdopen(read_fd, "r") as events:
            for line in events:
                event = json.loads(line)
                if "step" in event:
                    site.update(stage=event["step"], artifact=None, kernels=None)
                    step(event["step"])
                elif "where" in event:
                    site.update(event["where"])
                elif "detail" in event:
                    progress(event["detail"])
        rc = proc.wait()
        if (run_dir / "result.pkl").is_file() or (run_dir / "error.json").is_file():
            return _outcome(run_dir)
        if rc >= 0:  # a Python-level exit (a library's sys.exit) without a result: a bug, not a native crash
            raise InternalError(f"internal error: the build's worker exited with code {rc} in stage "
                                f"'{site['stage'] or 'starting up'}' without a result",
                                fix="this is a bug in mobilekit: please report it with the command and config")
        raise NativeCrash(_crash_line(rc, site, _last_frame(run_dir / "fault.txt")),
                          fix="run `mobilekit doctor`, and report the line above with the model if it persists")
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and job.get("out"):
            from mobilekit.bundle.writer import recover

            recover(Path(job["out"]).resolve())
        shutil.rmtree(run_dir, ignore_errors=True)
