"""The report's int8 sections: what selective precision tried and chose, the per-op CPU profile of each TFLite
artifact, and the accuracy / latency / size trade-off as one plot. Data comes from the manifest and parity report;
nothing here measures."""

from __future__ import annotations

from typing import Any

from mobilekit.parity.run import ParityReport

Section = tuple[str, list[str], list[list[Any]]]


def selective_section(quantization: dict[str, Any]) -> Section | None:
    """Each shortlisted op: the debugger's error, its measured gain alone in float, and whether it was kept."""
    sel = quantization.get("selective")
    if not sel or not sel.get("ranked"):
        return None
    chosen = {o["tensor"] for o in sel["float_ops"]}
    rows = [[r["op"], r["tensor"], f"{r['rmse_steps']:.2f}", f"{r['gain']:+.2f}",
             "float" if r["tensor"] in chosen else "int8"] for r in sel["ranked"]]
    iv = sel.get("int8_drop_interval")
    noise = f", 90% interval {iv[0]:+.2f} to {iv[1]:+.2f}" if iv else ""
    title = (f"Selective precision: {sel['metric']} on the calibration images, float {sel['float']:.2f}, full-int8 "
             f"{sel['int8']:.2f} (drop {sel['int8_drop']:.2f}{noise}, bar {sel['max_drop']:g})")
    return title, ["op", "output tensor", "debugger RMSE (int8 steps)", "gain alone in float", "precision"], rows


def profile_section(profiles: dict[str, dict[str, Any]]) -> Section | None:
    """Per TFLite artifact: whole-model and summed per-op time, the time outside XNNPACK, the slowest op kinds."""
    if not profiles:
        return None
    rows = []
    for kind, p in sorted(profiles.items()):
        outside = ", ".join(f"{r['op']} ({r['dtype']}) x{r['count']} {r['ms']:.3f} ms" for r in p["outside_xnnpack"])
        slow = ", ".join(f"{r['op']} ({r['dtype']}) x{r['count']} {r['ms']:.3f} ms" for r in p["slowest"][:3])
        rows.append([kind, p["ops"], f"{p['whole_ms']:.3f} ms", f"{p['sum_ms']:.3f} ms",
                     outside or "none", slow])
    return ("CPU time per op (LiteRT, one thread, each op timed alone)",
            ["artifact", "ops", "whole model", "sum of ops", "outside XNNPACK", "slowest op kinds"], rows)


def _drop(parity: ParityReport, kind: str) -> float | None:
    res = parity.artifacts.get(kind, {}).get("resolvers", {}).get("xnnpack")
    if res is None:
        return None
    if "map50_95_drop" in res:
        return float(res["map50_95_drop"])
    if "top1_agreement" in res:
        return 100.0 * (1.0 - float(res["top1_agreement"]))
    return None


def tradeoff_plot(parity: ParityReport, sizes: dict[str, int], latency: dict[str, float], plt: Any) -> Any | None:
    """Each TFLite artifact at (CPU latency, metric drop), its marker's area its file size: the choice in one view."""
    kinds = [k for k in sorted(latency) if k.startswith("tflite") and k in sizes and _drop(parity, k) is not None]
    if len(kinds) < 2:
        return None
    detection = parity.map50_float is not None
    fig, ax = plt.subplots(figsize=(6, 3.4))
    biggest = max(sizes[k] for k in kinds)
    for i, k in enumerate(kinds):
        x, y = latency[k], _drop(parity, k)
        ax.scatter([x], [y], s=60 + 900 * sizes[k] / biggest, alpha=0.6)
        up = i % 2 == 0  # labels alternate above and below, so close points stay readable
        ax.annotate(f"{k}\n{sizes[k] / 1e3:.0f} kB", (x, y), fontsize=7, ha="center",
                    va="bottom" if up else "top", xytext=(0, 14 if up else -14), textcoords="offset points")
    ax.axhline(0, color="#999", lw=0.6)
    ax.set_xlabel("CPU latency, ms (LiteRT XNNPACK)")
    ax.set_ylabel("mAP@0.5:0.95 drop (points)" if detection else "top-1 disagreement with float (%)")
    ax.set_title("accuracy / latency / size (marker area: file size)")
    ax.margins(0.25)
    return fig
