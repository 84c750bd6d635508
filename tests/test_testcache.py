"""The suite's cache (``testcache``): an entry is made once across processes, never seen half-made, keyed by content
not by where its inputs were written, and pruned only when no run has used it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import testcache

HERE = Path(__file__).parent

#: a process that asks for entries KEYS (each make takes a while and logs its maker) and prints what it got
ASK = """
import os, sys, time
sys.path.insert(0, {here!r})
import testcache
log = {log!r}
def make(p):
    with open(log, "a") as fh:
        fh.write(p.name + " " + str(os.getpid()) + "\\n")
    time.sleep(0.4)
    p.write_text("made")
paths = {{k: (testcache.root() / k, make) for k in {keys!r}}}
got = testcache.cached_many(paths) if {many!r} else {{k: testcache.cached(*v) for k, v in paths.items()}}
print(sorted(p.read_text() for p in got.values()))
"""


def _ask(tmp_path: Path, keys: list[str], many: bool, n: int = 2) -> list[str]:
    env = {**os.environ, "MOBILEKIT_TEST_CACHE": str(tmp_path / "cache")}
    code = ASK.format(here=str(HERE), log=str(tmp_path / "log"), keys=keys, many=many)
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(n)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    assert all(out.strip() == str(["made"] * len(keys)) for out, _ in outs), outs
    return (tmp_path / "log").read_text().splitlines()


@pytest.mark.parametrize("many", [False, True], ids=["cached", "cached_many"])
def test_concurrent_processes_make_each_entry_once(tmp_path, many):
    """Two processes asking at once for the same entries: each is made by one of them, the other waits for it (or
    with ``cached_many`` makes another meanwhile); both get every entry whole."""
    keys = ["a", "b", "c", "d"]
    made = _ask(tmp_path, keys, many)
    assert sorted(line.split()[0].split("-", 1)[-1] for line in made) == keys  # once each, under a temporary name
    assert all(line.split()[0].startswith(".tmp") for line in made)
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".tmp")]


def test_a_failed_make_leaves_no_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILEKIT_TEST_CACHE", str(tmp_path))

    def fail(p: Path) -> None:
        p.mkdir()
        (p / "half").write_text("x")
        raise RuntimeError("the build failed")

    with pytest.raises(RuntimeError):
        testcache.cached(tmp_path / "entry", fail)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []  # no entry, no half of one
    assert testcache.cached(tmp_path / "entry", lambda p: p.write_text("ok")).read_text() == "ok"


def test_the_key_is_the_content_not_the_folder(tmp_path):
    """The same inputs written to two temporary folders give one key; a byte or a name changed gives another."""
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        (d / "Sources").mkdir(parents=True)
        (d / "Sources" / "Main.swift").write_text("print(1)\n")
    key = testcache.digest("swift 6", sources=testcache.files_under(a), base=a)
    assert key == testcache.digest("swift 6", sources=testcache.files_under(b), base=b)
    (b / "Sources" / "Main.swift").write_text("print(2)\n")
    assert key != testcache.digest("swift 6", sources=testcache.files_under(b), base=b)
    (b / "Sources" / "Main.swift").rename(b / "Sources" / "Other.swift")
    (b / "Sources" / "Other.swift").write_text("print(1)\n")
    assert key != testcache.digest("swift 6", sources=testcache.files_under(b), base=b)
    assert key != testcache.digest("swift 6.1", sources=testcache.files_under(a), base=a)


def test_prune_removes_only_what_no_run_used(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILEKIT_TEST_CACHE", str(tmp_path))
    old = testcache.cached(testcache.root() / "bundles" / "old", lambda p: p.mkdir())
    fresh = testcache.cached(testcache.root() / "runs" / "fresh", lambda p: p.mkdir())
    reused = testcache.cached(testcache.root() / "fixtures-x", lambda p: p.mkdir())
    long_ago = time.time() - (testcache.KEEP_DAYS + 1) * 86400
    for p in (old, reused):
        os.utime(p, (long_ago, long_ago))
    testcache.cached(reused, lambda p: pytest.fail("made again"))  # a run uses it: it stays
    assert testcache.prune() == [old]
    assert not old.exists() and fresh.is_dir() and reused.is_dir()
    assert not old.with_name("old.lock").exists()
