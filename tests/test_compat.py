"""Airflow 2.11 vs 3.x differences live in ``_compat.py`` alone, and keep operator imports cheap."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_whatsapp._compat import AIRFLOW_V_3_PLUS
from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "airflow_provider_whatsapp"


def _airflow_imports(path: Path) -> list[str]:
    """Every ``airflow`` module ``path`` imports at run time (at any depth) and every use of the version
    flag; imports for type checking only are not a difference between the lines."""
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for statement in node.body
        for inner in ast.walk(statement)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Name) and node.id == "AIRFLOW_V_3_PLUS":
            names = ["AIRFLOW_V_3_PLUS"]
        else:
            continue
        found += [f"{name} (line {node.lineno})" for name in names if name.split(".")[0] == "airflow"]
        found += [f"{name} (line {node.lineno})" for name in names if name == "AIRFLOW_V_3_PLUS"]
    return found


def test_only_compat_imports_airflow() -> None:
    offenders = {
        str(path.relative_to(REPO_ROOT)): imports
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "_compat.py" and (imports := _airflow_imports(path))
    }
    assert offenders == {}


@pytest.mark.skipif(not AIRFLOW_V_3_PLUS, reason="Airflow 2.11's own import of airflow loads its triggers")
def test_operator_and_notifier_imports_do_not_load_the_trigger_base() -> None:
    code = (
        "import sys\n"
        "import airflow_provider_whatsapp.operators.messages, airflow_provider_whatsapp.operators.media\n"
        "import airflow_provider_whatsapp.operators.templates, airflow_provider_whatsapp.operators.bulk\n"
        "import airflow_provider_whatsapp.notifications.whatsapp\n"
        "print('airflow.triggers.base' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True, cwd=REPO_ROOT
    )
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_trigger_base_classes_come_from_compat() -> None:
    from airflow.triggers.base import BaseTrigger, TriggerEvent

    from airflow_provider_whatsapp import _compat
    from airflow_provider_whatsapp.triggers.template import WhatsAppTemplateApprovalTrigger

    assert _compat.BaseTrigger is BaseTrigger and _compat.TriggerEvent is TriggerEvent
    assert issubclass(WhatsAppTemplateApprovalTrigger, BaseTrigger)
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _compat.Nothing  # noqa: B018


def test_airflow_home_is_airflow_s() -> None:
    from airflow.configuration import AIRFLOW_HOME

    from airflow_provider_whatsapp._compat import airflow_home
    from airflow_provider_whatsapp.bulk.progress import DEFAULT_DIRECTORY_NAME, default_progress_root

    assert airflow_home() == AIRFLOW_HOME
    assert default_progress_root() == str(Path(AIRFLOW_HOME) / DEFAULT_DIRECTORY_NAME)
