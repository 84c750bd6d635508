"""Run a build in a child process, so that a native crash is one line and leaves nothing behind.

This is the supervisor side; what the worker reports, and the helpers both sides share, are in
:mod:`mobilekit.process`. TFLite's converter, LiteRT's kernels and coremltools are native code: a bad model can
abort or segfault inside them, and a crash in-process kills mobilekit before it can print anything or remove its
staging folder. The CLI therefore runs every build in a worker process (:mod:`mobilekit.worker`) and only supervises it:

- the worker reports each stage, and the artifact and kernel set it is running, as JSON lines on a pipe
  (:func:`where`), so the supervisor knows where a crash happened without the worker's help;
- the worker's temporary files live under one run folder that the supervisor created (its ``TMPDIR``, so
  coremltools' temporary packages land there too) and removes whatever the worker's fate;
- the worker's result, or its error as exit code and one line, comes back as a file in that folder.

A build killed with SIGKILL cannot clean up; the next build removes what dead builds left (run folders in the
temporary directory, ``.<out>.tmp-<pid>-*`` beside the output) by checking that their process is gone.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mobilekit.errors import InternalError
from mobilekit.process import (
    EVENTS_FD,
    IN_PROCESS,
    RUN_PREFIX,
    SUPERVISOR,
    NativeCrash,
    ReportedError,
    stage,
    sweep,
)

WORKER_MAIN = "import sys; del sys.path[0]; from mobilekit.worker import entry; entry()"


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
