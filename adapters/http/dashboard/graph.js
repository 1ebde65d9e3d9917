// The pipeline of a release as an SVG graph: one box per stage, coloured and
// labelled with its status, in columns by trigger depth — a stage triggered
// after others sits one column right of the last of them — with an edge from
// each stage in a trigger's after_stages (fork and join).
import { svg, statusClass, statusLabel } from './dom.js';

const BOX = { width: 168, height: 60 };
const GAP = { x: 64, y: 22 };
const MARGIN = 12;

// Column of each stage: 0 for release-created and manual triggers, else one
// more than the deepest stage it waits for (definitions have no cycles).
function columns(stages) {
  const byName = new Map(stages.map((stage) => [stage.name, stage]));
  const depth = new Map();
  const depthOf = (name) => {
    if (!depth.has(name)) {
      const after = byName.get(name)?.trigger?.after_stages ?? [];
      depth.set(name, after.length === 0 ? 0 : 1 + Math.max(...after.map(depthOf)));
    }
    return depth.get(name);
  };
  stages.forEach((stage) => depthOf(stage.name));
  return depth;
}

// `definition`: the release's pipeline definition; `summary`: its summary
// (statuses); `href(stage)`: where a click on a box leads; `selected`: the
// stage shown below, outlined.
export function pipelineGraph(definition, summary, href, selected) {
  const status = new Map(summary.stages.map((stage) => [stage.name, stage.status]));
  const depth = columns(definition.stages);
  const columnsCount = Math.max(...depth.values()) + 1;
  const rows = Array.from({ length: columnsCount }, () => []);
  definition.stages.forEach((stage) => rows[depth.get(stage.name)].push(stage));
  const tallest = Math.max(...rows.map((column) => column.length));

  const position = new Map();
  rows.forEach((column, x) => {
    const offset = ((tallest - column.length) * (BOX.height + GAP.y)) / 2;
    column.forEach((stage, y) => position.set(stage.name, {
      x: MARGIN + x * (BOX.width + GAP.x),
      y: MARGIN + offset + y * (BOX.height + GAP.y),
    }));
  });
  const width = 2 * MARGIN + columnsCount * BOX.width + (columnsCount - 1) * GAP.x;
  const height = 2 * MARGIN + tallest * BOX.height + (tallest - 1) * GAP.y;

  const edges = definition.stages.flatMap((stage) => (stage.trigger?.after_stages ?? []).map((from) => {
    const a = position.get(from);
    const b = position.get(stage.name);
    const x1 = a.x + BOX.width;
    const y1 = a.y + BOX.height / 2;
    const x2 = b.x - 6;
    const y2 = b.y + BOX.height / 2;
    const bend = (x2 - x1) / 2;
    const done = ['Succeeded', 'PartiallySucceeded'].includes(status.get(from));
    return svg('path', {
      class: `edge${done ? ' done' : ''}`,
      d: `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`,
      'marker-end': done ? 'url(#arrow-done)' : 'url(#arrow)',
    });
  }));

  const boxes = definition.stages.map((stage) => {
    const { x, y } = position.get(stage.name);
    const state = status.get(stage.name) ?? 'NotStarted';
    const trigger = stage.trigger?.manual ? 'manual · ' : '';
    return svg('a', {
      href: href(stage.name),
      class: `stage ${statusClass(state)}${stage.name === selected ? ' selected' : ''}`,
      'data-stage': stage.name,
      'data-status': state,
      'aria-label': `${stage.name}: ${statusLabel(state)}${stage.trigger?.manual ? ' (manual trigger)' : ''}. Open its logs.`,
    },
    svg('rect', { x, y, width: BOX.width, height: BOX.height, rx: 8 }),
    svg('text', { x: x + 14, y: y + 25, class: 'name' }, stage.name),
    svg('text', { x: x + 14, y: y + 45, class: 'state' }, trigger + statusLabel(state)));
  });

  return svg('svg', {
    class: 'pipeline-graph',
    width, height,
    viewBox: `0 0 ${width} ${height}`,
    role: 'group',
    'aria-label': `Pipeline ${definition.name}: ${definition.stages.length} stages`,
  },
  svg('defs', {}, ['arrow', 'arrow-done'].map((id) => svg('marker', {
    id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto',
  }, svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: id })))),
  edges, boxes);
}
