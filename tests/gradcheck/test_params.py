"""gradcheck/_params.py: every form a module lists its parameters in, read the same way, and
every form it cannot read refused with the adapter to write."""

from __future__ import annotations

import pytest
import torch

from gradcheck._params import CannotAdapt, list_params
from gradcheck._promote import promote


class Holder:
    def __init__(self, value):
        self.data = value
        self.grad = torch.zeros_like(value)


class Bag:
    """A module-like object whose param() returns whatever it was given."""

    def __init__(self, listed, **attributes):
        self.__dict__.update(attributes)
        # A closure, not an attribute: the checker names tensors by the attributes holding them.
        self.param = lambda: listed() if callable(listed) else listed


def _names(module) -> list[str]:
    return [p.name for p in list_params(module, {})]


W, DW = torch.ones(2, 3), torch.zeros(2, 3)
B, DB = torch.ones(3), torch.zeros(3)


@pytest.mark.parametrize(
    ("build", "names"),
    [
        (lambda: Bag(W, w=W), ["w"]),
        (lambda: Bag(None), []),
        (lambda: Bag([None]), []),
        (lambda: Bag([(W, DW)], w=W, dw=DW), ["w"]),
        (lambda: Bag([[Holder(W), Holder(B)]]), ["0.0", "0.1"]),
        (lambda: Bag([W], w=W), ["w"]),
        (lambda: Bag({"weight": W}), ["weight"]),
        (lambda: Bag({"weight": Holder(W)}), ["weight"]),
        (lambda: Bag({"weight": (W, DW)}), ["weight"]),
        (lambda: Bag([W, B], w=W, b=B), ["w", "b"]),
        (lambda: Bag([W, DW, B, DB]), ["0", "1"]),
        (lambda: Bag([(W, W.clone())]), ["0.0"]),
        (lambda: Bag(lambda: iter([(W, DW)]), w=W, dw=DW), ["w"]),
    ],
    ids=[
        "a_tensor_alone",
        "none",
        "a_list_of_none",
        "a_pair",
        "a_list_of_parameter_objects",
        "a_tensor_with_its_grad",
        "a_dict_of_tensors",
        "a_dict_of_objects",
        "a_dict_of_pairs",
        "tensors_found_by_attribute",
        "unnamed_flat_pairs",
        "a_lone_pair_of_one_shape",
        "a_generator",
    ],
)
def test_each_form_is_read(build, names):
    assert _names(build()) == names


def test_a_tensor_listed_twice_is_one_parameter():
    assert _names(Bag([(W, DW), (W, DW)], w=W, dw=DW)) == ["w"]


@pytest.mark.parametrize(
    ("listed", "message"),
    [
        (42, "param returned a int; expected a list of parameters"),
        ([(W, "grad", 3)], "parameter item 0 is a tuple of length 3 holding Tensor, str, int"),
        (["w"], "parameter item 0 is a str"),
        ([{"weight": "w"}], "parameter item 0 is a str"),
    ],
    ids=["a_number", "a_triple_of_other_things", "a_string", "a_dict_of_strings"],
)
def test_an_unreadable_form_is_refused_with_the_adapter(listed, message):
    with pytest.raises(CannotAdapt, match=message) as caught:
        list_params(Bag(listed), {})
    assert "class Adapter" in str(caught.value)


def test_gradients_made_lazily_are_read_from_the_attribute_once_it_exists():
    module = Bag([W], w=W)
    (param,) = list_params(module, {})
    assert param.read_grad() is None
    module.dw = torch.ones(2, 3)
    assert param.read_grad() is module.dw


def test_a_grad_method_of_the_wrong_length_is_not_used():
    module = Bag([W, B], w=W, b=B)
    module.grad = lambda: [DW]
    assert [p.kind for p in list_params(module, {})] == [".grad", ".grad"]


def test_a_grad_method_that_raises_is_not_used():
    module = Bag([W], w=W)

    def grad():
        raise RuntimeError("no gradients yet")

    module.grad = grad
    (param,) = list_params(module, {})
    assert param.kind == ".grad"


def test_promotion_converts_held_tensors_and_undo_restores_them():
    cache = torch.zeros(2, dtype=torch.float32)
    mask = torch.ones(2, dtype=torch.bool)
    module = Bag([(W.float(), DW.float())], cache=cache, mask=mask, nested={"more": [cache]})
    params = list_params(module, {})
    undo = promote(module, params, torch.float64)
    assert module.cache.dtype == torch.float64 and module.mask.dtype == torch.bool
    assert params[0].tensor.dtype == torch.float64
    undo()
    assert module.cache.dtype == torch.float32 and params[0].tensor.dtype == torch.float32
