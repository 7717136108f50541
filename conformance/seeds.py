"""The five course reports ("seeds") and their experiments, each with its own stated setup.

Each :class:`Seed` lists what its report states, what it leaves out and what these runs chose
instead, and its experiments as :class:`Row`\\ s: a :class:`~conformance.spec.Config` and the
accuracy the report published. The reports themselves are not in this repository; the quotes
below are theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    """One experiment of a seed and the test accuracy it published.

    ``published`` is ``(mean, standard deviation)`` in percent, the deviation ``None`` when the
    seed trained once; seeds that reported errors are converted to accuracies (100 - error).
    ``note`` says why our number may differ from the published one; the report shows it for
    every row whose published number lies outside our mean +- 2 standard deviations.
    """

    seed: str
    label: str
    config: Config
    published: tuple[float, float | None] | None
    note: str = ""
    claim: str = ""
    """A published claim other than an accuracy (seed 004's "loss within 1e-6")."""


@dataclass(frozen=True)
class Seed:
    """One course report: its setup, the gaps in it and the choices made, its experiments."""

    id: str
    title: str
    stated: tuple[str, ...]
    chosen: tuple[tuple[str, str], ...]
    """``(what the report did not state, what these runs use)`` pairs."""
    rows: tuple[Row, ...]
    runs: int
    """Runs per experiment in the full mode (the report's rounds where it states them)."""
    quick_epochs: int
    """Epochs per run with ``--quick`` (the full mode trains the stated epochs)."""
    map_row: str
    """The label of the row whose first run is drawn as the decision map."""
    notes: tuple[str, ...] = field(default_factory=tuple)


def _label(config: Config, extra: str = "") -> str:
    parts = [_NAMES[config.loss], _NAMES[config.optimizer], _NAMES[config.activation]]
    return " / ".join(parts) + extra


# --------------------------------------------------------------------------------------- seed 000
_000_BASE = Config(
    loss="mse",
    optimizer="sgd",
    optimizer_options={"lr": 0.01, "momentum": 0.15},
    batch_size=1,
    epochs=7,
    outputs=1,
)
_000_NOTE = (
    "The report's numbers do not come from the training it states: it says its SGD was never "
    "implemented (\"optimize parameters with SGD for MSE (wasn't implemented due to time "
    'restrains)"; "no optimizer has been used here"), and its ReLU log counts 3,275,462 errors '
    "among 1,000 points in the first round. Its numbers are one run each, with no spread of "
    "their own; ours are the stated training (lr 0.01, momentum 0.15, 7 epochs) over 10 runs."
)
SEED_000 = Seed(
    id="000",
    title="EE-559 mini-project 1 (Chrysanthou, Germini, 2021)",
    stated=(
        "2 inputs, 3 hidden layers of 25 units, 1 output unit (2-25-25-25-1)",
        "MSE loss",
        "hidden activation Tanh, Sigmoid or ReLU, one model each",
        "SGD, learning rate 0.01, momentum 0.15",
        "Rounds = 7: its log prints seven training errors, then one test error, per model, so a "
        "round is an epoch",
        "1,000 training and 1,000 test points, uniform in [0, 1]^2, label 1 inside the disk",
        "one run per activation (test error 25.2 % Tanh, 25.0 % Sigmoid, 47.4 % ReLU)",
    ),
    chosen=(
        ("initialisation", "torch.nn.Linear's default, U(-1/sqrt(n_in), 1/sqrt(n_in))"),
        ("batch size", "1: stochastic gradient descent in its literal sense"),
        ("output and targets", "no output activation; the 0/1 label as a float; inside = > 0.5"),
        ("momentum's definition", "torch's: v = 0.15 v + g, p = p - 0.01 v (no dampening)"),
        ("standardisation", "none: the raw points of the unit square"),
        ("runs", "10 per activation (seeds 0-9), against the report's one"),
    ),
    rows=tuple(
        Row(
            "000",
            _label(_000_BASE.replace(activation=activation)),
            _000_BASE.replace(activation=activation),
            (published, None),
            _000_NOTE,
        )
        for activation, published in (("tanh", 74.8), ("sigmoid", 75.0), ("relu", 52.6))
    ),
    runs=10,
    quick_epochs=2,
    map_row="MSE / SGD / Tanh",
)

# --------------------------------------------------------------------------------------- seed 001
_001_BASE = Config(
    activation="relu",
    loss="bce",
    optimizer="sgd",
    optimizer_options={"lr": 0.1},
    schedule="exponential",
    schedule_options={"gamma": 0.9997},
    batch_size=1000,
    epochs=10_000,
    hidden=(25, 25, 25, 25),
    outputs=1,
)
_001_NOTE = (
    "The report fine-tuned its learning rate and decay by trial and error and published neither; "
    "it reports one run's saturated accuracy without saying whether on the training or a test "
    "set, and its hidden widths and batch size are unstated. These runs use one untuned choice "
    "(widths 25, full batch, lr 0.1 decayed by 0.9997 per epoch) over 5 runs."
)
SEED_001 = Seed(
    id="001",
    title="Mini Project 2 (Pillonel, Plassmann, 2020)",
    stated=(
        "five Linear layers with four ReLUs between them",
        "model A: a Sigmoid output with binary cross-entropy; model B: a Tanh output with MSE",
        "weights and biases from U(-1/sqrt(n_in), 1/sqrt(n_in)): torch.nn.Linear's default",
        "SGD whose learning rate decreases by a decay coefficient during training",
        "10,000 epochs on 1,000 points; accuracy saturates at 97.7 % (Tanh, after ~3,000 "
        "epochs) and 96 % (Sigmoid, after ~6,000), one run each",
        "Figure 1: the model's output over the unit square as a colour map",
    ),
    chosen=(
        ("hidden widths", "25 each (2-25-25-25-25-1), the course's width"),
        (
            "batch size",
            "the whole training set (1,000): 10,000 epochs of mini-batches in two "
            "frameworks would take hours",
        ),
        (
            "learning rate and decay",
            "lr 0.1, ExponentialLR gamma 0.9997 per epoch (lr 0.005 at "
            "the end); the report tuned both and published neither",
        ),
        ("MSE targets for the Tanh output", "the 0/1 label; inside = output > 0.5"),
        ("which accuracy", "test accuracy on 1,000 fresh points"),
        ("standardisation", "none"),
        ("runs", "5 per model (seeds 0-4), against the report's one"),
    ),
    rows=(
        Row(
            "001",
            "BCE / SGD / ReLU, Sigmoid output",
            _001_BASE.replace(loss="bce"),
            (96.0, None),
            _001_NOTE,
        ),
        Row(
            "001",
            "MSE / SGD / ReLU, Tanh output",
            _001_BASE.replace(loss="mse", output_activation="tanh"),
            (97.7, None),
            _001_NOTE,
        ),
    ),
    runs=5,
    quick_epochs=300,
    map_row="BCE / SGD / ReLU, Sigmoid output",
)

# --------------------------------------------------------------------------------------- seed 002
_002_PUBLISHED = {
    ("mse", "sgd"): {"relu": (96.7, 1.1), "tanh": (95.3, 1.4), "leaky_relu": (89.7, 1.2)},
    ("mse", "adam"): {"relu": (96.8, 1.6), "tanh": (94.9, 1.9), "leaky_relu": (85.9, 2.8)},
    ("ce", "sgd"): {"relu": (97.4, 0.9), "tanh": (97.0, 1.0), "leaky_relu": (92.7, 0.8)},
    ("ce", "adam"): {"relu": (96.9, 0.6), "tanh": (96.7, 1.4), "leaky_relu": (94.7, 1.6)},
}
_002_NOTE = (
    "The report tuned a learning rate per row by grid search and published only the best "
    "model's (SGD 0.001 for CE / ReLU); the other rows here use one untuned rate per loss and "
    "optimizer. 10 runs of 1,200 steps each spread by about a point, so a rate that is off "
    "by a factor of a few moves the mean by more than two deviations."
)
SEED_002 = Seed(
    id="002",
    title="Mini Deep Learning Framework (Biolková, Pham)",
    stated=(
        "2 inputs, 3 hidden layers of 25 units, 2 outputs with one-hot targets",
        "ReLU, Tanh or LeakyReLU (alpha 0.05) after each hidden layer",
        "MSE (eq. 6, a mean over the samples) and cross-entropy (eq. 7, a sum over the samples)",
        "SGD and Adam (beta1 0.9, beta2 0.999, eps 1e-8)",
        "Xavier normal initialisation of weights and biases, N(0, g sqrt(2/(n_in + n_out))), "
        "with the activation's gain g (ReLU: sqrt(2)); without an activation (the last layer), "
        "the standard normal",
        "standardised inputs (zero mean, unit standard deviation)",
        "30 epochs, batch 25, 10 runs per configuration; the best model, CE / SGD / ReLU, with "
        "learning rate 0.001",
    ),
    chosen=(
        (
            "learning rates of the other rows",
            "SGD 0.001 for CE (the published rate), SGD 0.1 "
            "for MSE (with the mean, 0.001 barely moves in 1,200 steps), Adam 0.001",
        ),
        (
            "Tanh and LeakyReLU gains",
            "torch.nn.init.calculate_gain's: 5/3 and sqrt(2/(1 + 0.05^2))",
        ),
        ("standardisation statistics", "the training set's mean and deviation, for both sets"),
        (
            "MSE's normalisation",
            "torch's mean over samples and both outputs (eq. 6 divides by "
            "the samples only: twice the gradient, as a learning rate twice as large)",
        ),
        ("Adam's eps", "outside the square root, as torch.optim.Adam (eq. 8 puts it inside)"),
    ),
    rows=tuple(
        Row(
            "002",
            _label(config),
            config,
            numbers,
            _002_NOTE,
        )
        for (loss, optimizer), by_activation in _002_PUBLISHED.items()
        for activation, numbers in by_activation.items()
        for config in (
            Config(
                activation=activation,
                loss=loss,
                optimizer=optimizer,
                optimizer_options={"lr": 0.001 if optimizer == "adam" or loss == "ce" else 0.1},
                reduction="sum" if loss == "ce" else "mean",
                batch_size=25,
                epochs=30,
                standardize=True,
                negative_slope=0.05,
                weight_init="xavier_normal_gain",
            ),
        )
    ),
    runs=10,
    quick_epochs=5,
    map_row="CE / SGD / ReLU",
    notes=(
        "At SGD 0.1 with MSE, three of the ten ReLU and LeakyReLU runs overflow in their first "
        "epoch (the last layer's N(0, 1) weights make the first steps large) and end near 50 %. "
        "There the ReLU row is not exact: nnlite's ReLU backward multiplies the gradient by its "
        "0/1 mask (inf x 0 = NaN) where torch's threshold_backward selects 0; "
        "test_properties.py keeps the case as a strict xfail until nnlite matches.",
    ),
)

# --------------------------------------------------------------------------------------- seed 003
_003_BASE = Config(
    loss="mse",
    optimizer="sgd",
    optimizer_options={"lr": 0.1},
    batch_size=10,
    epochs=100,
    outputs=1,
    negative_slope=0.01,
    alpha=0.01,
)
_003_NOTE = (
    "The report used a constant learning rate it did not publish; these runs use 0.1 for every "
    "row. It also chose its activations' parameters (lambda = 3, alpha = 0.01) as 'the best "
    "results' on its own runs."
)
_003_TABLE_1 = {
    "relu": (33.15, 22.11),
    "sigmoid": (13.69, 13.83),
    "elu": (5.19, 1.37),
    "leaky_relu": (4.45, 1.08),
    "tanh": (4.43, 1.28),
}


def _003_row(label: str, config: Config, error: float, sd: float) -> Row:
    return Row("003", label, config, (round(100 - error, 2), sd), _003_NOTE)


_003_TANH = _003_BASE.replace(activation="tanh")
SEED_003 = Seed(
    id="003",
    title="Deep learning framework for 2D point classification (Orgiazzi, Villa, Karsunky)",
    stated=(
        "2 inputs, 3 hidden layers of 25 units, 1 output (2-25-25-25-1)",
        "Table I: MSE with ReLU, Sigmoid with slope lambda = 3 (1/(1 + e^(-3x))), ELU with "
        "alpha = 0.01, LeakyReLU with beta = 0.01, Tanh",
        "Table II: Tanh with cross-entropy, with MSE and dropout 0.2, with cross-entropy and "
        "dropout 0.2 (dropout scales the kept units by 1/(1 - p))",
        "SGD with a constant learning rate",
        "20 rounds: 20 models with different initialisations, each on its own 1,000-point test set",
        "100 epochs, mini-batch 10",
    ),
    chosen=(
        ("learning rate", "0.1"),
        ("initialisation", "torch.nn.Linear's default"),
        ("outputs with cross-entropy", "2 (cross-entropy needs a score per class)"),
        ("Adam", "not used: Section IV adds it, but neither table says which rows it trained"),
        ("where dropout sits", "after each hidden activation"),
        ("training set", "1,000 fresh points per round"),
        ("standardisation", "none"),
        (
            "sigmoid's slope",
            "Scale(3) then Sigmoid in both frameworks: nnlite's Scale "
            "multiplies forward and backward by 3, torch.nn's computes input * 3 under autograd",
        ),
    ),
    rows=(
        *(
            _003_row(
                _label(_003_BASE.replace(activation=activation), extra),
                _003_BASE.replace(
                    activation=activation, sigmoid_slope=3.0 if activation == "sigmoid" else 1.0
                ),
                *_003_TABLE_1[activation],
            )
            for activation, extra in (
                ("relu", ""),
                ("sigmoid", " (lambda = 3)"),
                ("elu", " (alpha = 0.01)"),
                ("leaky_relu", " (beta = 0.01)"),
                ("tanh", ""),
            )
        ),
        _003_row("CE / SGD / Tanh", _003_TANH.replace(loss="ce", outputs=2), 4.74, 1.30),
        _003_row("MSE / SGD / Tanh + dropout 0.2", _003_TANH.replace(dropout=0.2), 4.49, 0.85),
        _003_row(
            "CE / SGD / Tanh + dropout 0.2",
            _003_TANH.replace(loss="ce", outputs=2, dropout=0.2),
            6.39,
            1.13,
        ),
    ),
    runs=20,
    quick_epochs=5,
    map_row="CE / SGD / Tanh",
    notes=(
        "Its Figure 2 is captioned 'Tanh and Cross Entropy' (the text says Leaky-ReLU); the "
        "decision map follows the caption.",
        "Its dropout's backward 'just returns the gradient without changing it' instead of "
        "masking it; these runs use Dropout as torch.nn defines it.",
    ),
)

# --------------------------------------------------------------------------------------- seed 004
_004_BASE = Config(
    activation="relu",
    loss="mse",
    optimizer="sgd",
    optimizer_options={"lr": 0.01, "momentum": 0.9},
    batch_size=25,
    epochs=25,
    weight_init="xavier_normal",
)
SEED_004 = Seed(
    id="004",
    title="Deep Learning - Miniproject 2, MyTorch (Altunina, Pfister, Zenhaeusern)",
    stated=(
        "2 inputs, 3 hidden layers of 25 units, 2 outputs, ReLU after every hidden layer",
        "MSE loss",
        "weights and biases from N(0, sigma^2), sigma = sqrt(2/(n_in + n_out)) (Xavier normal)",
        "batch processing, the gradients averaged over the batch as torch does",
        "SGD with momentum as torch defines it: v = rho v + g, p = p - alpha v",
        "25 epochs, 10 runs; test error 4.0 % +- 6.5 (MyTorch) and 5.3 % +- 7.9 (PyTorch)",
        "validation: both frameworks with every parameter 1e-6 give training losses within 1e-6 "
        "per epoch and equal accuracies",
    ),
    chosen=(
        ("batch size", "25"),
        ("learning rate and momentum", "0.01 and 0.9"),
        ("targets", "one-hot, as the two outputs imply"),
        ("standardisation", "none"),
        ("the validation's training", "the same as the main experiment, from parameters 1e-6"),
    ),
    rows=(
        Row(
            "004",
            "MSE / SGD momentum / ReLU, Xavier normal",
            _004_BASE,
            (96.0, 6.5),
            "The report published neither its learning rate, momentum nor batch size.",
        ),
        Row(
            "004",
            "MSE / SGD momentum / ReLU, every parameter 1e-6",
            _004_BASE.replace(weight_init="constant", init_value=1e-6),
            None,
            claim="training loss within 1e-6 of PyTorch's per epoch, equal accuracies",
        ),
    ),
    runs=10,
    quick_epochs=5,
    map_row="MSE / SGD momentum / ReLU, Xavier normal",
    notes=(
        "The published column is MyTorch's 4.0 % +- 6.5 test error; PyTorch's was 5.3 % +- 7.9 "
        "(94.7 % +- 7.9 accuracy).",
        "Its claim 'within 1e-6' is replaced by bit equality at every epoch: the conformance "
        "harness compares every loss, gradient, parameter, optimizer state and output.",
    ),
)

SEEDS: dict[str, Seed] = {s.id: s for s in (SEED_000, SEED_001, SEED_002, SEED_003, SEED_004)}
