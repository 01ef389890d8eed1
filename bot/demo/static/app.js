// The fblink demo's Slack-like client: polls /api/state, renders Block Kit, and sends what a
// person does (commands, clicks, modal submits) to the demo server, which relays it to fblink.
"use strict";

const { esc, renderBlocks, textObj } = window.FBLINK_BLOCKS;
const $ = (sel) => document.querySelector(sel);
const ui = { team: null, user: null, channel: null, version: -1, key: "", modalKey: "", config: null, state: null, busy: false, seen: {}, counts: {} };

async function api(path, body) {
  const r = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  return r.json();
}

const ctx = {
  userName: (id) => {
    const p = ui.config.people.find((x) => x.id === id);
    return p ? p.name : id === ui.config.bot ? "fblink" : id;
  },
  channelName: (id) => ui.config.channels.find((c) => c.id === id)?.name || id,
};

function dmOf(user) { return "D" + user.slice(1); }

function setUser(user) {
  ui.user = user;
  document.cookie = `demo_user=${encodeURIComponent(user)}; path=/; SameSite=Lax`;
  ui.version = -1;
  ui.modalKey = "";
  renderSidebar();
  if (ui.channel === "home") openHome(); else refresh();
}

function setChannel(channel) {
  ui.channel = channel;
  ui.version = -1;
  renderSidebar();
  if (channel === "home") openHome(); else refresh();
}

async function openHome() {
  await api("/api/home", { user: ui.user });
  refresh();
}

// Slack's workspace switcher: one tile per installed workspace, and "Add to Slack" for the one that is not.
function renderWorkspaces() {
  const tiles = ui.config.workspaces.filter((w) => w.installed).map((w) =>
    `<button class="ws-tile${w.id === ui.team ? " active" : ""}" data-team="${esc(w.id)}" title="${esc(w.name)}">${esc(w.name.slice(0, 1))}</button>`);
  const adds = ui.config.workspaces.some((w) => !w.installed)
    ? [`<a class="ws-tile add" href="/install" title="Add to Slack">+</a>`] : [];
  $("#workspaces").innerHTML = [...tiles, ...adds].join("");
  $("#ws-name").textContent = ui.config.workspaces.find((w) => w.id === ui.team).name;
}

function setTeam(team) {
  ui.team = team;
  const people = ui.config.people.filter((p) => p.team === team);
  $("#person").innerHTML = people.map((p) => `<option value="${esc(p.id)}">${esc(p.title)}</option>`).join("");
  ui.channel = ui.config.channels.find((c) => c.team === team).id;
  renderWorkspaces();
  setUser(people[0].id);
}

function renderSidebar() {
  const c = { ...ui.config, channels: ui.config.channels.filter((ch) => ch.team === ui.team) };
  const counts = ui.counts || {};
  const unread = (id) => id !== ui.channel && (counts[id] || 0) > (ui.seen[ui.user + id] || 0);
  const item = (id, label, extra = "") =>
    `<a href="#" class="nav${ui.channel === id ? " active" : ""}${unread(id) ? " unread" : ""}" data-channel="${esc(id)}"${extra}>${label}</a>`;
  $("#channels").innerHTML = c.channels.map((ch) => item(ch.id, `# ${esc(ch.name)}`)).join("");
  $("#dms").innerHTML = item(dmOf(ui.user), `<span class="dot"></span> fblink <span class="badge">APP</span>`);
  $("#apps").innerHTML = item("home", `🏠 fblink Home`, ` id="home-tab"`);
  $("#person").value = ui.user;
  const me = c.people.find((p) => p.id === ui.user);
  $("#whoami").textContent = `You are ${me.title}` + (c.admins.includes(me.id) ? " · may manage keys and workspace settings" : "");
}

function title() {
  if (ui.channel === "home") return "fblink · Home";
  if (ui.channel.startsWith("D")) return "fblink (direct message)";
  return "# " + ctx.channelName(ui.channel);
}

function messageHtml(m) {
  const author = m.user === ui.config.bot ? "fblink" : m.user === "USLACKBOT" ? "Slackbot" : ctx.userName(m.user);
  const when = new Date((m.at || Number(m.ts.split(".")[0])) * 1000).toLocaleString(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
  const body = m.blocks && m.blocks.length ? renderBlocks(m.blocks, ctx) : `<div class="blk section">${window.FBLINK_BLOCKS.mrkdwn(m.text, ctx)}</div>`;
  const eph = m.ephemeral ? `<div class="ephemeral">👁 Only visible to you</div>` : "";
  return `<div class="msg${m.ephemeral ? " is-ephemeral" : ""}" data-ts="${esc(m.ts)}">
    <div class="avatar">${author === "fblink" ? "🔗" : "🤖"}</div>
    <div class="msg-main">${eph}<div class="msg-head"><b>${esc(author)}</b> ${author === "fblink" ? '<span class="badge">APP</span>' : ""}
    <span class="time">${esc(when)}</span>${m.edited ? ' <span class="edited">(edited)</span>' : ""}</div>${body}</div></div>`;
}

function render(state) {
  window.DEMO_NOW = state.now;
  ui.counts = state.counts || {};
  if (ui.channel !== "home") ui.seen[ui.user + ui.channel] = ui.counts[ui.channel] ?? state.messages.length;
  renderSidebar();
  $("#title").textContent = title();
  $("#clock").textContent = new Date(state.now * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })
    + (state.offset_days ? ` (+${Math.round(state.offset_days)} days)` : "");
  const main = $("#messages");
  const home = ui.channel === "home";
  $("#composer-wrap").style.display = home ? "none" : "";
  const key = JSON.stringify([ui.user, ui.channel, home ? state.home : state.messages]);
  if (key !== ui.key) {
    ui.key = key;
    if (home) {
      main.innerHTML = state.home ? `<div class="home" data-surface="home">${renderBlocks(state.home.blocks, ctx)}</div>`
        : `<div class="empty">fblink has not published a Home tab for you yet.</div>`;
    } else {
      main.innerHTML = state.messages.map(messageHtml).join("") || `<div class="empty">No messages yet. Try <code>/fblink help</code>.</div>`;
      main.scrollTop = main.scrollHeight;
    }
  }
  renderModal(state.modal);
}

function renderModal(modal) {
  const key = JSON.stringify(modal);
  if (key === ui.modalKey) return;
  const keep = ui.modalKey && modal && JSON.parse(ui.modalKey)?.id === modal.id ? modalValues() : (modal?.state?.values || {});
  ui.modalKey = key;
  const box = $("#modal");
  if (!modal) { box.hidden = true; box.innerHTML = ""; return; }
  const general = modal.errors?._ ? `<div class="error">${esc(modal.errors._)}</div>` : "";
  box.innerHTML = `<div class="modal-card" role="dialog" aria-label="${esc(modal.title?.text)}">
    <div class="modal-head"><span>${esc(modal.title?.text)}</span><button class="x" id="modal-x" aria-label="Close">✕</button></div>
    <div class="modal-body" data-surface="modal">${renderBlocks(modal.blocks, ctx, { values: keep, errors: modal.errors || {} })}${general}</div>
    <div class="modal-foot"><button class="btn" id="modal-close">${esc(modal.close?.text || "Cancel")}</button>
    ${modal.submit ? `<button class="btn btn-primary" id="modal-submit">${esc(modal.submit.text)}</button>` : ""}</div></div>`;
  box.hidden = false;
}

function modalValues() {
  const values = {};
  for (const blk of document.querySelectorAll("#modal .blk.input, #modal .blk.actions")) {
    for (const node of blk.querySelectorAll("[data-el]")) {
      const el = JSON.parse(node.dataset.el);
      const bid = el.block_id;
      values[bid] = values[bid] || {};
      if (el.type === "plain_text_input") values[bid][el.action_id] = { type: el.type, value: node.value === "" ? null : node.value };
      if (el.type === "static_select") values[bid][el.action_id] = { type: el.type, selected_option: selectedOption(el, node.value) };
    }
  }
  return values;
}

function selectedOption(el, value) {
  const o = (el.options || []).find((x) => x.value === value);
  return o ? { text: o.text, value: o.value } : null;
}

async function refresh() {
  if (!ui.user) return;
  const channel = ui.channel === "home" ? dmOf(ui.user) : ui.channel;
  const state = await api(`/api/state?user=${encodeURIComponent(ui.user)}&channel=${encodeURIComponent(channel)}`);
  ui.state = state;
  render(state);
}

function confirmFirst(confirm) {
  if (!confirm) return Promise.resolve(true);
  return new Promise((resolve) => {
    const box = $("#confirm");
    box.innerHTML = `<div class="modal-card small" role="alertdialog"><div class="modal-head"><span>${esc(confirm.title?.text || "Are you sure?")}</span></div>
      <div class="modal-body">${textObj(confirm.text, ctx)}</div>
      <div class="modal-foot"><button class="btn" id="confirm-deny">${esc(confirm.deny?.text || "Cancel")}</button>
      <button class="btn ${confirm.style === "danger" ? "btn-danger" : "btn-primary"}" id="confirm-ok">${esc(confirm.confirm?.text || "Yes")}</button></div></div>`;
    box.hidden = false;
    const done = (ok) => { box.hidden = true; box.innerHTML = ""; resolve(ok); };
    $("#confirm-ok").onclick = () => done(true);
    $("#confirm-deny").onclick = () => done(false);
  });
}

function actionOf(el, node) {
  const base = { action_id: el.action_id, block_id: el.block_id, type: el.type };
  if (el.type === "button") {
    const a = { ...base, text: el.text, value: el.value ?? undefined };
    if (el.style) a.style = el.style;
    if (el.url) a.url = el.url;
    return a;
  }
  return { ...base, selected_option: selectedOption(el, node.value), placeholder: el.placeholder };
}

async function interact(node) {
  const el = JSON.parse(node.dataset.el);
  if (!(await confirmFirst(el.confirm))) return;
  if (el.url) window.open(el.url, "_blank", "noopener");
  const surface = node.closest("[data-surface]")?.dataset.surface || "message";
  const body = { user: ui.user, surface, action: actionOf(el, node) };
  if (surface === "modal") body.values = modalValues();
  if (surface === "message") {
    body.channel = ui.channel;
    body.ts = node.closest(".msg").dataset.ts;
  }
  await api("/api/action", body);
  refresh();
}

async function send() {
  const box = $("#composer");
  const text = box.value.trim();
  if (!text) return;
  box.value = "";
  if (!text.startsWith("/")) { box.placeholder = "Only slash commands reach fblink here: try /fblink help"; return; }
  await api("/api/command", { user: ui.user, channel: ui.channel, text });
  refresh();
}

function wire() {
  document.addEventListener("click", async (ev) => {
    const nav = ev.target.closest("[data-channel]");
    if (nav) { ev.preventDefault(); setChannel(nav.dataset.channel); return; }
    const btn = ev.target.closest("button[data-el]");
    if (btn && !btn.disabled) {
      btn.disabled = true;  // a double click sends one action, as in Slack
      try { await interact(btn); } finally { btn.disabled = false; }
      return;
    }
    if (ev.target.id === "modal-submit") {
      ev.target.disabled = true;
      await api("/api/submit", { user: ui.user, values: modalValues() });
      ui.modalKey = ui.modalKey + " ";  // re-render with errors, keeping what was typed
      refresh();
    } else if (ev.target.id === "modal-close" || ev.target.id === "modal-x") {
      await api("/api/close", { user: ui.user });
      refresh();
    }
  });
  document.addEventListener("change", (ev) => {
    const sel = ev.target.closest("select[data-el]");
    if (!sel) return;
    const inInput = sel.closest(".blk.input");
    if (!inInput || inInput.dataset.dispatch) interact(sel);  // inputs only dispatch when the block asks to
  });
  $("#composer").addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); send(); } });
  $("#send").onclick = send;
  $("#person").onchange = (ev) => setUser(ev.target.value);
  $("#advance").onclick = async () => {
    const r = await api("/api/clock/advance", { days: Number($("#advance-days").value) });
    $("#sweep-report").textContent = r.ok ? r.said : r.error;
    refresh();
  };
  $("#sweep").onclick = async () => {
    $("#sweep").disabled = true;
    const r = await api("/api/clock/sweep", {});
    $("#sweep").disabled = false;
    $("#sweep-report").textContent = r.report
      ? (r.report.length ? `Posted:\n${r.report.join("\n")}\nOpen the channel each Page was linked from to see them.` : "Nothing was due.")
      : r.error;
    refresh();
  };
}

async function main() {
  ui.config = await api("/api/config");
  const asked = new URLSearchParams(location.search).get("workspace");
  const installed = ui.config.workspaces.filter((w) => w.installed);
  wire();
  $("#workspaces").addEventListener("click", (e) => {
    const tile = e.target.closest("button[data-team]");
    if (tile) setTeam(tile.dataset.team);
  });
  setTeam((installed.find((w) => w.id === asked) || installed[0]).id);
  setInterval(() => { if (!document.hidden) refresh(); }, 700);
}

main();
