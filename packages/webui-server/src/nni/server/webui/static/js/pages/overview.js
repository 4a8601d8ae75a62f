// Overview page: experiment information, duration and budget, trial counts, top trials.
import { api } from '../api.js';
import { icon } from '../icons.js';
import { TRIAL_STATUS, UNFINISHED_TRIAL_STATUSES, UPDATE_TYPE } from '../constants.js';
import { el, fill, formatDuration, formatTime, formatNumber, statusBadge, toast, copyText, TRIAL_STATUSES } from '../ui.js';
import { topTrialsChart, COLORS } from '../charts.js';
import { showLogs } from '../dialogs.js';
import { paramsView } from './trial-table.js';

const UNITS = { s: 1, m: 60, h: 3600, d: 86400 };
// Trial counts the overview shows only when some trial has that status.
const RARE_STATUSES = new Set([TRIAL_STATUS.SYS_CANCELED, TRIAL_STATUS.UNKNOWN]);

function trialCommand(params) {
  if (params.trialCommand) return params.trialCommand;
  const meta = (params.clusterMetaData || []).find((x) => x.key === 'trial_config');
  return meta?.value?.command || '—';
}

function platformOf(params) {
  if (params.trainingServicePlatform) return params.trainingServicePlatform;
  const ts = params.trainingService;
  if (Array.isArray(ts)) return ts.map((x) => x.platform).join(', ');
  return ts?.platform || '—';
}

function algorithmOf(params) {
  for (const kind of ['advisor', 'tuner']) {
    const a = params[kind];
    if (a) return `${a.builtinTunerName || a.builtinAdvisorName || a.name || a.className || 'custom'}${kind === 'advisor' ? ' (advisor)' : ''}`;
  }
  return '—';
}

function bestBox(value, label, cls) {
  return el(`div.stat-box.${cls}`, el('div.stat-value', value), el('div.stat-label', label));
}

/** One editable experiment parameter: shows the value; the pencil swaps in an input. */
function editable({ label, value, display, testid, parse, save, refreshAfter, unit = false, tip, readOnly = false }) {
  const wrap = el('div.editable', { dataset: { testid } });
  const view = () => {
    fill(wrap,
      el('span.editable-label', { title: tip || '' }, label),
      el('span.editable-value', { dataset: { testid: `${testid}-value` } }, display),
      readOnly ? null : el('button.icon-btn', { type: 'button', title: `Edit ${label.toLowerCase()}`, dataset: { testid: `${testid}-edit` }, onclick: edit }, icon('edit')));
  };
  const edit = () => {
    const input = el('input.inline-input', { type: 'number', min: '0', step: 'any', value: unit ? value.amount : value, dataset: { testid: `${testid}-input` } });
    const unitSelect = unit ? el('select.inline-select', Object.keys(UNITS).map((u) => el('option', { value: u, selected: u === value.unit }, u))) : null;
    const submit = async () => {
      let parsed;
      try { parsed = parse(input.value, unitSelect?.value); } catch (err) { toast(err.message, 'error'); return; }
      try {
        await save(parsed);
        view(); // close the editor first: the refresh below redraws the whole card
        toast(`${label} updated`);
        await refreshAfter();
      } catch (err) {
        toast(err.message, 'error', 8000);
      }
    };
    input.addEventListener('keydown', (e) => { if (e.key === 'Enter') submit(); if (e.key === 'Escape') view(); });
    fill(wrap, el('span.editable-label', label), input, unitSelect,
      el('button.icon-btn.ok', { type: 'button', title: 'Save', dataset: { testid: `${testid}-save` }, onclick: submit }, icon('check')),
      el('button.icon-btn', { type: 'button', title: 'Cancel', onclick: view }, icon('close')));
    input.focus();
    input.select();
  };
  view();
  return wrap;
}

function positiveInt(text, field) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${field} must be a whole number ≥ 1, got "${text}"`);
  return n;
}

function splitDuration(seconds) {
  if (!seconds || !isFinite(seconds)) return { amount: '', unit: 'h' };
  for (const u of ['d', 'h', 'm']) if (seconds % UNITS[u] === 0) return { amount: seconds / UNITS[u], unit: u };
  return { amount: seconds, unit: 's' };
}

function ring(fraction, center, sub) {
  const r = 52, c = 2 * Math.PI * r;
  const f = Math.max(0, Math.min(1, fraction || 0));
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 128 128');
  svg.setAttribute('class', 'ring');
  svg.innerHTML = `<circle cx="64" cy="64" r="${r}" class="ring-bg"/>`
    + (f > 0 ? `<circle cx="64" cy="64" r="${r}" class="ring-fg" stroke-dasharray="${(c * f).toFixed(1)} ${c.toFixed(1)}" transform="rotate(-90 64 64)"/>` : '');
  return el('div.ring-wrap', svg, el('div.ring-text', el('div.ring-main', center), el('div.ring-sub', sub)));
}

export class OverviewPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.sortMode = localStorage.getItem('nni.top.mode') || null; // null: follow optimize_mode
    this.topN = Number(localStorage.getItem('nni.top.n') || 10);
    this.expanded = new Set();
  }

  mount(node) {
    this.node = node;
    this.left = el('div.ov-left');
    this.right = el('div.ov-right');
    node.append(el('div.overview-grid', this.left, this.right));
    this.chart = el('div.chart', { style: { minHeight: '320px' } });
  }

  update(model) {
    if (!model.profile) return;
    this.renderLeft(model);
    return this.renderTop(model);
  }

  async saveParam(model, updateType, field, value) {
    // only the changed field: the whole profile carries the search space (up to 50 MB) twice
    const body = { params: { [field]: value } };
    await api.call('update_experiment_profile', { query: { update_type: updateType }, body });
  }

  renderLeft(model) {
    const p = model.profile;
    const params = p.params || {};
    const status = model.status?.status || TRIAL_STATUS.UNKNOWN;
    const errors = model.status?.errors || [];
    const warnings = model.status?.warnings || [];  // transient (e.g. a dispatcher not answering): gone once resolved
    const best = model.best();
    const counts = model.counts();
    const total = model.trials.length;
    const now = Date.now();
    const elapsed = p.execDuration ?? (p.startTime ? (now - p.startTime) / 1000 : 0);
    const maxDuration = params.maxExecDuration;
    const maxTrials = params.maxTrialNum;
    const remaining = maxDuration ? Math.max(0, maxDuration - elapsed) : null;
    const finished = total - UNFINISHED_TRIAL_STATUSES.reduce((n, s) => n + (counts[s] || 0), 0);

    const info = el('div.card.exp-card',
      el('div.exp-head',
        el('div.exp-icon', icon('logo')),
        el('div',
          el('div.exp-name', { dataset: { testid: 'exp-name' } }, params.experimentName || 'Experiment'),
          el('button.chip.chip-btn', { type: 'button', title: 'Copy experiment id', onclick: () => copyText(p.id, 'Experiment id copied') }, el('span', { dataset: { testid: 'exp-id' } }, p.id), icon('copy')))),
      el('div.stat-row',
        bestBox(el('span', { dataset: { testid: 'exp-status' } }, status), 'Status', `st-box-${status.toLowerCase()}`),
        bestBox(el('span', { dataset: { testid: 'best-metric' } }, best ? formatNumber(best.finalDefault) : '—'),
          best ? `Best metric (${model.optimizeMode === 'minimize' ? 'min' : 'max'}), trial ${best.seq}` : 'Best metric', 'best-box')),
      errors.length ? el('div.error-box', { dataset: { testid: 'exp-error' } },
        el('div.error-title', icon('alert'), el('b', 'Error')),
        errors.map((e) => el('pre.error-text', e)),
        el('div', 'Learn about: ', el('a', { href: '#', onclick: (e) => { e.preventDefault(); showLogs('nnimanager.log'); } }, 'NNI manager log'), ' · ',
          el('a', { href: '#', onclick: (e) => { e.preventDefault(); showLogs('dispatcher.log'); } }, 'dispatcher log'))) : null,
      warnings.length ? el('div.warning-box', { dataset: { testid: 'exp-warning' } },
        el('div.error-title', icon('alert'), el('b', 'Warning')),
        warnings.map((w) => el('pre.error-text', w)),
        el('div', 'Learn about: ', el('a', { href: '#', onclick: (e) => { e.preventDefault(); showLogs('dispatcher.log'); } }, 'dispatcher log'))) : null,
      el('dl.info-list',
        infoRow('folder', 'Experiment directory', p.logDir, true),
        infoRow('terminal', 'Trial command', trialCommand(params), true),
        infoRow('platform', 'Training platform', platformOf(params)),
        infoRow('tuner', 'Tuner', algorithmOf(params)),
        params.assessor ? infoRow('chart', 'Assessor', params.assessor.builtinAssessorName || params.assessor.name || params.assessor.className || 'custom') : null));

    const durationCard = el('div.card',
      el('h2.card-title', icon('clock'), 'Duration'),
      el('div.duration-body',
        ring(maxDuration ? elapsed / maxDuration : 0, formatDuration(elapsed), maxDuration ? `of ${formatDuration(maxDuration)}` : 'no limit'),
        el('dl.kv',
          el('dt', 'Remaining'), el('dd', { dataset: { testid: 'remaining' } }, remaining === null ? 'no limit' : formatDuration(remaining)),
          el('dt', 'Start'), el('dd.nowrap', formatTime(p.startTime)),
          el('dt', 'End'), el('dd.nowrap', formatTime(p.endTime)))),
      editable({
        label: 'Max duration', testid: 'edit-duration', unit: true, value: splitDuration(maxDuration),
        display: maxDuration ? formatDuration(maxDuration) : 'unlimited',
        parse: (text, unit) => {
          const n = Number(text);
          if (!Number.isFinite(n) || n <= 0) throw new Error(`Max duration must be a positive number, got "${text}"`);
          return Math.round(n * UNITS[unit]);
        },
        save: (v) => this.saveParam(model, UPDATE_TYPE.MAX_EXEC_DURATION, 'maxExecDuration', v), refreshAfter: () => this.ctx.refresh(), readOnly: model.readOnly,
      }));

    const statusOrder = TRIAL_STATUSES.filter((s) => counts[s]);
    const trialsCard = el('div.card',
      el('h2.card-title', icon('detail'), 'Trial numbers'),
      el('div.progress', { title: `${finished} finished of ${maxTrials || total}` },
        statusOrder.map((s) => el('div.progress-seg', { style: { width: `${(100 * counts[s]) / Math.max(maxTrials || 0, total, 1)}%`, background: COLORS.status[s] } }))),
      el('div.count-grid', TRIAL_STATUSES.filter((s) => counts[s] || !RARE_STATUSES.has(s)).map((s) => el('div.count',
        { dataset: { testid: `count-${s}` } },
        el('span.dot', { style: { background: COLORS.status[s] } }),
        el('span.count-label', s.replace('_', ' ').toLowerCase()),
        el('span.count-value', String(counts[s] || 0))))),
      el('div.count-total', el('span', 'Total'), el('b', { dataset: { testid: 'count-total' } }, String(total)), el('span.muted', maxTrials ? ` / ${maxTrials} max` : '')),
      editable({
        label: 'Max trial number', testid: 'edit-max-trials', value: maxTrials ?? '', display: maxTrials ?? 'unlimited',
        parse: (text) => positiveInt(text, 'Max trial number'),
        save: (v) => this.saveParam(model, UPDATE_TYPE.MAX_TRIAL_NUM, 'maxTrialNum', v), refreshAfter: () => this.ctx.refresh(), readOnly: model.readOnly,
      }),
      editable({
        label: 'Concurrency', testid: 'edit-concurrency', value: params.trialConcurrency ?? 1, display: String(params.trialConcurrency ?? 1),
        tip: 'How many trials run at the same time',
        parse: (text) => positiveInt(text, 'Concurrency'),
        save: (v) => this.saveParam(model, UPDATE_TYPE.TRIAL_CONCURRENCY, 'trialConcurrency', v), refreshAfter: () => this.ctx.refresh(), readOnly: model.readOnly,
      }));

    // Keep an open inline editor across refreshes.
    if (this.left.querySelector('.editable input')) return;
    fill(this.left, info, durationCard, trialsCard);
  }

  topTrials(model) {
    const mode = this.sortMode || model.optimizeMode;
    const sign = mode === 'minimize' ? 1 : -1;
    const n = this.topN;
    // The best n in one pass (n <= 100), not a sort of every trial.
    const top = [];
    for (const t of model.trials) {
      const v = model.metricOf(t);
      if (v === undefined) continue;
      if (top.length === n && sign * (v - top[n - 1].finalDefault) >= 0) continue;
      let i = top.length;
      while (i > 0 && sign * (v - top[i - 1].finalDefault) < 0) i--;
      top.splice(i, 0, t);
      if (top.length > n) top.pop();
    }
    return top;
  }

  renderTop(model) {
    const mode = this.sortMode || model.optimizeMode;
    const top = this.topTrials(model);
    const setMode = (m) => { this.sortMode = m; localStorage.setItem('nni.top.mode', m); this.renderTop(model); };
    const head = el('div.card-head',
      el('h2.card-title', icon('trophy'), 'Top trials', el('span.muted.count-pill', String(top.length))),
      el('div.toolbar',
        el('div.segmented',
          el('button', { type: 'button', class: mode === 'maximize' ? 'active' : '', onclick: () => setMode('maximize'), dataset: { testid: 'top-max' } }, 'Maximal'),
          el('button', { type: 'button', class: mode === 'minimize' ? 'active' : '', onclick: () => setMode('minimize'), dataset: { testid: 'top-min' } }, 'Minimal')),
        el('label.inline', 'Display top ',
          el('select', { onchange: (e) => { this.topN = Number(e.target.value); localStorage.setItem('nni.top.n', e.target.value); this.renderTop(model); } },
            [5, 10, 20, 50, 100].map((n) => el('option', { value: n, selected: n === this.topN }, String(n)))))));
    const rows = [];
    for (const t of top) {
      const open = this.expanded.has(t.id);
      rows.push(el('tr', { dataset: { trial: t.id } },
        el('td', el('button.icon-btn.expander', { type: 'button', title: open ? 'Collapse' : 'Show parameters', onclick: () => { open ? this.expanded.delete(t.id) : this.expanded.add(t.id); this.renderTop(model); } }, icon(open ? 'chevronDown' : 'chevronRight'))),
        el('td', String(t.seq)), el('td', el('code', t.id)), el('td', formatDuration(t.duration)),
        el('td', statusBadge(t.status)), el('td.num', { dataset: { testid: 'top-metric' } }, formatNumber(t.finalDefault))));
      if (open) rows.push(el('tr.expanded-row', el('td', { colSpan: 6 }, paramsView(t))));
    }
    const table = el('table.table',
      el('thead', el('tr', ['', 'Trial No.', 'ID', 'Duration', 'Status', 'Default metric'].map((h) => el('th', h)))),
      el('tbody', rows.length ? rows : el('tr', el('td.empty', { colSpan: 6 }, 'No trial has a final result yet.'))));
    if (!this.topCard) {
      this.topCard = el('div.card.top-card');
      this.right.append(this.topCard);
    }
    fill(this.topCard, head, this.chart, el('div.table-scroll', table));
    return topTrialsChart(this.chart, top);
  }

  unmount() {}
}

function infoRow(iconName, label, value, copyable = false) {
  return el('div.info-row',
    el('div.info-icon', icon(iconName)),
    el('div.info-main', el('dt', label), el('dd', { title: value || '' }, value || '—',
      copyable && value ? el('button.icon-btn.tiny', { type: 'button', title: `Copy ${label.toLowerCase()}`, onclick: () => copyText(value, `${label} copied`) }, icon('copy')) : null)));
}

