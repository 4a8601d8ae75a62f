// Small DOM helpers shared by every page: element builder, modal, toast, formatting.
import { icon } from './icons.js';
import { TRIAL_STATUS, TRIAL_STATUSES as SERVER_TRIAL_STATUSES } from './constants.js';

/**
 * Build an element: el('div.card#top', {onclick, title, dataset: {...}}, child, 'text', [more]).
 * Falsy children are skipped; arrays are flattened.
 */
export function el(spec, attrs, ...children) {
  const m = /^([a-z0-9-]+)?((?:[.#][\w-]+)*)$/i.exec(spec);
  const node = document.createElement((m && m[1]) || 'div');
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === '.') node.classList.add(part.slice(1));
      else node.id = part.slice(1);
    }
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else if (key === 'style' && typeof value === 'object') Object.assign(node.style, value);
      else if (key === 'class') node.className += ' ' + value;
      else if (key in node && typeof value !== 'string') node[key] = value;
      else node.setAttribute(key, value === true ? '' : value);
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

/** A button with an optional icon. */
export function button(label, { iconName, onClick, kind = '', title, disabled, testid } = {}) {
  return el(`button.btn${kind ? '.btn-' + kind : ''}`, {
    type: 'button', title: title || undefined, disabled: !!disabled,
    onclick: onClick, dataset: testid ? { testid } : undefined,
  }, iconName ? icon(iconName) : null, label ? el('span', label) : null);
}

/** Replace the children of `node` (arrays flattened, falsy values skipped). */
export function fill(node, ...children) {
  clear(node);
  append(node, children);
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

// ---------------------------------------------------------------- formatting

/** Seconds → "1h 2m 3s" (compact, at most two units). */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return '—';
  let s = Math.max(0, Math.round(seconds));
  const units = [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]];
  const parts = [];
  for (const [name, size] of units) {
    if (s >= size || (name === 's' && parts.length === 0)) {
      parts.push(`${Math.floor(s / size)}${name}`);
      s %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

export function formatTime(ms) {
  if (!ms) return '—';
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A metric value for display: numbers with 6 significant decimals, anything else as text. */
export function formatNumber(v) {
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'NaN';
    if (!isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
    if (Number.isInteger(v)) return String(v);
    const abs = Math.abs(v);
    if (abs !== 0 && (abs < 1e-4 || abs >= 1e9)) return v.toExponential(4);
    return String(Number(v.toFixed(6)));
  }
  if (v === null || v === undefined) return '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function formatValue(v) {
  if (typeof v === 'number') return formatNumber(v);
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '—';
  return JSON.stringify(v);
}

/** Render a value as Python source (dicts, lists, strings, numbers, booleans, None). */
export function toPython(v, indent = 0) {
  const pad = '    '.repeat(indent + 1);
  const end = '    '.repeat(indent);
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return "float('nan')";
    if (!isFinite(v)) return v > 0 ? "float('inf')" : "float('-inf')";
    return String(v);
  }
  if (typeof v === 'string') return "'" + v.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n') + "'";
  if (Array.isArray(v)) {
    if (!v.length) return '[]';
    return `[\n${v.map((x) => pad + toPython(x, indent + 1)).join(',\n')},\n${end}]`;
  }
  const entries = Object.entries(v);
  if (!entries.length) return '{}';
  return `{\n${entries.map(([k, x]) => `${pad}${toPython(k)}: ${toPython(x, indent + 1)}`).join(',\n')},\n${end}}`;
}

// ---------------------------------------------------------------- status colours

/** The server's trial statuses, the unknown one last (filters, counts and charts list it after the others). */
export const TRIAL_STATUSES = [...SERVER_TRIAL_STATUSES.filter((s) => s !== TRIAL_STATUS.UNKNOWN), TRIAL_STATUS.UNKNOWN];

export function statusBadge(status) {
  const shown = status || TRIAL_STATUS.UNKNOWN;
  return el(`span.badge.st-${String(shown).toLowerCase()}`, { dataset: { status } }, shown);
}

// ---------------------------------------------------------------- clipboard / download

export async function copyText(text, what = 'Copied') {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Clipboard API needs a secure context; fall back to a hidden textarea.
    const area = el('textarea', { style: { position: 'fixed', left: '-9999px' } }, text);
    document.body.append(area);
    area.select();
    try { document.execCommand('copy'); } catch { /* nothing else to try */ }
    area.remove();
  }
  toast(`${what} to clipboard`);
}

export function downloadText(filename, text, type = 'application/json') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el('a', { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ---------------------------------------------------------------- toast

export function toast(message, kind = 'info', ms = 3500) {
  let host = document.getElementById('toasts');
  if (!host) {
    host = el('div#toasts');
    document.body.append(host);
  }
  const node = el(`div.toast.toast-${kind}`, { role: 'status' },
    icon(kind === 'error' ? 'alert' : 'check'), el('span', message));
  host.append(node);
  setTimeout(() => node.remove(), ms);
}

// ---------------------------------------------------------------- modal

/**
 * Open a modal dialog. `body` is a node (or a function returning one, given the close fn).
 * Returns {close, node}. Escape and the backdrop close it.
 */
export function openModal(title, body, { wide = false, footer = null, onClose = null, testid = null } = {}) {
  const backdrop = el('div.modal-backdrop');
  const close = () => {
    backdrop.remove();
    document.removeEventListener('keydown', onKey);
    if (onClose) onClose();
  };
  const onKey = (e) => { if (e.key === 'Escape') close(); };
  const content = typeof body === 'function' ? body(close) : body;
  const foot = typeof footer === 'function' ? footer(close) : footer;
  const dialog = el(`div.modal${wide ? '.modal-wide' : ''}`, { role: 'dialog', 'aria-label': title, dataset: testid ? { testid } : undefined },
    el('div.modal-head', el('h2', title),
      el('button.icon-btn', { type: 'button', title: 'Close', 'aria-label': 'Close', onclick: close }, icon('close'))),
    el('div.modal-body', content),
    foot ? el('div.modal-foot', foot) : null);
  backdrop.append(dialog);
  backdrop.addEventListener('mousedown', (e) => { if (e.target === backdrop) close(); });
  document.addEventListener('keydown', onKey);
  document.body.append(backdrop);
  return { close, node: dialog };
}

export function confirmDialog(title, message, okLabel = 'OK') {
  return new Promise((resolve) => {
    let answered = false;
    const m = openModal(title, el('p', message), {
      testid: 'confirm',
      footer: (close) => [
        button('Cancel', { onClick: () => { answered = true; close(); resolve(false); } }),
        button(okLabel, { kind: 'primary', testid: 'confirm-ok', onClick: () => { answered = true; close(); resolve(true); } }),
      ],
      onClose: () => { if (!answered) resolve(false); },
    });
    m.node.querySelector('.btn-primary').focus();
  });
}

/** A pre block with JSON, pretty-printed, plus copy / download buttons. */
export function codeViewer(text, filename) {
  return el('div.code-viewer',
    el('div.code-tools',
      button('Copy', { iconName: 'copy', onClick: () => copyText(text, 'Copied') }),
      filename ? button('Download', { iconName: 'download', onClick: () => downloadText(filename, text, 'text/plain') }) : null),
    el('pre.code', text));
}

/** Tabs: [{id, label, render: () => Node}] → node; the active tab's content is rendered lazily. */
export function tabs(items, { active, onChange, className = '' } = {}) {
  const bar = el(`div.tabs${className ? '.' + className : ''}`, { role: 'tablist' });
  const panel = el('div.tab-panel');
  let current = active || items[0].id;
  const show = (id) => {
    current = id;
    for (const b of bar.children) b.classList.toggle('active', b.dataset.tab === id);
    clear(panel);
    const item = items.find((x) => x.id === id);
    if (item) panel.append(item.render());
    if (onChange) onChange(id);
  };
  for (const item of items) {
    bar.append(el('button.tab', { type: 'button', role: 'tab', dataset: { tab: item.id }, onclick: () => show(item.id) },
      item.icon ? icon(item.icon) : null, item.label));
  }
  const node = el('div.tabs-wrap', bar, panel);
  show(current);
  return Object.assign(node, { show, get current() { return current; } });
}
