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
