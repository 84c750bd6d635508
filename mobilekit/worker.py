"""The build worker: ``python -m mobilekit.worker RUN_DIR`` runs one job that :mod:`mobilekit.supervise` prepared.

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


def execute(run_dir: Path, step: Callable[[str], None]) -> int:
    """Run the job in ``run_dir``; leave ``result.pkl`` or ``error.json`` there; return the exit code."""
    from mobilekit.supervise import error_record

    job = pickle.loads((run_dir / "job.pkl").read_bytes())
    try:
        from mobilekit.pipeline import build

        result = build(job["config"], Path(job["out"]), step, measure_latency=job.get("measure_latency", True),
                       sample_apps=job.get("sample_apps", False))
        part = run_dir / "result.pkl.part"
        part.write_bytes(pickle.dumps(result))
        os.replace(part, run_dir / "result.pkl")
        return 0
    except KeyboardInterrupt:
        record = {"line": "interrupted: no bundle was written", "exit_code": 130}
    except Exception as e:  # every error, a bug included, reaches the user as one line with its exit code
        record = error_record(e)
    (run_dir / "error.json").write_text(json.dumps(record, default=str))
    return int(record["exit_code"])


def main(run_dir: Path) -> int:
    from mobilekit.cli import _quiet_tf
    from mobilekit.supervise import die_with_supervisor, stage

    die_with_supervisor()
    fault = (run_dir / "fault.txt").open("w")
    faulthandler.enable(file=fault, all_threads=False)
    _quiet_tf()
    return execute(run_dir, stage)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
