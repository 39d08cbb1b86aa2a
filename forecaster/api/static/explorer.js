// Forecast explorer: lists workloads from /v1/workloads and draws, for the selected one, the fan chart (bands,
// ensemble, actuals), the members, the decisions timeline, the model history (/v1/models) and
// requested-vs-predicted resources, as SVG and tables.
// Reads only the JSON API of the same origin. When reads need a token, the first 401 shows a token field; the
// token is kept in this tab's sessionStorage.

import {
  BAND_ALPHA, COLORS, DASHES, LEGEND_Y, MARGIN, TAB10, areaPath, axes, demandLabel, el, extent, formatNumber,
  formatTime, legend, linePath, reset, sameAs, scale,
} from "./charts.js";

const $ = (sel) => document.querySelector(sel);
const PAGE = 100;
const state = {
  token: sessionStorage.getItem("forecaster-token") || "", offset: 0, total: 0, current: null, drawn: null, side: null,
  workloads: {},
};
/** The demand unit of the workload shown (its `unit` label), for the axis titles. */
const unitOf = (id) => state.workloads[id]?.labels?.unit || "";

class HttpError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const response = await fetch(path, { headers });
  if (!response.ok) {
    let problem = null;
    try { problem = await response.json(); } catch (_) { /* not JSON */ }
    if (response.status === 401) $("#token-form").hidden = false;
    throw new HttpError(response.status, problem);
  }
  return response.json();
}

function say(text, isError = false) {
  const m = $("#message");
  m.textContent = text;
  m.classList.toggle("error", isError);
  m.hidden = !text;
}

const ms = (iso) => Date.parse(iso);

// -- workload list -----------------------------------------------------------------------------------------------
async function loadWorkloads(append = false) {
  const page = await api(`/v1/workloads?limit=${PAGE}&offset=${append ? state.offset : 0}`);
  const list = $("#workload-list");
  if (!append) list.textContent = "";
  for (const w of page.items) {
    state.workloads[w.id] = w;
    const li = list.appendChild(document.createElement("li"));
    const button = li.appendChild(document.createElement("button"));
    button.type = "button";
    button.dataset.id = w.id;
    button.textContent = w.id;
    const kind = button.appendChild(document.createElement("span"));
    kind.className = "kind";
    kind.textContent = w.kind;
    button.addEventListener("click", () => select(w.id));
  }
  state.offset = page.offset + page.items.length;
  state.total = page.total;
  $("#workload-count").textContent = `(${page.total})`;
  $("#more-workloads").hidden = !page.links.next;
  return page;
}

// -- charts ------------------------------------------------------------------------------------------------------
function frame(svg) {
  const { width, height } = reset(svg);
  return { width, height, x0: MARGIN.left, x1: width - MARGIN.right, y0: height - MARGIN.bottom, y1: MARGIN.top };
}

function fanChart(fc, actuals) {
  const svg = $("#fan-chart");
  const f = frame(svg);
  const t = fc.ds.map(ms);
  const origin = t.length ? t[0] : Date.now();
  const span = t.length ? t[t.length - 1] - t[0] : 0;
  const at = actuals.ds.map(ms);
  const keep = at.map((v) => v >= origin - Math.max(span, 864e5) && v <= (t[t.length - 1] ?? v));
  const ax = at.filter((_, i) => keep[i]);
  const ay = actuals.y.filter((_, i) => keep[i]);
  const widest = [...fc.bands].sort((a, b) => b.level - a.level);
  const allY = [...fc.ensemble, ...ay, ...widest.flatMap((b) => [...b.lo, ...b.hi])];
  const x = scale(Math.min(ax[0] ?? origin, origin), t[t.length - 1] ?? origin, f.x0, f.x1);
  const y = scale(...extent(allY), f.y0, f.y1);
  axes(svg, x, y, { yLabel: demandLabel(unitOf(fc.workload)) });
  widest.forEach((band, i) => {
    svg.appendChild(el("path", { class: `band band-${band.level}`, "data-level": band.level, "data-points": t.length,
      d: areaPath(t, band.lo, band.hi, x, y), fill: COLORS.blue, "fill-opacity": BAND_ALPHA[Math.min(i, 3)],
      stroke: "none" }));
  });
  const hx = ax.filter((v) => v <= origin);
  const hy = ay.filter((_, i) => ax[i] <= origin);
  svg.appendChild(el("path", { class: "history", "data-points": hx.length, d: linePath(hx, hy, x, y),
    fill: "none", stroke: COLORS.history, "stroke-width": 1 }));
  svg.appendChild(el("path", { class: "ensemble", "data-role": "ensemble", "data-points": t.length,
    d: linePath(t, fc.ensemble, x, y), fill: "none", stroke: COLORS.blue, "stroke-width": 1.6 }));
  // actuals observed inside the forecast window, as dots over the bands (what the forecast said vs what happened)
  const dots = svg.appendChild(el("g", { class: "actuals" }));
  ax.forEach((v, i) => {
    if (v > origin && ay[i] !== null && isFinite(ay[i])) {
      const c = dots.appendChild(el("circle", { class: "actual", cx: x(v).toFixed(1), cy: y(ay[i]).toFixed(1),
        r: 2.5, fill: COLORS.red, stroke: "#fff", "stroke-width": 0.6 }));
      c.appendChild(el("title", {}, `${formatTime(v)}  actual ${formatNumber(ay[i])}`));
    }
  });
  const drawn = dots.childElementCount;
  svg.dataset.actuals = String(drawn);
  svg.appendChild(el("line", { class: "origin", x1: x(origin), x2: x(origin), y1: f.y0, y2: f.y1,
    stroke: COLORS.origin, "stroke-dasharray": "5 4" }));
  if (!drawn) {  // the usual live case: the latest forecast starts after the newest observation
    svg.appendChild(el("text", { class: "no-actuals", x: x(origin) + 6, y: f.y1 + 14, fill: COLORS.origin,
      "font-size": 11 }, "no actuals after the forecast origin yet"));
  }
  legend(svg, [
    { label: "history", color: COLORS.history, width: 1 },
    ...widest.map((b, i) => ({ label: `${b.level} % band`, color: COLORS.blue, kind: "area",
      opacity: BAND_ALPHA[Math.min(i, 3)] })),
    { label: "forecast (ensemble)", color: COLORS.blue },
    ...(drawn ? [{ label: `actual (${drawn})`, color: COLORS.red, kind: "dot" }] : []),
    { label: "forecast origin", color: COLORS.origin, kind: "dash", width: 1 },
  ], f.x0, LEGEND_Y);
  svg.dataset.ready = "1";
}

function membersChart(fc) {
  const svg = $("#members-chart");
  const names = Object.keys(fc.members);
  $("#members-section").hidden = names.length === 0;
  if (!names.length) return;
  const f = frame(svg);
  const t = fc.ds.map(ms);
  const x = scale(t[0], t[t.length - 1], f.x0, f.x1);
  const y = scale(...extent([...fc.ensemble, ...names.flatMap((n) => fc.members[n])]), f.y0, f.y1);
  axes(svg, x, y, { yLabel: demandLabel(unitOf(fc.workload)) });
  // the ensemble first (underneath); a member equal to an earlier one or to the ensemble is labelled "(= other)"
  // and dashed, so the line under it still shows
  svg.appendChild(el("path", { class: "ensemble", d: linePath(t, fc.ensemble, x, y), fill: "none",
    stroke: COLORS.black, "stroke-width": 2.2 }));
  const equal = sameAs({ ...fc.members, ensemble: fc.ensemble }, names, ["ensemble"]);
  let dashed = 0;
  const styles = names.map((name) => {
    const dash = name in equal ? DASHES[dashed++ % DASHES.length] : null;
    return { label: name in equal ? `${name} (= ${equal[name]})` : name, dash, width: dash ? 1.6 : 1 };
  });
  names.forEach((name, i) => {
    svg.appendChild(el("path", { class: "member", "data-member": name, "data-label": styles[i].label,
      "data-points": t.length, d: linePath(t, fc.members[name], x, y), fill: "none", stroke: TAB10[i % TAB10.length],
      "stroke-width": styles[i].width, "stroke-opacity": styles[i].dash ? 1 : 0.85,
      "stroke-dasharray": styles[i].dash }));
  });
  legend(svg, [...names.map((n, i) => ({ label: styles[i].label, color: TAB10[i % TAB10.length],
    width: styles[i].width, dash: styles[i].dash })), { label: "ensemble", color: COLORS.black, width: 2.2 }],
  f.x0, LEGEND_Y);
  svg.dataset.ready = "1";
}

function describe(d) {
  if (d.kind === "replicas") return `minReplicas ${d.value.min_replicas ?? "–"}`;
  const containers = Object.keys(d.value.containers || {});
  return containers.length ? `${containers.length} container(s): ${containers.join(", ")}` : JSON.stringify(d.value);
}

function decisionsChart(items) {
  const svg = $("#decisions-chart");
  $("#decisions-section").hidden = items.length === 0;
  const body = $("#decisions-table tbody");
  body.textContent = "";
  for (const d of items.slice(0, 50)) {
    const row = body.appendChild(document.createElement("tr"));
    for (const [text, cls] of [[formatTime(ms(d.time)), ""], [d.kind, ""],
      [`${d.mode}${d.applied ? " (applied)" : " (dry run)"}`, ""], [describe(d), ""], [d.reason, "reason"]]) {
      const cell = row.appendChild(document.createElement("td"));
      cell.textContent = text;
      if (cls) cell.className = cls;
    }
  }
  if (!items.length) return;
  const f = frame(svg);
  const sorted = [...items].sort((a, b) => ms(a.time) - ms(b.time));
  const replicas = sorted.filter((d) => d.kind === "replicas" && d.value.min_replicas !== undefined);
  const times = sorted.map((d) => ms(d.time));
  const pad = Math.max((Math.max(...times) - Math.min(...times)) * 0.03, 60e3);
  const t0 = Math.min(...times) - pad;
  const t1 = Math.max(...times) + pad;
  const floors = replicas.map((d) => d.value.min_replicas);
  const reactive = replicas.map((d) => d.details?.reactive_floor ?? null);
  const x = scale(t0, t1, f.x0, f.x1);
  const y = scale(...extent([...floors, ...reactive], { pad: 0.3 }), f.y0, f.y1);
  axes(svg, x, y, { yLabel: "replicas (pods)" });
  const rt = replicas.map((d) => ms(d.time));
  const step = (ts, vs) => ts.flatMap((tt, i) => (i ? [[tt, vs[i - 1]], [tt, vs[i]]] : [[tt, vs[i]]]));
  const path = (pts, attrs) => svg.appendChild(el("path", { d: linePath(pts.map((p) => p[0]), pts.map((p) => p[1]),
    x, y), fill: "none", ...attrs }));
  path(step(rt, reactive), { class: "reactive", stroke: COLORS.orange, "stroke-width": 1 });
  path(step(rt, floors), { class: "floor", stroke: COLORS.green, "stroke-width": 1.4, "stroke-dasharray": "5 3" });
  const marks = svg.appendChild(el("g", { class: "decision-marks" }));
  for (const d of sorted) {
    const px = x(ms(d.time));
    const mark = d.kind === "replicas"
      ? el("circle", { cx: px, cy: y(d.value.min_replicas ?? 0), r: 3.5 })
      : el("rect", { x: px - 4, y: f.y1 + 6, width: 8, height: 8, transform: `rotate(45 ${px} ${f.y1 + 10})` });
    mark.setAttribute("class", `decision decision-${d.kind}`);
    mark.setAttribute("stroke", d.kind === "replicas" ? COLORS.green : COLORS.purple);
    mark.setAttribute("fill", d.applied ? (d.kind === "replicas" ? COLORS.green : COLORS.purple) : "#fff");
    mark.appendChild(el("title", {}, `${formatTime(ms(d.time))} ${d.kind} ${d.mode}: ${describe(d)}\n${d.reason}`));
    marks.appendChild(mark);
  }
  legend(svg, [{ label: "floor (minReplicas)", color: COLORS.green, kind: "dash" },
    { label: "reactive rule", color: COLORS.orange, width: 1 },
    { label: "resources (top lane)", color: COLORS.purple, kind: "dot" }], f.x0, LEGEND_Y);
  svg.dataset.ready = "1";
}

function modelScores(scores) {
  if (!scores || !scores.n_points) return "";
  const c = scores.champion || {};
  const h = scores.challenger || {};
  return `${scores.n_points} points: pinball ${formatNumber(c.pinball)} vs ${formatNumber(h.pinball)}, ` +
    `MAE ${formatNumber(c.mae)} vs ${formatNumber(h.mae)}`;
}

/** The model history table (GET /v1/models?workload=...): newest first, the champion's rows in bold. */
function modelsTable(page) {
  const items = page?.items || [];
  $("#models-section").hidden = items.length === 0;
  const champions = page?.champions || {};
  $("#models-champion").textContent = Object.entries(champions).map(([k, v]) => `Champion of ${k}: ${v}.`).join(" ");
  const body = $("#models-table tbody");
  body.textContent = "";
  for (const e of items.slice(0, 50)) {
    const row = body.appendChild(document.createElement("tr"));
    row.dataset.kind = e.kind;
    if (champions[e.key] === e.version) row.className = "champion";
    for (const [text, cls] of [[formatTime(ms(e.at)), ""], [e.version, ""], [e.kind, ""],
      [e.train_end ? formatTime(ms(e.train_end)) : "–", ""], [modelScores(e.scores), ""], [e.reason, "reason"]]) {
      const cell = row.appendChild(document.createElement("td"));
      cell.textContent = text;
      if (cls) cell.className = cls;
    }
  }
}

const RESOURCES = [["cpu", "CPU (cores)", 1], ["memory", "memory (GiB)", 1024 ** 3]];
const BARS = [["request", "request", COLORS.orange], ["predicted", "predicted use", COLORS.use],
  ["target", "recommended target", COLORS.green]];

function resourcesChart(rec) {
  const decision = rec?.resources;
  const containers = Object.keys(decision?.value?.containers || {});
  $("#resources-section").hidden = containers.length === 0;
  if (!containers.length) return;
  const svg = $("#resources-chart");
  const f = frame(svg);
  const panelWidth = (f.x1 - f.x0 - 60) / 2;
  RESOURCES.forEach(([res, label, unit], p) => {
    const px0 = f.x0 + p * (panelWidth + 60);
    const rows = containers.map((c) => {
      // value.containers.<c>.<res>: target, bounds; the request and predicted use come from the decision's
      // details, per container (details.containers.<c>.<res>.request/predicted) or keyed "<c>/<res>"
      // (details.current_requests, details.predicted_use), whichever the service recorded.
      const value = decision.value.containers[c]?.[res] || {};
      const details = decision.details?.containers?.[c]?.[res] || {};
      const key = `${c}/${res}`;
      const pick = (k) => (value[k] ?? details[k] ?? null);
      return { c, request: pick("request") ?? decision.details?.current_requests?.[key] ?? null,
        predicted: pick("predicted") ?? decision.details?.predicted_use?.[key] ?? null, target: pick("target"),
        lower: pick("lower_bound"), upper: pick("upper_bound") };
    });
    const all = rows.flatMap((r) => [r.request, r.predicted, r.target, r.upper]).map((v) => (v === null ? null : v / unit));
    const y = scale(...extent(all, { pad: 0.15 }), f.y0, f.y1);
    const groups = rows.length;
    const x = scale(0, groups, px0, px0 + panelWidth);
    axes(svg, x, y, { isTime: false, yLabel: label, xLabel: "", xTicks: [] });
    const barW = Math.min(28, (panelWidth / groups) / (BARS.length + 1));
    rows.forEach((r, i) => {
      const gx = x(i + 0.5) - (barW * BARS.length) / 2;
      BARS.forEach(([key, , color], k) => {
        const v = r[key];
        if (v === null || !isFinite(v)) return;
        const top = y(v / unit);
        const bar = svg.appendChild(el("rect", { class: `bar bar-${key}`, "data-container": r.c, "data-resource": res,
          x: gx + k * barW, y: top, width: barW - 2, height: Math.max(0, y(0) - top), fill: color }));
        bar.appendChild(el("title", {}, `${r.c} ${res} ${key}: ${formatNumber(v / unit)}`));
      });
      if (r.lower !== null && r.upper !== null) {
        const cx = gx + 2 * barW + barW / 2 - 1;
        svg.appendChild(el("line", { class: "bounds", x1: cx, x2: cx, y1: y(r.lower / unit), y2: y(r.upper / unit),
          stroke: "#1b5e20", "stroke-width": 1.5 }));
      }
      svg.appendChild(el("text", { x: x(i + 0.5), y: f.y0 + 16, "text-anchor": "middle" }, r.c));
    });
  });
  legend(svg, [...BARS.map(([, name, color]) => ({ label: name, color, kind: "area", opacity: 1 })),
    { label: "lower-upper bound", color: "#1b5e20", width: 1.5 }], f.x0, LEGEND_Y);
  svg.dataset.ready = "1";
}

function showMeta(fc) {
  const meta = $("#forecast-meta");
  meta.textContent = "";
  const rows = [["issued at (UTC)", formatTime(ms(fc.issued_at))], ["model version", fc.model_version],
    ["horizon", `${fc.horizon} steps of ${fc.freq}`], ["levels", fc.bands.map((b) => `${b.level} %`).join(", ")],
    ["backtest MAE", formatNumber(fc.backtest_mae)], ["members", Object.keys(fc.members).join(", ") || "–"]];
  for (const [k, v] of rows) {
    const div = meta.appendChild(document.createElement("div"));
    div.appendChild(document.createElement("dt")).textContent = k;
    div.appendChild(document.createElement("dd")).textContent = v;
  }
}

// -- selection ---------------------------------------------------------------------------------------------------
async function select(id) {
  state.current = id;
  window.history.replaceState(null, "", `#${encodeURIComponent(id)}`);
  document.body.dataset.state = "loading";
  for (const b of document.querySelectorAll("#workload-list button")) {
    b.setAttribute("aria-current", b.dataset.id === id ? "true" : "false");
  }
  $("#summary").hidden = false;
  $("#workload-title").textContent = id;
  say(`Loading ${id}…`);
  const path = id.split("/").map(encodeURIComponent).join("/");
  const [fc, decisions, rec, models] = await Promise.all([
    api(`/v1/forecasts/${path}`).catch((e) => e),
    api(`/v1/decisions?workload=${encodeURIComponent(id)}&limit=200`).catch(() => ({ items: [] })),
    api(`/v1/recommendations/${path}`).catch(() => null),
    api(`/v1/models?workload=${encodeURIComponent(id)}&limit=50`).catch(() => ({ items: [] })),
  ]);
  if (state.current !== id) return;
  state.drawn = null;
  state.side = { decisions: decisions.items, rec };
  modelsTable(models);
  decisionsChart(decisions.items);
  resourcesChart(rec);
  if (fc instanceof Error) {
    for (const s of ["#forecast-section", "#members-section"]) $(s).hidden = true;
    $("#forecast-meta").textContent = "";
    say(fc.status === 404 ? `No forecast stored for ${id} yet.` : `Forecast: ${fc.message}`, fc.status !== 404);
    document.body.dataset.state = "ready";
    return;
  }
  const first = Date.parse(fc.ds[0] ?? fc.issued_at);
  const last = Date.parse(fc.ds[fc.ds.length - 1] ?? fc.issued_at);
  const lookback = Math.max(last - first, 864e5);
  const start = new Date(first - lookback).toISOString();
  const actuals = await api(`/v1/actuals/${path}?start=${start}&end=${new Date(last).toISOString()}`)
    .catch(() => ({ ds: [], y: [] }));
  if (state.current !== id) return;
  state.drawn = { fc, actuals };
  showMeta(fc);
  $("#forecast-section").hidden = false;
  fanChart(fc, actuals);
  membersChart(fc);
  say("");
  document.body.dataset.state = "ready";
}

/** The workload named in the URL (#id), else the first of the page with a stored forecast, else the first. */
async function firstToShow(items) {
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted) return wanted;
  for (const w of items.slice(0, 20)) {
    const path = w.id.split("/").map(encodeURIComponent).join("/");
    try {
      await api(`/v1/forecasts/${path}?horizon=1&members=none`);
      return w.id;
    } catch (_) { /* no forecast: try the next one */ }
  }
  return items[0].id;
}

async function start() {
  try {
    const page = await loadWorkloads();
    if (!page.items.length) {
      say("No workloads yet: the refresh job stores them (forecaster serve --demo has one).");
      document.body.dataset.state = "ready";
      return;
    }
    await select(await firstToShow(page.items));
  } catch (e) {
    say(e.status === 401 ? "This server needs a read token: paste one above." : `Error: ${e.message}`, true);
    document.body.dataset.state = "error";
  }
}

$("#more-workloads").addEventListener("click", () => loadWorkloads(true).catch((e) => say(e.message, true)));
$("#token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("#token").value.trim();
  sessionStorage.setItem("forecaster-token", state.token);
  $("#token-form").hidden = true;
  start();
});
let resizeTimer = 0;
window.addEventListener("resize", () => {  // redraw what is shown at the new width (no new requests)
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    if (state.drawn) { fanChart(state.drawn.fc, state.drawn.actuals); membersChart(state.drawn.fc); }
    if (state.side) { decisionsChart(state.side.decisions); resourcesChart(state.side.rec); }
  }, 150);
});
start();
