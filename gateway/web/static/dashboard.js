// The gateway's dashboard: who is serving, who is out, why, until when, and what it cost.
// Plain JavaScript, no framework: every few seconds it reads the gateway's own JSON (/health, the usage
// API, /v1/dashboard/*) and redraws. The key is kept in this tab only (sessionStorage) and sent only
// as `Authorization: Bearer` to this origin, never in a URL. Text goes in with textContent, never as HTML.
"use strict";

const REFRESH_MS = 3000;
const TIMEOUT_MS = 5000; // a gateway that hangs (not only one that refuses) is shown as not answering
const STORAGE = "gateway-dashboard-key";
const DAY = 86400;
const USAGE_KINDS = { completions: "chat / completions", embeddings: "embeddings", audio_speeches: "speech" };
// Colour only helps: each series is named in its legend, each state is written with an icon.
const PALETTE = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#0891b2", "#db2777", "#65a30d", "#64748b"];
const ICONS = { available: "✔", recovering: "↻", cooldown: "◷", misconfigured: "⚠", unreachable: "✖", starting: "…" };
const REASONS = {
  quota_exhausted: "credits exhausted",
  daily_limit: "daily limit reached",
  rate_limited: "rate limited",
  auth: "API key rejected",
  redirected: "redirected: check its base_url",
  model_not_found: "model not found",
  transient: "failing (errors or timeouts)",
  unreachable: "not reachable",
  budget: "its spend cap is reached",
  missing_key: "no API key",
  invalid_key: "API key unusable",
  manual: "benched by an operator",
  starting: "its library is still loading",
  load_failed: "its library could not be loaded",
  caller_fault: "refused the request itself",
  probing: "recovering: another request is its probe",
  unsupported_format: "cannot produce that audio format",
  unsupported_voice: "has no such voice",
};

const $ = (selector) => document.querySelector(selector);
let key = sessionStorage.getItem(STORAGE);
let session = null; // {role: "admin"} or {role: "key", key, project}
let timer = null;
let runs = 0; // the refresh that counts is the latest: an older one still in flight draws nothing, schedules nothing
let charts = {}; // uPlot instances by element id, rebuilt when their series change
let colours = {}; // provider name -> colour, in config order

// -- talking to the gateway ------------------------------------------------------------------------

class Unauthorized extends Error {}

async function getJSON(path, options = {}) {
  const headers = { authorization: `Bearer ${key}`, ...(options.headers || {}) };
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  const response = await fetch(path, { ...options, headers, cache: "no-store", signal }); // throws when unreachable
  const body = await response.json().catch(() => null);
  if (response.status === 401) throw new Unauthorized(body?.error?.message || "key refused");
  if (!response.ok) throw new Error(body?.error?.message || `HTTP ${response.status}`);
  return body;
}

async function allPages(path) {
  // The usage API pages its buckets: follow next_page until has_more is false.
  const results = [];
  let page = await getJSON(path);
  for (;;) {
    for (const bucket of page.data) for (const result of bucket.results) results.push({ ...result, day: bucket.start_time });
    if (!page.has_more) return results;
    page = await getJSON(`${path}&page=${encodeURIComponent(page.next_page)}`);
  }
}

// -- signing in and out ----------------------------------------------------------------------------

async function signIn(given) {
  key = given;
  try {
    session = await getJSON("/v1/dashboard/session");
  } catch (error) {
    key = null;
    session = null;
    if (error instanceof Unauthorized) sessionStorage.removeItem(STORAGE); // a gateway that is down keeps it
    const words = error instanceof Unauthorized
      ? "That key was not accepted. Use the admin key (GATEWAY_ADMIN_KEY) or a gateway key listed in client_keys."
      : `The gateway could not check the key: ${error.message}`;
    return showSignIn(words);
  }
  sessionStorage.setItem(STORAGE, key);
  document.body.classList.toggle("admin", session.role === "admin");
  $("#who").textContent = session.role === "admin"
    ? "Signed in with the admin key"
    : `Signed in as key ${session.key} (project ${session.project})`;
  $("#sign-in").hidden = true;
  $("#sign-out").hidden = false;
  $("#dashboard").hidden = false;
  refresh();
}

function showSignIn(message) {
  clearTimeout(timer);
  runs += 1; // a refresh in flight stops where it is
  document.body.classList.remove("admin", "stale");
  $("#dashboard").hidden = true;
  $("#offline").hidden = true;
  $("#sign-out").hidden = true;
  $("#who").textContent = "";
  $("#updated").textContent = "";
  for (const tbody of document.querySelectorAll("#dashboard tbody, #dashboard tfoot")) tbody.replaceChildren();
  for (const chart of Object.values(charts)) chart.destroy();
  charts = {};
  $("#sign-in").hidden = false;
  $("#sign-in-error").hidden = !message;
  $("#sign-in-error").textContent = message || "";
  $("#key").value = "";
  $("#key").focus();
}

// -- the refresh loop ------------------------------------------------------------------------------

async function refresh() {
  clearTimeout(timer);
  const run = ++runs;
  let health;
  try {
    // No key for /health: it is open. A 503 still says who is out, so only no answer at all is "offline".
    const response = await fetch("/health", { cache: "no-store", signal: AbortSignal.timeout(TIMEOUT_MS) });
    health = await response.json();
  } catch {
    if (run !== runs) return;
    offline(true);
    timer = setTimeout(refresh, REFRESH_MS);
    return;
  }
  if (run !== runs) return;
  offline(false);
  health.providers.forEach((p, i) => { colours[p.name] = colours[p.name] || PALETTE[i % PALETTE.length]; });
  const sections = await Promise.allSettled([
    getJSON("/v1/dashboard/traffic"),
    getJSON("/v1/dashboard/failovers"),
    getJSON("/v1/dashboard/keys"),
    spend(),
  ]);
  if (run !== runs) return; // signed out, or refreshed after a click, meanwhile
  const refused = sections.find((s) => s.status === "rejected" && s.reason instanceof Unauthorized);
  if (refused) return signOut("Your key is no longer accepted by the gateway; sign in again.");
  const [traffic, failovers, keys, costs] = sections;
  show("#providers", () => drawProviders(health.providers, traffic.value));
  show("#traffic-chart", () => drawTraffic(traffic));
  show("#failovers", () => drawFailovers(failovers));
  show("#keys", () => drawKeys(keys));
  show("#spend-chart", () => drawSpend(costs));
  $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  timer = setTimeout(refresh, REFRESH_MS);
}

function show(selector, draw) {
  // One section failing (an endpoint missing, the usage store away) says so there; the others still draw.
  const error = $(selector).closest("section").querySelector(".section-error");
  try {
    draw();
    error.hidden = true;
  } catch (problem) {
    error.hidden = false;
    error.textContent = `Not available: ${problem.message}`;
  }
}

function settled(result) {
  if (result.status === "rejected") throw result.reason;
  return result.value;
}

let offlineSince = null;
function offline(down) {
  if (down && offlineSince === null) offlineSince = new Date();
  if (!down) offlineSince = null;
  document.body.classList.toggle("stale", down);
  $("#offline").hidden = !down;
  if (down) {
    $("#offline").textContent = `✖ The gateway is not answering (since ${offlineSince.toLocaleTimeString()}). `
      + `What is shown is what it said last; trying again every ${REFRESH_MS / 1000} s.`;
  }
}

function signOut(message) {
  key = null;
  session = null;
  sessionStorage.removeItem(STORAGE);
  showSignIn(message);
}

// -- providers -------------------------------------------------------------------------------------

function drawProviders(providers, traffic) {
  const served = {};
  let total = 0;
  for (const minute of traffic?.data || []) {
    for (const [name, count] of Object.entries(minute.served)) {
      served[name] = (served[name] || 0) + count;
      total += count;
    }
  }
  const rows = providers.map((p, i) => {
    const icon = el("span", { "aria-hidden": "true" }, ICONS[p.state] || "?");
    const state = el("td", { class: `state state-${p.state}` }, icon, " ", el("span", { class: "state-word" }, p.state));
    const count = served[p.name] || 0;
    const share = total ? `${Math.round((100 * count) / total)} % (${count})` : "–";
    return el("tr", { "data-provider": p.name },
      el("td", {}, String(i + 1)),
      el("td", {}, p.name, p.last_resort ? el("span", { class: "muted" }, " (last resort)") : ""),
      state,
      el("td", { class: "reason" }, reason(p)),
      el("td", { class: "countdown", ...countdownAttributes(p) }, countdownText(p)),
      el("td", { class: "num share" }, share),
      el("td", { class: "admin-only" }, ...actions(p)));
  });
  $("#providers tbody").replaceChildren(...rows);
}

function reason(p) {
  if (!p.reason) return "";
  let words = REASONS[p.reason] || p.reason.replaceAll("_", " ");
  if (p.reason === "missing_key" && p.detail) words = `${words}: ${p.detail}`; // "set OPENAI_API_KEY"
  if (p.state === "recovering") words = `was ${words}; the next request is its probe`;
  const showDetail = p.detail && !["missing_key"].includes(p.reason) && p.state !== "recovering";
  return el("span", {}, el("span", { class: "reason-words" }, words), showDetail ? el("div", { class: "detail" }, p.detail) : "");
}

function countdownAttributes(p) {
  if (p.cooldown_remaining_s == null || p.state === "recovering") return {};
  // From the seconds left, not `until`: the browser's clock may differ from the gateway's.
  return { "data-deadline": String(Date.now() + p.cooldown_remaining_s * 1000), title: p.until ? `until ${p.until}` : "" };
}

function countdownText(p) {
  if (p.state === "recovering") return "now (probing)";
  if (p.cooldown_remaining_s == null) return "";
  return duration(p.cooldown_remaining_s);
}

function tickCountdowns() {
  for (const cell of document.querySelectorAll("[data-deadline]")) {
    cell.textContent = duration(Math.max(0, (Number(cell.dataset.deadline) - Date.now()) / 1000));
  }
}

function duration(seconds) {
  const s = Math.ceil(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${s} s`;
}

function actions(p) {
  if (session?.role !== "admin") return [];
  const benched = p.state === "cooldown" || p.state === "recovering"
    || (p.state === "misconfigured" && ["auth", "redirected"].includes(p.reason)); // a bench, not a missing key
  const clear = el("button", { type: "button", class: "clear" }, "Clear");
  clear.addEventListener("click", () => clearBench(p.name));
  const bench = el("button", { type: "button", class: "bench" }, "Bench for…");
  bench.addEventListener("click", () => benchFor(p.name));
  return benched ? [clear, bench] : [bench];
}

async function clearBench(name) {
  if (!confirm(`Un-bench ${name} now? Requests will go to it again at once.`)) return;
  await act(() => getJSON(`/admin/cooldowns/${encodeURIComponent(name)}`, { method: "DELETE" }));
}

async function benchFor(name) {
  const minutes = Number(prompt(`Bench ${name} for how many minutes?`, "10"));
  if (!(minutes > 0)) return;
  const body = JSON.stringify({ seconds: Math.round(minutes * 60), reason: "manual" });
  const headers = { "content-type": "application/json" };
  await act(() => getJSON(`/admin/cooldowns/${encodeURIComponent(name)}`, { method: "PUT", body, headers }));
}

async function act(call) {
  try {
    await call();
  } catch (error) {
    alert(`The gateway refused: ${error.message}`);
  }
  refresh();
}
// -- start -----------------------------------------------------------------------------------------

$("#sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("#key").value.trim());
});
$("#sign-out").addEventListener("click", () => signOut(""));
window.addEventListener("resize", () => {
  for (const [id, chart] of Object.entries(charts)) chart.setSize({ width: document.getElementById(id).clientWidth, height: 240 });
});
setInterval(tickCountdowns, 1000);
if (key) signIn(key);
else showSignIn("");
