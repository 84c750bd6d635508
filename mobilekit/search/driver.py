"""Driving a search: the study's trials run to the requested count (resuming a stopped search), then the results.

Above :mod:`~mobilekit.search.study` (the Optuna study and its trials) and :mod:`~mobilekit.search.results` (what
is made of them), so neither imports the other's way back.
"""

from __future__ import annotations

from typing import Any

from mobilekit.errors import ConfigError
from mobilekit.search.knobs import default_recipe, parse_space, with_default
from mobilekit.search.results import summarize
from mobilekit.search.study import (
    RunState,
    Search,
    SearchResult,
    enqueue,
    finished_trials,
    interrupted,
    optuna_module,
    resume,
    run_trials,
)
from mobilekit.search.trials import LocalTrials, RayTrials


def run_search(search: Search) -> SearchResult:
    """Run the search to ``search.trials`` built trials (resuming a stopped one); the Pareto front and the recipe."""
    optuna = optuna_module()

    def fail(key: str, message: str, fix: str) -> Any:
        raise ConfigError(f"{key}: {message}", path=search.config, fix=fix)

    space = parse_space(search.settings.space, fail)
    default = default_recipe(search.cfg, space)
    space = with_default(space, default)
    dists = {n: optuna.distributions.CategoricalDistribution(v) for n, v in space.items()}
    lock = _lock(search)
    try:
        study = search.study(optuna, space)
        resume(study, optuna)
        runner = RayTrials(search.ray, search.workers) if search.ray else LocalTrials(search.workers)
        run = RunState()
        try:
            name, reference = search.reference(study, runner)
            if not any(t.params == default for t in finished_trials(study, optuna)):
                enqueue(study, optuna, default)  # the config as written, first (again, if it was interrupted)
            search.on_event("resumed", {"built": sum("same_as" not in t.user_attrs
                                                     for t in finished_trials(study, optuna))})
            run_trials(search, study, optuna, dists, runner, reference, run)
        except KeyboardInterrupt:
            interrupted(study, optuna, run, runner.stop())
            raise
        finally:
            runner.close()
        return summarize(search, study, optuna, name, reference, default)
    finally:
        lock.close()


def _lock(search: Search) -> Any:
    """One search per folder at a time: a second one would take the first one's running trials for stale ones."""
    import fcntl

    search.out.mkdir(parents=True, exist_ok=True)
    handle = (search.out / ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(f"another mobilekit search is running in {search.out}", path=search.config,
                          fix="wait for it, or search into another --out folder") from None
    return handle
