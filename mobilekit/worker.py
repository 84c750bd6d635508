"""The build worker: runs one job that :mod:`mobilekit.supervise` prepared in a run folder (:func:`entry`).

It reads ``job.pkl`` (the parsed config, output folder and options), runs the pipeline, and leaves ``result.pkl``
or ``error.json`` in the run folder. Its stdout is the supervisor's stderr (native code prints there, and
``--json`` needs a clean stdout); faulthandler writes the Python stack of a native crash to ``fault.txt`` so the
supervisor can name the frame in its one line.
"""

from __future__ import annotations

import faulthandler
import json
import os
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def execute(run_dir: Path, step: Callable[[str], None], progress: Callable[[str], None] | None = None) -> int:
    """Run the job in ``run_dir``; leave ``result.pkl`` or ``error.json`` there; return the exit code.
    ``progress`` hears a stage's own progress lines (default: sent to the supervisor)."""
    from mobilekit.process import detail, error_record

    try:
        job = pickle.loads((run_dir / "job.pkl").read_bytes())
        _user_modules(job["config"])
        _freeze_imports()
        from mobilekit.pipeline import build

        result = build(job["config"], Path(job["out"]), step, measure_latency=job.get("measure_latency", True),
                       sample_apps=job.get("sample_apps", False), progress=progress or detail,
                       workers=job.get("workers", 1), ray=job.get("ray"))
        _write(run_dir / "result.pkl", pickle.dumps(result))
        return 0
    except KeyboardInterrupt:
        record = {"line": "interrupted: no bundle was written", "exit_code": 130}
    except BaseException as e:  # every error, a bug or a library's sys.exit included: one line, its exit code
        record = error_record(e)
    _write(run_dir / "error.json", json.dumps(record, default=str).encode())
    return int(record["exit_code"])


def _user_modules(cfg: Any) -> None:
    """The config's ``imports`` first, before TensorFlow: a module that registers its layers through ``tf.keras``
    (the tf_keras-era zoos) turns legacy Keras on as it imports, which only takes if TensorFlow has not loaded yet.
    ``mobilekit init`` imports them in the same order, so what ``init`` loaded, the build loads."""
    from mobilekit.models.plugins import import_modules

    import_modules(cfg.imports, [cfg.base_dir, *cfg.import_dirs], cfg.base_dir / "mobilekit.yaml")


def _freeze_imports() -> None:
    """TensorFlow and Keras loaded, then their objects moved out of the garbage collector's sight (``gc.freeze``).
    coremltools and Keras call ``gc.collect()`` on every conversion and ``clear_session``; each call walked TensorFlow's
    ~400,000 import-time objects (0.2 s, four times per Core ML conversion: a conversion of a small model took 0.65 s,
    0.08 s frozen). Those objects live as long as this one-build process anyway."""
    import gc

    import keras  # noqa: F401  (every build loads both; their module graph is most of the heap)
    import tensorflow  # noqa: F401

    gc.freeze()


def _write(path: Path, data: bytes) -> None:
    """Whole or not at all: the supervisor never reads half a result."""
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    os.replace(part, path)


def entry() -> None:
    """``python -c`` entry used by the supervisor (``sys.argv[1]`` is the run folder). Ends with ``os._exit``: a
    native library's threads must not hold the process in interpreter teardown once the result is written."""
    import signal

    from mobilekit.process import die_with_supervisor, quiet_tf, stage

    die_with_supervisor()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which stops this process
    run_dir = Path(sys.argv[1])
    code = 1
    try:
        faulthandler.enable(file=(run_dir / "fault.txt").open("w"), all_threads=False)
        quiet_tf()
        code = execute(run_dir, stage)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
