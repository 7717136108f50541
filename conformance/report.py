"""The seeds' experiments, reproduced in nnlite and torch.nn side by side."""

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

from conformance.harness import SideBySide
from conformance.spec import Config

_NAMES = {
    "relu": "ReLU",
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
    "leaky_relu": "LeakyReLU",
    "elu": "ELU",
    "mse": "MSE",
    "ce": "CE",
    "bce": "BCE",
    "sgd": "SGD",
    "adam": "Adam",
}


@dataclass(frozen=True)
class Row:
    """One configuration of a seed's experiment and the accuracy that seed published for it.

    ``published`` is ``(mean, standard deviation)`` of the test accuracy in percent, as the
    seed reported it (seed 003 reported errors; they are converted to accuracies here).
    """

    experiment: str
    label: str
    config: Config
    published: tuple[float, float] | None


@dataclass
class RowResult:
    """Both frameworks' results for one row over all runs."""

    row: Row
    nn_test_accuracy: list[float] = field(default_factory=list)
    th_test_accuracy: list[float] = field(default_factory=list)
    nn_loss_curves: list[list[float]] = field(default_factory=list)
    th_loss_curves: list[list[float]] = field(default_factory=list)
    largest_difference: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    first_run: SideBySide | None = None
    """The trained twins of the first run, kept for the decision map."""

    @property
    def largest_accuracy_difference(self) -> float:
        """Largest ``|nnlite - torch.nn|`` test accuracy over the runs, in percentage points."""
        pairs = zip(self.nn_test_accuracy, self.th_test_accuracy, strict=True)
        return max((abs(a - b) for a, b in pairs), default=0.0)

    def to_json(self) -> dict[str, Any]:
        """The row as plain JSON data."""
        config = self.row.config
        return {
            "experiment": self.row.experiment,
            "configuration": self.row.label,
            "config": {
                "activation": config.activation,
                "loss": config.loss,
                "optimizer": config.optimizer,
                "optimizer_options": dict(config.optimizer_options),
                "dropout": config.dropout,
                "hidden": list(config.hidden),
                "outputs": config.out_features,
                "batch_size": config.batch_size,
                "epochs": config.epochs,
                "train_size": config.train_size,
                "test_size": config.test_size,
                "standardize": config.standardize,
                "negative_slope": config.negative_slope,
                "alpha": config.alpha,
                "dtype": str(config.dtype).removeprefix("torch."),
            },
            "runs": len(self.nn_test_accuracy),
            "nnlite": _summary(self.nn_test_accuracy),
            "torch.nn": _summary(self.th_test_accuracy),
            "largest_accuracy_difference": self.largest_accuracy_difference,
            "largest_difference": dict(sorted(self.largest_difference.items())),
            "published": None
            if self.row.published is None
            else {"mean": self.row.published[0], "std": self.row.published[1]},
            "nnlite_test_accuracy": self.nn_test_accuracy,
            "torch_test_accuracy": self.th_test_accuracy,
            "seconds": round(self.seconds, 2),
        }


def seed_002_rows(epochs: int = 30) -> list[Row]:
    """Seed 002's Table I: {MSE, CE} x {SGD, Adam} x {ReLU, Tanh, LeakyReLU(0.05)}.

    Standardised inputs, 1000 training and 1000 test points, batch 25, two outputs (one-hot
    targets for MSE). The seed tuned its learning rates without publishing them all; here SGD
    uses 0.1 and Adam 1e-3.
    """
    published = {
        ("mse", "sgd"): {"relu": (96.7, 1.1), "tanh": (95.3, 1.4), "leaky_relu": (89.7, 1.2)},
        ("mse", "adam"): {"relu": (96.8, 1.6), "tanh": (94.9, 1.9), "leaky_relu": (85.9, 2.8)},
        ("ce", "sgd"): {"relu": (97.4, 0.9), "tanh": (97.0, 1.0), "leaky_relu": (92.7, 0.8)},
        ("ce", "adam"): {"relu": (96.9, 0.6), "tanh": (96.7, 1.4), "leaky_relu": (94.7, 1.6)},
    }
    rows = []
    for (loss, optimizer), by_activation in published.items():
        lr = 0.1 if optimizer == "sgd" else 1e-3
        for activation, numbers in by_activation.items():
            config = Config(
                activation=activation,
                loss=loss,
                optimizer=optimizer,
                optimizer_options={"lr": lr},
                batch_size=25,
                epochs=epochs,
                standardize=True,
                negative_slope=0.05,
            )
            label = f"{_NAMES[loss]} / {_NAMES[optimizer]} / {_NAMES[activation]}"
            rows.append(Row("seed 002", label, config, numbers))
    return rows


def seed_003_rows(epochs: int = 100) -> list[Row]:
    """Seed 003's Tables I and II: five activations with MSE, then Tanh with CE and dropout 0.2.

    Raw inputs, 1000 training and 1000 test points, batch 10, SGD with learning rate 0.1 (the
    seed did not publish its rate), LeakyReLU(0.01), ELU(alpha=0.01) as the seed chose. MSE
    rows have one output against the 0/1 label, as the seed's network had; CE rows have two.
    """
    table_1 = {
        "relu": 33.15,
        "sigmoid": 13.69,
        "elu": 5.19,
        "leaky_relu": 4.45,
        "tanh": 4.43,
    }
    table_1_sd = {"relu": 22.11, "sigmoid": 13.83, "elu": 1.37, "leaky_relu": 1.08, "tanh": 1.28}
    base = Config(
        loss="mse",
        optimizer="sgd",
        optimizer_options={"lr": 0.1},
        batch_size=10,
        epochs=epochs,
        outputs=1,
        alpha=0.01,
    )
    rows = [
        Row(
            "seed 003",
            f"MSE / SGD / {_NAMES[activation]}",
            base.replace(activation=activation),
            (round(100 - error, 2), table_1_sd[activation]),
        )
        for activation, error in table_1.items()
    ]
    tanh = base.replace(activation="tanh")
    rows += [
        Row("seed 003", "CE / SGD / Tanh", tanh.replace(loss="ce", outputs=2), (95.26, 1.30)),
        Row("seed 003", "MSE / SGD / Tanh + dropout 0.2", tanh.replace(dropout=0.2), (95.51, 0.85)),
        Row(
            "seed 003",
            "CE / SGD / Tanh + dropout 0.2",
            tanh.replace(loss="ce", outputs=2, dropout=0.2),
            (93.61, 1.13),
        ),
    ]
    return rows


def run_rows(
    rows: Sequence[Row], runs: int, progress: Callable[[str], None] | None = None
) -> list[RowResult]:
    """Trains every row ``runs`` times (seeds 0, 1, ...) in both frameworks.

    The frameworks are compared at every epoch as in the conformance suites, but differences
    are recorded (and reported) instead of raised.
    """
    total, done, started = len(rows) * runs, 0, time.perf_counter()
    results = []
    for row in rows:
        result = RowResult(row)
        row_started = time.perf_counter()
        for seed in range(runs):
            twins = SideBySide(row.config.replace(seed=seed), check=False)
            history = twins.run()
            result.nn_test_accuracy.append(100 * history.nn_test_accuracy[-1])
            result.th_test_accuracy.append(100 * history.th_test_accuracy[-1])
            result.nn_loss_curves.append(history.nn_loss)
            result.th_loss_curves.append(history.th_loss)
            for kind, diff in history.largest_difference.items():
                result.largest_difference[kind] = max(result.largest_difference.get(kind, 0), diff)
            if seed == 0:
                result.first_run = twins
            done += 1
            if progress is not None:
                elapsed = time.perf_counter() - started
                left = elapsed / done * (total - done)
                progress(
                    f"[{done:>3}/{total}] {row.experiment} {row.label}, run {seed + 1}/{runs}: "
                    f"test accuracy nnlite {result.nn_test_accuracy[-1]:.1f}%, "
                    f"torch.nn {result.th_test_accuracy[-1]:.1f}% "
                    f"({elapsed:.0f}s elapsed, about {left:.0f}s left)"
                )
        result.seconds = time.perf_counter() - row_started
        results.append(result)
    return results


def markdown_table(results: Sequence[RowResult]) -> str:
    """The results as a Markdown table: nnlite, torch.nn, their largest difference, published."""
    lines = [
        "| Experiment | Configuration | nnlite test acc. (%) | torch.nn test acc. (%) "
        "| largest \\|Δ\\| acc. (pp) | largest \\|Δ\\| loss | published (%) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        published = "" if r.row.published is None else _pm(*r.row.published)
        lines.append(
            f"| {r.row.experiment} | {r.row.label} | {_pm(*_mean_std(r.nn_test_accuracy))} "
            f"| {_pm(*_mean_std(r.th_test_accuracy))} | {r.largest_accuracy_difference:.3g} "
            f"| {r.largest_difference.get('loss', 0.0):.3g} | {published} |"
        )
    return "\n".join(lines) + "\n"


def write_report(
    results: Sequence[RowResult], out: Path, *, runs: int, seconds: float, quick: bool
) -> list[Path]:
    """Writes ``table.md``, ``table.json`` and the plots to ``out``; returns the paths written."""
    from conformance import plots

    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(results)
    header = (
        f"# nnlite vs torch.nn: the seeds' experiments\n\n"
        f"{runs} run(s) per configuration{' (--quick)' if quick else ''}; "
        f"mean ± standard deviation of the final test accuracy; "
        f"torch {torch.__version__}, Python {platform.python_version()}; "
        f"{seconds:.1f}s in all.\n\n"
    )
    (out / "table.md").write_text(header + table)
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
    for experiment in dict.fromkeys(r.row.experiment for r in results):
        rows = [r for r in results if r.row.experiment == experiment]
        name = "loss-curves-" + experiment.replace(" ", "-") + ".png"
        plots.loss_curves(rows, out / name, title=f"{experiment}: training loss per epoch")
        written.append(out / name)
    mapped = _decision_map_row(results)
    if mapped is not None and mapped.first_run is not None:
        plots.decision_map(mapped.first_run, out / "decision-map.png", label=_map_label(mapped))
        written.append(out / "decision-map.png")
    return written


def _decision_map_row(results: Sequence[RowResult]) -> RowResult | None:
    # The seed 002's best configuration when present, otherwise the first row.
    for r in results:
        if r.row.experiment == "seed 002" and r.row.label == "CE / SGD / ReLU":
            return r
    return results[0] if results else None


def _map_label(result: RowResult) -> str:
    return f"{result.row.experiment}, {result.row.label}, run 1"


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _summary(values: Sequence[float]) -> dict[str, float]:
    mean, std = _mean_std(values)
    return {"mean": mean, "std": std}


def _pm(mean: float, std: float) -> str:
    return f"{mean:.1f} ± {std:.1f}"


def stderr_progress(message: str) -> None:
    """Prints one progress line to stderr."""
    print(message, file=sys.stderr, flush=True)
