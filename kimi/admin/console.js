// The operator console: plain DOM, no framework, nothing fetched from elsewhere. Every value
// from the gateway goes in as text (textContent), never as HTML.
"use strict";

const $ = (sel) => document.querySelector(sel);
const PAGES = ["accounts", "keys", "traffic", "conversations"];
const REFRESH_MS = 5000;
let current = null;
let timer = null;

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c ?? ""));
  return node;
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { "X-Console": "1" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch("/admin/api/" + path, init);
  if (resp.status === 401) { location.reload(); throw new Error("logged out"); }
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error((data.error && data.error.message) || `HTTP ${resp.status}`);
  return data;
}

function notice(text, bad) {
  const box = $("#notice");
  box.textContent = text;
  box.className = bad ? "notice bad" : "notice";
  box.hidden = !text;
}

// --- formatting -----------------------------------------------------------------------------
const pad = (n) => String(n).padStart(2, "0");
function clock(t) {
  const d = new Date(t * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function span(seconds) {
  const s = Math.abs(Math.round(seconds));
  if (s < 90) return `${s}s`;
  if (s < 5400) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}
const now = () => Date.now() / 1000;
const ago = (t) => (t ? `${span(now() - t)} ago` : "never");
const until = (t) => (t ? (t <= now() + 1 ? "now" : `in ${span(t - now())}`) : "-");
const ms = (v) => (v === null || v === undefined ? "-" : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`);
const tokens = (a, b) => (a === null && b === null ? "-" : `${a ?? "-"} / ${b ?? "-"}`);
const badge = (text, kind) => el("span", { class: `badge ${kind || text}` }, text);

function fill(table, rows, empty) {
  const body = $(table).tBodies[0];
  const labels = [...$(table).tHead.rows[0].cells].map((c) => c.textContent);
  body.replaceChildren(...rows.map((cells) => el("tr", {}, ...cells.map((c, i) => {
    const td = c instanceof HTMLTableCellElement ? c : el("td", {}, c);
    td.dataset.label = labels[i] || "";
    return td;
  }))));
  if (!rows.length) body.append(el("tr", {}, el("td", { class: "empty", colspan: labels.length }, empty)));
}

function action(label, run, cls) {
  return el("button", { type: "button", class: cls || "", onclick: async (ev) => {
    ev.target.disabled = true;
    try { await run(); } catch (e) { notice(e.message, true); } finally { ev.target.disabled = false; }
  } }, label);
}

// --- accounts -------------------------------------------------------------------------------
function stateCell(a) {
  const parts = [badge(a.state)];
  if (a.state === "cooling") parts.push(el("span", { class: "why" }, `${a.reason || ""} (${span(a.cooling_left)} left)`));
  else if (a.state === "dead") parts.push(el("span", { class: "why" }, a.reason || ""));
  return el("td", {}, ...parts);
}

async function loadAccounts() {
  const { data } = await api("GET", "accounts");
  fill("#account-table", data.map((a) => [
    el("code", {}, a.id), a.source, stateCell(a), el("td", { class: "num" }, a.in_flight),
    a.token_kind + (a.has_refresh_token && a.token_kind === "access" ? " + refresh" : ""),
    a.access_expires_at ? until(a.access_expires_at) : "-", ago(a.last_refresh),
    a.next_refresh ? until(a.next_refresh) : (a.state === "disabled" ? "-" : "never (no refresh token)"),
    el("td", { class: "actions" },
      a.state === "disabled"
        ? action("Enable", () => change(`accounts/${a.id}/enable`, `Enabled ${a.id}.`))
        : action("Disable", () => change(`accounts/${a.id}/disable`, `Disabled ${a.id}.`)),
      a.source === "console" ? action("Remove", () => removeAccount(a.id), "danger") : ""),
  ]), "No server account: the gateway is in pass-through mode. Add one above.");
}

async function change(path, message) {
  await api("POST", path, {});
  notice(message);
  await loadAccounts();
}

async function removeAccount(id) {
  if (!confirm(`Remove ${id}? Streams in flight finish first.`)) return;
  await api("DELETE", `accounts/${id}`);
  notice(`Removed ${id}.`);
  await loadAccounts();
}

async function addAccount(ev) {
  ev.preventDefault();
  const input = $("#token"), button = ev.submitter || $("#add-account button");
  button.disabled = true;
  notice("Checking the token with Kimi...");
  try {
    const { id } = await api("POST", "accounts", { token: input.value });
    input.value = "";
    notice(`Added ${id}.`);
    await loadAccounts();
  } catch (e) { notice(e.message, true); } finally { button.disabled = false; }
}

// --- API keys -------------------------------------------------------------------------------
async function loadKeys() {
  const { data } = await api("GET", "keys");
  fill("#key-table", data.map((k) => [
    k.name, k.source, k.hint ? el("code", {}, `sk-kg-…${k.hint}`) : "(in the config file)",
    k.created_at ? ago(k.created_at) : "-", el("td", { class: "num" }, k.requests),
    el("td", { class: "num" }, `${k.prompt_tokens} / ${k.completion_tokens}`), ago(k.last_used),
    k.revoked_at ? badge("revoked") : badge("active"),
    el("td", { class: "actions" }, k.source === "console" && !k.revoked_at
      ? action("Revoke", () => revokeKey(k), "danger") : ""),
  ]), "No API key yet.");
}

async function revokeKey(k) {
  if (!confirm(`Revoke the key "${k.name}"? Clients using it are refused from now on.`)) return;
  await api("DELETE", `keys/${k.id}`);
  notice(`Revoked "${k.name}".`);
  await loadKeys();
}

async function addKey(ev) {
  ev.preventDefault();
  try {
    const key = await api("POST", "keys", { name: $("#key-name").value });
    $("#key-name").value = "";
    $("#secret-value").textContent = key.secret;
    $("#new-secret").hidden = false;
    notice(`Created "${key.name}".`);
    await loadKeys();
  } catch (e) { notice(e.message, true); }
}

async function copySecret() {
  const code = $("#secret-value");
  try {
    await navigator.clipboard.writeText(code.textContent);
    notice("Copied.");
  } catch (e) {
    // Browsers allow the clipboard only on HTTPS (or localhost): select it for Ctrl+C instead.
    getSelection().selectAllChildren(code);
    notice("Selected: copy it with Ctrl+C.");
  }
}

// --- traffic --------------------------------------------------------------------------------
function filters() {
  const form = new FormData($("#filters"));
  const query = new URLSearchParams();
  for (const [k, v] of form) if (v && k !== "minutes") query.set(k, v);
  return { query: query.toString(), minutes: form.get("minutes") || "60" };
}

async function loadTraffic() {
  const { query, minutes } = filters();
  const [rows, series] = await Promise.all([api("GET", `traffic?${query}`),
                                            api("GET", `traffic/series?minutes=${minutes}`)]);
  fill("#traffic-table", rows.data.map((r) => [
    clock(r.time), r.key || "-", r.model || "-", r.dialect,
    el("td", {}, badge(String(r.status), r.error ? "error" : "ok"), r.error ? el("span", { class: "why" }, r.error) : ""),
    ms(r.ttft_ms), ms(r.duration_ms), tokens(r.prompt_tokens, r.completion_tokens),
    r.account ? el("code", {}, r.account) : "-",
  ]), "No request yet (or none matches the filters).");
  // Several replicas: each records the requests it served, and this one answered.
  $("#traffic-replica").textContent = rows.replica ? `Requests served by the replica ${rows.replica} (each replica records its own).` : "";
  $("#traffic-replica").hidden = !rows.replica;
  drawCharts(series.data);
}

let lastPoints = null;
function drawCharts(points) {
  lastPoints = points;
  bars($("#chart-requests"), points.map((p) => p.requests));
  lines($("#chart-errors"), [points.map((p) => (p.requests ? (100 * p.errors) / p.requests : null))], 100);
  lines($("#chart-ttft"), ["p50", "p90", "p99"].map((q) => points.map((p) => p[q])));
  for (const id of ["#chart-requests", "#chart-errors", "#chart-ttft"]) axisTimes($(id), points);
  $("#chart-requests").dataset.total = points.reduce((n, p) => n + p.requests, 0);
}

const SVG = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
const PAD = { left: 34, right: 6, top: 8, bottom: 18 };

function frame(svg, top) {
  const w = Math.max(200, svg.clientWidth || 300), h = 150;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.replaceChildren();
  const y0 = h - PAD.bottom, plotH = y0 - PAD.top;
  for (const f of [0, 0.5, 1]) {
    const y = y0 - f * plotH;
    svg.append(svgEl("line", { class: f ? "grid" : "axis", x1: PAD.left, x2: w - PAD.right, y1: y, y2: y }));
    svg.append(svgEl("text", { x: PAD.left - 4, y: y + 3, "text-anchor": "end" }, niceNumber(top * f)));
  }
  return { w, y0, plotH, plotW: w - PAD.left - PAD.right };
}

function niceCeil(v) {
  // The axis top: 1, 2 or 5 times a power of ten, so the middle line is a round number.
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((t) => t >= v);
}

function niceNumber(v) {
  return v >= 1000 ? `${(v / 1000).toFixed(1)}k` : String(Math.round(v * 10) / 10);
}

function bars(svg, values) {
  const top = niceCeil(Math.max(1, ...values));
  const f = frame(svg, top), step = f.plotW / values.length;
  values.forEach((v, i) => {
    if (!v) return;
    const h = (v / top) * f.plotH;
    const rect = svgEl("rect", { class: "bar", x: PAD.left + i * step + step * 0.1, y: f.y0 - h,
                                 width: Math.max(1, step * 0.8), height: h });
    rect.append(svgEl("title", {}, `${v} request(s)`));
    svg.append(rect);
  });
}

function lines(svg, series, fixedTop) {
  const all = series.flat().filter((v) => v !== null);
  const top = fixedTop || niceCeil(Math.max(1, ...all));
  const f = frame(svg, top), step = f.plotW / Math.max(1, series[0].length);
  series.forEach((values, s) => {
    let path = "";
    values.forEach((v, i) => {
      if (v === null) return;
      const x = PAD.left + (i + 0.5) * step, y = f.y0 - (Math.min(v, top) / top) * f.plotH;
      path += `${path ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
      svg.append(svgEl("circle", { class: `dot${s}`, cx: x, cy: y, r: 1.8 }));
    });
    if (path) svg.append(svgEl("path", { class: `line s${s}`, d: path }));
  });
}

function axisTimes(svg, points) {
  if (!points.length) return;
  const w = Number(svg.getAttribute("viewBox").split(" ")[2]);
  const hm = (t) => clock(t).slice(0, 5);
  svg.append(svgEl("text", { x: PAD.left, y: 146 }, hm(points[0].t)));
  svg.append(svgEl("text", { x: w - PAD.right, y: 146, "text-anchor": "end" }, hm(points[points.length - 1].t)));
}

// --- conversations --------------------------------------------------------------------------
async function loadConversations() {
  const { data } = await api("GET", "conversations");
  fill("#scope-table", data.map((s) => [
    s.name, el("td", { class: "num" }, s.count), el("td", { class: "num" }, s.automatic),
    el("td", { class: "actions" }, action("Show", () => showScope(s.scope))),
  ]), "No stored conversation.");
}

async function showScope(scope) {
  const { name, data } = await api("GET", `conversations/${encodeURIComponent(scope)}`);
  $("#scope-title").textContent = `Conversations of ${name}`;
  $("#scope-detail").hidden = false;
  fill("#conversation-table", data.map((c) => [
    el("code", {}, c.id), c.model || "-", c.automatic ? "automatic" : "named",
    ago(c.updated_at), until(c.expires_at),
    el("td", { class: "actions" }, action("Delete", async () => {
      if (!confirm(`Delete conversation ${c.id} and its Kimi chat?`)) return;
      await api("DELETE", `conversations/${encodeURIComponent(scope)}/${encodeURIComponent(c.id)}`);
      notice(`Deleted ${c.id}.`);
      await loadConversations();
      await showScope(scope);
    }, "danger")),
  ]), "None left.");
}

// --- pages ----------------------------------------------------------------------------------
const LOADERS = { accounts: loadAccounts, keys: loadKeys, traffic: loadTraffic, conversations: loadConversations };

async function show() {
  const page = PAGES.includes(location.hash.slice(1)) ? location.hash.slice(1) : "accounts";
  if (page !== current) notice("");
  current = page;
  // Sections are #page-<name>, not #<name>: a tab link changes the hash without scrolling.
  for (const p of PAGES) $(`#page-${p}`).hidden = p !== page;
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.tab === page);
  await refresh();
}

async function refresh() {
  clearTimeout(timer);
  try { await LOADERS[current](); } catch (e) { notice(e.message, true); }
  document.body.dataset.loaded = current;
  if (current === "accounts" || current === "traffic") timer = setTimeout(refresh, REFRESH_MS);
}

async function start() {
  $("#add-account").addEventListener("submit", addAccount);
  $("#add-key").addEventListener("submit", addKey);
  $("#copy-secret").addEventListener("click", copySecret);
  $("#hide-secret").addEventListener("click", () => { $("#new-secret").hidden = true; $("#secret-value").textContent = ""; });
  $("#filters").addEventListener("change", refresh);
  $("#filters").addEventListener("submit", (ev) => { ev.preventDefault(); refresh(); });
  window.addEventListener("hashchange", show);
  window.addEventListener("resize", () => { if (lastPoints && current === "traffic") drawCharts(lastPoints); });
  try { $("#version").textContent = (await api("GET", "overview")).version; } catch (e) { notice(e.message, true); }
  await show();
}

start();
