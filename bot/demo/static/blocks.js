// Block Kit and mrkdwn rendering for the fblink demo client. No framework, no build step.
// Rule: every piece of text from the app is HTML-escaped before any markup is added.
(() => {
"use strict";

const EMOJI = {
  alarm_clock: "⏰", arrows_clockwise: "🔃", arrows_counterclockwise: "🔄", bell: "🔔", boom: "💥",
  grey_question: "❔", hourglass: "⌛", hourglass_flowing_sand: "⏳", key: "🔑", large_green_circle: "🟢",
  large_orange_circle: "🟠", large_yellow_circle: "🟡", link: "🔗", lock: "🔒", mag: "🔍", no_bell: "🔕",
  no_entry: "⛔", no_entry_sign: "🚫", red_circle: "🔴", rotating_light: "🚨", scissors: "✂️", warning: "⚠️",
  wastebasket: "🗑️", wave: "👋", white_check_mark: "✅", x: "❌", tada: "🎉", coffee: "☕",
  thinking_face: "🤔", unlock: "🔓",
};

function esc(s) {
  return String(s ?? "").replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

// Slack escapes & < > in message text; undo that before our own escaping.
function unslack(s) {
  return String(s).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function emoji(html) {
  return html.replace(/:([a-z0-9_+\-]+):/g, (m, name) => EMOJI[name] ? `<span class="emoji" title=":${name}:">${EMOJI[name]}</span>` : m);
}

function safeUrl(u) {
  return /^(https?:|mailto:)/i.test(u) ? u : "#";
}

function formatDate(ts, fmt, fallback) {
  const d = new Date(Number(ts) * 1000);
  if (isNaN(d)) return esc(fallback);
  const dateShort = d.toLocaleDateString(undefined, { month: "short", day: "numeric", year: "numeric" });
  const now = new Date(window.DEMO_NOW ? window.DEMO_NOW * 1000 : Date.now());
  const dayDiff = Math.round((new Date(d.toDateString()) - new Date(now.toDateString())) / 86400000);
  const pretty = dayDiff === 0 ? "Today" : dayDiff === 1 ? "Tomorrow" : dayDiff === -1 ? "Yesterday" : dateShort;
  const time = d.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" });
  const long = d.toLocaleDateString(undefined, { weekday: "long", month: "long", day: "numeric", year: "numeric" });
  const out = fmt.replace(/\{date_short_pretty\}/g, pretty).replace(/\{date_short\}/g, dateShort)
    .replace(/\{date_pretty\}/g, dayDiff === 0 ? "Today" : long).replace(/\{date_long\}/g, long)
    .replace(/\{date\}/g, long).replace(/\{time\}/g, time).replace(/\{date_num\}/g, d.toISOString().slice(0, 10));
  return `<time class="date" datetime="${esc(d.toISOString())}" title="${esc(unslack(fallback))}">${esc(out)}</time>`;
}

// <...> tokens: users, channels, dates, special mentions and links.
function token(inner, ctx) {
  const [target, label] = splitOnce(inner, "|");
  if (target.startsWith("@")) {
    const name = ctx.userName(target.slice(1));
    return `<span class="mention">@${esc(label ? unslack(label) : name)}</span>`;
  }
  if (target.startsWith("#")) {
    return `<span class="mention">#${esc(label ? unslack(label) : ctx.channelName(target.slice(1)))}</span>`;
  }
  if (target.startsWith("!date^")) {
    const parts = target.split("^");
    return formatDate(parts[1], unslack(parts[2] || "{date}"), label || "");
  }
  if (target.startsWith("!")) {
    return `<span class="mention">@${esc(target.slice(1).split("^")[0])}</span>`;
  }
  const url = unslack(target);
  return `<a href="${esc(safeUrl(url))}" target="_blank" rel="noopener noreferrer">${esc(label ? unslack(label) : url)}</a>`;
}

function splitOnce(s, sep) {
  const i = s.indexOf(sep);
  return i < 0 ? [s, ""] : [s.slice(0, i), s.slice(i + 1)];
}

function mrkdwn(text, ctx, verbatim) {
  const held = [];
  const hold = (html) => `\u0000${held.push(html) - 1}\u0000`;
  let s = String(text ?? "").replace(/\u0000/g, "");
  s = s.replace(/```([\s\S]*?)```/g, (m, code) => hold(`<pre>${esc(unslack(code))}</pre>`));
  s = s.replace(/`([^`\n]+)`/g, (m, code) => hold(`<code>${esc(unslack(code))}</code>`));
  s = s.replace(/<([^<>\n]+)>/g, (m, inner) => hold(token(inner, ctx)));
  s = esc(unslack(s));
  s = s.replace(/(^|[^\w*])\*(?!\s)([^*\n]+?)\*(?!\w)/g, "$1<b>$2</b>");
  s = s.replace(/(^|[^\w_])_(?!\s)([^_\n]+?)_(?!\w)/g, "$1<i>$2</i>");
  s = s.replace(/(^|[^\w~])~(?!\s)([^~\n]+?)~(?!\w)/g, "$1<s>$2</s>");
  s = s.replace(/^&gt; ?(.*)$/gm, "<blockquote>$1</blockquote>");
  s = emoji(s).replace(/\n/g, "<br>");
  return s.replace(/\u0000(\d+)\u0000/g, (m, i) => held[Number(i)]);
}

function textObj(t, ctx) {
  if (!t) return "";
  return t.type === "mrkdwn" ? mrkdwn(t.text, ctx, t.verbatim) : emoji(esc(t.text));
}

function optionHtml(o, selected) {
  return `<option value="${esc(o.value)}"${selected ? " selected" : ""}>${esc(o.text.text)}</option>`;
}

// Elements carry their JSON in data-el so a click can send exactly the action Slack would.
function element(el, blockId, ctx, values) {
  const data = esc(JSON.stringify({ ...el, block_id: blockId }));
  if (el.type === "button") {
    const cls = el.style ? ` btn-${esc(el.style)}` : "";
    return `<button class="btn${cls}" data-el="${data}" data-action="${esc(el.action_id)}">${textObj(el.text, ctx)}</button>`;
  }
  if (el.type === "static_select") {
    const current = values?.[blockId]?.[el.action_id]?.selected_option?.value ?? el.initial_option?.value;
    const opts = (el.options || []).map((o) => optionHtml(o, o.value === current)).join("");
    const ph = el.placeholder ? `<option value="" disabled${current ? "" : " selected"}>${esc(el.placeholder.text)}</option>` : "";
    return `<select class="select" data-el="${data}" data-action="${esc(el.action_id)}">${ph}${opts}</select>`;
  }
  if (el.type === "plain_text_input") {
    const v = values?.[blockId]?.[el.action_id]?.value ?? el.initial_value ?? "";
    const ml = el.max_length ? ` maxlength="${Number(el.max_length)}"` : "";
    const tag = el.multiline ? `<textarea class="input"${ml} data-el="${data}">${esc(v)}</textarea>`
      : `<input class="input" type="text"${ml} data-el="${data}" value="${esc(v)}" placeholder="${esc(el.placeholder?.text || "")}">`;
    return tag;
  }
  if (el.type === "image") return `<img class="ctx-img" alt="${esc(el.alt_text)}" src="${esc(safeUrl(el.image_url))}">`;
  if (el.type === "mrkdwn" || el.type === "plain_text") return `<span>${textObj(el, ctx)}</span>`;
  return `<span class="unsupported">[${esc(el.type)}]</span>`;
}

function renderBlocks(blocks, ctx, opts = {}) {
  const out = [];
  for (const b of blocks || []) {
    const id = b.block_id || "";
    if (b.type === "section") {
      const fields = (b.fields || []).map((f) => `<div>${textObj(f, ctx)}</div>`).join("");
      const acc = b.accessory ? `<div class="accessory">${element(b.accessory, id, ctx, opts.values)}</div>` : "";
      out.push(`<div class="blk section"><div class="sec-text">${textObj(b.text, ctx)}${fields ? `<div class="fields">${fields}</div>` : ""}</div>${acc}</div>`);
    } else if (b.type === "context") {
      out.push(`<div class="blk context">${(b.elements || []).map((e) => element(e, id, ctx)).join(" ")}</div>`);
    } else if (b.type === "header") {
      out.push(`<div class="blk header">${textObj(b.text, ctx)}</div>`);
    } else if (b.type === "divider") {
      out.push(`<hr class="blk divider">`);
    } else if (b.type === "actions") {
      out.push(`<div class="blk actions">${(b.elements || []).map((e) => element(e, id, ctx, opts.values)).join("")}</div>`);
    } else if (b.type === "input") {
      const err = opts.errors?.[id];
      const opt = b.optional ? ` <span class="optional">(optional)</span>` : "";
      const dispatch = b.dispatch_action ? " data-dispatch=\"1\"" : "";
      out.push(`<div class="blk input${err ? " has-error" : ""}" data-block="${esc(id)}"${dispatch}>
        <label>${esc(b.label?.text)}${opt}</label>${element(b.element, id, ctx, opts.values)}
        ${b.hint ? `<div class="hint">${esc(b.hint.text)}</div>` : ""}${err ? `<div class="error">${esc(err)}</div>` : ""}</div>`);
    } else {
      out.push(`<div class="blk unsupported">[${esc(b.type)} block]</div>`);
    }
  }
  return out.join("");
}

window.FBLINK_BLOCKS = { esc, mrkdwn, renderBlocks, textObj, emoji };
})();
