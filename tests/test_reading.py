"""docs/READING.md is the one reading order, and it tells the truth.

* every file's "Read next" line follows the order, and following them never loops;
* the line counts in its track tables are the real ones (code, docstrings and comments aside),
  and track 1, "the afternoon", fits in 1,500 lines;
* each [`name`](../path#Lnn) link lands on the line that defines name.

When code moves, `python -m tests.test_reading --fix` rewrites the counts and the line anchors.
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tinygrad_cnn"
GUIDE = ROOT / "docs" / "READING.md"
AFTERNOON = 1500  # lines of code in track 1
FIX = "run `python -m tests.test_reading --fix` to update docs/READING.md"


def code_lines(path: Path) -> int:
    """Lines holding code: not blank, not only a comment, not part of a docstring."""
    source = path.read_text()
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in skip or token.type == tokenize.ENDMARKER:
            continue
        lines.update(n for n in range(token.start[0], token.end[0] + 1) if n not in docstrings)
    return len(lines)


TABLE_ROW = re.compile(r"^\| (\d+) \| \[`([^`]+)`\]\([^)]*\) \| *(\d*) *\|", re.M)


def track(number: int, text: str | None = None) -> list[tuple[str, int | None]]:
    """(path from the repository root, stated line count) of each row of track `number`."""
    text = GUIDE.read_text() if text is None else text
    block = text.split(f"<!-- track {number} -->")[1].split(f"<!-- end track {number} -->")[0]
    return [(path, int(count) if count else None) for _, path, count in TABLE_ROW.findall(block)]


def read_next(path: Path) -> Path | None:
    """The first file or folder named in backticks after "Read next" in path's docstring."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    match = re.search(r"Read next:?\s*(.*)", doc, re.S)
    if not match:
        return None
    name = re.search(r"`([^`]+)`", match.group(1))
    assert name, f"{path.relative_to(ROOT)}: 'Read next' names no `file`"
    for base in (path.parent, PACKAGE, ROOT):
        target = (base / name.group(1).split("'")[0]).resolve()
        if target.exists():
            return target
    raise AssertionError(f"{path.relative_to(ROOT)}: Read next `{name.group(1)}` does not exist")


def test_read_next_lines_follow_the_reading_order():
    order = [ROOT / path for path, _ in track(1) + track(2) + track(3)]
    assert order[0] == PACKAGE / "tensor.py"
    wrong = []
    for here, there in zip(order, order[1:]):
        if here.suffix == ".py" and read_next(here) != there:
            wrong.append(
                f"{here.relative_to(ROOT)} says Read next {read_next(here)}, "
                f"docs/READING.md says {there.relative_to(ROOT)}"
            )
    assert not wrong, "\n".join(wrong)


def test_read_next_lines_never_loop():
    for start in sorted(PACKAGE.rglob("*.py")):
        seen = [start]
        while seen[-1].suffix == ".py" and (following := read_next(seen[-1])) is not None:
            assert following not in seen, "Read next loops: " + " -> ".join(
                str(p.relative_to(ROOT)) for p in [*seen, following]
            )
            seen.append(following)


def test_track_line_counts_are_the_real_ones():
    text = GUIDE.read_text()
    for number in (1, 2, 3):
        for path, stated in track(number, text):
            if path.endswith(".py"):
                assert stated == code_lines(ROOT / path), f"{path}: {FIX}"
    stated_total = re.search(r"\*\*total\*\* \| \*\*(\d+)\*\*", text)
    assert int(stated_total.group(1)) == sum(n for _, n in track(1, text)), FIX


def afternoon_lines() -> dict[str, int]:
    return {path: code_lines(ROOT / path) for path, _ in track(1)}


def test_track_1_fits_an_afternoon():
    counts = afternoon_lines()
    assert set(counts) >= {
        "tinygrad_cnn/tensor.py",
        "tinygrad_cnn/ops/reference.py",
        "tinygrad_cnn/nn/module.py",
        "tinygrad_cnn/optim.py",
        "tinygrad_cnn/train.py",
    }
    assert sum(counts.values()) <= AFTERNOON, counts


LINK = re.compile(r"\[`([^`]+)`\]\(\.\./([^)#]+)#L(\d+)\)")


def definition_line(path: Path, name: str) -> int | None:
    """The line defining `name` (`Class.method` inside its class), else the first mentioning it."""
    lines = path.read_text().splitlines()
    *outer, last = name.split("(")[0].split(".")
    start = 0
    for part in outer:  # Class.method: look after the class line
        found = definition_line(path, part)
        start = found - 1 if found else 0
    pattern = re.compile(rf"^\s*(def|class)\s+{re.escape(last)}\b|^{re.escape(last)}\s*[:=]")
    for i in range(start, len(lines)):
        if pattern.search(lines[i]):
            return i + 1
    for i, line in enumerate(lines):
        if name in line:
            return i + 1
    return None


def test_reading_guide_links_land_on_their_definitions():
    text = GUIDE.read_text()
    wrong = []
    for name, path, line in LINK.findall(text):
        assert (ROOT / path).exists(), f"docs/READING.md links to a missing file {path}"
        if definition_line(ROOT / path, name) != int(line):
            wrong.append(f"{name} -> {path}#L{line}")
    assert not wrong, f"links that moved ({FIX}):\n" + "\n".join(wrong)
    for path in re.findall(r"\]\(\.\./([^)#]+)", text):
        assert (ROOT / path).exists(), path


EXERCISES = ROOT / "docs" / "EXERCISES.md"


def test_exercises_check_with_commands_that_exist():
    """Each exercise names a check; every gradcheck call parses and names ops with cases, and
    every pytest node id is a test function that exists."""
    from tinygrad_cnn.cli import build_parser
    from tinygrad_cnn.cli.gradcheck_cmd import _cases

    text = EXERCISES.read_text()
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    assert len(sections) >= 6
    cases = _cases(np.random.default_rng(0))
    for section in sections:
        commands = re.findall(r"`(tinygrad-cnn [^`]+|python -m pytest [^`]+)`", section)
        assert commands, f"exercise {section.splitlines()[0]!r} names no command that checks it"
        for command in commands:
            words = command.split()
            if words[0] == "tinygrad-cnn":
                args = build_parser().parse_args(words[1:])  # exits on a bad command line
                assert all(op in cases for op in getattr(args, "ops", [])), command
                continue
            path, _, name = words[3].partition("::")
            tree = ast.parse((ROOT / path).read_text())
            defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
            assert name in defined, f"{command}: no test {name} in {path}"


def fix() -> None:
    """Rewrite READING.md's line counts, total and line anchors from the code as it is."""
    text = GUIDE.read_text()

    def count(match: re.Match) -> str:
        path = match.group(2)
        lines = f" {code_lines(ROOT / path)} " if path.endswith(".py") else "  "
        return match.group(0).rsplit("|", 2)[0] + "|" + lines + "|"

    text = TABLE_ROW.sub(count, text)
    total = sum(n for _, n in track(1, text))
    text = re.sub(r"\*\*total\*\* \| \*\*\d+\*\*", f"**total** | **{total}**", text)

    def anchor(match: re.Match) -> str:
        name, path, line = match.groups()
        found = definition_line(ROOT / path, name)
        if found is None:
            print(f"cannot find {name} in {path}: fix that link by hand", file=sys.stderr)
        return f"[`{name}`](../{path}#L{found or line})"

    GUIDE.write_text(LINK.sub(anchor, text))
    print(f"updated {GUIDE.relative_to(ROOT)}; track 1: {total} lines of code")


if __name__ == "__main__":
    if sys.argv[1:] != ["--fix"]:
        sys.exit("usage: python -m tests.test_reading --fix")
    fix()
