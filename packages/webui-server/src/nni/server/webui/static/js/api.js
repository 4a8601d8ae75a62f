// REST client of the web UI. Every path is relative to the page's <base href>, which the
// server sets to its URL prefix, so the UI works behind `--url_prefix` unchanged.
const API_ROOT = 'api/v1/nni';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function url(path) {
  return new URL(`${API_ROOT}/${path.replace(/^\//, '')}`, document.baseURI).toString();
}

async function request(method, path, body, { text = false } = {}) {
  const init = { method, headers: { Accept: text ? 'text/plain' : 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url(path), init);
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
  url,
  get: (path) => request('GET', path),
  getText: (path) => request('GET', path, undefined, { text: true }),
  post: (path, body) => request('POST', path, body),
  put: (path, body) => request('PUT', path, body),
  del: (path) => request('DELETE', path),
};
