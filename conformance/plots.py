"""The report's figures: overlaid loss curves and the trained network's decision map."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from conformance.harness import SideBySide, predict  # noqa: E402

if TYPE_CHECKING:
    from conformance.report import RowResult

_NN_STYLE = {"color": "#1f77b4", "linewidth": 4, "alpha": 0.45, "label": "nnlite"}
_TH_STYLE = {"color": "#d62728", "linewidth": 1.3, "linestyle": "--", "label": "torch.nn"}
_RADIUS = 1 / math.sqrt(2 * math.pi)


def loss_curves(results: Sequence[RowResult], path: Path, *, title: str) -> None:
    """One panel per configuration: the first run's training loss per epoch in both frameworks.

    nnlite is drawn as a wide pale line and torch.nn as a thin dashed line on top, so identical
    curves show as a dashed line inside a band.
    """
    columns = min(4, len(results))
    rows = math.ceil(len(results) / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.6 * columns, 2.8 * rows), squeeze=False, sharex=True
    )
    for ax, result in zip(axes.flat, results, strict=False):
        nn, th = result.nn_loss_curves[0], result.th_loss_curves[0]
        epochs = range(1, len(nn) + 1)
        ax.plot(epochs, nn, **_NN_STYLE)
        ax.plot(epochs, th, **_TH_STYLE)
        diff = max((abs(a - b) for a, b in zip(nn, th, strict=True)), default=0.0)
        ax.set_title(f"{result.row.label}\nmax |Δ loss| = {diff:.3g}", fontsize=9)
        ax.set_yscale("log")
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(results) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("epoch", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("mean training loss", fontsize=9)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", ncol=2, fontsize=9)
    fig.suptitle(title, fontsize=11, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def decision_map(twins: SideBySide, path: Path, *, label: str, resolution: int = 200) -> None:
    """Both trained networks' probability of "inside" over the unit square, true circle drawn.

    The third panel shows where the two maps differ (white everywhere when they agree exactly).
    """
    ticks = (torch.arange(resolution, dtype=torch.float64) + 0.5) / resolution
    ys, xs = torch.meshgrid(ticks, ticks, indexing="ij")
    points = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1).to(twins.config.dtype)
    inputs = twins.data.prepare(points)
    maps = [
        _inside_probability(twins.config.loss, predict(side, inputs)).reshape(
            resolution, resolution
        )
        for side in (twins.nn, twins.th)
    ]
    difference = (maps[0].double() - maps[1].double()).abs()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
    extent = (0.0, 1.0, 0.0, 1.0)
    for ax, grid, name in zip(axes, maps, ("nnlite", "torch.nn"), strict=False):
        image = ax.imshow(
            grid.numpy(), origin="lower", extent=extent, cmap="RdBu_r", vmin=0, vmax=1
        )
        ax.set_title(f"{name}: P(inside)", fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.046)
    largest = float(difference.max())
    image = axes[2].imshow(
        difference.numpy(),
        origin="lower",
        extent=extent,
        cmap="Greys",
        vmin=0,
        vmax=max(largest, 1e-12),
    )
    axes[2].set_title(f"|nnlite - torch.nn|, max {largest:.3g}", fontsize=10)
    fig.colorbar(image, ax=axes[2], fraction=0.046)
    for ax in axes:
        circle = plt.Circle((0.5, 0.5), _RADIUS, fill=False, color="black", linewidth=1.5)
        ax.add_patch(circle)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel("x₁", fontsize=9)
        ax.set_ylabel("x₂", fontsize=9)
    fig.suptitle(f"Decision map after training ({label}); black circle: true boundary", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _inside_probability(loss: str, output: torch.Tensor) -> torch.Tensor:
    # CE: softmax's class-1 probability; BCE: the sigmoid output; MSE: the class-1 output
    # (one-hot or 0/1 target), clipped to [0, 1] for display.
    output = output.detach().double()
    if loss == "ce":
        return output.softmax(dim=1)[:, 1]
    column = output[:, 1] if output.shape[1] > 1 else output[:, 0]
    return column.clamp(0, 1)
