"""``mobilekit search``: the recipe space, budgets and Pareto front, and real searches run as a user runs them.

The searches here are the real command in its own process (``python -m mobilekit search CONFIG --json``), every
trial a real build of the fixture detector (pruning with distillation, TFLite, Core ML, parity, latency). What they
check does not depend on how well the fixture learned: budgets are either out of reach or always met, and the
parity bars are loose enough to pass whatever the weights (the gate is a constraint of the search).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import detector_config, write_config

from mobilekit.config_file import parse_config
from mobilekit.errors import EXIT_NO_RECIPE, ConfigError
from mobilekit.process import RUN_PREFIX
from mobilekit.search.knobs import apply_recipe, default_recipe, parse_space
from mobilekit.search.results import choose, mark_pareto
from mobilekit.search.study import Row, plain, rebase, trial_data

LOOSE_GATE = {"images": 16, "min_cosine": 0.0, "min_snr_db": -100.0, "min_detection_recall": 0.0,
              "min_detection_precision": 0.0, "max_map50_drop": 100.0}


def _config(yolo_model: Path, shapes_dataset: Path, cache: Path, search: dict[str, Any]) -> dict[str, Any]:
    cfg = detector_config(yolo_model, shapes_dataset, cache / "labels.txt",
                          evaluation={"images": str(shapes_dataset), "format": "yolo", "count": 16},
                          compression={"distill": {"epochs": 1}})
    cfg["calibration"]["count"] = 16
    cfg["parity"] = dict(LOOSE_GATE)
    cfg["search"] = search
    return cfg


def _search(config: Path, out: Path, *args: str, tmpdir: Path | None = None, wait: bool = True) -> Any:
    cmd = [sys.executable, "-m", "mobilekit", "search", str(config), "--out", str(out), "--json", *args]
    env = {**os.environ, **({"TMPDIR": str(tmpdir)} if tmpdir else {})}
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1, (res.stdout, res.stderr[-3000:])
    return res.returncode, json.loads(lines[0]), res.stderr


def _fail(key: str, message: str, fix: str) -> Any:
    raise ConfigError(f"{key}: {message}", fix=fix)


def test_search_section_errors_are_one_line_with_the_fix(tmp_path):
    base = {"model": "m.keras", "calibration": {"images": "imgs"}}
    cases = {
        "search.space.prune_rato: unknown knob (did you mean 'prune_ratio'?)": {"space": {"prune_rato": [0.5]}},
        "search.space.prune_ratio: a range needs exactly low, high and step": {"space": {"prune_ratio": {"low": 0}}},
        "search.space.palettize_bits: 5 must be 2, 4, 6, 8 or 16": {"space": {"palettize_bits": [4, 5]}},
        "search.space.qat: expected true or false, got int 1": {"space": {"qat": [1]}},
        "search.space.input_size: [320] is not [height, width]": {"space": {"input_size": [[320]]}},
        "search.budgets.max_size: unknown budget": {"space": {"qat": [True]}, "budgets": {"max_size": 3}},
        "search.prefer: 'cpu_ms' is not among the objectives": {"space": {"qat": [True]}, "objectives": ["drop"],
                                                                 "prefer": "cpu_ms"},
        "search.space: is empty": {"space": {}},
        "search.space.coreml_recipe: 'palettise4' is no Core ML recipe": {"space": {"coreml_recipe": ["palettise4"]}},
        "search.space.coreml_recipe: and palettize_bits both choose": {"space": {"coreml_recipe": ["palettize4"],
                                                                                "palettize_bits": [4]}},
    }
    for expected, search in cases.items():
        with pytest.raises(ConfigError) as e:
            parse_config({**base, "search": search}, tmp_path / "mobilekit.yaml")
        assert expected in e.value.one_line() and "Fix:" in e.value.one_line(), e.value.one_line()
    pinned = {**base, "coreml": {"deployment_target": "iOS16", "compression": ["linear8"]}}
    for space, expected in (({"coreml_recipe": ["palettize4_grouped"]}, "cannot run on coreml.deployment_target iOS16"),
                            ({"palettize_bits": [4]}, "ships the Core ML recipe linear8")):
        with pytest.raises(ConfigError, match=expected):
            parse_config({**pinned, "search": {"space": space}}, tmp_path / "mobilekit.yaml")


def test_knobs_write_the_recipe_into_the_users_yaml(tmp_path):
    """A range expands to its steps; the config as written is the default recipe; a recipe written into the YAML
    mapping parses back to exactly that recipe; a trial's file has absolute paths and the gate measured, not
    enforced."""
    assert parse_space({"prune_ratio": {"low": 0.0, "high": 0.6, "step": 0.2}}, _fail) == {
        "prune_ratio": [0.0, 0.2, 0.4, 0.6]}
    data = {"model": "m.keras", "calibration": {"images": "imgs"}, "coreml": {"compression": ["palettize6"]},
            "compression": {"prune": {"ratio": 0.3, "criterion": "l1"}},
            "search": {"space": {"prune_ratio": [0, 0.5], "qat": [False, True], "palettize_bits": [4, 16],
                                 "max_float_ops": [0, 4], "calibration": ["minmax"]},
                       "budgets": {"max_drop": 0.7}}}
    cfg = parse_config(data, tmp_path / "mobilekit.yaml")
    space = parse_space(cfg.search.space, _fail)
    assert default_recipe(cfg, space) == {"prune_ratio": 0.3, "qat": False, "palettize_bits": 6,
                                          "max_float_ops": 0, "calibration": "mse"}
    for recipe in ({"prune_ratio": 0.5, "qat": True, "palettize_bits": 4, "max_float_ops": 4, "calibration": "minmax"},
                   {"prune_ratio": 0.0, "qat": False, "palettize_bits": 16, "max_float_ops": 0, "calibration": "mse"}):
        written = trial_data(data, cfg, recipe)
        back = parse_config(written, tmp_path / "trial" / "mobilekit.yaml")
        assert default_recipe(back, space) == recipe
        assert written["model"] == str(tmp_path / "m.keras") and "search" not in written
        assert written["parity"]["enforce"] is False
    shared = {"images": "imgs"}  # a YAML anchor: one mapping under two keys, rebased once
    aliased = plain({"model": "m.keras", "calibration": shared, "evaluation": shared})
    rebase(aliased, tmp_path / "project", tmp_path / "out")
    assert aliased["calibration"]["images"] == aliased["evaluation"]["images"] == "../project/imgs"
    sizes = parse_space({"input_size": [[256, 320], "320x320", "model"]}, _fail)["input_size"]
    assert sizes == ["256x320", "320x320", "model"]
    assert trial_data(data, cfg, {"input_size": "256x320"})["input"]["size"] == [256, 320]
    assert trial_data({**data, "input": {"size": [96, 96]}}, cfg, {"input_size": "model"})["input"] == {}
    kept = {**data}
    apply_recipe(kept, {"prune_ratio": 0.5}, cfg)
    assert kept["compression"]["prune"] == {"ratio": 0.5, "criterion": "l1"}  # the user's other prune settings stay
    # the iOS model a recipe is measured by is the one its Swift package ships: the recipe replaces every variant
    two = {**data, "coreml": {"compression": ["linear8", "palettize6"]}, "search": {"space": {"coreml_recipe": [
        "palettize4_grouped", "fp16"]}}}
    cfg2 = parse_config(two, tmp_path / "mobilekit.yaml")
    assert default_recipe(cfg2, parse_space(cfg2.search.space, _fail, cfg2)) == {"coreml_recipe": "linear8"}
    assert trial_data(two, cfg2, {"coreml_recipe": "palettize4_grouped"})["coreml"]["compression"] == [
        "palettize4_grouped"]
    assert trial_data(two, cfg2, {"coreml_recipe": "fp16"})["coreml"]["compression"] == []
    mixed = trial_data(data, cfg, {"max_float_ops": 4})
    assert mixed["quantization"] == {"max_float_ops": 4, "max_drop": 0.7}  # selective aims at the search's budget


def test_the_front_holds_only_feasible_undominated_recipes():
    def row(n: int, drop: float, kb: float, feasible: bool = True, same_as: int | None = None) -> Row:
        return Row(n, {}, {"drop": drop, "int8_kb": kb}, True, feasible=feasible, same_as=same_as)

    rows = [row(0, 0.1, 900, feasible=False), row(1, 0.5, 400), row(2, 0.3, 500), row(3, 0.6, 450),
            row(4, 0.3, 500, same_as=2), row(5, 1.5, 300)]
    mark_pareto(rows, ["drop", "int8_kb"])
    assert [r.number for r in rows if r.pareto] == [1, 2, 5]  # 3 is dominated by 1; 0 misses a budget
    assert choose(rows, ["drop", "int8_kb"], "drop").number == 2
    assert choose(rows, ["drop", "int8_kb"], "int8_kb").number == 5
    # two recipes measuring the same: the one that changes fewer knobs of the config as written is chosen
    same = [Row(7, {"a": 1, "b": 1}, {"drop": 0.2}, True, pareto=True), Row(8, {"a": 1, "b": 0}, {"drop": 0.2}, True,
                                                                             pareto=True)]
    assert choose(same, ["drop"], "drop", {"a": 0, "b": 0}).number == 8


@pytest.mark.slow
def test_search_finds_the_front_writes_a_ready_recipe_and_resumes(tmp_path, yolo_model, shapes_dataset, cache):
    """Two knobs, four recipes, three trials on two local workers: the reference build, then the config as written,
    then NSGA-II. Every trial is a bundle; the chosen recipe is a YAML that `mobilekit build` takes as it is; the
    same command with more trials resumes the study (nothing already built is built again)."""
    search = {"space": {"prune_ratio": [0, 0.5], "palettize_bits": [6, 8]},
              "budgets": {"max_drop": 1000.0}, "objectives": ["drop", "int8_kb", "coreml_kb"], "trials": 3}
    config = write_config(tmp_path / "project", _config(yolo_model, shapes_dataset, cache, search))
    out = tmp_path / "search"
    code, res, err = _search(config, out, "--workers", "2")
    assert code == 0 and res["ok"], err[-3000:]
    trials = res["trials"]
    built = [t for t in trials if not t[-1].startswith("same recipe")]
    assert len(built) == 3 and trials[0][0] == "0 default" and trials[0][1:3] == ["0.0", "6"]
    assert res["metric"] == "mAP@0.5:0.95" and 0 <= res["reference"] <= 100
    assert sum(t[-1] == "chosen" for t in trials) == 1
    for t in built:
        assert (out / "trials" / f"{int(t[0].split()[0]):04d}" / "bundle" / "manifest.json").is_file()
    recipe = Path(res["recipe"])
    chosen = next(t for t in trials if t[-1] == "chosen")
    text = recipe.read_text()
    assert text.startswith("# Written by `mobilekit search") and "search" not in yaml.safe_load(text)
    assert (out / "search.html").read_text().count("<tr>") == len(trials) + 1
    build = subprocess.run([sys.executable, "-m", "mobilekit", "build", str(recipe), "--out", str(tmp_path / "rel"),
                            "--json"], capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stderr[-3000:]
    manifest = json.loads(build.stdout)["manifest"]
    assert ("compression" in manifest and manifest["compression"] is not None) == (chosen[1] == "0.5")
    assert manifest["coreml"]["variants"] == ["coreml-fp16", f"coreml-palettize{chosen[2]}"]
    stamp = (out / "reference" / "build.log").stat().st_mtime
    code, res2, err = _search(config, out, "--trials", "4")
    assert code == 0, err[-3000:]
    assert (out / "reference" / "build.log").stat().st_mtime == stamp
    again = [t for t in res2["trials"] if not t[-1].startswith("same recipe")]
    assert len(again) == 4 and {tuple(t[1:3]) for t in again} == {("0.0", "6"), ("0.0", "8"), ("0.5", "6"),
                                                                  ("0.5", "8")}


@pytest.mark.slow
def test_search_interrupted_resumes_and_says_when_no_recipe_meets_the_budget(tmp_path, yolo_model, shapes_dataset,
                                                                            cache):
    """SIGTERM during a trial: exit 130 with one JSON line, no half-written bundle, no temporary files; the same
    command resumes (the reference is not built again, the interrupted recipe is) and, no recipe meeting an
    impossible size budget, ends in exit 8 with one line."""
    search = {"space": {"palettize_bits": [6, 8]}, "budgets": {"max_int8_kb": 0.001}, "trials": 1}
    config = write_config(tmp_path / "project", _config(yolo_model, shapes_dataset, cache, search))
    out, tmpdir = tmp_path / "search", tmp_path / "tmp"
    tmpdir.mkdir()
    proc = _search(config, out, tmpdir=tmpdir, wait=False)
    deadline = time.monotonic() + 900
    while not (out / "trials" / "0000" / "build.log").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.5)
    time.sleep(8)  # inside the trial's build
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-3000:]
    assert json.loads(stdout.strip())["exit_code"] == 130 and "interrupted" in stderr.strip().splitlines()[-1]
    assert not (out / "trials" / "0000" / "bundle").exists()
    assert not [p for p in tmpdir.iterdir() if p.name.startswith(RUN_PREFIX)]
    stamp = (out / "reference" / "build.log").stat().st_mtime
    code, res, err = _search(config, out, tmpdir=tmpdir)
    assert code == EXIT_NO_RECIPE and not res["ok"] and res["exit_code"] == EXIT_NO_RECIPE
    assert "none of the 1 recipes built meets every budget (max_int8_kb 0.001)" in res["error"]
    assert err.strip().splitlines()[-1].startswith("error:")
    assert (out / "reference" / "build.log").stat().st_mtime == stamp
    assert yaml.safe_load((out / "trials" / "0001" / "mobilekit.yaml").read_text())["coreml"]["compression"] == [
        "palettize6"]  # the interrupted trial, the config as written, asked again
    assert (out / "search.html").is_file() and not (out / "mobilekit.yaml").exists()


@pytest.mark.slow
def test_search_trials_run_as_ray_tasks(tmp_path, yolo_model, shapes_dataset, cache, ray_cluster):
    """The same search with its builds as Ray tasks on a real local cluster (``ray start --head``)."""
    search = {"space": {"palettize_bits": [8]}, "budgets": {"max_drop": 1000.0}, "trials": 1}
    config = write_config(tmp_path / "project", _config(yolo_model, shapes_dataset, cache, search))
    code, res, err = _search(config, tmp_path / "search", "--ray", ray_cluster)
    assert code == 0 and res["ok"], err[-3000:]
    assert [t[-1] for t in res["trials"]] == ["chosen"]
    assert (tmp_path / "search" / "trials" / "0000" / "bundle" / "manifest.json").is_file()
