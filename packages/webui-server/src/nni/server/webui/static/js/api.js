// REST client of the web UI. Every path is relative to the page's <base href>, which the
// server sets to its URL prefix, so the UI works behind `--url_prefix` unchanged.
// Routes are called by name: their methods and paths come from the server's route table
// (constants.js, generated from nni.runtime.rest_api.ROUTES), so the UI types no REST path.
import { API_ROOT, ROUTES } from './constants.js';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function route(name) {
  const r = ROUTES[name];
  if (!r) throw new Error(`no REST route named ${name}`);
  return r;
}

/** URL of route `name` with its `{placeholders}` filled from `params` and a query string. */
function path(name, params = {}, query = {}) {
  let p = route(name).path.replace(/\{(\w+)\}/g, (_, key) => {
    if (params[key] === undefined) throw new Error(`route ${name} needs path parameter ${key}`);
    return encodeURIComponent(params[key]);
  });
  const q = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== null));
  if ([...q].length) p += `?${q}`;
  return new URL(`${API_ROOT}/${p}`, document.baseURI).toString();
}

async function request(method, url, body, text = false) {
  const init = { method, headers: { Accept: text ? 'text/plain' : 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, `Cannot reach the NNI manager (${err.message}); is the experiment still running?`);
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const payload = await response.json();
      if (payload && payload.error) message = payload.error;
    } catch { /* not JSON */ }
    throw new ApiError(response.status, message);
  }
  if (text) return response.text();
  const raw = await response.text();
  return raw ? parseJson(raw) : null;
}

/** JSON.parse that also accepts the NaN / Infinity tokens Python's json module writes. */
export function parseJson(raw) {
  try {
    return JSON.parse(raw);
  } catch (err) {
    const fixed = raw.replace(/(?<=[:,\[]\s*)(-?Infinity|NaN)(?=\s*[,\]}])/g, '"__nni_$1__"');
    return JSON.parse(fixed, (k, v) => {
      if (v === '__nni_NaN__') return NaN;
      if (v === '__nni_Infinity__') return Infinity;
      if (v === '__nni_-Infinity__') return -Infinity;
      return v;
    });
  }
}

export const api = {
  path,
  /** Call route `name` (see nni.runtime.rest_api.ROUTES); `text`: answer as text, not JSON. */
  call: (name, { params = {}, query = {}, body, text = false } = {}) =>
    request(route(name).method, path(name, params, query), body, text),
};
