// The trial table of the Trials detail page: sort, paginate, search, extra columns, row
// expansion (parameters, logs, intermediate graph, error), selection and per-trial actions.
import { api } from '../api.js';
import { icon } from '../icons.js';
import { TRIAL_STATUS } from '../constants.js';
import {
  el, fill, button, clear, formatDuration, formatTime, formatValue, statusBadge,
  toast, copyText, confirmDialog, tabs, TRIAL_STATUSES,
} from '../ui.js';
import { intermediateLines } from '../charts.js';
import { showTrialFile, showCustomizeTrial, copyAsPython, showCompare, showTensorboard } from '../dialogs.js';
import { isFinished, trialDetails } from '../model.js';

export function paramsView(trial) {
  if (!trial.details) { // not loaded yet: this trial's alone
    const holder = el('div.params-view', el('div.loading', 'Loading parameters…'));
    trialDetails(trial).then((t) => holder.replaceWith(paramsView(t)), (err) => fill(holder, el('div.chart-empty', err.message)));
    return holder;
  }
  const text = JSON.stringify(trial.params ?? {}, null, 2);
  return el('div.params-view',
    el('div.code-tools',
      button('Copy as Python', { iconName: 'python', onClick: () => copyAsPython(trial), testid: 'copy-python' }),
      button('Copy JSON', { iconName: 'copy', onClick: () => copyText(text, 'Parameters copied') })),
    el('pre.code', text));
}

const BASE_COLUMNS = [
  { id: 'seq', label: 'Trial No.', value: (t) => t.seq, render: (t) => String(t.seq), fixed: true },
  { id: 'id', label: 'ID', value: (t) => t.id, render: (t) => el('span.id-cell', el('code', t.id), el('button.icon-btn.tiny', { type: 'button', title: 'Copy trial id', onclick: (e) => { e.stopPropagation(); copyText(t.id, 'Trial id copied'); } }, icon('copy'))) },
  { id: 'duration', label: 'Duration', value: (t) => t.duration, render: (t) => formatDuration(t.duration) },
  { id: 'startTime', label: 'Start time', value: (t) => t.startTime, render: (t) => formatTime(t.startTime), optional: true },
  { id: 'endTime', label: 'End time', value: (t) => t.endTime, render: (t) => formatTime(t.endTime), optional: true },
  { id: 'status', label: 'Status', value: (t) => t.status, render: (t) => statusBadge(t.status) },
  {
    id: 'metric', label: 'Default metric', numeric: true,
    value: (t) => (typeof t.finalDefault === 'number' ? t.finalDefault : typeof t.latestDefault === 'number' ? t.latestDefault : undefined),
    render: (t) => {
      if (t.final !== undefined) return el('span', formatValue(t.finalDefault ?? t.final), el('span.metric-kind', ' FINAL'));
      if (t.latest !== undefined) return el('span.muted', formatValue(t.latestDefault ?? t.latest), el('span.metric-kind', ' LATEST'));
      return el('span.muted', '—');
    },
  },
  { id: 'intermediateCount', label: 'Intermediate count', value: (t) => t.intermediateCount, render: (t) => String(t.intermediateCount), optional: true, numeric: true },
  { id: 'source', label: 'Parameter source', value: (t) => t.source || '', render: (t) => t.source || '—', optional: true },
  { id: 'message', label: 'Message', value: (t) => t.message, render: (t) => t.message || '—', optional: true },
];

const PLATFORM_COLUMN = { id: 'platform', label: 'Platform', value: (t) => t.platform, render: (t) => t.platform || '—' };

function compare(a, b) {
  const au = a === undefined || a === null || (typeof a === 'number' && Number.isNaN(a));
  const bu = b === undefined || b === null || (typeof b === 'number' && Number.isNaN(b));
  if (au || bu) return au === bu ? 0 : au ? 1 : -1; // missing values last, whatever the direction
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

export class TrialTable {
  constructor(ctx) {
    this.ctx = ctx;
    this.sort = { key: 'seq', dir: 1 };
    this.page = 0;
    this.pageSize = Number(localStorage.getItem('nni.table.pageSize') || 20);
    this.search = { field: 'id', text: '', min: '', max: '', value: '' };
    this.statusFilter = new Set();
    this.selected = new Set();
    this.expanded = new Map(); // id -> active tab
    this.visible = new Set(JSON.parse(localStorage.getItem('nni.table.columns') || '[]'));
    this.node = el('div.card.table-card');
    this.toolbar = el('div.table-tools');
    this.body = el('div');
    this.node.append(el('div.card-head', el('h2.card-title', icon('experiments'), 'Trial jobs', el('span.muted.count-pill', { dataset: { testid: 'trial-count' } }, ''))), this.toolbar, this.body);
    this.toolbarBuilt = false;
  }

  columns(model) {
    const cols = BASE_COLUMNS.filter((c) => !c.optional || this.visible.has(c.id));
    if (model.hybrid) { // several platforms: which one ran each trial
      cols.splice(cols.findIndex((c) => c.id === 'status') + 1, 0, PLATFORM_COLUMN);
    }
    for (const key of model.metricKeys()) {
      const id = `metric:${key}`;
      if (this.visible.has(id)) {
        cols.push({ id, label: key, numeric: true, value: (t) => (t.final && typeof t.final === 'object' ? t.final[key] : undefined), render: (t) => formatValue(t.final && typeof t.final === 'object' ? t.final[key] : undefined) });
      }
    }
    for (const name of Object.keys(model.flatSpace)) {
      const id = `param:${name}`;
      if (this.visible.has(id)) cols.push({ id, label: name, value: (t) => t.flatParams?.[name], render: (t) => formatValue(t.flatParams?.[name]) });
    }
    return cols;
  }

  optionalColumns(model) {
    return [
      ...BASE_COLUMNS.filter((c) => c.optional).map((c) => ({ id: c.id, label: c.label })),
      ...model.metricKeys().map((k) => ({ id: `metric:${k}`, label: `Metric: ${k}` })),
      ...Object.keys(model.flatSpace).map((n) => ({ id: `param:${n}`, label: `Parameter: ${n}` })),
    ];
  }

  filtered(model) {
    const s = this.search;
    let rows = model.trials;
    if (this.statusFilter.size) rows = rows.filter((t) => this.statusFilter.has(t.status));
    const text = s.text.trim();
    if (s.field === 'id' && text) {
      const q = text.toLowerCase();
      rows = rows.filter((t) => t.id.toLowerCase().includes(q));
    } else if (s.field === 'no' && text) {
      const m = /^(\d+)\s*(?:-\s*(\d+))?$/.exec(text);
      if (m) {
        const lo = Number(m[1]), hi = m[2] === undefined ? lo : Number(m[2]);
        rows = rows.filter((t) => t.seq >= lo && t.seq <= hi);
      } else {
        rows = [];
      }
    } else if (s.field === 'status' && s.value) {
      rows = rows.filter((t) => t.status === s.value);
    } else if (s.field.startsWith('param:')) {
      const name = s.field.slice(6);
      const spec = model.flatSpace[name];
      if (spec?.type === 'choice') {
        if (s.value !== '') rows = rows.filter((t) => formatValue(t.flatParams?.[name]) === s.value);
      } else {
        const lo = s.min === '' ? -Infinity : Number(s.min), hi = s.max === '' ? Infinity : Number(s.max);
        if (s.min !== '' || s.max !== '') rows = rows.filter((t) => { const v = t.flatParams?.[name]; return typeof v === 'number' && v >= lo && v <= hi; });
        else if (text) rows = rows.filter((t) => formatValue(t.flatParams?.[name]).includes(text));
      }
    }
    const col = this.columns(model).find((c) => c.id === this.sort.key) || BASE_COLUMNS[0];
    const dir = this.sort.dir;
    // model.trials is in sequence order and filters keep it: no sort of 100,000 rows for the default
    if (col.id === 'seq') return dir > 0 ? (rows === model.trials ? rows.slice() : rows) : rows.slice().reverse();
    rows = rows.slice().sort((a, b) => {
      const av = col.value(a), bv = col.value(b);
      const missing = (v) => v === undefined || v === null || (typeof v === 'number' && Number.isNaN(v));
      if (missing(av) || missing(bv)) return compare(av, bv);
      return dir * compare(av, bv) || a.seq - b.seq;
    });
    return rows;
  }

  buildToolbar(model) {
    const fieldSelect = el('select.search-field', { dataset: { testid: 'search-field' }, onchange: () => { this.search = { field: fieldSelect.value, text: '', min: '', max: '', value: '' }; this.page = 0; this.renderSearchInput(model); this.render(model); } },
      el('option', { value: 'id' }, 'Trial ID'), el('option', { value: 'no' }, 'Trial No.'), el('option', { value: 'status' }, 'Status'),
      Object.keys(model.flatSpace).map((n) => el('option', { value: `param:${n}` }, `Parameter: ${n}`)));
    this.fieldSelect = fieldSelect;
    this.searchInputHost = el('div.search-inputs');
    this.statusChips = el('div.status-chips');
    this.actionButtons = el('div.toolbar');
    fill(this.toolbar,
      el('div.table-toolbar', el('div.search-box', icon('search'), fieldSelect, this.searchInputHost), this.actionButtons),
      this.statusChips);
    this.renderSearchInput(model);
    this.toolbarBuilt = true;
    this.spaceKey = Object.keys(model.flatSpace).join('|');
  }

  renderSearchInput(model) {
    const s = this.search;
    const host = clear(this.searchInputHost);
    const apply = () => { this.page = 0; this.render(model); };
    if (s.field === 'status') {
      host.append(el('select', { dataset: { testid: 'search-status' }, onchange: (e) => { s.value = e.target.value; apply(); } },
        el('option', { value: '' }, 'any status'), TRIAL_STATUSES.map((st) => el('option', { value: st, selected: s.value === st }, st))));
    } else if (s.field.startsWith('param:') && model.flatSpace[s.field.slice(6)]?.type === 'choice') {
      const spec = model.flatSpace[s.field.slice(6)];
      host.append(el('select', { onchange: (e) => { s.value = e.target.value; apply(); } },
        el('option', { value: '' }, 'any value'), (spec.values || []).map((v) => el('option', { value: formatValue(v), selected: s.value === formatValue(v) }, formatValue(v)))));
    } else if (s.field.startsWith('param:')) {
      host.append(
        el('input.range-input', { type: 'number', step: 'any', placeholder: 'min', value: s.min, oninput: (e) => { s.min = e.target.value; apply(); } }),
        el('span.muted', '–'),
        el('input.range-input', { type: 'number', step: 'any', placeholder: 'max', value: s.max, oninput: (e) => { s.max = e.target.value; apply(); } }));
    } else {
      host.append(el('input.search-text', {
        type: 'search', dataset: { testid: 'search-text' }, value: s.text,
        placeholder: s.field === 'no' ? 'e.g. 12 or 10-20' : 'search by trial id',
        oninput: (e) => { s.text = e.target.value; apply(); },
      }));
    }
  }

  renderStatusChips(model) {
    const counts = model.counts();
    fill(this.statusChips, 
      el('span.muted', { title: 'Show only trials with these statuses' }, icon('filter')),
      TRIAL_STATUSES.filter((s) => counts[s] || this.statusFilter.has(s)).map((s) => el('button.chip.filter-chip', {
        type: 'button', class: this.statusFilter.has(s) ? 'on' : '', dataset: { status: s, testid: `filter-${s}` },
        onclick: () => { this.statusFilter.has(s) ? this.statusFilter.delete(s) : this.statusFilter.add(s); this.page = 0; this.render(model); },
      }, `${s} ${counts[s] || 0}`)));
  }

  renderActions(model) {
    const selected = model.trials.filter((t) => this.selected.has(t.id));
    fill(this.actionButtons, 
      button('Add column', { iconName: 'columns', onClick: (e) => this.columnMenu(model, e), testid: 'add-column' }),
      button(`Compare${selected.length ? ` (${selected.length})` : ''}`, { iconName: 'compare', disabled: selected.length < 1, testid: 'compare', onClick: () => showCompare(model, selected) }),
      button('TensorBoard', { iconName: 'tensorboard', testid: 'tensorboard', onClick: () => showTensorboard(model, selected) }),
      model.readOnly ? null : button('Customized trial', { iconName: 'plus', kind: 'primary', testid: 'add-trial', onClick: () => showCustomizeTrial(model, selected[0] || model.best() || model.trials[model.trials.length - 1], () => this.ctx.refresh()) }),
      selected.length ? button('Clear selection', { iconName: 'close', onClick: () => { this.selected.clear(); this.render(model); } }) : null);
  }

  columnMenu(model) {
    document.querySelector('.column-menu')?.remove();
    const anchor = this.actionButtons.querySelector('[data-testid="add-column"]');
    const menu = el('div.column-menu.popover', { dataset: { testid: 'column-menu' } },
      el('div.popover-title', 'Columns'),
      this.optionalColumns(model).map((c) => el('label.check-row',
        el('input', { type: 'checkbox', checked: this.visible.has(c.id), dataset: { column: c.id }, onchange: (e) => {
          e.target.checked ? this.visible.add(c.id) : this.visible.delete(c.id);
          localStorage.setItem('nni.table.columns', JSON.stringify([...this.visible]));
          this.render(model);
        } }), el('span', c.label))));
    const rect = anchor.getBoundingClientRect();
    Object.assign(menu.style, { top: `${rect.bottom + window.scrollY + 4}px`, left: `${Math.max(8, rect.right + window.scrollX - 280)}px` });
    document.body.append(menu);
    const away = (e) => { if (!menu.contains(e.target) && e.target !== anchor && !anchor.contains(e.target)) { menu.remove(); document.removeEventListener('mousedown', away); } };
    setTimeout(() => document.addEventListener('mousedown', away), 0);
  }

  async kill(model, trial) {
    const ok = await confirmDialog('Kill trial', `Kill trial ${trial.seq} (${trial.id})? It stops at once and is marked ${TRIAL_STATUS.USER_CANCELED}.`, 'Kill');
    if (!ok) return;
    try {
      await api.call('cancel_trial_job', { params: { id: trial.id } });
      toast(`Trial ${trial.id} is being killed`);
      await this.ctx.refresh();
    } catch (err) {
      toast(err.message, 'error', 8000);
    }
  }

  expandedView(model, t) {
    const tabsList = [
      { id: 'params', label: 'Parameters', render: () => paramsView(t) },
      {
        id: 'log', label: 'Log', render: () => el('div.log-links',
          el('dl.kv',
            el('dt', 'Trial directory'), el('dd', el('code', t.logPath || '—')),
            t.stderrPath ? [el('dt', 'stderr'), el('dd', el('code', t.stderrPath))] : null),
          el('div.toolbar',
            button('View trial log', { iconName: 'log', testid: 'view-trial-log', onClick: () => showTrialFile(t, 'trial.log') }),
            button('View trial error', { iconName: 'alert', onClick: () => showTrialFile(t, 'stderr') }),
            button('View trial stdout', { iconName: 'terminal', onClick: () => showTrialFile(t, 'stdout') }))),
      },
      {
        id: 'intermediate', label: 'Intermediate result', render: () => {
          const chart = el('div.chart', { style: { height: '280px' } }, el('div.loading', 'Loading…'));
          model.loadIntermediate([t.id]).then((cache) => { chart.replaceChildren(); intermediateLines(chart, [{ trial: t, points: cache.get(t.id) || [] }], { height: 280 }); });
          return chart;
        },
      },
    ];
    if (t.status === TRIAL_STATUS.FAILED || t.message) {
      tabsList.push({
        id: 'error', label: 'Error', render: () => el('div.error-box',
          el('div.error-title', icon('alert'), el('b', t.status === TRIAL_STATUS.FAILED ? 'This trial failed' : 'Message')),
          t.message ? el('pre.error-text', t.message) : el('p', 'The trial exited with an error; its stderr tells why.'),
          button('View trial error (stderr)', { iconName: 'log', onClick: () => showTrialFile(t, 'stderr') })),
      });
    }
    const active = this.expanded.get(t.id) || (t.status === TRIAL_STATUS.FAILED ? 'error' : 'params');
    return tabs(tabsList, { active: tabsList.some((x) => x.id === active) ? active : 'params', onChange: (id) => this.expanded.set(t.id, id), className: 'small' });
  }

  render(model) {
    if (!this.toolbarBuilt || this.spaceKey !== Object.keys(model.flatSpace).join('|')) this.buildToolbar(model);
    this.renderStatusChips(model);
    this.renderActions(model);
    const cols = this.columns(model);
    const rows = this.filtered(model);
    const pages = Math.max(1, Math.ceil(rows.length / this.pageSize));
    if (this.page >= pages) this.page = pages - 1;
    const pageRows = rows.slice(this.page * this.pageSize, (this.page + 1) * this.pageSize);
    this.node.querySelector('[data-testid="trial-count"]').textContent = rows.length === model.trials.length ? String(rows.length) : `${rows.length} of ${model.trials.length}`;

    const allOnPage = pageRows.length > 0 && pageRows.every((t) => this.selected.has(t.id));
    const head = el('tr',
      el('th.narrow', el('input', { type: 'checkbox', title: 'Select this page', checked: allOnPage, onchange: (e) => { for (const t of pageRows) e.target.checked ? this.selected.add(t.id) : this.selected.delete(t.id); this.render(model); } })),
      el('th.narrow'),
      cols.map((c) => el('th.sortable', {
        class: c.numeric ? 'num' : '', dataset: { col: c.id },
        onclick: () => { this.sort = { key: c.id, dir: this.sort.key === c.id ? -this.sort.dir : (c.numeric ? -1 : 1) }; this.render(model); },
      }, c.label, icon(this.sort.key === c.id ? (this.sort.dir > 0 ? 'sortAsc' : 'sortDesc') : 'sortNone', 'sort-icon'))),
      el('th', 'Operation'));
    const body = [];
    const ncols = cols.length + 3;
    for (const t of pageRows) {
      const open = this.expanded.has(t.id);
      const running = !isFinished(t.status);
      body.push(el('tr', { class: this.selected.has(t.id) ? 'selected' : '', dataset: { trial: t.id, seq: t.seq } },
        el('td.narrow', el('input', { type: 'checkbox', checked: this.selected.has(t.id), dataset: { testid: 'select-trial' }, onchange: (e) => { e.target.checked ? this.selected.add(t.id) : this.selected.delete(t.id); this.render(model); } })),
        el('td.narrow', el('button.icon-btn.expander', { type: 'button', title: open ? 'Collapse' : 'Details', dataset: { testid: 'expand' }, onclick: () => { open ? this.expanded.delete(t.id) : this.expanded.set(t.id, null); this.render(model); } }, icon(open ? 'chevronDown' : 'chevronRight'))),
        cols.map((c) => el('td', { class: c.numeric ? 'num' : '', dataset: { col: c.id } }, c.render(t))),
        el('td.ops',
          model.readOnly ? null : el('button.icon-btn', { type: 'button', title: running ? 'Kill this trial' : 'Only a running or waiting trial can be killed', disabled: !running, dataset: { testid: 'kill' }, onclick: () => this.kill(model, t) }, icon('kill')),
          model.readOnly ? null : el('button.icon-btn', { type: 'button', title: t.status === TRIAL_STATUS.FAILED ? 'Rerun / customize' : 'Customized trial from these parameters', dataset: { testid: 'customize' }, onclick: () => showCustomizeTrial(model, t, () => this.ctx.refresh()) }, icon(t.status === TRIAL_STATUS.FAILED ? 'rerun' : 'edit')),
          el('button.icon-btn', { type: 'button', title: 'Copy parameters as Python', onclick: () => copyAsPython(t) }, icon('python')))));
      if (open) body.push(el('tr.expanded-row', el('td', { colSpan: ncols }, this.expandedView(model, t))));
    }
    if (!pageRows.length) body.push(el('tr', el('td.empty', { colSpan: ncols }, model.trials.length ? 'No trial matches the filter.' : 'No trial yet.')));

    const pager = el('div.pager',
      el('span.muted', rows.length ? `${this.page * this.pageSize + 1}–${Math.min(rows.length, (this.page + 1) * this.pageSize)} of ${rows.length}` : '0 trials'),
      el('label.inline', 'Rows ', el('select', { dataset: { testid: 'page-size' }, onchange: (e) => { this.pageSize = Number(e.target.value); localStorage.setItem('nni.table.pageSize', e.target.value); this.page = 0; this.render(model); } },
        [10, 20, 50, 100].map((n) => el('option', { value: n, selected: n === this.pageSize }, String(n))))),
      el('button.icon-btn', { type: 'button', title: 'Previous page', disabled: this.page === 0, dataset: { testid: 'prev-page' }, onclick: () => { this.page--; this.render(model); } }, icon('chevronLeft')),
      el('span', { dataset: { testid: 'page' } }, `${this.page + 1} / ${pages}`),
      el('button.icon-btn', { type: 'button', title: 'Next page', disabled: this.page >= pages - 1, dataset: { testid: 'next-page' }, onclick: () => { this.page++; this.render(model); } }, icon('chevronRight')));
    fill(this.body, el('div.table-scroll', el('table.table.trial-table', { dataset: { testid: 'trial-table' } }, el('thead', head), el('tbody', body))), pager);
  }
}

