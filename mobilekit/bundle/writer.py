"""Write a bundle atomically: everything goes to a temp dir beside the target, moved into place at the end.

A failed or interrupted build leaves the previous bundle untouched and no half-written one; a pipeline that
reads ``--out`` after a non-zero exit finds the last good release or nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mobilekit.errors import OutputError
from mobilekit.process import dead_owner, sweep


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of an artifact: a file's bytes, or for a directory the hash over every file's relative path
    and content hash, in sorted order (so a package's digest does not depend on file-system order)."""
    if path.is_file():
        data = path.read_bytes()
        return len(data), sha256(data)
    h = hashlib.sha256()
    size = 0
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        data = f.read_bytes()
        h.update(f.relative_to(path).as_posix().encode() + b"\0" + hashlib.sha256(data).digest())
        size += len(data)
    return size, h.hexdigest()


class BundleWriter:
    def __init__(self, target: Path) -> None:
        self.target = target.resolve()
        if self.target.exists() and not self.target.is_dir():
            raise OutputError("output path is a file", path=target, fix="choose a directory path for --out")
        parent = self.target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            # what builds killed before they could clean up left beside this output (their pid is in the name)
            recover(self.target)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.tmp-{os.getpid()}-", dir=parent))
            os.chmod(self.tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would become the bundle's mode
        except OSError as e:
            raise OutputError(f"cannot write here ({e.strerror})", path=parent,
                              fix="choose a writable --out directory") from None
        self.artifacts: list[dict[str, Any]] = []

    def write(self, rel: str, data: bytes | str, kind: str) -> Path:
        raw = data.encode() if isinstance(data, str) else data
        path = self.tmp / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(raw)
        except OSError as e:
            raise OutputError(f"writing {rel} failed ({e.strerror})", path=self.target,
                              fix="free disk space or choose another --out") from None
        self.artifacts.append({"kind": kind, "path": rel, "size": len(raw), "sha256": sha256(raw)})
        return path

    def write_tree(self, rel: str, src: Path, kind: str) -> Path:
        """Copy a directory artifact (an ``.mlpackage``); its hash is :func:`digest` of the copy."""
        dest = self.tmp / rel
        try:
            shutil.copytree(src, dest)
        except OSError as e:
            raise OutputError(f"writing {rel} failed ({e.strerror})", path=self.target,
                              fix="free disk space or choose another --out") from None
        size, digest_hex = digest(dest)
        self.artifacts.append({"kind": kind, "path": rel, "size": size, "sha256": digest_hex})
        return dest

    def write_json(self, rel: str, obj: Any, kind: str) -> Path:
        return self.write(rel, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n", kind)

    def commit(self) -> Path:
        """Move the finished bundle into place (rename is atomic within one filesystem)."""
        old = None
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
            os.replace(self.target, old)
        os.replace(self.tmp, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.target

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or self.tmp.exists():
            self.abort()


def recover(target: Path) -> None:
    """Clean up beside ``target`` after builds that died: a previous bundle that a commit had moved aside
    (``.<out>.old-<pid>``) goes back into place when ``target`` is missing (the build died between the two renames
    of :meth:`BundleWriter.commit`); the rest of their temporary folders are removed."""
    if not target.exists():
        for old in sorted(target.parent.glob(f".{target.name}.old-*"), key=lambda p: p.stat().st_mtime,
                          reverse=True):
            if old.is_dir() and dead_owner(old.name, f".{target.name}.old-"):
                os.replace(old, target)
                break
    sweep(target.parent, f".{target.name}.tmp-")
    sweep(target.parent, f".{target.name}.old-")


def _umask() -> int:
    """The process umask (only readable by setting it; set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _jsonable(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
