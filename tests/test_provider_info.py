"""The provider's metadata: valid for Airflow, discoverable, and pointing at modules that exist."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import airflow
import jsonschema
import pytest

from airflow_provider_whatsapp import __version__, get_provider_info


def test_provider_info_validates_against_airflows_schema() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_every_listed_module_and_class_imports() -> None:
    info = get_provider_info()
    modules = [
        m
        for key in ("hooks", "operators", "sensors", "triggers")
        for entry in info[key]
        for m in entry["python-modules"]
    ]
    classes = [*info["notifications"], *(c["hook-class-name"] for c in info["connection-types"])]
    missing = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            missing.append(f"{module}: {error}")
    for dotted in classes:
        module, _, name = dotted.rpartition(".")
        if not hasattr(importlib.import_module(module), name):
            missing.append(dotted)
    assert not missing


def test_connection_form_is_declared_for_airflow_3() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    assert conn_type["connection-type"] == "maton"
    assert set(conn_type["conn-fields"]) == {"connection_id", "phone_number_id", "waba_id", "api_version"}
    assert conn_type["ui-field-behaviour"]["relabeling"]["password"] == "Maton API key"


def test_airflow_2_form_methods_match_the_declaration() -> None:
    pytest.importorskip("flask_appbuilder")
    from airflow_provider_whatsapp.hooks.maton import MatonHook

    assert set(MatonHook.get_connection_form_widgets()) == {
        "connection_id",
        "phone_number_id",
        "waba_id",
        "api_version",
    }
    assert MatonHook.get_ui_field_behaviour()["hidden_fields"] == ["schema", "port", "login"]


def test_airflow_providers_list_shows_the_package() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    providers = json.loads(listed.stdout[listed.stdout.index("[") :])
    ours = [p for p in providers if p["package_name"] == "airflow-provider-whatsapp"]
    assert ours and ours[0]["version"] == __version__
