// Charts drawn as inline SVG: no library, nothing loaded from elsewhere (air-gapped
// clusters, and a Content-Security-Policy that allows this origin only). Each chart is
// an <svg role="img"> with a title and description for screen readers, and a data table
// beside it (<details>) with the same numbers.
'use strict';

const Charts = (() => {
  const NS = 'http://www.w3.org/2000/svg';
  // Okabe-Ito: distinguishable with the common colour-vision deficiencies; each has at
  // least 3:1 contrast against white, as WCAG 1.4.11 asks of graphical objects.
  const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#8a6d00', '#56B4E9', '#3d3d3d', '#E69F00'];
  let counter = 0;

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const power = 10 ** Math.floor(Math.log10(value));
    for (const step of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (step * power >= value) return step * power;
    return 10 * power;
  }

  function frame(title, description, width, height) {
    const id = `chart-${++counter}`;
    const svg = el('svg', {
      viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'chart',
      'aria-labelledby': `${id}-t ${id}-d`, preserveAspectRatio: 'xMidYMid meet',
    });
    svg.append(el('title', { id: `${id}-t` }, title), el('desc', { id: `${id}-d` }, description));
    return svg;
  }

  function axes(svg, box, max, format, ticks = 4) {
    for (let i = 0; i <= ticks; i++) {
      const value = (max * i) / ticks;
      const y = box.bottom - ((box.bottom - box.top) * i) / ticks;
      svg.append(el('line', { x1: box.left, x2: box.right, y1: y, y2: y, class: i ? 'grid' : 'axis' }));
      svg.append(el('text', { x: box.left - 6, y: y + 4, 'text-anchor': 'end', class: 'tick' }, format(value)));
    }
  }

  function legend(names) {
    const list = document.createElement('ul');
    list.className = 'legend';
    names.forEach((name, i) => {
      const item = document.createElement('li');
      const swatch = document.createElement('span');
      swatch.className = `swatch swatch-${i % PALETTE.length}`;
      swatch.setAttribute('aria-hidden', 'true');
      item.append(swatch, document.createTextNode(name));
      list.append(item);
    });
    return list;
  }

  function table(caption, head, rows) {
    const details = document.createElement('details');
    const summary = document.createElement('summary');
    summary.textContent = `Data: ${caption}`;
    const t = document.createElement('table');
    const cap = document.createElement('caption');
    cap.textContent = caption;
    const thead = t.createTHead().insertRow();
    head.forEach((h) => { const th = document.createElement('th'); th.scope = 'col'; th.textContent = h; thead.append(th); });
    const body = t.createTBody();
    rows.forEach((r) => { const tr = body.insertRow(); r.forEach((c) => { tr.insertCell().textContent = c; }); });
    t.append(cap);
    details.append(summary, t);
    return details;
  }

  // Stacked bars: one bar per category (a day), one segment per series (a team, a model).
  function stackedBars(container, { title, categories, series, format }) {
    const width = 760, height = 280;
    const box = { left: 64, right: width - 12, top: 12, bottom: height - 36 };
    const totals = categories.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] || 0), 0));
    const max = niceMax(Math.max(0, ...totals));
    const total = totals.reduce((a, b) => a + b, 0);
    const svg = frame(title, `${series.length} series over ${categories.length} days; total ${format(total)}.`, width, height);
    axes(svg, box, max, format);
    const slot = (box.right - box.left) / Math.max(1, categories.length);
    const bar = Math.max(2, Math.min(40, slot * 0.7));
    categories.forEach((category, i) => {
      let base = box.bottom;
      const x = box.left + slot * i + (slot - bar) / 2;
      series.forEach((s, j) => {
        const value = s.values[i] || 0;
        if (value <= 0) return;
        const h = ((box.bottom - box.top) * value) / max;
        const rect = el('rect', { x, y: base - h, width: bar, height: Math.max(0.5, h), fill: PALETTE[j % PALETTE.length], class: 'segment' });
        rect.append(el('title', {}, `${category} · ${s.name}: ${format(value)}`));
        svg.append(rect);
        base -= h;
      });
      const every = Math.ceil(categories.length / 10);
      if (i % every === 0) {
        svg.append(el('text', { x: x + bar / 2, y: box.bottom + 16, 'text-anchor': 'middle', class: 'tick' }, category.slice(5)));
      }
    });
    container.replaceChildren(svg, legend(series.map((s) => s.name)),
      table(title, ['Day', ...series.map((s) => s.name)],
        categories.map((c, i) => [c, ...series.map((s) => format(s.values[i] || 0))])));
    return svg;
  }

  // Horizontal bars, largest first (top spenders, latency per deployment).
  function bars(container, { title, items, format, max: fixedMax }) {
    const width = 760, row = 28;
    const height = 16 + row * Math.max(1, items.length);
    const box = { left: 210, right: width - 90 };
    const max = fixedMax || niceMax(Math.max(0, ...items.map((i) => i.value)));
    const svg = frame(title, items.map((i) => `${i.label}: ${format(i.value)}`).join('; ') || 'No data.', width, height);
    items.forEach((item, i) => {
      const y = 8 + row * i;
      const w = ((box.right - box.left) * Math.max(0, item.value)) / max;
      svg.append(el('text', { x: box.left - 8, y: y + row / 2 + 4, 'text-anchor': 'end', class: 'label' }, item.label.length > 28 ? `${item.label.slice(0, 27)}…` : item.label));
      const rect = el('rect', { x: box.left, y: y + 4, width: Math.max(1, w), height: row - 10, fill: PALETTE[(item.color ?? 0) % PALETTE.length] });
      rect.append(el('title', {}, `${item.label}: ${format(item.value)}`));
      svg.append(rect, el('text', { x: box.left + w + 6, y: y + row / 2 + 4, class: 'value' }, format(item.value)));
    });
    container.replaceChildren(svg, table(title, ['Name', 'Value'], items.map((i) => [i.label, format(i.value)])));
    return svg;
  }

  // Budget burn-down: spend so far (cumulative), the period's limit, and the projection
  // to the period's end at the average daily rate so far.
  function burn(container, { title, days, cumulative, limit, projected, format }) {
    const width = 760, height = 280;
    const box = { left: 64, right: width - 12, top: 12, bottom: height - 36 };
    const max = niceMax(Math.max(limit || 0, projected || 0, ...cumulative) * 1.05);
    const last = cumulative.length - 1;
    const over = limit && projected > limit;
    const svg = frame(title,
      `Spent ${format(cumulative[last] || 0)} by day ${last + 1} of ${days}; limit ${limit ? format(limit) : 'none'}; ` +
      `projected ${format(projected)} at the period's end${over ? ', over the limit' : ''}.`, width, height);
    axes(svg, box, max, format);
    const x = (i) => box.left + ((box.right - box.left) * i) / Math.max(1, days - 1);
    const y = (v) => box.bottom - ((box.bottom - box.top) * v) / max;
    if (limit) {
      svg.append(el('line', { x1: box.left, x2: box.right, y1: y(limit), y2: y(limit), class: 'limit' }));
      svg.append(el('text', { x: box.right - 4, y: y(limit) - 6, 'text-anchor': 'end', class: 'limit-label' }, `limit ${format(limit)}`));
    }
    const points = cumulative.map((v, i) => `${x(i)},${y(v)}`).join(' ');
    svg.append(el('polyline', { points, class: 'spent', fill: 'none' }));
    if (last >= 0) {
      svg.append(el('line', { x1: x(last), y1: y(cumulative[last]), x2: x(days - 1), y2: y(projected), class: over ? 'projection over' : 'projection' }));
      svg.append(el('circle', { cx: x(last), cy: y(cumulative[last]), r: 4, class: 'now' }));
    }
    for (let i = 0; i < days; i += Math.ceil(days / 10)) {
      svg.append(el('text', { x: x(i), y: box.bottom + 16, 'text-anchor': 'middle', class: 'tick' }, String(i + 1)));
    }
    const key = legend(['spent so far', 'projection', 'limit']);
    key.classList.add('legend-burn');
    container.replaceChildren(svg, key, table(title, ['Day', 'Spent so far'], cumulative.map((v, i) => [String(i + 1), format(v)])));
    return svg;
  }

  return { stackedBars, bars, burn, PALETTE };
})();
