// mirrord dashboard: plain JavaScript, no libraries, nothing fetched from
// outside the node. It reads the admin API with the operator's bearer
// token (kept in sessionStorage) and draws its charts as inline SVG.
// Every piece of data goes into the page as text (textContent or SVG
// attributes), never as HTML.
'use strict';
(function () {
  const SVGNS = 'http://www.w3.org/2000/svg';
  const TOKEN_KEY = 'mirrord.token';
  const APP_KEY = 'mirrord.app';
  const RANGE_KEY = 'mirrord.range';
  const query = new URLSearchParams(location.search);
  // ?poll=MS sets the refresh period (tests use a short one).
  const POLL_MS = Math.max(250, Number(query.get('poll')) || 3000);
  const MAX_POINTS = 600; // per rollout: 30 minutes at the default period
  const TABS = ['cluster', 'apps', 'rollouts', 'lookup', 'audit'];

  const st = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    access: '',
    tab: 'cluster',
    status: null,
    apps: [],
    app: sessionStorage.getItem(APP_KEY) || '',
    appData: null,
    history: null, // {app, range, h}: the app's hourly history answer
    range: sessionStorage.getItem(RANGE_KEY) === '7d' ? '7d' : '24h',
    series: new Map(), // rollout key -> [{t, installs, failures, downloads}]
    perNode: new Map(), // rollout key -> NodeCounters[]
    cards: new Map(), // rollout key -> card elements
    timer: 0,
    refreshing: null,
    signature: {},
    audit: null, // the audit log entries of the last 7 days
  };

  const $ = (id) => document.getElementById(id);

  // ---- DOM helpers ----

  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = String(v);
      else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    return e;
  }
  function el(tag, attrs, ...kids) {
    const e = setAttrs(document.createElement(tag), attrs);
    for (const k of kids.flat(Infinity)) if (k !== null && k !== undefined && k !== false) e.append(k);
    return e;
  }
  function svg(tag, attrs, ...kids) {
    const e = setAttrs(document.createElementNS(SVGNS, tag), attrs);
    for (const k of kids.flat(Infinity)) if (k !== null && k !== undefined && k !== false) e.append(k);
    return e;
  }
  function replace(node, ...kids) {
    node.replaceChildren(...kids.flat(Infinity).filter((k) => k !== null && k !== undefined && k !== false));
  }

  // ---- formatting ----

  const nf = new Intl.NumberFormat('en-US');
  const num = (n) => nf.format(n || 0);
  const pct = (x) => (100 * (x || 0)).toFixed(1) + '%';
  const bp = (b) => (b / 100).toFixed(2) + '%';
  function shortID(id) {
    return id && id.length > 16 ? id.slice(0, 8) + '\u2026' + id.slice(-6) : id || '';
  }
  function bytes(n) {
    if (!n) return '0 B';
    const u = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + ' ' + u[i];
  }
  function when(ms) {
    if (!ms) return '\u2014';
    return new Date(ms).toLocaleString();
  }
  function ago(t) {
    const s = (Date.now() - new Date(t).getTime()) / 1000;
    if (!isFinite(s)) return '\u2014';
    if (s < 1) return 'just now';
    if (s < 90) return s.toFixed(s < 10 ? 1 : 0) + ' s ago';
    if (s < 5400) return Math.round(s / 60) + ' min ago';
    return Math.round(s / 3600) + ' h ago';
  }
  const clock = (t) => new Date(t).toLocaleTimeString();
  const enc = encodeURIComponent;

  // ---- API ----

  class APIError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body) {
    const init = { method, headers: { Authorization: 'Bearer ' + st.token }, cache: 'no-store' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new APIError(0, 'network', 'cannot reach the node: ' + e.message);
    }
    let data = null;
    try { data = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) {
      const msg = (data && data.message) || 'the node answered HTTP ' + res.status;
      throw new APIError(res.status, (data && data.error) || 'http_' + res.status, msg);
    }
    return data;
  }

  // ---- flash messages and confirm dialog ----

  let flashTimer = 0;
  function flash(message, isError) {
    clearTimeout(flashTimer);
    $('flash-text').textContent = message;
    $('flash').classList.toggle('error', !!isError);
    $('flash').hidden = false;
    if (!isError) flashTimer = setTimeout(() => { $('flash').hidden = true; }, 8000);
  }

  function confirmAction(title, text, okLabel) {
    return new Promise((resolve) => {
      const modal = $('modal');
      $('modal-title').textContent = title;
      $('modal-text').textContent = text;
      $('modal-ok').textContent = okLabel || 'Confirm';
      modal.hidden = false;
      $('modal-cancel').focus();
      const done = (ok) => {
        modal.hidden = true;
        $('modal-ok').removeEventListener('click', yes);
        $('modal-cancel').removeEventListener('click', no);
        document.removeEventListener('keydown', key);
        resolve(ok);
      };
      const yes = () => done(true);
      const no = () => done(false);
      const key = (e) => { if (e.key === 'Escape') done(false); };
      $('modal-ok').addEventListener('click', yes);
      $('modal-cancel').addEventListener('click', no);
      document.addEventListener('keydown', key);
    });
  }

  // act runs a write after the operator confirms, then refreshes.
  async function act(title, text, okLabel, method, path, success) {
    if (!(await confirmAction(title, text, okLabel))) return;
    try {
      const out = await api(method, path);
      flash(success(out), false);
    } catch (e) {
      flash(okLabel + ' refused: ' + e.message, true);
      if (e.status === 401) signOut('The token is no longer accepted.');
    }
    await refreshNow();
  }

  // ---- sign in and out ----

  async function signIn(token) {
    st.token = token.trim();
    $('login-error').hidden = true;
    try {
      const who = await api('GET', '/admin/v1/auth');
      st.access = who.access;
    } catch (e) {
      st.token = '';
      $('login-error').textContent = e.status === 401 ? 'This token is not accepted by the node.' : e.message;
      $('login-error').hidden = false;
      showLogin();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, st.token);
    $('token-input').value = '';
    $('login').hidden = true;
    $('tabs').hidden = false;
    $('who').hidden = false;
    const badge = $('access-badge');
    badge.textContent = st.access === 'admin' ? 'admin' : st.access === 'publish' ? 'publish' : 'read-only';
    badge.className = 'badge ' + st.access;
    badge.title = (who.name ? 'Token "' + who.name + '": ' : '') +
      (st.access === 'admin' ? 'it can change the cluster.' : 'it can view but not change anything.');
    route();
    tick();
  }

  function signOut(message) {
    clearTimeout(st.timer);
    sessionStorage.removeItem(TOKEN_KEY);
    st.token = '';
    st.access = '';
    st.status = null;
    st.series.clear();
    st.perNode.clear();
    st.cards.clear();
    st.signature = {};
    replace($('rollouts'));
    if (message) {
      $('login-error').textContent = message;
      $('login-error').hidden = false;
    }
    showLogin();
  }

  function showLogin() {
    for (const t of TABS) $('view-' + t).hidden = true;
    $('tabs').hidden = true;
    $('who').hidden = true;
    $('login').hidden = false;
    $('token-input').focus();
  }

  // ---- routing and refresh ----

  function route() {
    if (!st.token) return;
    const tab = location.hash.slice(1);
    st.tab = TABS.includes(tab) ? tab : 'cluster';
    for (const t of TABS) $('view-' + t).hidden = t !== st.tab;
    for (const a of document.querySelectorAll('#tabs a')) a.classList.toggle('active', a.dataset.tab === st.tab);
    st.signature = {};
    render();
    refreshNow();
  }

  async function tick() {
    clearTimeout(st.timer);
    if (!st.token) return;
    if (!document.hidden) await refreshNow();
    if (st.token) st.timer = setTimeout(tick, POLL_MS);
  }

  function refreshNow() {
    if (!st.refreshing) {
      st.refreshing = refresh().finally(() => { st.refreshing = null; });
    }
    return st.refreshing;
  }

  async function refresh() {
    if (!st.token) return;
    try {
      st.status = await api('GET', '/admin/v1/status');
      const needApps = st.tab === 'apps' || st.tab === 'lookup' || !st.apps.length;
      const [apps] = await Promise.all([
        needApps ? api('GET', '/admin/v1/apps') : Promise.resolve(st.apps),
        pollRolloutStats(st.status.rollouts || []),
      ]);
      st.apps = apps || [];
      if (st.tab === 'apps') await loadApp();
      if (st.tab === 'audit') st.audit = await audit.load(api);
      render();
      $('updated').textContent = 'updated ' + clock(Date.now());
      $('updated').classList.remove('error');
    } catch (e) {
      if (e.status === 401) {
        signOut('The token is no longer accepted: sign in again.');
        return;
      }
      $('updated').textContent = e.message;
      $('updated').classList.add('error');
    }
  }

  function render() {
    if (!st.status) return;
    const node = st.status.node || {};
    $('served-by').textContent = 'node ' + shortID(node.id) + ' (' + (node.state || '?') + ')';
    $('served-by').title = node.id || '';
    if (st.tab === 'cluster') renderCluster();
    if (st.tab === 'apps') renderApps();
    if (st.tab === 'rollouts') renderRollouts();
    if (st.tab === 'lookup') fillAppSelect($('lookup-app'));
    if (st.tab === 'audit') once('audit', st.audit, () => audit.render($('audit-table'), $('audit-note'), st.audit));
  }

  // once calls fn only when data differs from the last call for view,
  // so that tables do not flicker and buttons stay put between polls.
  function once(view, data, fn) {
    const sig = JSON.stringify(data);
    if (st.signature[view] === sig) return;
    st.signature[view] = sig;
    fn();
  }

  // ---- cluster ----

  function clusterNodes() {
    const s = st.status;
    if (s.nodes && s.nodes.length) return s.nodes;
    const n = s.node || {};
    const self = (n.servers || []).find((x) => x.id === n.id);
    return [{ id: n.id, role: n.state, voter: self ? self.voter : true, leader: n.leader_id,
      applied_index: n.applied_index, releases: null }];
  }

  function renderCluster() {
    const s = st.status;
    const nodes = clusterNodes();
    const leader = nodes.find((n) => n.role === 'Leader');
    const top = leader ? leader.applied_index : Math.max(0, ...nodes.map((n) => n.applied_index || 0));
    const live = (s.rollouts || []).filter((r) => r.rollout && (r.rollout.state === 'active' || r.rollout.state === 'paused'));
    const down = nodes.filter((n) => n.error).length;
    replace($('cluster-cards'),
      card('Nodes', nodes.length, nodes.filter((n) => n.voter).length + ' voters' + (down ? ', ' + down + ' unreachable' : '')),
      card('Leader', leader ? shortID(leader.id) : 'none', leader ? 'term ' + leader.term : 'no raft leader: writes are unavailable', leader && leader.id),
      card('Applied index', num(top), 'on the leader'),
      card('Apps', num(s.apps), num((s.releases || []).length) + ' releases'),
      card('Live rollouts', live.length, live.filter((r) => r.rollout.state === 'paused').length + ' paused'));

    const rows = nodes.map((n) => {
      const rels = n.releases || [];
      const ready = rels.filter((r) => r.ready).length;
      const lag = Math.max(0, top - (n.applied_index || 0));
      return el('tr', { 'data-node': n.id },
        el('td', null, el('code', { class: 'nodeid', title: n.id, text: n.id }), n.id === (s.node || {}).id ? el('span', { class: 'muted', text: ' (this node)' }) : null),
        el('td', null, n.http ? el('span', { class: 'mono', text: n.http }) : '\u2014'),
        el('td', null, n.error ? el('span', { class: 'badge bad', title: n.error, text: 'unreachable' }) : el('span', { class: 'badge ' + String(n.role || '').toLowerCase(), text: n.role || '?' })),
        el('td', null, n.voter ? 'voter' : 'non-voter'),
        el('td', { class: 'num', text: n.error ? '\u2014' : num(n.applied_index) }),
        el('td', { class: 'num' + (lag > 10 ? ' error' : ''), text: n.error ? '\u2014' : num(lag) }),
        el('td', null, n.role === 'Leader' ? el('span', { class: 'muted', text: 'is the leader' }) : n.last_contact ? ago(n.last_contact) : '\u2014'),
        el('td', null, n.releases ? [readyBar(ready, rels.length), ' ', ready + ' / ' + rels.length] : '\u2014'),
        el('td', { class: 'num', text: n.exchange ? n.exchange.peers : '\u2014' }),
        el('td', { class: 'error', text: n.error || '' }));
    });
    replace($('nodes-table'),
      el('thead', null, el('tr', null, ['Node', 'HTTP', 'Role', 'Raft', 'Applied index', 'Lag', 'Last contact', 'Releases ready', 'Peers', ''].map(
        (h, i) => el('th', { class: i === 4 || i === 5 || i === 8 ? 'num' : null, text: h })))),
      el('tbody', null, rows));

    // Releases x nodes.
    const keys = new Map();
    for (const n of nodes) for (const r of n.releases || []) keys.set(r.app + ' ' + r.version, r);
    for (const r of s.releases || []) if (!keys.has(r.app + ' ' + r.version)) keys.set(r.app + ' ' + r.version, r);
    const sorted = [...keys.values()].sort((a, b) => (a.app + a.version).localeCompare(b.app + b.version, undefined, { numeric: true }));
    const body = sorted.map((r) => el('tr', null,
      el('td', null, el('code', { text: r.app })),
      el('td', null, el('code', { text: r.version })),
      nodes.map((n) => {
        const p = (n.releases || []).find((x) => x.app === r.app && x.version === r.version);
        if (!p) return el('td', { class: 'muted', text: n.releases ? 'not known' : '\u2014' });
        if (p.error) return el('td', { class: 'error', title: p.error }, '\u2717 ', p.blocks_held + ' / ' + p.blocks_known);
        return el('td', null, readyBar(p.ready ? 1 : p.blocks_held, p.ready ? 1 : p.blocks_known),
          ' ', p.ready ? el('span', { class: 'badge ok', text: 'ready' }) : p.blocks_held + ' / ' + p.blocks_known + ' blocks');
      })));
    replace($('replication-table'),
      el('thead', null, el('tr', null, el('th', { text: 'App' }), el('th', { text: 'Release' }),
        nodes.map((n) => el('th', { title: n.id, text: shortID(n.id) })))),
      el('tbody', null, body.length ? body : el('tr', null, el('td', { colspan: 2 + nodes.length, class: 'muted', text: 'No releases yet.' }))));
  }

  function card(label, value, sub, title) {
    return el('div', { class: 'card', title: title || null },
      el('div', { class: 'label', text: label }),
      el('div', { class: 'value', text: value }),
      el('div', { class: 'sub', text: sub || '' }));
  }

  function readyBar(held, known) {
    const w = 80;
    const f = known > 0 ? Math.min(1, held / known) : 0;
    return svg('svg', { class: 'readybar', width: w, height: 8, viewBox: `0 0 ${w} 8`, role: 'img', 'aria-label': Math.round(100 * f) + '%' },
      svg('rect', { class: 'track', x: 0, y: 0, width: w, height: 8, rx: 4 }),
      f > 0 ? svg('rect', { class: f >= 1 ? 'fill-ready' : 'fill-partial', x: 0, y: 0, width: Math.max(4, w * f), height: 8, rx: 4 }) : null);
  }

  // ---- apps, channels, releases ----

  async function loadApp() {
    if (!st.apps.length) { st.appData = null; return; }
    if (!st.apps.some((a) => a.id === st.app)) st.app = st.apps[0].id;
    const base = '/admin/v1/apps/' + enc(st.app);
    const range = st.range;
    const [channels, releases, stats] = await Promise.all([
      api('GET', base + '/channels'), api('GET', base + '/releases'), api('GET', base + '/stats?since=' + enc(range))]);
    // The history's window moves with the clock: it is kept apart so
    // that the tables are not redrawn at every poll.
    st.history = { app: st.app, range, h: stats.history || null };
    delete stats.history;
    st.appData = { app: st.app, channels, releases, stats };
  }

  function setRange(range) {
    st.range = range;
    sessionStorage.setItem(RANGE_KEY, range);
    refreshNow();
  }

  function renderApps() {
    once('applist', [st.apps.map((a) => a.id), st.app], () => {
      replace($('app-list'), st.apps.length ? st.apps.map((a) => el('li', null,
        el('button', { type: 'button', class: a.id === st.app ? 'active' : null, title: a.id, 'data-app': a.id,
          onclick: () => { st.app = a.id; sessionStorage.setItem(APP_KEY, a.id); st.signature = {}; refreshNow(); } }, a.id)))
        : el('li', { class: 'muted', text: 'No apps yet: mirrord app create APP_ID' }));
    });
    const d = st.appData;
    if (!d || d.app !== st.app) return;
    once('appdata', d, () => {
      $('app-title').textContent = 'Channels of ' + d.app;
      const flag = (v) => el('span', { class: 'flag ' + (v ? 'on' : 'off'), text: v ? '\u2713' : '\u2013' });
      const rows = (d.channels || []).map((c) => {
        const r = c.rollout;
        const prev = (c.history || [])[c.history ? c.history.length - 1 : 0];
        return el('tr', { 'data-channel': c.name },
          el('td', null, el('b', { text: c.name }), c.public ? [' ', el('span', { class: 'badge ok', text: 'public' })] : null),
          el('td', null, el('code', { text: c.version || 'builtin' })),
          el('td', null, r ? [el('code', { text: r.version }), ' ', bp(r.basis_points), ' ', el('span', { class: 'badge ' + r.state, text: r.state })] : '\u2014'),
          el('td', null, flag(c.ios)), el('td', null, flag(c.android)), el('td', null, flag(c.electron)),
          el('td', null, flag(c.allow_prod), ' / ', flag(c.allow_dev)),
          el('td', null, flag(c.allow_device), ' / ', flag(c.allow_emulator)),
          el('td', null, flag(c.allow_device_self_set)),
          el('td', { text: c.disable_auto_update || 'none' }),
          el('td', null, flag(c.disable_auto_update_under_native)),
          el('td', { class: 'mono', title: (c.history || []).join(' \u2192 '), text: (c.history || []).slice(-3).join(' \u2192 ') || '\u2014' }),
          el('td', null, el('button', { type: 'button', 'data-action': 'rollback', disabled: !prev,
            title: prev ? 'Point ' + c.name + ' back at ' + prev : 'No earlier release to go back to',
            onclick: () => act('Roll back ' + c.name + '?',
              'Channel ' + c.name + ' of ' + d.app + ' goes back from ' + (c.version || 'builtin') + ' to ' + prev + '. Devices on the channel get ' + prev + ' at their next check.',
              'Roll back', 'POST', '/admin/v1/apps/' + enc(d.app) + '/channels/' + enc(c.name) + '/rollback',
              (out) => 'Channel ' + c.name + ' now serves ' + (out.version || 'builtin') + '.') }, 'Roll back')));
      });
      replace($('channels-table'),
        el('thead', null, el('tr', null, ['Channel', 'Release', 'Rollout', 'iOS', 'Android', 'Electron', 'Prod / dev', 'Device / emulator',
          'Self-set', 'Block auto-update', 'Under native', 'History', ''].map((h) => el('th', { text: h })))),
        el('tbody', null, rows.length ? rows : el('tr', null, el('td', { colspan: 13, class: 'muted', text: 'No channels yet.' }))));

      const stats = new Map(((d.stats && d.stats.releases) || []).map((r) => [r.version, r.total]));
      const rels = (d.releases || []).slice().reverse();
      replace($('releases-table'),
        el('thead', null, el('tr', null, ['Release', 'Created', 'Channels', 'Zip', 'Files', 'Encrypted', 'Min native', 'Offered', 'Downloads', 'Installs', 'Failures', 'Failure rate'].map(
          (h, i) => el('th', { class: i >= 7 ? 'num' : null, text: h })))),
        el('tbody', null, rels.length ? rels.map((r) => {
          const t = stats.get(r.version) || {};
          return el('tr', { 'data-version': r.version },
            el('td', null, el('code', { text: r.version })),
            el('td', { text: when(r.created_at) }),
            el('td', { text: (r.channels || []).join(', ') || '\u2014' }),
            el('td', { text: bytes(r.zip_size) }),
            el('td', { text: (r.manifest || []).length || '\u2014' }),
            el('td', { text: r.session_key ? 'yes' : 'no' }),
            el('td', { text: r.min_native || '\u2014' }),
            el('td', { class: 'num', text: num(t.offered) }), el('td', { class: 'num', text: num(t.downloads) }),
            el('td', { class: 'num', text: num(t.installs) }), el('td', { class: 'num', text: num(t.failures) }),
            el('td', { class: 'num' + (t.failure_rate > 0.2 ? ' error' : ''), text: pct(t.failure_rate) }));
        }) : el('tr', null, el('td', { colspan: 12, class: 'muted', text: 'No releases yet.' }))));
      replace($('release-chart'), releaseBars(rels.slice(0, 12).map((r) => ({ label: r.version, v: stats.get(r.version) || {} }))));
    });
    const hs = st.history;
    if (!hs || hs.app !== st.app) return;
    const h = hs.h;
    once('history', [hs.app, hs.range, h && h.from, h && h.releases, h && h.waiting_for], () => {
      $('history-title').textContent = 'Over the ' + (hs.range === '7d' ? 'last week' : 'last day') + ' (per hour, cluster-wide)';
      hist.render($('history'), h, hs.range, setRange);
    });
  }

  // releaseBars draws installs and failures per release as horizontal
  // bars on one scale.
  function releaseBars(items) {
    const total = items.reduce((m, it) => Math.max(m, (it.v.installs || 0) + (it.v.failures || 0)), 0);
    if (!items.length || total === 0) return el('p', { class: 'muted', text: 'No installs or failures reported yet.' });
    const W = 640, row = 20, left = 90, right = 110;
    const H = items.length * row + 6;
    const scale = (W - left - right) / total;
    return el('div', null, svg('svg', { class: 'chart chart-releases', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'installs and failures per release' },
      items.map((it, i) => {
        const y = 3 + i * row;
        const wi = (it.v.installs || 0) * scale, wf = (it.v.failures || 0) * scale;
        return svg('g', null,
          svg('text', { class: 'label', x: left - 8, y: y + 12, 'text-anchor': 'end' }, it.label),
          svg('rect', { class: 'bar-installs', x: left, y, width: wi, height: row - 6, rx: 2 }),
          svg('rect', { class: 'bar-failures', x: left + wi, y, width: wf, height: row - 6, rx: 2 }),
          svg('text', { x: left + wi + wf + 6, y: y + 12 }, num(it.v.installs) + ' / ' + num(it.v.failures) + ' (' + pct(it.v.failure_rate) + ')'));
      })),
    legend([['installs', 'installs'], ['failures', 'failures']]));
  }

  function legend(items) {
    return el('div', { class: 'legend' }, items.map(([cls, label]) => el('span', null, el('i', { class: cls }), label)));
  }

  // ---- rollouts ----

  const rolloutKey = (ri) => ri.app + '\u0000' + ri.channel + '\u0000' + ri.rollout.id;
  const isLive = (r) => r && (r.state === 'active' || r.state === 'paused');

  async function pollRolloutStats(rollouts) {
    const wanted = rollouts.filter((ri) => ri.rollout && (isLive(ri.rollout) || st.tab === 'rollouts'));
    await Promise.all(wanted.map(async (ri) => {
      const r = ri.rollout;
      const q = new URLSearchParams({ channel: ri.channel, version: r.version });
      let ans;
      try {
        ans = await api('GET', '/admin/v1/apps/' + enc(ri.app) + '/stats?' + q);
      } catch (e) {
        if (e.status === 401) throw e;
        return; // the release may be gone; the status still shows the rollout
      }
      const rel = (ans.releases || []).find((x) => x.version === r.version);
      const tot = rel ? rel.total : {};
      const key = rolloutKey(ri);
      const pts = st.series.get(key) || [];
      pts.push({ t: Date.now(), installs: tot.installs || 0, failures: tot.failures || 0, downloads: tot.downloads || 0 });
      if (pts.length > MAX_POINTS) pts.splice(0, pts.length - MAX_POINTS);
      st.series.set(key, pts);
      st.perNode.set(key, rel ? rel.nodes : []);
    }));
  }

  function renderRollouts() {
    const list = (st.status.rollouts || []).filter((ri) => ri.rollout);
    $('rollouts-empty').hidden = list.length > 0;
    const box = $('rollouts');
    const seen = new Set();
    list.forEach((ri, i) => {
      const key = rolloutKey(ri);
      seen.add(key);
      let c = st.cards.get(key);
      if (!c) {
        c = rolloutCard(ri);
        st.cards.set(key, c);
      }
      // Cards stay in the DOM between polls (a click is never lost);
      // they move only when the order of the status changes.
      if (box.children[i] !== c.root) box.insertBefore(c.root, box.children[i] || null);
      updateCard(c, ri, key);
    });
    for (const [key, c] of st.cards) {
      if (!seen.has(key)) { c.root.remove(); st.cards.delete(key); }
    }
  }

  const ACTIONS = {
    pause: { label: 'Pause', ok: (r) => r.state === 'active',
      text: (ri) => 'Devices not yet on ' + ri.rollout.version + ' stop getting it; devices already on it keep it.' },
    resume: { label: 'Resume', ok: (r) => r.state === 'paused',
      text: (ri) => 'Devices in the ' + bp(ri.rollout.basis_points) + ' cohort get ' + ri.rollout.version + ' again; the halt policy counts afresh.' },
    promote: { label: 'Promote', ok: isLive,
      text: (ri) => 'Every device on ' + ri.channel + ' gets ' + ri.rollout.version + '; ' + (ri.stable || 'builtin') + ' goes to the channel\'s history.' },
    abort: { label: 'Abort', ok: isLive,
      text: (ri) => 'Every device goes back to ' + (ri.stable || 'builtin') + ', including the devices that installed ' + ri.rollout.version + '.' },
  };

  function rolloutCard(ri) {
    const c = {};
    c.title = el('h2');
    c.state = el('span', { class: 'badge' });
    c.versions = el('div', { class: 'versions' });
    c.pct = el('div', { class: 'pct' });
    c.gauge = el('div');
    c.halt = el('div', { class: 'halt', hidden: true });
    c.policy = el('div', { class: 'muted' });
    c.stats = el('div', { class: 'stats' });
    c.buttons = {};
    c.current = ri;
    const buttons = Object.entries(ACTIONS).map(([action, a]) => {
      const b = el('button', { type: 'button', 'data-action': action, class: action === 'abort' ? 'danger' : action === 'promote' ? 'primary' : null,
        onclick: () => {
          const cur = c.current;
          act(a.label + ' the rollout of ' + cur.rollout.version + ' on ' + cur.app + ' / ' + cur.channel + '?', a.text(cur), a.label, 'POST',
            '/admin/v1/apps/' + enc(cur.app) + '/channels/' + enc(cur.channel) + '/rollout/' + action,
            (out) => 'Rollout of ' + cur.rollout.version + ' on ' + cur.channel + ': ' + ((out.rollout && out.rollout.state) || 'done') + '.');
        } }, a.label);
      c.buttons[action] = b;
      return b;
    });
    c.timeline = el('div');
    c.nodes = el('div');
    c.timelineTitle = el('h3');
    c.root = el('div', { class: 'panel rollout', 'data-app': ri.app, 'data-channel': ri.channel, 'data-rollout': ri.rollout.id },
      el('div', null,
        el('div', { class: 'title' }, c.title, c.state),
        c.versions, c.pct, c.gauge, c.halt, c.policy, c.stats,
        el('div', { class: 'actions' }, buttons)),
      el('div', { class: 'charts' },
        el('div', { class: 'chartbox' }, c.timelineTitle, c.timeline, legend([['installs', 'installs'], ['failures', 'failures']])),
        el('div', { class: 'chartbox' }, el('h3', { text: 'Per node (cumulative)' }), c.nodes, legend([['installs', 'installs'], ['failures', 'failures']]))));
    return c;
  }

  function updateCard(c, ri, key) {
    c.current = ri;
    const r = ri.rollout;
    c.title.textContent = ri.app + ' / ' + ri.channel;
    c.state.textContent = r.state;
    c.state.className = 'badge ' + r.state;
    replace(c.versions, 'stable ', el('code', { text: ri.stable || 'builtin' }), ' \u2192 rollout ', el('code', { text: r.version }),
      el('span', { class: 'muted', text: '  ' + r.id }));
    c.pct.textContent = bp(r.basis_points);
    replace(c.gauge, gauge(r));
    if (r.halt) {
      c.halt.hidden = false;
      c.halt.textContent = 'Halted (' + r.halt.action + ') ' + when(r.halt.at) + ': ' + r.halt.reason;
    } else {
      c.halt.hidden = true;
    }
    const p = r.policy;
    c.policy.textContent = p ? 'Halt policy: ' + p.action + ' when the failure rate exceeds ' + pct(p.failure_rate) + ' after ' + num(p.min_events) +
      ' events (' + pct(p.confidence) + ' confidence)' : 'No halt policy.';
    const since = ri.since_baseline || {};
    replace(c.stats,
      el('div', null, el('b', { text: num(since.installs) }), el('span', { text: 'installs since start' })),
      el('div', null, el('b', { text: num(since.failures) }), el('span', { text: 'failures since start' })),
      el('div', null, el('b', { class: ri.failure_rate > 0.2 ? 'error' : null, text: pct(ri.failure_rate) }), el('span', { text: 'failure rate' })),
      el('div', { title: when(r.started_at) }, el('b', { text: r.started_at ? clock(r.started_at) : '\u2014' }), el('span', { text: 'started' })));
    for (const [action, a] of Object.entries(ACTIONS)) c.buttons[action].disabled = !a.ok(r);
    c.timelineTitle.textContent = 'Installs and failures of ' + r.version + ' (cluster-wide, since this page opened)';
    replace(c.timeline, timeline(st.series.get(key) || [], r.version));
    replace(c.nodes, nodeBars(st.perNode.get(key) || [], r.version));
  }

  function gauge(r) {
    const W = 300, f = Math.min(1, r.basis_points / 10000);
    return svg('svg', { class: 'chart gauge', viewBox: `0 0 ${W} 14`, role: 'img', 'aria-label': bp(r.basis_points) + ' of devices' },
      svg('rect', { class: 'track', x: 0, y: 0, width: W, height: 14, rx: 7 }),
      f > 0 ? svg('rect', { class: 'fill-' + r.state, x: 0, y: 0, width: Math.max(7, W * f), height: 14, rx: 7 }) : null);
  }

  // timeline draws the cumulative installs and failures of a release as
  // two lines with a point per poll.
  function timeline(pts, version) {
    const W = 560, H = 200, L = 44, R = 12, T = 10, B = 24;
    const last = pts[pts.length - 1] || { installs: 0, failures: 0 };
    const attrs = { class: 'chart chart-timeline', viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-version': version,
      'data-points': pts.length, 'data-installs': last.installs, 'data-failures': last.failures,
      'aria-label': 'installs and failures of ' + version + ' over time' };
    if (!pts.length) return svg('svg', attrs, svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'waiting for the first numbers\u2026'));
    const t0 = pts[0].t, t1 = pts[pts.length - 1].t;
    const ys = ticks(Math.max(1, ...pts.map((p) => Math.max(p.installs, p.failures))), 4);
    const ymax = ys[ys.length - 1];
    const x = (t) => (t1 === t0 ? L + (W - L - R) / 2 : L + ((t - t0) / (t1 - t0)) * (W - L - R));
    const y = (v) => T + (1 - v / ymax) * (H - T - B);
    const grid = ys.map((v) => svg('g', null,
      svg('line', { class: v === 0 ? 'axis' : 'gridline', x1: L, x2: W - R, y1: y(v), y2: y(v) }),
      svg('text', { x: L - 6, y: y(v) + 3, 'text-anchor': 'end' }, num(v))));
    const series = (field) => {
      const step = Math.max(1, Math.ceil(pts.length / 120)); // at most ~120 dots
      return svg('g', { class: 'series-' + field },
        pts.length > 1 ? svg('polyline', { class: 'line-' + field, points: pts.map((p) => x(p.t).toFixed(1) + ',' + y(p[field]).toFixed(1)).join(' ') }) : null,
        pts.filter((p, i) => i % step === 0 || i === pts.length - 1).map((p) =>
          svg('circle', { class: 'pt-' + field, cx: x(p.t).toFixed(1), cy: y(p[field]).toFixed(1), r: 2.6 },
            svg('title', null, field + ' ' + num(p[field]) + ' at ' + clock(p.t)))));
    };
    return svg('svg', attrs, grid,
      svg('text', { x: L, y: H - 6 }, clock(t0)),
      svg('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, clock(t1)),
      series('installs'), series('failures'),
      svg('text', { class: 'label', x: L + 8, y: T + 12 }, num(last.installs) + ' installs, ' + num(last.failures) + ' failures'));
  }

  // nodeBars draws each node's installs and failures of the release.
  function nodeBars(nodes, version) {
    const W = 360, H = 200, L = 40, B = 30, T = 12;
    const attrs = { class: 'chart chart-nodes', viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-version': version, 'data-nodes': nodes.length,
      'aria-label': 'installs and failures of ' + version + ' per node' };
    if (!nodes.length) return svg('svg', attrs, svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no node has reported this release yet'));
    const ys = ticks(Math.max(1, ...nodes.map((n) => Math.max(n.installs, n.failures))), 3);
    const ymax = ys[ys.length - 1];
    const y = (v) => T + (1 - v / ymax) * (H - T - B);
    const slot = (W - L - 8) / nodes.length;
    const bw = Math.min(28, slot / 2.6);
    return svg('svg', attrs,
      ys.map((v) => svg('g', null,
        svg('line', { class: v === 0 ? 'axis' : 'gridline', x1: L, x2: W - 4, y1: y(v), y2: y(v) }),
        svg('text', { x: L - 6, y: y(v) + 3, 'text-anchor': 'end' }, num(v)))),
      nodes.map((n, i) => {
        const cx = L + slot * i + slot / 2;
        return svg('g', { 'data-node': n.node },
          svg('rect', { class: 'bar-installs', x: cx - bw - 1, y: y(n.installs), width: bw, height: y(0) - y(n.installs) },
            svg('title', null, shortID(n.node) + ': ' + num(n.installs) + ' installs')),
          svg('rect', { class: 'bar-failures', x: cx + 1, y: y(n.failures), width: bw, height: y(0) - y(n.failures) },
            svg('title', null, shortID(n.node) + ': ' + num(n.failures) + ' failures')),
          svg('text', { x: cx, y: H - 12, 'text-anchor': 'middle' }, '\u2026' + n.node.slice(-6)),
          svg('text', { x: cx, y: H - 1, 'text-anchor': 'middle' }, pct(n.failure_rate) + ' failed'));
      }));
  }

  // ticks returns about n+1 round, integer tick values from 0 to at
  // least v (counts are integers, so steps are at least 1).
  function ticks(v, n) {
    const raw = Math.max(1, v / n);
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
    const out = [];
    for (let x = 0; x < v + step; x += step) out.push(x);
    return out;
  }

  // ---- device lookup ----

  function fillAppSelect(sel) {
    const ids = st.apps.map((a) => a.id);
    once('lookup-apps', ids, () => {
      const keep = sel.value;
      replace(sel, ids.map((id) => el('option', { value: id, text: id })));
      if (ids.includes(keep)) sel.value = keep;
      else if (ids.includes(st.app)) sel.value = st.app;
    });
  }

  async function lookup(ev) {
    ev.preventDefault();
    const q = new URLSearchParams({
      app_id: $('lookup-app').value,
      device_id: $('lookup-device').value.trim(),
      platform: $('lookup-platform').value,
      version_build: $('lookup-build').value.trim(),
      version_name: $('lookup-name').value.trim(),
      plugin_version: $('lookup-plugin').value.trim(),
      is_prod: String($('lookup-prod').checked),
      is_emulator: String($('lookup-emulator').checked),
    });
    if ($('lookup-channel').value.trim()) q.set('defaultChannel', $('lookup-channel').value.trim());
    if ($('lookup-key').value.trim()) q.set('key_id', $('lookup-key').value.trim());
    let ans;
    try {
      ans = await api('GET', '/admin/v1/lookup?' + q);
    } catch (e) {
      flash('Lookup failed: ' + e.message, true);
      return;
    }
    const d = ans.decision || {};
    const head = $('lookup-headline');
    if (d.error) {
      head.textContent = d.error;
      head.className = 'headline ' + (d.kind || 'failed');
    } else {
      head.textContent = '\u2192 ' + d.version;
      head.className = 'headline ok';
    }
    $('lookup-explanation').textContent = ans.explanation;
    replace($('lookup-cohort'), ans.cohort ? cohortLine(ans.cohort) : null);
    const rows = [['channel', d.channel], ['channel found via', ans.channel_via], ['chosen by', d.source], ['rollout', d.rollout],
      ['version', d.version], ['device runs', d.old], ['error', d.error], ['kind', d.kind], ['message', d.message]];
    replace($('lookup-details'), rows.filter(([, v]) => v).map(([k, v]) => el('tr', null, el('td', { text: k }), el('td', null, el('code', { text: v })))));
    $('lookup-result').hidden = false;
  }

  // cohortLine places the device's slot on the rollout's 0..9999 line.
  function cohortLine(c) {
    const W = 600, L = 10, R = 10, Y = 26;
    const x = (v) => L + (v / 10000) * (W - L - R);
    return svg('svg', { class: 'chart chart-cohort', viewBox: `0 0 ${W} 56`, role: 'img', 'data-slot': c.slot,
      'aria-label': 'slot ' + c.slot + ' of 10000; cohort below ' + c.basis_points },
      svg('rect', { class: 'track', x: L, y: Y - 5, width: W - L - R, height: 10, rx: 5 }),
      svg('rect', { class: 'cohort', x: L, y: Y - 5, width: x(c.basis_points) - L, height: 10, rx: 5 }),
      svg('line', { class: 'threshold', x1: x(c.basis_points), x2: x(c.basis_points), y1: Y - 10, y2: Y + 10 }),
      svg('text', { x: x(c.basis_points), y: Y - 13, 'text-anchor': 'middle' }, bp(c.basis_points) + ' (' + c.basis_points + ')'),
      svg('circle', { class: 'device', cx: x(c.slot), cy: Y, r: 6 }),
      svg('text', { class: 'label', x: c.slot < 5000 ? x(c.slot) - 6 : x(c.slot) + 6, y: Y + 22, 'text-anchor': c.slot < 5000 ? 'start' : 'end' },
        'device: slot ' + String(c.slot).padStart(4, '0') + (c.in_cohort ? ', in the cohort' : ', not in the cohort') + ' (' + c.state + ' rollout)'),
      svg('text', { x: L, y: Y - 13 }, '0'), svg('text', { x: W - R, y: Y - 13, 'text-anchor': 'end' }, '9999'));
  }

  // ---- start ----

  const hist = window.mirrordHistory({ el, svg, num, ticks, replace });
  const audit = window.mirrordAudit({ el, replace });

  function start() {
    $('login-form').addEventListener('submit', (e) => { e.preventDefault(); signIn($('token-input').value); });
    $('logout').addEventListener('click', () => signOut(''));
    $('flash-close').addEventListener('click', () => { $('flash').hidden = true; });
    $('lookup-form').addEventListener('submit', lookup);
    window.addEventListener('hashchange', route);
    document.addEventListener('visibilitychange', () => { if (!document.hidden && st.token) tick(); });
    if (st.token) signIn(st.token);
    else showLogin();
  }

  start();
})();
