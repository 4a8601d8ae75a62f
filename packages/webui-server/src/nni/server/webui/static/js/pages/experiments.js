// All experiments page: this machine's experiments registry, filtered by status and text.
import { api } from '../api.js';
import { icon } from '../icons.js';
import { ENDED_EXPERIMENT_STATUSES, EXPERIMENT_STATUS, EXPERIMENT_STATUSES } from '../constants.js';
import { el, fill, formatTime, formatDuration, copyText } from '../ui.js';

// Filter chips: running experiments first, then the server's order.
const STATUS_ORDER = [...new Set([EXPERIMENT_STATUS.RUNNING, ...EXPERIMENT_STATUSES])];
// No manager serves these (a viewed one is served read-only by `nnictl view`, not linked).
const NOT_LINKED = new Set([...ENDED_EXPERIMENT_STATUSES, EXPERIMENT_STATUS.VIEWED]);

export class ExperimentsPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.filter = new Set();
    this.text = '';
    this.sort = { key: 'startTime', dir: -1 };
    this.items = [];
  }

  mount(node) {
    this.node = node;
    this.chips = el('div.status-chips');
    this.tableHost = el('div.table-scroll');
    const search = el('input.search-text', { type: 'search', placeholder: 'search name or id', dataset: { testid: 'exp-search' }, oninput: (e) => { this.text = e.target.value; this.render(); } });
    node.append(el('div.card',
      el('div.card-head', el('h2.card-title', icon('experiments'), 'All experiments', el('span.muted.count-pill', { dataset: { testid: 'exp-count' } }, ''))),
      el('div.table-toolbar', el('div.toolbar', el('div.search-box', icon('search'), search), this.chips)),
      this.tableHost));
  }

  async update() {
    try {
      const items = await api.call('get_experiments_info');
      this.items = Array.isArray(items) ? items : [];
      this.error = null;
    } catch (err) {
      this.error = err.message;
    }
    this.render();
  }

  render() {
    const counts = {};
    for (const x of this.items) counts[x.status] = (counts[x.status] || 0) + 1;
    const statuses = [...new Set([...STATUS_ORDER.filter((s) => counts[s]), ...Object.keys(counts)])];
    fill(this.chips, el('span.muted', { title: 'Filter by status (several may be chosen)' }, icon('filter')),
      statuses.map((s) => el('button.chip.filter-chip', {
        type: 'button', class: this.filter.has(s) ? 'on' : '', dataset: { testid: `exp-filter-${s}` },
        onclick: () => { this.filter.has(s) ? this.filter.delete(s) : this.filter.add(s); this.render(); },
      }, `${s} ${counts[s]}`)));
    const q = this.text.trim().toLowerCase();
    let rows = this.items.filter((x) => (!this.filter.size || this.filter.has(x.status))
      && (!q || String(x.id).toLowerCase().includes(q) || String(x.experimentName || '').toLowerCase().includes(q)));
    const { key, dir } = this.sort;
    rows = rows.slice().sort((a, b) => dir * (a[key] === b[key] ? 0 : (a[key] ?? '') > (b[key] ?? '') ? 1 : -1));
    this.node.querySelector('[data-testid="exp-count"]').textContent = String(rows.length);
    const current = this.ctx.model.profile?.id;
    const cols = [
      ['experimentName', 'Name'], ['id', 'ID'], ['status', 'Status'], ['port', 'Port'], ['platform', 'Platform'],
      ['startTime', 'Start time'], ['endTime', 'End time'], [null, 'Duration'],
    ];
    const head = el('tr', cols.map(([k, label]) => el('th', {
      class: k ? 'sortable' : '', onclick: k ? () => { this.sort = { key: k, dir: this.sort.key === k ? -this.sort.dir : 1 }; this.render(); } : undefined,
    }, label, k ? icon(this.sort.key === k ? (this.sort.dir > 0 ? 'sortAsc' : 'sortDesc') : 'sortNone', 'sort-icon') : null)));
    const body = rows.map((x) => {
      const live = x.status && !NOT_LINKED.has(x.status) && x.port;
      let idCell;
      if (x.id === current) {
        idCell = el('a', { href: 'oview', dataset: { link: 'oview' } }, el('code', x.id), el('span.chip.here', 'this'));
      } else if (live) {
        idCell = el('a', { href: `${location.protocol}//${location.hostname}:${x.port}${x.prefixUrl ? '/' + String(x.prefixUrl).replace(/^\/|\/$/g, '') : ''}/oview`, target: '_blank', rel: 'noopener' }, el('code', x.id), icon('external', 'tiny'));
      } else {
        idCell = el('button.link', { type: 'button', title: 'Copy the command that opens this experiment', onclick: () => copyText(`nnictl view ${x.id}`, `"nnictl view ${x.id}" copied`) }, el('code', x.id));
      }
      const end = x.endTime || (live ? Date.now() : null);
      return el('tr', { dataset: { exp: x.id } },
        el('td', x.experimentName || '—'), el('td', idCell),
        el('td', el(`span.badge.exp-st-${String(x.status || '').toLowerCase()}`, x.status || '—')),
        el('td', x.port ? String(x.port) : '—'), el('td', x.platform || '—'),
        el('td', formatTime(x.startTime)), el('td', formatTime(x.endTime)),
        el('td', x.startTime && end ? formatDuration((end - x.startTime) / 1000) : '—'));
    });
    fill(this.tableHost, 
      this.error ? el('div.error-box', icon('alert'), this.error) : null,
      el('table.table', { dataset: { testid: 'experiments-table' } }, el('thead', head),
        el('tbody', body.length ? body : el('tr', el('td.empty', { colSpan: cols.length }, this.items.length ? 'No experiment matches the filter.' : 'No experiment on this machine yet.')))));
  }

  unmount() {}
}

