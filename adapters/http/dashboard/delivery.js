// Delivery: the DORA four of one pipeline over time, per stage, as SVG bar
// charts drawn here from GET /api/v1/metrics/delivery?bucket=day|week —
// deployments per bucket, median lead time, change failure rate, median
// time to restore — with the window's totals beside them. Re-fetched when a
// deployment finishes.
import { api, coalesced, path } from './api.js';
import { h, show, svg, utcText } from './dom.js';

const WINDOWS = { day: 30, week: 84 };  // 30 days by day, 12 weeks by week
const FINISHING = new Set(['DeploymentSucceeded', 'DeploymentFailed']);
const W = 560;
const H = 150;
const PAD = { left: 46, right: 8, top: 10, bottom: 26 };

// A span of time in the unit that suits it: "850 ms", "2.2 s", "14 min", "3.5 h", "2.1 d".
function span(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3600000) return `${Math.round(ms / 60000)} min`;
  if (ms < 86400000) return `${(ms / 3600000).toFixed(1)} h`;
  return `${(ms / 86400000).toFixed(1)} d`;
}
const dateOf = (ms) => utcText(ms).slice(0, 10);

// A bar chart of `values` (null: no data in that bucket), one bar per bucket.
function barChart({ title, unit, buckets, values, format, className }) {
  const plotted = values.filter((value) => value !== null);
  const max = Math.max(1e-9, ...plotted);
  const top = unit === '%' ? Math.max(max, 1) : max;
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const step = innerW / Math.max(buckets.length, 1);
  const y = (value) => PAD.top + innerH - (value / top) * innerH;
  const label = `${title}: ${plotted.length} of ${buckets.length} ${buckets.length === 1 ? 'bucket' : 'buckets'} with data`;
  return svg('svg', { class: `chart ${className}`, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, width: W, height: H },
    svg('title', {}, label),
    // Axes and the top value.
    svg('line', { class: 'axis', x1: PAD.left, y1: PAD.top + innerH, x2: W - PAD.right, y2: PAD.top + innerH }),
    svg('line', { class: 'axis', x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: PAD.top + innerH }),
    svg('text', { class: 'tick y-max', x: PAD.left - 4, y: PAD.top + 8, 'text-anchor': 'end' }, plotted.length ? format(top) : ''),
    plotted.length ? null : svg('text', { class: 'tick no-data', x: PAD.left + innerW / 2, y: PAD.top + innerH / 2, 'text-anchor': 'middle' }, 'no data in this window'),
    svg('text', { class: 'tick', x: PAD.left - 4, y: PAD.top + innerH, 'text-anchor': 'end' }, '0'),
    svg('text', { class: 'tick x-first', x: PAD.left, y: H - 6 }, dateOf(buckets[0].from)),
    svg('text', { class: 'tick x-last', x: W - PAD.right, y: H - 6, 'text-anchor': 'end' }, `${dateOf(buckets[buckets.length - 1].from)} (UTC)`),
    buckets.map((bucket, i) => {
      const value = values[i];
      const tip = `${utcText(bucket.from)} – ${utcText(bucket.to)}: ${value === null ? 'no data' : format(value)}`;
      if (value === null) {
        return svg('rect', { class: 'bar empty', x: PAD.left + i * step + 1, y: PAD.top + innerH - 1, width: Math.max(step - 2, 1), height: 1, 'data-value': '' },
          svg('title', {}, tip));
      }
      return svg('rect', {
        class: 'bar', x: PAD.left + i * step + 1, y: y(value), width: Math.max(step - 2, 1), height: Math.max(PAD.top + innerH - y(value), value > 0 ? 1 : 0),
        'data-value': value,
      }, svg('title', {}, tip));
    }));
}

function stageCharts(stage) {
  const buckets = stage.series ?? [];
  const percent = (value) => `${(value * 100).toFixed(0)}%`;
  const time = (value) => (value === 0 ? '0' : span(value));
  const totals = [
    ['Deployments', `${stage.deployment_frequency.deployments} (${stage.deployment_frequency.per_day.toFixed(2)} a day)`],
    ['Lead time', stage.lead_time_ms.median === null ? '—' : `median ${time(stage.lead_time_ms.median)}, p90 ${time(stage.lead_time_ms.p90)}`],
    ['Change failure rate', stage.change_failure_rate.rate === null ? '—'
      : `${percent(stage.change_failure_rate.rate)} (${stage.change_failure_rate.failed} of ${stage.change_failure_rate.failed + stage.change_failure_rate.succeeded})`],
    ['Time to restore', stage.time_to_restore_ms.median === null ? `— (${stage.time_to_restore_ms.unrestored} unrestored)`
      : `median ${time(stage.time_to_restore_ms.median)} (${stage.time_to_restore_ms.unrestored} unrestored)`],
  ];
  const figure = (heading, chart) => h('figure', { class: 'metric' }, h('figcaption', {}, heading), chart);
  return h('section', { class: 'delivery-stage', 'data-stage': stage.stage },
    h('h2', {}, stage.stage),
    h('dl', { class: 'totals' }, totals.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])),
    h('div', { class: 'charts' },
      figure('Deployments', barChart({ title: 'Successful deployments', unit: '', buckets, className: 'deployments',
        values: buckets.map((b) => b.deployments), format: (v) => String(Math.round(v)) })),
      figure('Lead time (median)', barChart({ title: 'Median lead time', unit: 'ms', buckets, className: 'lead-time',
        values: buckets.map((b) => b.lead_time_median_ms), format: span })),
      figure('Change failure rate', barChart({ title: 'Change failure rate', unit: '%', buckets, className: 'failure-rate',
        values: buckets.map((b) => b.change_failure_rate), format: percent })),
      figure('Time to restore (median)', barChart({ title: 'Median time to restore', unit: 'ms', buckets, className: 'restore',
        values: buckets.map((b) => b.time_to_restore_median_ms), format: span }))));
}

export async function deliveryView(root, { params }) {
  const { pipelines } = await api('/pipelines');
  const name = params.pipeline ?? pipelines[0]?.name;
  const bucket = params.bucket === 'week' ? 'week' : 'day';
  const content = h('div', { class: 'delivery' });
  const picker = h('nav', { class: 'stage-picker', 'aria-label': 'Pipeline' }, pipelines.map((p) => h('a', {
    href: `#/delivery/${path(p.name)}/${bucket}`, 'aria-current': p.name === name ? 'page' : null,
  }, p.name)));
  const buckets = h('nav', { class: 'stage-picker', 'aria-label': 'Bucket' }, ['day', 'week'].map((b) => h('a', {
    href: `#/delivery/${path(name ?? '')}/${b}`, 'aria-current': b === bucket ? 'page' : null,
  }, b === 'day' ? 'By day (30 days)' : 'By week (12 weeks)')));
  show(root, h('h1', {}, 'Delivery', name ? ` — ${name}` : ''), picker, buckets, content);
  if (!name) {
    show(content, h('p', { class: 'muted' }, 'No pipeline yet.'));
    return {};
  }
  const refresh = coalesced(async () => {
    try {
      const metrics = await api(`/metrics/delivery?pipeline=${encodeURIComponent(name)}&days=${WINDOWS[bucket]}&bucket=${bucket}`);
      show(content, h('p', { class: 'muted' }, `From ${utcText(metrics.from)} to ${utcText(metrics.to)}, ${bucket === 'day' ? 'per UTC day' : 'per week (Monday to Sunday, UTC)'}.`),
        metrics.stages.map(stageCharts));
    } catch (error) {
      show(content, h('p', { class: error.status === 404 ? 'muted' : 'error', role: error.status === 404 ? null : 'alert' },
        error.status === 404 ? `${name} has not finished a deployment yet.` : error.message));
    }
  });
  await refresh();
  return {
    onEvent(event) {
      if (FINISHING.has(event.type)) refresh();
    },
    onOpen(resumed) { if (!resumed) refresh(); },
  };
}
