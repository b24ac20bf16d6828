"""report.html: one self-contained page from a deploy report.json.

Plots are drawn with matplotlib's Agg backend and embedded as base64 PNG data
URIs; the page has no scripts, no external style sheets, fonts or links, so it
opens from disk in any browser without a network.
"""

from __future__ import annotations

import base64
import io
import os

import jinja2

from ..core.fileio import write_text_atomic
from ..core.resources import TEMPLATES_DIR

TEMPLATE = "report.html.j2"
# Colours of the memory plot, one per kind of content.
_COLOURS = {"code": "#4c72b0", "weights": "#dd8452", "other constants": "#937860", "arena": "#55a868",
            "other data": "#8172b3", "stack": "#c44e52"}


def write_report_html(report: dict, path: str | os.PathLike) -> None:
    write_text_atomic(path, render_report_html(report))


def render_report_html(report: dict) -> str:
    plots = {
        "layer_error": _plot_layer_error(report["op_table"]),
        "latency": _plot_latency(report["op_table"], report["run"]["latency"]["unit"]),
        "memory": _plot_memory(report),
        "confusion": _plot_confusion(report["confusion_matrix"]) if report.get("confusion_matrix") else None,
    }
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v: "-" if v is None else f"{100 * v:.2f} %"
    env.filters["num"] = lambda v: "-" if v is None else f"{v:,.0f}"
    env.filters["size"] = _size
    return env.get_template(TEMPLATE).render(r=report, s=report["summary"], plots=plots)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.2f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n} B"


def _figure(width: float, height: float, rows: int = 1):
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display; also safe in threads and CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(rows, 1, figsize=(width, height), dpi=100)
    return plt, fig, ax


def _png(plt, fig) -> str:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _op_labels(rows: list[dict]) -> list[str]:
    return [f"{row['index']} {row['op']}" for row in rows]


def _plot_layer_error(rows: list[dict]) -> str | None:
    rows = [row for row in rows if row["rmse_over_scale"] is not None]
    if not rows:
        return None  # the float and quantized graphs did not line up op by op
    plt, fig, ax = _figure(8, 0.9 + 0.32 * len(rows))
    labels = _op_labels(rows)
    values = [row["rmse_over_scale"] for row in rows]
    ax.barh(range(len(rows)), values, color="#4c72b0")
    ax.set_yticks(range(len(rows)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("RMSE of the op output vs float, in quantization steps (output scale)")
    ax.set_title("Per-layer quantization error")
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.3f}", va="center", fontsize=8)
    ax.margins(x=0.15)
    return _png(plt, fig)


def _plot_latency(rows: list[dict], unit: str) -> str | None:
    rows = [row for row in rows if row["latency_mean"] is not None]
    if not rows:
        return None
    plt, fig, ax = _figure(8, 0.9 + 0.32 * len(rows))
    values = [row["latency_mean"] for row in rows]
    ax.barh(range(len(rows)), values, color="#55a868")
    ax.set_yticks(range(len(rows)), _op_labels(rows))
    ax.invert_yaxis()
    ax.set_xlabel(f"mean {unit} per inference")
    ax.xaxis.set_major_formatter(lambda v, _pos: f"{v:,.0f}")
    ax.set_title("Latency per operator (on the device)")
    for i, row in enumerate(rows):
        ax.text(row["latency_mean"], i, f" {row['latency_mean']:,.0f} ({100 * row['latency_share']:.1f}%)",
                va="center", fontsize=8)
    ax.margins(x=0.25)
    return _png(plt, fig)


def memory_parts(report: dict) -> dict[str, list[tuple[str, int]]]:
    """Flash and RAM split into what the plot shows; the parts add up to the build's totals."""
    b = report["build"]
    weights = min(report["generate"]["weights_bytes"], b["rodata_bytes"])
    other_bss = max(b["bss_bytes"] - b["arena_bytes"], 0)
    return {
        "flash": [("code", b["text_bytes"]), ("weights", weights),
                  ("other constants", b["rodata_bytes"] - weights + b["data_bytes"])],
        "RAM": [("arena", b["arena_bytes"]), ("other data", b["data_bytes"] + other_bss),
                ("stack", b["stack_bytes"])],
    }


def _plot_memory(report: dict) -> str:
    b = report["build"]
    parts = memory_parts(report)
    capacity = {"flash": b["flash_capacity"], "RAM": b["ram_capacity"]}
    plt, fig, axes = _figure(8, 3.4, rows=2)
    for ax, (memory, items) in zip(axes, parts.items()):
        used = sum(size for _, size in items)
        cap = capacity[memory]
        left = 0
        for label, size in items:
            ax.barh([0], [size / 1024], left=left / 1024, color=_COLOURS[label], label=f"{label} {_size(size)}")
            left += size
        title = f"{memory}: {_size(used)}"
        if cap:
            title += f" of {_size(cap)} ({100 * used / cap:.1f}%)"
            if used >= 0.1 * cap:
                ax.axvline(cap / 1024, color="black", linestyle="--")
                ax.set_xlim(0, cap / 1024 * 1.05)
            else:  # a capacity line 10x further out would squash the bars to nothing
                ax.set_xlim(0, used / 1024 * 1.15)
                title += "; capacity off scale"
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_yticks([])
        ax.set_xlabel("KiB")
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return _png(plt, fig)


def _plot_confusion(confusion: dict) -> str:
    import numpy as np

    matrix = np.asarray(confusion["matrix"])
    n = len(matrix)
    plt, fig, ax = _figure(min(2 + 0.5 * n, 9), min(1.6 + 0.5 * n, 8.5))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel(confusion["columns"])
    ax.set_ylabel(confusion["rows"])
    ax.set_title("Confusion matrix (device)")
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if matrix[i, j] > threshold else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return _png(plt, fig)
