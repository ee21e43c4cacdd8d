"""Every ```python block of every README.md in the repository runs as written.

The Python counterpart of the Rust doctests: a snippet that a newcomer copies must work.
Each block runs on its own in a fresh interpreter (so a missing import is caught), with a
temporary folder as its working directory (files it writes land there). A block that imports
a framework which is not installed skips, unless SAFETENSORS_REQUIRE_FRAMEWORKS is set (CI),
where that is a failure.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

# Folders that hold build outputs, environments or other projects' files, never our READMEs.
SKIP_DIRS = {".git", "target", "node_modules", "__pycache__", ".pytest_cache"}

FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def readmes() -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(REPO_ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith((".venv", ".bench")))
        found.extend(Path(folder) / f for f in files if f == "README.md")
    return sorted(found)


def snippets():
    out = []
    for readme in readmes():
        text = readme.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            rel = readme.relative_to(REPO_ROOT).as_posix()
            out.append(pytest.param(match.group(1), id=f"{rel}:{line}"))
    return out


def imported_modules(code: str) -> set[str]:
    """Top-level names of the modules a snippet imports."""
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_readmes_have_python_snippets():
    # The collection below must not silently find nothing (a moved README, a changed fence).
    ids = [p.id for p in snippets()]
    assert any(i.startswith("README.md:") for i in ids), ids
    assert any(i.startswith("crates/safetensors-py/README.md:") for i in ids), ids


@pytest.mark.parametrize("code", snippets())
def test_readme_snippet_runs(code: str, tmp_path: Path):
    missing = sorted(m for m in imported_modules(code) if importlib.util.find_spec(m) is None)
    if missing:
        if os.environ.get("SAFETENSORS_REQUIRE_FRAMEWORKS"):
            pytest.fail(f"the snippet imports {missing}, which cannot be imported here")
        pytest.skip(f"needs {', '.join(missing)}")
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"the snippet failed:\n{code}\n--- stderr ---\n{result.stderr}"
