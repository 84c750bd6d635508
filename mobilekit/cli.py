"""The ``mobilekit`` command line. It wires stages and prints tables; all work lives in the stage modules."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mobilekit import __version__
from mobilekit.emulate.litert_contained import KernelCrash
from mobilekit.errors import EXIT_INTERNAL, InternalError, MobilekitError
from mobilekit.kinds import Kind
from mobilekit.parity.decode import summary as decode_summary
from mobilekit.process import quiet_tf

err = Console(stderr=True)
out = Console()


def _failed_check(f: dict[str, Any]) -> dict[str, Any]:
    """A failing parity check as the JSON and the table show it."""
    return {"artifact": f["artifact"], "kernels": f["resolver"], "metric": f["metric"], "value": f["value"],
            "bar": f["bar"], "at_least": f["at_least"]}


def _fail(e: MobilekitError, as_json: bool) -> None:
    failures = [_failed_check(f) for f in getattr(e, "failures", None) or []]
    if failures:
        t = Table(title="Parity checks that failed", title_style="bold red")
        for col in ("artifact", "kernels", "metric", "value", "bar"):
            t.add_column(col)
        for f in failures:
            t.add_row(f["artifact"], f["kernels"], f["metric"], f"{f['value']:.4f}",
                      (">= " if f["at_least"] else "<= ") + f"{f['bar']:g}")
        if not as_json:
            err.print(t)
    if as_json:
        click.echo(json.dumps({"ok": False, "exit_code": e.exit_code, "error": e.one_line(),
                               **({"failures": failures} if failures else {})}, sort_keys=True))
    err.print(f"[bold red]error:[/] {escape(e.one_line())}", highlight=False, soft_wrap=True)
    sys.exit(e.exit_code)


def _run(fn, as_json: bool) -> Any:
    """Every failure ends in one line and a documented exit code; under ``--json`` also one JSON object."""
    try:
        return fn()
    except MobilekitError as e:
        _fail(e, as_json)
    except KeyboardInterrupt:
        if as_json:
            click.echo(json.dumps({"ok": False, "exit_code": 130, "error": "interrupted: no bundle was written"}))
        err.print("[bold red]interrupted:[/] no bundle was written")
        sys.exit(130)
    except Exception as e:  # a bug: still one line, and one JSON object under --json
        _fail(InternalError(f"internal error: {e.__class__.__name__}: {e}",
                            fix="this is a bug in mobilekit: please report it with the command and config"), as_json)


def _selective_line(m: dict) -> str | None:
    """What selective precision did, in one line: the full-int8 drop, the ops left in float, the drop and cost,
    and quantization-aware training when it ran on demand."""
    sel = (m.get("quantization") or {}).get("selective")
    if not sel:
        return None
    qat = sel.get("qat") or {}
    trained = (f"; QAT (tflite-int8-qat): drop {qat['drop']:.2f}" if "drop" in qat else
               f"; QAT skipped: {qat['skipped']}" if "skipped" in qat else "")
    head = f"selective precision ({sel['metric']} on the calibration images): full-int8 drop {sel['int8_drop']:.2f}"
    if iv := sel.get("int8_drop_interval"):
        head += f" (90% interval {iv[0]:+.2f} to {iv[1]:+.2f})"
    if not sel["float_ops"]:
        return head + (f" is within {sel['max_drop']:g}; no mixed artifact" if sel["met"] else
                       "; no op helps when left in float: no mixed artifact") + trained
    lat = m.get("latency_ms", {})
    best = sel["float"] - max([sel["int8"], *(s["metric"] for s in sel["steps"] if s["kept"])])
    cost = (f", CPU {lat['tflite-int8-mixed']:.2f} ms vs {lat['tflite-int8']:.2f} ms full-int8"
            if "tflite-int8-mixed" in lat and "tflite-int8" in lat else "")
    ops = ", ".join(o["op"] for o in sel["float_ops"])
    verdict = "[green]meets[/]" if sel["met"] else "[yellow]still misses[/]"
    return (f"{head}; tflite-int8-mixed leaves {len(sel['float_ops'])} op(s) in float ({ops}): drop {best:.2f}, "
            f"{verdict} max_drop {sel['max_drop']:g}{cost}{trained}")


def _map_lines(parity: dict) -> list[str]:
    """The float model's mAP and each artifact's drop with its 90% interval (how much of it is noise)."""
    if "map50_float" not in parity:
        return []
    lines = [f"mAP of the float model on these images: {parity['map50_float']:.1f} @0.5, "
             f"{parity['map50_95_float']:.1f} @0.5:0.95 (COCO); each artifact's in report/parity.json"]
    for kind, d in parity.get("map50_95_drops", {}).items():
        iv = d["interval"]
        lines.append(f"  {kind}: mAP@0.5:0.95 drop {d['drop']:+.2f} points (XNNPACK)"
                     + (f", 90% interval over these {parity['images']} images {iv[0]:+.2f} to {iv[1]:+.2f}"
                        if iv else ""))
    return lines


def _summary(result, as_json: bool) -> None:
    m = result.manifest
    if as_json:
        click.echo(json.dumps({"ok": True, "out": str(result.out), "manifest": m}, sort_keys=True))
        return
    t = Table(title=f"Bundle {result.out}")
    for col in ("artifact", "kind", "size", "CPU latency", "peak memory (XNNPACK / reference)"):
        t.add_column(col, overflow="fold")
    sdks = {k: [a for a in m["artifacts"] if a["kind"].startswith(k)] for k in ("android-sdk", "ios-sdk",
                                                                                 "sample-app")}
    folded = [a for files in sdks.values() for a in files]
    mem = {v["path"]: v for v in m.get("memory", {}).values()}
    for a in m["artifacts"]:
        if a in folded:
            continue
        lat = result.latency_ms.get(a["kind"])
        t.add_row(a["path"], a["kind"], _size(a["size"]), f"{lat:.2f} ms" if lat else "",
                  memory_cell(mem.get(a["path"])))
    for kind, files in sdks.items():  # one row per generated SDK, not one per source file
        if files:
            root = "/".join(files[0]["path"].split("/")[:3]) + "/"
            t.add_row(root, f"{kind} ({len(files)} files)", _size(sum(a["size"] for a in files)), "", "")
    out.print(t)
    for line in _cpu_lines(m):
        out.print(line)
    if line := _selective_line(m):
        out.print(line)
    p = Table(title=f"Parity vs the float model ({m['parity']['images']} images)")
    for col in ("artifact", "kernels", "metric", "value", "bar", ""):
        p.add_column(col)
    for c in result.checks:
        p.add_row(c.artifact, c.resolver, c.metric, f"{c.value:.4f}", (">= " if c.at_least else "<= ") + f"{c.bar:g}",
                  "[green]ok[/]" if c.passed else "[red]FAIL[/]")
    out.print(p)
    for line in _map_lines(m["parity"]):
        out.print(line)
    if "top1_float" in m["parity"]:
        out.print(f"top-1 accuracy of the float model on these images (class folders): "
                  f"{m['parity']['top1_float']:.2f}%; each artifact's in report/parity.json")
    if overlap := m["parity"].get("evaluation_overlap"):
        out.print(f"[yellow]not held out:[/] {overlap['images']} of the {overlap['of']} evaluation images are "
                  "calibration images, which flatters int8; set `evaluation:` to a held-out split")
    for crash in m["parity"].get("kernel_crashes", []):
        out.print(Text(f"contained: {KernelCrash(**crash).line()}", style="yellow"))
    if not m["parity"].get("passed", True):
        out.print(f"[yellow]parity gate off (parity.enforce: false):[/] {len(result.failed_checks)} check(s) below "
                  "the bar; this bundle is not proven for release")
    if m.get("compression"):
        out.print(_compression_table(m["compression"]["stages"]))
    split = m.get("split") or {}
    if split.get("levels_joined"):
        out.print("[green]levels:[/] " + split["levels_joined"]["reason"])
    if "reason" in split:
        out.print(("[green]split:[/] " if split.get("applied") else "[yellow]not split:[/] ") + split["reason"])
    if "decode" in m:
        checked = (m["decode"].get("reference") is not None and m["decode"].get("passed"))
        out.print(Text(decode_summary(m["decode"]), style="green" if checked else "yellow"))


def _cpu_lines(m: dict[str, Any]) -> list[str]:
    """Under the artifact table: int8 against float on this CPU, what the XNNPACK rewrite did, what the Core ML
    memory figure is."""
    lines = []
    if m.get("latency_note"):
        lines.append(f"[yellow]CPU latency:[/] {m['latency_note']}")
    elif Kind.TFLITE_INT8 in m.get("outside_xnnpack", {}):
        from mobilekit.emulate.profile import op_counts

        ops = m["outside_xnnpack"][Kind.TFLITE_INT8]
        lines.append(f"int8 ops outside XNNPACK (LiteRT's built-in kernels): {op_counts(ops)}")
    if line := rewrite_line(m.get("xnnpack_rewrite")):
        lines.append(line)
    notes = [v["note"] for v in m.get("memory", {}).values() if "note" in v]
    if notes:
        lines.append(f"Core ML memory: {notes[0]}")
    return lines


def memory_cell(mem: dict[str, Any] | None) -> str:
    """``31.2 MB / 20.1 MB``: a TFLite artifact's peak run-time memory per kernel set; a Core ML package's
    weights (its run-time memory is not measured here)."""
    if not mem:
        return ""
    if "weight_bytes" in mem:
        return f"weights {_size(mem['weight_bytes'])} (run time not measured)"
    kernels = mem.get("kernels", {})
    cells = [_size(kernels[k]["peak_bytes"]) if "peak_bytes" in kernels[k] else "failed"
             for k in ("xnnpack", "reference") if k in kernels]
    return " / ".join(cells)


def rewrite_line(rw: dict[str, Any] | None) -> str | None:
    """What the XNNPACK rewrite did to the int8 model, in one line, with its measured effect."""
    if not rw:
        return None
    ms = rw.get("latency_ms")
    timed = f" (int8 {ms['original']:.2f} ms -> {ms['rewritten']:.2f} ms, LiteRT XNNPACK, 2 threads)" if ms else ""
    left = [f"{h['layer']} ({h['op']})" for h in rw.get("layers", []) if not h.get("rewrite")]
    rest = f"; outside XNNPACK with no rewrite: {', '.join(left[:6])}" if left else ""
    if rw.get("applied"):
        return f"[green]XNNPACK rewrite (int8 graph):[/] {rw['summary']}{timed}{rest}"
    return f"[yellow]XNNPACK rewrite not applied:[/] {rw.get('reason', '')}{rest}"


def _compression_table(rows: list[dict[str, Any]]) -> Table:
    """Each compression stage against the original: parameters, MACs, int8 size and latency, task metric."""
    base = rows[0]
    t = Table(title="Compression (each row: the model after that stage; int8 latency: LiteRT XNNPACK, 1 thread)")
    for col in ("stage", "params", "MACs", "int8 size", "int8 latency", f"{base['metric_name']} float",
                f"{base['metric_name']} int8", "distillation"):
        t.add_column(col, justify="left" if col == "stage" else "right")
    for r in rows:
        rel = "" if r is base else f" ({r['params'] / base['params']:.0%})"
        t.add_row(r["stage"], f"{r['params']:,}{rel}", f"{r['macs'] / 1e6:.1f} M", _size(r["int8_bytes"]),
                  f"{r['latency_ms']:.2f} ms", f"{r['metric_float']:.2f}", f"{r['metric_int8']:.2f}",
                  _training(r.get("details", {})))
    return t


def _training(details: dict[str, Any]) -> str:
    """Steps and seconds a stage trained (its fade phase, if any, first), and with which labels beside the
    teacher."""
    parts = [f"{name} {d['steps']} steps / {d['seconds']:.0f} s"
             + (f" + {d['labels']}" if d.get("labels", "none") != "none" else "")
             for name in ("fade", "distill") if (d := details.get(name))]
    return ", ".join(parts)


#: ``--import MODULE`` (repeatable) on every command that loads a model: modules that register custom layers.
IMPORT_OPTION = click.option("--import", "imports", multiple=True, metavar="MODULE",
                             help="Import MODULE before the model loads (registers custom layers); repeatable.")


def _size(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.2f} MiB"


@click.group()
@click.version_option(__version__, prog_name="mobilekit")
def main() -> None:
    """Turn a trained Keras vision model into a proven Android/iOS release bundle."""
    quiet_tf()


def _sigterm_is_an_interrupt() -> None:
    """``kill`` / ``timeout`` end a command like Ctrl-C: exit 130 with its one line (and JSON), and a running build's
    worker and temporary files are cleaned up on the way out."""

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not the main thread (an embedding host): keep the default
        signal.signal(signal.SIGTERM, interrupted)


def _build(cfg, out_dir: Path, quiet: bool, as_json: bool, sample_apps: bool = False, workers: int = 1,
           ray: str | None = None):
    """Run the build in a supervised worker process (:mod:`mobilekit.supervise`): a native crash in a converter or
    runtime becomes one line with its own exit code, and leaves no temporary files."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from mobilekit.supervise import run

    job = {"config": cfg, "out": str(out_dir), "sample_apps": sample_apps, "workers": workers, "ray": ray}
    if quiet or as_json:
        return run(job)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                  transient=False) as progress:
        state: dict[str, Any] = {}

        def step(text: str) -> None:
            if "task" in state:
                progress.update(state["task"], completed=1, total=1)
            state["task"], state["text"] = progress.add_task(text, total=None), text

        def detail(text: str) -> None:
            if "task" in state:
                progress.update(state["task"], description=f"{state['text']} [dim]({escape(text)})[/dim]")

        try:
            return run(job, step, detail)
        finally:
            if "task" in state:
                progress.update(state["task"], completed=1, total=1)


@main.command()
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Bundle directory (default: config 'output').")
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for pipelines).")
@click.option("--with-sample-app", "sample_apps", is_flag=True,
              help="Also write sample_apps/ (Android, and iOS with Core ML) wired to the SDKs of this bundle.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Parity's shards on N local worker processes (1: in the build's process).")
@click.option("--ray", "ray_address", metavar="ADDRESS", default=None,
              help="Parity's shards as Ray tasks on this cluster ('auto': the one this machine runs; "
                   "pip install mobilekit[ray]); --workers actors.")
@IMPORT_OPTION
def build(config: Path, out_dir: Path | None, quiet: bool, as_json: bool, sample_apps: bool, workers: int,
          ray_address: str | None, imports: tuple[str, ...]) -> None:
    """Build the release bundle described by CONFIG (mobilekit.yaml)."""
    from mobilekit.config_file import load_config
    from mobilekit.errors import ConfigError

    def go():
        cfg = load_config(config)
        if imports:  # searched in the shell's folder, as inspect does, and beside the config
            cfg.imports = [*cfg.imports, *imports]
            cfg.import_dirs = [Path.cwd()]
        target = out_dir or (cfg.resolve(cfg.output) if cfg.output else None)
        if target is None:
            raise ConfigError("no output directory", path=config, fix="pass --out DIR or set 'output:' in the config")
        if ray_address and importlib.util.find_spec("ray") is None:  # said now, not after the conversions
            raise ConfigError("--ray needs Ray, which is not installed", fix="pip install 'mobilekit[ray]'")
        return _build(cfg, target, quiet, as_json, sample_apps, workers, ray_address)

    _summary(_run(go, as_json), as_json)


@main.command()
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="The study folder: study.db (resumable), trials/NNNN/, search.html and the chosen mobilekit.yaml.")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Trial builds in all, those of an earlier run of the same search included (default: "
                   "search.trials).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Trial builds at once (local processes, or Ray tasks with --ray).")
@click.option("--ray", "ray_address", metavar="ADDRESS", default=None,
              help="Trial builds as Ray tasks on this cluster ('auto', 'local', or host:port).")
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for pipelines).")
@IMPORT_OPTION
def search(config: Path, out_dir: Path, trials: int | None, workers: int, ray_address: str | None, quiet: bool,
           as_json: bool, imports: tuple[str, ...]) -> None:
    """Search the recipes CONFIG's `search:` section allows for the Pareto front under its budgets; each trial is
    a real build. Writes the chosen recipe as OUT/mobilekit.yaml; exit 8 when no recipe meets every budget."""
    from mobilekit.errors import NoRecipeError

    result = _run(lambda: _search(config, out_dir, trials, workers, ray_address, quiet or as_json, imports), as_json)
    if as_json:
        from mobilekit.search.results import columns, table_rows

        if result.chosen is not None:
            click.echo(json.dumps({"ok": True, "recipe": str(result.recipe_file), "html": str(result.html),
                                   "chosen": result.chosen.number, "metric": result.metric,
                                   "reference": result.reference, "columns": columns(result),
                                   "trials": table_rows(result)}, sort_keys=True))
    else:
        (out if out.is_terminal else Console(width=160)).print(_search_table(result))  # a pipe: not 80 columns
        repeats = sum(r.same_as is not None for r in result.rows)
        if repeats:
            out.print(f"{repeats} recipe(s) the sampler asked for again took the figures of their first build "
                      "(not shown; in --json and search.html)")
        out.print(f"report: {result.html}")
        if result.chosen is not None:
            out.print(f"[green]chosen:[/] trial {result.chosen.number}, written as {result.recipe_file} "
                      f"(its bundle: {result.out / 'trials' / f'{result.chosen.number:04d}' / 'bundle'})")
    if result.chosen is None:
        budgets = ", ".join(f"{k} {v:g}" for k, v in result.budgets.items()) or "the parity gate"
        built = sum(r.same_as is None for r in result.rows)
        _fail(NoRecipeError(f"none of the {built} recipes built meets every budget ({budgets})",
                            path=config, fix="widen search.space, relax search.budgets, or run more --trials "
                            "(the study resumes)"), as_json)


def _search(config: Path, out_dir: Path, trials: int | None, workers: int, ray_address: str | None, quiet: bool,
            imports: tuple[str, ...]):
    """Load the config and its search section, run the study with a progress bar."""
    import yaml

    from mobilekit.config_file import load_config
    from mobilekit.errors import ConfigError, Interrupted
    from mobilekit.search.driver import run_search
    from mobilekit.search.study import Search

    cfg = load_config(config)
    if cfg.search is None:
        raise ConfigError("has no search: section", path=config,
                          fix="add search: with a space (e.g. prune_ratio: [0, 0.25, 0.5]) and budgets; see README")
    if imports:
        cfg.imports = [*cfg.imports, *imports]
    if ray_address and importlib.util.find_spec("ray") is None:
        raise ConfigError("--ray needs Ray, which is not installed", fix="pip install 'mobilekit[ray]'")
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    timed = "cpu_ms" in cfg.search.objectives or "max_cpu_ms" in cfg.search.budgets
    if timed and (workers > 1 or ray_address) and not quiet:
        err.print("[yellow]note:[/] each trial's CPU latency is measured while other trials build: compare cpu_ms "
                  "figures from --workers 1 runs")
    s = Search(config.resolve(), cfg, data, out_dir.resolve(), trials or cfg.search.trials, workers, ray_address)
    try:
        if quiet:
            return run_search(s)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err) as progress:
            task = progress.add_task("Opening the study", total=s.trials)
            s.on_event = lambda kind, info: _search_event(progress, task, kind, info)
            return run_search(s)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: the running trials were stopped; the study is kept in {s.out / 'study.db'}",
                          fix="run the same command to resume") from None


def _search_event(progress: Any, task: Any, kind: str, info: dict[str, Any]) -> None:
    if kind == "reference":
        progress.update(task, description="Reference build (the original model, for the drops)")
    elif kind == "resumed":
        progress.update(task, completed=info["built"])
    elif kind == "start":
        recipe = ", ".join(f"{k}={v}" for k, v in info["recipe"].items())
        progress.update(task, description=f"Trial {info['number']}: {escape(recipe)}")
    elif kind == "done":
        row = info["row"]
        figures = ", ".join(f"{k} {v:.2f}" for k, v in row.values.items()) if row.values else f"failed: {row.error}"
        progress.console.print(f"trial {row.number} ({row.seconds:.0f} s): {escape(figures)}", highlight=False)
        progress.advance(task)


def _search_table(result) -> Table:
    from mobilekit.search.results import columns, table_rows

    t = Table(title=f"Recipes tried ({result.metric} drop from the original float model's "
                    f"{result.reference:.2f}; objectives: {', '.join(result.objectives)})")
    for i, col in enumerate(columns(result)):
        t.add_column(col, overflow="fold", justify="left" if i == 0 or col == "verdict" else "right")
    for cells in table_rows(result):
        if cells[-1].startswith("same recipe"):
            continue
        style = "bold green" if cells[-1] == "chosen" else "green" if cells[-1] == "Pareto" else (
            "dim" if cells[-1].startswith(("misses", "failed", "same")) else None)
        t.add_row(*(escape(c) for c in cells), style=style)
    return t


@main.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("build/example"), show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), default=None,
              help="Where the example's model, images and config are made (default: a cache directory).")
@click.option("--quiet", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def example(out_dir: Path, workdir: Path | None, quiet: bool, as_json: bool) -> None:
    """Run the whole pipeline on a built-in example: a shapes detector trained here in about a minute."""
    from mobilekit.config_file import load_config
    from mobilekit.example.project import make_example

    def go():
        wd = workdir or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mobilekit" / "example-v1"
        if not (quiet or as_json):
            err.print(f"Preparing the example in {wd} (trains once, then cached)")
        cfg_path = make_example(wd)
        # with the sample apps: the checkout's own sample_apps/ open on this bundle's SDKs
        return _build(load_config(cfg_path), out_dir, quiet, as_json, sample_apps=True)

    _summary(_run(go, as_json), as_json)


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@IMPORT_OPTION
def inspect(model: Path, as_json: bool, imports: tuple[str, ...]) -> None:
    """Show a model's inputs, outputs, parameters, MACs and per-layer table."""
    from mobilekit.models.inspect import describe
    from mobilekit.models.loader import load_model
    from mobilekit.models.plugins import import_modules

    def go():
        import_modules(imports, Path.cwd(), "--import")
        return describe(load_model(model))

    info = _run(go, as_json)
    if as_json:
        click.echo(json.dumps(info, sort_keys=True))
        return
    out.print(f"[bold]{model}[/] ({info['kind']}): input {info['input']['name']} {info['input']['shape']}")
    for name, shape in info["outputs"].items():
        out.print(f"  output {name} {shape}")
    out.print(f"parameters: {info['params']:,}   MACs: {info['macs']:,}")
    if info["layers"]:
        t = Table(title="Layers")
        for col in ("layer", "type", "output shape", "params", "MACs"):
            t.add_column(col, justify="right" if col in ("params", "MACs") else "left")
        for row in info["layers"]:
            t.add_row(row["name"], row["type"], str(row["output_shape"]), f"{row['params']:,}", f"{row['macs']:,}")
        out.print(t)
    _outside_table(info.get("outside_xnnpack_int8", []))


def _outside_table(hits: list[dict[str, Any]]) -> None:
    """The layers whose int8 op XNNPACK's kernels do not take, and what the build does with each."""
    if not hits:
        out.print("int8 on XNNPACK: no activation falls outside XNNPACK's int8 kernels")
        return
    t = Table(title="Activations outside XNNPACK's int8 kernels (what the int8 build does)")
    for col in ("layer", "activation", "int8 op", "the build"):
        t.add_column(col, overflow="fold")
    for h in hits:
        t.add_row(h["layer"], h["activation"], h["op"], f"rewritten: {h['form']}" if h.get("rewrite") else
                  f"stays outside XNNPACK: {h.get('why', '')}")
    out.print(t)


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--out", "out_file", type=click.Path(path_type=Path), default=Path("mobilekit.yaml"), show_default=True)
@click.option("--images", type=click.Path(path_type=Path), default=None,
              help="Representative images: each candidate decoding is run on them and ranked by plausibility.")
@click.option("--force", is_flag=True, help="Overwrite an existing OUT.")
@click.option("--json", "as_json", is_flag=True)
@IMPORT_OPTION
def init(model: Path, out_file: Path, images: Path | None, force: bool, as_json: bool,
         imports: tuple[str, ...]) -> None:
    """Write a commented mobilekit.yaml for MODEL: read what the model says, mark every guess."""
    from mobilekit.errors import OutputError
    from mobilekit.models.guess import guess
    from mobilekit.models.loader import load_model
    from mobilekit.models.plugins import import_modules

    def go():
        if out_file.exists() and not force:
            raise OutputError("exists; init does not overwrite a config", path=out_file,
                              fix="pass --force, or choose another --out")
        import_modules(imports, Path.cwd(), "--import")
        found = guess(model, load_model(model), images, list(imports))
        out_file.write_text(found.text, encoding="utf-8")
        return found

    found = _run(go, as_json)
    rows = [{"detection": c.detection, "why": c.why, "plausibility": c.plausibility} for c in found.candidates]
    if as_json:
        click.echo(json.dumps({"ok": True, "config": str(out_file), "task": found.facts["task"],
                               "candidates": rows, "undecided": bool(found.facts.get("undecided"))},
                              sort_keys=True, default=str))
        return
    if rows:
        t = Table(title=f"How the outputs of {model.name} can be read (best first)")
        for col in ("head", "why", "plausibility"):
            t.add_column(col)
        for c in found.candidates:
            t.add_row(c.name, c.why, "" if c.plausibility is None else f"{c.plausibility:.2f}")
        out.print(t)
    if found.facts.get("undecided"):
        from mobilekit.models.guess import UNDECIDED

        out.print(Text(UNDECIDED, style="yellow"))
    out.print(Text(f"wrote {out_file}: check every line marked GUESS, then: mobilekit build {out_file}"))


@main.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("images", type=click.Path(path_type=Path), nargs=-1, required=True)
@click.option("--artifact", "kind", default=Kind.TFLITE_INT8, show_default=True,
              help="The artifact to run: tflite-int8, tflite-fp16, coreml-fp16, a Core ML variant...")
@click.option("--candidates", is_flag=True, help="Every candidate, before the score threshold and NMS.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image, one per line (README: schema).")
def predict(bundle: Path, images: tuple[Path, ...], kind: str, candidates: bool, as_json: bool) -> None:
    """Run one artifact of BUNDLE on IMAGES as the SDKs run it: detections (or top classes) in image pixels."""
    from mobilekit.predict import predict as run_predict

    quiet_tf()
    records = _run(lambda: list(run_predict(bundle, list(images), kind, candidates)), as_json)
    for rec in records:
        if as_json:
            click.echo(json.dumps(rec, sort_keys=True))
            continue
        found = rec.get("detections", rec.get("candidates"))
        if found is None:
            line = ", ".join(f"{c['label']} {c['score']:.3f}" for c in rec["classes"])
            out.print(Text(f"{rec['image']} ({rec['artifact']}): {line}"))
            continue
        shown = sorted(found, key=lambda d: -d["score"])[:20] if candidates else found
        what = f"{len(found):,} candidates, the 20 best shown (--json for all)" if candidates else \
            f"{len(found)} detections"
        t = Table(title=f"{rec['image']} ({rec['artifact']}): {what}")
        for col in ("class", "score", "x1", "y1", "x2", "y2"):
            t.add_column(col, justify="left" if col == "class" else "right")
        for d in shown:
            t.add_row(d["label"], f"{d['score']:.3f}", *(f"{v:.1f}" for v in d["box"]))
        out.print(t)


@main.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def verify(bundle: Path, as_json: bool) -> None:
    """Re-check every artifact of BUNDLE against its manifest (presence, size, SHA-256). Exit 6 on a mismatch."""
    from mobilekit.bundle.verify import verify_bundle
    from mobilekit.errors import EXIT_VERIFY

    findings = _run(lambda: verify_bundle(bundle), as_json)
    bad = [f for f in findings if not f.ok]
    if as_json:
        click.echo(json.dumps({"ok": not bad, "checked": len(findings),
                               "problems": [f.__dict__ for f in bad]}, sort_keys=True))
    elif not bad:
        out.print(f"[green]{bundle}: all {len(findings)} artifacts match the manifest[/]")
    else:
        t = Table(title=f"{bundle}: {len(bad)} of {len(findings)} artifacts do not match the manifest")
        for col in ("artifact", "kind", "problem"):
            t.add_column(col, overflow="fold")
        for f in bad:
            t.add_row(f.path, f.kind, f"[red]{f.status}[/]")
        out.print(t)
    if bad:
        sys.exit(EXIT_VERIFY)


@main.command()
@click.option("--json", "as_json", is_flag=True)
def doctor(as_json: bool) -> None:
    """What this machine can do: converters, runtimes, and the compilers the SDK checks need."""
    from mobilekit.doctor import checks

    found = checks()
    if as_json:
        click.echo(json.dumps([c.__dict__ for c in found], sort_keys=True))
        return
    t = Table(title="mobilekit doctor")
    for col in ("component", "found", "needed for", "how to get it"):
        t.add_column(col, overflow="fold")
    for c in found:
        t.add_row(c.name, f"[green]{c.found}[/]" if c.found else "[yellow]missing[/]", c.needed_for,
                  "" if c.found else c.how)
    out.print(t)


def entry() -> None:
    """Console script: an unexpected exception outside a command's own handling is a bug; one line, exit 1 (one
    JSON object too when ``--json`` was given)."""
    _sigterm_is_an_interrupt()  # the console script only: an embedding host (or a test runner) keeps its own
    try:
        main()
    except Exception as e:
        line = f"internal error: {e.__class__.__name__}: {e}"
        if "--json" in sys.argv[1:]:
            click.echo(json.dumps({"ok": False, "exit_code": EXIT_INTERNAL, "error": line}))
        err.print(f"[bold red]{escape(line)}[/]", highlight=False, soft_wrap=True)
        sys.exit(EXIT_INTERNAL)
