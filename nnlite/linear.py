"""The fully connected layer."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from nnlite import init
from nnlite.module import Module


class Linear(Module):
    r"""Applies an affine transformation to the incoming data: :math:`y = xW^T + b`.

    .. math::
        \frac{\partial \ell}{\partial x} = \frac{\partial \ell}{\partial y} W, \qquad
        \frac{\partial \ell}{\partial W} \mathrel{+}=
            \Big(\frac{\partial \ell}{\partial y}\Big)^T x,
        \qquad
        \frac{\partial \ell}{\partial b} \mathrel{+}= \sum_n \frac{\partial \ell}{\partial y_n}

    Parameters are initialised as ``torch.nn.Linear`` does: the weight by
    ``kaiming_uniform_(a=sqrt(5))``, i.e. :math:`\mathcal{U}(-1/\sqrt{k}, 1/\sqrt{k})` with
    :math:`k` = ``in_features``, and the bias from the same interval, drawn in the same order from
    torch's global generator, so after the same ``torch.manual_seed`` both hold the same bits.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: if ``False``, the layer learns no additive bias. Default: ``True``.
        dtype: dtype of the parameters. Default: ``torch.get_default_dtype()``.
        device: device of the parameters. Default: the CPU.

    Shape:
        - Input: :math:`(*, H_{in})` with :math:`H_{in}` = ``in_features``.
        - Output: :math:`(*, H_{out})` with :math:`H_{out}` = ``out_features``.
    """

    _param_names = ("weight", "bias")
    _cache_attrs = ("_input",)
    _output_is_fresh = True  # addmm's result; the layer caches its input, not its output
    _grad_is_fresh = True
    _backward_options = frozenset({"input_grad", "accumulate"})
    _output_shape: tuple[int, ...] | None = None  # the last forward's, for backward's check

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for arg, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"Linear: {arg} must be a non-negative int, got {value!r}; "
                    f"e.g. Linear(in_features=2, out_features=25)"
                )
        self.in_features = in_features
        self.out_features = out_features
        factory = {"device": device, "dtype": dtype}
        self.weight = torch.empty((out_features, in_features), **factory)
        self.weight_grad = torch.zeros_like(self.weight)
        if bias:
            self.bias: Tensor | None = torch.empty(out_features, **factory)
            self.bias_grad: Tensor | None = torch.zeros_like(self.bias)
        else:
            self.bias = None
            self.bias_grad = None
        self._input: Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw the parameters again, exactly as ``torch.nn.Linear.reset_parameters`` does."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        weight = self.weight
        if isinstance(input, Tensor) and not input.requires_grad:
            # The common case, a (batch, in_features) input of the layer's dtype, in one call:
            # addmm refuses any other shape, dtype or device itself, and what it refuses takes
            # the general way below, which handles it (more dimensions) or says why in our words.
            # (``.mT`` is ``.t()`` of a matrix, the same view, without parsing arguments.)
            bias = self.bias
            try:
                out = (
                    torch.mm(input, weight.mT)
                    if bias is None
                    else torch.addmm(bias, input, weight.mT)
                )
            except RuntimeError:
                pass
            else:
                self._input = input
                self._output_shape = out.shape
                return out
        x = self._check_input(input)
        shape = x.shape
        if not shape or shape[-1] != self.in_features:
            raise ValueError(
                f"{self!r} expected input with {self.in_features} features (last dim), "
                f"got shape {tuple(shape)}"
            )
        if x.dtype != weight.dtype:
            raise TypeError(
                f"{self!r} holds {weight.dtype} parameters but got {x.dtype} input; convert "
                f"the input (x.to({weight.dtype})) or the layer (layer.to({x.dtype}))"
            )
        device_error = self._device_error(x)
        if device_error is not None:
            raise device_error
        # NOTE: torch.nn.functional.linear flattens the leading dimensions and calls addmm with
        # the transposed weight; the same call gives the same bits.
        flat = x if len(shape) == 2 else x.reshape(-1, self.in_features)
        if self.bias is None:
            out = torch.mm(flat, weight.t())
        else:
            out = torch.addmm(self.bias, flat, weight.t())
        self._input = flat
        self._output_shape = (*shape[:-1], self.out_features)
        return out if len(shape) == 2 else out.view(self._output_shape)

    def _device_error(self, input: Tensor) -> RuntimeError | None:
        """The error to raise when ``input`` is on another device than the parameters."""
        if input.device == self.weight.device:
            return None
        return RuntimeError(
            f"{self!r} holds parameters on {self.weight.device} but got input on "
            f"{input.device}; move the input (x.to({str(self.weight.device)!r})) or the "
            f"model (model.to({str(input.device)!r}))"
        )

    def backward(
        self, grad_output: Tensor, *, input_grad: bool = True, accumulate: bool = True
    ) -> Tensor | None:
        """Accumulate the parameter gradients; return the gradient with respect to the input.

        Args:
            grad_output: the gradient of the loss with respect to the last forward's output.
            input_grad: with ``False``, only the parameter gradients are computed and ``None``
                is returned, as autograd skips the gradient of an input that does not require
                one (a network's first layer, whose input is data). Default: ``True``.
            accumulate: with ``False``, the parameter gradients are overwritten instead of
                added into, as autograd sets the ``.grad`` that ``zero_grad`` set to ``None``:
                one tensor call fewer per parameter. Default: ``True``.
        """
        flat_input = self._input
        output_shape = self._output_shape
        if (
            flat_input is None
            or not isinstance(grad_output, Tensor)
            or grad_output.shape != output_shape
            or grad_output.dtype is not flat_input.dtype
            or grad_output.requires_grad
        ):
            flat_input = self._saved(flat_input)
            grad_output = self._check_grad(grad_output, output_shape, flat_input.dtype)
        grad = grad_output if len(output_shape) == 2 else grad_output.reshape(-1, self.out_features)
        # NOTE: autograd's addmm backward computes these products in this orientation; the weight
        # gradient is grad^T @ input, not (input^T @ grad)^T, for identical bits. It is added to
        # the gradient afterwards, as torch accumulates: addmm into the gradient would add the old
        # value first and round differently.
        if accumulate:
            self.weight_grad.add_(torch.mm(grad.mT, flat_input))
        else:
            torch.mm(grad.mT, flat_input, out=self.weight_grad)
        bias_grad = self.bias_grad
        if bias_grad is not None:
            if accumulate:
                bias_grad.add_(grad.sum(0))
            else:
                torch.sum(grad, 0, out=bias_grad)
        if not input_grad:
            return None
        if flat_input.stride() == (1, flat_input.shape[0]):
            # NOTE: autograd's mm_mat1_backward returns the gradient of an input laid out
            # column-major (strides (1, N): a transposed batch, or a 1 x 1 one) in that layout,
            # as (W^T @ grad^T)^T, whose sums run in another order than grad @ W.
            grad_input = torch.mm(self.weight.t(), grad.t()).t()
        else:
            grad_input = torch.mm(grad, self.weight)
        if len(output_shape) == 2:
            return grad_input
        return grad_input.reshape(*output_shape[:-1], self.in_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )
