// Trials detail page: four chart tabs (default metric, hyper-parameters, duration,
// intermediate results) above the trial table.
import { icon } from '../icons.js';
import { el, fill, clear, formatValue } from '../ui.js';
import { BIG_CHART, metricScatter, parallelCoordinates, durationBars, intermediateLines, intermediateFilter, finalValue, purge } from '../charts.js';
import { TrialTable } from './trial-table.js';

const INTERMEDIATE_LIMIT = 300;
/** The most lines the hyper-parameter chart draws (the best ones by the chosen metric). */
const PARCOORDS_LIMIT = 2000;

export class DetailPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.tab = localStorage.getItem('nni.detail.tab') || 'metric';
    this.bestCurve = false;
    this.metricKey = 'default';
    this.mode = null;
    this.axes = null;      // null: every parameter
    this.topPercent = 100;
    this.inter = { index: '', min: '', max: '', key: 'default' };
    this.table = new TrialTable(ctx);
    this.lastChartKey = '';
  }

  mount(node) {
    this.node = node;
    this.tabBar = el('div.tabs', { role: 'tablist' });
    this.controls = el('div.chart-controls');
    this.chart = el('div.chart.main-chart');
    const items = [
      ['metric', 'Default metric', 'chart'], ['hyper', 'Hyper-parameter', 'tuner'],
      ['duration', 'Duration', 'clock'], ['intermediate', 'Intermediate result', 'detail'],
    ];
    for (const [id, label, ic] of items) {
      this.tabBar.append(el('button.tab', { type: 'button', role: 'tab', dataset: { tab: id, testid: `tab-${id}` }, onclick: () => this.showTab(id) }, icon(ic), label));
    }
    node.append(el('div.card.chart-card', this.tabBar, this.controls, this.chart), this.table.node);
  }

  showTab(id) {
    this.tab = id;
    localStorage.setItem('nni.detail.tab', id);
    this.lastChartKey = '';
    purge(this.chart);
    clear(this.chart);
    this.renderCharts(this.ctx.model, true);
  }

  update(model) {
    if (!model.profile) return;
    this.table.render(model);
    return this.renderCharts(model, false);
  }

  metricKeySelect(model, onChange) {
    const keys = ['default', ...model.metricKeys()];
    if (keys.length < 2) return null;
    return el('label.inline', 'Metric ', el('select', { onchange: (e) => onChange(e.target.value) },
      keys.map((k) => el('option', { value: k, selected: k === this.metricKey }, k))));
  }

  renderCharts(model, force) {
    for (const b of this.tabBar.children) b.classList.toggle('active', b.dataset.tab === this.tab);
    // Redraw only when the data the chart shows changed (polls with no news cost nothing).
    // The trials' parameters (loaded after the table) matter to the hyper-parameter chart and the
    // hover text of a small default-metric chart.
    const usesParams = this.tab === 'hyper' || (this.tab === 'metric' && model.trials.length <= BIG_CHART);
    const dataKey = `${this.tab}|${usesParams ? model.detailsRevision : ''}|${model.trialsRevision}`;
    if (!force && dataKey === this.lastChartKey && this.tab !== 'duration') return;
    this.lastChartKey = dataKey;
    const mode = this.mode || model.optimizeMode;
    const rerender = () => this.renderCharts(model, true);
    if (this.tab === 'metric') {
      fill(this.controls, 
        this.metricKeySelect(model, (k) => { this.metricKey = k; rerender(); }),
        el('label.inline', 'Optimize ', el('select', { dataset: { testid: 'optimize-mode' }, onchange: (e) => { this.mode = e.target.value; rerender(); } },
          ['maximize', 'minimize'].map((m) => el('option', { value: m, selected: m === mode }, m)))),
        el('label.switch', el('input', { type: 'checkbox', checked: this.bestCurve, dataset: { testid: 'best-curve' }, onchange: (e) => { this.bestCurve = e.target.checked; rerender(); } }), el('span.slider'), 'Optimization curve'));
      return metricScatter(this.chart, model.trials, { mode, bestCurve: this.bestCurve, key: this.metricKey });
    } else if (this.tab === 'hyper') {
      const names = Object.keys(model.flatSpace).length ? Object.keys(model.flatSpace)
        : [...new Set(model.trials.flatMap((t) => Object.keys(t.flatParams || {})))];
      const axes = this.axes ? this.axes.filter((a) => names.includes(a)) : names;
      const axisMenu = el('details.axis-menu', { open: !!this.axisMenuOpen, ontoggle: (e) => { this.axisMenuOpen = e.target.open; } },
        el('summary.btn', { dataset: { testid: 'axes' } }, icon('columns'), `Axes (${axes.length}/${names.length})`),
        el('div.popover', names.map((n) => el('label.check-row', el('input', { type: 'checkbox', checked: axes.includes(n), onchange: (e) => {
          const next = new Set(axes);
          e.target.checked ? next.add(n) : next.delete(n);
          this.axes = names.filter((x) => next.has(x));
          rerender();
        } }), el('span', n)))));
      fill(this.controls, 
        this.metricKeySelect(model, (k) => { this.metricKey = k; rerender(); }),
        el('label.inline', 'Top ', el('select', { dataset: { testid: 'top-percent' }, onchange: (e) => { this.topPercent = Number(e.target.value); rerender(); } },
          [100, 80, 50, 20, 10, 5].map((p) => el('option', { value: p, selected: p === this.topPercent }, p === 100 ? 'all trials' : `${p}%`)))),
        axisMenu, el('span.muted.hint', 'Drag an axis title to reorder; drag along an axis to filter.'));
      let rows = model.trials.filter((t) => finalValue(t, this.metricKey) !== undefined);
      const wanted = this.topPercent < 100 ? Math.max(1, Math.ceil((rows.length * this.topPercent) / 100)) : rows.length;
      // Parallel coordinates of 100,000 lines take minutes to draw (WebGL without a GPU): the best
      // PARCOORDS_LIMIT of the chosen trials, said so in the hint.
      const shown = Math.min(wanted, PARCOORDS_LIMIT);
      if (shown < rows.length) {
        const sign = mode === 'minimize' ? 1 : -1;
        rows = rows.slice().sort((a, b) => sign * (finalValue(a, this.metricKey) - finalValue(b, this.metricKey))).slice(0, shown);
      }
      this.controls.querySelector('.hint').textContent = shown < wanted
        ? `Showing the best ${PARCOORDS_LIMIT} of ${wanted} trials. Drag an axis title to reorder; drag along an axis to filter.`
        : 'Drag an axis title to reorder; drag along an axis to filter.';
      return parallelCoordinates(this.chart, rows, model.flatSpace, axes, { key: this.metricKey, mode });
    } else if (this.tab === 'duration') {
      fill(this.controls, el('span.muted.hint', 'Bars are coloured by status; running trials grow until they end.'));
      return durationBars(this.chart, model.trials);
    } else {
      return this.renderIntermediate(model);
    }
  }

  renderIntermediate(model) {
    const f = this.inter;
    const apply = () => this.renderCharts(model, true);
    // The filter inputs persist across redraws (a redraw must not eat what is being typed).
    if (!this.interControls) {
      const input = (key, placeholder, testid) => el('input.range-input', {
        type: 'number', step: 'any', placeholder, value: f[key], dataset: { testid },
        onchange: (e) => { f[key] = e.target.value; apply(); },
        onkeydown: (e) => { if (e.key === 'Enter') { f[key] = e.target.value; apply(); } },
      });
      this.interHint = el('span.muted.hint');
      this.interKeyHost = el('span');
      this.interControls = [
        this.interKeyHost,
        el('label.inline', '#Intermediate ', input('index', 'e.g. 4', 'inter-index')),
        el('label.inline', 'range ', input('min', 'min', 'inter-min'), el('span.muted', ' – '), input('max', 'max', 'inter-max')),
        this.interHint,
      ];
    }
    if (this.controls.firstChild !== this.interControls[0]) fill(this.controls, this.interControls);
    // Which trials: the table's current filter, capped so the chart stays readable and fast.
    const all = this.table.filtered(model);
    const capped = all.length > INTERMEDIATE_LIMIT;
    const trials = capped ? all.slice(0, INTERMEDIATE_LIMIT) : all;
    this.interHint.textContent = capped ? `Showing the first ${INTERMEDIATE_LIMIT} of the table's ${all.length} trials (sort or filter the table to choose).`
      : 'Trials shown follow the table filter.';
    const chart = this.chart;
    if (!chart.firstChild) chart.append(el('div.loading', 'Loading intermediate results…'));
    return model.loadIntermediate(trials.map((t) => t.id)).then((cache) => {
      if (this.tab !== 'intermediate') return;
      const keys = new Set();
      const series = trials.map((t) => ({ trial: t, points: cache.get(t.id) || [] }));
      for (const s of series) for (const p of s.points) if (p.value && typeof p.value === 'object') Object.keys(p.value).forEach((k) => keys.add(k));
      if (keys.size && !this.interKeyHost.firstChild) {
        this.interKeyHost.append(el('label.inline.inter-key', 'Key ', el('select', { onchange: (e) => { f.key = e.target.value; apply(); } },
          ['default', ...[...keys].filter((k) => k !== 'default')].map((k) => el('option', { value: k, selected: k === f.key }, formatValue(k))))));
      }
      const shown = intermediateFilter(series, f);
      if (chart.querySelector('.loading')) chart.replaceChildren();
      return intermediateLines(chart, shown, { key: f.key });
    });
  }

  unmount() {
    purge(this.chart);
  }
}
