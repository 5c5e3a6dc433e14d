// The sandbox inbox: polls /_sandbox/conversations and draws each conversation like a phone chat.
"use strict";

const state = { version: -1, selected: null, data: null };
const POLL_MS = 1000;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

// WhatsApp's own formatting: *bold*, _italic_, ~strike~, ```monospace```. Message text is hostile: it is
// only ever appended as text nodes and elements built here, never parsed as HTML.
const MARKS = [
  { re: /```([\s\S]+?)```/g, tag: "code", verbatim: true },
  { re: /(^|[\s(])\*([^*\n]+)\*(?=$|[\s).,!?:;])/g, tag: "b" },
  { re: /(^|[\s(])_([^_\n]+)_(?=$|[\s).,!?:;])/g, tag: "i" },
  { re: /(^|[\s(])~([^~\n]+)~(?=$|[\s).,!?:;])/g, tag: "s" },
];

function appendFormatted(parent, text) {
  let position = 0;
  while (position < text.length) {
    let first = null;
    for (const mark of MARKS) {
      mark.re.lastIndex = position;
      const match = mark.re.exec(text);
      if (match && (!first || match.index < first.match.index)) first = { mark, match };
    }
    if (!first) break;
    const { mark, match } = first;
    const lead = mark.verbatim ? "" : match[1];
    parent.append(text.slice(position, match.index) + lead);
    const node = document.createElement(mark.tag);
    if (mark.verbatim) node.textContent = match[1];
    else appendFormatted(node, match[2]);
    parent.appendChild(node);
    position = match.index + match[0].length;
  }
  parent.append(text.slice(position));
}

function formatted(text) {
  const node = el("div", "text");
  appendFormatted(node, String(text || ""));
  return node;
}

function clock(ts) {
  return new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function day(ts) {
  const date = new Date(ts * 1000);
  const today = new Date();
  if (date.toDateString() === today.toDateString()) return "Today";
  return date.toLocaleDateString([], { year: "numeric", month: "long", day: "numeric" });
}

function humanSize(size) {
  if (size === undefined || size === null) return "";
  if (size >= 1048576) return (size / 1048576).toFixed(1) + " MB";
  if (size >= 1024) return Math.round(size / 1024) + " kB";
  return size + " B";
}

function initials(conversation) {
  if (!conversation.name) return conversation.wa_id.slice(-2);
  return conversation.name.split(/\s+/).map((w) => w[0]).join("").slice(0, 2).toUpperCase();
}

function avatarColour(wa_id) {
  const colours = ["#6bcbef", "#ffa97a", "#a5b337", "#35cd96", "#e542a3", "#fe7c7f", "#7f66ff", "#dfb610"];
  let hash = 0;
  for (const c of wa_id) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return colours[hash % colours.length];
}

// --- media -----------------------------------------------------------------------------------

function mediaNode(media) {
  const wrap = el("div", "media media-" + media.kind);
  if (media.kind === "image" || media.kind === "sticker") {
    const img = el("img", media.kind === "sticker" ? "sticker" : "media-img");
    img.alt = media.caption || media.filename || media.kind;
    img.src = media.src;
    img.onerror = () => {
      const missing = el("div", "media-missing", "🖼 " + (media.filename || media.src || media.kind));
      img.replaceWith(missing);
    };
    wrap.appendChild(img);
  } else if (media.kind === "video") {
    wrap.appendChild(el("div", "media-missing", "▶ video " + (media.filename || "")));
  } else if (media.kind === "audio") {
    const audio = el("div", "audio");
    audio.append(el("span", null, "▶"), el("div", "wave"), el("span", "doc-meta", humanSize(media.size)));
    wrap.appendChild(audio);
  } else {
    const doc = el("div", "doc");
    const name = media.filename || "document";
    const ext = (name.includes(".") ? name.split(".").pop() : "file").slice(0, 4).toLowerCase();
    doc.appendChild(el("div", "doc-icon " + ext, ext.toUpperCase()));
    const info = el("div");
    info.appendChild(el("div", "doc-name", name));
    info.appendChild(el("div", "doc-meta", [ext.toUpperCase(), humanSize(media.size)].filter(Boolean).join(" · ")));
    doc.appendChild(info);
    wrap.appendChild(doc);
  }
  return wrap;
}

// --- one message -----------------------------------------------------------------------------

function ticks(status) {
  if (status === "failed") return el("span", "ticks failed", "⚠");
  if (status === "read") return el("span", "ticks read", "✓✓");
  if (status === "delivered") return el("span", "ticks delivered", "✓✓");
  if (status === "sent") return el("span", "ticks sent", "✓");
  return el("span", "ticks pending", "🕓");
}

function headerNode(header) {
  if (!header) return null;
  if (header.kind === "text") return el("div", "header-text", header.text);
  return mediaNode(header);
}

// The person at the phone answers: a tap on a reply button or a list row, or a typed reply. Each goes
// to the sandbox, which turns it into an inbound message and its webhook.
async function answer(body) {
  const response = await fetch("/_sandbox/reply", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) document.getElementById("sidebar-note").textContent = "The sandbox refused the reply.";
  state.version = -1; // redraw with the answer at the next poll
}

function choicesNode(buttons, m) {
  const box = el("div", "choices");
  for (const b of buttons) {
    const icon = b.type === "URL" ? "↗ " : b.type === "PHONE_NUMBER" ? "✆ " : "↩ ";
    const tappable = b.type === "QUICK_REPLY" && m.direction === "out";
    const choice = el(tappable ? "button" : "div", "choice", icon + b.text);
    if (tappable) {
      choice.type = "button";
      choice.dataset.buttonId = b.id || "";
      const body = b.id ? { message_id: m.id, button_id: b.id } : { message_id: m.id, button_index: b.index };
      choice.addEventListener("click", () => answer(body));
    }
    box.appendChild(choice);
  }
  return box;
}

function bubbleContent(m, bubble) {
  if (m.label && m.direction === "out") bubble.appendChild(el("div", "label", m.label));
  if (m.quote) bubble.appendChild(el("div", "quote", m.quote));
  let after = null;
  if (m.type === "template" && m.template) {
    const t = m.template;
    bubble.appendChild(el("div", "template-tag", "Template · " + t.name));
    const header = headerNode(t.header);
    if (header) bubble.appendChild(header);
    bubble.appendChild(formatted(t.body));
    if (t.footer) bubble.appendChild(el("div", "footer", t.footer));
    if (t.buttons && t.buttons.length) after = choicesNode(t.buttons, m);
  } else if (m.interactive) {
    const i = m.interactive;
    const header = headerNode(i.header);
    if (header) bubble.appendChild(header);
    bubble.appendChild(formatted(i.body));
    if (i.footer) bubble.appendChild(el("div", "footer", i.footer));
    if (i.list) {
      bubble.appendChild(el("div", "list-button", "☰ " + i.list.button));
      const sheet = el("div", "list-sheet");
      for (const section of i.list.sections) {
        if (section.title) sheet.appendChild(el("div", "list-section-title", section.title));
        for (const row of section.rows) {
          const r = el(m.direction === "out" ? "button" : "div", "list-row");
          if (m.direction === "out") {
            r.type = "button";
            r.dataset.rowId = row.id || "";
            r.addEventListener("click", () => answer({ message_id: m.id, row_id: row.id }));
          }
          r.appendChild(el("div", "row-title", row.title));
          if (row.description) r.appendChild(el("div", "desc", row.description));
          sheet.appendChild(r);
        }
      }
      bubble.appendChild(sheet);
    }
    if (i.buttons && i.buttons.length) after = choicesNode(i.buttons, m);
  } else if (m.media) {
    bubble.appendChild(mediaNode(m.media));
    if (m.media.caption) bubble.appendChild(formatted(m.media.caption));
  } else if (m.location) {
    const l = m.location;
    bubble.appendChild(el("div", "location-map", "📍"));
    if (l.name) bubble.appendChild(el("div", "header-text", l.name));
    if (l.address) bubble.appendChild(el("div", "footer", l.address));
    bubble.appendChild(el("div", "footer", l.latitude + ", " + l.longitude));
  } else if (m.contacts) {
    for (const c of m.contacts) {
      const row = el("div", "contact");
      row.appendChild(el("div", "avatar", (c.name || "?")[0]));
      const info = el("div");
      info.appendChild(el("div", "doc-name", c.name));
      info.appendChild(el("div", "doc-meta", (c.phones || []).join(", ")));
      row.appendChild(info);
      bubble.appendChild(row);
    }
  } else if (m.reaction) {
    bubble.appendChild(el("div", "text", "reacted " + m.reaction.emoji));
  } else {
    bubble.appendChild(formatted(m.text !== undefined ? m.text : m.summary));
  }
  const stamp = el("span", "stamp", clock(m.timestamp));
  if (m.direction === "out") stamp.appendChild(ticks(m.status));
  bubble.appendChild(stamp);
  return after;
}

function messageNode(m) {
  const row = el("div", "msg " + m.direction + " type-" + m.type);
  row.dataset.id = m.id;
  row.dataset.status = m.status;
  const bubble = el("div", "bubble");
  const after = bubbleContent(m, bubble);
  row.appendChild(bubble);
  if (m.reactions && m.reactions.length) row.appendChild(el("div", "reactions", m.reactions.map((r) => r.emoji).join(" ")));
  if (after) row.appendChild(after);
  if (m.direction === "out") {
    const quote = el("button", "quote-this", "↩ Reply");
    quote.type = "button";
    quote.addEventListener("click", () => {
      state.quoting = m.id;
      document.getElementById("composer-quote").textContent = "Replying to: " + m.summary;
      document.getElementById("composer-text").focus();
    });
    row.appendChild(quote);
  }
  return row;
}

// --- the page --------------------------------------------------------------------------------

function drawChats(data) {
  const list = document.getElementById("chats");
  list.replaceChildren();
  for (const c of data.conversations) {
    const item = el("li", "chat-item" + (c.wa_id === state.selected ? " selected" : ""));
    item.dataset.waId = c.wa_id;
    const avatar = el("div", "avatar", initials(c));
    avatar.style.background = avatarColour(c.wa_id);
    const meta = el("div", "meta");
    const top = el("div", "row");
    top.append(el("span", "who", c.name ? c.name + " · " + c.display : c.display), el("span", "when", clock(c.last_timestamp)));
    const bottom = el("div", "row");
    bottom.append(el("span", "preview", c.last_summary), el("span", "count", String(c.messages.length)));
    meta.append(top, bottom);
    item.append(avatar, meta);
    item.addEventListener("click", () => {
      state.selected = c.wa_id;
      history.replaceState(null, "", "#" + c.wa_id);
      draw(state.data);
    });
    list.appendChild(item);
  }
}

function drawConversation(data) {
  const box = document.getElementById("messages");
  const conversation = data.conversations.find((c) => c.wa_id === state.selected);
  const title = document.getElementById("chat-title");
  const subtitle = document.getElementById("chat-subtitle");
  const avatar = document.getElementById("chat-avatar");
  if (!conversation) {
    box.replaceChildren(el("div", "empty", "No messages yet: run a DAG against the sandbox."));
    return;
  }
  const stick = box.scrollTop + box.clientHeight >= box.scrollHeight - 40;
  title.textContent = conversation.name ? conversation.name + " · " + conversation.display : conversation.display;
  const window = data.require_window ? (conversation.window_open ? " · 24 h window open" : " · 24 h window closed: templates only") : "";
  subtitle.textContent = conversation.messages.length + " messages" + window;
  avatar.textContent = initials(conversation);
  avatar.style.background = avatarColour(conversation.wa_id);
  const nodes = [];
  let lastDay = null;
  for (const m of conversation.messages) {
    const d = day(m.timestamp);
    if (d !== lastDay) {
      const sep = el("div", "day");
      sep.appendChild(el("span", null, d));
      nodes.push(sep);
      lastDay = d;
    }
    nodes.push(messageNode(m));
  }
  box.replaceChildren(...nodes);
  if (stick || state.firstDraw) box.scrollTop = box.scrollHeight;
  state.firstDraw = false;
}

function draw(data) {
  state.data = data;
  document.getElementById("business-name").textContent = data.business.name || "WhatsApp sandbox";
  document.getElementById("business-number").textContent = data.business.display_phone_number || "";
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted && data.conversations.some((c) => c.wa_id === wanted)) state.selected = wanted;
  if (!data.conversations.some((c) => c.wa_id === state.selected)) {
    state.selected = data.conversations.length ? data.conversations[0].wa_id : null;
    state.firstDraw = true;
  }
  drawChats(data);
  drawConversation(data);
  document.body.dataset.version = String(data.version);
}

async function poll() {
  try {
    const response = await fetch("/_sandbox/conversations", { cache: "no-store" });
    if (response.ok) {
      const data = await response.json();
      if (data.version !== state.version) {
        state.version = data.version;
        draw(data);
      }
    }
  } catch (error) {
    document.getElementById("sidebar-note").textContent = "The sandbox is not answering: is it still running?";
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

document.getElementById("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("composer-text");
  const text = input.value.trim();
  if (!text || !state.selected) return;
  if (state.quoting) {
    await answer({ message_id: state.quoting, text });
  } else {
    await fetch("/_sandbox/inbound", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ from: state.selected, text }),
    });
    state.version = -1;
  }
  input.value = "";
  state.quoting = null;
  document.getElementById("composer-quote").textContent = "";
});

window.addEventListener("hashchange", () => state.data && draw(state.data));
state.firstDraw = true;
poll();
