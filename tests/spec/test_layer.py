"""The specification layer stands alone: the models, the hook and the sandbox read it, never the reverse."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import airflow_provider_whatsapp.spec

SPEC = Path(airflow_provider_whatsapp.spec.__file__).parent


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_spec_imports_only_the_standard_library_and_itself() -> None:
    outside = {
        f"{path.name}: {name}"
        for path in SPEC.glob("*.py")
        for name in _imports(path)
        if name.split(".")[0] not in sys.stdlib_module_names
        and not name.startswith("airflow_provider_whatsapp.spec")
    }
    assert not outside
