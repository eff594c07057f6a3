"""Every public function and class documents itself with an example that runs.

The examples run as doctests (`--doctest-modules` in pyproject.toml); this test makes sure
none is missing. Function classes (`...Fn`) show their math instead, and the command-line
modules are documented by their `--help`.
"""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "tinygrad_cnn"


def public_definitions_without_example():
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "cli" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) or node.name.startswith("_"):
                continue
            if isinstance(node, ast.ClassDef) and node.name.endswith("Fn"):
                continue
            if ">>>" not in (ast.get_docstring(node) or ""):
                missing.append(f"{path.relative_to(PACKAGE.parent)}: {node.name}")
    return missing


def test_every_public_definition_has_a_docstring_example():
    missing = public_definitions_without_example()
    assert not missing, "public definitions without a docstring example:\n" + "\n".join(missing)
