"""The suite's cache: trained fixtures, built bundles and compiler runs, kept on disk under a key of what makes them.

Why: a cold run trains each fixture, builds each bundle and runs each compiler once, whatever the number of xdist
workers that ask for it (a file lock per entry: the second worker waits for the first, or builds another entry
meanwhile), and a second run on the same machine with nothing changed builds nothing. An entry's name carries a
digest of everything it is made from (the sources that make it, the seed, the TensorFlow version, oneDNN on or off,
its settings), so a change to any of them makes a new entry instead of reusing a stale one.

The root is ``MOBILEKIT_TEST_CACHE``, else ``~/.cache/mobilekit-tests``. Entries are written under a temporary
name and renamed into place, so a run killed half-way leaves no entry that looks whole.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: the folders of entries beside the root's own (bundles built with the CLI, compiler runs)
SUBFOLDERS = ("bundles", "runs")


def root() -> Path:
    """The cache's root folder (made if missing), with its ``bundles`` and ``runs`` folders."""
    env = os.environ.get("MOBILEKIT_TEST_CACHE")
    path = Path(env) if env else Path.home() / ".cache" / "mobilekit-tests"
    for sub in SUBFOLDERS:
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def files_under(*paths: Path, suffixes: tuple[str, ...] = ()) -> list[Path]:
    """Every file at or under ``paths`` (``suffixes``: only those), sorted: the sources a digest reads."""
    out: list[Path] = []
    for p in paths:
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out += [f for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts
                    and (not suffixes or f.suffix in suffixes)]
    return sorted(out)


def digest(*parts: object, sources: Iterable[Path] = (), base: Path = REPO) -> str:
    """A short hex digest of ``parts`` (their ``repr``) and of ``sources``: each file's bytes and its path relative to
    ``base`` (a file elsewhere counts by its name only, so the same inputs written to another temporary folder give
    the same digest)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(repr(part).encode() + b"\0")
    for f in sources:
        where = f.resolve()
        h.update(str(where.relative_to(base.resolve()) if where.is_relative_to(base.resolve()) else f.name).encode())
        h.update(b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@contextmanager
def locked(path: Path, wait: bool = True) -> Iterator[bool]:
    """Hold the lock of entry ``path`` (a ``.lock`` file beside it); yields False at once when another process holds
    it and ``wait`` is False."""
    lock = path.with_name(path.name + ".lock")
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _make(path: Path, make: Callable[[Path], object]) -> None:
    """``make`` writes the entry under a temporary name in the same folder, which is then renamed into place."""
    tmp = path.with_name(f".tmp{os.getpid()}-{path.name}")  # keeps the suffix: `.keras` and `.h5` savers need it
    if tmp.is_dir():
        shutil.rmtree(tmp)
    tmp.unlink(missing_ok=True)
    try:
        make(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def used(path: Path) -> Path:
    """``path``, marked as used now (its modification time): :func:`prune` keeps what runs still use."""
    os.utime(path)
    return path


def cached(path: Path, make: Callable[[Path], object]) -> Path:
    """``path``, made by ``make(tmp)`` unless it exists; one process makes it while the others wait for it."""
    if path.exists():
        return used(path)
    with locked(path):
        if not path.exists():
            _make(path, make)
    return path


def cached_run(name: str, key: str, run: Callable[[Path], str]) -> tuple[Path, str]:
    """A compiler run made once per content of its inputs (``key``: their :func:`digest`): ``run(out)`` writes its
    products under ``out`` and returns its console output. Returns the products' folder and that output (as the run
    that made them printed it: paths in it may name that run's temporary folders)."""
    def make(entry: Path) -> None:
        entry.mkdir()
        (entry / "output.txt").write_text(run(entry / "out"))

    entry = cached(root() / "runs" / f"{name}-{key}", make)
    return entry / "out", (entry / "output.txt").read_text()


def cached_many(entries: dict[str, tuple[Path, Callable[[Path], object]]]) -> dict[str, Path]:
    """Every entry made once across processes, in parallel where several ask at once: each process makes the
    entries nobody else is making, then waits for the rest. key → path."""
    deferred = []
    for key, (path, make) in entries.items():
        if path.exists():
            used(path)
            continue
        with locked(path, wait=False) as mine:
            if not mine:
                deferred.append(key)
            elif not path.exists():
                _make(path, make)
    for key in deferred:
        cached(*entries[key])
    return {key: path for key, (path, _) in entries.items()}


#: entries that no run has used for this long are removed at the end of a run (each code change makes new bundles)
KEEP_DAYS = 7


def prune(days: float = KEEP_DAYS) -> list[Path]:
    """Remove the entries (fixture folders, bundles, and their locks) that no run has used for ``days``; what was
    removed. An entry being made is never old: it is made under a temporary name that only a dead run leaves."""
    import time

    cutoff = time.time() - days * 86400
    top = root()
    gone = []
    for entry in [*top.iterdir(), *(e for sub in SUBFOLDERS for e in (top / sub).iterdir())]:
        if entry.name in SUBFOLDERS or entry.suffix == ".lock" or entry.stat().st_mtime >= cutoff:
            continue
        with locked(entry, wait=False) as mine:
            if not mine:
                continue
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            gone.append(entry)
        entry.with_name(entry.name + ".lock").unlink(missing_ok=True)
    return gone
