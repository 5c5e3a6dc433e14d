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
from airflow_provider_whatsapp._compat import AIRFLOW_V_3_PLUS
from airflow_provider_whatsapp.hooks._settings import DEFAULT_API_VERSION


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


FORM_FIELDS = {
    "connection_id", "phone_number_id", "waba_id", "api_version", "ctrl_url", "app", "rate_limit",
    "events_path", "events_retention_days", "webhook_verify_token", "webhook_app_secret", "webhook_path_token",
}  # fmt: skip


def test_connection_form_is_declared_for_airflow_3() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    assert conn_type["connection-type"] == "maton"
    assert set(conn_type["conn-fields"]) == FORM_FIELDS
    assert conn_type["ui-field-behaviour"]["relabeling"]["password"] == "Maton API key"


def test_every_extra_field_has_a_placeholder_and_a_help_text() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    placeholders = conn_type["ui-field-behaviour"]["placeholders"]
    for name, field in conn_type["conn-fields"].items():
        assert field["label"] and field["description"], name
        assert placeholders.get(name), name
    assert conn_type["conn-fields"]["api_version"]["schema"]["default"] == DEFAULT_API_VERSION
    assert conn_type["conn-fields"]["rate_limit"]["schema"]["type"] == ["number", "null"]


def test_airflow_3_providers_manager_serves_the_form() -> None:
    """What the Airflow 3 UI asks the API for: every field with its help text and placeholder."""
    if not AIRFLOW_V_3_PLUS:
        pytest.skip("Airflow 2 builds the form from the hook's methods")
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = {
        name.removeprefix("extra__maton__"): info
        for name, info in manager.connection_form_widgets.items()
        if name.startswith("extra__maton__")
    }
    assert set(widgets) == FORM_FIELDS
    assert all(info.field["description"] for info in widgets.values())
    assert widgets["api_version"].field["value"] == DEFAULT_API_VERSION
    placeholders = manager.field_behaviours["maton"]["placeholders"]
    assert {f"extra__maton__{name}" for name in FORM_FIELDS} <= set(placeholders)


def test_airflow_2_form_matches_airflow_3s() -> None:
    pytest.importorskip("flask_appbuilder")
    from flask import Flask
    from flask_babel import Babel
    from wtforms import Form

    from airflow_provider_whatsapp.hooks.maton import MatonHook

    (conn_type,) = get_provider_info()["connection-types"]
    app = Flask(__name__)
    Babel(app)  # labels are lazy translations
    with app.test_request_context():
        widgets = MatonHook.get_connection_form_widgets()
        assert set(widgets) == FORM_FIELDS
        form = type("MatonForm", (Form,), widgets)()
        for name, declared in conn_type["conn-fields"].items():
            bound = form[name]
            assert str(bound.label.text) == declared["label"], name
            assert bound.description == declared["description"], name
            assert bound.default == declared["schema"].get("default"), name
    behaviour = MatonHook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == ["schema", "port", "login"]
    assert behaviour["placeholders"] == conn_type["ui-field-behaviour"]["placeholders"]


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
