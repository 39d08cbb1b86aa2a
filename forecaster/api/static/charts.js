// SVG chart primitives for the forecast explorer: scales, ticks, axes, line/area paths, legends.
// Plain ES module, no dependencies. Colours follow forecaster/plots.py (matplotlib's tab10 palette).

const SVG_NS = "http://www.w3.org/2000/svg";

export const COLORS = {
  blue: "#1f77b4", orange: "#ff7f0e", green: "#2ca02c", red: "#d62728", purple: "#9467bd",
  brown: "#8c564b", pink: "#e377c2", grey: "#7f7f7f", olive: "#bcbd22", cyan: "#17becf",
  history: "#404040", origin: "#666666", use: "#4d4d4d", black: "#000000",
};
export const TAB10 = [COLORS.blue, COLORS.orange, COLORS.green, COLORS.red, COLORS.purple, COLORS.brown,
  COLORS.pink, COLORS.grey, COLORS.olive, COLORS.cyan];
/** Band opacity, widest band first (plots._BAND_ALPHA). */
export const BAND_ALPHA = [0.18, 0.32, 0.46, 0.6];

export const MARGIN = { top: 26, right: 16, bottom: 34, left: 58 };
/** Baseline of the legend row, above the plot frame. */
export const LEGEND_Y = 2;

/** Create an SVG element with attributes; children may be appended by the caller. */
export function el(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Remove every child of an SVG and return its drawing size (from its CSS box). */
export function reset(svg) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const box = svg.getBoundingClientRect();
  const width = Math.max(320, Math.round(box.width || 900));
  const height = Math.max(160, Math.round(box.height || 330));
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  return { width, height };
}

/** Linear scale [d0, d1] -> [r0, r1]; a flat domain maps to the middle. */
export function scale(d0, d1, r0, r1) {
  const span = d1 - d0;
  const f = (v) => (span === 0 ? (r0 + r1) / 2 : r0 + ((v - d0) / span) * (r1 - r0));
  f.domain = [d0, d1];
  f.range = [r0, r1];
  return f;
}

/** Round numbers covering [lo, hi], about n of them (1, 2, 2.5, 5 x 10^k steps). */
export function niceTicks(lo, hi, n = 5) {
  if (!isFinite(lo) || !isFinite(hi)) return [];
  if (lo === hi) return [lo];
  const raw = (hi - lo) / Math.max(1, n);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toFixed(10));
  return out;
}

/** [lo, hi] padded so that lines do not touch the frame; the lower end stays at 0 for non-negative data. */
export function extent(values, { zero = true, pad = 0.05 } = {}) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v === null || v === undefined || !isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!isFinite(lo)) return [0, 1];
  if (zero && lo >= 0) lo = 0;
  if (hi === lo) hi = lo + 1;
  return [lo, hi + (hi - lo) * pad];
}

const HOUR = 3600e3;
const TIME_STEPS = [5 * 60e3, 15 * 60e3, 30 * 60e3, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, 24 * HOUR,
  2 * 24 * HOUR, 7 * 24 * HOUR];

/** Tick times (ms since epoch, UTC) on whole steps, about n of them. */
export function timeTicks(t0, t1, n = 7) {
  const step = TIME_STEPS.find((s) => (t1 - t0) / s <= n) || TIME_STEPS[TIME_STEPS.length - 1];
  const out = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) out.push(t);
  return out;
}

const pad2 = (v) => String(v).padStart(2, "0");

/** "07-21 04:00" (UTC). */
export function formatTime(ms) {
  const d = new Date(ms);
  return `${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
}

/** Compact number: 1234 -> "1.23k", 0.5 -> "0.5". */
export function formatNumber(v) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toPrecision(3) + "G";
  if (a >= 1e6) return (v / 1e6).toPrecision(3) + "M";
  if (a >= 1e4) return (v / 1e3).toPrecision(3) + "k";
  return String(+v.toPrecision(4));
}

/** Frame, grid lines, tick labels and axis titles. x may be a time scale (isTime) or a band of labels. */
export function axes(svg, x, y, { isTime = true, yLabel = "", xLabel = "time (UTC)", xTicks } = {}) {
  const [x0, x1] = x.range;
  const [y0, y1] = y.range;
  const grid = svg.appendChild(el("g", { class: "grid" }));
  const axis = svg.appendChild(el("g", { class: "axis" }));
  for (const v of niceTicks(Math.min(...y.domain), Math.max(...y.domain), 5)) {
    const py = y(v);
    grid.appendChild(el("line", { x1: x0, x2: x1, y1: py, y2: py }));
    axis.appendChild(el("text", { x: x0 - 6, y: py + 4, "text-anchor": "end" }, formatNumber(v)));
  }
  const ticks = xTicks || (isTime ? timeTicks(x.domain[0], x.domain[1]) : niceTicks(x.domain[0], x.domain[1]));
  for (const t of ticks) {
    const px = x(t);
    grid.appendChild(el("line", { x1: px, x2: px, y1: y0, y2: y1 }));
    axis.appendChild(el("text", { x: px, y: y0 + 16, "text-anchor": "middle" },
      isTime ? formatTime(t) : formatNumber(t)));
  }
  axis.appendChild(el("rect", { x: x0, y: y1, width: x1 - x0, height: y0 - y1, fill: "none", stroke: "#999" }));
  if (yLabel) {
    axis.appendChild(el("text", { transform: `translate(${x0 - 44} ${(y0 + y1) / 2}) rotate(-90)`, "text-anchor": "middle" },
      yLabel));
  }
  if (xLabel) axis.appendChild(el("text", { x: (x0 + x1) / 2, y: y0 + 30, "text-anchor": "middle" }, xLabel));
}

/** Path data through (xs[i], ys[i]); a null/NaN y breaks the line. */
export function linePath(xs, ys, x, y) {
  let d = "";
  let pen = false;
  for (let i = 0; i < xs.length; i++) {
    const v = ys[i];
    if (v === null || v === undefined || !isFinite(v)) {
      pen = false;
      continue;
    }
    d += `${pen ? "L" : "M"}${x(xs[i]).toFixed(1)},${y(v).toFixed(1)}`;
    pen = true;
  }
  return d;
}

/** Closed area between lo and hi (steps where either is missing are skipped). */
export function areaPath(xs, lo, hi, x, y) {
  const ok = xs.map((_, i) => lo[i] !== null && hi[i] !== null && isFinite(lo[i]) && isFinite(hi[i]));
  const top = [];
  const bottom = [];
  xs.forEach((t, i) => {
    if (ok[i]) {
      top.push(`${x(t).toFixed(1)},${y(hi[i]).toFixed(1)}`);
      bottom.push(`${x(t).toFixed(1)},${y(lo[i]).toFixed(1)}`);
    }
  });
  if (!top.length) return "";
  return `M${top.join("L")}L${bottom.reverse().join("L")}Z`;
}

/** Dash patterns of lines drawn over an equal one, in turn (plots._DASHES). */
export const DASHES = ["6 4", "2 3", "9 3 2 3"];

/** Demand axis label: the workload's unit (its `unit` label, e.g. "requests per 5 min"), else y's own units. */
export function demandLabel(unit) {
  return `demand (${unit || "units of y"})`;
}

/** name -> the first earlier name (then of `also`) whose series equals it at every step (plots.same_as). */
export function sameAs(series, names, also = []) {
  const equal = (a, b) => a.length === b.length && a.every((v, i) => {
    const w = b[i];
    if (v === null || w === null || !isFinite(v) || !isFinite(w)) return (v === null || !isFinite(v)) === (w === null || !isFinite(w));
    return Math.abs(v - w) <= 1e-12 + 1e-9 * Math.abs(w);
  });
  const out = {};
  names.forEach((name, i) => {
    const other = [...names.slice(0, i), ...also].find((o) => series[o] && equal(series[name], series[o]));
    if (other !== undefined) out[name] = other;
  });
  return out;
}

/** Legend entries [{label, color, kind: "line"|"area"|"dot"|"dash", opacity, dash}] in a row at the top left. */
export function legend(svg, items, x0, y0) {
  const g = svg.appendChild(el("g", { class: "legend" }));
  let px = x0 + 8;
  for (const item of items) {
    const py = y0 + 12;
    if (item.kind === "area") {
      g.appendChild(el("rect", { x: px, y: py - 7, width: 16, height: 10, fill: item.color,
        "fill-opacity": item.opacity ?? 0.3 }));
    } else if (item.kind === "dot") {
      g.appendChild(el("circle", { cx: px + 8, cy: py - 2, r: 3, fill: item.color }));
    } else {
      g.appendChild(el("line", { x1: px, x2: px + 16, y1: py - 2, y2: py - 2, stroke: item.color,
        "stroke-width": item.width ?? 2, "stroke-dasharray": item.dash ?? (item.kind === "dash" ? "4 3" : null) }));
    }
    const text = g.appendChild(el("text", { x: px + 20, y: py + 2 }, item.label));
    px += 28 + Math.max(40, (text.getComputedTextLength ? text.getComputedTextLength() : item.label.length * 6));
  }
  return g;
}
