"""Modules that attack the process checking them: they exit, crash, hang, blow up memory, print
to stdout, or behave in ways a checker does not expect. Written here for gradcheck's own tests
(``tests/gradcheck/test_hostile.py``); nothing happens until a method is called.

Each class is a correct ``Tanh`` apart from what its name says, so that whatever the checker
reports comes from the hostile behaviour alone.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time

import torch


class Tanh:
    """Correct: the base of every hostile module here."""

    def forward(self, x):
        self.y = torch.tanh(x)
        return self.y

    def backward(self, grad):
        return grad * (1 - self.y**2)

    def param(self):
        return []


# -- ending the program -------------------------------------------------------------------------


class ExitsInForward(Tanh):
    def forward(self, x):
        sys.exit(0)


class ExitsInBackward(Tanh):
    def backward(self, grad):
        sys.exit(3)


class ExitsInConstructor(Tanh):
    def __init__(self):
        sys.exit("constructor says goodbye")


class HardExitInBackward(Tanh):
    """``os._exit``: no exception, the interpreter is gone."""

    def backward(self, grad):
        os._exit(7)


class InterruptsInBackward(Tanh):
    def backward(self, grad):
        raise KeyboardInterrupt


class CrashesInForward(Tanh):
    """Reads address 0: the interpreter dies of SIGSEGV."""

    def forward(self, x):
        ctypes.string_at(0)


class KillsItselfInForward(Tanh):
    def forward(self, x):
        os.kill(os.getpid(), 9)


# -- never returning ----------------------------------------------------------------------------


class SpinsInForward(Tanh):
    def forward(self, x):
        while True:
            pass


class SleepsInBackward(Tanh):
    def backward(self, grad):
        time.sleep(3600)


class ReadsStdinInForward(Tanh):
    """``input()``: a child's stdin is /dev/null, so this raises EOFError instead of waiting."""

    def forward(self, x):
        input("press enter")
        return super().forward(x)


# -- memory -------------------------------------------------------------------------------------


class AllocatesInForward(Tanh):
    """2 GB of float64 ones, touched: only run under a memory limit."""

    def forward(self, x):
        self.blob = torch.ones(2**28, dtype=torch.float64)
        return super().forward(x)


class GrowsAListInForward(Tanh):
    """Python objects until memory runs out: MemoryError under a limit."""

    def forward(self, x):
        self.blob = [0] * (2**28)
        return super().forward(x)


# -- printing -----------------------------------------------------------------------------------


class PrintsEverywhere(Tanh):
    """Correct, but prints through print(), sys.stdout, and the file descriptor itself."""

    def forward(self, x):
        print("forward called")
        sys.stdout.write("{not json\n")
        os.write(1, b"raw bytes on fd 1\n")
        return super().forward(x)


class PrintsForever(Tanh):
    def forward(self, x):
        while True:
            print("spam " * 100)


class ReplacesStdout(Tanh):
    def forward(self, x):
        sys.stdout = None
        return super().forward(x)


# -- behaviour a checker does not expect --------------------------------------------------------


class BadStr(Exception):
    def __str__(self):
        raise RuntimeError("__str__ of the exception raised")


class RaisesUnprintable(Tanh):
    def backward(self, grad):
        raise BadStr()


class ShapeChanges(Tanh):
    """Each forward returns one more row than the last."""

    def __init__(self):
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        self.y = torch.tanh(x)
        return torch.cat([self.y] + [self.y[:1]] * (self.calls - 1))


class SparseOutput(Tanh):
    def forward(self, x):
        return super().forward(x).to_sparse()


class MetaOutput(Tanh):
    def forward(self, x):
        super().forward(x)
        return torch.empty(x.shape, device="meta", dtype=x.dtype)


class ResizesInput(Tanh):
    def forward(self, x):
        out = super().forward(x)
        x.resize_(1)
        return out


class ParamRaisesLater:
    """A Linear-like layer whose ``param`` property raises from its third access on."""

    def __init__(self):
        self.weight = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(4, 3)
        self.weight_grad = torch.zeros_like(self.weight)
        self.accesses = 0

    @property
    def param(self):
        self.accesses += 1
        if self.accesses > 2:
            raise RuntimeError("param is gone")
        return [(self.weight, self.weight_grad)]

    def forward(self, x):
        self.x = x
        return x @ self.weight.T

    def backward(self, grad):
        self.weight_grad += grad.T @ self.x
        return grad @ self.weight


class ReturnsHugeOutput(Tanh):
    """A scalar input gets an output of a million entries."""

    def forward(self, x):
        self.y = torch.tanh(x)
        return self.y.sum().expand(1000, 1000)
