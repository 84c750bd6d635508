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


def test_no_import_cycle_among_module_level_imports():
    modules = _modules()
    deps: dict[str, set[str]] = {}
    for name, tree in modules.items():
        found = set()
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mobilekit"):
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("mobilekit")}
        # a package's own submodules are not a cycle through it
        deps[name] = {d for d in found if d in modules and d != name and not d.startswith(name + ".")}
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


def test_the_build_reads_as_its_stages():
    from mobilekit.pipeline import STAGES

    assert [s.name for s in STAGES] == ["load", "decode", "compress", "calibration", "xnnpack-rewrite",
                                        "int8-weights", "tflite-int8", "tflite-int8-mixed", "tflite-int8-qat",
                                        "tflite-fp16",
                                        "tflite-float32", "delegates", "coreml", "parity", "drift", "fp16-watch",
                                        "latency", "memory", "gate", "bundle"]
