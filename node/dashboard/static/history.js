// mirrord dashboard: the history charts (installs, failures and update
// checks per version and hour over the last day or week). The node keeps
// hourly counts for 8 days, the same on every node; the page asks for
// them with GET /admin/v1/apps/{app}/stats?since=24h (or 7d) and draws
// one small line chart per measure with a line per version. app.js
// calls window.mirrordHistory(helpers) once and uses what it returns.
'use strict';
window.mirrordHistory = function (lib) {
  const { el, svg, num, ticks, replace } = lib;
  const METRICS = [['installs', 'Installs'], ['failures', 'Failures'], ['offered', 'Update checks']];
  const MAX_VERSIONS = 6; // the busiest; the answer has all of them
  const RANGES = { '24h': 'Last day', '7d': 'Last week' };

  const activity = (r) => (r.total.installs || 0) + (r.total.failures || 0) + (r.total.offered || 0) + (r.total.downloads || 0);

  // series lays a history answer out: the hours of the window and, for
  // the busiest versions with counts, a value per hour and measure.
  function series(h) {
    const hours = [];
    for (let t = h.from; t <= h.to; t += h.bucket_ms) hours.push(t);
    const rels = (h.releases || []).filter((r) => r.buckets.length > 0)
      .sort((a, b) => activity(b) - activity(a) || a.version.localeCompare(b.version, undefined, { numeric: true }))
      .slice(0, MAX_VERSIONS)
      .map((r) => {
        const by = new Map(r.buckets.map((b) => [b.hour, b]));
        return { version: r.version, total: r.total, at: (t, m) => (by.get(t) || {})[m] || 0 };
      });
    return { hours, rels };
  }

  function hourLabel(t, week) {
    const d = new Date(t);
    const hh = String(d.getHours()).padStart(2, '0') + ':00';
    return week ? d.toLocaleDateString(undefined, { weekday: 'short', day: 'numeric' }) + ' ' + hh : hh;
  }

  // chart draws one measure: a line per version, a point per hour.
  function chart(s, metric, label, week) {
    const W = 420, H = 170, L = 40, R = 10, T = 22, B = 22;
    const { hours, rels } = s;
    const total = rels.reduce((n, r) => n + (r.total[metric] || 0), 0);
    const top = Math.max(1, ...rels.flatMap((r) => hours.map((t) => r.at(t, metric))));
    const ys = ticks(top, 3);
    const ymax = ys[ys.length - 1];
    const x = (i) => (hours.length < 2 ? L : L + (i / (hours.length - 1)) * (W - L - R));
    const y = (v) => T + (1 - v / ymax) * (H - T - B);
    return svg('svg', { class: 'chart chart-history', viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-metric': metric,
      'data-total': total, 'data-hours': hours.length, 'data-versions': rels.length,
      'aria-label': label + ' per version and hour' },
      svg('text', { class: 'label', x: L, y: 12 }, label + ': ' + num(total)),
      ys.map((v) => svg('g', null,
        svg('line', { class: v === 0 ? 'axis' : 'gridline', x1: L, x2: W - R, y1: y(v), y2: y(v) }),
        svg('text', { x: L - 6, y: y(v) + 3, 'text-anchor': 'end' }, num(v)))),
      hours.length ? [svg('text', { x: L, y: H - 6 }, hourLabel(hours[0], true)),
        svg('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, hourLabel(hours[hours.length - 1], true))] : null,
      rels.map((r, i) => svg('g', { class: 'hist-series hist-c' + i, 'data-version': r.version, 'data-total': r.total[metric] || 0 },
        svg('title', null, r.version + ': ' + num(r.total[metric]) + ' ' + label.toLowerCase()),
        svg('polyline', { class: 'hist-line', points: hours.map((t, j) => x(j).toFixed(1) + ',' + y(r.at(t, metric)).toFixed(1)).join(' ') }),
        hours.map((t, j) => r.at(t, metric) > 0 ? svg('circle', { class: 'hist-pt', cx: x(j).toFixed(1), cy: y(r.at(t, metric)).toFixed(1), r: week ? 1.6 : 2.4 },
          svg('title', null, r.version + ' at ' + hourLabel(t, true) + ': ' + num(r.at(t, metric)) + ' ' + label.toLowerCase())) : null))));
  }

  // render fills box with the range buttons, the three charts and the
  // version legend.
  function render(box, h, range, onRange) {
    const buttons = Object.entries(RANGES).map(([k, label]) => el('button', { type: 'button', 'data-range': k,
      class: k === range ? 'primary' : null, onclick: () => onRange(k) }, label));
    if (!h) {
      replace(box, el('div', { class: 'range' }, buttons), el('p', { class: 'muted', text: 'No history in this answer.' }));
      return;
    }
    const s = series(h);
    const week = range === '7d';
    const waiting = h.waiting_for || [];
    replace(box,
      el('div', { class: 'range' }, buttons),
      waiting.length ? el('p', { class: 'error history-waiting', text: 'Not recording: waiting for ' + waiting.join(', ') +
        ' to run a build that keeps the history (the counters go on).' }) : null,
      s.rels.length === 0 ? el('p', { class: 'muted empty-history', text: 'No installs, failures or update checks in this period.' }) : [
        el('div', { class: 'history-charts' }, METRICS.map(([m, label]) => el('div', null, chart(s, m, label, week)))),
        el('div', { class: 'legend' }, s.rels.map((r, i) => el('span', { 'data-version': r.version }, el('i', { class: 'hist-c' + i }), r.version)))]);
  }

  return { render };
};
