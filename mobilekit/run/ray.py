"""Parity's shards as Ray tasks: one actor per worker holds a :class:`~mobilekit.run.shards.ShardEvaluator` for its
lifetime, shards go to whichever actor is free, and results come back in image order.

``--ray ADDRESS`` joins an existing cluster (``auto``: the one this machine belongs to, as ``ray start`` made it);
``--ray local`` starts a private single-machine instance for the build and stops it afterwards. The job travels
once through the object store, Core ML packages inside it as archives (a remote node cannot read this machine's
staging folder). Ray is an optional extra: ``pip install mobilekit[ray]``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

from mobilekit.errors import ConfigError
from mobilekit.run.shards import ParityJob, Shard, ShardEvaluator, ShardResult, quiet_worker

#: the object store of a private local instance: parity's jobs are models (MBs), not data sets
LOCAL_OBJECT_STORE = 256 * 1024 * 1024
#: where a private local instance listens: this machine only
LOOPBACK = "127.0.0.1"


def ray_module() -> Any:
    """Ray, imported on demand (an optional extra): one line with the fix when it is missing."""
    try:
        import ray
    except ImportError as e:
        raise ConfigError("--ray needs Ray, which is not installed", fix="pip install 'mobilekit[ray]'") from e
    return ray


def connect(address: str, cpus: int) -> bool:
    """Join the cluster at ``address`` (or start a private one for ``local``); whether this call initialized Ray in
    this process (and so shuts it down afterwards)."""
    if address == "local":
        _loopback_only()
    ray = ray_module()
    if ray.is_initialized():
        return False
    if address == "local":
        _private_token()
        # address "local": a new instance even when `ray start` runs one on this machine (ray.init() would join it)
        ray.init(address="local", num_cpus=cpus, object_store_memory=LOCAL_OBJECT_STORE, include_dashboard=False,
                 log_to_driver=False, configure_logging=False, _node_ip_address=LOOPBACK)
    else:
        _reachable(address)
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ConfigError(f"cannot join the Ray cluster at '{address}': {str(e).splitlines()[0].rstrip('.')}",
                              fix="start one with `ray start --head`, pass its address, or use --ray local") from e
    return True


def _loopback_only() -> None:
    """A private instance serves this build alone, so every server of it binds to and is reached on 127.0.0.1. On
    Linux, Ray turns a loopback ``_node_ip_address`` into the machine's network address (its GCS, raylet and client
    server then listen on eth0 or on every interface) unless multi-node clustering is off, which Ray reads from
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``: set here before Ray loads (its raylets and workers inherit it), and on Ray's
    constant when it is already loaded."""
    import sys

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False


def _private_token() -> None:
    """A private instance authenticates with a token of this run, kept in this process's environment (its raylets
    and workers inherit it). Left to itself, Ray 2.5x+ writes ``~/.ray/auth_token`` for a local ``ray.init()``, and
    every ``ray start`` head on the machine afterwards demands that token of clients that do not send it. A user's
    own choice (``RAY_AUTH_MODE``, a token in the environment or in ``~/.ray``) is left as it is."""
    import secrets
    from pathlib import Path

    if any(k in os.environ for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")):
        return
    if (Path.home() / ".ray" / "auth_token").exists():
        return
    try:  # Ray reads its auth mode once; this re-reads it (what ray.init itself does when it turns token auth on)
        from ray._raylet import Config
    except ImportError:
        return  # another Ray: its default
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    Config.initialize("")


def _reachable(address: str, seconds: float = 5.0) -> None:
    """A ``host:port`` that nothing answers on fails here, at once: Ray itself waits minutes for a missing GCS."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and other forms Ray resolves itself (and fails on quickly)
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
    except OSError as e:
        raise ConfigError(f"cannot join the Ray cluster at '{address}': nothing answers there ({e.strerror or e})",
                          fix="start one with `ray start --head`, pass its address, or use --ray local") from e


class _Evaluator:
    """A Ray actor's state: its evaluator, built once from the job."""

    def __init__(self, job: ParityJob) -> None:

        quiet_worker(job)
        self.evaluator = ShardEvaluator(job.unpacked())

    def run(self, first: int, records: list[Any], truth: Any) -> ShardResult:
        return self.evaluator(first, records, truth)


def evaluate_ray(job: ParityJob, parts: list[Shard], address: str, actors: int) -> Iterator[ShardResult]:
    """Every shard's result in image order, from ``actors`` actors on the cluster at ``address``. The actors read
    the images by their paths: on a cluster of several machines the evaluation images must be on a file system
    every node mounts at the same path."""
    ray = ray_module()
    from ray.exceptions import RayActorError
    from ray.util import ActorPool

    from mobilekit.process import NativeCrash

    started = connect(address, actors)
    try:
        job_ref = ray.put(job.packed())
        remote = ray.remote(num_cpus=1)(_Evaluator)
        pool = ActorPool([remote.remote(job_ref) for _ in range(max(1, min(actors, len(parts))))])
        try:
            yield from pool.map(lambda a, part: a.run.remote(*part), parts)
        except RayActorError as e:
            raise NativeCrash("a Ray actor evaluating parity died (natively, or killed)",
                              fix="run the build without --ray: its line names the artifact and kernels that "
                                  "crash") from e
    finally:
        if started:
            ray.shutdown()
