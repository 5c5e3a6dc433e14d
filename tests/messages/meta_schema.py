"""Meta's OpenAPI description of the WhatsApp Business Platform, patched, as a jsonschema validator.

The file is found through ``WHATSAPP_OPENAPI_SPEC`` (default: ``<repo>/../shared/reference/...``);
tests skip with a reason when it is absent. The patches listed in the reference README are applied in
memory, plus two omissions of the spec (the ``cta_url`` interactive type and the template header
``location`` parameter, both in Meta's Cloud API documentation), and OpenAPI discriminators are turned
into ``if``/``then`` dispatch so the sub-schema of each ``type`` is really checked.
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPEC = (
    REPO_ROOT.parent / "shared" / "reference" / "meta-openapi" / "business-messaging-api_v23.0.yaml"
)

_SCHEMAS = "#/components/schemas/"
_BASE_FIELDS = {
    "messaging_product": {"const": "whatsapp"},
    "recipient_type": {"type": "string"},
    "to": {"type": "string"},
    "context": {"$ref": _SCHEMAS + "MessageContext"},
    "biz_opaque_callback_data": {"type": "string"},
}


def spec_path() -> Path:
    return Path(os.environ.get("WHATSAPP_OPENAPI_SPEC") or DEFAULT_SPEC)


@functools.lru_cache(maxsize=1)
def _load(path: str) -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=loader)


def _name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def patch(schemas: dict[str, Any]) -> dict[str, Any]:
    """The README's six defects and the two omissions, fixed on a copy."""
    s = copy.deepcopy(schemas)
    # 1. Typed messages: additionalProperties: false must allow the common envelope.
    for ref in s["Message"]["discriminator"]["mapping"].values():
        for part in s[_name(ref)]["allOf"]:
            if part.get("additionalProperties") is False:
                part["properties"] = {**_BASE_FIELDS, **part["properties"]}
    # 2. A template's language needs only its code.
    s["LanguageObject"]["required"] = ["code"]
    # 3. Template button indexes are 0-9.
    for name in ("TemplateComponent", "ButtonComponent"):
        for props in _props(s[name]):
            if "index" in props:
                props["index"]["pattern"] = "^[0-9]$"
    # 4. The 4096-character limit (and the required body) of a text message.
    text = _part(s["TextMessage"], "text")
    text["properties"]["body"]["maxLength"] = 4096
    text["required"] = ["body"]
    # 5. Latitude and longitude are numbers.
    location = _part(s["LocationMessage"], "location")
    for key in ("latitude", "longitude"):
        location["properties"][key]["type"] = "number"
    location["required"] = ["latitude", "longitude"]
    # 6. More contact phone types.
    s["PhoneObject"]["properties"]["type"]["enum"] += ["CELL", "MAIN", "IPHONE", "MOBILE"]
    # 7. Omission: the call-to-action URL interactive message.
    s["InteractiveObject"]["properties"]["type"]["enum"].append("cta_url")
    s["ActionObject"]["oneOf"].append(
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "name": {"enum": ["cta_url"]},
                "parameters": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "display_text": {"type": "string", "maxLength": 20},
                        "url": {"type": "string"},
                    },
                    "required": ["display_text", "url"],
                },
            },
            "required": ["name", "parameters"],
        }
    )
    # 8. Omission: a template header's location parameter.
    s["ParameterObject"]["properties"]["type"]["enum"].append("location")
    s["ParameterObject"]["discriminator"]["mapping"]["location"] = _SCHEMAS + "LocationParameter"
    s["LocationParameter"] = {
        "allOf": [
            {"$ref": _SCHEMAS + "ParameterObject"},
            {
                "type": "object",
                "properties": {
                    "type": {"enum": ["location"]},
                    "location": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "latitude": {"type": "number"},
                            "longitude": {"type": "number"},
                            "name": {"type": "string"},
                            "address": {"type": "string"},
                        },
                        "required": ["latitude", "longitude"],
                    },
                },
                "required": ["location"],
            },
        ]
    }
    _dispatch_discriminators(s)
    return s


def _props(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found = [schema.get("properties", {})]
    for part in schema.get("allOf", []):
        found.append(part.get("properties", {}))
    return found


def _part(schema: dict[str, Any], key: str) -> dict[str, Any]:
    for part in schema["allOf"]:
        if key in part.get("properties", {}):
            return part["properties"][key]
    raise KeyError(key)


def _dispatch_discriminators(s: dict[str, Any]) -> None:
    """Check each discriminated value against its mapped schema (jsonschema ignores discriminators)."""
    discriminated = {name: schema["discriminator"] for name, schema in s.items() if "discriminator" in schema}
    members: dict[str, str] = {}
    for name, disc in discriminated.items():
        prop = disc["propertyName"]
        s[f"{name}__dispatch"] = {
            "$ref": _SCHEMAS + name,
            "allOf": [
                {
                    "if": {"properties": {prop: {"const": value}}, "required": [prop]},
                    "then": {"$ref": ref},
                }
                for value, ref in disc["mapping"].items()
            ],
        }
        for ref in disc["mapping"].values():
            members[_name(ref)] = name

    def rewrite(node: Any, owner: str | None) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_SCHEMAS):
                target = _name(ref)
                if target in discriminated and members.get(owner or "") != target:
                    node["$ref"] = _SCHEMAS + f"{target}__dispatch"
            for value in node.values():
                rewrite(value, owner)
        elif isinstance(node, list):
            for value in node:
                rewrite(value, owner)

    for name in list(s):
        if not name.endswith("__dispatch"):
            rewrite(s[name], name)


class MetaSchema:
    """Validate a payload against one of the patched component schemas."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.schemas = patch(document["components"]["schemas"])

    def errors(self, payload: Any, schema: str = "Message") -> list[str]:
        from jsonschema import Draft202012Validator

        name = f"{schema}__dispatch" if f"{schema}__dispatch" in self.schemas else schema
        root = {"components": {"schemas": self.schemas}, "$ref": _SCHEMAS + name}
        validator = Draft202012Validator(root)
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(payload)
        ]

    def check(self, payload: Any, schema: str = "Message") -> None:
        problems = self.errors(payload, schema)
        assert not problems, f"payload does not match Meta's {schema} schema: {problems}\n{payload}"


@functools.lru_cache(maxsize=1)
def _meta_schema(path: str) -> MetaSchema:
    return MetaSchema(_load(path))


def meta_schema() -> MetaSchema:
    """The patched schema, or a pytest skip saying where the file was looked for."""
    path = spec_path()
    if not path.is_file():
        pytest.skip(f"Meta's OpenAPI file not found at {path} (set WHATSAPP_OPENAPI_SPEC to its path)")
    return _meta_schema(str(path))


def openapi_document() -> dict[str, Any] | None:
    """Meta's OpenAPI file as it is (unpatched), or ``None`` when it is absent."""
    path = spec_path()
    return _load(str(path)) if path.is_file() else None
