"""docs/reliability.md: every row names a test that exists, and there are at least 40."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import REPO

DOC = REPO / "docs" / "reliability.md"
# `tests/path.py::test_name` or `tests/path.py::test_name[case]` in a table row.
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)(?:\[([^\]]+)\])?`")


def _rows() -> list[str]:
    """The numbered rows of the catalogue section."""
    catalogue = DOC.read_text().split("## The catalogue", 1)[1].split("\n## ", 1)[0]
    return [line for line in catalogue.splitlines() if re.match(r"\| \d+ \|", line)]


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_the_catalogue_has_at_least_40_numbered_rows_each_with_one_test():
    rows = _rows()
    assert len(rows) >= 40
    numbers = [int(row.split("|")[1]) for row in rows]
    assert numbers == list(range(1, len(rows) + 1))
    for row in rows:
        assert len(REFERENCE.findall(row)) == 1, row


def test_every_named_test_exists():
    references = [REFERENCE.search(row) for row in _rows()]
    assert references and all(references)
    for match in references:
        path, name, case = match.groups()
        source = REPO / path
        assert source.is_file(), f"{path} does not exist"
        assert name in _test_functions(source), f"{path} has no {name}"
        if case is not None:  # a parametrize id must appear as a string in that file
            assert f'"{case}"' in source.read_text(), f"{path} has no case {case!r}"
