// Dialogs shared by the pages: viewers (search space, config, logs, summary, trial files),
// and actions (customized trial, compare, TensorBoard, about).
import { api } from './api.js';
import { icon } from './icons.js';
import {
  el, fill, button, openModal, codeViewer, tabs, toast, copyText, downloadText,
  formatDuration, formatValue, statusBadge, toPython,
} from './ui.js';
import { intermediateLines } from './charts.js';
import { parseMetric, trialDetails } from './model.js';

export function showSearchSpace(model) {
  const text = JSON.stringify(model.searchSpace, null, 2);
  const viewer = codeViewer(text, 'search_space.json');
  const body = model.standardSpace === false
    ? el('div', el('p.muted', "Not in NNI's standard format: the tuner defines this space's format; shown as written."), viewer)
    : viewer;
  openModal('Search space', body, { wide: true, testid: 'search-space-dialog' });
}

export function showConfig(model) {
  const params = { ...(model.profile?.params || {}) };
  if (typeof params.searchSpace === 'string') {
    try { params.searchSpace = JSON.parse(params.searchSpace); } catch { /* keep the string */ }
  }
  const text = JSON.stringify(params, null, 2);
  openModal('Experiment config', codeViewer(text, 'experiment_config.json'), { wide: true, testid: 'config-dialog' });
}

const TAIL_LINES = 3000;

async function logPane(name) {
  const pane = el('div.log-pane', el('div.loading', 'Loading…'));
  const href = new URL(`logs/${name}`, document.baseURI).toString();
  try {
    const response = await fetch(href, { credentials: 'same-origin' });
    if (!response.ok) throw new Error(response.status === 404 ? `${name} does not exist yet.` : `${response.status} ${response.statusText}`);
    const text = await response.text();
    const lines = text.split('\n');
    const shown = lines.length > TAIL_LINES ? lines.slice(-TAIL_LINES).join('\n') : text;
    fill(pane, 
      el('div.code-tools',
        el('span.muted', lines.length > TAIL_LINES ? `Last ${TAIL_LINES} of ${lines.length} lines` : `${lines.length} lines`),
        el('label.wrap-toggle', el('input', { type: 'checkbox', checked: true, onchange: (e) => pre.classList.toggle('nowrap', !e.target.checked) }), ' Wrap lines'),
        el('a.btn', { href, download: name }, icon('download'), el('span', 'Download'))),
    );
    const pre = el('pre.code.log', shown || '(empty)');
    pane.append(pre);
    requestAnimationFrame(() => { pre.scrollTop = pre.scrollHeight; });
  } catch (err) {
    fill(pane, el('div.chart-empty', err.message));
  }
  return pane;
}

export function showLogs(initial = 'nnimanager.log') {
  const host = el('div');
  const make = (name) => () => {
    const holder = el('div', el('div.loading', 'Loading…'));
    logPane(name).then((pane) => holder.replaceChildren(pane));
    return holder;
  };
  host.append(tabs([
    { id: 'nnimanager.log', label: 'NNI manager log', render: make('nnimanager.log') },
    { id: 'dispatcher.log', label: 'Dispatcher log', render: make('dispatcher.log') },
  ], { active: initial }));
  openModal('Logs', host, { wide: true, testid: 'logs-dialog' });
}

/** Everything of the experiment in one JSON: profile, trials, intermediate metrics. */
async function buildSummary(model) {
  // NNI's trial records (the page itself keeps a compact form of them)
  const [jobs, metrics] = await Promise.all([api.call('list_trial_jobs'), api.call('get_metric_data')]);
  const byTrial = new Map();
  for (const m of metrics) {
    if (!byTrial.has(m.trialJobId)) byTrial.set(m.trialJobId, []);
    byTrial.get(m.trialJobId).push(m);
  }
  return {
    experimentParameters: model.profile,
    status: model.status,
    trialMessage: jobs.map((job) => ({
      ...job,
      intermediate: (byTrial.get(job.trialJobId) || []).filter((m) => m.type === 'PERIODICAL')
        .sort((a, b) => a.sequence - b.sequence).map((m) => parseMetric(m.data)),
    })),
  };
}

export function showSummary(model) {
  const body = el('div', el('div.loading', 'Collecting trials and metrics…'));
  openModal('Experiment summary', body, { wide: true, testid: 'summary-dialog' });
  buildSummary(model).then((summary) => {
    const full = JSON.stringify(summary, null, 2);
    const preview = JSON.stringify({ ...summary, trialMessage: summary.trialMessage.slice(0, 20) }, null, 2);
    fill(body, 
      el('p.muted', `Experiment config, ${summary.trialMessage.length} trials and their intermediate metrics.`
        + (summary.trialMessage.length > 20 ? ' The preview shows the first 20 trials; the download has all.' : '')),
      el('div.code-viewer',
        el('div.code-tools',
          button('Download summary', { iconName: 'download', kind: 'primary', testid: 'download-summary',
            onClick: () => downloadText(`experiment-${model.profile?.id || 'summary'}.json`, full) })),
        el('pre.code', preview)));
  }).catch((err) => fill(body, el('div.chart-empty', `Could not build the summary: ${err.message}`)));
}

export function showAbout(model) {
  openModal('About', el('div.about',
    el('div.about-logo', icon('logo')),
    el('h3', 'Neural Network Intelligence'),
    el('p', 'Version ', el('b', { dataset: { testid: 'version' } }, String(model.version ?? 'unknown'))),
    el('p.muted', 'Web UI served by the experiment manager; it needs no internet access.'),
    el('p.muted', 'Questions and bug reports: https://github.com/microsoft/nni/issues')), { testid: 'about-dialog' });
}

/** Show one of a trial's files (trial.log, stderr, stdout) from the trial-file route. */
export async function showTrialFile(trial, filename) {
  const body = el('div', el('div.loading', 'Loading…'));
  openModal(`Trial ${trial.seq} (${trial.id}) — ${filename}`, body, { wide: true, testid: 'trial-file-dialog' });
  try {
    const text = await api.call('get_trial_file', { params: { id: trial.id, filename }, text: true });
    const href = api.path('get_trial_file', { id: trial.id, filename });
    fill(body, el('div.code-viewer',
      el('div.code-tools', el('span.muted', trial.logPath ? `${trial.logPath}` : ''),
        el('a.btn', { href, download: `${trial.id}-${filename}` }, icon('download'), el('span', 'Download'))),
      el('pre.code.log', text || '(empty)')));
  } catch (err) {
    fill(body, el('div.chart-empty', err.status === 404 ? `${filename} does not exist for this trial (yet).` : err.message));
  }
}

// ---------------------------------------------------------------- customized trial

function inputFor(name, spec, value) {
  const type = spec?.type;
  if (type === 'choice' && Array.isArray(spec.values) && !spec.values.some((v) => v && typeof v === 'object')) {
    const select = el('select', { name });
    spec.values.forEach((v, i) => {
      select.append(el('option', { value: String(i), selected: JSON.stringify(v) === JSON.stringify(value) }, formatValue(v)));
    });
    return { node: select, read: () => spec.values[Number(select.value)] };
  }
  if (typeof value === 'number' || ['uniform', 'quniform', 'loguniform', 'qloguniform', 'normal', 'qnormal', 'lognormal', 'qlognormal', 'randint'].includes(type)) {
    const input = el('input', { type: 'number', step: 'any', name, value: value ?? '' });
    return {
      node: input,
      read: () => {
        if (input.value.trim() === '') throw new Error(`${name}: a number is required`);
        const v = Number(input.value);
        if (!Number.isFinite(v)) throw new Error(`${name}: "${input.value}" is not a number`);
        return v;
      },
    };
  }
  const input = el('input', { type: 'text', name, value: value === undefined ? '' : JSON.stringify(value), spellcheck: false });
  return {
    node: input,
    read: () => {
      try { return JSON.parse(input.value); } catch { throw new Error(`${name}: not valid JSON (strings need quotes)`); }
    },
  };
}

/** Edit a trial's parameters (or the search space's first values) and submit a new trial. */
export async function showCustomizeTrial(model, trial, onDone) {
  if (trial) await trialDetails(trial).catch(() => {}); // its parameters prefill the form
  const space = model.standardSpace === false ? {} : (model.searchSpace || {});
  const base = trial?.params || {};
  const names = [...new Set([...Object.keys(space), ...Object.keys(base)])];
  const fields = names.map((name) => {
    const raw = space[name];
    const spec = raw ? { type: raw._type, values: raw._value } : null;
    let value = base[name];
    if (value === undefined && spec) value = spec.type === 'choice' ? spec.values?.[0] : spec.values?.[0];
    return { name, spec, ...inputFor(name, spec, value) };
  });
  const error = el('div.form-error');
  const form = el('form.form-grid', { onsubmit: (e) => e.preventDefault() },
    fields.map((f) => el('label.field', el('span.field-name', f.name,
      f.spec ? el('span.muted', ` ${f.spec.type}`) : null), f.node)));
  const body = el('div',
    el('p.muted', trial ? `Start from the parameters of trial ${trial.seq} (${trial.id}); change any of them, then submit a new trial.`
      : 'Set the parameters of a new trial.'),
    form, error);
  openModal(trial ? `Customized trial from #${trial.seq}` : 'Add a customized trial', body, {
    testid: 'customize-dialog',
    footer: (close) => [
      button('Cancel', { onClick: close }),
      button('Submit', {
        kind: 'primary', iconName: 'play', testid: 'customize-submit',
        onClick: async () => {
          const params = {};
          try {
            for (const f of fields) params[f.name] = f.read();
          } catch (err) {
            error.textContent = err.message;
            return;
          }
          try {
            const result = await api.call('add_customized_trial', { body: { hyperParameters: params } });
            close();
            toast(`Customized trial submitted${result && result.sequenceId !== undefined ? ` (Trial No. ${result.sequenceId})` : ''}`);
            if (onDone) onDone();
          } catch (err) {
            error.textContent = err.message;
          }
        },
      }),
    ],
  });
}

export async function copyAsPython(trial) {
  try {
    await trialDetails(trial);
  } catch (err) {
    toast(err.message, 'error');
    return;
  }
  copyText(toPython(trial.params || {}), 'Parameters copied as Python');
}

// ---------------------------------------------------------------- compare

export function showCompare(model, trials) {
  const keys = [...new Set(trials.flatMap((t) => Object.keys(t.flatParams || {})))];
  const metricKeys = [...new Set(trials.flatMap((t) => (t.final && typeof t.final === 'object' ? Object.keys(t.final) : [])))].filter((k) => k !== 'default');
  const row = (label, f) => el('tr', el('th', label), trials.map((t) => el('td', f(t))));
  const table = el('table.compare-table',
    el('thead', el('tr', el('th', ''), trials.map((t) => el('th', `Trial ${t.seq}`)))),
    el('tbody',
      row('ID', (t) => el('code', t.id)),
      row('Status', (t) => statusBadge(t.status)),
      row('Duration', (t) => formatDuration(t.duration)),
      row('Default metric', (t) => formatValue(t.finalDefault ?? t.final)),
      metricKeys.map((k) => row(k, (t) => formatValue(t.final && typeof t.final === 'object' ? t.final[k] : undefined))),
      row('Intermediate count', (t) => String(t.intermediateCount)),
      keys.map((k) => row(k, (t) => formatValue(t.flatParams?.[k])))));
  const chart = el('div.chart', { style: { height: '320px' } }, el('div.loading', 'Loading intermediate results…'));
  openModal(`Compare ${trials.length} trials`, el('div', el('div.table-scroll', table), el('h3.section-title', 'Intermediate results'), chart), { wide: true, testid: 'compare-dialog' });
  model.loadIntermediate(trials.map((t) => t.id)).then((cache) => {
    chart.replaceChildren();
    intermediateLines(chart, trials.map((t) => ({ trial: t, points: cache.get(t.id) || [] })), { height: 320 });
  });
}

// ---------------------------------------------------------------- tensorboard

function tensorboardUrl(task) {
  return `${location.protocol}//${location.hostname}:${task.port}`;
}

export function showTensorboard(model, trials) {
  const body = el('div');
  const render = async () => {
    let tasks = [];
    try { tasks = await api.call('list_tensorboard_tasks'); } catch (err) { tasks = []; }
    fill(body, 
      trials.length ? el('p', `Start TensorBoard on the tensorboard/ logs of ${trials.length} selected trial(s): `,
        trials.map((t) => el('code.chip', `${t.seq}-${t.id}`))) : el('p.muted', 'Select trials in the table to start a TensorBoard on their logs.'),
      el('h3.section-title', 'Running TensorBoards'),
      tasks.length ? el('table.table.compact',
        el('thead', el('tr', ['ID', 'Status', 'Trials', 'Port', ''].map((h) => el('th', h)))),
        el('tbody', tasks.map((task) => el('tr',
          el('td', el('a', { href: tensorboardUrl(task), target: '_blank', rel: 'noopener' }, task.id)),
          el('td', task.status), el('td', (task.trialJobIdList || []).join(', ')), el('td', String(task.port ?? '—')),
          el('td', button('Stop', { iconName: 'stop', title: 'Stop this TensorBoard', onClick: async () => { await api.call('stop_tensorboard', { params: { id: task.id } }).catch((e) => toast(e.message, 'error')); render(); } })))))) : el('p.muted', 'None.'),
    );
  };
  render();
  openModal('TensorBoard', body, {
    wide: true, testid: 'tensorboard-dialog',
    footer: (close) => [
      button('Stop all TensorBoards', { iconName: 'stop', onClick: async () => { await api.call('stop_all_tensorboards').catch((e) => toast(e.message, 'error')); render(); } }),
      button('Close', { onClick: close }),
      button('Start', {
        kind: 'primary', iconName: 'play', disabled: !trials.length, testid: 'tensorboard-start',
        onClick: async () => {
          try {
            const task = await api.call('start_tensorboard', { body: { trials: trials.map((t) => t.id).join(',') } });
            toast(`TensorBoard ${task.id} starting on port ${task.port}`);
            render();
            if (task.port) setTimeout(() => window.open(tensorboardUrl(task), '_blank', 'noopener'), 1500);
          } catch (err) {
            toast(err.message, 'error', 8000);
          }
        },
      }),
    ],
  });
}

