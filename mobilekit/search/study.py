"""The recipe search: an Optuna study whose every trial is a real build (:mod:`mobilekit.search.trials`).

The study lives in ``DIR/study.db`` (SQLite), so a search that was stopped resumes where it was by running the same
command: finished trials are kept, trials that were running are tried again. It is tied to the config it searched
(a digest of everything but ``search.trials``, ``search.prefer`` and ``search.seed``): another config in the same
folder is an error rather than a mixed study. The sampler is NSGA-II with the budgets as constraints (each
``max_<measure>`` and the build's own parity gate): infeasible trials still inform the search, feasible ones win.

Order of work: the reference build (the original model: no compression, no Core ML; its float task metric is what
every drop is counted from), then the config as written (the default recipe), then what the sampler asks for. A
recipe tried before is not built again: its trial takes the earlier trial's figures (``same_as``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mobilekit.config import Config, SearchSettings
from mobilekit.errors import ConfigError, MobilekitError
from mobilekit.search.knobs import apply_recipe, holder
from mobilekit.search.measures import Outcome, measured, task_metric
from mobilekit.search.trials import TrialSpec

STUDY = "mobilekit-search"
#: config keys that hold paths, rebased when a trial's config is written into its own folder
PATH_KEYS = ("model", "labels", "calibration.images", "calibration.annotations", "evaluation.images",
             "evaluation.annotations", "compression.distill.images.images", "compression.distill.images.annotations")
#: consecutive recipes the sampler asks for that were all tried before, after which the space counts as exhausted
MAX_REPEATS = 64


@dataclass
class Row:
    """One trial as the Pareto table shows it."""

    number: int
    recipe: dict[str, Any]
    values: dict[str, float] = field(default_factory=dict)  # every measure, when it built
    passed_gate: bool = False
    error: str | None = None
    seconds: float = 0.0
    same_as: int | None = None
    feasible: bool = False
    pareto: bool = False
    violations: list[str] = field(default_factory=list)  # which budgets it misses


@dataclass
class SearchResult:
    out: Path
    metric: str  # the task metric's name
    reference: float  # the original float model's task metric on the evaluation images
    objectives: list[str]
    budgets: dict[str, float]
    rows: list[Row]
    default: int | None  # the trial of the config as written
    chosen: Row | None
    recipe_file: Path | None
    html: Path | None = None


def optuna_module() -> Any:
    try:
        import optuna
    except ImportError as e:
        raise ConfigError("mobilekit search needs Optuna, which is not installed",
                          fix="pip install 'mobilekit[search]'") from e
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def rebase(data: dict[str, Any], base: Path, to: Path | None) -> None:
    """Paths in ``data`` (relative to ``base``, the user's config folder) made absolute, or relative to ``to``
    when both sit under one top-level folder: the file works where it is written."""
    for key in PATH_KEYS:
        node, last = holder(data, key)
        if node is None or not isinstance(node.get(last), str):
            continue
        p = Path(node[last]).expanduser()
        p = p if p.is_absolute() else (base / p).resolve()
        same_root = to is not None and Path(os.path.commonpath([p, to.resolve()])) != Path(p.anchor)
        node[last] = os.path.relpath(p, to.resolve()) if same_root else str(p)


def plain(data: dict[str, Any]) -> dict[str, Any]:
    """A copy with no shared parts: YAML anchors (``evaluation: *calibration``) would otherwise be rebased twice."""
    return json.loads(json.dumps(data, default=str))


def trial_data(data: dict[str, Any], cfg: Config, recipe: dict[str, Any]) -> dict[str, Any]:
    """A trial's config: the user's, without ``search`` and ``output``, with the recipe written in, and the parity
    gate measured but not enforced (the search enforces it as a constraint, so a failing recipe is still measured)."""
    out = plain(data)
    out.pop("search", None)
    out.pop("output", None)
    apply_recipe(out, recipe, cfg)
    out.setdefault("parity", {})["enforce"] = False
    rebase(out, cfg.base_dir, None)
    return out


def reference_data(data: dict[str, Any], cfg: Config) -> dict[str, Any]:
    """The reference build: the original model, no compression, no selective precision, no Core ML or fp16."""
    out = trial_data(data, cfg, {})
    out.pop("compression", None)
    if isinstance(out.get("quantization"), dict):
        for key in ("max_drop", "qat_on_demand"):
            out["quantization"].pop(key, None)
    out["coreml"] = {**(out.get("coreml") or {}), "enabled": False, "compression": []}
    out["export"] = {**(out.get("export") or {}), "fp16": False, "float32": False}
    return out


def signature(data: dict[str, Any], cfg: Config) -> str:
    """What ties a study to its config and model: the config but the knobs that only say how long or which to pick,
    and the model file's digest (a model retrained under the same name is another study)."""
    from mobilekit.models.loader import file_sha256

    kept = {**data, "search": {k: v for k, v in (data.get("search") or {}).items()
                               if k not in ("trials", "prefer", "seed")}}
    model = cfg.resolve(cfg.model)
    kept["model sha256"] = file_sha256(model) if model.exists() else None
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Search:
    """One search run: the config, where it writes, how it runs trials, and whom it tells."""

    config: Path
    cfg: Config
    data: dict[str, Any]
    out: Path
    trials: int
    workers: int = 1
    ray: str | None = None
    on_event: Callable[[str, dict[str, Any]], None] = lambda kind, info: None

    @property
    def settings(self) -> SearchSettings:
        assert self.cfg.search is not None
        return self.cfg.search

    def spec(self, number: int, data: dict[str, Any], name: str | None = None) -> TrialSpec:
        folder = self.out / (name or f"trials/{number:04d}")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "mobilekit.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return TrialSpec(number, folder, self.cfg.base_dir, tuple(self.cfg.imports))

    def study(self, optuna: Any, space: dict[str, list[Any]]) -> Any:
        s = self.settings
        self.out.mkdir(parents=True, exist_ok=True)
        storage = optuna.storages.RDBStorage(f"sqlite:///{(self.out / 'study.db').resolve()}")
        study = optuna.create_study(study_name=STUDY, storage=storage, load_if_exists=True,
                                     directions=["minimize"] * len(s.objectives))
        sig = signature(self.data, self.cfg)
        found = study.user_attrs.get("signature")
        if found is None:
            study.set_user_attr("signature", sig)
            study.set_user_attr("space", space)
            study.set_user_attr("population", max(4, min(20, self.trials // 2)))  # fixed for the study's life
        elif found != sig:
            raise ConfigError(f"{self.out} holds a search of another config or model (or another search space, "
                              "budgets or objectives)", path=self.config,
                              fix="search into a new --out folder, or remove that folder to start over")
        # a resumed run draws new proposals (the same seed would replay the previous run's) in the same generations
        study.sampler = optuna.samplers.NSGAIISampler(
            population_size=study.user_attrs["population"], seed=s.seed + len(study.get_trials(deepcopy=False)),
            constraints_func=lambda t: t.user_attrs.get("constraints", [1.0] * (len(s.budgets) + 1)))
        return study

    def reference(self, study: Any, runner: Any) -> tuple[str, float]:
        """The original float model's task metric on the evaluation images (built once, kept in the study)."""
        if ref := study.user_attrs.get("reference"):
            return ref["metric"], ref["value"]
        self.on_event("reference", {})
        runner.submit(self.spec(-1, reference_data(self.data, self.cfg), "reference"))
        _, outcome = runner.wait()
        if not outcome.ok:
            raise _Failed(f"the reference build (the original model, no compression) failed: {outcome.error}",
                          outcome.exit_code)
        metric = task_metric(outcome.parity)
        if metric is None:
            raise ConfigError("the search counts each recipe's accuracy against labels, but the evaluation images "
                              "have none", path=self.config,
                              fix="set evaluation: to a labelled set (YOLO or COCO labels, or class folders)")
        key, name = metric
        value = float(outcome.parity[f"{key}_float"])
        study.set_user_attr("reference", {"metric": name, "value": value, "images": outcome.parity["images"]})
        return name, value


class _Failed(MobilekitError):
    """A build the search depends on failed: its own exit code and line."""

    def __init__(self, line: str, exit_code: int) -> None:
        super().__init__(line)
        self.exit_code = exit_code


def finished_trials(study: Any, optuna: Any) -> list[Any]:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return [t for t in study.get_trials(deepcopy=False, states=states) if not t.user_attrs.get("interrupted")]


def enqueue(study: Any, optuna: Any, params: dict[str, Any]) -> None:
    """Ask ``params`` next, unless a trial already waits with them (Optuna's ``skip_if_exists`` also matches
    finished trials, so an interrupted recipe would never be asked again)."""
    waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    if not any(t.system_attrs.get("fixed_params") == params for t in waiting):
        study.enqueue_trial(params)


def resume(study: Any, optuna: Any) -> None:
    """Trials a stopped search left running are marked interrupted and asked again."""
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        enqueue(study, optuna, t.params)


def _constraints(values: dict[str, float], passed: bool, budgets: dict[str, float]) -> tuple[list[float], list[str]]:
    """Optuna's constraint values (<= 0 is met), one per budget then the parity gate; and the budgets missed."""
    cons, missed = [], []
    for key, bound in budgets.items():
        excess = values[key.removeprefix("max_")] - bound
        cons.append(excess)
        if excess > 0:
            missed.append(key)
    cons.append(0.0 if passed else 1.0)
    if not passed:
        missed.append("parity gate")
    return cons, missed


def tell(search: Search, study: Any, optuna: Any, trial: Any, outcome: Outcome, reference: float) -> Row:
    """Record a finished trial in the study: its measures, constraints and error."""
    s = search.settings
    recipe = dict(trial.params)
    row = Row(trial.number, recipe, seconds=outcome.seconds, error=outcome.error)
    trial.set_user_attr("seconds", outcome.seconds)
    values: dict[str, float] = {}
    if outcome.ok:
        try:
            values = measured(outcome, reference)
        except (KeyError, ValueError, RuntimeError, StopIteration) as e:  # e.g. every kernel set of a model crashed
            row.error = f"its bundle cannot be measured ({e.__class__.__name__}: {e})"
        if any(not math.isfinite(v) for v in values.values()):
            row.error = "non-finite outputs: the metrics are not numbers"
    if row.error:
        trial.set_user_attr("error", row.error)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return row
    row.values, row.passed_gate = values, bool(outcome.manifest["parity"]["passed"])
    cons, row.violations = _constraints(values, row.passed_gate, s.budgets)
    trial.set_user_attr("measures", values)
    trial.set_user_attr("passed_gate", row.passed_gate)
    trial.set_user_attr("constraints", cons)
    trial.set_user_attr("violations", row.violations)
    study.tell(trial, [values[o] for o in s.objectives])
    return row


def _copy(study: Any, optuna: Any, trial: Any, earlier: Any) -> None:
    """A recipe tried before: this trial takes the earlier one's figures instead of building it again."""
    trial.set_user_attr("same_as", earlier.number)
    for key in ("measures", "passed_gate", "constraints", "violations", "error"):
        if key in earlier.user_attrs:
            trial.set_user_attr(key, earlier.user_attrs[key])
    if earlier.state == optuna.trial.TrialState.COMPLETE:
        study.tell(trial, earlier.values)
    else:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _key(params: dict[str, Any]) -> tuple:
    return tuple(sorted(params.items()))


@dataclass
class RunState:
    """The state of one run of the loop: trials building, and repeats of them waiting for their figures."""

    pending: dict[int, Any] = field(default_factory=dict)  # trial number -> Optuna trial
    waiting: dict[int, list[Any]] = field(default_factory=dict)  # building trial -> repeats of its recipe
    repeats: int = 0  # consecutive recipes asked that were tried before


def _ask(search: Search, study: Any, optuna: Any, dists: dict[str, Any], run: RunState, runner: Any,
         size: int) -> bool:
    """Start the next trial (or settle a repeat); False when there is nothing more to start."""
    finished = finished_trials(study, optuna)
    built = [t for t in finished if "same_as" not in t.user_attrs]
    tried = {_key(t.params) for t in built} | {_key(t.params) for t in run.pending.values()}
    if len(built) + len(run.pending) >= search.trials or len(tried) >= size or run.repeats >= MAX_REPEATS:
        return False
    trial = study.ask(dists)
    earlier = next((t for t in built if _key(t.params) == _key(trial.params)), None)
    building = next((n for n, t in run.pending.items() if _key(t.params) == _key(trial.params)), None)
    if earlier is not None or building is not None:
        run.repeats += 1
        if earlier is not None:
            _copy(study, optuna, trial, earlier)
        else:
            run.waiting.setdefault(building, []).append(trial)
        return True
    run.repeats = 0
    runner.submit(search.spec(trial.number, trial_data(search.data, search.cfg, trial.params)))
    run.pending[trial.number] = trial
    search.on_event("start", {"number": trial.number, "recipe": dict(trial.params)})
    return True


def run_trials(search: Search, study: Any, optuna: Any, dists: dict[str, Any], runner: Any, reference: float,
          run: RunState) -> None:
    size = math.prod(len(d.choices) for d in dists.values())
    while True:
        while runner.free() > 0 and _ask(search, study, optuna, dists, run, runner, size):
            pass
        if not run.pending:
            return
        number, outcome = runner.wait()
        run.repeats = 0  # a finished trial moves the sampler on: repeats so far do not say the space is spent
        trial = run.pending.pop(number)
        row = tell(search, study, optuna, trial, outcome, reference)
        search.on_event("done", {"row": row})
        for repeat in run.waiting.pop(number, []):
            _copy(study, optuna, repeat, study.get_trials(deepcopy=False)[trial.number])


def interrupted(study: Any, optuna: Any, run: RunState, numbers: list[int]) -> None:
    """Trials stopped by an interrupt: failed as interrupted, their recipes asked again when the search resumes."""
    for number in numbers:
        trial = run.pending.pop(number, None)
        if trial is None:
            continue
        trial.set_user_attr("interrupted", True)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        enqueue(study, optuna, trial.params)
    for repeats in run.waiting.values():
        for t in repeats:
            t.set_user_attr("interrupted", True)
            study.tell(t, state=optuna.trial.TrialState.FAIL)
