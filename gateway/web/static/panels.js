// The dashboard's panels below the providers: traffic, spend, keys and recent failovers, their uPlot charts,
// and the small helpers both scripts use. Loaded before dashboard.js, which signs in and refreshes them.
"use strict";

// -- traffic ---------------------------------------------------------------------------------------

function drawTraffic(result) {
  const traffic = settled(result);
  const xs = traffic.data.map((m) => m.start_time);
  const providers = traffic.providers;
  const served = providers.map((name) => traffic.data.map((m) => m.served[name] || 0));
  const failovers = traffic.data.map((m) => m.failovers);
  const errors = traffic.data.map((m) => m.errors);
  const requests = served.flat().reduce((a, b) => a + b, 0);
  $("#traffic-summary").textContent = `${requests} served, ${plural(sum(failovers), "failover")}, `
    + `${plural(sum(errors), "error")} (not served) in the last hour.`;
  const lines = [
    { label: "failovers", stroke: "#111827", width: 2, dash: [6, 4], values: failovers },
    { label: "errors", stroke: "#b91c1c", width: 2, dash: [2, 3], values: errors },
  ];
  stackedBars("traffic-chart", xs, providers, served, lines, { barWidth: 60, format: (v) => String(v) });
}

// -- spend -----------------------------------------------------------------------------------------

async function spend() {
  // 30 UTC days, today included: the chart's days and the table's totals cover the same window.
  const start = Math.floor(Date.now() / 1000 / DAY) * DAY - 29 * DAY;
  const query = `start_time=${start}&bucket_width=1d&limit=30`;
  const costs = allPages(`/v1/organization/costs?${query}&group_by=provider`);
  const usage = Object.keys(USAGE_KINDS).map((kind) =>
    allPages(`/v1/organization/usage/${kind}?${query}&group_by=model&group_by=provider`)
      .then((results) => results.map((r) => ({ ...r, kind }))));
  const [costResults, ...usageResults] = await Promise.all([costs, ...usage]);
  return { start, costs: costResults, usage: usageResults.flat() };
}

function drawSpend(result) {
  const { start, costs, usage } = settled(result);
  const xs = Array.from({ length: 30 }, (_, i) => start + i * DAY);
  const providers = Object.keys(colours).filter((name) => costs.some((r) => r.provider === name));
  const byDay = providers.map((name) => xs.map((day) =>
    costs.filter((r) => r.provider === name && r.day === day && r.amount).reduce((a, r) => a + r.amount.value, 0)));
  const unpricedByDay = providers.map((name) => xs.map((day) =>
    sum(costs.filter((r) => r.provider === name && r.day === day).map((r) => r.unpriced_requests || 0))));
  const priced = sum(byDay.flat());
  const unpriced = sum(costs.map((r) => r.unpriced_requests || 0));
  const describe = (k, i) => { // a provider's cost on day i (all 30 when i is null), unpriced said as such
    const cost = i == null ? sum(byDay[k]) : byDay[k][i];
    const count = i == null ? sum(unpricedByDay[k]) : unpricedByDay[k][i];
    return costWords(cost, count, cost === 0);
  };
  $("#spend-summary").textContent = `${usd(priced)} in 30 days`
    + (unpriced ? `, and ${plural(unpriced, "request")} unpriced (set prices: in providers.yaml).` : ".");
  stackedBars("spend-chart", xs, providers, byDay, [], { barWidth: DAY, format: usd, dates: true, describe });
  drawModels(usage);
}

function drawModels(usage) {
  const rows = {};
  for (const r of usage) {
    const id = `${r.kind} ${r.model} ${r.provider}`;
    const row = rows[id] || (rows[id] = { kind: r.kind, model: r.model, provider: r.provider,
      requests: 0, input: 0, output: 0, cost: 0, unpriced: 0 });
    row.requests += r.num_model_requests;
    row.input += r.input_tokens ?? r.characters ?? 0;
    row.output += r.output_tokens ?? 0;
    row.cost += r.cost_usd ?? 0;
    row.unpriced += r.unpriced_requests ?? 0;
  }
  const list = Object.values(rows).filter((r) => r.requests).sort((a, b) => b.cost - a.cost || b.requests - a.requests);
  $("#spend-models tbody").replaceChildren(...list.map((r) => el("tr", {},
    el("td", {}, r.model ?? "–"), el("td", {}, r.provider ?? "–"), el("td", {}, USAGE_KINDS[r.kind]),
    el("td", { class: "num" }, String(r.requests)),
    el("td", { class: "num" }, `${r.input.toLocaleString()} ${r.kind === "audio_speeches" ? "chars" : "tokens"}`),
    el("td", { class: "num" }, r.kind === "completions" ? `${r.output.toLocaleString()} tokens` : "–"),
    costCell(r))));
  const total = { requests: sum(list.map((r) => r.requests)), cost: sum(list.map((r) => r.cost)),
    unpriced: sum(list.map((r) => r.unpriced)) };
  $("#spend-models tfoot").replaceChildren(el("tr", {},
    el("td", { colspan: "3" }, "Total, 30 days"), el("td", { class: "num total-requests" }, String(total.requests)),
    el("td", {}), el("td", {}), costCell(total)));
}

function costCell(r) {
  const words = costWords(r.cost, r.unpriced, r.unpriced === r.requests);
  return el("td", { class: "num cost", "data-usd": String(r.cost), "data-unpriced": String(r.unpriced) }, words);
}

function costWords(cost, unpriced, allUnpriced) {
  // Unpriced is said, never shown as $0: the cost of those requests is unknown.
  if (unpriced && allUnpriced) return `unpriced (${plural(unpriced, "request")})`;
  return unpriced ? `${usd(cost)} + ${unpriced} unpriced` : usd(cost);
}

// -- keys and failovers ----------------------------------------------------------------------------

function drawKeys(result) {
  const keys = settled(result).data;
  $("#keys tbody").replaceChildren(...keys.map((k) => el("tr", { "data-key": k.name },
    el("td", {}, k.name), el("td", {}, k.project),
    use(k.spent_usd.day, k.budget?.daily_usd, usd), use(k.spent_usd.month, k.budget?.monthly_usd, usd),
    use(k.this_minute.requests, k.rate_limits?.requests_per_minute, String),
    use(k.this_minute.tokens, k.rate_limits?.tokens_per_minute, String))));
}

function use(value, limit, format) {
  if (limit == null) return el("td", {}, `${format(value)} `, el("span", { class: "muted" }, "(no limit)"));
  const share = limit ? Math.min(1, value / limit) : 1;
  const fill = el("span");
  fill.style.width = `${Math.round(share * 100)}%`; // CSSOM, allowed by the page's style-src 'self'
  return el("td", {}, `${format(value)} of ${format(limit)} (${Math.round(share * 100)} %)`,
    el("span", { class: share >= 0.9 ? "bar high" : "bar", "aria-hidden": "true" }, fill));
}

function drawFailovers(result) {
  const rows = settled(result).data.map((f) => el("tr", {},
    el("td", { title: new Date(f.ts * 1000).toISOString() }, new Date(f.ts * 1000).toLocaleTimeString()),
    el("td", {}, f.model ?? "–", el("div", { class: "detail" }, f.endpoint)),
    el("td", {}, f.key ?? "–"),
    el("td", { class: "served-by" }, f.provider ?? `nobody (HTTP ${f.status})`),
    el("td", { class: "skipped" }, ...f.skipped.map((s) => el("div", {}, skipped(s))))));
  $("#failovers tbody").replaceChildren(...rows);
}

function skipped(s) {
  const parts = [`${s.provider}: ${REASONS[s.reason] || s.reason.replaceAll("_", " ")}`];
  if (s.status) parts.push(` (HTTP ${s.status})`);
  if (s.cooldown_s) parts.push(`, benched ${duration(s.cooldown_s)}`);
  return parts.join("");
}

// -- charts (uPlot) --------------------------------------------------------------------------------

function stackedBars(id, xs, names, values, lines, { barWidth, format, dates = false, describe = null }) {
  // uPlot has no stacking: series k is drawn as the sum of series k..n, tallest first, so each bar
  // shows the later ones beneath it. The legend shows each series' own value (its total when the
  // pointer is off the chart), not the sum.
  const stacked = values.map((_, k) => xs.map((__, i) => sum(values.slice(k).map((v) => v[i]))));
  const own = (numbers) => (u, raw, si, i) => format(i == null ? sum(numbers) : numbers[i]);
  const series = [
    { label: dates ? "day (UTC)" : "minute", value: (u, x, si, i) => (i == null ? "total" : label(x, dates)) },
    ...names.map((name, k) => ({ label: name, fill: colours[name], stroke: colours[name], width: 0,
      value: describe ? (u, raw, si, i) => describe(k, i) : own(values[k]),
      paths: uPlot.paths.bars({ size: [0.8, 40], align: 0 }), points: { show: false } })),
    ...lines.map((line) => ({ ...line, points: { show: false }, value: own(line.values) })),
  ];
  const data = [xs, ...stacked, ...lines.map((line) => line.values)];
  const signature = series.map((s) => s.label).join("|");
  let chart = charts[id];
  if (chart && chart.signature !== signature) {
    chart.destroy();
    chart = null;
  }
  if (!chart) {
    const target = document.getElementById(id);
    const options = {
      width: target.clientWidth || 800, height: 240, series,
      scales: { x: { time: true, range: (u, min, max) => [min - barWidth / 2, max + barWidth / 2] }, y: { range: [0, null] } },
      axes: [{ values: (u, ticks) => ticks.map((t) => label(t, dates)) }, { values: (u, ticks) => ticks.map(format), size: 90 }],
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    };
    chart = charts[id] = new uPlot(options, data, target);
    chart.signature = signature;
  } else {
    chart.setData(data);
  }
}

// -- small helpers ---------------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

const sum = (numbers) => numbers.reduce((a, b) => a + b, 0);
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
function usd(value) {
  if (value === 0) return "$0";
  if (value >= 0.01) return `$${value.toFixed(2)}`;
  return `$${value.toFixed(Math.min(12, 2 - Math.floor(Math.log10(value))))}`; // three digits of a fraction of a cent
}

function label(epoch, dates) {
  const iso = new Date(epoch * 1000).toISOString();
  return dates ? iso.slice(5, 10) : iso.slice(11, 16); // MM-DD, or HH:MM (UTC)
}
