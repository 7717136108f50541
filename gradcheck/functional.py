"""Function pairs in CS231n's style: ``f_forward(x, w, b) -> (out, cache)`` and
``f_backward(dout, cache) -> (dx, dw, db)``; losses ``f_loss(x, y) -> (loss, dx)``.

:class:`FunctionPair` puts a pair (or a loss) behind the checker's interface: every array
argument is an input of the check, named after the forward's parameter (``x``, ``w``, ``b``), so
each gradient is compared, each argument watched for writes, and a gradient of the wrong shape
(``(1, D)`` for a ``(D,)`` bias) is a ``gradient_shape`` failure naming both shapes. Arguments that
are not arrays (``conv_param``, ``bn_param``) are keyword arguments of the pair; they are passed
to every forward as a fresh copy, so a layer that updates its ``bn_param`` (running means) by
design is not writing into its input, and a ``mode`` key is passed as given.

:func:`check_functions` is the library's entry point; :mod:`gradcheck._function_targets` turns
the command line's ``layers.py:affine`` (and ``layers.py``) into targets.
"""

from __future__ import annotations

import copy
import inspect
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from gradcheck._adapt import Adapted, CannotAdapt, Param
from gradcheck._numpy import _uses, numpy_views, seed_numpy, to_tensor, to_tensors
from gradcheck.inputs import make_input
from gradcheck.report import Report
from gradcheck.session import _unbound_import, exception_text

__all__ = ["PARAM_DEFAULTS", "FunctionPair", "check_functions"]

#: Non-array arguments given a value when the target names none, per name; ``conv_param`` is
#: checked twice, so that both a padded convolution and an unpadded, strided one are seen.
PARAM_DEFAULTS: dict[str, list[Any]] = {
    "conv_param": [{"stride": 1, "pad": 1}, {"stride": 2, "pad": 0}],
    "pool_param": [{"pool_height": 2, "pool_width": 2, "stride": 2}],
    "bn_param": [{"mode": "train"}],
    "ln_param": [{}],
    "gn_param": [{}],
    "dropout_param": [{"p": 0.5, "mode": "train"}],
    "G": [2],
}
#: Suffixes of forward/backward names, in the order a stem (``conv``) tries them.
_SUFFIXES = ("", "_naive", "_fast")
_FORWARD = re.compile(r"^(?P<stem>.+)_forward(?P<suffix>.*)$")
_BACKWARD = re.compile(r"^(?P<stem>.+)_backward(?P<suffix>.*)$")
_LOSS = re.compile(r"(^|_)loss$")
_CLASS_LOSSES = re.compile(r"softmax|svm|hinge|cross_?entropy|nll|multiclass")
_SPATIAL = re.compile(r"conv|pool|spatial")
_TEMPORAL = re.compile(r"temporal|^rnn_forward|^lstm_forward|^rnn$|^lstm$")
#: Sizes of guessed shapes: batch, features, outputs, channels, image side, filters, steps.
_N, _D, _M, _C, _S, _F, _T = 4, 5, 3, 3, 5, 2, 3
#: Image sides tried, in order, when an image layer refuses ``_S``.
_SIDES = (4, 6, 8, 7, 9)


def _signature(function: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        return None


def _array_names(function: Callable[..., Any], kwargs: dict[str, Any]) -> list[str]:
    """The forward's required positional parameters not given as keywords: its arrays."""
    signature = _signature(function)
    if signature is None:
        return []
    return [
        p.name
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        and p.default is p.empty
        and p.name not in kwargs
    ]


def _listed_arrays(function: Callable[..., Any], kwargs: dict[str, Any]) -> list[str]:
    """The keywords that fill a required argument of ``function`` with a list: arrays written
    as literals in the target."""
    required = _array_names(function, {})
    return [n for n in required if isinstance(kwargs.get(n), list)]


def _shape_text(shape: Sequence[int]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _guess(stem: str, name: str, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """A shape for array ``name`` of ``stem``'s forward, consistent with those before it."""
    name = name.lower()
    spatial = bool(_SPATIAL.search(stem))
    gates = 4 if "lstm" in stem else 1
    if "embedding" in stem:  # x: (N, T) indices into w: (V, D)
        return (_N, _T) if not shapes else (_D, _M)
    if not shapes:
        if "groupnorm" in stem:
            return (2, 2 * _C, _S, _S)  # channels in groups of G = 2
        if spatial:
            return (2, _C, _S, _S)
        return (2, _T, _D) if _TEMPORAL.search(stem) else (_N, _D)
    x = shapes[0]
    features = int(np.prod(x[1:])) if len(x) > 1 else x[0]
    if name in ("w", "weight", "weights", "kernel"):
        if spatial and len(x) == 4:
            return (_F, x[1], 3, 3)
        return (x[-1] if _TEMPORAL.search(stem) else features, _M)
    if name in ("b", "bias", "biases"):
        if gates > 1:
            return (gates * _M,)
        w = next((s for s in shapes[1:] if len(s) >= 2), None)
        if w is None:  # a bias alone, added to x
            return (x[1],) if len(x) == 4 else (x[-1],)
        return (w[0],) if spatial and len(w) == 4 else (w[-1],)
    if name in ("gamma", "beta", "scale", "shift"):
        if "groupnorm" in stem and len(x) == 4:
            return (1, x[1], 1, 1)
        w = next((s for s in shapes[1:] if len(s) >= 2), None)
        if w is not None:  # a norm after an affine or conv layer: its outputs
            return (w[0],) if len(w) == 4 else (w[-1],)
        return (x[1],) if len(x) == 4 else (x[-1],)
    if name == "wx":
        return (x[-1], gates * _M)
    if name == "wh":
        return (_M, gates * _M)
    if re.fullmatch(r"(prev_)?[hc]0?|prev_[hc]", name):
        return (x[0], _M)
    return x


class FunctionPair(Adapted):
    """A forward/backward function pair, or a functional loss, as one module.

    Args:
        forward: ``forward(*arrays, **kwargs) -> (out, cache)``; a loss
            ``loss(x, y, **kwargs) -> (loss, dx)``.
        backward: ``backward(dout, cache)`` returning the gradient of each array argument in
            order (one array when there is one); ``None`` for a loss.
        kwargs: the forward's non-array arguments (``conv_param={"stride": 1, "pad": 1}``),
            copied afresh for every call.
        label: how reports name it. Default: ``"forward/backward"``.

    Raises:
        CannotAdapt: a keyword the forward does not take, a backward that does not take
            ``(dout, cache)``, a loss without exactly two array arguments.
    """

    def __init__(
        self,
        forward: Callable[..., Any],
        backward: Callable[..., Any] | None = None,
        *,
        kwargs: dict[str, Any] | None = None,
        label: str | None = None,
    ) -> None:
        for role, function in (("forward", forward), ("backward", backward)):
            if function is not None and not callable(function):
                raise CannotAdapt(f"the {role} is a {type(function).__name__}, not a function")
        self.module = forward
        self.forward_function, self.backward_function = forward, backward
        self.is_loss = backward is None
        #: CS231n's scores keep their classes last: (N, C), and (N, T, V) over time.
        self.class_dim = -1
        self.batch_dim = 0
        self.target_first = False
        self.notes: list[str] = []
        self.kwargs = dict(kwargs or {})
        #: Functions whose file imports torch and not numpy get tensors, not numpy views.
        numpy_, torch_ = _uses(sys.modules.get(getattr(inspect.unwrap(forward), "__module__", "")))
        self.on_tensors = torch_ and not numpy_
        # An array argument given in the target as a list literal (mask=[[True, False]]).
        for name in _listed_arrays(forward, self.kwargs):
            self.kwargs[name] = np.asarray(self.kwargs[name])
        fname = getattr(forward, "__name__", "forward")
        self.label = label or (fname if backward is None else f"{fname}/{backward.__name__}")
        self._check_signatures(fname)
        #: The names of the array arguments, in order: the session names its tensors after them.
        self.input_names = _array_names(forward, self.kwargs)
        self._stem = _FORWARD.sub(r"\g<stem>", fname)
        self._cache: Any = None
        self._dx: Any = None
        self._backwards = 0
        self._guessed: list[tuple[int, ...]] = []

    def _check_signatures(self, fname: str) -> None:
        signature = _signature(self.forward_function)
        if signature is not None and not any(
            p.kind == p.VAR_KEYWORD for p in signature.parameters.values()
        ):
            unknown = [k for k in self.kwargs if k not in signature.parameters]
            if unknown:
                raise CannotAdapt(
                    f"{fname}{signature} takes no argument {unknown[0]!r}; name one of its own "
                    "non-array parameters"
                )
        names = _array_names(self.forward_function, self.kwargs)
        for name in names:
            if name in PARAM_DEFAULTS or name.endswith("_param"):
                example = PARAM_DEFAULTS.get(name, [{}])[0]
                raise CannotAdapt(
                    f"{fname}{signature} takes {name}, which is not an array: pass it, e.g. "
                    f"{name}={example!r}"
                )
        if self.is_loss and signature is not None and len(names) != 2:
            raise CannotAdapt(
                f"{fname}{signature} is checked as a loss, loss(x, y) -> (loss, dx), but takes "
                f"{len(names)} array arguments ({', '.join(names)}); pass the others in the "
                f"target as keywords, e.g. '{fname}({names[-1] if names else 'mask'}=...)'"
            )
        backward = _signature(self.backward_function) if self.backward_function else None
        if backward is not None:
            positional = [
                p
                for p in backward.parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            required = [p for p in positional if p.default is p.empty]
            variadic = any(p.kind == p.VAR_POSITIONAL for p in backward.parameters.values())
            if len(required) > 2 or (len(positional) < 2 and not variadic):
                raise CannotAdapt(
                    f"{self.backward_function.__name__}{backward} must take (dout, cache), the "
                    f"cache being what {fname} returned beside its output; write a backward of "
                    "that form around it"
                )

    def __repr__(self) -> str:
        return self.label

    # -- shapes and a first call ---------------------------------------------------------------

    def input_shapes(self, given: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
        """The shape of each array argument: ``given`` first, guessed ones after."""
        count = 1 if self.is_loss else len(self.input_names)
        shapes = [tuple(s) for s in given]
        while len(shapes) < count:
            shapes.append(_guess(self._stem, self.input_names[len(shapes)], shapes))
        self._guessed = shapes if len(given) < count else []
        return shapes

    def loss_defaults(self) -> tuple[str, tuple[float, float] | None]:
        """The target kind and input range a functional loss needs, from its name."""
        name = self.label.lower()
        if "bce" in name or "binary" in name:  # binary_cross_entropy: before cross_entropy
            return "prob", (0.05, 0.95)
        if _CLASS_LOSSES.search(name):
            return "class", None
        return "like", None

    def probe(self, args: list[Any]) -> None:
        """Call forward once on copies: what it returns must be ``(out, cache)`` (a loss:
        ``(loss, dx)``), and on guessed shapes it must run, else the pair cannot be checked.
        An embedding's drawn ``x`` becomes integer indices into its table."""
        if "embedding" in self._stem and len(args) == 2 and self._guessed:
            rows = args[1].shape[0]
            generator = torch.Generator().manual_seed(len(self.label))
            args[0] = torch.randint(0, rows, tuple(args[0].shape), generator=generator)
            note = f"{self.input_names[0]} holds integer indices into {self.input_names[1]}"
            if note not in self.notes:
                self.notes.append(note)
        state = np.random.get_state()
        try:
            result = self._call([a.clone() if isinstance(a, torch.Tensor) else a for a in args])
        except Exception as exc:
            unbound = _unbound_import(self.forward_function, exc, "forward")
            if unbound:
                raise CannotAdapt(unbound) from None
            if not self._guessed:
                return  # the user's own shapes: the forward check reports it
            result = self._other_side(args)
            if result is not None:
                return self._check_result(result)
            named = zip(self.input_names, self._guessed, strict=False)
            shapes = ", ".join(f"{n} {_shape_text(s)}" for n, s in named)
            flags = " ".join(f"--shape {','.join(map(str, s))}" for s in self._guessed)
            raise CannotAdapt(
                f"{self.label} raised {exception_text(exc)} on the shapes gradcheck guessed "
                f"({shapes}): pass one --shape per array argument, in order (e.g. {flags}; "
                "library: shape=[...]), and non-array arguments in the target"
            ) from None
        finally:
            np.random.set_state(state)
        self._check_result(result)

    def _other_side(self, args: list[Any]) -> Any:
        """For an image layer that refused the guessed side (a 2x2 pool of stride 2 needs an
        even one, a 3x3 convolution of stride 2 an odd one): the first other side it takes.
        Replaces the drawn image in ``args`` and returns forward's result, or None."""
        x = self._guessed[0] if self._guessed else ()
        if not (_SPATIAL.search(self._stem) and len(x) == 4 and isinstance(args[0], torch.Tensor)):
            return None
        for side in _SIDES:
            shape = (*x[:2], side, side)
            image = make_input(shape, dtype=args[0].dtype, seed=side)
            try:
                result = self._call([image.clone(), *(a.clone() for a in args[1:])])
            except Exception:
                continue
            args[0], self._guessed[0] = image, shape
            self.notes.append(
                f"{self.input_names[0]} is {_shape_text(shape)}: the first image side the "
                f"layer took (it refused {x[2]}); pass --shape to choose"
            )
            return result
        return None

    def _check_result(self, result: Any) -> None:
        what = "(loss, dx)" if self.is_loss else "(out, cache)"
        if isinstance(result, tuple | list) and all(r is None for r in result):
            raise CannotAdapt(
                f"{self.label}: the forward returned {tuple(result)}: not implemented yet (an "
                "assignment template's stub?)"
            )
        if not (isinstance(result, tuple | list) and len(result) == 2):
            got = f"{len(result)} values" if isinstance(result, tuple | list) else "one value"
            raise CannotAdapt(
                f"{self.label}: the forward returned {got}; gradcheck checks a forward that "
                f"returns {what} (CS231n's form); write a pair of that form around it"
            )
        if self.is_loss and np.ndim(result[0]) != 0:
            raise CannotAdapt(
                f"{self.label}: the loss returned a value of shape {np.shape(result[0])}, not "
                "one number; a functional loss returns (loss, dx) with the loss a scalar"
            )

    # -- forward and backward ------------------------------------------------------------------

    def _call(self, args: Sequence[Any]) -> Any:
        seed_numpy()
        arrays = list(args) if self.on_tensors else numpy_views(tuple(args))
        return self.forward_function(*arrays, **copy.deepcopy(self.kwargs))

    def forward(self, *args: Any) -> Any:
        result = self._call(args)
        if not (isinstance(result, tuple | list) and len(result) == 2):
            raise TypeError(
                f"{self.label} returned {type(result).__name__}, not "
                + ("(loss, dx)" if self.is_loss else "(out, cache)")
            )
        out, second = result
        if self.is_loss:
            self._dx = second
        else:
            self._cache = second
        return to_tensor(out)

    def backward(self, grad: torch.Tensor | None) -> Any:
        if self.is_loss:
            return to_tensors(self._dx)
        assert self.backward_function is not None and grad is not None
        self._backwards += 1
        seed_numpy(7919 * self._backwards)
        dout = grad if self.on_tensors else grad.numpy()
        return to_tensors(self.backward_function(dout, self._cache))

    # -- the rest of the interface -------------------------------------------------------------

    def params(self) -> list[Param]:
        return []

    def train(self, mode: bool) -> None:
        note = "a function pair has no train/eval mode: set the 'mode' key of its param dict"
        if note not in self.notes:
            self.notes.append(note)

    @property
    def training(self) -> bool | None:
        return None

    def promote(self, dtype: torch.dtype = torch.float64) -> Callable[[], None]:
        state = np.random.get_state()
        return lambda: np.random.set_state(state)


def check_functions(
    forward: Callable[..., Any],
    backward: Callable[..., Any] | None = None,
    *arrays: Any,
    **kwargs: Any,
) -> Report:
    """Check a CS231n-style function pair (or, with ``backward=None``, a functional loss).

    >>> report = check_functions(affine_forward, affine_backward, x, w, b)  # doctest: +SKIP
    >>> report = check_functions(conv_forward_naive, conv_backward_naive, x, w, b,
    ...                          conv_param={"stride": 1, "pad": 0})  # doctest: +SKIP
    >>> report = check_functions(softmax_loss, None, scores, labels)  # doctest: +SKIP

    Args:
        forward: ``forward(*arrays, **kw) -> (out, cache)``; a loss ``loss(x, y) -> (loss, dx)``.
        backward: ``backward(dout, cache)`` returning the gradient of each array in order.
        *arrays: the array arguments (numpy arrays or tensors), copied to float64. Default:
            drawn, with shapes from ``shape=[...]`` (one per array, in order) or guessed from
            the parameter names (``x`` (4, 5), ``w`` (5, 3), ``b`` (3,); NCHW for convolutions).
        **kwargs: keywords that name a parameter of ``forward`` go to it (``conv_param=``,
            ``bn_param=``); the rest are the options of :func:`gradcheck.check`.

    Returns:
        the :class:`Report`, as :func:`gradcheck.check` gives; ``unsupported`` set when the pair
        cannot be checked (the message says what to write).
    """
    from gradcheck.checks import check

    signature = _signature(forward)
    names = set(signature.parameters) if signature is not None else set()
    own = {k: v for k, v in kwargs.items() if k in names}
    options = {k: v for k, v in kwargs.items() if k not in names}
    try:
        pair = FunctionPair(forward, backward, kwargs=own)
    except CannotAdapt as exc:
        report = Report(module=getattr(forward, "__name__", "forward"))
        report.unsupported = str(exc)
        return report
    return check(pair, *arrays, **options)
