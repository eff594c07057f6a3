"""Every file in examples/ runs, in a subprocess, with a tiny setting, so none of them rots.

A new example needs a line in TINY below (the arguments that make it finish in seconds);
the test fails for an example that has none. Outputs go to a temporary folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

# file name -> arguments for a run of a few seconds ("{out}" is a fresh temporary folder)
TINY: dict[str, list[str]] = {
    "01_autograd_scalar.py": [],
    "02_mlp_spirals.py": ["--steps", "30"],
    "03_conv_by_hand.py": [],
    "04_mnist_cnn.py": ["--epochs", "1", "--limit", "128", "--out", "{out}"],
    "05_unet_shapes.py": ["--quick", "--steps", "2", "--out", "{out}"],
    "06_draw_graphs.py": ["--out", "{out}", "--format", "dot"],
}
SLOW = {"04_mnist_cnn.py", "05_unet_shapes.py"}  # a few seconds each, mostly imports


def _data_folder() -> str:
    """TINYGRAD_CNN_DATA as CI sets it, else the machine's shared copy, else nothing."""
    shared = ROOT.parent / "shared" / "data"
    return os.environ.get("TINYGRAD_CNN_DATA") or (str(shared) if shared.is_dir() else "")


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=p.name, marks=[pytest.mark.slow] if p.name in SLOW else [])
     for p in EXAMPLES],
)  # fmt: skip
def test_example_runs(path: Path, tmp_path: Path):
    if path.name not in TINY:
        pytest.fail(f"{path.name}: add its tiny arguments to TINY in tests/test_examples.py")
    args = [arg.replace("{out}", str(tmp_path / "out")) for arg in TINY[path.name]]
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT),
           "TINYGRAD_CNN_DATA": _data_folder()}  # fmt: skip
    result = subprocess.run([sys.executable, str(path), *args], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, f"{path.name} failed:\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip(), f"{path.name} printed nothing"
    if "--quick" in args:  # a run too small to learn must say so, not print IoU 0.000 bare
        assert "smoke test" in result.stdout, path.name


def test_every_example_has_a_tiny_setting():
    assert EXAMPLES, "no examples found"
    missing = [p.name for p in EXAMPLES if p.name not in TINY]
    assert not missing, f"examples without a tiny setting in TINY: {missing}"


def test_example_04_says_why_the_count_differs_without_mnist():
    """42,358 parameters on MNIST's 10 classes, 41,853 on the 5 shape classes."""
    from tinygrad_cnn.data import dataset_info
    from tinygrad_cnn.models import mnist_cnn

    text = (ROOT / "examples" / "04_mnist_cnn.py").read_text()
    for classes, count in [(10, "42,358"), (dataset_info("shapes")["num_classes"], "41,853")]:
        model = mnist_cnn(num_classes=classes, seed=0)
        assert f"{sum(p.size for p in model.parameters()):,}" == count
        assert count in text
