"""What a recipient would see: each conversation as drawable bubbles (for the page) or as text (the demo).

Templates are filled in with their parameters here, once, so the page, the transcript and a test all
read the same rendering.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp.spec import grammar, vocabulary

if TYPE_CHECKING:
    from airflow_provider_whatsapp.sandbox.state import Message, SandboxState, Template

TICKS = {"accepted": "🕓", "sent": "✓", "delivered": "✓✓", "read": "✓✓ (read)", "failed": "✗ failed"}


def _media_view(kind: str, obj: dict[str, Any], state: SandboxState) -> dict[str, Any]:
    view: dict[str, Any] = {"kind": kind, "caption": obj.get("caption"), "filename": obj.get("filename")}
    media_id = obj.get("id")
    if media_id:
        view["src"] = f"/_sandbox/media/{media_id}"
        media = state.media.get(str(media_id))
        if media is not None:
            view["mime_type"] = media.mime_type
            view["size"] = len(media.data)
            view["filename"] = view["filename"] or media.filename
    else:
        link = str(obj.get("link") or "")
        view["src"] = link
        view["filename"] = view["filename"] or link.rsplit("/", 1)[-1].split("?", 1)[0] or None
    return view


def _fill(text: str | None, params: list[dict[str, Any]]) -> str:
    """Replace ``{{1}}``/``{{name}}`` with the parameters given (positionally, or by name)."""
    if not text:
        return ""
    if any(p.get("parameter_name") for p in params):
        return grammar.fill_placeholders(
            text, {str(p["parameter_name"]): _param_text(p) for p in params if p.get("parameter_name")}
        )
    return grammar.fill_placeholders(text, [_param_text(p) for p in params])


def _param_text(param: dict[str, Any]) -> str:
    kind = param.get("type", "text")
    if kind == "currency":
        return str((param.get("currency") or {}).get("fallback_value", ""))
    if kind == "date_time":
        return str((param.get("date_time") or {}).get("fallback_value", ""))
    return str(param.get(kind) if not isinstance(param.get(kind), dict) else param.get("text", ""))


def _template_view(content: dict[str, Any], template: Template | None, state: SandboxState) -> dict[str, Any]:
    sent = {
        str(c.get("type", "")).upper(): c.get("parameters") or [] for c in content.get("components") or []
    }
    view: dict[str, Any] = {
        "name": content.get("name"),
        "language": (content.get("language") or {}).get("code"),
        "header": None,
        "body": "",
        "footer": None,
        "buttons": [],
    }
    if template is None:
        view["body"] = " · ".join(_param_text(p) for params in sent.values() for p in params)
        return view
    for component in template.components:
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            header_format = str(component.get("format", "TEXT")).upper()
            params = sent.get("HEADER", [])
            if header_format == "TEXT":
                view["header"] = {"kind": "text", "text": _fill(component.get("text"), params)}
            elif header_format in vocabulary.TEMPLATE_MEDIA_HEADER_FORMATS and params:
                media_kind = header_format.lower()
                view["header"] = _media_view(media_kind, params[0].get(media_kind) or {}, state)
        elif kind == "BODY":
            text = component.get("text")
            if template.category == vocabulary.TEMPLATE_AUTHENTICATION:
                text = vocabulary.AUTHENTICATION_BODY_TEXT
            view["body"] = _fill(text, sent.get("BODY", []))
        elif kind == "FOOTER":
            view["footer"] = component.get("text")
        elif kind == "BUTTONS":
            view["buttons"] = [
                {"type": str(b.get("type", "")).upper(), "text": b.get("text", ""), "index": index}
                for index, b in enumerate(component.get("buttons") or [])
            ]
    return view


def _interactive_view(content: dict[str, Any], state: SandboxState) -> dict[str, Any]:
    action = content.get("action") or {}
    header = content.get("header")
    header_view = None
    if isinstance(header, dict):
        if header.get("type") == "text":
            header_view = {"kind": "text", "text": header.get("text", "")}
        elif header.get("type") in vocabulary.INTERACTIVE_MEDIA_HEADER_TYPES:
            header_view = _media_view(header["type"], header.get(header["type"]) or {}, state)
    view: dict[str, Any] = {
        "kind": content.get("type"),
        "header": header_view,
        "body": (content.get("body") or {}).get("text", ""),
        "footer": (content.get("footer") or {}).get("text"),
        "buttons": [],
    }
    if content.get("type") == "button":
        view["buttons"] = [
            {
                "type": vocabulary.TEMPLATE_BUTTON_QUICK_REPLY,
                "text": (b.get("reply") or {}).get("title", ""),
                "id": (b.get("reply") or {}).get("id"),
            }
            for b in action.get("buttons") or []
        ]
    elif content.get("type") == "list":
        view["list"] = {
            "button": action.get("button", ""),
            "sections": [
                {
                    "title": s.get("title"),
                    "rows": [
                        {"id": r.get("id"), "title": r.get("title", ""), "description": r.get("description")}
                        for r in s.get("rows") or []
                    ],
                }
                for s in action.get("sections") or []
            ],
        }
    elif content.get("type") == vocabulary.INTERACTIVE_CTA_URL:
        params = action.get("parameters") or {}
        view["buttons"] = [{"type": "URL", "text": params.get("display_text", ""), "url": params.get("url")}]
    return view


def _inbound_interactive(content: dict[str, Any]) -> str:
    reply = content.get(vocabulary.REPLY_BUTTON) or content.get(vocabulary.REPLY_LIST) or {}
    return str(reply.get("title") or reply.get("id") or content.get("type", ""))


def render(message: Message, state: SandboxState) -> dict[str, Any]:
    """One message as the page draws it (plus ``summary``, a one-line text)."""
    content = message.content if isinstance(message.content, dict) else {}
    view: dict[str, Any] = {
        "id": message.id,
        "direction": message.direction,
        "type": message.type,
        "timestamp": message.timestamp,
        "status": message.status,
        "label": message.label,
        "reply_to": message.reply_to,
        "reactions": [],
    }
    try:
        view["summary"] = _draw(view, message, content, state)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError):
        # An inbound message (from /_sandbox/inbound) in a shape the page does not know is drawn as its
        # type alone, rather than breaking every conversation on the page.
        view = {k: v for k, v in view.items() if k in _BASE_KEYS} | {"summary": f"[{message.type}]"}
    return view


_BASE_KEYS = ("id", "direction", "type", "timestamp", "status", "label", "reply_to", "reactions")


def _draw(view: dict[str, Any], message: Message, content: dict[str, Any], state: SandboxState) -> str:
    """Add what the page draws for ``message`` to ``view``; returns the one-line summary."""
    kind = message.type
    if kind == "text":
        view["text"] = content.get("body", "")
        summary = view["text"]
    elif kind in vocabulary.MEDIA_TYPES:
        view["media"] = _media_view(kind, content, state)
        named = kind == "document" and view["media"].get("filename")
        summary = f"[{kind}: {view['media']['filename']}]" if named else f"[{kind}]"
        if view["media"].get("caption"):
            summary += f" {view['media']['caption']}"
    elif kind == "location":
        view["location"] = {k: content.get(k) for k in ("latitude", "longitude", "name", "address")}
        place = f"{content.get('name')} " if content.get("name") else ""
        summary = f"[location] {place}({content.get('latitude')}, {content.get('longitude')})"
    elif kind == "contacts":
        contacts = message.payload.get("contacts") or []
        view["contacts"] = [
            {
                "name": (c.get("name") or {}).get("formatted_name", ""),
                "phones": [p.get("phone") for p in c.get("phones") or []],
            }
            for c in contacts
        ]
        summary = "[contacts] " + ", ".join(c["name"] for c in view["contacts"])
    elif kind == "interactive" and message.direction == "out":
        view["interactive"] = _interactive_view(content, state)
        choices = [b["text"] for b in view["interactive"]["buttons"]]
        for section in (view["interactive"].get("list") or {}).get("sections", []):
            choices.extend(r["title"] for r in section["rows"])
        summary = f"{view['interactive']['body']} [{' | '.join(choices)}]"
    elif kind == "interactive":
        view["text"] = _inbound_interactive(content)
        summary = f"[reply] {view['text']}"
    elif kind == "template":
        template = state.find_template(
            str(content.get("name")), str((content.get("language") or {}).get("code"))
        )
        view["template"] = _template_view(content, template, state)
        header = view["template"]["header"] or {}
        attached = (
            f" + {header['kind']} {header.get('filename') or ''}".rstrip()
            if header.get("kind") not in (None, "text")
            else ""
        )
        head = f"{header['text']} — " if header.get("kind") == "text" else ""
        summary = f"[template {content.get('name')}] {head}{view['template']['body']}{attached}"
    elif kind == "reaction":
        view["reaction"] = {"emoji": content.get("emoji", ""), "message_id": content.get("message_id")}
        summary = f"[reaction {content.get('emoji', '')}]"
    elif kind == "button":
        view["text"] = str(content.get("text", ""))
        summary = f"[reply] {view['text']}"
    else:
        summary = f"[{kind}]"
    return str(summary)


def conversations(state: SandboxState) -> dict[str, Any]:
    """Everything the inbox page shows, newest conversation first."""
    with state.lock:
        number = state.phone_numbers.get(next(iter(state.phone_numbers), ""), {})
        threads: dict[str, list[dict[str, Any]]] = {}
        by_id: dict[str, dict[str, Any]] = {}
        for message in state.messages:
            view = render(message, state)
            if "reaction" in view:
                target = by_id.get(str(view["reaction"]["message_id"]))
                if target is not None:
                    target["reactions"] = [
                        r for r in target["reactions"] if r["direction"] != message.direction
                    ]
                    if view["reaction"]["emoji"]:
                        target["reactions"].append(
                            {"emoji": view["reaction"]["emoji"], "direction": message.direction}
                        )
                    continue
            by_id[message.id] = view
            threads.setdefault(message.wa_id, []).append(view)
        for views in threads.values():
            for view in views:
                quoted = by_id.get(str(view["reply_to"])) if view["reply_to"] else None
                view["quote"] = quoted["summary"] if quoted else None
        listed = [
            {
                "wa_id": wa_id,
                "name": state.contact_names.get(wa_id),
                "display": _display_number(wa_id),
                "messages": views,
                "last_timestamp": views[-1]["timestamp"],
                "last_summary": views[-1]["summary"],
                "window_open": state.window_open(wa_id),
            }
            for wa_id, views in threads.items()
        ]
        listed.sort(key=lambda c: c["last_timestamp"], reverse=True)
        return {
            "version": state.version,
            "business": {
                "name": number.get("verified_name", ""),
                "display_phone_number": number.get("display_phone_number", ""),
                "phone_number_id": number.get("id", ""),
            },
            "require_window": state.require_window,
            "conversations": listed,
        }


def _display_number(wa_id: str) -> str:
    """``14155550100`` as ``+1 415 555 0100`` (North American numbers); others ``+`` and digits."""
    if len(wa_id) == 11 and wa_id.startswith("1"):
        return f"+1 {wa_id[1:4]} {wa_id[4:7]} {wa_id[7:]}"
    return f"+{wa_id}"


def transcript(state: SandboxState) -> str:
    """Each recipient's conversation as a few lines of text, oldest message first."""
    data = conversations(state)
    lines: list[str] = []
    for conversation in sorted(data["conversations"], key=lambda c: c["wa_id"]):
        who = conversation["display"] + (f" ({conversation['name']})" if conversation["name"] else "")
        lines.append(f"{who}: {len(conversation['messages'])} message(s)")
        for view in conversation["messages"]:
            clock = time.strftime("%H:%M:%S", time.localtime(view["timestamp"]))
            arrow = "→" if view["direction"] == "out" else "←"
            by = f"[{view['label']}] " if view.get("label") and view["direction"] == "out" else ""
            ticks = f"  {TICKS.get(view['status'], '')}" if view["direction"] == "out" else ""
            reactions = "".join(f" {r['emoji']}" for r in view["reactions"])
            summary = view["summary"].replace("\n", " ⏎ ")
            if len(summary) > 160:
                summary = summary[:157] + "..."
            lines.append(f"  {clock} {arrow} {by}{summary}{reactions}{ticks}")
    return "\n".join(lines) if lines else "(no messages)"
