// The experiment as the web UI sees it: polled from the REST API, parsed once per poll into
// compact trial records that every page and chart reads. Nothing here touches the DOM.
import { api, parseJson } from './api.js';
import { EXPERIMENT_STATUS, FINAL_TRIAL_STATUSES, METRIC_TYPE } from './constants.js';

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

function parseParameters(hyperParameters) {
  if (!hyperParameters || !hyperParameters.length) return { params: null, source: null, parameterId: null };
  const last = hyperParameters[hyperParameters.length - 1];
  let parsed = typeof last === 'string' ? parseMetric(last) : last;
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
      const [status, profile, jobs, latest, version] = await Promise.all([
        api.call('get_status'),
        api.call('get_experiment_profile'),
        api.call('list_trial_jobs'),
        api.call('get_metric_data_latest').catch(() => []),
        this.version === null ? api.call('get_version').catch(() => 'unknown') : this.version,
      ]);
      this.version = version;
      this.status = status;
      this.profile = profile;
      this.applySearchSpace(profile?.params?.searchSpace);
      this.applyTrials(jobs || [], latest || []);
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

  applyTrials(jobs, latestMetrics) {
    const latestById = new Map();
    for (const m of latestMetrics) {
      if (m.type === 'PERIODICAL') latestById.set(m.trialJobId, m);
    }
    const old = this.byId;
    const trials = new Array(jobs.length);
    const now = Date.now();
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i];
      const latest = latestById.get(job.trialJobId);
      const finalRaw = job.finalMetricData && job.finalMetricData.length ? job.finalMetricData[job.finalMetricData.length - 1].data : undefined;
      const prev = old.get(job.trialJobId);
      const key = `${job.status}|${job.platform || ''}|${job.endTime}|${finalRaw}|${latest ? latest.sequence + ':' + latest.data : ''}|${(job.hyperParameters || []).length}`;
      let t;
      if (prev && prev.key === key) {
        t = prev;
      } else {
        const { params, source, parameterId } = parseParameters(job.hyperParameters);
        const final = finalRaw === undefined ? undefined : parseMetric(finalRaw);
        const latestValue = latest ? parseMetric(latest.data) : undefined;
        t = {
          key,
          id: job.trialJobId,
          seq: job.sequenceId,
          status: job.status,
          startTime: job.startTime || null,
          endTime: job.endTime || null,
          message: job.message || '',
          params,
          flatParams: flattenParams(params),
          source,
          parameterId,
          final,
          finalDefault: defaultOf(final),
          latest: latestValue,
          latestDefault: defaultOf(latestValue),
          intermediateCount: latest ? latest.sequence + 1 : 0,
          logPath: job.logPath || '',
          stderrPath: job.stderrPath || '',
          platform: job.platform || '',
          raw: job,
        };
      }
      t.duration = t.startTime ? ((t.endTime || (isFinished(t.status) ? t.startTime : now)) - t.startTime) / 1000 : null;
      trials[i] = t;
    }
    trials.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
    this.trials = trials;
    this.byId = new Map(trials.map((t) => [t.id, t]));
    for (const id of this.intermediate.keys()) {
      const t = this.byId.get(id);
      if (!t || !isFinished(t.status)) this.intermediate.delete(id);
    }
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
    const keys = new Set();
    for (const t of this.trials) {
      const v = t.final;
      if (v && typeof v === 'object' && !Array.isArray(v)) for (const k of Object.keys(v)) if (k !== 'default') keys.add(k);
    }
    return [...keys];
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
