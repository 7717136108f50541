"""The report's figures, from plain numbers: overlaid loss curves and decision maps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402

_NN_STYLE = {"color": "#1f77b4", "linewidth": 4, "alpha": 0.45, "label": "nnlite"}
_TH_STYLE = {"color": "#d62728", "linewidth": 1.3, "linestyle": "--", "label": "torch.nn"}
_RADIUS = 1 / math.sqrt(2 * math.pi)


def loss_curves(
    labels: Sequence[str],
    nn_curves: Sequence[Sequence[float]],
    th_curves: Sequence[Sequence[float]],
    path: Path,
    *,
    title: str,
) -> None:
    """One panel per configuration: the training loss per epoch in both frameworks.

    nnlite is drawn as a wide pale line and torch.nn as a thin dashed line on top, so identical
    curves show as a dashed line inside a band.
    """
    columns = min(4, len(labels))
    rows = math.ceil(len(labels) / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.6 * columns, 2.8 * rows + 0.4), squeeze=False, sharex=True
    )
    for ax, label, nn, th in zip(axes.flat, labels, nn_curves, th_curves, strict=False):
        epochs = range(1, len(nn) + 1)
        ax.plot(epochs, nn, **_NN_STYLE)
        ax.plot(epochs, th, **_TH_STYLE)
        diff = max((abs(a - b) for a, b in zip(nn, th, strict=True)), default=0.0)
        ax.set_title(f"{label}\nmax |Δ loss| = {diff:.3g}", fontsize=9)
        if all(value > 0 for value in (*nn, *th)):
            ax.set_yscale("log")
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(labels) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("epoch", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("mean training loss", fontsize=9)
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper right", ncol=2, fontsize=9)
    fig.suptitle(title, fontsize=11, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.97 if rows > 1 else 0.9))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def decision_map(nn_map: Tensor, th_map: Tensor, path: Path, *, label: str) -> None:
    """Both trained networks' probability of "inside" over the unit square, true circle drawn.

    ``nn_map`` and ``th_map`` are square grids, row 0 at the bottom (``x2`` near 0). The third
    panel shows where the two maps differ (white everywhere when they agree exactly).
    """
    difference = (nn_map.double() - th_map.double()).abs()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
    extent = (0.0, 1.0, 0.0, 1.0)
    for ax, grid, name in zip(axes, (nn_map, th_map), ("nnlite", "torch.nn"), strict=False):
        image = ax.imshow(
            grid.double().numpy(), origin="lower", extent=extent, cmap="RdBu_r", vmin=0, vmax=1
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
