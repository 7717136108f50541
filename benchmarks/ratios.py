"""Turn a pytest-benchmark JSON into a table of nnlite/torch ratios, checked against the targets.

Usage::

    python benchmarks/ratios.py bench-results/latest.json                # print the table
    python benchmarks/ratios.py latest.json --markdown ratios.md         # also write Markdown
    python benchmarks/ratios.py latest.json --enforce                    # exit 1 on a missed target
    python benchmarks/ratios.py --compare old.json new.json              # two runs side by side

Each benchmark group pairs one nnlite benchmark with one torch benchmark doing the same work
(``extra_info["framework"]`` and ``extra_info["work"]``, see ``conftest.py``). The ratio is
nnlite's throughput over torch's, so above 1 means nnlite is faster; for the memory groups it is
nnlite's peak over torch's, so below 1 means nnlite needs less. Targets are judged only by ratios
measured in the same run; on a shared, noisy machine a miss is reported, and fails the exit status
only with ``--enforce``. Only the standard library is used.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATS = ("min", "median", "mean", "max")
KINDS = ("train", "infer", "gradcheck", "memory")
"""Group-name prefixes, in the order the table shows them; unknown kinds come last."""

TARGETS: tuple[tuple[str, str, float], ...] = (
    # (group pattern, comparison, bound); the first matching pattern applies.
    ("train-*-b1", ">=", 3.0),
    ("train-*-b25", ">=", 3.0),
    ("train-*-b1000", ">=", 1.2),
    ("train-*", ">=", 1.0),
    ("gradcheck-full-*", ">=", 3.0),
    ("memory-*", "<=", 1.0),
)
"""The targets of issue 5: the training step at least 3x torch.nn at batch 1 and 25, 1.2x at
1,000 and never below it; the full gradcheck 3x faster than torch's slow mode; peak memory of a
training step no higher than torch.nn's. Groups without a pattern are reported, not judged."""


@dataclass(frozen=True)
class Row:
    """One group: nnlite against torch on the same work.

    Args:
        group: the pytest-benchmark group, e.g. ``train-sgd-b25``.
        unit: ``samples/s``, ``entries/s`` (throughput, higher is better) or ``bytes`` (memory).
        nnlite: nnlite's throughput, or its peak memory in bytes.
        torch: torch's, in the same unit.
        identical: whether both gave the same bits, when the benchmark recorded it.
    """

    group: str
    unit: str
    nnlite: float
    torch: float
    identical: bool | None = None

    @property
    def ratio(self) -> float:
        """nnlite over torch."""
        return self.nnlite / self.torch

    @property
    def target(self) -> tuple[str, float] | None:
        """The (comparison, bound) the ratio is judged by, or None for a reported-only group."""
        for pattern, comparison, bound in TARGETS:
            if fnmatch.fnmatchcase(self.group, pattern):
                return comparison, bound
        return None

    @property
    def met(self) -> bool | None:
        """Whether the ratio meets its target; None without one."""
        if self.target is None:
            return None
        comparison, bound = self.target
        return self.ratio >= bound if comparison == ">=" else self.ratio <= bound


class InputError(Exception):
    """A JSON file that is missing or not a pytest-benchmark report (exit status 2)."""


def load(path: Path) -> list[dict[str, Any]]:
    """The ``benchmarks`` list of a pytest-benchmark JSON file."""
    try:
        report = json.loads(Path(path).read_text())
    except OSError as error:
        raise InputError(
            f"cannot read {path}: {error.strerror}; make one with "
            f"`pytest benchmarks --benchmark-json={path}`"
        ) from error
    except json.JSONDecodeError as error:
        raise InputError(f"{path} is not JSON ({error}); expected pytest-benchmark's") from error
    if not isinstance(report, dict) or not isinstance(report.get("benchmarks"), list):
        raise InputError(
            f"{path} has no 'benchmarks' list; expected the file that pytest-benchmark's "
            "--benchmark-json writes"
        )
    return report["benchmarks"]


def rows(benchmarks: Sequence[dict[str, Any]], stat: str = "min") -> list[Row]:
    """One :class:`Row` per group that holds both an nnlite and a torch benchmark.

    Rows come in :data:`KINDS` order (training first), each kind in the order the groups ran.

    Throughput is ``extra_info["work"]`` over the ``stat`` time of the saved timings; memory
    groups carry ``extra_info["peak_bytes"]`` instead.
    """
    if stat not in STATS:
        raise ValueError(f"stat must be one of {STATS}, got {stat!r}")
    by_group: dict[str, dict[str, dict[str, Any]]] = {}
    for bench in benchmarks:
        info = bench.get("extra_info") or {}
        framework = info.get("framework")
        if bench.get("group") and framework in ("nnlite", "torch"):
            by_group.setdefault(bench["group"], {})[framework] = bench
    table = []
    for group, pair in by_group.items():
        if len(pair) < 2:
            continue
        mine, theirs = pair["nnlite"], pair["torch"]
        identical = mine["extra_info"].get("bit_identical")
        if "peak_bytes" in mine["extra_info"]:
            values = [b["extra_info"]["peak_bytes"] for b in (mine, theirs)]
            table.append(Row(group, "bytes", *values, identical=identical))
        else:
            values = [b["extra_info"]["work"] / b["stats"][stat] for b in (mine, theirs)]
            table.append(Row(group, mine["extra_info"]["unit"], *values, identical=identical))
    return sorted(table, key=_kind_rank)


def _kind_rank(row: Row) -> int:
    kind = row.group.split("-", 1)[0]
    return KINDS.index(kind) if kind in KINDS else len(KINDS)


def _si(value: float) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.3g}{prefix}"
    return f"{value:.3g}"


def _amount(value: float, unit: str) -> str:
    if unit == "bytes":
        return f"{value / 2**20:.1f} MiB"
    return f"{_si(value)} {unit}"


def _yes_no(flag: bool | None) -> str:
    return "" if flag is None else ("yes" if flag else "NO")


def ratio_table(table: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the ratio table."""
    header = ["group", "nnlite", "torch", "nnlite/torch", "target", "met", "same bits"]
    cells = []
    for row in table:
        target = "" if row.target is None else f"{row.target[0]} {row.target[1]:g}"
        cells.append(
            [
                row.group,
                _amount(row.nnlite, row.unit),
                _amount(row.torch, row.unit),
                f"{row.ratio:.2f}",
                target,
                _yes_no(row.met),
                _yes_no(row.identical),
            ]
        )
    return header, cells


def compare_table(old: Sequence[Row], new: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and cells comparing two runs group by group (new over old, per framework)."""
    header = ["group", "nnlite new/old", "torch new/old", "ratio old", "ratio new", "met new"]
    before = {row.group: row for row in old}
    cells = []
    for row in new:
        if row.group not in before:
            continue
        prior = before[row.group]
        cells.append(
            [
                row.group,
                f"{row.nnlite / prior.nnlite:.2f}",
                f"{row.torch / prior.torch:.2f}",
                f"{prior.ratio:.2f}",
                f"{row.ratio:.2f}",
                _yes_no(row.met),
            ]
        )
    return header, cells


def as_text(header: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """A plain table with aligned columns (numbers right-aligned)."""
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.ljust(width) if i == 0 else value.rjust(width)
            for i, (value, width) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(values) for values in cells)])


def as_markdown(header: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table, numbers right-aligned."""
    align = ["---", *("---:" for _ in header[1:])]
    lines = [header, align, *cells]
    return "\n".join("| " + " | ".join(values) + " |" for values in lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the ratio table (or the comparison of two runs); return the exit status."""
    parser = argparse.ArgumentParser(
        prog="ratios.py",
        description="nnlite/torch ratios from a pytest-benchmark JSON, checked against targets",
    )
    parser.add_argument("json", nargs="?", type=Path, help="pytest-benchmark --benchmark-json file")
    parser.add_argument(
        "--compare", nargs=2, type=Path, metavar=("OLD", "NEW"), help="compare two runs"
    )
    parser.add_argument(
        "--stat",
        choices=STATS,
        default="min",
        help="timing statistic (default: min, the least disturbed by other load)",
    )
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write Markdown here")
    parser.add_argument(
        "--enforce", action="store_true", help="exit with status 1 when a target is missed"
    )
    args = parser.parse_args(argv)
    if (args.json is None) == (args.compare is None):
        parser.error("give one JSON file, or --compare OLD.json NEW.json")

    try:
        if args.compare:
            old, new = (rows(load(path), args.stat) for path in args.compare)
            header, cells = compare_table(old, new)
            table = new
            title = f"{args.compare[1]} against {args.compare[0]} ({args.stat} times)"
        else:
            table = rows(load(args.json), args.stat)
            header, cells = ratio_table(table)
            title = f"nnlite/torch ratios, {args.json} ({args.stat} times)"
    except InputError as error:
        print(f"ratios.py: error: {error}", file=sys.stderr)
        return 2
    if not table:
        print(
            "ratios.py: error: no group holds both an nnlite and a torch benchmark; "
            "run the whole suite (`pytest benchmarks --benchmark-json=FILE`)",
            file=sys.stderr,
        )
        return 2

    print(title)
    print(as_text(header, cells))
    missed = [row.group for row in table if row.met is False]
    print(f"targets: {sum(row.met is True for row in table)} met, {len(missed)} missed", end="")
    print(f" ({', '.join(missed)})" if missed else "")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(as_markdown(header, cells) + "\n")
    return 1 if args.enforce and missed else 0


if __name__ == "__main__":
    sys.exit(main())
