// Web UI shell: navigation, top bar, polling loop and page routing (history API, paths
// relative to the server's URL prefix: oview, detail, experiment).
import { icon } from './icons.js';
import { TRIAL_STATUS } from './constants.js';
import { el, fill, clear, button, toast } from './ui.js';
import { ExperimentModel } from './model.js';
import { OverviewPage } from './pages/overview.js';
import { DetailPage } from './pages/detail.js';
import { ExperimentsPage } from './pages/experiments.js';
import { showSearchSpace, showConfig, showLogs, showSummary, showAbout } from './dialogs.js';
import { plotlyReady, pageInteractive } from './charts.js';

const ROUTES = {
  oview: { title: 'Overview', icon: 'overview', Page: OverviewPage },
  detail: { title: 'Trials detail', icon: 'detail', Page: DetailPage },
  experiment: { title: 'All experiments', icon: 'experiments', Page: ExperimentsPage },
};
const INTERVALS = [[0, 'Off'], [5, '5 s'], [10, '10 s'], [20, '20 s'], [30, '30 s'], [60, '1 min']];

const basePath = new URL(document.baseURI).pathname;

function routeFromLocation() {
  let path = location.pathname.startsWith(basePath) ? location.pathname.slice(basePath.length) : location.pathname.replace(/^\//, '');
  path = path.replace(/\/$/, '');
  return ROUTES[path] ? path : 'oview';
}

class App {
  constructor() {
    this.model = new ExperimentModel();
    this.interval = Number(localStorage.getItem('nni.refresh') ?? 10);
    this.timer = null;
    this.page = null;
    this.route = null;
    this.ctx = { model: this.model, refresh: () => this.refresh(), navigate: (r) => this.navigate(r) };
    this.firstPaint = false;
  }

  start() {
    this.buildShell();
    window.addEventListener('popstate', () => this.show(routeFromLocation()));
    document.addEventListener('click', (e) => {
      const a = e.target.closest('a[data-link]');
      if (a && !e.metaKey && !e.ctrlKey) {
        e.preventDefault();
        this.navigate(a.dataset.link);
      }
    });
    document.addEventListener('visibilitychange', () => { if (!document.hidden) this.refresh(); });
    this.show(routeFromLocation());
    this.refresh();
    this.schedule();
    // Fetch plotly.js as soon as the page is interactive, even where no chart is shown yet.
    if (this.route !== 'experiment') plotlyReady().catch(() => {});
  }

  buildShell() {
    const nav = el('nav.sidebar',
      el('a.logo', { href: 'oview', dataset: { link: 'oview' }, title: 'NNI' }, icon('logo')),
      Object.entries(ROUTES).map(([id, r]) => el('a.nav-item', { href: id, dataset: { link: id, testid: `nav-${id}` }, title: r.title }, icon(r.icon), el('span.nav-label', r.title))),
      el('div.nav-spacer'),
      el('button.nav-item', { type: 'button', title: 'About', onclick: () => showAbout(this.model), dataset: { testid: 'nav-about' } }, icon('info'), el('span.nav-label', 'About')));
    this.title = el('h1.page-title');
    this.expChip = el('div.exp-chip');
    this.refreshBtn = button('Refresh', { iconName: 'refresh', testid: 'refresh', onClick: () => this.refresh(true) });
    const intervalSelect = el('select', { title: 'Auto refresh interval', dataset: { testid: 'refresh-interval' }, onchange: (e) => {
      this.interval = Number(e.target.value);
      localStorage.setItem('nni.refresh', String(this.interval));
      this.schedule();
    } }, INTERVALS.map(([v, label]) => el('option', { value: v, selected: v === this.interval }, label)));
    this.lastUpdate = el('span.muted.last-update');
    const tools = el('div.top-tools',
      el('div.tool-group',
        button('Search space', { iconName: 'searchSpace', testid: 'btn-search-space', onClick: () => showSearchSpace(this.model) }),
        button('Config', { iconName: 'config', testid: 'btn-config', onClick: () => showConfig(this.model) }),
        button('Logs', { iconName: 'log', testid: 'btn-logs', onClick: () => showLogs() }),
        button('Summary', { iconName: 'summary', testid: 'btn-summary', title: 'Experiment summary: review and download config, trials and metrics', onClick: () => showSummary(this.model) })),
      el('div.tool-group', this.refreshBtn, el('label.inline.refresh-select', icon('clock'), intervalSelect), this.lastUpdate));
    this.banner = el('div.banner', { hidden: true });
    this.content = el('main.content');
    document.body.append(nav, el('div.main', el('header.topbar', el('div.title-wrap', this.title, this.expChip), tools), this.banner, this.content));
  }

  navigate(route) {
    if (!ROUTES[route]) route = 'oview';
    if (route !== this.route) history.pushState({}, '', new URL(route, document.baseURI).pathname + location.search);
    this.show(route);
  }

  show(route) {
    if (this.route === route && this.page) return;
    if (this.page && this.page.unmount) this.page.unmount();
    this.route = route;
    const r = ROUTES[route];
    document.title = `${r.title} — NNI`;
    this.title.textContent = r.title;
    for (const a of document.querySelectorAll('.sidebar a.nav-item')) a.classList.toggle('active', a.dataset.link === route);
    clear(this.content);
    const node = el(`div.page.page-${route}`, { dataset: { page: route } });
    this.content.append(node);
    this.page = new r.Page(this.ctx);
    this.page.mount(node);
    if (this.model.loaded || route === 'experiment') this.renderPage();
  }

  schedule() {
    clearInterval(this.timer);
    if (this.interval > 0) this.timer = setInterval(() => { if (!document.hidden) this.refresh(); }, this.interval * 1000);
  }

  async refresh(manual = false) {
    if (this.refreshing) return this.refreshing;
    this.refreshBtn.classList.add('spinning');
    this.refreshing = (async () => {
      await this.model.refresh();
      this.renderChrome();
      await this.renderPage();
      if (manual && !this.model.error) toast('Refreshed');
    })().finally(() => {
      this.refreshing = null;
      this.refreshBtn.classList.remove('spinning');
    });
    return this.refreshing;
  }

  renderChrome() {
    const m = this.model;
    if (m.error) {
      this.banner.hidden = false;
      fill(this.banner, icon('alert'), el('span', m.error));
    } else {
      this.banner.hidden = true;
    }
    if (m.profile) {
      const status = m.status?.status || TRIAL_STATUS.UNKNOWN;
      fill(this.expChip, 
        el(`span.status-dot.exp-st-${status.toLowerCase()}`),
        el('span.exp-chip-name', m.profile.params?.experimentName || m.profile.id),
        el('code.muted', m.profile.id),
        el(`span.badge.exp-st-${status.toLowerCase()}`, { dataset: { testid: 'top-status' } }, status));
      this.lastUpdate.textContent = `updated ${new Date().toLocaleTimeString()}`;
    }
  }

  async renderPage() {
    if (!this.page) return;
    let drawn;
    try {
      drawn = this.page.update(this.model);
    } catch (err) {
      console.warn('page update failed', err);
    }
    if (!this.firstPaint && (this.model.loaded || this.route === 'experiment')) {
      this.firstPaint = true;
      if (this.route === 'experiment') { // its table is its data: wait for it
        try { await drawn; } catch { /* shown in the page */ }
      }
      performance.mark('nni-data-rendered'); // data fetched, table and numbers in the DOM
      // "Interactive": the table and numbers painted (the frame after they were built). Charts
      // come after: plotly.js is only requested now. The benchmark reads these marks.
      await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
      performance.mark('nni-interactive');
      document.body.dataset.ready = '1';
      pageInteractive();
      Promise.resolve(drawn).then(() => {
        performance.mark('nni-charts-drawn');
        document.body.dataset.charts = '1';
      }, () => {});
    }
    if (this.firstPaint) this.loadDetails();
    try {
      await drawn;
    } catch (err) {
      console.warn('chart failed', err);
    }
  }

  /** After the page is interactive: the trials' parameters, then the page again with them. */
  loadDetails() {
    if (!this.model.loaded || !this.model.detailsPending) return;
    this.model.loadDetails().then((added) => { if (added) this.renderPage(); }, (err) => console.warn('trial details', err));
  }
}

new App().start();
