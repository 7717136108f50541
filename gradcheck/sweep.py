"""Forwards at perturbed points: the hot loop every finite-difference method shares.

A :class:`Sweep` moves entries of one tensor in place (through a numpy view: no tensor op per
entry), runs forward with torch's generator seeded, and puts the flat output back. It perturbs
a *group* of entries per forward: one entry, or, when the samples of a batch are seen to be
independent (:meth:`Sweep.find_samples`), one entry of every sample at once, whose effects then
land on disjoint parts of the output. A batch of 64 samples then costs 64 times fewer forwards,
with every entry still differentiated on its own.

The entries moved together are found by testing, never assumed: see :meth:`Sweep.find_samples`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gradcheck.report import CheckResult
from gradcheck.session import ModuleFailed, Session

__all__ = ["Sweep", "evaluator", "rounding_scale"]

#: Random directions of :func:`rounding_scale`.
_DIRECTIONS = 4


def evaluator(s: Session, check: str) -> Callable[[], Any]:
    """Return f(): forward (seeded) and the flat float64 output as a numpy array (the session
    refuses an output whose shape changed)."""

    def f() -> Any:
        out = s.forward(check)
        try:
            return out.detach().reshape(-1).to(torch.float64).numpy()
        except Exception as exc:  # e.g. a tensor numpy cannot view (conjugate, sparse)
            raise ModuleFailed(
                CheckResult(check, False, f"forward's output cannot be read: {exc}")
            ) from exc

    return f


class Sweep:
    """Forwards of one session with entries of ``tensor`` moved.

    Args:
        s: the session.
        check: the check a module failure is attributed to.
        tensor: the input or parameter moved (in place, restored after every forward).
        M: the number of output entries.
    """

    def __init__(self, s: Session, check: str, tensor: Tensor, M: int) -> None:
        self.s = s
        self.M = M
        self.f = evaluator(s, check)
        self.x = tensor.detach().reshape(-1).clone()
        self.view = tensor.detach().view(-1).numpy()
        self.shape = tuple(tensor.shape)
        self.xs = self.view.copy()
        #: Samples the output splits into (1: every entry is its own group).
        self.N = 1
        #: Output positions, sample by sample (``out[perm]`` is ``(N, M / N)`` row-major).
        self.perm = np.arange(M)
        #: The sample of every entry of the tensor.
        self.sample = np.zeros(self.x.numel(), dtype=np.int64)

    def outputs(self, values, groups: np.ndarray) -> np.ndarray:
        """Return the outputs (one row per group) with the group's entries moved to ``values``.

        Args:
            values: a value for every entry of the tensor (only the group's are used).
            groups: ``(G, N)`` entry indices, ``-1`` where a sample has no entry in the group.
        """
        rows = [g[g >= 0] for g in np.asarray(groups, dtype=np.int64)]
        out = np.empty((len(rows), self.M))
        view, xs = self.view, self.xs
        values = np.asarray(values, dtype=view.dtype)
        forward, args = self.s.adapted.forward, self.s.args
        seed, generator = self.s.options.seed, torch.default_generator
        done, group = 0, rows[0] if rows else np.zeros(0, dtype=np.int64)
        try:
            if not self.s.mutates:  # a module writing into its input gets copies: use f()
                # The hot loop: numpy writes, no checks.
                for group in rows:
                    view[group] = values[group]
                    generator.manual_seed(seed)
                    out[done] = forward(*args).numpy().reshape(-1)
                    view[group] = xs[group]
                    done += 1
        except Exception:
            # Something unusual (an output that needs detaching, a wrong shape, the module
            # raising): finish with f(), which diagnoses and attributes it.
            view[group] = xs[group]
        try:
            for r, group in enumerate(rows[done:], start=done):
                view[group] = values[group]
                out[r] = self.f()
                view[group] = xs[group]
        finally:
            view[group] = xs[group]
        return out

    def groups(self, rows: np.ndarray) -> np.ndarray:
        """Pack ``rows`` (entry indices) into groups holding at most one entry per sample."""
        if self.N == 1:
            return np.asarray(rows, dtype=np.int64).reshape(-1, 1)
        samples = self.sample[rows]
        order = np.argsort(samples, kind="stable")
        rows, samples = np.asarray(rows)[order], samples[order]
        starts = np.searchsorted(samples, np.arange(self.N))
        slot = np.arange(len(rows)) - starts[samples]
        packed = np.full((int(slot.max()) + 1 if len(rows) else 0, self.N), -1, dtype=np.int64)
        packed[slot, samples] = rows
        return packed

    def find_samples(self, y0: np.ndarray, step: float) -> int:
        """Move many entries per forward where their effects on the output are disjoint.

        For each dimension ``d`` of the tensor and ``e`` of the output of the same size, the
        pair is *separable* when moving every entry of some indices along ``d`` leaves the
        outputs at the other indices along ``e`` bit for bit as they were (tested for each bit
        of the index in both directions, so that any two indices are once on opposite sides:
        ``2 log2(size)`` forwards). A batch's samples usually are (dims 0 and 0 of a layer's
        input and output), so are a Linear's output features (dim 0 of its weight, the last of
        its output), and every dim of an elementwise layer. Entries that differ along any
        separable dim then move in the same forward; returns how many share one.
        """
        out_shape, shape = tuple(self.s.out.shape), self.shape
        if self.s.mutates or not self.s.repeatable:
            return 1
        entries = np.arange(self.x.numel()).reshape(shape)
        outputs = np.arange(self.M).reshape(out_shape)
        moved = (self.x + step * self.x.abs().clamp(min=1.0)).numpy()
        pairs: list[tuple[int, int]] = []
        for d, size in enumerate(shape):
            for e, other in enumerate(out_shape):
                if size < 2 or size != other or e in [b for _, b in pairs]:
                    continue
                if self._separable(entries, outputs, d, e, moved, y0):
                    pairs.append((d, e))
                    break
        if not pairs:
            return 1
        tensor_dims, out_dims = [d for d, _ in pairs], [e for _, e in pairs]
        self.N = int(np.prod([shape[d] for d in tensor_dims]))
        self.perm = _grouped(outputs, out_dims).reshape(-1)
        grouped = _grouped(entries, tensor_dims)  # (N, n / N)
        sample = np.empty(self.x.numel(), dtype=np.int64)
        sample[grouped.reshape(-1)] = np.repeat(np.arange(self.N), grouped.shape[1])
        self.sample = sample
        return self.N

    def _separable(self, entries, outputs, d: int, e: int, moved, y0) -> bool:
        size = entries.shape[d]
        index = np.arange(size)
        along_d = np.moveaxis(entries, d, 0).reshape(size, -1)
        along_e = np.moveaxis(outputs, e, 0).reshape(size, -1)
        for bit in range(int(size - 1).bit_length()):
            for side in (0, 1):
                chosen = ((index >> bit) & 1) == side
                out = self.outputs(moved, along_d[chosen].reshape(1, -1))[0]
                rest = along_e[~chosen].reshape(-1)
                if not np.array_equal(out[rest], y0[rest]):
                    return False
        return True

    def columns(self, values, rows: np.ndarray, y0: np.ndarray) -> np.ndarray:
        """Return, per entry of ``rows``, the outputs with that entry alone moved to ``values``.

        With independent samples, a group's forward moved one entry per sample: each entry's
        row takes its sample's outputs from that forward and the unmoved outputs elsewhere
        (bit for bit what moving it alone gives, as :meth:`find_samples` tested).
        """
        rows = np.asarray(rows, dtype=np.int64)
        groups = self.groups(rows)
        outs = self.outputs(values, groups)
        if self.N == 1:
            return outs
        result = np.tile(y0, (len(rows), 1))
        where = np.zeros(self.x.numel(), dtype=np.int64)
        where[rows] = np.arange(len(rows))
        positions = self.perm.reshape(self.N, -1)
        for slot in range(self.N):
            entries = groups[:, slot]
            moved = entries >= 0
            if moved.any():
                P = positions[slot]
                result[where[entries[moved]][:, None], P[None, :]] = outs[moved][:, P]
        return result

    def all_groups(self) -> np.ndarray:
        """Every entry, packed (``n / N`` groups of ``N`` when the samples are independent)."""
        return self.groups(np.arange(self.x.numel()))


def _grouped(index: np.ndarray, dims: list[int]) -> np.ndarray:
    """``index`` (an array of flat positions) as ``(N, rest)``: one row per combination of the
    indices along ``dims``."""
    rest = [d for d in range(index.ndim) if d not in dims]
    moved = np.transpose(index, dims + rest)
    N = int(np.prod([index.shape[d] for d in dims]))
    return moved.reshape(N, -1)


def rounding_scale(s: Session, check: str, step: float) -> np.ndarray:
    """Per output entry, the scale of its rounding error, in units of the dtype's epsilon.

    An output's rounding error is a few ulps of its terms, not of its value: ``x @ w + b`` can
    cancel to a small output whose error is that of the large products. Two estimates, the
    larger wins:

    - *modelled*: to first order the terms are ``J_ij x_j`` over every input and parameter
      entry ``j`` (a parameter's terms are its layer's products, so the layer's own rounding is
      covered too); ``sqrt(sum_j (J_ij x_j)^2)`` is the root-mean-square of
      ``(y(x (1 + step r)) - y(x)) / step`` over ``4`` random sign vectors ``r``; plus ``|y_i|``.
    - *measured* (the noise of Moré and Wild's ECnoise): along a random direction, outputs at
      five points ``64`` ulps apart (the largest of ``4`` directions); their fourth difference
      cancels the smooth part and leaves the rounding noise, ``sqrt(70)`` times its deviation.
      This sees rounding inside forward that the model misses (a standardization of two nearly
      equal samples cancels internally).

    Returns:
        ``max(modelled, measured deviation / eps)``, float64, one value per output entry.
    """
    f = evaluator(s, check)
    y0 = f().copy()
    tensors = [t for t in s.tensors() if t.numel()]
    saved = [t.detach().clone() for t in tensors]
    generator = torch.Generator().manual_seed(s.options.seed + 3)
    eps = float(torch.finfo(s.options.dtype).eps)

    def at(signs: list[Tensor], size: float) -> np.ndarray:
        for t, x, r in zip(tensors, saved, signs, strict=True):
            t.detach().copy_(x + size * r * x)
        return f().copy()

    total = np.zeros_like(y0)
    noise = np.zeros_like(y0)
    try:
        for _ in range(_DIRECTIONS):
            signs = [
                torch.randint(0, 2, x.shape, generator=generator).to(x.dtype) * 2 - 1 for x in saved
            ]
            total += ((at(signs, step) - y0) / step) ** 2
            ys = [y0] + [at(signs, i * 64 * eps) for i in range(1, 5)]
            fourth = ys[4] - 4 * ys[3] + 6 * ys[2] - 4 * ys[1] + ys[0]
            noise = np.maximum(noise, np.abs(fourth) / 70**0.5)
    finally:
        for t, x in zip(tensors, saved, strict=True):
            t.detach().copy_(x)
    return np.maximum(np.abs(y0) + np.sqrt(total / _DIRECTIONS), noise / eps)
