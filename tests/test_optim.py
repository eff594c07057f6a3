"""optim: update rules equal PyTorch's step by step, in-place updates, state_dict resume,
schedules, and a tiny CNN that actually learns."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_cnn import Tensor, manual_seed, nn, ops, optim

CONFIGS = {
    "sgd": ("SGD", dict(lr=0.1)),
    "sgd_momentum_wd": ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.05)),
    "sgd_nesterov_wd": ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    "sgd_dampening": ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    "adam": ("Adam", dict(lr=0.01)),
    "adam_wd": ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    "adamw": ("AdamW", dict(lr=0.02, weight_decay=0.1)),
}


def tiny_model() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2)).double()


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_trajectory_matches_torch(case):
    torch = pytest.importorskip("torch")
    name, kwargs = CONFIGS[case]
    manual_seed(0)
    ours = tiny_model()
    ref = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    ref = ref.double()
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    opt = getattr(optim, name)(ours.parameters(), **kwargs)
    ref_opt = getattr(torch.optim, name)(ref.parameters(), **kwargs)
    rng = np.random.default_rng(0)
    for _ in range(6):
        x, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 2))
        opt.zero_grad()
        ref_opt.zero_grad()
        ((ours(Tensor(x)) - Tensor(y)) ** 2).mean().backward()
        ((ref(torch.from_numpy(x)) - torch.from_numpy(y)) ** 2).mean().backward()
        opt.step()
        ref_opt.step()
        ref_params = dict(ref.named_parameters())
        for key, p in ours.named_parameters():
            np.testing.assert_allclose(
                p.data, ref_params[key].detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=key
            )


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_updates_in_place_and_skip_params_without_grad(case):
    name, kwargs = CONFIGS[case]
    used, unused = nn.Parameter(np.ones(3)), nn.Parameter(np.ones(2))
    opt = getattr(optim, name)([used, unused], **kwargs)
    arrays = used.data, unused.data
    for _ in range(2):
        opt.zero_grad()
        (used * used).sum().backward()
        opt.step()
    assert used.data is arrays[0] and unused.data is arrays[1]  # same arrays, updated
    assert not np.allclose(used.data, 1.0)
    np.testing.assert_array_equal(unused.data, np.ones(2))  # grad None: untouched
    assert opt.state[1] == {}
    opt.zero_grad()
    assert used.grad is None


def test_float32_params_stay_float32():
    p = nn.Parameter(np.ones(3, dtype=np.float32))
    for opt in (optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1), optim.Adam([p])):
        p.grad = np.full(3, 0.5, dtype=np.float32)
        opt.step()
        opt.step()
        assert p.data.dtype == np.float32


@pytest.mark.parametrize("case", ["sgd_momentum_wd", "adam_wd"])
def test_state_dict_resumes_training_exactly(case):
    name, kwargs = CONFIGS[case]
    rng = np.random.default_rng(1)
    batches = [(rng.standard_normal((8, 4)), rng.standard_normal((8, 2))) for _ in range(6)]

    def train(model, opt, steps):
        for x, y in steps:
            opt.zero_grad()
            ((model(Tensor(x)) - Tensor(y)) ** 2).mean().backward()
            opt.step()

    manual_seed(1)
    model = tiny_model()
    opt = getattr(optim, name)(model.parameters(), **kwargs)
    train(model, opt, batches[:3])
    model_state, opt_state = model.state_dict(), opt.state_dict()
    train(model, opt, batches[3:])

    resumed = tiny_model()
    resumed.load_state_dict(model_state)
    resumed_opt = getattr(optim, name)(resumed.parameters(), lr=1.0)  # lr comes from the state
    resumed_opt.load_state_dict(opt_state)
    assert resumed_opt.lr == kwargs["lr"]
    train(resumed, resumed_opt, batches[3:])
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[key], value)
    # the saved optimizer state was a copy: the continued training did not change it
    saved = opt_state["state"][0]
    assert not any(
        np.array_equal(v, opt.state[0][k]) for k, v in saved.items() if isinstance(v, np.ndarray)
    )


def test_optimizer_load_state_dict_errors():
    opt = optim.SGD([nn.Parameter(np.ones(3)), nn.Parameter(np.ones(2))], lr=0.1, momentum=0.9)
    other = optim.SGD([nn.Parameter(np.ones(3))], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="the state is for 1 parameters, this optimizer has 2"):
        opt.load_state_dict(other.state_dict())
    state = {
        "state": {1: {"momentum_buffer": np.zeros(5)}},
        "param_groups": [{"lr": 0.5, "params": [0, 1]}],
    }
    with pytest.raises(
        ValueError,
        match=r"'momentum_buffer' of parameter 1 has shape \(5,\), "
        r"the parameter has \(2,\)",
    ):
        opt.load_state_dict(state)
    assert opt.lr == 0.1  # nothing changed


def test_optimizer_argument_errors():
    p = nn.Parameter(np.ones(2))
    with pytest.raises(ValueError, match="SGD: got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="SGD: params must be an iterable of Tensors"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match=r"SGD: lr must be a finite number >= 0, got -1"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="SGD: nesterov needs momentum > 0"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"Adam: betas\[1\] must be a finite number in \[0, 1\)"):
        optim.Adam([p], betas=(0.9, 1.0))
    assert len(optim.SGD([p, p], lr=0.1).params) == 1  # listed twice, updated once


@pytest.mark.parametrize("which", ["step", "cosine"])
def test_schedules_match_torch(which):
    torch = pytest.importorskip("torch")
    p, tp = nn.Parameter(np.zeros(1)), torch.zeros(1, requires_grad=True)
    opt, ref_opt = optim.SGD([p], lr=0.5), torch.optim.SGD([tp], lr=0.5)
    if which == "step":
        ours, ref = (
            optim.StepLR(opt, 3, gamma=0.5),
            torch.optim.lr_scheduler.StepLR(ref_opt, 3, gamma=0.5),
        )
    else:
        ours = optim.CosineAnnealingLR(opt, T_max=7, eta_min=0.01)
        ref = torch.optim.lr_scheduler.CosineAnnealingLR(ref_opt, T_max=7, eta_min=0.01)
    for _ in range(10):
        ref_opt.step()
        ref.step()
        ours.step()
        assert ours.get_last_lr()[0] == pytest.approx(ref.get_last_lr()[0], rel=1e-12)
    state = ours.state_dict()
    again = optim.StepLR(optim.SGD([p], lr=9.0), 1) if which == "step" else None
    if again is not None:
        again.load_state_dict(state)
        assert again.last_epoch == 10 and again.base_lr == 0.5


@pytest.mark.parametrize("name, lr", [("SGD", 0.05), ("Adam", 0.01)])
def test_tiny_cnn_halves_its_loss_in_30_steps(name, lr):
    manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 3, size=32)
    x[np.arange(32), 0, labels * 2, labels * 2] += 3.0  # a learnable signal per class
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 3)
    )
    opt = getattr(optim, name)(
        model.parameters(), lr=lr, **({"momentum": 0.9} if name == "SGD" else {})
    )
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = ops.cross_entropy(model(Tensor(x)), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 2, losses


# --- bad hyperparameters are refused at construction, naming the argument ---------------------

NAN, INF = float("nan"), float("inf")
BAD_HYPERPARAMETERS = [  # (optimizer, keyword, value, error, the name the message gives)
    *[(name, "lr", value, ValueError, "lr") for name in ("SGD", "Adam", "AdamW")
      for value in (NAN, INF, -INF, -0.1)],
    *[(name, "lr", value, TypeError, "lr") for name in ("SGD", "Adam", "AdamW")
      for value in ("0.1", None, True, 1j, np.ones(1))],
    *[(name, key, NAN, ValueError, key) for name in ("Adam", "AdamW")
      for key in ("eps", "weight_decay")],
    *[(name, "eps", "1e-8", TypeError, "eps") for name in ("Adam", "AdamW")],
    ("Adam", "betas", (NAN, 0.999), ValueError, r"betas\[0\]"),
    ("Adam", "betas", (0.9, INF), ValueError, r"betas\[1\]"),
    ("Adam", "betas", ("0.9", 0.999), TypeError, r"betas\[0\]"),
    ("Adam", "betas", 0.9, TypeError, "betas"),
    ("AdamW", "betas", (0.9, 0.999, 0.5), TypeError, "betas"),
    ("AdamW", "betas", (-0.1, 0.999), ValueError, r"betas\[0\]"),
    ("SGD", "momentum", NAN, ValueError, "momentum"),
    ("SGD", "momentum", INF, ValueError, "momentum"),
    ("SGD", "momentum", "0.9", TypeError, "momentum"),
    ("SGD", "weight_decay", NAN, ValueError, "weight_decay"),
    ("SGD", "weight_decay", -1e-4, ValueError, "weight_decay"),
    ("SGD", "dampening", NAN, ValueError, "dampening"),
    ("SGD", "dampening", 1.5, ValueError, "dampening"),
    ("SGD", "nesterov", "yes", TypeError, "nesterov"),
]  # fmt: skip


@pytest.mark.parametrize("name, key, value, error, named", BAD_HYPERPARAMETERS)
def test_bad_hyperparameter_refused_at_construction(name, key, value, error, named):
    kwargs = {"lr": 0.1, key: value}
    with pytest.raises(error, match=rf"{name}: {named} must be"):
        getattr(optim, name)([nn.Parameter(np.ones(2))], **kwargs)


def test_hyperparameter_set_after_construction_is_checked_at_step():
    p = nn.Parameter(np.ones(2))
    opt = optim.Adam([p], lr=0.1)
    p.grad = np.ones(2)
    opt.lr = float("nan")  # a user (or a schedule) may set it later
    with pytest.raises(ValueError, match="Adam: lr must be a finite number"):
        opt.step()
    np.testing.assert_array_equal(p.data, np.ones(2))
    assert opt.state[0] == {}


def test_optimizer_load_state_dict_refuses_bad_hyperparameters():
    p = nn.Parameter(np.ones(2))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    state = opt.state_dict()
    state["param_groups"][0]["lr"] = float("inf")
    with pytest.raises(ValueError, match="SGD: lr must be a finite number"):
        opt.load_state_dict(state)
    assert opt.lr == 0.1
    with pytest.raises(TypeError, match="expected the dict optimizer.state_dict"):
        opt.load_state_dict("optimizer.json")


BAD_SCHEDULES = [  # (schedule, keyword arguments, error, the name the message gives)
    ("StepLR", dict(step_size=0), ValueError, "step_size"),
    ("StepLR", dict(step_size=2.5), TypeError, "step_size"),
    ("StepLR", dict(step_size="3"), TypeError, "step_size"),
    ("StepLR", dict(step_size=2, gamma=NAN), ValueError, "gamma"),
    ("StepLR", dict(step_size=2, gamma=INF), ValueError, "gamma"),
    ("StepLR", dict(step_size=2, gamma="0.1"), TypeError, "gamma"),
    ("CosineAnnealingLR", dict(T_max=0), ValueError, "T_max"),
    ("CosineAnnealingLR", dict(T_max=NAN), TypeError, "T_max"),
    ("CosineAnnealingLR", dict(T_max=5, eta_min=NAN), ValueError, "eta_min"),
    ("CosineAnnealingLR", dict(T_max=5, eta_min="0"), TypeError, "eta_min"),
]


@pytest.mark.parametrize("name, kwargs, error, named", BAD_SCHEDULES)
def test_bad_schedule_setting_refused_at_construction(name, kwargs, error, named):
    opt = optim.SGD([nn.Parameter(np.ones(2))], lr=0.1)
    with pytest.raises(error, match=rf"{name}: {named} must be"):
        getattr(optim, name)(opt, **kwargs)
    assert opt.lr == 0.1


def test_schedule_load_state_dict_checks_before_setting():
    schedule = optim.StepLR(optim.SGD([nn.Parameter(np.ones(2))], lr=0.1), step_size=2)
    with pytest.raises(ValueError, match="StepLR: gamma must be a finite number"):
        schedule.load_state_dict({"gamma": float("nan"), "last_epoch": 7})
    with pytest.raises(ValueError, match=r"StepLR.load_state_dict: unknown keys \['optimizer'\]"):
        schedule.load_state_dict({"optimizer": None})
    assert schedule.gamma == 0.1 and schedule.last_epoch == 0


# --- step() checks every gradient before it changes anything ----------------------------------


def _trained_twice(name):
    """An optimizer of `name` over three parameters, after two steps (so it has state)."""
    _, kwargs = CONFIGS[name]
    params = [nn.Parameter(np.full(shape, 1.5)) for shape in [(4, 3), (3,), (2, 2)]]
    opt = getattr(optim, CONFIGS[name][0])(params, **kwargs)
    for _ in range(2):
        for p in params:
            p.grad = np.full(p.shape, 0.25)
        opt.step()
    return params, opt


BAD_GRADS = {  # what a bad .grad of the middle parameter (shape (3,)) looks like
    "wrong_shape_broadcastable": (np.ones((1, 3)), ValueError, r"shape \(3,\) but its .grad"),
    "wrong_shape_scalar": (np.ones(()), ValueError, r"its .grad has shape \(\)"),
    "wrong_dtype": (np.ones(3, dtype=np.float32), TypeError, "float64 but its .grad is float32"),
    "not_an_array": ([1.0, 1.0, 1.0], TypeError, ".grad of type list"),
}


@pytest.mark.parametrize("bad", sorted(BAD_GRADS))
@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_step_with_one_bad_grad_changes_no_parameter_and_no_state(case, bad):
    params, opt = _trained_twice(case)
    before = [p.data.copy() for p in params]
    state_before = opt.state_dict()
    for p in params:
        p.grad = np.full(p.shape, 0.5)
    grad, error, message = BAD_GRADS[bad]
    params[1].grad = grad
    with pytest.raises(error, match=message):
        opt.step()
    for p, old in zip(params, before):
        np.testing.assert_array_equal(p.data, old)  # the first parameter was not touched
    state_after = opt.state_dict()
    assert state_after["param_groups"] == state_before["param_groups"]
    for i, entry in state_before["state"].items():
        for key, value in entry.items():
            np.testing.assert_array_equal(state_after["state"][i][key], value, err_msg=key)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf - inf
@pytest.mark.parametrize("case", ["sgd_momentum_wd", "adam"])
def test_step_accepts_non_finite_grads_as_torch_does(case):
    torch = pytest.importorskip("torch")
    name, kwargs = CONFIGS[case]
    p = nn.Parameter(np.ones(3))
    ref = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt, ref_opt = getattr(optim, name)([p], **kwargs), getattr(torch.optim, name)([ref], **kwargs)
    grad = np.array([np.nan, np.inf, 1.0])
    p.grad, ref.grad = grad.copy(), torch.from_numpy(grad.copy())
    opt.step()
    ref_opt.step()
    np.testing.assert_array_equal(p.data, ref.detach().numpy())  # nan where torch has nan
