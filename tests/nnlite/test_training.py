"""nnlite.training: the epoch loop runs in torch's order and trains as torch does, bit for bit."""

import pytest
import torch

import nnlite
from nnlite import data, optim
from nnlite.training import accuracy, train_epoch, train_step


class _Spy:
    """A one-parameter model, loss and optimizer that record the order of the loop's calls."""

    def __init__(self):
        self.calls = []
        self.training = True

    # model
    def __call__(self, *args):
        self.calls.append(("forward" if len(args) == 1 else "loss", len(args[0])))
        return args[0].sum() if len(args) == 2 else args[0]

    def backward(self, grad):
        self.calls.append(("backward", grad))

    def train(self, mode=True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    # optimizer and criterion
    def zero_grad(self):
        self.calls.append(("zero_grad",))

    def step(self):
        self.calls.append(("step",))


class _Criterion:
    def __init__(self, spy):
        self.spy = spy

    def __call__(self, output, target):
        self.spy.calls.append(("loss", len(output)))
        return (output - target).sum()

    def backward(self):
        self.spy.calls.append(("criterion.backward",))
        return "grad"


def test_each_batch_runs_zero_grad_forward_loss_backward_step_in_that_order():
    spy = _Spy()
    loss = train_epoch(spy, _Criterion(spy), spy, torch.ones(5, 1), torch.zeros(5, 1), 2)
    per_batch = lambda n: [  # noqa: E731
        ("zero_grad",),
        ("forward", n),
        ("loss", n),
        ("criterion.backward",),
        ("backward", "grad"),
        ("step",),
    ]
    assert spy.calls == per_batch(2) + per_batch(2) + per_batch(1)
    assert loss == (2 + 2 + 1) / 3


def test_train_step_runs_one_batch_in_torch_order_and_returns_the_loss():
    spy = _Spy()
    loss = train_step(spy, _Criterion(spy), spy, torch.ones(3, 1), torch.zeros(3, 1))
    assert spy.calls == [
        ("zero_grad",),
        ("forward", 3),
        ("loss", 3),
        ("criterion.backward",),
        ("backward", "grad"),
        ("step",),
    ]
    assert loss == 3.0 and isinstance(loss, float)


def test_train_step_frees_the_cache_skips_the_input_gradient_and_overwrites_gradients():
    calls = []

    class Recording(nnlite.Sequential):
        def backward(self, grad, **options):
            calls.append(options)
            return super().backward(grad, **options)

    torch.manual_seed(0)
    model = Recording(nnlite.Linear(2, 3), nnlite.ReLU(), nnlite.Linear(3, 1))
    optimizer = optim.SGD(model.param(), lr=0.1)
    train_step(model, nnlite.MSELoss(), optimizer, torch.rand(4, 2), torch.rand(4, 1))
    assert calls == [{"free_cache": True, "input_grad": False, "accumulate": False}]
    assert model[0]._input is None  # the cache was dropped


def test_train_step_equals_torch_step_by_step():
    ours, theirs = _twin_networks(torch.float32)
    ours_opt = optim.SGD(ours.param(), lr=0.1, momentum=0.9)
    theirs_opt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    inputs = torch.rand(5, 2, generator=torch.Generator().manual_seed(3))
    targets = torch.rand(5, 2, generator=torch.Generator().manual_seed(4))
    for _ in range(4):
        ours_loss = train_step(ours, nnlite.MSELoss(), ours_opt, inputs, targets)
        theirs_opt.zero_grad()
        theirs_loss = torch.nn.MSELoss()(theirs(inputs), targets)
        theirs_loss.backward()
        theirs_opt.step()
        assert ours_loss == theirs_loss.item()
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key


def _twin_networks(dtype):
    torch.manual_seed(0)
    ours = nnlite.Sequential(nnlite.Linear(2, 8), nnlite.Tanh(), nnlite.Linear(8, 2)).to(dtype)
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).to(
        dtype
    )
    return ours, theirs


def _torch_epoch(model, criterion, optimizer, inputs, targets, batch_size, generator):
    order = torch.randperm(len(inputs), generator=generator)
    losses = []
    for start in range(0, len(inputs), batch_size):
        index = order[start : start + batch_size]
        optimizer.zero_grad()
        loss = criterion(model(inputs[index]), targets[index])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


OPTIMIZERS = [
    ("sgd-momentum", optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    ("adam-amsgrad", optim.Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True)),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(
    "ours_cls, theirs_cls, options",
    [case[1:] for case in OPTIMIZERS],
    ids=[case[0] for case in OPTIMIZERS],
)
def test_three_shuffled_epochs_train_exactly_like_torch(ours_cls, theirs_cls, options, dtype):
    inputs, labels = data.disk_dataset(100, generator=torch.Generator().manual_seed(1), dtype=dtype)
    targets = data.one_hot(labels, dtype=dtype)
    ours, theirs = _twin_networks(dtype)
    ours_opt = ours_cls(ours.param(), **options)
    theirs_opt = theirs_cls(theirs.parameters(), **options)
    ours_gen, theirs_gen = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    for _ in range(3):
        ours_loss = train_epoch(
            ours, nnlite.MSELoss(), ours_opt, inputs, targets, 16, shuffle=True, generator=ours_gen
        )
        theirs_loss = _torch_epoch(
            theirs, torch.nn.MSELoss(), theirs_opt, inputs, targets, 16, theirs_gen
        )
        assert ours_loss == theirs_loss
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key


def test_train_epoch_learns_the_disk_problem():
    torch.manual_seed(0)
    inputs, labels = data.disk_dataset(1000, generator=torch.Generator().manual_seed(0))
    model = nnlite.Sequential(
        nnlite.Linear(2, 25), nnlite.ReLU(), nnlite.Linear(25, 25), nnlite.ReLU(),
        nnlite.Linear(25, 2),
    )  # fmt: skip
    optimizer = optim.Adam(model.param(), lr=0.01)
    generator = torch.Generator().manual_seed(0)
    losses = [
        train_epoch(model, nnlite.CrossEntropyLoss(), optimizer, inputs, labels, 50,
                    shuffle=True, generator=generator)
        for _ in range(30)
    ]  # fmt: skip
    assert losses[-1] < 0.5 * losses[0]
    assert accuracy(model, inputs, labels) > 0.9


def test_train_epoch_with_one_hot_targets_and_mse():
    inputs, labels = data.disk_dataset(40, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = nnlite.Sequential(nnlite.Linear(2, 2))
    before = model.state_dict()["0.weight"].clone()
    loss = train_epoch(
        model, nnlite.MSELoss(), optim.SGD(model.param(), lr=0.1), inputs, data.one_hot(labels), 8
    )
    assert isinstance(loss, float) and loss > 0
    assert not torch.equal(model.state_dict()["0.weight"], before)


class _Fixed:
    """A model returning fixed outputs, recording the mode it was called in."""

    def __init__(self, outputs, training=True):
        self.outputs = outputs
        self.training = training
        self.called_in_training = None

    def __call__(self, inputs):
        self.called_in_training = self.training
        return self.outputs

    def train(self, mode=True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)


@pytest.mark.parametrize(
    "outputs, expected",
    [
        (torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]), 0.75),
        (torch.tensor([[0.9], [0.2], [0.7], [0.5]]), 0.75),
        (torch.tensor([0.9, 0.2, 0.7, 0.51]), 0.5),
    ],
    ids=["argmax-two-outputs", "threshold-one-column-0.5-is-class-0", "threshold-flat"],
)
def test_accuracy_uses_argmax_or_the_half_threshold(outputs, expected):
    labels = torch.tensor([1, 0, 0, 0])
    assert accuracy(_Fixed(outputs), torch.zeros(4, 2), labels) == expected


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_accuracy_evaluates_in_eval_mode_and_restores_the_mode(training):
    model = _Fixed(torch.zeros(2, 2), training=training)
    accuracy(model, torch.zeros(2, 2), torch.tensor([0, 1]))
    assert model.called_in_training is False
    assert model.training is training


def test_accuracy_restores_the_mode_when_the_model_raises():
    class Broken(_Fixed):
        def __call__(self, inputs):
            raise RuntimeError("broken forward")

    model = Broken(None, training=True)
    with pytest.raises(RuntimeError, match="broken forward"):
        accuracy(model, torch.zeros(2, 2), torch.tensor([0, 1]))
    assert model.training is True


def test_accuracy_turns_dropout_off():
    torch.manual_seed(0)
    model = nnlite.Sequential(nnlite.Linear(2, 50), nnlite.Dropout(0.9), nnlite.Linear(50, 2))
    inputs, labels = data.disk_dataset(50, generator=torch.Generator().manual_seed(0))
    model.eval()
    expected = (model(inputs).argmax(1) == labels).double().mean().item()
    model.train()
    assert [accuracy(model, inputs, labels) for _ in range(3)] == [expected] * 3
    assert model.training is True


BAD_ARGUMENTS = [
    (
        "three-dimensional-outputs",
        lambda m: accuracy(_Fixed(torch.zeros(2, 2, 2)), torch.zeros(2, 2), torch.tensor([0, 1])),
        ValueError,
        r"outputs of shape \(N,\), \(N, 1\) or \(N, C\), got \(2, 2, 2\)",
    ),
    (
        "float-labels",
        lambda m: accuracy(m, torch.zeros(2, 2), torch.zeros(2)),
        ValueError,
        r"integer class indices of shape \(N,\), got \(2,\) of dtype torch.float32",
    ),
    (
        "one-hot-labels",
        lambda m: accuracy(m, torch.zeros(2, 2), torch.zeros(2, 2).long()),
        ValueError,
        r"got \(2, 2\) .* pass targets.argmax\(1\)",
    ),
    (
        "length-mismatch",
        lambda m: accuracy(m, torch.zeros(3, 2), torch.zeros(2).long()),
        ValueError,
        r"as many labels as inputs .* got 2 labels for inputs of shape \(3, 2\)",
    ),
    (
        "empty-epoch",
        lambda m: train_epoch(m, m, m, torch.zeros(0, 2), torch.zeros(0), 4),
        ValueError,
        "train_epoch got no samples",
    ),
    (
        "bad-batch-size",
        lambda m: train_epoch(m, m, m, torch.zeros(4, 2), torch.zeros(4), 0),
        ValueError,
        "batch_size must be a positive int, got 0",
    ),
]


@pytest.mark.parametrize(
    "call, error, message",
    [case[1:] for case in BAD_ARGUMENTS],
    ids=[case[0] for case in BAD_ARGUMENTS],
)
def test_bad_argument_is_refused_with_a_clear_message(call, error, message):
    with pytest.raises(error, match=message):
        call(_Spy())
