"""The seeds' experiments, reproduced in nnlite and torch.nn side by side: the table and pages."""

from __future__ import annotations

import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from conformance.harness import SideBySide, predict
from conformance.seeds import SEEDS, Row, Seed

MAP_RESOLUTION = 200
"""Points per side of the grid over the unit square that the decision maps are drawn on."""


@dataclass
class RowResult:
    """Both frameworks' results for one row over all runs, as plain numbers and arrays."""

    row: Row
    nn_test_accuracy: list[float] = field(default_factory=list)
    th_test_accuracy: list[float] = field(default_factory=list)
    nn_loss_curves: list[list[float]] = field(default_factory=list)
    th_loss_curves: list[list[float]] = field(default_factory=list)
    largest_difference: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    maps: tuple[Tensor, Tensor] | None = None
    """The first run's P(inside) over the unit square, (nnlite, torch.nn), after training."""

    @property
    def exact(self) -> bool:
        """Whether every compared quantity of every run was equal to the bit."""
        return all(diff == 0 for diff in self.largest_difference.values())

    @property
    def largest_accuracy_difference(self) -> float:
        """Largest ``|nnlite - torch.nn|`` test accuracy over the runs, in percentage points."""
        pairs = zip(self.nn_test_accuracy, self.th_test_accuracy, strict=True)
        return max((abs(a - b) for a, b in pairs), default=0.0)

    @property
    def within(self) -> bool | None:
        """Whether the published mean lies within nnlite's mean +- 2 standard deviations."""
        if self.row.published is None:
            return None
        mean, std = mean_std(self.nn_test_accuracy)
        return abs(self.row.published[0] - mean) <= 2 * std

    def to_json(self) -> dict[str, Any]:
        """The row as plain JSON data."""
        config = self.row.config
        published = self.row.published
        return {
            "seed": self.row.seed,
            "configuration": self.row.label,
            "config": {
                "id": config.id,
                "activation": config.activation,
                "loss": config.loss,
                "reduction": config.reduction,
                "optimizer": config.optimizer,
                "optimizer_options": dict(config.optimizer_options),
                "schedule": config.schedule,
                "schedule_options": dict(config.schedule_options),
                "dropout": config.dropout,
                "hidden": list(config.hidden),
                "outputs": config.out_features,
                "output_activation": config.output_activation,
                "batch_size": config.batch_size,
                "epochs": config.epochs,
                "train_size": config.train_size,
                "test_size": config.test_size,
                "standardize": config.standardize,
                "weight_init": config.weight_init,
                "negative_slope": config.negative_slope,
                "alpha": config.alpha,
                "sigmoid_slope": config.sigmoid_slope,
                "dtype": str(config.dtype).removeprefix("torch."),
            },
            "runs": len(self.nn_test_accuracy),
            "nnlite": _summary(self.nn_test_accuracy),
            "torch.nn": _summary(self.th_test_accuracy),
            "exact": self.exact,
            "largest_accuracy_difference": self.largest_accuracy_difference,
            "largest_difference": dict(sorted(self.largest_difference.items())),
            "published": None if published is None else {"mean": published[0], "std": published[1]},
            "published_within_2_std": self.within,
            "nnlite_test_accuracy": self.nn_test_accuracy,
            "torch_test_accuracy": self.th_test_accuracy,
            "seconds": round(self.seconds, 2),
        }


def rows_for(seeds: Sequence[Seed], epochs: int | None = None) -> list[Row]:
    """Every row of ``seeds``, with ``epochs`` in place of each seed's own when given."""
    rows = []
    for seed in seeds:
        for row in seed.rows:
            if epochs is not None:
                row = Row(**{**row.__dict__, "config": row.config.replace(epochs=epochs)})
            rows.append(row)
    return rows


def run_rows(
    rows: Sequence[Row],
    runs: int | Callable[[Row], int],
    progress: Callable[[str], None] | None = None,
) -> list[RowResult]:
    """Trains every row ``runs`` times (seeds 0, 1, ...) in both frameworks.

    ``runs`` is a number, or a function giving each row's. The frameworks are compared at every
    epoch as in the conformance suites, but differences are recorded instead of raised.
    """
    counts = [runs(row) if callable(runs) else runs for row in rows]
    total, done, started = sum(counts), 0, time.perf_counter()
    results = []
    for row, count in zip(rows, counts, strict=True):
        result = RowResult(row)
        row_started = time.perf_counter()
        for seed in range(count):
            twins = SideBySide(row.config.replace(seed=seed), check=False)
            history = twins.run()
            result.nn_test_accuracy.append(100 * history.nn_test_accuracy[-1])
            result.th_test_accuracy.append(100 * history.th_test_accuracy[-1])
            result.nn_loss_curves.append(history.nn_loss)
            result.th_loss_curves.append(history.th_loss)
            for kind, diff in history.largest_difference.items():
                result.largest_difference[kind] = max(result.largest_difference.get(kind, 0), diff)
            if seed == 0:
                result.maps = decision_maps(twins)
            done += 1
            if progress is not None:
                elapsed = time.perf_counter() - started
                left = elapsed / done * (total - done)
                progress(
                    f"[{done:>3}/{total}] seed {row.seed} {row.label}, run {seed + 1}/{count}: "
                    f"test accuracy nnlite {result.nn_test_accuracy[-1]:.1f}%, "
                    f"torch.nn {result.th_test_accuracy[-1]:.1f}% "
                    f"({elapsed:.0f}s elapsed, about {left:.0f}s left)"
                )
        result.seconds = time.perf_counter() - row_started
        results.append(result)
    return results


def decision_maps(twins: SideBySide, resolution: int = MAP_RESOLUTION) -> tuple[Tensor, Tensor]:
    """Both trained networks' P(inside) on a ``resolution`` x ``resolution`` grid of the square.

    Row ``i``, column ``j`` is the point ``((j + 0.5) / resolution, (i + 0.5) / resolution)``.
    """
    ticks = (torch.arange(resolution, dtype=torch.float64) + 0.5) / resolution
    ys, xs = torch.meshgrid(ticks, ticks, indexing="ij")
    points = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1).to(twins.config.dtype)
    inputs = twins.data.prepare(points)
    nn_map, th_map = (
        inside_probability(twins.config.loss, predict(side, inputs)).reshape(resolution, resolution)
        for side in (twins.nn, twins.th)
    )
    return nn_map, th_map


def inside_probability(loss: str, output: Tensor) -> Tensor:
    """The network's P(inside) from its raw output, in float64.

    CE: softmax's class-1 probability; BCE: the sigmoid output; MSE: the class-1 output
    (one-hot or 0/1 target), clipped to [0, 1].
    """
    output = output.detach().double()
    if loss == "ce":
        return output.softmax(dim=1)[:, 1]
    column = output[:, 1] if output.shape[1] > 1 else output[:, 0]
    return column.clamp(0, 1)


# ------------------------------------------------------------------------------------ the table
_HEADER = (
    "| Seed | Configuration | nnlite test acc. (%) | torch.nn test acc. (%) | exact "
    "| published (%) | published within nnlite's mean ± 2 std |\n"
    "|---|---|---|---|---|---|---|\n"
)


def markdown_table(results: Sequence[RowResult]) -> str:
    """The results as a Markdown table: nnlite, torch.nn, exact or not, published, within."""
    lines = [_HEADER.rstrip("\n")]
    for r in results:
        lines.append(
            f"| {r.row.seed} | {r.row.label} | {_pm(*mean_std(r.nn_test_accuracy))} "
            f"| {_pm(*mean_std(r.th_test_accuracy))} | {_exact(r)} | {_published(r.row)} "
            f"| {_within(r)} |"
        )
    return "\n".join(lines) + "\n"


_QUICK_CAVEAT = (
    "With --quick every row trains a few epochs instead of the report's own: set against the "
    "published numbers, only the full run (`python -m conformance`) means anything."
)


def _exact(result: RowResult) -> str:
    if result.exact:
        return "yes"
    kinds = ", ".join(
        f"{kind} {diff:.2g}" for kind, diff in sorted(result.largest_difference.items()) if diff
    )
    return f"no (largest \\|Δ\\|: {kinds})"


def _published(row: Row) -> str:
    if row.published is None:
        return row.claim or "—"
    mean, std = row.published
    return f"{mean:.1f} (one run)" if std is None else _pm(mean, std)


def _within(result: RowResult) -> str:
    within = result.within
    if within is None:
        return "—"
    return "yes" if within else "no, see below"


def explanations(results: Sequence[RowResult]) -> str:
    """The rows whose published number lies outside our mean +- 2 std, each group with its why.

    Consecutive rows that share a note are listed together, followed by the note once.
    """
    groups: list[tuple[str, list[str]]] = []
    for r in results:
        if r.within is not False:
            continue
        mean, std = mean_std(r.nn_test_accuracy)
        line = (
            f"- seed {r.row.seed}, {r.row.label}: published {_published(r.row)}, ours "
            f"{mean:.1f} ± {std:.1f} (2 std: {mean - 2 * std:.1f} to {mean + 2 * std:.1f})"
        )
        if groups and groups[-1][0] == r.row.note:
            groups[-1][1].append(line)
        else:
            groups.append((r.row.note, [line]))
    return "".join("\n".join(lines) + f"\n\n  Why: {note}\n\n" for note, lines in groups)


# ------------------------------------------------------------------------------------ the pages
def write_report(
    results: Sequence[RowResult],
    out: Path,
    *,
    runs: str,
    seconds: float,
    quick: bool,
) -> list[Path]:
    """Writes ``table.md``, ``table.json``, a page per seed and their plots; returns the paths.

    ``runs`` says how many runs each row had, for the headers (e.g. ``"2"``, ``"the seeds'"``).
    """
    from conformance import plots

    out.mkdir(parents=True, exist_ok=True)
    context = (
        f"{runs} run(s) per configuration{' (--quick)' if quick else ''}; mean ± standard "
        f"deviation of the final test accuracy; torch {torch.__version__}, Python "
        f"{platform.python_version()}; {seconds:.1f}s of training in all."
    )
    by_seed = {seed: [r for r in results if r.row.seed == seed] for seed in SEEDS}
    by_seed = {seed: rows for seed, rows in by_seed.items() if rows}
    pages = "".join(f"- [seed {seed}](seed-{seed}.md): {SEEDS[seed].title}\n" for seed in by_seed)
    why = explanations(results)
    if quick and why:
        why = f"{_QUICK_CAVEAT}\n\n{why}"
    (out / "table.md").write_text(
        "# nnlite vs torch.nn: the seeds' experiments\n\n"
        f"{context}\n\n{markdown_table(results)}\n"
        + (f"Where the published number lies outside ours:\n\n{why}\n" if why else "")
        + f"Per seed, with what each report left out, its loss curves and decision map:\n\n{pages}"
    )
    meta = {
        "runs": runs,
        "quick": quick,
        "seconds": round(seconds, 2),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "rows": [r.to_json() for r in results],
    }
    (out / "table.json").write_text(json.dumps(meta, indent=2) + "\n")
    written = [out / "table.md", out / "table.json"]
    for seed_id, rows in by_seed.items():
        seed = SEEDS[seed_id]
        curves = f"loss-curves-seed-{seed_id}.png"
        plots.loss_curves(
            [r.row.label for r in rows],
            [r.nn_loss_curves[0] for r in rows],
            [r.th_loss_curves[0] for r in rows],
            out / curves,
            title=f"seed {seed_id}: mean training loss per epoch, run 1",
        )
        written.append(out / curves)
        mapped = next((r for r in rows if r.row.label == seed.map_row), rows[0])
        map_name = f"decision-map-seed-{seed_id}.png"
        if mapped.maps is not None:
            plots.decision_map(
                *mapped.maps, out / map_name, label=f"seed {seed_id}, {mapped.row.label}, run 1"
            )
            written.append(out / map_name)
        page = out / f"seed-{seed_id}.md"
        page.write_text(seed_page(seed, rows, context, curves, map_name, mapped.row.label))
        written.append(page)
    return written


def seed_page(
    seed: Seed,
    results: Sequence[RowResult],
    context: str,
    curves: str,
    map_name: str,
    map_label: str,
) -> str:
    """The Markdown page of one seed: its setup, the choices made, its rows and plots."""
    stated = "".join(f"- {line}\n" for line in seed.stated)
    chosen = "".join(f"| {what} | {choice} |\n" for what, choice in seed.chosen)
    notes = "".join(f"- {line}\n" for line in seed.notes)
    why = explanations(results)
    if "--quick" in context and why:
        why = f"{_QUICK_CAVEAT}\n\n{why}"
    seconds = sum(r.seconds for r in results)
    return (
        f"# Seed {seed.id}: {seed.title}\n\n"
        f"## What the report states\n\n{stated}\n"
        f"## What it did not state, and what these runs chose\n\n"
        f"| not stated | chosen here |\n|---|---|\n{chosen}\n"
        + (f"{notes}\n" if notes else "")
        + f"## Results\n\n{context} This seed's rows took {seconds:.1f}s.\n\n"
        f"{markdown_table(results)}\n"
        + (f"Where the published number lies outside ours:\n\n{why}\n" if why else "")
        + f"## Training loss, both frameworks\n\n![seed {seed.id} loss curves]({curves})\n\n"
        f"## Decision map after training: {map_label}\n\n"
        f"![seed {seed.id} decision map]({map_name})\n"
    )


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value, NaN for none)."""
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _summary(values: Sequence[float]) -> dict[str, float]:
    mean, std = mean_std(values)
    return {"mean": mean, "std": std}


def _pm(mean: float, std: float) -> str:
    return f"{mean:.1f} ± {std:.1f}"


def stderr_progress(message: str) -> None:
    """Prints one progress line to stderr."""
    print(message, file=sys.stderr, flush=True)
