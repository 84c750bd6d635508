"""``report/index.html``: one self-contained page a release reviewer reads (plots embedded as PNG data URIs).

Summary and parity tables, per-output error histograms (each converted artifact against the float model), the
per-layer int8 drift, size and latency bars, and real evaluation images with float and int8 detections drawn.
The numbers behind every figure are in ``report/parity.json``.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from mobilekit.contract import Contract
from mobilekit.kinds import Kind
from mobilekit.parity.decode import summary as decode_summary
from mobilekit.parity.run import ParityReport, Samples
from mobilekit.postprocess import Detections
from mobilekit.report import quantization as q

COLORS = {"float": "#2a9d8f", Kind.TFLITE_INT8: "#e76f51", Kind.TFLITE_FP16: "#8d99ae", Kind.TFLITE_FLOAT32: "#264653"}


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "svg.hashsalt": "mobilekit"})
    return plt


def histogram_data(errors: dict[str, dict[str, np.ndarray]], bins: int = 41) -> dict[str, Any]:
    """Per role, shared bin edges and each artifact's counts of (converted - float)."""
    out: dict[str, Any] = {}
    roles = sorted({r for per in errors.values() for r in per})
    for role in roles:
        values = [e[role] for e in errors.values() if role in e and e[role].size]
        if not values:
            continue
        lim = float(max(np.percentile(np.abs(v), 99.9) for v in values)) or 1e-6
        edges = np.linspace(-lim, lim, bins + 1)
        out[role] = {"edges": edges.tolist(), "counts": {
            kind: np.histogram(np.clip(e[role], -lim, lim), edges)[0].tolist() for kind, e in errors.items()
            if role in e}}
    return out


def _histograms(hist: dict[str, Any]) -> str | None:
    if not hist:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(hist), figsize=(4.2 * len(hist), 3), squeeze=False)
    for ax, (role, h) in zip(axes[0], sorted(hist.items()), strict=True):
        edges = np.asarray(h["edges"])
        centers = (edges[:-1] + edges[1:]) / 2
        for kind, counts in sorted(h["counts"].items()):
            ax.step(centers, np.maximum(np.asarray(counts), 0.5), where="mid", label=kind,
                    color=COLORS.get(kind))
        ax.set_yscale("log")
        ax.set_title(f"{role}: converted − float")
        ax.set_xlabel("error")
        ax.legend(fontsize=7)
    return _png(fig)


def _drift(drift: dict[str, Any], floats: set[str] = frozenset()) -> str | None:
    """The debugger's per-layer error; ``floats``: the op outputs selective precision left in float (blue)."""
    layers = drift.get("layers") or []
    if not layers:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(layers)), 3.2))
    steps = [la["rmse_steps"] for la in layers]
    colors = ["#457b9d" if la["tensor"] in floats else "#e76f51" if s > drift.get("bar_steps", 1.0) else "#2a9d8f"
              for la, s in zip(layers, steps, strict=True)]
    ax.bar(range(len(layers)), steps, color=colors)
    ax.axhline(drift.get("bar_steps", 1.0), color="#333", lw=0.8, ls="--")
    ax.set_xticks(range(len(layers)), [la["tensor"].split("/")[-2] if "/" in la["tensor"] else la["tensor"]
                                       for la in layers], rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("RMSE in int8 steps")
    ax.set_title("int8 error per layer (TFLite quantization debugger), graph order"
                 + ("; blue: left in float by selective precision" if floats else ""))
    return _png(fig)


def _bars(sizes: dict[str, int], latency: dict[str, float]) -> str:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 2.8))
    ks = sorted(sizes)
    a.barh(ks, [sizes[k] / 1e3 for k in ks], color="#457b9d")
    a.set_xlabel("size (kB)")
    a.set_title("artifact size")
    kl = sorted(latency)
    b.barh(kl, [latency[k] for k in kl], color="#e9c46a")
    b.set_xlabel("ms / image, LiteRT CPU")
    b.set_title("latency")
    fig.tight_layout()
    return _png(fig)


def _overlays(canvases: list[np.ndarray], reference: list[Any], converted: list[Any], contract: Contract,
              plans: list[Any], kind: str) -> str | None:
    if not canvases:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(canvases), figsize=(3 * len(canvases), 3.2), squeeze=False)
    for ax, canvas, ref, got, plan in zip(axes[0], canvases, reference, converted, plans, strict=True):
        ax.imshow(canvas)
        ax.set_axis_off()
        if isinstance(ref, Detections):
            for dets, color, ls in ((ref, COLORS["float"], "-"), (got, COLORS[Kind.TFLITE_INT8], "--")):
                boxes = plan.to_input(dets.boxes) if len(dets) else np.zeros((0, 4))
                for (x1, y1, x2, y2), c in zip(boxes, dets.classes, strict=True):
                    ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=color, ls=ls, lw=1.2))
                    ax.text(x1, y1, contract.labels[int(c)], color=color, fontsize=6, va="bottom")
            ax.set_title(f"float {len(ref)} / {kind} {len(got)}", fontsize=8)
        else:
            ax.set_title(f"float: {contract.labels[ref]}\n{kind}: {contract.labels[got]}", fontsize=8)
    return _png(fig)


def _environment() -> Any:
    import jinja2

    from mobilekit.codegen.render import TEMPLATES

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES / "report")), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True)


def _compression(manifest: dict[str, Any]) -> dict[str, Any] | None:
    if not manifest.get("compression"):
        return None
    rows = manifest["compression"]["stages"]
    name = rows[0]["metric_name"]
    return {"headers": ["stage", "params", "MACs", "int8 size", "int8 latency", f"{name} float", f"{name} int8"],
            "rows": [[r["stage"], f"{r['params']:,}", f"{r['macs'] / 1e6:.1f} M", f"{r['int8_bytes'] / 1e3:.1f} kB",
                      f"{r['latency_ms']:.2f} ms", f"{r['metric_float']:.2f}", f"{r['metric_int8']:.2f}"]
                     for r in rows]}


def _map_rows(parity: ParityReport) -> list[list[Any]]:
    """Summary rows: mAP@0.5 and COCO mAP@0.5:0.95 of the float model and of each artifact on the evaluation images,
    and a warning when those images are calibration images (figures that are not held out)."""
    rows: list[list[Any]] = []
    if parity.map50_float is not None:
        rows.append(["mAP @0.5 / @0.5:0.95, float", f"{parity.map50_float:.1f} / {parity.map50_95_float:.1f}"])
        for kind, art in parity.artifacts.items():
            for resolver, res in art["resolvers"].items():
                if "map50" in res:
                    iv = res.get("map50_95_drop_interval")
                    noise = (f" (drop {res['map50_95_drop']:+.2f}, 90% interval {iv[0]:+.2f} to {iv[1]:+.2f})"
                             if iv else "")
                    rows.append([f"mAP, {kind} ({resolver})", f"{res['map50']:.1f} / {res['map50_95']:.1f}{noise}"])
    if parity.top1_float is not None:
        rows.append(["top-1 accuracy, float", f"{parity.top1_float:.2f}%"])
        for kind, art in parity.artifacts.items():
            for resolver, res in art["resolvers"].items():
                if "top1" in res:
                    rows.append([f"top-1 accuracy, {kind} ({resolver})", f"{res['top1']:.2f}%"])
    if parity.evaluation_overlap:
        o = parity.evaluation_overlap
        rows.append(["not held out", f"{o['images']} of {o['of']} evaluation images are calibration images"])
    return rows


def _memory(mem: dict[str, Any] | None) -> str:
    """A TFLite artifact's peak run-time memory per kernel set (a fresh process each); for Core ML, the weight
    bytes, and that run-time memory on a device is not measured."""
    if not mem:
        return ""
    if "weight_bytes" in mem:
        return f"weights {mem['weight_bytes'] / 1e6:.1f} MB; {mem['note']}"
    return ", ".join(f"{k} {v['peak_bytes'] / 1e6:.1f} MB" if "peak_bytes" in v else f"{k}: {v.get('error')}"
                     for k, v in mem.get("kernels", {}).items())


def render(contract: Contract, manifest: dict[str, Any], parity: ParityReport, samples: Samples,
           canvases: list[np.ndarray], plans: list[Any]) -> str:
    """The page (``templates/report/index.html.j2``, autoescaped); the first ``canvases`` (with their letterbox
    ``plans``) get the reference and int8 predictions of ``samples`` drawn on them."""
    sizes = {a["path"].split("/")[-1]: a["size"] for a in manifest["artifacts"]
             if a["kind"].startswith(("tflite", "coreml"))}
    latency = manifest.get("latency_ms") or {}
    checks = parity.checks
    quant = manifest.get("quantization") or {}
    floats = {o["tensor"] for o in (quant.get("selective") or {}).get("float_ops", [])}
    by_kind = {a["kind"]: a["size"] for a in manifest["artifacts"]}
    tradeoff = q.tradeoff_plot(parity, by_kind, latency, _plt())
    figures = [
        ("Error of each converted model against the float model", _histograms(parity.histograms)),
        ("Where int8 drifts: per-layer error", _drift(parity.drift, floats)),
        ("Accuracy, latency and size of each TFLite artifact", _png(tradeoff) if tradeoff is not None else None),
        ("Size and latency", _bars(sizes, latency) if sizes else None),
        ("Evaluation images: float (solid) and int8 (dashed)",
         _overlays(canvases, samples.reference, samples.converted, contract, plans, "int8")),
    ]
    drift = parity.drift
    summary = [["model", contract.name], ["task", f"{contract.task} ({contract.head.format} head)"],
               ["input", f"{contract.input.width}×{contract.input.height} {contract.input.color}, "
                         f"{contract.input.resize}"],
               ["classes", len(contract.labels)],
               ["parity", "passed" if all(c["passed"] for c in checks) else "FAILED"],
               ["images", parity.images],
               *_map_rows(parity),
               *([["decode", decode_summary(manifest["decode"])]] if "decode" in manifest and
                 contract.task == "detection" else []),
               ["int8 drift starts at", drift.get("drift_start") or "no layer above the bar"],
               ["mobilekit", manifest.get("mobilekit")]]
    mem = {v["path"]: v for v in (manifest.get("memory") or {}).values()}
    artifacts = [[a["path"], a["kind"], f"{a['size'] / 1e3:.1f} kB",
                  f"{latency[a['kind']]:.2f} ms" if a["kind"] in latency else "", _memory(mem.get(a["path"]))]
                 for a in manifest["artifacts"] if a["kind"].startswith(("tflite", "coreml"))]
    check_rows = [[c["artifact"], c["resolver"], c["metric"], f"{c['value']:.4f}",
                   (">= " if c["at_least"] else "<= ") + f"{c['bar']:g}", {"passed": c["passed"]}]
                  for c in checks]
    return _environment().get_template("index.html.j2").render(
        name=contract.name, summary=summary, artifacts=artifacts, checks=check_rows,
        compression=_compression(manifest), figures=figures,
        sections=[x for x in (q.selective_section(quant), q.profile_section(manifest.get("op_profile") or {}))
                  if x is not None])
