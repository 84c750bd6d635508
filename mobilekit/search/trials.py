"""Running trial builds: each one is ``mobilekit build trials/NNNN/mobilekit.yaml --json``, the user's own command,
in a process of its own here (:class:`LocalTrials`) or in a Ray task on a cluster (:class:`RayTrials`).

A trial is the CLI, not a function call: it runs in the supervised worker every build has (a native crash in one
trial is that trial's exit 7, not the search's), it leaves the same bundle a user's build would, and its
configuration file is the recipe. Both runners take trials as they come and hand back whichever finishes first.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobilekit.search.measures import Outcome, read_bundle

#: the trial's CLI: the mobilekit this search is (never a checkout in the current folder), killed with the search
CLI_MAIN = ("import sys; del sys.path[0]; from mobilekit.process import die_with_parent; die_with_parent(); "
            "from mobilekit.cli import entry; entry()")


@dataclass(frozen=True)
class TrialSpec:
    """Where a trial's files are and how its build is called."""

    number: int
    folder: Path  # trials/NNNN: mobilekit.yaml, build.log (stderr), result.json (the --json line), bundle/
    cwd: Path  # the user's config folder: modules named by ``imports`` are found there
    imports: tuple[str, ...] = ()

    @property
    def config(self) -> Path:
        return self.folder / "mobilekit.yaml"

    @property
    def bundle(self) -> Path:
        return self.folder / "bundle"

    def command(self) -> list[str]:
        extra = [a for m in self.imports for a in ("--import", m)]
        return [sys.executable, "-c", CLI_MAIN, "build", str(self.config), "--out", str(self.bundle), "--json",
                "--quiet", *extra]


def _printed(stdout: str) -> dict[str, Any]:
    """The CLI's one JSON object (its last line); a build that died before printing one says nothing."""
    for line in reversed(stdout.strip().splitlines()):
        with contextlib.suppress(json.JSONDecodeError):
            obj = json.loads(line)
            if isinstance(obj, dict):
                return obj
    return {}


def run_trial(spec: TrialSpec) -> Outcome:
    """One trial build to its end, here (what a Ray task runs on its node)."""
    start = time.monotonic()
    with (spec.folder / "build.log").open("w") as log:
        proc = subprocess.run(spec.command(), cwd=spec.cwd, stdout=subprocess.PIPE, stderr=log, text=True,
                              stdin=subprocess.DEVNULL, check=False)
    return read_bundle(spec.bundle, proc.returncode, _printed(proc.stdout), time.monotonic() - start)


class LocalTrials:
    """Up to ``workers`` trial builds at once, each a process of this machine."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.running: dict[int, tuple[TrialSpec, subprocess.Popen, Any, float]] = {}

    def free(self) -> int:
        return self.workers - len(self.running)

    def submit(self, spec: TrialSpec) -> None:
        # stdout to a file, not a pipe: a manifest larger than a pipe's buffer would block the child while this
        # process only polls it
        log = (spec.folder / "build.log").open("w")
        try:
            with (spec.folder / "result.json").open("w") as result:
                proc = subprocess.Popen(spec.command(), cwd=spec.cwd, stdout=result, stderr=log,
                                        stdin=subprocess.DEVNULL)
        except BaseException:
            log.close()
            raise
        self.running[spec.number] = (spec, proc, log, time.monotonic())

    def wait(self) -> tuple[int, Outcome]:
        """The first trial to finish: its number and outcome (polled: the main thread stays interruptible)."""
        while True:
            for number, (spec, proc, log, start) in list(self.running.items()):
                if proc.poll() is None:
                    continue
                stdout = (spec.folder / "result.json").read_text()
                log.close()
                del self.running[number]
                return number, read_bundle(spec.bundle, proc.returncode, _printed(stdout), time.monotonic() - start)
            time.sleep(0.2)

    def stop(self) -> list[int]:
        """Stop every running trial (SIGTERM: the CLI ends as on Ctrl-C, removing its worker's files); their
        numbers."""
        stopped = list(self.running)
        for _, proc, _, _ in self.running.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for spec, proc, log, _ in self.running.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
            shutil.rmtree(spec.bundle, ignore_errors=True)
        self.running.clear()
        return stopped

    def close(self) -> None:
        self.stop()


class RayTrials:
    """Trial builds as Ray tasks (one CPU each, ``workers`` at once) on the cluster at ``address``. Each task runs
    the trial's CLI on its node; the trial folder and the config's data must be on a file system every node mounts
    at the same path (as parity's images must)."""

    def __init__(self, address: str, workers: int) -> None:
        from mobilekit.run.ray import connect, ray_module

        self.ray = ray_module()
        self.owned = connect(address, max(2, workers))
        self.workers = workers
        self.task = self.ray.remote(num_cpus=1, max_retries=0)(run_trial)
        self.running: dict[Any, int] = {}

    def free(self) -> int:
        return self.workers - len(self.running)

    def submit(self, spec: TrialSpec) -> None:
        self.running[self.task.remote(spec)] = spec.number

    def wait(self) -> tuple[int, Outcome]:
        """The first trial to finish; a task that died (its node went away, out of memory) or raised is that
        trial's failure, not the search's."""
        from mobilekit.errors import EXIT_CRASH

        done, _ = self.ray.wait(list(self.running), num_returns=1)
        number = self.running.pop(done[0])
        try:
            return number, self.ray.get(done[0])
        except self.ray.exceptions.RayError as e:
            first = (str(e).strip().splitlines() or [e.__class__.__name__])[0]
            return number, Outcome(EXIT_CRASH, f"its Ray task failed: {first}")

    def stop(self) -> list[int]:
        stopped = list(self.running.values())
        for ref in self.running:
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
        self.running.clear()
        return stopped

    def close(self) -> None:
        self.stop()
        if self.owned:
            self.ray.shutdown()
