"""The shape of the code, kept by tests: small functions, no import cycle, the build as a list of stages."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mobilekit"


def _modules() -> dict[str, ast.Module]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(p.read_text())
    return out


def test_no_function_is_longer_than_60_lines():
    long = [(name, n.name, n.end_lineno - n.lineno + 1) for name, tree in _modules().items() for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 60]
    assert not long, long


def test_no_import_cycle_counting_every_import():
    """Function-level and TYPE_CHECKING imports count: an import hidden in a function is still a dependency (the
    supervisor, the worker and the CLI once formed a 15-module knot that way)."""
    modules = _modules()
    deps: dict[str, set[str]] = {}
    for name, tree in modules.items():
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mobilekit"):
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("mobilekit")}
        # a package importing its own submodules counts too: they must not import the package back
        deps[name] = {d for d in found if d in modules and d != name}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(deps[m]):
            if state.get(d) == 1:
                cycles.append([*path[path.index(d):], d] if d in path else [m, d])
            elif d not in state:
                visit(d, [*path, d])
        state[m] = 2

    for m in sorted(modules):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


#: The layers, lowest first; a module may import its own layer and those below, never above (function-level and
#: TYPE_CHECKING imports included). The longest matching prefix places a module. CONTRIBUTING.md explains them.
CORE, PLUGINS, STAGES, ORCHESTRATION = 0, 1, 2, 3
LAYERS = {
    # core: errors, registries, process helpers, the contract's types, the config schema, image data
    "mobilekit": CORE, "mobilekit.errors": CORE, "mobilekit.registry": CORE, "mobilekit.process": CORE,
    "mobilekit.kinds": CORE, "mobilekit.contract": CORE, "mobilekit.config": CORE, "mobilekit.data": CORE,
    # plugins: heads, decoder references, Core ML recipes, calibration methods, search knobs and measures, the
    # Core ML emulator's ops and their registries; each registers itself (and its config section's check)
    "mobilekit.heads": PLUGINS, "mobilekit.references": PLUGINS, "mobilekit.export.coreml_compress": PLUGINS,
    "mobilekit.quantize.ranges": PLUGINS, "mobilekit.search.knobs": PLUGINS, "mobilekit.search.measures": PLUGINS,
    **{f"mobilekit.emulate.coreml.{m}": PLUGINS for m in ("registry", "graph", "ops_constexpr", "ops_elementwise",
                                                          "ops_nn", "ops_resize", "ops_scan", "ops_tensor",
                                                          "ops_twins")},
    # stages: what the build does, each reading the contract and its own config section
    **{f"mobilekit.{m}": STAGES for m in ("derive", "postprocess", "export", "quantize", "parity", "compress",
                                          "models", "bundle", "codegen", "report", "emulate", "run")},
    # orchestration and interface
    **{f"mobilekit.{m}": ORCHESTRATION for m in ("config_file", "pipeline", "supervise", "worker", "search", "cli",
                                                 "__main__", "predict", "doctor", "example", "models.guess")},
}


def _layer(module: str) -> int:
    matches = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    return LAYERS[max(matches, key=len)]


def test_no_module_imports_a_layer_above_its_own():
    modules = _modules()
    wrong = set()
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mobilekit"):
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            wrong |= {(name, t) for t in targets if t in modules and name != "mobilekit" and _layer(t) > _layer(name)}
    assert not wrong, sorted(wrong)


def test_the_build_reads_as_its_stages():
    from mobilekit.pipeline import STAGES

    assert [s.name for s in STAGES] == ["load", "decode", "compress", "calibration", "xnnpack-rewrite",
                                        "int8-weights", "tflite-int8", "tflite-int8-mixed", "tflite-int8-qat",
                                        "tflite-fp16",
                                        "tflite-float32", "delegates", "coreml", "parity", "drift", "fp16-watch",
                                        "latency", "memory", "gate", "bundle"]


def test_the_head_surface_is_called_not_probed():
    """Every head has the whole plugin surface (heads.base.Head's defaults say "not needed"), so code outside heads/
    calls it; probing a head for a method hides a head that forgot one."""
    import re

    probes = [(name, m.group(0)) for name, tree in _modules().items() if not name.startswith("mobilekit.heads")
              for m in re.finditer(r"(hasattr|getattr)\((head|impl|HEADS\[\w+\])\b[^)]*\)", ast.unparse(tree))]
    assert not probes, probes


#: BuildState methods, as the fields they read and write; and the plumbing every stage may use (callbacks, temp dir)
_METHODS = {"add": ((), ("contract",)), "name": (("contract",), ()),
            "calibration_inputs": (("calibration", "contract"), ())}
_PLUMBING = {"step", "progress", "staging"}


def _state_access(funcs: dict[str, ast.FunctionDef], fn: str, seen: set[str]) -> tuple[set[str], set[str]]:
    """The BuildState fields ``fn`` (and the pipeline functions it hands ``st`` to) reads and writes: ``st.x =``,
    ``st.x[k] = `` and ``st.x.append(...)`` write ``x``; any other ``st.x`` reads it."""
    reads: set[str] = set()
    writes: set[str] = set()
    if fn in seen or fn not in funcs:
        return reads, writes
    seen.add(fn)

    def field(node: ast.AST) -> str | None:
        while isinstance(node, ast.Subscript):
            node = node.value
        ok = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "st"
        return node.attr if ok else None

    for n in ast.walk(funcs[fn]):
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "st":
            r, w = _METHODS.get(n.attr, ((), ()))
            reads |= set(r)
            writes |= set(w)
            if n.attr not in _METHODS:
                (writes if isinstance(n.ctx, ast.Store) else reads).add(n.attr)
        elif isinstance(n, (ast.Assign, ast.AugAssign)):
            writes |= {f for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                       if isinstance(t, ast.Subscript) and (f := field(t))}
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in (
                "append", "extend", "update", "setdefault", "pop", "clear", "insert", "remove"):
            writes |= {f for f in [field(n.func.value)] if f}
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and any(
                isinstance(a, ast.Name) and a.id == "st" for a in n.args):
            r, w = _state_access(funcs, n.func.id, seen)
            reads |= r
            writes |= w
    return reads - _PLUMBING, writes - _PLUMBING


def test_each_stage_declares_what_it_reads_and_writes():
    """A stage's ``reads`` / ``writes`` cover every BuildState field its code touches, and it writes nothing it does
    not declare: the STAGES table is the build's data flow. (Writes inside a field, st.contract.identity = ..., are
    declared by hand: the check sees the field, not what is inside it.)"""
    from mobilekit import pipeline

    funcs = {n.name: n for n in ast.parse(Path(pipeline.__file__).read_text()).body
             if isinstance(n, ast.FunctionDef)}
    fields = set(pipeline.BuildState.__dataclass_fields__)
    for stage in pipeline.STAGES:
        reads, writes = _state_access(funcs, stage.run.__name__, set())
        declared_r, declared_w = set(stage.reads.split()), set(stage.writes.split())
        assert (declared_r | declared_w) <= fields, (stage.name, (declared_r | declared_w) - fields)
        assert writes <= declared_w, (stage.name, "writes undeclared", writes - declared_w)
        assert reads - writes <= declared_r | declared_w, (stage.name, "reads undeclared", reads - declared_r)
        assert declared_r <= reads, (stage.name, "declares reads it does not do", declared_r - reads)


def test_no_code_outside_heads_branches_on_a_head_name():
    """A head's specifics live in its module: code elsewhere asks the head (its surface), never compares a head
    name, so adding a head never means editing a branch elsewhere."""
    from mobilekit.heads import HEADS

    names = set(HEADS)

    def named(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in names
        return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(named(e) for e in node.elts)

    # the example trains a fixture of each head form: naming them is its job
    outside = {n: t for n, t in _modules().items() if not n.startswith(("mobilekit.heads", "mobilekit.example"))}
    branches = [(name, ast.unparse(node)) for name, tree in outside.items() for node in ast.walk(tree)
                if isinstance(node, ast.Compare) and any(named(c) for c in [node.left, *node.comparators])]
    assert not branches, branches


def test_the_cli_process_stays_free_of_tensorflow():
    """The build runs in a worker; the CLI's process only unpickles its result and prints tables. Whatever that
    touches must not import TensorFlow (about 8 s on every command): the CLI, the result's classes, what the tables
    name ops with."""
    import subprocess
    import sys

    code = ("import sys, mobilekit.cli, mobilekit.bundle.result, mobilekit.emulate.profile; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'tf_keras', 'mobilekit.pipeline') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
