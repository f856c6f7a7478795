"""Bench rows -> a markdown table and a PNG plot of accuracy against tokens/s."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from unmask.bench.decode import BenchRow


def write_section(out_dir: Path | str, name: str, lines: list[str], rows: list[dict[str, Any]]) -> Path:
    """Write a benchmark's docs section, ``NAME.md`` (its markdown ``lines``), and its measurements,
    ``NAME.json`` (``{"rows": rows}``), under ``out_dir``; the path of the markdown file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    (out / f"{name}.json").write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    print(f"wrote {out / f'{name}.md'}", file=sys.stderr)
    return out / f"{name}.md"


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value * 100:+.1f}" if signed else f"{value:.1%}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def markdown_table(rows: list[BenchRow]) -> str:
    """One table per model: accuracy, delta vs reference (points), NFE, tokens/forward, tokens/s, ratios."""
    out: list[str] = []
    runs = list(dict.fromkeys((row.model, row.batch_size) for row in rows if row.policy != "ar"))
    for model, batch_size in runs:
        group = [r for r in rows if r.model == model and r.batch_size == batch_size]
        task = group[0].task
        group += [r for r in rows if r.policy == "ar" and r.task == task and r.batch_size == batch_size and r not in group]
        first = group[0]
        out.append(f"**{model}** on {task} (n={first.n}, batch {first.batch_size}, {first.threads} threads)\n")
        out.append("| decoder | cache | accuracy | Δ pts | NFE/example | tokens/forward | tokens/s | vs reference | vs AR |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for r in group:
            name = f"`{Path(r.model).name}` (AR)" if r.policy == "ar" else r.label.split(" +")[0]
            out.append(f"| {name} | {r.cache} | {_pct(r.accuracy)} | {_pct(r.accuracy_delta, signed=True)} | {r.nfe:.2f} | "
                       f"{r.tokens_per_forward:.2f} | {r.tokens_per_second:,.0f} | {_ratio(r.speedup_vs_reference)} | {_ratio(r.speedup_vs_ar)} |")
        out.append("")
    return "\n".join(out)


def plot(rows: list[BenchRow], path: Path) -> Path:
    """Accuracy (y) against tokens/s (x, log) for every row; one panel per model."""
    try:
        import matplotlib
    except ImportError:
        from unmask.sampling.params import ParamError

        raise ParamError("--plot needs matplotlib: pip install 'unmask[bench]' (or matplotlib)") from None

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    runs = list(dict.fromkeys((row.model, row.batch_size) for row in rows if row.policy != "ar"))
    figure, axes = plt.subplots(1, len(runs), figsize=(6.5 * len(runs), 4.8), squeeze=False)
    markers = {"none": "o", "prefix": "s", "dual": "D", "kv": "*"}
    colors = {"reference": "tab:red", "ar": "black", "fixed": "tab:brown", "threshold": "tab:blue", "factor": "tab:orange",
              "eb": "tab:green", "hierarchical": "tab:purple"}
    for axis, (model, batch_size) in zip(axes[0], runs):
        task = next(r.task for r in rows if r.model == model)
        group = [r for r in rows if r.batch_size == batch_size and (r.model == model or (r.policy == "ar" and r.task == task))]
        seen: set[str] = set()
        for r in group:
            if r.accuracy is None:
                continue
            name = "AR (KV cache)" if r.policy == "ar" else r.policy
            axis.scatter(r.tokens_per_second, r.accuracy * 100, marker=markers.get(r.cache, "o"), color=colors.get(r.policy, "grey"),
                         s=110 if r.policy in ("ar", "reference") else 36, alpha=0.85, label=None if name in seen else name)
            seen.add(name)
        axis.legend(fontsize=7, loc="best")
        axis.set_xscale("log")
        axis.set_xlabel(f"tokens/s ({group[0].threads} threads)")
        axis.set_ylabel("accuracy (%)")
        axis.set_title(f"{Path(model).name} ({task}), batch {batch_size}")
        axis.grid(True, alpha=0.3)
    figure.suptitle("accuracy vs speed (o no cache, ■ prefix, ◆ dual, ★ AR with KV cache)", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
