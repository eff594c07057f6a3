"""Watching and steering training: layer health, schedules, early stopping, the lr range test,
augmentation, and what happens when the loss stops being finite (tiny data: fast)."""

import json
import math

import numpy as np
import pytest

from tinygrad_cnn import checkpoint, data, nn, optim
from tinygrad_cnn.callbacks import EarlyStopping
from tinygrad_cnn.health import COLUMNS, LayerHealth
from tinygrad_cnn.history import History
from tinygrad_cnn.lr_finder import lr_range_test, suggest_lr
from tinygrad_cnn.train import TrainingDiverged, fit, score
from tinygrad_cnn.viz import train_plots


def _blobs(n=128, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = rng.random((n, 1, 4, 4), dtype=np.float32) * 0.5 + 0.5 * labels[:, None, None, None]
    return images.astype(np.float32), labels


def _batches(images, labels, size=32):
    return [(images[i : i + size], labels[i : i + size]) for i in range(0, len(images), size)]


def _mlp(seed=0):
    nn.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))


def _strict(text):
    """json.loads that refuses the bare NaN / Infinity words."""

    def refuse(word):
        raise ValueError(f"not strict JSON: {word}")

    return json.loads(text, parse_constant=refuse)


# --- augmentation ----------------------------------------------------------------------------


def test_random_shift_moves_each_image_like_a_loop_would():
    rng = np.random.default_rng(0)
    x = rng.random((6, 2, 5, 7)).astype(np.float32)
    out = data.random_shift(x, 2, np.random.default_rng(1))
    draws = np.random.default_rng(1)
    dy, dx = draws.integers(0, 5, size=6), draws.integers(0, 5, size=6)
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for b in range(6):  # the reference: one image at a time
        np.testing.assert_array_equal(out[b], padded[b, :, dy[b] : dy[b] + 5, dx[b] : dx[b] + 7])
    with pytest.raises(ValueError, match="max_shift must be an int in"):
        data.random_shift(x, 5, rng)
    with pytest.raises(TypeError, match="transform must be callable"):
        data.DataLoader(x, np.zeros(6), 2, transform="shift")


def test_an_augmenting_loader_repeats_with_its_seed_and_keeps_its_order():
    images, labels = (np.arange(8 * 36, dtype=np.uint8).reshape(8, 6, 6), np.arange(8))

    def epoch(transform):
        loader = data.DataLoader(images, labels, 4, seed=3, transform=transform)
        return [(x.copy(), y.copy()) for x, y in loader]

    first, again, plain = epoch(data.RandomShift(1)), epoch(data.RandomShift(1)), epoch(None)
    for (x1, y1), (x2, _), (x0, y0) in zip(first, again, plain):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y0)  # same batches, only the pixels move
        assert x1.dtype == np.float32 and not np.array_equal(x1, x0)


# --- schedules and early stopping ------------------------------------------------------------


def test_fit_steps_the_scheduler_and_logs_each_epochs_lr():
    images, labels = _blobs()
    model = _mlp()
    opt = optim.SGD(model.parameters(), lr=0.4)
    history = fit(model, _batches(images, labels), opt, epochs=4, verbose=False,
                  scheduler=optim.CosineAnnealingLR(opt, T_max=4))  # fmt: skip
    assert [round(lr, 4) for lr in history.column("lr")] == [0.4, 0.3414, 0.2, 0.0586]
    assert opt.lr == pytest.approx(0.0)


def test_early_stopping_stops_and_restores_the_best_epochs_weights(capsys):
    images, labels = _blobs()
    model = _mlp()
    states = {}

    def remember(epoch, logs):
        states[epoch] = {key: value.copy() for key, value in model.state_dict().items()}

    # validation labels are the opposite of the training labels: the better the model fits,
    # the worse its validation loss, so an early epoch stays the best
    val = _batches(images, 1 - labels)
    stop = EarlyStopping(patience=2)
    history = fit(model, _batches(images, labels), optim.Adam(model.parameters(), lr=0.05),
                  epochs=10, val_loader=val, callbacks=[remember, stop])  # fmt: skip
    best = int(np.argmin(history.column("val_loss"))) + 1
    assert stop.best_epoch == best and stop.stopped_epoch == len(history) == best + 2
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, states[best][key])
    out = capsys.readouterr().out
    assert f"early stop at epoch {best + 2}" in out
    assert f"restored the weights of epoch {best}" in out
    with pytest.raises(ValueError, match="the logs have no 'val_loss'"):
        fit(_mlp(), _batches(images, labels), optim.SGD(_mlp().parameters(), lr=0.1),
            callbacks=[EarlyStopping(1)], verbose=False)  # fmt: skip


# --- layer health -----------------------------------------------------------------------------


def test_watch_records_every_layer_and_names_a_layer_without_gradient(tmp_path, capsys):
    images, labels = _blobs()
    model = _mlp()
    model[1].bias.data[:] = -100.0  # every unit of the first ReLU is dead: no gradient flows back
    history = fit(model, _batches(images, labels), optim.SGD(model.parameters(), lr=0.1),
                  epochs=2, watch=2)  # fmt: skip
    rows = history.health.rows
    assert {row["layer"] for row in rows} == {"1 Linear", "3 Linear"}
    assert [row["step"] for row in rows if row["layer"] == "1 Linear"] == [2, 4, 6, 8]
    first = next(row for row in rows if row["layer"] == "1 Linear")
    assert first["grad_norm"] == 0 and first["dead_relu"] == 1.0 and first["flag"] == "low"
    last = next(row for row in rows if row["layer"] == "3 Linear")
    assert last["grad_norm"] > 0 and math.isnan(last["dead_relu"])  # no ReLU after it
    out = capsys.readouterr().out
    assert "warning: layer 1 Linear: gradient norm 0" in out
    assert out.count("warning: layer 1 Linear") == 1  # said once, not every epoch
    csv_path = history.health.to_csv(tmp_path / "layers.csv")
    header = csv_path.read_text().splitlines()[0].split(",")
    assert header == list(COLUMNS) and "grad_norm" in header and "update_ratio" in header
    assert train_plots.plot_layers(rows, tmp_path / "layers.png").stat().st_size > 10_000


def test_watching_leaves_training_unchanged_and_removes_its_hook():
    from tinygrad_cnn.nn import hooks

    images, labels = _blobs()
    runs = []
    for watch in (False, 1):
        model = _mlp()
        fit(model, _batches(images, labels), optim.Adam(model.parameters(), lr=0.01), epochs=2,
            verbose=False, watch=watch)  # fmt: skip
        runs.append(model.state_dict())
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[1][key])
    assert hooks.forward_hooks.hooks == ()
    with pytest.raises(ValueError, match="every must be an int >= 1"):
        LayerHealth(_mlp(), every=0)


# --- the lr range test -----------------------------------------------------------------------


def test_lr_range_test_grows_the_lr_and_stops_when_the_loss_diverges(tmp_path):
    images, labels = _blobs(256)
    model = _mlp()
    result = lr_range_test(model, _batches(images, labels), optim.SGD(model.parameters(), lr=1),
                           start=1e-4, end=1e4, steps=60)  # fmt: skip
    lrs = np.array(result["lrs"])
    assert lrs[0] == pytest.approx(1e-4) and np.allclose(lrs[1:] / lrs[:-1], 10 ** (8 / 59))
    assert len(lrs) < 60  # lr 1e4 makes SGD diverge before the end
    assert 1e-4 < result["suggestion"] < lrs[-1]
    assert result["method"] == "steepest descent of the smoothed loss"
    assert suggest_lr([1e-3, 1e-2], [1.0, 0.5]) is None
    path = train_plots.plot_lr_find(lrs, result["losses"], result["smoothed"],
                                    result["suggestion"], tmp_path / "lr_find.png")  # fmt: skip
    assert path.stat().st_size > 10_000
    with pytest.raises(ValueError, match="need 0 < start < end"):
        lr_range_test(model, [], optim.SGD(model.parameters(), lr=1), start=1, end=float("inf"))


# --- never a number from nan -----------------------------------------------------------------


def test_a_loss_that_becomes_nan_stops_fit_and_keeps_the_last_finite_epoch():
    images, labels = _blobs()
    model = _mlp()
    opt = optim.Adam(model.parameters(), lr=0.01)
    states = []
    fit(model, _batches(images, labels), opt, epochs=1, verbose=False,
        callbacks=[lambda e, l: states.append(model.state_dict())])  # fmt: skip
    opt.lr = 1e30  # the next epoch blows up
    with pytest.raises(TrainingDiverged, match=r"loss became (nan|inf) at epoch 1, step \d"):
        with np.errstate(over="ignore", invalid="ignore"):
            fit(model, _batches(images, labels), opt, epochs=3, verbose=False)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, states[0][key])  # the weights before the blow-up
    with pytest.raises(ValueError, match="2 of the 4 logits are nan or inf"):
        score(np.array([[np.nan, 0.0], [1.0, np.inf]]), np.array([0, 1]))


def test_ctrl_c_restores_the_optimizer_state_with_the_weights():
    images, labels = _blobs()
    model = _mlp()
    opt = optim.Adam(model.parameters(), lr=0.05)
    saved = []

    class Loader:
        def __iter__(self):
            for step, batch in enumerate(_batches(images, labels)):
                if saved and step == 2:
                    raise KeyboardInterrupt  # in epoch 2, after two Adam steps
                yield batch

    history = fit(model, Loader(), opt, epochs=3, verbose=False,
                  callbacks=[lambda e, l: saved.append(opt.state_dict())])  # fmt: skip
    assert history.interrupted and len(history) == 1
    state = opt.state_dict()["state"]
    assert state[0]["step"] == saved[0]["state"][0]["step"] == 4
    for index, entry in saved[0]["state"].items():
        for key, value in entry.items():
            np.testing.assert_array_equal(state[index][key], value)


def test_every_json_the_training_writes_is_strict(tmp_path):
    history = History([{"epoch": 1, "loss": float("nan"), "val_loss": float("inf")}])
    text = history.to_json(tmp_path / "history.json").read_text()
    assert _strict(text)["epochs"][0] == {"epoch": 1, "loss": None, "val_loss": None}
    path = checkpoint.save(_mlp(), tmp_path / "m.safetensors", {"x": np.float32("nan")}, history)
    info = checkpoint.read_metadata(path)
    assert info["metadata"] == {"x": None} and info["history"][0]["loss"] is None


def test_fit_with_detect_anomaly_names_the_op_that_made_the_first_nan():
    images, labels = _blobs(64)
    images[5, 0, 0, 0] = np.nan  # one bad pixel
    model = _mlp()
    with pytest.raises(TrainingDiverged):  # without anomaly mode: only the loss is seen
        fit(model, _batches(images, labels), optim.SGD(model.parameters(), lr=0.1),
            verbose=False)  # fmt: skip
    with pytest.raises(RuntimeError, match=r"produced nan") as error:
        fit(model, _batches(images, labels), optim.SGD(model.parameters(), lr=0.1),
            verbose=False, detect_anomaly=True)  # fmt: skip
    assert not isinstance(error.value, TrainingDiverged)
