// mirrord dashboard: the audit log view. The cluster keeps the last
// 5000 admin actions that changed something and refused requests (who:
// the token's name, what: method, route and target, when, from where,
// the HTTP status); the page asks for the last 7 days with
// GET /admin/v1/audit?since=MS and lists them newest first. app.js calls
// window.mirrordAudit(helpers) once and uses what it returns.
'use strict';
window.mirrordAudit = function (lib) {
  const { el, replace } = lib;
  const WINDOW_MS = 7 * 24 * 3600 * 1000;
  const MAX_ROWS = 500;

  function path(api) {
    return api('GET', '/admin/v1/audit?since=' + (Date.now() - WINDOW_MS));
  }

  function target(t) {
    return Object.keys(t || {}).sort().map((k) => k + '=' + t[k]).join(' ');
  }

  function render(table, note, entries) {
    const rows = (entries || []).slice(-MAX_ROWS).reverse().map((e) =>
      el('tr', { class: e.status >= 400 ? 'refused' : '' },
        el('td', { class: 'mono', text: new Date(e.at).toLocaleString() }),
        el('td', null, e.token ? el('code', { text: e.token }) : el('span', { class: 'muted', text: 'unknown token' })),
        el('td', null, el('span', { class: 'badge ' + (e.status >= 400 ? 'bad' : 'ok'), text: String(e.status) })),
        el('td', { class: 'mono', text: e.method + ' ' + e.route }),
        el('td', { class: 'mono', text: target(e.target) || '\u2014' }),
        el('td', { class: 'mono', text: e.remote || '\u2014' })));
    replace(table,
      el('tr', null, ['Time', 'Token', 'Status', 'Action', 'Target', 'From'].map((h) => el('th', { text: h }))),
      rows.length ? rows : el('tr', null, el('td', { colspan: 6, class: 'muted', text: 'No audit entries in the last 7 days.' })));
    note.textContent = (entries || []).length > MAX_ROWS ? 'Showing the newest ' + MAX_ROWS + ' of ' + entries.length + '; `mirrord audit --json` has them all.' : '';
  }

  return { load: path, render };
};
