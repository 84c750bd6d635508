"""What a recipe search leaves: the trials as rows, the Pareto front of those that meet every budget, the chosen
recipe as a ready ``mobilekit.yaml`` and ``search.html`` (the front as a plot, every trial as a table).

The front is computed here, over the trials that meet every budget and pass the build's parity gate: a recipe
outside a budget is not a release candidate however good its other figures. The chosen recipe is the front's best
in ``search.prefer`` (ties: the next objectives in order).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import yaml

from mobilekit.search.knobs import apply_recipe
from mobilekit.search.measures import MEASURES
from mobilekit.search.study import Row, Search, SearchResult, finished_trials, plain, rebase


def rows_of(search: Search, study: Any, optuna: Any) -> list[Row]:
    """Every finished trial (interrupted ones excepted), with its measures and the budgets it misses."""
    rows = []
    for t in finished_trials(study, optuna):
        a = t.user_attrs
        row = Row(t.number, dict(t.params), seconds=a.get("seconds", 0.0), error=a.get("error"),
                  same_as=a.get("same_as"))
        if t.state == optuna.trial.TrialState.COMPLETE:
            row.values, row.passed_gate = a["measures"], bool(a["passed_gate"])
            row.violations = list(a["violations"])
            row.feasible = not row.violations
        rows.append(row)
    return rows


def dominates(a: list[float], b: list[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def mark_pareto(rows: list[Row], objectives: list[str]) -> None:
    """``pareto`` on the feasible trials no other feasible trial dominates (repeats of a recipe are not counted)."""
    cands = [r for r in rows if r.feasible and r.same_as is None]
    for r in cands:
        mine = [r.values[o] for o in objectives]
        r.pareto = not any(dominates([o.values[k] for k in objectives], mine) for o in cands if o is not r)


def choose(rows: list[Row], objectives: list[str], prefer: str, default: dict[str, Any] | None = None) -> Row | None:
    """The Pareto trial best in ``prefer`` (then the other objectives); among recipes that measure the same, the one
    that changes the fewest knobs of the config as written (a knob that bought nothing is not worth shipping)."""
    front = [r for r in rows if r.pareto]
    order = [prefer, *(o for o in objectives if o != prefer)]
    default = default or {}

    def changes(r: Row) -> int:
        return sum(1 for k, v in r.recipe.items() if k in default and default[k] != v)

    return min(front, key=lambda r: ([r.values[o] for o in order], changes(r), r.number), default=None)


def write_recipe(search: Search, row: Row, metric: str, reference: float) -> Path:
    """The chosen recipe as a config a user builds as is: their file with the recipe written in (comments are not
    kept: the file is written from the parsed YAML), paths working from where it is."""
    data = plain(search.data)
    data.pop("search", None)
    if search.cfg.imports:  # --import modules given to the search join the config's own
        data["imports"] = list(dict.fromkeys(search.cfg.imports))
    apply_recipe(data, row.recipe, search.cfg)
    rebase(data, search.cfg.base_dir, search.out)
    if isinstance(data.get("output"), str):
        data["output"] = str((search.cfg.base_dir / data["output"]).resolve())
    figures = ", ".join(f"{k} {row.values[k]:.2f} {MEASURES[k].unit}" for k in search.settings.objectives)
    head = [f"# Written by `mobilekit search {search.config}`: trial {row.number} of {search.out / 'study.db'}",
            f"# chosen for the least {search.settings.prefer} among the recipes that meet every budget "
            f"({', '.join(f'{k} {v:g}' for k, v in search.settings.budgets.items()) or 'none set'}).",
            f"# measured: {figures}; drop counted from the original float model's {metric} {reference:.2f}.",
            f"# recipe: {', '.join(f'{k}={v}' for k, v in row.recipe.items())}; its bundle: "
            f"{search.out / 'trials' / f'{row.number:04d}' / 'bundle'}"]
    if search.cfg.imports:  # a module file beside the user's config is found from there, not from this folder
        head.append(f"# imports are found beside {search.cfg.base_dir}: build from there with "
                    + " ".join(f"--import {m}" for m in dict.fromkeys(search.cfg.imports)))
    path = search.out / "mobilekit.yaml"
    path.write_text("\n".join(head) + "\n" + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def summarize(search: Search, study: Any, optuna: Any, metric: str, reference: float,
              default: dict[str, Any]) -> SearchResult:
    s = search.settings
    rows = rows_of(search, study, optuna)
    mark_pareto(rows, s.objectives)
    chosen = choose(rows, s.objectives, s.prefer, default)
    first = next((r for r in rows if r.recipe == default), None)
    result = SearchResult(search.out, metric, reference, list(s.objectives), dict(s.budgets), rows,
                          first.number if first else None, chosen,
                          write_recipe(search, chosen, metric, reference) if chosen else None)
    result.html = write_html(result)
    return result


def _plot(result: SearchResult) -> str | None:
    """The first two objectives of every built trial: feasible, Pareto, chosen and default marked, budgets drawn."""
    from mobilekit.report.html import _plt, _png

    if len(result.objectives) < 2:
        return None
    x, y = result.objectives[:2]
    built = [r for r in result.rows if r.values and r.same_as is None]
    if not built:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, rows, style in (
            ("misses a budget", [r for r in built if not r.feasible], dict(c="#b0b0b0", marker="x")),
            ("meets every budget", [r for r in built if r.feasible and not r.pareto], dict(c="#2a9d8f", marker="o")),
            ("Pareto front", [r for r in built if r.pareto], dict(c="#e76f51", marker="o", s=60))):
        if rows:
            ax.scatter([r.values[x] for r in rows], [r.values[y] for r in rows], label=label, **style)
    for r in built:
        tag = "chosen" if result.chosen and r.number == result.chosen.number else (
            "default" if r.number == result.default else str(r.number))
        ax.annotate(tag, (r.values[x], r.values[y]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    for key, line in ((x, ax.axvline), (y, ax.axhline)):
        if (bound := result.budgets.get(f"max_{key}")) is not None:
            line(bound, color="#999", linestyle="--", linewidth=1)
    ax.set_xlabel(f"{x} ({MEASURES[x].unit})")
    ax.set_ylabel(f"{y} ({MEASURES[y].unit})")
    ax.legend(fontsize=8)
    ax.set_title("Recipes tried (dashed: budgets)")
    return _png(fig)


def table_rows(result: SearchResult) -> list[list[str]]:
    """The Pareto table's cells, trial by trial (one column per knob, then every measure): what the console, the
    JSON and the HTML page show."""
    knobs = list(result.rows[0].recipe) if result.rows else []
    out = []
    for r in result.rows:
        figures = [f"{r.values[k]:.2f}" if r.values else "" for k in MEASURES]
        if r.same_as is not None:
            verdict = f"same recipe as {r.same_as}"
        elif r.error:
            verdict = f"failed: {r.error}"
        else:
            verdict = ("chosen" if result.chosen and r.number == result.chosen.number else
                       "Pareto" if r.pareto else "meets budgets" if r.feasible else
                       "misses " + ", ".join(r.violations))
        tag = f"{r.number}" + (" default" if r.number == result.default else "")
        out.append([tag, *(str(r.recipe.get(k, "")) for k in knobs), *figures, f"{r.seconds:.0f}", verdict])
    return out


def columns(result: SearchResult) -> list[str]:
    knobs = list(result.rows[0].recipe) if result.rows else []
    return ["trial", *knobs, *(f"{k} {m.unit}" for k, m in MEASURES.items()), "build s", "verdict"]


def write_html(result: SearchResult) -> Path:
    plot = _plot(result)
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                    for row in table_rows(result))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns(result))
    chosen = (f"<p>Chosen: trial {result.chosen.number}; recipe in <code>{html.escape(str(result.recipe_file))}"
              "</code>.</p>" if result.chosen else "<p><b>No recipe meets every budget.</b></p>")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>mobilekit search</title><style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:80em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}}</style></head><body>
<h1>Recipe search: {html.escape(str(result.out))}</h1>
<p>Drops are points of {html.escape(result.metric)} from the original float model ({result.reference:.2f}), each
trial's worst shipped model. Budgets: {html.escape(', '.join(f'{k} {v:g}' for k, v in result.budgets.items())
                                                   or 'none')}; the parity gate is a budget too.</p>{chosen}
{f'<img alt="Pareto plot" src="{plot}">' if plot else ''}
<table><tr>{head}</tr>{cells}</table></body></html>"""
    path = result.out / "search.html"
    path.write_text(page, encoding="utf-8")
    return path
