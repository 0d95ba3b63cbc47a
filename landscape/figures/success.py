"""The latching experiment's figures: success frequency and mean final validation accuracy
against sequence length, per task (matplotlib, and the plotly page)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from matplotlib.figure import Figure
from plotly.subplots import make_subplots

__all__ = ["draw_success", "plot_success", "success_page"]


def draw_success(ax, summary: dict, task: str, *, title: str | None = None) -> None:
    """One task's curves on ``ax``: success frequency (solid) and mean final validation accuracy
    with its standard deviation (dashed, error bars), one colour per cell."""
    for (t, cell), s in summary.items():
        if t != task:
            continue
        (line,) = ax.plot(s.lengths, s.success, "o-", ms=3, label=f"{cell}: success")
        ax.errorbar(
            s.lengths,
            s.mean_acc,
            yerr=s.std_acc,
            fmt="--",
            color=line.get_color(),
            capsize=2,
            lw=1,
            alpha=0.7,
            label=f"{cell}: mean val. acc. +- std",
        )
    ax.set_title(task if title is None else title, fontsize="medium")
    ax.set_xlabel("sequence length T")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(True, alpha=0.3)


def plot_success(summary: dict, *, title: str = "") -> Figure:
    """Per task: success frequency (solid) and mean final validation accuracy +- std (band)."""
    tasks = list(dict.fromkeys(t for t, _ in summary))
    fig = Figure(figsize=(4.2 * len(tasks) + 0.4, 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(tasks), sharey=True))
    for ax, task in zip(axes, tasks, strict=True):
        draw_success(ax, summary, task)
    axes[0].set_ylabel("frequency of success / accuracy")
    axes[-1].legend(fontsize="x-small", loc="lower left")
    if title:
        fig.suptitle(title, fontsize="medium")
    return fig


def success_page(summary: dict, *, title: str = "") -> go.Figure:
    tasks = list(dict.fromkeys(t for t, _ in summary))
    fig = make_subplots(rows=1, cols=len(tasks), subplot_titles=tasks, shared_yaxes=True)
    for (task, cell), s in summary.items():
        col = tasks.index(task) + 1
        fig.add_trace(
            go.Scatter(
                x=s.lengths,
                y=s.success,
                mode="lines+markers",
                name=f"{task} {cell}: success",
                legendgroup=cell,
            ),
            row=1,
            col=col,
        )
        fig.add_trace(
            go.Scatter(
                x=s.lengths,
                y=s.mean_acc,
                mode="lines",
                line=dict(dash="dash"),
                error_y=dict(type="data", array=s.std_acc),
                legendgroup=cell,
                name=f"{task} {cell}: mean val. acc.",
            ),
            row=1,
            col=col,
        )
    fig.update_layout(title=dict(text=title), yaxis_title="frequency of success / accuracy")
    fig.update_xaxes(title_text="sequence length T")
    return fig
