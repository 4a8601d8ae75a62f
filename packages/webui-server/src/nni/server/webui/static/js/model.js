// The experiment as the web UI sees it: polled from the REST API, parsed once per poll into
// compact trial records that every page and chart reads. Nothing here touches the DOM.
import { api, parseJson } from './api.js';
import { EXPERIMENT_STATUS, FINAL_TRIAL_STATUSES, METRIC_TYPE, TRIAL_STATUS } from './constants.js';

/** Parse a metric `data` field: NNI stores the trial's JSON-encoded value, itself JSON-encoded. */
export function parseMetric(data) {
  let value = data;
  for (let i = 0; i < 3 && typeof value === 'string'; i++) {
    const text = value.trim();
    if (text === 'NaN') return NaN;
    if (text === 'Infinity') return Infinity;
    if (text === '-Infinity') return -Infinity;
    try {
      value = parseJson(text);
    } catch {
      break;
    }
  }
  return value;
}

/** The default metric of a parsed value: a number, `value.default`, or undefined. */
export function defaultOf(value) {
  if (typeof value === 'number') return value;
  if (value && typeof value === 'object' && !Array.isArray(value) && typeof value.default === 'number') return value.default;
  return undefined;
}

/** A finite number to plot, or undefined (NaN, strings and missing values are not plotted). */
export function plottable(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** A trial's parameter record (the dispatcher's, as text or already parsed) → its parts. */
function parseParameters(record) {
  if (record === null || record === undefined || record === '') return { params: null, source: null, parameterId: null };
  const parsed = typeof record === 'string' ? parseMetric(record) : record;
  if (parsed && typeof parsed === 'object' && 'parameters' in parsed) {
    return { params: parsed.parameters, source: parsed.parameter_source || null, parameterId: parsed.parameter_id };
  }
  return { params: parsed && typeof parsed === 'object' ? parsed : null, source: null, parameterId: null };
}

const FINISHED = new Set(FINAL_TRIAL_STATUSES);

export function isFinished(status) {
  return FINISHED.has(status);
}

/** Flatten nested parameters ({_name: ...} choices) into "a/b" keys for charts and columns. */
export function flattenParams(params, prefix = '', out = {}) {
  if (!params || typeof params !== 'object') return out;
  for (const [key, value] of Object.entries(params)) {
    const name = prefix ? `${prefix}/${key}` : key;
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      if ('_name' in value) out[name] = value._name;
      for (const [k, v] of Object.entries(value)) {
        if (k === '_name') continue;
        if (v && typeof v === 'object' && !Array.isArray(v)) flattenParams(v, `${name}/${k}`, out);
        else out[`${name}/${k}`] = v;
      }
    } else {
      out[name] = value;
    }
  }
  return out;
}

/**
 * True for NNI's standard format ({name: {_type, _value}}). A custom tuner's space may be any
 * JSON value (lists, its own layout); the UI then shows it as written and builds no columns from it.
 */
export function isStandardSearchSpace(space) {
  return !!space && typeof space === 'object' && !Array.isArray(space)
    && Object.values(space).every((spec) => !!spec && typeof spec === 'object' && !Array.isArray(spec) && typeof spec._type === 'string');
}

/** Search-space entries, flattened the same way: {name: {type, values|range}}. */
export function flattenSearchSpace(space, prefix = '', out = {}) {
  if (!space || typeof space !== 'object') return out;
  for (const [key, spec] of Object.entries(space)) {
    const name = prefix ? `${prefix}/${key}` : key;
    if (!spec || typeof spec !== 'object') continue;
    const type = spec._type;
    const values = spec._value;
    if (type === 'choice' && Array.isArray(values) && values.some((v) => v && typeof v === 'object' && '_name' in v)) {
      out[name] = { type: 'choice', values: values.map((v) => (v && typeof v === 'object' ? v._name : v)) };
      for (const option of values) {
        if (option && typeof option === 'object') {
          const sub = Object.fromEntries(Object.entries(option).filter(([k]) => k !== '_name'));
          flattenSearchSpace(sub, name, out);
        }
      }
    } else {
      out[name] = { type, values };
    }
  }
  return out;
}

/** Resolves with trial `t` once its details are loaded (fetched alone if loadDetails has not got to it). */
export async function trialDetails(t) {
  if (!t.details) {
    const job = await api.call('get_trial_job', { params: { id: t.id } });
    const dir = (job.logPath || '').replace(/^file:\/\/localhost:/, '');
    t.setDetails({ record: (job.hyperParameters || []).at(-1) ?? null, workdir: job.logPath ? dir : '' });
  }
  return t;
}

/** One trial as the pages read it (built by ExperimentModel.applyTable). */
class Trial {
  /** From column `i` of the trial list (see ExperimentModel.applyTable). */
  constructor(c, i) {
    const finalRaw = c.finalData[i];
    const latestRaw = c.latestData[i];
    const latestSeq = c.latestSequence[i];
    this.id = c.trialJobId[i];
    this.seq = c.sequenceId[i];
    this.status = c.status[i];
    this.startTime = c.startTime[i] || null;
    this.endTime = c.endTime[i] || null;
    this.message = c.message[i] || '';
    this.platform = c.platform[i] || '';
    this.final = finalRaw === null || finalRaw === undefined ? undefined : parseMetric(finalRaw);
    this.finalDefault = defaultOf(this.final);
    this.latest = latestRaw === null || latestRaw === undefined ? undefined : parseMetric(latestRaw);
    this.latestDefault = defaultOf(this.latest);
    this.latestSequence = latestSeq;
    this.intermediateCount = latestSeq === null || latestSeq === undefined ? 0 : latestSeq + 1;
    this.duration = null;
    this._flat = null;
    // Loaded after the table is shown (ExperimentModel.loadDetails): until then params is
    // undefined (null: the trial has none), logPath and stderrPath ''.
    this.details = null;
    this.params = undefined;
    this.source = null;
    this.parameterId = null;
    this.logPath = '';
    this.stderrPath = '';
  }

  /** Set the parameter record and working directory (`details`: {record, workdir}). */
  setDetails(details) {
    if (!details) return;
    const { params, source, parameterId } = parseParameters(details.record);
    Object.assign(this, { details, params, source, parameterId, _flat: null });
    const dir = details.workdir;
    this.logPath = dir ? `file://localhost:${dir}` : '';
    this.stderrPath = this.status === TRIAL_STATUS.FAILED && dir ? `file://localhost:${dir}/stderr` : '';
  }

  /** Parameters flattened to "a/b" keys, on first read: the table and the default-metric chart
   * of 100,000 trials need none, the hyper-parameter chart all. */
  get flatParams() {
    if (this._flat === null) this._flat = flattenParams(this.params);
    return this._flat;
  }
}

export class ExperimentModel {
  constructor() {
    this.profile = null;
    this.status = null;
    this.version = null;
    this.trials = [];            // sorted by sequenceId
    this.byId = new Map();
    this.searchSpace = {};
    this.flatSpace = {};
    this.standardSpace = true;
    this.error = null;           // last polling error (string) or null
    this.listeners = new Set();
    this.intermediate = new Map(); // trialJobId -> [{seq, value}], finished trials cached
    this.revision = 0;
    this.detailsRevision = 0;
    this.trialsRevision = 0;     // +1 when a poll changed some trial
    this.detailsLoading = null;
    this.loaded = false;
  }

  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit() {
    for (const fn of this.listeners) {
      try { fn(this); } catch (err) { console.warn('render failed', err); }
    }
  }

  /** A viewed (``nnictl view``) experiment is read-only: no edit, kill or new trial. */
  get readOnly() {
    return this.status?.status === EXPERIMENT_STATUS.VIEWED;
  }

  /** Hybrid mode: ``trainingService`` lists more than one platform (the trial table shows each trial's). */
  get hybrid() {
    const params = this.profile?.params || {};
    const ts = params.config?.trainingService ?? params.trainingService;
    return Array.isArray(ts) && ts.length > 1;
  }

  get optimizeMode() {
    const params = this.profile?.params || {};
    const algo = params.tuner || params.advisor || {};
    const mode = algo.classArgs?.optimize_mode || algo.classArgs?.optimizeMode;
    return mode === 'minimize' ? 'minimize' : 'maximize';
  }

  /** Poll every source once; on failure keep the last data and remember the error. */
  async refresh() {
    try {
      // The trial list in its compact column-wise form (GET trial-jobs?format=columns): every
      // trial with its last final and intermediate result, a fifth of NNI's list plus
      // metric-data-latest, parsed by one JSON.parse.
      const [status, profile, table, version] = await Promise.all([
        api.call('get_status'),
        api.call('get_experiment_profile'),
        api.call('list_trial_jobs', { query: { format: 'columns' } }),
        this.version === null ? api.call('get_version').catch(() => 'unknown') : this.version,
      ]);
      this.version = version;
      this.status = status;
      this.profile = profile;
      this.applySearchSpace(profile?.params?.searchSpace);
      this.applyTable(table);
      this.error = null;
      this.loaded = true;
    } catch (err) {
      this.error = err.message;
    }
    this.revision++;
    this.emit();
  }

  applySearchSpace(raw) {
    let space = raw;
    if (typeof space === 'string') {
      try { space = parseJson(space); } catch { space = {}; }
    }
    this.searchSpace = space ?? {};
    this.standardSpace = isStandardSearchSpace(this.searchSpace);
    this.flatSpace = this.standardSpace ? flattenSearchSpace(this.searchSpace) : {};
  }

  /** Build the trial records from the column-wise trial list; unchanged trials keep their record. */
  applyTable(table) {
    const c = table?.columns || {};
    const n = (c.trialJobId || []).length;
    const old = this.byId;
    const trials = new Array(n);
    const now = Date.now();
    let changed = n === this.trials.length ? 0 : 1;
    for (let i = 0; i < n; i++) {
      const id = c.trialJobId[i];
      const status = c.status[i];
      const finalRaw = c.finalData[i] ?? undefined;
      const latestSeq = c.latestSequence[i];
      const prev = old.size ? old.get(id) : undefined;
      let t;
      // Unchanged (compared field by field, no string built: 100,000 trials a poll): a final result
      // is reported once, the latest intermediate one grows with its sequence.
      if (prev && prev.status === status && prev.endTime === (c.endTime[i] || null) && prev.message === (c.message[i] || '')
          && prev.platform === (c.platform[i] || '') && (prev.final === undefined) === (finalRaw === undefined)
          && prev.latestSequence === latestSeq) {
        t = prev;
      } else {
        changed++;
        t = new Trial(c, i);
        if (prev) t.setDetails(prev.details);
      }
      t.duration = t.startTime ? ((t.endTime || (isFinished(t.status) ? t.startTime : now)) - t.startTime) / 1000 : null;
      trials[i] = t;
    }
    if (changed) this.trialsRevision++;
    this.trials = trials; // in sequence order (the server's)
    const byId = new Map();
    for (const t of trials) byId.set(t.id, t);
    this.byId = byId;
    for (const id of this.intermediate.keys()) {
      const t = this.byId.get(id);
      if (!t || !isFinished(t.status)) this.intermediate.delete(id);
    }
  }

  /** True while some trial's parameters are not loaded yet (see loadDetails). */
  get detailsPending() {
    return this.trials.some((t) => !t.details);
  }

  /**
   * Load the parameters and directories of the trials that lack them (new trials: the list is
   * in sequence order and only grows at its end). Resolves true when something was added.
   */
  async loadDetails() {
    if (this.detailsLoading) return this.detailsLoading;
    this.detailsLoading = (async () => {
      let offset = 0;
      while (offset < this.trials.length && this.trials[offset].details) offset++;
      if (offset >= this.trials.length) return false;
      const answer = await api.call('list_trial_jobs', { query: { format: 'details', offset } });
      const c = answer?.columns || {};
      const ids = c.trialJobId || [];
      for (let i = 0; i < ids.length; i++) {
        const t = this.byId.get(ids[i]);
        if (t) t.setDetails({ record: c.hyperParameter[i], workdir: c.workingDirectory[i] });
      }
      this.detailsRevision++;
      return ids.length > 0;
    })().finally(() => { this.detailsLoading = null; });
    return this.detailsLoading;
  }


  /** Metric value used for ranking: final default metric, else none. */
  metricOf(trial) {
    return plottable(trial.finalDefault);
  }

  /** Best trial by final default metric, honouring the tuner's optimize_mode. */
  best() {
    const sign = this.optimizeMode === 'minimize' ? -1 : 1;
    let best = null;
    for (const t of this.trials) {
      const v = this.metricOf(t);
      if (v === undefined) continue;
      if (!best || sign * v > sign * this.metricOf(best)) best = t;
    }
    return best;
  }

  counts() {
    const counts = {};
    for (const t of this.trials) counts[t.status] = (counts[t.status] || 0) + 1;
    return counts;
  }

  /** Keys of dict-valued final metrics (besides `default`), in first-seen order. */
  metricKeys() {
    if (this.metricKeysOf === this.trials) return this.metricKeysCache; // once per poll, not per column
    const keys = new Set();
    for (const t of this.trials) {
      const v = t.final;
      if (v && typeof v === 'object' && !Array.isArray(v)) for (const k of Object.keys(v)) if (k !== 'default') keys.add(k);
    }
    this.metricKeysOf = this.trials;
    this.metricKeysCache = [...keys];
    return this.metricKeysCache;
  }

  /** Intermediate results of the given trials; finished trials are fetched once. */
  async loadIntermediate(ids) {
    const missing = ids.filter((id) => !this.intermediate.has(id));
    if (!missing.length) return this.intermediate;
    if (missing.length > 50 && this.trials.length <= 2000) {
      const records = await api.call('get_metric_data', { query: { type: METRIC_TYPE.PERIODICAL } });
      const grouped = new Map();
      for (const r of records) {
        if (r.type !== 'PERIODICAL') continue;
        if (!grouped.has(r.trialJobId)) grouped.set(r.trialJobId, []);
        grouped.get(r.trialJobId).push({ seq: r.sequence, value: parseMetric(r.data) });
      }
      for (const t of this.trials) this.intermediate.set(t.id, (grouped.get(t.id) || []).sort((a, b) => a.seq - b.seq));
      return this.intermediate;
    }
    const queue = [...missing];
    const worker = async () => {
      while (queue.length) {
        const id = queue.shift();
        try {
          const records = await api.call('get_trial_metric_data', { params: { job_id: id }, query: { type: METRIC_TYPE.PERIODICAL } });
          this.intermediate.set(id, records.filter((r) => r.type === 'PERIODICAL')
            .map((r) => ({ seq: r.sequence, value: parseMetric(r.data) })).sort((a, b) => a.seq - b.seq));
        } catch {
          this.intermediate.set(id, []);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, queue.length) }, worker));
    return this.intermediate;
  }
}
