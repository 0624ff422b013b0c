"""PNG plot of robust accuracy against epsilon, one curve per report.

Matplotlib is imported only when :func:`plot_robustness` runs, and the figure
is drawn on an Agg canvas without pyplot, so no global backend is changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gradmod.robustness.report import RobustnessReport

__all__ = ["plot_robustness"]


def _curve(item: Any) -> tuple[list[float], list[float], str | None]:
    """Return (eps, accuracy, norm) from a report, a report dict or an {eps: accuracy} mapping."""
    if isinstance(item, RobustnessReport):
        item = item.to_dict()
    if isinstance(item, Mapping) and "per_eps" in item:
        rows = sorted(item["per_eps"], key=lambda row: row["eps"])
        return [row["eps"] for row in rows], [row["robust_accuracy"] for row in rows], item.get("norm")
    if isinstance(item, Mapping) and item and all(isinstance(key, (int, float)) for key in item):
        eps = sorted(item)
        return [float(e) for e in eps], [float(item[e]) for e in eps], None
    raise TypeError(
        "each curve must be a RobustnessReport, a dict from RobustnessReport.to_dict(), "
        f"or a non-empty {{eps: accuracy}} mapping; got {type(item).__name__}"
    )


def _labelled_curves(report_or_dicts: Any) -> list[tuple[str, Any]]:
    if isinstance(report_or_dicts, RobustnessReport):
        return [("robust accuracy", report_or_dicts)]
    if isinstance(report_or_dicts, Mapping):
        if report_or_dicts and all(isinstance(key, str) for key in report_or_dicts) and "per_eps" not in report_or_dicts:
            return list(report_or_dicts.items())
        return [("robust accuracy", report_or_dicts)]
    if isinstance(report_or_dicts, Sequence) and not isinstance(report_or_dicts, str):
        return [(f"run {index}", item) for index, item in enumerate(report_or_dicts)]
    raise TypeError(f"report_or_dicts must be a report, a mapping or a list, got {type(report_or_dicts).__name__}")


def plot_robustness(report_or_dicts: Any, path: str | Path, title: str | None = None) -> Path:
    """Write a PNG of robust accuracy against eps to ``path`` and return the path.

    ``report_or_dicts`` is a :class:`RobustnessReport`, a dict from its
    ``to_dict()``, an ``{eps: accuracy}`` mapping as returned by
    :func:`gradmod.robustness.robust_accuracy`, a ``{label: any of these}``
    mapping for several labelled curves, or a list of them.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curves = _labelled_curves(report_or_dicts)
    if not curves:
        raise ValueError("report_or_dicts must contain at least one curve, got none")

    figure = Figure(figsize=(5.0, 3.6))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    norms = set()
    for label, item in curves:
        eps, accuracy, norm = _curve(item)
        norms.add(norm)
        axes.plot(eps, accuracy, marker="o", label=label)
    norm_names = {"linf": "L-inf", "l2": "L2"}
    norm_text = " / ".join(sorted(norm_names.get(n, n) for n in norms if n)) or "norm not recorded"
    axes.set_xlabel(f"epsilon ({norm_text}, [0, 1] pixel units)")
    axes.set_ylabel("robust accuracy")
    axes.set_ylim(-0.02, 1.02)
    axes.grid(alpha=0.3)
    if title:
        axes.set_title(title)
    if len(curves) > 1:
        axes.legend()
    figure.tight_layout()

    path = Path(path)
    figure.savefig(path, format="png", dpi=120)
    return path
