// Plotly charts. plotly.js is a partial bundle with only the traces drawn here (scatter,
// scattergl, bar, parcoords), shipped in static/vendor/ (no CDN). It is loaded after the page's
// table and numbers are on screen (pageInteractive()), so they never wait for it.
// Every chart takes compact arrays.
import { plottable, defaultOf } from './model.js';
import { formatNumber, formatValue, el } from './ui.js';
import { TRIAL_STATUS } from './constants.js';

export const COLORS = {
  primary: '#2563eb', best: '#f59e0b', grid: '#e5e7eb', text: '#374151', muted: '#9ca3af',
  status: {
    [TRIAL_STATUS.SUCCEEDED]: '#16a34a', [TRIAL_STATUS.FAILED]: '#dc2626', [TRIAL_STATUS.RUNNING]: '#2563eb',
    [TRIAL_STATUS.WAITING]: '#a855f7', [TRIAL_STATUS.USER_CANCELED]: '#6b7280', [TRIAL_STATUS.SYS_CANCELED]: '#6b7280',
    [TRIAL_STATUS.EARLY_STOPPED]: '#ea580c', [TRIAL_STATUS.UNKNOWN]: '#9ca3af',
  },
};

const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ['lasso2d', 'select2d', 'toImage'] };

function baseLayout(extra = {}) {
  return {
    margin: { l: 64, r: 24, t: 16, b: 48 },
    paper_bgcolor: 'rgba(0,0,0,0)', plot_bgcolor: 'rgba(0,0,0,0)',
    font: { family: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif', size: 12, color: COLORS.text },
    hoverlabel: { bgcolor: '#111827', font: { color: '#f9fafb', size: 12 }, align: 'left' },
    showlegend: false,
    ...extra,
  };
}

function axis(title, extra = {}) {
  return { title: { text: title, standoff: 8 }, gridcolor: COLORS.grid, zerolinecolor: COLORS.grid, automargin: true, ...extra };
}

/** Above this many points a chart is drawn with WebGL (scattergl) and without per-point hover text. */
export const BIG_CHART = 3000;

/** The plotly.js bundle (see packages/webui-server/plotly-bundle/build.sh). */
export const PLOTLY_BUNDLE = 'static/vendor/plotly-nni-4.1.1.min.js';

let plotlyPromise = null;
let releaseCharts;
const interactive = new Promise((resolve) => { releaseCharts = resolve; });

/** Called once the page is interactive: from then on, charts load plotly.js and draw. */
export function pageInteractive() {
  releaseCharts();
}

/**
 * Resolves with window.Plotly. The bundle is requested once the page is interactive (the
 * table and numbers first), then compiled off the main thread (an async script).
 */
export function plotlyReady() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyPromise) {
    plotlyPromise = interactive.then(() => new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.id = 'plotly-script';
      script.src = PLOTLY_BUNDLE;
      script.async = true;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => { plotlyPromise = null; reject(new Error(`could not load plotly.js (${PLOTLY_BUNDLE})`)); };
      document.head.append(script);
    }));
  }
  return plotlyPromise;
}

async function draw(node, traces, layout) {
  let Plotly;
  try {
    Plotly = await plotlyReady();
  } catch (err) {
    emptyChart(node, err.message);
    return;
  }
  if (!node.isConnected) return;
  const placeholder = node.querySelector(':scope > .chart-empty, :scope > .loading');
  if (placeholder) placeholder.remove();
  await Plotly.react(node, traces, layout, CONFIG);
}

export function emptyChart(node, message) {
  if (window.Plotly && node._fullLayout) window.Plotly.purge(node);
  node.replaceChildren(el('div.chart-empty', message));
}

function paramsHover(t, maxKeys = 8) {
  const entries = Object.entries(t.flatParams || {});
  const lines = entries.slice(0, maxKeys).map(([k, v]) => `${k}: ${formatValue(v)}`);
  if (entries.length > maxKeys) lines.push(`… ${entries.length - maxKeys} more`);
  return lines.join('<br>');
}

/** Value of a metric key (`default` or a dict key) for a trial's final result. */
export function finalValue(t, key) {
  if (key === 'default' || !key) return plottable(t.finalDefault);
  const v = t.final;
  return v && typeof v === 'object' ? plottable(v[key]) : undefined;
}

/**
 * Default-metric scatter: one point per trial with a final result, x = trial No.
 * With `bestCurve` the best-so-far line (by optimize mode) is drawn on top.
 */
export async function metricScatter(node, trials, { mode = 'maximize', bestCurve = false, key = 'default', height = 380 } = {}) {
  await interactive; // the traces of 100,000 trials take a while to build: after the table
  const xs = [], ys = [], ids = [], shown = [];
  for (const t of trials) {
    const v = finalValue(t, key);
    if (v === undefined) continue;
    xs.push(t.seq); ys.push(v); ids.push(t.id); shown.push(t);
  }
  if (!xs.length) return emptyChart(node, 'No trial has reported a numeric final result yet.');
  const big = xs.length > BIG_CHART;
  // Hover text with each trial's parameters, except on big charts: 100,000 such strings take
  // seconds to build (the trial's row in the table has them).
  const text = big ? undefined
    : shown.map((t, i) => `<b>Trial ${t.seq}</b> (${t.id})<br>${key}: ${formatNumber(ys[i])}<br>${paramsHover(t)}`);
  const traces = [{
    type: big ? 'scattergl' : 'scatter', mode: 'markers', x: xs, y: ys, customdata: ids, name: 'Trials',
    ...(big ? { hovertemplate: `<b>Trial %{x}</b> (%{customdata})<br>${key}: %{y}<extra></extra>` }
      : { text, hovertemplate: '%{text}<extra></extra>' }),
    marker: { color: COLORS.primary, size: big ? 4 : 8, opacity: 0.8, line: { width: 0 } },
  }];
  if (bestCurve) {
    const sign = mode === 'minimize' ? -1 : 1;
    const bx = [], by = [];
    let best;
    for (let i = 0; i < xs.length; i++) {
      if (best === undefined || sign * ys[i] > sign * best) best = ys[i];
      bx.push(xs[i]); by.push(best);
    }
    traces.push({ type: big ? 'scattergl' : 'scatter', mode: 'lines', x: bx, y: by, name: 'Best so far', line: { color: COLORS.best, width: 2.5, shape: 'hv' }, hovertemplate: 'best so far: %{y}<extra></extra>' });
  }
  await draw(node, traces, baseLayout({
    height, showlegend: bestCurve, legend: { orientation: 'h', y: 1.08, x: 1, xanchor: 'right' },
    xaxis: axis('Trial No.', { rangemode: 'tozero' }), yaxis: axis(key === 'default' ? 'Default metric' : key),
  }));
}

/** Top-N trials chart of the overview: ranks on x, metric on y. */
export async function topTrialsChart(node, trials, { height = 320 } = {}) {
  await interactive; // the traces of 100,000 trials take a while to build: after the table
  if (!trials.length) return emptyChart(node, 'No trial has reported a numeric final result yet.');
  await draw(node, [{
    type: 'scatter', mode: 'markers+lines', x: trials.map((t) => `#${t.seq}`), y: trials.map((t) => t.finalDefault),
    text: trials.map((t) => `<b>Trial ${t.seq}</b> (${t.id})<br>metric: ${formatNumber(t.finalDefault)}<br>${paramsHover(t)}`),
    hovertemplate: '%{text}<extra></extra>',
    marker: { size: 10, color: COLORS.primary }, line: { color: '#93c5fd', width: 1.5, dash: 'dot' },
  }], baseLayout({ height, xaxis: axis('Trial No. (ranked)', { type: 'category' }), yaxis: axis('Default metric') }));
}

function isLogType(type) {
  return type === 'loguniform' || type === 'qloguniform';
}

/**
 * Hyper-parameter parallel coordinates. `axes`: flattened parameter names to show.
 * Choice parameters become categorical axes; log-uniform ones a log10 axis; a value missing
 * for a trial (nested spaces) sits on an "n/a" tick below the axis range.
 */
export async function parallelCoordinates(node, trials, space, axes, { key = 'default', mode = 'maximize', height = 440 } = {}) {
  await interactive; // the traces of 100,000 trials take a while to build: after the table
  const rows = trials.filter((t) => finalValue(t, key) !== undefined && t.params);
  if (!rows.length) return emptyChart(node, 'No trial with parameters and a numeric final result yet.');
  if (!axes.length) return emptyChart(node, 'Choose at least one parameter axis.');
  const dims = [];
  for (const name of axes) {
    const spec = space[name] || {};
    const values = rows.map((t) => t.flatParams[name]);
    const numeric = values.every((v) => v === undefined || typeof v === 'number');
    if (spec.type === 'choice' || !numeric) {
      const cats = [];
      const seen = new Map();
      const add = (v) => { const k = formatValue(v); if (!seen.has(k)) { seen.set(k, cats.length); cats.push(k); } };
      if (spec.type === 'choice' && Array.isArray(spec.values)) spec.values.forEach(add);
      values.forEach((v) => add(v === undefined ? 'n/a' : v));
      dims.push({
        label: name, values: values.map((v) => seen.get(formatValue(v === undefined ? 'n/a' : v))),
        tickvals: cats.map((_, i) => i), ticktext: cats.map((c) => (c.length > 14 ? c.slice(0, 13) + '…' : c)),
        range: [0, Math.max(cats.length - 1, 1)],
      });
      continue;
    }
    const log = isLogType(spec.type) && values.every((v) => v === undefined || v > 0);
    const mapped = values.map((v) => (v === undefined ? undefined : log ? Math.log10(v) : v));
    const present = mapped.filter((v) => v !== undefined);
    let lo = Infinity, hi = -Infinity; // no Math.min(...values): 100,000 arguments overflow the stack
    for (const v of present) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (Array.isArray(spec.values) && spec.values.length >= 2 && typeof spec.values[0] === 'number') {
      const a = log ? Math.log10(spec.values[0]) : spec.values[0];
      const b = log ? Math.log10(spec.values[1]) : spec.values[1];
      if (Number.isFinite(a) && Number.isFinite(b)) { lo = Math.min(lo, a); hi = Math.max(hi, b); }
    }
    if (lo === hi) { lo -= 1; hi += 1; }
    const missing = mapped.some((v) => v === undefined);
    const na = lo - (hi - lo) * 0.12;
    const dim = { label: log ? `${name} (log)` : name, values: mapped.map((v) => (v === undefined ? na : v)), range: [missing ? na : lo, hi] };
    const ticks = [];
    for (let i = 0; i <= 4; i++) ticks.push(lo + ((hi - lo) * i) / 4);
    dim.tickvals = missing ? [na, ...ticks] : ticks;
    dim.ticktext = dim.tickvals.map((v) => (missing && v === na ? 'n/a' : formatNumber(log ? 10 ** v : v)));
    dims.push(dim);
  }
  const metric = rows.map((t) => finalValue(t, key));
  dims.push({ label: key === 'default' ? 'Metric' : key, values: metric });
  await draw(node, [{
    type: 'parcoords', dimensions: dims,
    line: {
      color: metric, showscale: true,
      colorscale: mode === 'minimize' ? 'Viridis' : 'Viridis', reversescale: mode === 'minimize',
      colorbar: { thickness: 12, len: 0.9, x: 1.06, title: { text: key === 'default' ? 'metric' : key, side: 'right' } },
    },
    labelfont: { size: 12 }, tickfont: { size: 11 }, rangefont: { size: 1, color: 'rgba(0,0,0,0)' },
  }], baseLayout({ height, margin: { l: 80, r: 120, t: 48, b: 24 } }));
}

/** Horizontal bars of trial durations (running trials count up to now). */
export async function durationBars(node, trials, { height } = {}) {
  await interactive; // the traces of 100,000 trials take a while to build: after the table
  const rows = trials.filter((t) => t.duration !== null && t.duration !== undefined);
  if (!rows.length) return emptyChart(node, 'No trial has started yet.');
  if (rows.length > BIG_CHART) {
    // 100,000 SVG bars freeze the page: one WebGL point per trial at the end of its bar instead
    await draw(node, [{
      type: 'scattergl', mode: 'markers', x: rows.map((t) => t.duration), y: rows.map((t) => t.seq),
      marker: { color: rows.map((t) => COLORS.status[t.status] || COLORS.muted), size: 3 },
      hovertemplate: 'Trial %{y}: %{x:.1f} s<extra></extra>',
    }], baseLayout({ height: height || 520, xaxis: axis('Duration (s)', { rangemode: 'tozero' }), yaxis: axis('Trial No.', { autorange: 'reversed' }) }));
    return;
  }
  const h = height || Math.min(Math.max(260, rows.length * 16 + 80), 620);
  await draw(node, [{
    type: 'bar', orientation: 'h', y: rows.map((t) => t.seq), x: rows.map((t) => t.duration),
    marker: { color: rows.map((t) => COLORS.status[t.status] || COLORS.muted) },
    text: rows.map((t) => `<b>Trial ${t.seq}</b> (${t.id})<br>${t.status}<br>duration: ${t.duration.toFixed(1)} s`),
    hovertemplate: '%{text}<extra></extra>', textposition: 'none',
  }], baseLayout({
    height: h, bargap: 0.25,
    xaxis: axis('Duration (s)'), yaxis: axis('Trial No.', { autorange: 'reversed', type: rows.length > 60 ? 'linear' : 'category' }),
  }));
}

/**
 * Intermediate results: one line per trial. `series`: [{trial, points: [{seq, value}]}].
 * Filter: keep trials whose value at intermediate #`index` (1-based) lies in [min, max].
 */
export async function intermediateLines(node, series, { key = 'default', height = 400 } = {}) {
  await interactive; // the traces of 100,000 trials take a while to build: after the table
  const traces = [];
  for (const { trial, points } of series) {
    const xs = [], ys = [];
    for (const p of points) {
      const v = key === 'default' ? plottable(defaultOf(p.value)) : plottable(p.value && typeof p.value === 'object' ? p.value[key] : undefined);
      if (v === undefined) continue;
      xs.push(p.seq + 1); ys.push(v);
    }
    if (!xs.length) continue;
    traces.push({
      type: 'scatter', mode: xs.length > 1 ? 'lines' : 'markers', x: xs, y: ys, name: `Trial ${trial.seq}`,
      line: { width: 1.4 }, opacity: 0.85,
      hovertemplate: `<b>Trial ${trial.seq}</b> (${trial.id})<br>#%{x}: %{y}<extra></extra>`,
    });
  }
  if (!traces.length) return emptyChart(node, 'No intermediate results to show.');
  await draw(node, traces, baseLayout({ height, xaxis: axis('Intermediate result #', { rangemode: 'tozero' }), yaxis: axis(key === 'default' ? 'Metric' : key) }));
}

export function intermediateFilter(series, { index, min, max, key = 'default' }) {
  if (!index) return series;
  const lo = min === '' || min === undefined || min === null ? -Infinity : Number(min);
  const hi = max === '' || max === undefined || max === null ? Infinity : Number(max);
  return series.filter(({ points }) => {
    const p = points.find((x) => x.seq + 1 === Number(index));
    if (!p) return false;
    const v = key === 'default' ? defaultOf(p.value) : p.value && p.value[key];
    return typeof v === 'number' && v >= lo && v <= hi;
  });
}

export function purge(node) {
  if (window.Plotly && node) window.Plotly.purge(node);
}
