"""fit / evaluate / History / metrics, and the training plots (on tiny data: this file is fast)."""

import json

import numpy as np
import pytest

from tinygrad_cnn import Tensor, data, nn, ops, optim, train
from tinygrad_cnn.models import mnist_cnn
from tinygrad_cnn.train import METRICS, History, evaluate, fit, predict, score
from tinygrad_cnn.viz import plots


def _blobs(n=256, seed=0):
    """Two classes of 1x4x4 images told apart by their mean: a linear model learns it fast."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = rng.random((n, 1, 4, 4), dtype=np.float32) * 0.5 + 0.5 * labels[:, None, None, None]
    return images.astype(np.float32), labels


def _linear(seed=0):
    nn.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 2))


def _batches(images, labels, size=32):
    return [(images[i : i + size], labels[i : i + size]) for i in range(0, len(images), size)]


def test_accuracy_metric_and_registry():
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0]])
    assert METRICS["accuracy"](logits, np.array([0, 1, 1, 1])) == 0.75
    seg_logits = np.zeros((1, 2, 2, 2))
    seg_logits[0, 1, 0] = 1.0  # top row predicted class 1
    assert train.accuracy(seg_logits, np.array([[[1, 1], [0, 1]]])) == 0.75  # per pixel
    with pytest.raises(ValueError, match=r"accuracy: logits \(4, 2\) need labels of shape"):
        train.accuracy(logits, np.array([0, 1]))


def test_a_registered_metric_is_used_by_name(monkeypatch):
    monkeypatch.setitem(METRICS, "first_logit", lambda logits, labels: float(logits[0, 0]))
    result = score(np.array([[0.25, 0.0]]), np.array([0]), metrics=("accuracy", "first_logit"))
    assert result["first_logit"] == 0.25 and result["accuracy"] == 1.0
    with pytest.raises(ValueError, match="unknown metric 'iou'; known: accuracy"):
        fit(_linear(), [], optim.SGD(_linear().parameters(), lr=0.1), metrics=("iou",))


def test_fit_learns_and_records_one_entry_per_epoch():
    images, labels = _blobs()
    model = _linear()
    history = fit(model, _batches(images, labels), optim.Adam(model.parameters(), lr=0.05),
                  epochs=5, val_loader=_batches(*_blobs(64, seed=1)), verbose=False)  # fmt: skip
    assert [entry["epoch"] for entry in history] == [1, 2, 3, 4, 5]
    assert list(history[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy",
                                "time", "images_per_s"]  # fmt: skip
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["val_accuracy"] >= 0.95
    assert not history.interrupted


def test_fit_trains_the_course_cnn_on_shapes():
    """A small stated target: 1,000 shapes, 4 epochs -> at least 80% on 300 test shapes."""
    x_train, y_train = data.get_dataset("shapes", "train", limit=1000)
    x_test, y_test = data.get_dataset("shapes", "test", limit=300)
    model = mnist_cnn(num_classes=5, seed=0)
    history = fit(model, data.DataLoader(x_train, y_train, 32, seed=0),
                  optim.Adam(model.parameters(), lr=3e-3), epochs=4, verbose=False)  # fmt: skip
    result = evaluate(model, data.DataLoader(x_test, y_test, 100, shuffle=False))
    assert result["accuracy"] >= 0.8, (history, result)
    assert model.training  # evaluate restored the mode it found


def test_evaluate_runs_in_eval_mode_without_a_graph():
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(16, 2))
    images, labels = _blobs(64)
    first = evaluate(model, _batches(images, labels))
    second = evaluate(model, _batches(images, labels, size=7))  # batching does not matter
    assert first["loss"] == pytest.approx(second["loss"], rel=1e-5)  # dropout off
    assert first["accuracy"] == second["accuracy"]
    logits, seen = predict(model, _batches(images, labels))
    np.testing.assert_array_equal(seen, labels)
    assert logits.shape == (64, 2) and model.training
    assert all(p.grad is None for p in model.parameters())
    expected = ops.cross_entropy(Tensor(logits), labels).item()
    assert first["loss"] == pytest.approx(expected, rel=1e-6)


def test_ctrl_c_keeps_the_weights_of_the_last_finished_epoch():
    images, labels = _blobs()
    model = _linear()
    snapshots = []

    def interrupting_loader():
        for step, batch in enumerate(_batches(images, labels)):
            if len(snapshots) == 2 and step == 3:
                raise KeyboardInterrupt  # in the middle of epoch 3, after some updates
            yield batch

    class Loader:
        def __iter__(self):
            return interrupting_loader()

    def remember(epoch, logs):
        snapshots.append(model.state_dict())

    history = fit(model, Loader(), optim.SGD(model.parameters(), lr=0.5), epochs=5,
                  callbacks=[remember], verbose=False)  # fmt: skip
    assert history.interrupted and len(history) == 2
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, snapshots[-1][key])


def test_a_callback_returning_true_stops_training():
    model = _linear()
    history = fit(model, _batches(*_blobs()), optim.SGD(model.parameters(), lr=0.1), epochs=10,
                  callbacks=[lambda epoch, logs: epoch == 3], verbose=False)  # fmt: skip
    assert len(history) == 3


def test_fit_prints_one_plain_line_per_epoch_when_not_a_terminal(capsys):
    model = _linear()
    fit(model, _batches(*_blobs()), optim.SGD(model.parameters(), lr=0.1), epochs=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2  loss ") and "accuracy " in lines[0]
    assert lines[1].endswith("img/s") and "%" in lines[1]


def test_fit_rejects_bad_arguments():
    model = _linear()
    sgd = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="fit: epochs must be a positive int, got 0"):
        fit(model, _batches(*_blobs()), sgd, epochs=0)
    with pytest.raises(ValueError, match="fit: the training loader yielded no batches"):
        fit(model, [], sgd, verbose=False)


def test_history_saves_as_json_and_csv(tmp_path):
    history = History([{"epoch": 1, "loss": 0.5, "accuracy": 0.8},
                       {"epoch": 2, "loss": 0.25, "accuracy": 0.9, "val_loss": 0.3}])  # fmt: skip
    history.interrupted = True
    back = History.from_json(history.to_json(tmp_path / "h.json"))
    assert back == history and back.interrupted
    assert json.loads((tmp_path / "h.json").read_text())["epochs"][1]["val_loss"] == 0.3
    csv_text = history.to_csv(tmp_path / "h.csv").read_text().splitlines()
    assert csv_text == ["epoch,loss,accuracy,val_loss", "1,0.5,0.8,", "2,0.25,0.9,0.3"]
    assert history.summary() == {"epoch": 2, "loss": 0.25, "accuracy": 0.9, "val_loss": 0.3,
                                 "epochs": 2, "total_time": 0.0}  # fmt: skip


def test_plots_are_written_for_a_trained_classifier(tmp_path):
    model = mnist_cnn(num_classes=5, seed=0)
    images, labels = data.get_dataset("shapes", "test", limit=40)
    batch = images[:, None].astype(np.float32) / 255
    logits, _ = predict(model, [(batch, labels)])
    history = [
        {"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.4},
        {"epoch": 2, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.7},
    ]
    names = data.SHAPE_CLASSES
    written = [
        plots.plot_history(history, tmp_path / "curves.png", title="test"),
        plots.plot_confusion_matrix(labels, logits.argmax(1), tmp_path / "cm.png", names),
        plots.plot_misclassified(batch, labels, logits, tmp_path / "wrong.png", names),
        plots.plot_filters(model, tmp_path / "filters.png"),
        plots.plot_feature_maps(model, batch[0], tmp_path / "maps.png"),
    ]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    with pytest.raises(ValueError, match="plot_history: the history is empty"):
        plots.plot_history([], tmp_path / "none.png")
    with pytest.raises(ValueError, match="first_conv: Sequential has no layer with a 4-D weight"):
        plots.plot_filters(_linear(), tmp_path / "none.png")


def test_ctrl_c_inside_a_callback_keeps_the_epoch_that_finished():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x = np.random.default_rng(0).random((8, 1, 2, 2), dtype=np.float32)
    batches = [(x, (x.sum(axis=(1, 2, 3)) > 2).astype(np.int64))]
    weights_after = {}

    def checkpoint_that_gets_interrupted(epoch, logs):
        if epoch == 2:
            weights_after[epoch] = model.state_dict()
            raise KeyboardInterrupt  # as if Ctrl-C landed while a checkpoint was written

    history = fit(model, batches, optim.SGD(model.parameters(), lr=0.1), epochs=5,
                  callbacks=[checkpoint_that_gets_interrupted], verbose=False)  # fmt: skip
    assert history.interrupted and len(history) == 2
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, weights_after[2][key])  # epoch 2's weights kept
