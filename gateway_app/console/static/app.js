// The gateway's web console: a single page over the admin and analytics JSON API.
//
// It calls only same-origin endpoints (/auth/session, /admin/...), with the session
// cookie and, on every change, the session's CSRF token in X-CSRF-Token. Text from the
// API is always inserted as text (textContent), never as HTML.
'use strict';

const PAGES = {
  overview: { title: 'Overview', render: renderOverview },
  keys: { title: 'Keys', render: renderKeys },
  limits: { title: 'Limits and budgets', render: renderLimits },
  spend: { title: 'Spend', render: renderSpend },
  deployments: { title: 'Deployments', render: renderDeployments },
  audit: { title: 'Audit log', render: renderAudit },
};
const state = { me: null, keys: [] };

// ------------------------------------------------------------------ helpers

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.className = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

let fieldCounter = 0;
function field(label, input, hint) {
  const id = input.id || `f${++fieldCounter}`;
  input.id = id;
  const parts = [h('label', { for: id }, label), input];
  if (hint) {
    input.setAttribute('aria-describedby', `${id}-hint`);
    parts.push(h('span', { id: `${id}-hint`, class: 'hint' }, hint));
  }
  return h('div', { class: 'field' }, parts);
}

function usd(amount) {
  const value = Number(amount) || 0;
  if (value === 0) return '$0';
  if (Math.abs(value) >= 1) return `$${value.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  const decimals = Math.max(2, 2 - Math.floor(Math.log10(Math.abs(value))));
  return `$${value.toFixed(decimals)}`;
}
const count = (n) => Number(n || 0).toLocaleString('en-US');
const ms = (n) => `${Math.round(Number(n) || 0).toLocaleString('en-US')} ms`;
const pct = (n) => `${((Number(n) || 0) * 100).toFixed(1)}%`;
const when = (ts) => (ts ? new Date(ts * 1000).toISOString().replace('T', ' ').slice(0, 16) + ' UTC' : '—');

function today() { return new Date().toISOString().slice(0, 10); }
function monthStart() { return `${today().slice(0, 8)}01`; }
function daysInMonth() { const d = new Date(); return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate(); }
function daysOfMonthSoFar() {
  const start = monthStart();
  const n = Number(today().slice(8, 10));
  return Array.from({ length: n }, (_, i) => `${start.slice(0, 8)}${String(i + 1).padStart(2, '0')}`);
}

let announced;
function announce(message, isError = false) {
  const status = document.getElementById('status');
  status.textContent = message;
  status.className = isError ? 'status error' : 'status';
  clearTimeout(announced);
  announced = setTimeout(() => { status.textContent = ''; }, isError ? 15000 : 6000);
}

class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (method !== 'GET') {
    headers['content-type'] = 'application/json';
    headers['x-csrf-token'] = state.me ? state.me.csrf_token : '';
  }
  const response = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401 && path !== '/auth/session') {
    state.me = null;
    await start();
    throw new ApiError('Your session has ended; sign in again.', 401);
  }
  if (!response.ok) throw new ApiError((data.error && data.error.message) || response.statusText, response.status);
  return data;
}

const canWrite = () => state.me && state.me.role !== 'viewer';
const isAdmin = () => state.me && state.me.role === 'admin';
const teamParam = () => (state.me && state.me.team_id ? `&team_id=${encodeURIComponent(state.me.team_id)}` : '');

function keyName(id) {
  const key = state.keys.find((k) => k.id === id);
  return key && key.name ? `${key.name} (${id})` : id || '(none)';
}

async function loadKeys() {
  state.keys = (await api('GET', '/admin/keys')).data;
  return state.keys;
}

function section(title, ...children) {
  const id = `s-${title.toLowerCase().replace(/[^a-z]+/g, '-')}`;
  return h('section', { 'aria-labelledby': id, class: 'card' }, h('h2', { id }, title), ...children);
}

function dataTable(caption, head, rows, empty = 'Nothing yet.') {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))))));
}

// ------------------------------------------------------------------ shell

async function start() {
  const main = document.getElementById('main');
  let me;
  try {
    const response = await fetch('/auth/session', { credentials: 'same-origin' });
    me = await response.json();
  } catch (error) {
    main.replaceChildren(h('p', { class: 'error' }, 'The gateway cannot be reached.'));
    return;
  }
  if (!me.authenticated) {
    state.me = null;
    renderSignIn(me);
    return;
  }
  state.me = me;
  renderWho();
  document.getElementById('nav').hidden = false;
  if (!location.hash) location.replace('#overview');
  await route();
}

function renderWho() {
  const me = state.me;
  const who = document.getElementById('who');
  const name = me.person ? `${me.person.name || me.person.subject} (${me.person.email || me.person.subject})` : 'Shared admin key';
  const role = { admin: 'org admin', team_admin: `team admin of ${me.team_id}`, viewer: me.team_id ? `viewer of ${me.team_id}` : 'viewer of all teams' }[me.role];
  const signOut = h('button', { type: 'button', class: 'secondary', onclick: () => logout(false) }, 'Sign out');
  const everywhere = me.logout_everywhere ? h('button', { type: 'button', class: 'secondary', onclick: () => logout(true) }, 'Sign out everywhere') : null;
  who.replaceChildren(h('span', { class: 'person' }, name), h('span', { class: 'role' }, role), signOut, everywhere);
  if (me.break_glass) {
    document.querySelector('.top').after(h('p', { class: 'banner', role: 'note' },
      'Signed in with the shared admin key (break-glass): every change is audited as such.'));
  }
}

async function logout(everywhere) {
  try {
    const result = await api('POST', '/auth/logout', { everywhere });
    location.assign(result.redirect || '/console/');
  } catch (error) {
    announce(error.message, true);
  }
}

function renderSignIn(info) {
  document.getElementById('nav').hidden = true;
  document.getElementById('who').replaceChildren();
  const main = document.getElementById('main');
  // Back to the page asked for (read when followed: the hash may change meanwhile).
  const loginHref = () => `/auth/login?return_to=${encodeURIComponent(`/console/${location.hash}`)}`;
  const parts = [h('h1', { tabindex: '-1' }, 'Sign in')];
  if (info.sso) {
    parts.push(h('p', {}, 'Use your organisation account. Your role and team come from your groups.'),
      h('p', {}, h('a', { class: 'button', href: loginHref(), onclick: (event) => { event.currentTarget.href = loginHref(); } }, 'Sign in with single sign-on')));
  }
  if (info.admin_key_login) {
    const input = h('input', { type: 'password', name: 'admin_key', autocomplete: 'off', required: true });
    const form = h('form', { class: 'card narrow', onsubmit: async (event) => {
      event.preventDefault();
      const response = await fetch('/auth/admin-key', {
        method: 'POST', credentials: 'same-origin',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ admin_key: input.value }),
      });
      input.value = '';
      if (response.ok) { await start(); return; }
      const data = await response.json().catch(() => ({}));
      announce((data.error && data.error.message) || 'Sign-in failed.', true);
    } }, h('h2', {}, 'Break-glass'),
    h('p', { class: 'muted' }, 'For when the identity provider is down. Every use is audited.'),
    field('Admin key', input), h('button', { type: 'submit' }, 'Sign in with the admin key'));
    parts.push(form);
  }
  if (!info.sso && !info.admin_key_login) parts.push(h('p', {}, 'Sign-in is not configured on this gateway.'));
  main.replaceChildren(h('div', { class: 'card signin' }, ...parts));
  main.querySelector('h1').focus();
}

async function route() {
  if (!state.me) return;
  const name = (location.hash || '#overview').slice(1).split('?')[0];
  const page = PAGES[name] || PAGES.overview;
  document.querySelectorAll('#nav a').forEach((a) => {
    if (a.getAttribute('href') === `#${name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  document.title = `${page.title} · AI gateway console`;
  const main = document.getElementById('main');
  const heading = h('h1', { tabindex: '-1' }, page.title);
  const body = h('div', { class: 'page' }, h('p', { class: 'muted' }, 'Loading…'));
  main.replaceChildren(heading, body);
  heading.focus();
  try {
    await page.render(body);
  } catch (error) {
    if (error.status !== 401) body.replaceChildren(h('p', { class: 'error' }, `Could not load: ${error.message}`));
  }
}

// ------------------------------------------------------------------ overview

async function renderOverview(body) {
  const since = monthStart();
  const byDayGroup = state.me.team_id ? 'project' : 'team';
  const [keys, perDay, perKey, latency, limits] = await Promise.all([
    loadKeys(),
    api('GET', `/admin/analytics/usage?group_by=day,${byDayGroup}&since=${since}${teamParam()}`),
    api('GET', `/admin/analytics/usage?group_by=key&since=${since}${teamParam()}`),
    api('GET', `/admin/analytics/latency?group_by=deployment&since=${since}${teamParam()}`),
    api('GET', '/admin/limits'),
  ]);
  const spent = perKey.data.reduce((sum, r) => sum + r.cost_usd, 0);
  const requests = perKey.data.reduce((sum, r) => sum + r.requests, 0);
  const served = latency.data.filter((r) => r.deployment);
  const calls = served.reduce((s, r) => s + r.requests, 0);
  const errors = served.reduce((s, r) => s + r.errors, 0);
  const kpis = h('ul', { class: 'kpis', 'aria-label': 'This month' },
    h('li', {}, h('span', { class: 'kpi-label' }, 'Spend this month'), h('span', { class: 'kpi' }, usd(spent))),
    h('li', {}, h('span', { class: 'kpi-label' }, 'Requests'), h('span', { class: 'kpi' }, count(requests))),
    h('li', {}, h('span', { class: 'kpi-label' }, 'Upstream error rate'), h('span', { class: 'kpi' }, calls ? pct(errors / calls) : '—')),
    h('li', {}, h('span', { class: 'kpi-label' }, 'Active keys'), h('span', { class: 'kpi' }, count(keys.filter((k) => !k.revoked_at).length))));

  const chart = h('div', { class: 'chart-box', id: 'spend-chart' });
  drawSpend(chart, perDay.data, byDayGroup === 'team' ? 'team_id' : 'project_id', daysOfMonthSoFar(),
    `Spend per day this month by ${byDayGroup}`);

  const top = h('div', { class: 'chart-box', id: 'top-spenders' });
  const spenders = [...perKey.data].filter((r) => r.key_id).sort((a, b) => b.cost_usd - a.cost_usd).slice(0, 8);
  if (spenders.length) {
    Charts.bars(top, { title: 'Top spending keys this month', format: usd,
      items: spenders.map((r) => ({ label: keyName(r.key_id), value: r.cost_usd })) });
  } else top.append(h('p', { class: 'muted' }, 'No spend this month yet.'));

  const rank = { org: 0, team: 1, project: 2, key: 3, customer: 4 };
  const budgets = limits.data.filter((l) => l.monthly_usd).sort((a, b) => rank[a.scope] - rank[b.scope]);
  const burnBox = h('div', { class: 'chart-box', id: 'burn-down' });
  const picker = h('select', { onchange: () => drawBurn(burnBox, budgets[Number(picker.value)]) },
    budgets.map((l, i) => h('option', { value: String(i) }, `${l.scope} ${l.scope === 'key' ? keyName(l.scope_id) : l.scope_id}: ${usd(l.monthly_usd)} a month`)));
  body.replaceChildren(kpis,
    section('Spend over time', chart),
    section('Budget burn-down', budgets.length ? field('Budget', picker) : h('p', { class: 'muted' }, 'No monthly budgets are set.'), burnBox),
    section('Top spenders', top));
  if (budgets.length) await drawBurn(burnBox, budgets[0]);
}

function drawSpend(container, rows, column, days, title) {
  const names = [...new Set(rows.map((r) => r[column] || '(none)'))].sort();
  if (!rows.length) { container.replaceChildren(h('p', { class: 'muted' }, 'No traffic in this period yet.')); return; }
  const series = names.map((name) => ({
    name: column === 'key_id' ? keyName(name) : name,
    values: days.map((d) => rows.filter((r) => r.day === d && (r[column] || '(none)') === name).reduce((s, r) => s + r.cost_usd, 0)),
  }));
  Charts.stackedBars(container, { title, categories: days, series, format: usd });
}

const SCOPE_COLUMN = { team: 'team_id', project: 'project_id', key: 'key_id' };

async function drawBurn(container, limit) {
  const days = daysOfMonthSoFar();
  let rows;
  if (limit.scope === 'org') rows = (await api('GET', `/admin/analytics/usage?group_by=day&since=${monthStart()}`)).data;
  else if (SCOPE_COLUMN[limit.scope]) {
    const group = limit.scope;
    rows = (await api('GET', `/admin/analytics/usage?group_by=day,${group}&since=${monthStart()}${teamParam()}`)).data
      .filter((r) => r[SCOPE_COLUMN[group]] === limit.scope_id);
  } else rows = [];
  let running = 0;
  const cumulative = days.map((d) => { running += rows.filter((r) => r.day === d).reduce((s, r) => s + r.cost_usd, 0); return running; });
  const live = await api('GET', `/admin/budgets/${limit.scope}/${encodeURIComponent(limit.scope_id)}`).catch(() => null);
  if (live && live.monthly_usd > running) cumulative[cumulative.length - 1] = live.monthly_usd;  // in-flight too
  const spentNow = cumulative[cumulative.length - 1] || 0;
  const projected = (spentNow / days.length) * daysInMonth();
  Charts.burn(container, {
    title: `Budget burn-down: ${limit.scope} ${limit.scope === 'key' ? keyName(limit.scope_id) : limit.scope_id}`, days: daysInMonth(), cumulative,
    limit: limit.monthly_usd, projected, format: usd,
  });
  container.append(h('p', { class: projected > limit.monthly_usd ? 'warning' : 'muted' },
    `Spent ${usd(spentNow)} of ${usd(limit.monthly_usd)}; at this rate ${usd(projected)} by the month's end` +
    (projected > limit.monthly_usd ? ': over the limit.' : '.')));
}

// ------------------------------------------------------------------ keys

async function renderKeys(body) {
  const [keys, usage] = await Promise.all([
    loadKeys(),
    api('GET', `/admin/analytics/usage?group_by=key&since=${monthStart()}${teamParam()}`),
  ]);
  const byKey = Object.fromEntries(usage.data.map((r) => [r.key_id, r]));
  const secret = h('div', { id: 'secret', 'aria-live': 'polite' });
  const rows = keys.map((k) => {
    const used = byKey[k.id];
    const actions = canWrite() && !k.revoked_at ? h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', 'aria-label': `Rotate key ${k.name || k.id}`, onclick: () => rotateKey(k, secret) }, 'Rotate'),
      h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke key ${k.name || k.id}`, onclick: () => revokeKey(k) }, 'Revoke')) : '';
    return [k.name || '—', h('code', {}, k.id), k.team_id, k.project_id, k.role,
      when(k.created_at), used ? when(used.last_request_at) : 'never',
      usd(used ? used.cost_usd : 0), k.revoked_at ? `revoked ${when(k.revoked_at)}` : (k.expires_at && k.expires_at * 1000 < Date.now() ? 'expired' : 'active'), actions];
  });
  const list = section('Keys', dataTable(`Virtual keys${state.me.team_id ? ` of team ${state.me.team_id}` : ''}`,
    ['Name', 'Key id', 'Team', 'Project', 'Role', 'Created', 'Last use', 'Spend this month', 'Status', 'Actions'], rows, 'No keys yet.'));
  body.replaceChildren(secret, canWrite() ? createKeyForm(secret) : '', list);
}

function showSecret(container, key, what) {
  const input = h('input', { type: 'text', readonly: true, value: key, class: 'secret', 'aria-label': 'The new key' });
  const copy = h('button', { type: 'button', onclick: async () => {
    try { await navigator.clipboard.writeText(key); announce('Copied.'); } catch { input.select(); announce('Select and copy the key.'); }
  } }, 'Copy');
  const done = h('button', { type: 'button', class: 'secondary', onclick: () => container.replaceChildren() }, 'I have stored it');
  container.replaceChildren(h('div', { class: 'card secret-box', role: 'alert' },
    h('h2', {}, what), h('p', {}, 'Copy this key now: it is shown once and cannot be retrieved later.'),
    h('div', { class: 'row' }, input, copy, done)));
  input.focus();
  input.select();
}

function createKeyForm(secret) {
  const team = h('input', { name: 'team_id', required: true, autocomplete: 'off', list: 'teams' });
  if (!isAdmin()) { team.value = state.me.team_id; team.readOnly = true; }
  const teams = h('datalist', { id: 'teams' }, [...new Set(state.keys.map((k) => k.team_id))].map((t) => h('option', { value: t })));
  const project = h('input', { name: 'project_id', required: true, autocomplete: 'off' });
  const name = h('input', { name: 'name', autocomplete: 'off' });
  const role = h('select', { name: 'role' }, h('option', { value: 'member' }, 'member (calls models)'), h('option', { value: 'team_admin' }, 'team admin (manages its team)'));
  const models = h('input', { name: 'models', autocomplete: 'off', placeholder: 'all models' });
  const days = h('input', { name: 'ttl_days', type: 'number', min: '1', step: '1', inputmode: 'numeric' });
  const budget = h('input', { name: 'monthly_usd', type: 'number', min: '0', step: '0.01', inputmode: 'decimal' });
  const form = h('form', { class: 'grid-form', onsubmit: async (event) => {
    event.preventDefault();
    const payload = { team_id: team.value.trim(), project_id: project.value.trim(), name: name.value.trim(), role: role.value };
    if (models.value.trim()) payload.models = models.value.split(',').map((m) => m.trim()).filter(Boolean);
    if (days.value) payload.ttl_s = Number(days.value) * 86400;
    try {
      const created = await api('POST', '/admin/keys', payload);
      if (budget.value !== '') await api('PUT', `/admin/limits/key/${created.id}`, { monthly_usd: Number(budget.value) });
      form.reset();
      if (!isAdmin()) team.value = state.me.team_id;
      announce(`Key ${created.id} created.`);
      await renderKeys(form.closest('.page'));
      showSecret(document.getElementById('secret'), created.key, `New key ${created.name || created.id}`);
    } catch (error) {
      announce(`Could not create the key: ${error.message}`, true);
    }
  } },
  field('Team', team, isAdmin() ? null : 'Your team'), teams, field('Project', project), field('Name', name),
  field('Role', role), field('Models', models, 'Comma-separated; empty for all'), field('Expires in (days)', days, 'Empty: never'),
  field('Monthly budget (USD)', budget, 'Empty: no key budget'),
  h('div', { class: 'form-actions' }, h('button', { type: 'submit' }, 'Create key')));
  return section('Create a key', form);
}

async function rotateKey(key, secret) {
  if (!window.confirm(`Rotate ${key.name || key.id}? The current secret stops working at once.`)) return;
  try {
    const rotated = await api('POST', `/admin/keys/${key.id}/rotate`);
    announce(`Key ${key.id} rotated.`);
    showSecret(secret, rotated.key, `New secret for ${key.name || key.id}`);
  } catch (error) { announce(`Could not rotate: ${error.message}`, true); }
}

async function revokeKey(key) {
  if (!window.confirm(`Revoke ${key.name || key.id}? Requests with it are refused from now on.`)) return;
  try {
    await api('POST', `/admin/keys/${key.id}/revoke`);
    announce(`Key ${key.id} revoked.`);
    await route();
  } catch (error) { announce(`Could not revoke: ${error.message}`, true); }
}

// ------------------------------------------------------------------ limits

async function renderLimits(body) {
  const [limits] = await Promise.all([api('GET', '/admin/limits'), loadKeys()]);
  const live = await Promise.all(limits.data.slice(0, 50).map((l) =>
    api('GET', `/admin/budgets/${l.scope}/${encodeURIComponent(l.scope_id)}`).catch(() => null)));
  const gauge = (spent, limit) => {
    if (!limit) return spent ? usd(spent) : '—';
    const share = Math.min(1, spent / limit);
    const meter = h('meter', { min: '0', max: String(limit), value: String(Math.min(spent, limit)), high: String(limit * 0.8), optimum: '0', 'aria-label': `${usd(spent)} of ${usd(limit)}` });
    return h('span', { class: 'gauge' }, meter, ` ${usd(spent)} of ${usd(limit)} (${Math.round(share * 100)}%)`);
  };
  const rows = limits.data.map((l, i) => [l.scope, l.scope === 'key' ? keyName(l.scope_id) : l.scope_id, l.team_id || '—',
    gauge(live[i] ? live[i].daily_usd : 0, l.daily_usd), gauge(live[i] ? live[i].monthly_usd : 0, l.monthly_usd),
    l.rpm ?? '—', l.tpm ?? '—',
    canWrite() && (isAdmin() || !['org', 'customer'].includes(l.scope)) ? h('button', { type: 'button', class: 'danger', 'aria-label': `Delete the ${l.scope} ${l.scope_id} limit`, onclick: async () => {
      if (!window.confirm(`Delete the limit of ${l.scope} ${l.scope_id}?`)) return;
      try { await api('DELETE', `/admin/limits/${l.scope}/${encodeURIComponent(l.scope_id)}`); announce('Limit deleted.'); await route(); } catch (error) { announce(error.message, true); }
    } }, 'Delete') : '']);
  body.replaceChildren(canWrite() ? limitForm() : '',
    section('Limits', dataTable('Budgets (spent today and this month) and rate limits', ['Scope', 'Id', 'Team', 'Daily budget', 'Monthly budget', 'Requests/min', 'Tokens/min', 'Actions'], rows, 'No limits yet.')));
}

function limitForm() {
  const scopes = isAdmin() ? ['team', 'project', 'key', 'org', 'customer'] : ['team', 'project', 'key'];
  const scope = h('select', { name: 'scope' }, scopes.map((s) => h('option', { value: s }, s)));
  const id = h('input', { name: 'scope_id', required: true, autocomplete: 'off' });
  if (!isAdmin()) id.value = state.me.team_id;
  const number = (name, step) => h('input', { name, type: 'number', min: '0', step, inputmode: step === '1' ? 'numeric' : 'decimal' });
  const daily = number('daily_usd', '0.01'), monthly = number('monthly_usd', '0.01'), rpm = number('rpm', '1'), tpm = number('tpm', '1');
  scope.addEventListener('change', () => { if (scope.value === 'org') id.value = '*'; });
  const form = h('form', { class: 'grid-form', onsubmit: async (event) => {
    event.preventDefault();
    const value = (input) => (input.value === '' ? null : Number(input.value));
    const payload = { daily_usd: value(daily), monthly_usd: value(monthly), rpm: value(rpm), tpm: value(tpm) };
    try {
      await api('PUT', `/admin/limits/${scope.value}/${encodeURIComponent(id.value.trim())}`, payload);
      announce(`Limit of ${scope.value} ${id.value} saved.`);
      await route();
    } catch (error) { announce(`Could not save the limit: ${error.message}`, true); }
  } }, field('Scope', scope), field('Id', id, isAdmin() ? 'Team, project or key id; * for the organisation' : 'Your team, or one of its projects or keys'),
  field('Daily budget (USD)', daily), field('Monthly budget (USD)', monthly), field('Requests per minute', rpm), field('Tokens per minute', tpm),
  h('div', { class: 'form-actions' }, h('button', { type: 'submit' }, 'Save limit')));
  return section('Set a budget or rate limit', form);
}

// ------------------------------------------------------------------ spend

async function renderSpend(body) {
  await loadKeys();
  const group = h('select', { name: 'group_by' }, ['team', 'project', 'key', 'model'].map((g) => h('option', { value: g }, g)));
  if (state.me.team_id) group.value = 'project';
  const since = h('input', { type: 'date', name: 'since', value: monthStart() });
  const until = h('input', { type: 'date', name: 'until', value: today() });
  const chart = h('div', { class: 'chart-box', id: 'spend-chart' });
  const totals = h('div');
  const draw = async () => {
    const column = { team: 'team_id', project: 'project_id', key: 'key_id', model: 'model' }[group.value];
    const rows = (await api('GET', `/admin/analytics/usage?group_by=day,${group.value}&since=${since.value}&until=${until.value}${teamParam()}`)).data;
    const days = [];
    for (let d = new Date(`${since.value}T00:00:00Z`); d <= new Date(`${until.value}T00:00:00Z`) && days.length < 93; d.setUTCDate(d.getUTCDate() + 1)) days.push(d.toISOString().slice(0, 10));
    drawSpend(chart, rows, column, days, `Spend per day by ${group.value}`);
    const sums = {};
    for (const r of rows) {
      const name = r[column] || '(none)';
      sums[name] = sums[name] || { requests: 0, tokens: 0, cost: 0 };
      sums[name].requests += r.requests; sums[name].tokens += r.prompt_tokens + r.completion_tokens; sums[name].cost += r.cost_usd;
    }
    const ordered = Object.entries(sums).sort((a, b) => b[1].cost - a[1].cost);
    totals.replaceChildren(dataTable(`Totals by ${group.value}`, [group.value, 'Requests', 'Tokens', 'Spend'],
      ordered.map(([name, s]) => [column === 'key_id' ? keyName(name) : name, count(s.requests), count(s.tokens), usd(s.cost)]), 'No traffic in this period.'));
  };
  const form = h('form', { class: 'grid-form inline', onsubmit: async (event) => { event.preventDefault(); await draw(); } },
    field('Group by', group), field('From', since), field('To', until), h('div', { class: 'form-actions' }, h('button', { type: 'submit' }, 'Show')));
  body.replaceChildren(section('Spend over time', form, chart), section('Totals', totals));
  await draw();
}

// ------------------------------------------------------------------ deployments

async function renderDeployments(body) {
  const rows = (await api('GET', `/admin/analytics/latency?group_by=deployment&since=${monthStart()}${teamParam()}`)).data.filter((r) => r.deployment);
  const latency = h('div', { class: 'chart-box', id: 'latency-chart' });
  const errors = h('div', { class: 'chart-box', id: 'error-chart' });
  if (rows.length) {
    Charts.bars(latency, { title: 'p90 latency per deployment this month', format: ms, items: rows.map((r) => ({ label: r.deployment, value: r.p90_ms })) });
    Charts.bars(errors, { title: 'Error rate (5xx) per deployment this month', format: pct, max: Math.max(0.05, ...rows.map((r) => r.error_rate)), items: rows.map((r) => ({ label: r.deployment, value: r.error_rate, color: 1 })) });
  }
  body.replaceChildren(
    section('Latency and errors', dataTable('Per deployment, this month', ['Deployment', 'Requests', 'p50', 'p90', 'p99', 'Errors', 'Error rate'],
      rows.map((r) => [r.deployment, count(r.requests), ms(r.p50_ms), ms(r.p90_ms), ms(r.p99_ms), count(r.errors), pct(r.error_rate)]), 'No requests reached a deployment this month.')),
    rows.length ? section('Latency', latency) : '', rows.length ? section('Error rates', errors) : '');
}

// ------------------------------------------------------------------ audit

async function renderAudit(body) {
  const q = h('input', { type: 'search', name: 'q', autocomplete: 'off', placeholder: 'e-mail, key id, action…' });
  const kind = h('select', { name: 'kind' }, h('option', { value: 'admin' }, 'admin actions and sign-ins'), h('option', { value: 'request' }, 'model requests'), h('option', { value: '' }, 'everything'));
  const action = h('input', { name: 'action', autocomplete: 'off', placeholder: 'key.create' });
  const since = h('input', { type: 'date', name: 'since' });
  const until = h('input', { type: 'date', name: 'until' });
  const results = h('div');
  const search = async () => {
    const params = new URLSearchParams({ limit: '200' });
    for (const input of [q, kind, action, since, until]) if (input.value) params.set(input.name, input.value);
    if (state.me.team_id) params.set('team_id', state.me.team_id);
    const rows = (await api('GET', `/admin/audit?${params}`)).data;
    results.replaceChildren(dataTable(`${rows.length} events, newest first`, ['Time', 'Who', 'Action', 'Team', 'Key', 'Details'],
      rows.map((r) => {
        let detail = {};
        try { detail = r.detail ? JSON.parse(r.detail) : {}; } catch { detail = {}; }
        const actor = detail.actor || {};
        const who = actor.type === 'person' ? `${actor.email || actor.subject} (${actor.subject})` : actor.type === 'admin_key' ? `admin key${actor.break_glass ? ' (break-glass)' : ''}` : (r.actor || '—');
        const what = r.kind === 'request' ? `${r.model || ''} ${r.status || ''} ${usd(r.cost_usd)}` : Object.entries(detail).filter(([k]) => k !== 'actor').map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' ');
        return [when(r.ts), who, r.action || r.kind, r.team_id || '—', r.key_id || '—', what];
      }), 'No events match.'));
    announce(`${rows.length} audit events.`);
  };
  const form = h('form', { class: 'grid-form inline', role: 'search', onsubmit: async (event) => { event.preventDefault(); try { await search(); } catch (error) { announce(error.message, true); } } },
    field('Search', q), field('Kind', kind), field('Action', action), field('From', since), field('To', until),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit' }, 'Search')));
  body.replaceChildren(section('Search the audit log', form), results);
  await search();
}

window.addEventListener('hashchange', route);
document.addEventListener('DOMContentLoaded', start);
