"""The README's ten-line example prints what the README says it prints."""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_example_output_is_true():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(\w*)\n(.*?)```", readme, re.S)
    code = [body for lang, body in blocks if lang == "python"][:2]  # the example and its check
    printed = [body for lang, body in blocks if lang == ""][:2]  # what the README shows
    result = subprocess.run(
        [sys.executable, "-c", "".join(code)], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "".join(printed)


def test_readme_loss_has_max_ties_and_fails_gradcheck():
    """The README says its first loss pools windows with ties, so gradcheck rightly fails on it
    (numeric 2.375 against analytic 2.75 at the centre weight)."""
    import numpy as np
    import pytest

    from tinygrad_cnn import Tensor, gradcheck, ops
    from tinygrad_cnn.gradcheck import GradcheckError

    rows = [[5, 2, 1, 3, 5], [4, 3, 2, 3, 4], [0, 2, 1, 2, 2], [3, 3, 2, 3, 2], [2, 1, 3, 2, 2]]
    image = Tensor(np.array(rows, dtype=np.float64)[None, None])
    kernel = Tensor(np.array([[1.0, 0, 1], [0, 1, 0], [1, 0, 1]])[None, None], requires_grad=True)
    out = ops.conv2d(image, kernel)[0, 0].data
    windows = [out[:2, :2], out[:2, 2:], out[2:, :2]]
    assert all((w == w.max()).sum() == 2 for w in windows)  # three windows hold a tie

    def loss(k):
        return ops.maxpool2d(ops.conv2d(image, k).relu(), 2, padding="same").mean()

    with pytest.raises(GradcheckError, match=r"index \(0, 0, 1, 1\): numeric 2.375, analytic 2.75"):
        gradcheck(loss, [kernel])
    readme = (ROOT / "README.md").read_text()
    assert "`numeric 2.375, analytic 2.75`" in readme


def test_every_readme_picture_names_the_command_that_made_it():
    import shlex

    from tinygrad_cnn.cli import build_parser

    readme = (ROOT / "README.md").read_text()
    pictures = set(re.findall(r"\]\((docs/[^)]+\.(?:png|svg|gif))\)", readme))
    assert pictures
    commands = {}
    for line in readme.splitlines():
        if line.startswith("tinygrad-cnn ") and "--out " in line:
            words = shlex.split(line)
            commands[words[words.index("--out") + 1]] = words[1:]
    for picture in pictures:
        assert picture in commands, f"README shows {picture} but names no command writing it"
        assert (ROOT / picture).exists(), picture
        build_parser().parse_args(commands[picture])  # a command line that parses
