"""Bench: which MIL ops coremltools emits for the models users bring, and whether the emulator runs each.

    python bench/coreml_coverage.py [--quick] [--write]

Converts the coverage catalogue (``tests/catalogue.py``: every keras.applications constructor at its smallest
input, every Keras activation and vision layer, detector necks shaped like the third-party ones, and keras-hub /
keras-cv detectors when those packages are installed) at fp16, as mobilekit ships it, and the detectors again
with every Core ML compression recipe (recipes rewrite weights, not graphs: their ops are the ``constexpr_*``
decompressions). Prints one row per MIL op: how many graphs emit it, which, and whether the emulator's reference
path and its traced TensorFlow path implement it; then the graphs coremltools cannot convert. ``--write`` stores
the op list in ``tests/coreml_ops.json``, which a test holds the emulator to. ``--quick``: one architecture per
keras.applications family.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import catalogue  # noqa: E402


def _entries(quick: bool) -> list[catalogue.Entry]:
    apps = catalogue.applications()
    return ((catalogue.smallest_per_family(apps) if quick else apps) + catalogue.layers() + catalogue.detectors()
            + catalogue.third_party())


def _ops_in_child(name: str, quick: bool, work: str) -> tuple[dict[str, set[str]], str | None]:
    """Runs in a fresh process per entry: forty conversions in one process grow past 20 GB."""
    entry = next(e for e in _entries(quick) if e.name == name)
    return _ops_of(entry, Path(work), recipes=entry.source in ("detector necks", "third-party detectors"))


def _ops_of(entry: catalogue.Entry, work: Path, recipes: bool) -> tuple[dict[str, set[str]], str | None]:
    """{op: {graph variant}} for one entry at fp16 (and per recipe), or the converter's first line."""
    import coremltools as ct
    import keras

    from mobilekit.export.coreml_compress import RECIPES

    keras.utils.clear_session()
    keras.utils.set_random_seed(0)
    found: dict[str, set[str]] = defaultdict(set)
    try:
        path = catalogue.convert(entry.build(), entry.shape, work / f"{entry.name}.mlpackage", fp32=False)
    except Exception as e:
        return found, (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
    for op in catalogue.mil_ops(path):
        found[op].add(entry.name)
    for name in sorted(RECIPES) if recipes else []:
        target = catalogue.convert(entry.build(), entry.shape, work / f"{entry.name}-{name}.mlpackage", fp32=False,
                                   target=RECIPES[name].min_target) if RECIPES[name].min_target != "iOS16" else path
        out = work / f"{entry.name}-{name}-c.mlpackage"
        RECIPES[name].apply(ct.models.MLModel(str(target), skip_model_load=True)).save(str(out))
        for op in catalogue.mil_ops(out):
            found[op].add(f"{entry.name}+{name}")
    return found, None


def main() -> None:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from mobilekit.emulate.coreml import OPS
    from mobilekit.emulate.coreml.graph import TF_OPS

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--only", nargs="*", help="catalogue names to convert (--write then adds to the stored list)")
    args = ap.parse_args()
    entries = [e for e in _entries(args.quick) if not args.only or e.name in args.only]
    ops: dict[str, set[str]] = defaultdict(set)
    failed: dict[str, str] = {}
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp, Progress() as progress:
        task = progress.add_task("converting", total=len(entries))
        for e in entries:
            progress.update(task, description=f"{e.name:28}")
            try:
                with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                    found, error = pool.submit(_ops_in_child, e.name, args.quick, tmp).result()
            except BrokenProcessPool:  # ConvNeXt's failing conversions grow past 20 GB: the OOM killer
                found, error = {}, "the conversion process died (killed: out of memory)"
            for op, names in found.items():
                ops[op] |= names
            if error:
                failed[e.name] = error
            progress.advance(task)
    table = Table(title=f"MIL ops emitted by {len(entries) - len(failed)} converted graphs (fp16 + recipes)")
    for col in ("MIL op", "graphs", "e.g.", "reference", "traced"):
        table.add_column(col)
    for op in sorted(ops):
        names = sorted(ops[op])
        table.add_row(op, str(len(names)), ", ".join(names[:3]), "yes" if op in OPS or op == "const" else "MISSING",
                      "yes" if op in TF_OPS or op.startswith("constexpr_") else "eager")
    console = Console()
    console.print(table)
    if failed:
        bad = Table(title="graphs coremltools cannot convert")
        bad.add_column("graph")
        bad.add_column("converter says")
        for name, why in failed.items():
            bad.add_row(name, why)
        console.print(bad)
    if args.write:
        import coremltools

        path = ROOT / "tests" / "coreml_ops.json"
        if args.only and path.is_file():  # a partial run adds to the stored list
            stored = json.loads(path.read_text())
            for op, names in stored["ops"].items():
                ops[op] |= set(names) - {e.name for e in entries}
            failed = {**{k: v for k, v in stored["not_converted"].items() if k not in args.only}, **failed}
        out = {"coremltools": coremltools.__version__, "ops": {op: sorted(n) for op, n in sorted(ops.items())},
               "not_converted": failed}
        path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
