"""detect_anomaly: the first NaN/inf raises, naming the op, module, calling line and inputs."""

import threading

import numpy as np
import pytest

from tinygrad_cnn import Tensor, detect_anomaly, nn


class Logs(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2), Log())

    def forward(self, x):
        return self.features(x)


class Log(nn.Module):
    def forward(self, x):
        return x.log()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_forward_nan_names_op_module_line_and_inputs():
    model = Logs()
    x = Tensor([[-1.0, 2.0]])
    model.features[0].weight.data = np.eye(2, dtype=np.float32)
    model.features[2].weight.data = np.array([[1.0, 0.0], [0.0, -1.0]], dtype=np.float32)
    with detect_anomaly(), pytest.raises(RuntimeError) as error:
        model(x)  # the line the message must name
    message = str(error.value)
    assert message.startswith("log produced nan from inputs with input 0:")
    assert "module features.3" in message
    assert "test_anomaly.py:" in message
    assert "min -" in message


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_backward_inf_names_the_op_whose_backward_made_it():
    x = Tensor([0.0, 1.0], requires_grad=True)
    with detect_anomaly():
        y = x.relu() ** 0.5  # sqrt's derivative at 0 is infinite; forward is finite
        with pytest.raises(RuntimeError, match=r"the backward of pow produced inf .*input 0"):
            y.sum().backward()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_decorator_and_off_by_default():
    @detect_anomaly()
    def run(x):
        return x.log()

    with pytest.raises(RuntimeError, match="log produced nan"):
        run(Tensor([-1.0]))
    assert np.isnan(Tensor([-1.0]).log().item())  # outside: numpy's nan, no error


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_anomaly_mode_is_per_thread():
    results = []
    with detect_anomaly():
        thread = threading.Thread(target=lambda: results.append(Tensor([-1.0]).log().item()))
        thread.start()
        thread.join()
    assert np.isnan(results[0])


def test_finite_training_step_passes_unchanged():
    layer = nn.Linear(3, 2)
    x = Tensor(np.ones((4, 3)))
    with detect_anomaly():
        layer(x).relu().sum().backward()
    assert np.isfinite(layer.weight.grad).all()
