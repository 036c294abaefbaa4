// Skipper's dashboard: a single page over the REST API, hand-written, no framework. Hash routes:
//   #/                       overview: queues, counts, pause/resume, charts of /stats
//   #/jobs?status=&kind=&queue=&args=&after=   the job list, with bulk cancel and retry
//   #/jobs/{id}              one job, followed live over its event stream
//   #/runners                runners and their heartbeats
//   #/schedules              periodic jobs
// Every request carries `Authorization: Bearer <token>` when a token is kept in sessionStorage; a 401 asks for one.
'use strict';

(function () {
  const TOKEN_KEY = 'skipper.token';
  const STATUSES = ['QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'];
  const UNFINISHED = new Set(['QUEUED', 'RUNNING']);
  const COLORS = {
    completed: '#16a34a', failed: '#dc2626', cancelled: '#9ca3af', p50: '#4f46e5', p99: '#db2777',
  };
  const REFRESH_MS = 3000;
  const STATS_REFRESH_MS = 10000;

  // ---------------------------------------------------------------------------------------------------------------
  // DOM

  /** An element: h('a', {href: '#/', class: 'x', 'data-test': 'y', onclick: f}, 'text', child, [more]). */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === undefined || value === null || value === false) continue;
        if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
        else if (key === 'class') el.className = value;
        else if (key === 'text') el.textContent = value;
        else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value);
        else if (value === true) el.setAttribute(key, '');
        else el.setAttribute(key, String(value));
      }
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const child of children) {
      if (child === undefined || child === null || child === false) continue;
      if (Array.isArray(child)) append(el, child);
      else el.append(child instanceof Node ? child : String(child));
    }
  }

  const $ = (selector, root) => (root || document).querySelector(selector);

  // ---------------------------------------------------------------------------------------------------------------
  // Formatting

  const numberFormat = new Intl.NumberFormat();
  const fmtInt = (n) => (n === null || n === undefined ? '–' : numberFormat.format(n));

  /** A span of seconds, compact: "12 s", "3 min", "2 h 5 min", "3 d 4 h". */
  function fmtAge(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' min';
    const hrs = Math.floor(m / 60);
    if (hrs < 24) return hrs + ' h' + (m % 60 ? ' ' + (m % 60) + ' min' : '');
    const d = Math.floor(hrs / 24);
    return d + ' d' + (hrs % 24 ? ' ' + (hrs % 24) + ' h' : '');
  }

  /** Milliseconds, readable: "340 ms", "1.2 s", "2 min 3 s". */
  function fmtMs(ms) {
    if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
    if (ms < 1000) return Math.round(ms) + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + ' s';
    const s = Math.round(ms / 1000);
    return Math.floor(s / 60) + ' min' + (s % 60 ? ' ' + (s % 60) + ' s' : '');
  }

  /** "12 s ago" or "in 4 min" for an RFC 3339 time. */
  function relative(iso) {
    const t = Date.parse(iso);
    if (Number.isNaN(t)) return iso;
    const diff = (Date.now() - t) / 1000;
    if (Math.abs(diff) < 1) return 'just now';
    return diff >= 0 ? fmtAge(diff) + ' ago' : 'in ' + fmtAge(-diff);
  }

  /** Local date and time; the date is left out for today. */
  function localTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    const today = new Date();
    const sameDay = d.toDateString() === today.toDateString();
    return sameDay
      ? d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
      : d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  /**
   * A <time> whose text stays current (the ticker below rewrites it every second). mode: 'rel' (12 s ago, local time
   * as tooltip), 'both' (local time, then the relative age), 'local', 'age' (how long since: "20 min").
   */
  function timeEl(iso, mode) {
    if (!iso) return h('span', { class: 'muted' }, '–');
    const el = h('time', { datetime: iso, title: new Date(iso).toLocaleString(), 'data-rel': mode || 'rel' });
    renderTime(el);
    return el;
  }

  function renderTime(el) {
    const iso = el.getAttribute('datetime');
    const mode = el.getAttribute('data-rel');
    if (mode === 'age') {
      el.textContent = fmtAge((Date.now() - Date.parse(iso)) / 1000);
    } else if (mode === 'both') {
      el.replaceChildren(localTime(iso), ' ', h('span', { class: 'muted' }, '(' + relative(iso) + ')'));
    } else if (mode === 'local') {
      el.textContent = localTime(iso);
    } else {
      el.textContent = relative(iso);
    }
  }

  setInterval(() => document.querySelectorAll('time[data-rel]').forEach(renderTime), 1000);

  function compactJSON(value, max) {
    let text;
    try { text = JSON.stringify(value); } catch (e) { text = String(value); }
    if (text === undefined) text = 'null';
    return max && text.length > max ? text.slice(0, max - 1) + '…' : text;
  }

  function prettyJSON(value) {
    try { return JSON.stringify(value, null, 2); } catch (e) { return String(value); }
  }

  function statusBadge(status, test) {
    return h('span', { class: 'status status-' + String(status).toLowerCase(), 'data-test': test, 'data-status': status }, status);
  }

  /** A rate's period as the API writes it ("60s", "1500ms"), readable: "1 min", "1.5 s". */
  function fmtPeriod(period) {
    const m = /^(\d+)(ms|s)$/.exec(String(period));
    if (!m) return String(period);
    const ms = Number(m[1]) * (m[2] === 's' ? 1000 : 1);
    if (ms >= 3600000 && ms % 3600000 === 0) return fmtAge(ms / 1000);
    return fmtMs(ms);
  }

  function limitsText(limits) {
    if (!limits) return '';
    const parts = [];
    if (limits.concurrency) parts.push('≤ ' + limits.concurrency + ' running' + (limits.partition_by ? ' per ' + limits.partition_by : ''));
    if (limits.rate) parts.push(limits.rate.limit + ' starts / ' + fmtPeriod(limits.rate.period));
    return parts.join(' · ');
  }

  // ---------------------------------------------------------------------------------------------------------------
  // The API

  class APIError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  const connection = {
    set(state, text) {
      const el = $('#connection');
      if (!el || el.dataset.state === state && el.textContent === text) return;
      el.dataset.state = state;
      el.textContent = text;
    },
  };

  function authHeaders() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    return token ? { Authorization: 'Bearer ' + token } : {};
  }

  /** One request; a 401 asks for a token and tries again; an error answer throws APIError with its message. */
  async function api(method, path, body, options) {
    const signal = options && options.signal;
    for (;;) {
      const sentToken = sessionStorage.getItem(TOKEN_KEY);
      const headers = Object.assign({ Accept: 'application/json' }, authHeaders());
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      let response;
      try {
        response = await fetch(path, {
          method, headers, signal, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (error) {
        if (error.name === 'AbortError') throw error;
        connection.set('down', 'API unreachable');
        throw new APIError(0, 'NETWORK', 'The API cannot be reached (' + error.message + ').');
      }
      if (response.status === 401) {
        const answer = await readJSON(response);
        await askForToken(sentToken ? 'The token was refused' + (answer && answer.message ? ': ' + answer.message : '.') : null, sentToken);
        continue;
      }
      const data = await readJSON(response);
      if (response.status >= 500) connection.set('degraded', 'API error ' + response.status);
      else connection.set('up', 'live');
      if (!response.ok) {
        const code = data && data.error ? data.error : 'HTTP_' + response.status;
        const message = data && data.message ? data.message : (response.statusText || 'request failed') + ' (HTTP ' + response.status + ')';
        throw new APIError(response.status, code, message);
      }
      return data;
    }
  }

  async function readJSON(response) {
    const text = await response.text();
    if (!text) return null;
    try { return JSON.parse(text); } catch (e) { return { message: text.slice(0, 300) }; }
  }

  // The token form: every request that met a 401 waits on the same prompt.
  let tokenPrompt = null;

  function askForToken(message, refused) {
    // Another request may have stored a new token meanwhile: try it before asking.
    const current = sessionStorage.getItem(TOKEN_KEY);
    if (current && current !== refused) return Promise.resolve();
    if (tokenPrompt) return tokenPrompt;
    const panel = $('#token-panel');
    const form = $('#token-form');
    const input = $('#token-input');
    const note = $('#token-message');
    note.hidden = !message;
    note.textContent = message || '';
    panel.hidden = false;
    connection.set('auth', 'token needed');
    setTimeout(() => input.focus(), 0);
    tokenPrompt = new Promise((resolve) => {
      form.onsubmit = (event) => {
        event.preventDefault();
        const token = input.value.trim();
        if (!token) return;
        sessionStorage.setItem(TOKEN_KEY, token);
        input.value = '';
        panel.hidden = true;
        form.onsubmit = null;
        tokenPrompt = null;
        updateTokenButton();
        resolve();
      };
    });
    return tokenPrompt;
  }

  function updateTokenButton() {
    $('#forget-token').hidden = !sessionStorage.getItem(TOKEN_KEY);
  }

  $('#forget-token').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    updateTokenButton();
    route();
  });

  // ---------------------------------------------------------------------------------------------------------------
  // Pages and their lifetimes

  /** What a page holds while shown: timers and requests, stopped when the route changes. */
  class PageContext {
    constructor() {
      this.controller = new AbortController();
      this.timers = new Set();
      this.cleanups = [];
      this.alive = true;
    }

    get signal() { return this.controller.signal; }

    /** Runs fn now and then `ms` after each run ends (never two at once); errors are fn's to show. */
    every(ms, fn) {
      const loop = async () => {
        if (!this.alive) return;
        try { await fn(); } catch (error) { if (error.name !== 'AbortError') console.error(error); }
        if (!this.alive) return;
        const timer = setTimeout(() => { this.timers.delete(timer); loop(); }, ms);
        this.timers.add(timer);
      };
      loop();
    }

    later(ms, fn) {
      const timer = setTimeout(() => { this.timers.delete(timer); if (this.alive) fn(); }, ms);
      this.timers.add(timer);
    }

    onStop(fn) { this.cleanups.push(fn); }

    stop() {
      this.alive = false;
      this.controller.abort();
      for (const timer of this.timers) clearTimeout(timer);
      this.timers.clear();
      for (const fn of this.cleanups) { try { fn(); } catch (e) { console.error(e); } }
    }

    api(method, path, body) { return api(method, path, body, { signal: this.signal }); }
  }

  /** A message area for a page: show(error) puts the API's message in the page, clear() removes it. */
  function messageBox(test) {
    const el = h('div', { class: 'banner', role: 'alert', 'data-test': test || 'error', hidden: true });
    return {
      el,
      error(error, prefix) {
        if (error && error.name === 'AbortError') return;
        const text = error instanceof APIError
          ? (error.code && error.status ? error.code + ': ' : '') + error.message
          : String(error && error.message ? error.message : error);
        el.className = 'banner error';
        el.replaceChildren(h('strong', null, prefix ? prefix + ' ' : ''), text);
        el.hidden = false;
      },
      info(text, kind) {
        el.className = 'banner ' + (kind || 'info');
        el.replaceChildren(text);
        el.hidden = false;
      },
      clear() { el.hidden = true; el.replaceChildren(); },
    };
  }

  function pageHeader(title, subtitle, actions) {
    return h('div', { class: 'page-header' },
      h('div', null, h('h1', null, title), subtitle ? h('p', { class: 'subtitle' }, subtitle) : null),
      actions ? h('div', { class: 'page-actions' }, actions) : null);
  }

  function card(title, body, extra) {
    return h('section', { class: 'card' },
      title ? h('div', { class: 'card-header' }, h('h2', null, title), extra || null) : null,
      body);
  }

  /** A button that runs an async action once at a time, disabled meanwhile. */
  function actionButton(label, props, action) {
    const button = h('button', Object.assign({ type: 'button', class: 'button' }, props), label);
    button.addEventListener('click', async (event) => {
      event.preventDefault();
      event.stopPropagation();
      if (button.disabled) return;
      button.disabled = true;
      try { await action(); } finally { button.disabled = false; }
    });
    return button;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Overview

  const charts = { throughput: null, latency: null };

  function overviewPage(view, ctx, params) {
    const windowName = params.get('window') === '24h' ? '24h' : '1h';
    const messages = messageBox();
    const totals = h('div', { class: 'tiles', 'data-test': 'totals' });
    const queueBody = h('tbody');
    const queueTable = h('table', { class: 'table', 'data-test': 'queues' },
      h('thead', null, h('tr', null,
        h('th', null, 'Queue'), h('th', null, 'State'),
        STATUSES.map((s) => h('th', { class: 'num' }, s.charAt(0) + s.slice(1).toLowerCase())),
        h('th', null, 'Oldest waiting'), h('th', null, 'Limits'), h('th', { class: 'num' }, 'Runners'), h('th', null, ''))),
      queueBody);
    const queueEmpty = h('p', { class: 'empty', hidden: true, 'data-test': 'queues-empty' },
      'No queues yet. A queue appears once a job names it, or once it is paused or limited.');
    const updated = h('span', { class: 'muted small', 'data-test': 'updated' });

    const toggle = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Chart window' },
      ['1h', '24h'].map((w) => h('a', {
        href: '#/?window=' + w, class: w === windowName ? 'active' : '', 'data-test': 'window-' + w,
        'aria-pressed': w === windowName ? 'true' : 'false',
      }, w === '1h' ? 'Last hour' : 'Last day')));
    const throughputSummary = h('p', { class: 'chart-summary', 'data-test': 'throughput-summary' });
    const latencySummary = h('p', { class: 'chart-summary', 'data-test': 'latency-summary' });
    const throughputCanvas = h('canvas', { 'data-test': 'chart-throughput', 'aria-label': 'Jobs finished per minute', role: 'img' });
    const latencyCanvas = h('canvas', { 'data-test': 'chart-latency', 'aria-label': 'Enqueue to start latency per minute', role: 'img' });
    const chartMessages = messageBox('chart-error');

    view.append(
      pageHeader('Overview', 'Queues, their jobs per status, and what finished lately.', updated),
      messages.el,
      totals,
      card('Queues', h('div', { class: 'table-wrap' }, queueTable, queueEmpty)),
      card('Throughput and latency', h('div', null, chartMessages.el,
        h('div', { class: 'charts' },
          h('div', { class: 'chart' }, h('h3', null, 'Jobs finished per minute'), throughputSummary,
            h('div', { class: 'chart-box' }, throughputCanvas)),
          h('div', { class: 'chart' }, h('h3', null, 'Enqueue → start latency per minute'), latencySummary,
            h('div', { class: 'chart-box' }, latencyCanvas)))), toggle));

    ctx.onStop(() => {
      for (const key of Object.keys(charts)) { if (charts[key]) { charts[key].destroy(); charts[key] = null; } }
    });

    const renderQueues = (queues) => {
      const sums = Object.fromEntries(STATUSES.map((s) => [s, 0]));
      for (const q of queues) for (const s of STATUSES) sums[s] += (q.counts && q.counts[s]) || 0;
      totals.replaceChildren(...STATUSES.map((s) => h('a', {
        class: 'tile tile-' + s.toLowerCase(), href: '#/jobs?status=' + s, 'data-test': 'total-' + s,
      }, h('span', { class: 'tile-label' }, s.charAt(0) + s.slice(1).toLowerCase()),
      h('span', { class: 'tile-value' }, fmtInt(sums[s])))));
      queueEmpty.hidden = queues.length > 0;
      queueBody.replaceChildren(...queues.map((q) => {
        const jobsLink = (status) => '#/jobs?queue=' + encodeURIComponent(q.queue) + (status ? '&status=' + status : '');
        const toggleButton = q.paused
          ? actionButton('Resume', { class: 'button small', 'data-test': 'queue-resume' }, () => setPaused(q.queue, false))
          : actionButton('Pause', { class: 'button small', 'data-test': 'queue-pause' }, () => setPaused(q.queue, true));
        return h('tr', { 'data-test': 'queue-row', 'data-queue': q.queue, class: q.paused ? 'row-paused' : '' },
          h('td', null, h('a', { href: jobsLink(), class: 'strong' }, q.queue)),
          h('td', null, q.paused
            ? h('span', { class: 'pill pill-paused', 'data-test': 'queue-paused' }, 'paused')
            : h('span', { class: 'pill pill-active', 'data-test': 'queue-active' }, 'active')),
          STATUSES.map((s) => h('td', { class: 'num' },
            h('a', { href: jobsLink(s), class: 'count count-' + s.toLowerCase() + (q.counts[s] ? '' : ' zero'), 'data-test': 'count-' + s },
              fmtInt(q.counts[s])))),
          h('td', { 'data-test': 'oldest-queued' }, q.oldest_queued_seconds === null || q.oldest_queued_seconds === undefined
            ? h('span', { class: 'muted' }, '–')
            : h('span', { class: q.oldest_queued_seconds > 300 ? 'warn' : '' }, fmtAge(q.oldest_queued_seconds))),
          h('td', { class: 'small', 'data-test': 'limits' }, limitsText(q.limits) || h('span', { class: 'muted' }, 'none')),
          h('td', { class: 'num' }, q.runners === undefined ? '–' : fmtInt(q.runners)),
          h('td', { class: 'actions' }, toggleButton));
      }));
    };

    const setPaused = async (queue, paused) => {
      try {
        await ctx.api('POST', '/queues/' + encodeURIComponent(queue) + (paused ? '/pause' : '/resume'));
        await refreshQueues();
      } catch (error) { messages.error(error, (paused ? 'Could not pause ' : 'Could not resume ') + queue + ':'); }
    };

    const refreshQueues = async () => {
      try {
        const data = await ctx.api('GET', '/queues');
        renderQueues(data.queues || []);
        messages.clear();
        updated.textContent = 'Updated ' + new Date().toLocaleTimeString();
      } catch (error) { messages.error(error, 'Could not load the queues:'); }
    };

    const refreshStats = async () => {
      try {
        const data = await ctx.api('GET', '/stats?window=' + windowName);
        chartMessages.clear();
        drawCharts(data, windowName, throughputCanvas, latencyCanvas, throughputSummary, latencySummary, chartMessages);
      } catch (error) { chartMessages.error(error, 'Could not load the statistics:'); }
    };

    ctx.every(REFRESH_MS, refreshQueues);
    ctx.every(STATS_REFRESH_MS, refreshStats);
  }

  /** Every minute of the window (oldest first) with the answer's figures; minutes without data count 0. */
  function minuteSeries(data, windowName) {
    const count = windowName === '24h' ? 1440 : 60;
    const now = Math.floor(Date.now() / 60000);
    const byMinute = new Map();
    for (const m of (data && data.minutes) || []) byMinute.set(Math.floor(Date.parse(m.minute) / 60000), m);
    const rows = [];
    for (let i = count - 1; i >= 0; i--) {
      const minute = now - i;
      const m = byMinute.get(minute);
      rows.push({
        minute, label: new Date(minute * 60000).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' }),
        completed: m ? m.completed || 0 : 0, failed: m ? m.failed || 0 : 0, cancelled: m ? m.cancelled || 0 : 0,
        p50: m && m.latency_p50_ms !== null && m.latency_p50_ms !== undefined ? m.latency_p50_ms : null,
        p99: m && m.latency_p99_ms !== null && m.latency_p99_ms !== undefined ? m.latency_p99_ms : null,
      });
    }
    return rows;
  }

  function drawCharts(data, windowName, throughputCanvas, latencyCanvas, throughputSummary, latencySummary, chartMessages) {
    const rows = minuteSeries(data, windowName);
    const sum = (key) => rows.reduce((acc, r) => acc + r[key], 0);
    const span = windowName === '24h' ? 'in the last day' : 'in the last hour';
    throughputSummary.replaceChildren(
      h('span', { class: 'legend-dot', style: { background: COLORS.completed } }), fmtInt(sum('completed')) + ' completed  ',
      h('span', { class: 'legend-dot', style: { background: COLORS.failed } }), fmtInt(sum('failed')) + ' failed  ',
      h('span', { class: 'legend-dot', style: { background: COLORS.cancelled } }), fmtInt(sum('cancelled')) + ' cancelled ' + span);
    const withLatency = rows.filter((r) => r.p50 !== null);
    const last = withLatency[withLatency.length - 1];
    latencySummary.replaceChildren(...(last
      ? [h('span', { class: 'legend-dot', style: { background: COLORS.p50 } }), 'p50 ' + fmtMs(last.p50) + '  ',
        h('span', { class: 'legend-dot', style: { background: COLORS.p99 } }), 'p99 ' + fmtMs(last.p99) + ' in the latest minute with starts']
      : ['No job finished ' + span + '.']));
    throughputCanvas.dataset.points = String(rows.filter((r) => r.completed + r.failed + r.cancelled > 0).length);
    latencyCanvas.dataset.points = String(withLatency.length);

    if (typeof window.Chart !== 'function') {
      chartMessages.info('Charts are unavailable: Chart.js did not load from /ui/vendor/chart.min.js.', 'warning');
      return;
    }
    const labels = rows.map((r) => r.label);
    const dense = rows.length > 120;
    const baseOptions = {
      animation: false, responsive: true, maintainAspectRatio: false,
      interaction: { mode: 'index', intersect: false },
      plugins: {
        // The summary line above each chart is its legend.
        legend: { display: false },
        tooltip: { mode: 'index', intersect: false },
      },
    };
    const xAxis = { grid: { display: false }, ticks: { maxTicksLimit: dense ? 7 : 10, maxRotation: 0, autoSkip: true, color: '#6b7385' } };

    const throughput = {
      labels,
      datasets: [
        { label: 'Completed', data: rows.map((r) => r.completed), backgroundColor: COLORS.completed, stack: 'finished' },
        { label: 'Failed', data: rows.map((r) => r.failed), backgroundColor: COLORS.failed, stack: 'finished' },
        { label: 'Cancelled', data: rows.map((r) => r.cancelled), backgroundColor: COLORS.cancelled, stack: 'finished' },
      ].map((d) => Object.assign(d, { barPercentage: dense ? 1 : 0.8, categoryPercentage: dense ? 1 : 0.9, borderRadius: dense ? 0 : 2 })),
    };
    const latency = {
      labels,
      datasets: [
        { label: 'p50', data: rows.map((r) => r.p50), borderColor: COLORS.p50, backgroundColor: COLORS.p50 },
        { label: 'p99', data: rows.map((r) => r.p99), borderColor: COLORS.p99, backgroundColor: COLORS.p99 },
      ].map((d) => Object.assign(d, { borderWidth: 2, pointRadius: dense ? 1 : 2, pointHoverRadius: 4, tension: 0.25, spanGaps: false })),
    };

    if (charts.throughput && charts.throughput.canvas === throughputCanvas) {
      charts.throughput.data = throughput;
      charts.throughput.update('none');
    } else {
      charts.throughput = new window.Chart(throughputCanvas, {
        type: 'bar', data: throughput,
        options: Object.assign({}, baseOptions, {
          scales: {
            x: Object.assign({ stacked: true }, xAxis),
            y: { stacked: true, beginAtZero: true, ticks: { precision: 0, color: '#6b7385' }, grid: { color: '#eef1f6' } },
          },
        }),
      });
    }
    if (charts.latency && charts.latency.canvas === latencyCanvas) {
      charts.latency.data = latency;
      charts.latency.update('none');
    } else {
      charts.latency = new window.Chart(latencyCanvas, {
        type: 'line', data: latency,
        options: Object.assign({}, baseOptions, {
          scales: {
            x: xAxis,
            y: { beginAtZero: true, ticks: { color: '#6b7385', callback: (v) => fmtMs(v) }, grid: { color: '#eef1f6' } },
          },
          plugins: Object.assign({}, baseOptions.plugins, {
            tooltip: { mode: 'index', intersect: false, callbacks: { label: (c) => c.dataset.label + ': ' + (c.parsed.y === null ? '–' : fmtMs(c.parsed.y)) } },
          }),
        }),
      });
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Jobs

  /** Pages already passed, per filter, so that "Newer" goes back to where "Older" came from. */
  const pageHistory = new Map();

  function jobsPage(view, ctx, params) {
    const filter = {
      status: params.get('status') || '', kind: params.get('kind') || '', queue: params.get('queue') || '', args: params.get('args') || '',
    };
    const after = params.get('after') || '';
    const filterKey = JSON.stringify(filter);
    const messages = messageBox();
    const bulkMessages = messageBox('bulk-result');

    // The filter form.
    const statusSelect = h('select', { id: 'filter-status', name: 'status', 'data-test': 'filter-status' },
      h('option', { value: '' }, 'Any status'),
      STATUSES.map((s) => h('option', { value: s, selected: s === filter.status }, s)));
    const kindInput = h('input', { id: 'filter-kind', name: 'kind', value: filter.kind, placeholder: 'any kind', list: 'kinds-list', 'data-test': 'filter-kind', spellcheck: 'false' });
    const queueInput = h('input', { id: 'filter-queue', name: 'queue', value: filter.queue, placeholder: 'any queue', list: 'queues-list', 'data-test': 'filter-queue', spellcheck: 'false' });
    const argsInput = h('input', { id: 'filter-args', name: 'args', value: filter.args, placeholder: '{"merchant_id": 42}', class: 'mono', 'data-test': 'filter-args', spellcheck: 'false' });
    const kindsList = h('datalist', { id: 'kinds-list' });
    const queuesList = h('datalist', { id: 'queues-list' });
    const formError = h('p', { class: 'form-error', hidden: true, 'data-test': 'filter-error' });

    const form = h('form', { class: 'filters', 'data-test': 'filters' },
      h('label', null, h('span', null, 'Status'), statusSelect),
      h('label', null, h('span', null, 'Kind'), kindInput),
      h('label', null, h('span', null, 'Queue'), queueInput),
      h('label', { class: 'grow' }, h('span', null, 'Arguments contain'), argsInput),
      h('div', { class: 'filter-buttons' },
        h('button', { type: 'submit', class: 'button primary', 'data-test': 'filter-apply' }, 'Apply'),
        h('a', { href: '#/jobs', class: 'button', 'data-test': 'filter-clear' }, 'Clear')),
      kindsList, queuesList);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const next = { status: statusSelect.value, kind: kindInput.value.trim(), queue: queueInput.value.trim(), args: argsInput.value.trim() };
      if (next.args) {
        const parsed = parseArgs(next.args);
        if (parsed.error) {
          formError.textContent = parsed.error;
          formError.hidden = false;
          argsInput.focus();
          return;
        }
        next.args = JSON.stringify(parsed.value);
      }
      formError.hidden = true;
      location.hash = jobsHash(next);
    });

    // Bulk cancel and retry of what the filter selects, confirmed in the page.
    const confirmPanel = h('div', { class: 'confirm', hidden: true, 'data-test': 'bulk-confirm', role: 'dialog', 'aria-modal': 'false' });
    const openConfirm = (action) => {
      const parsedArgs = filter.args ? parseArgs(filter.args) : { value: undefined };
      if (parsedArgs.error) { messages.error(parsedArgs.error); return; }
      const verb = action === 'cancel' ? 'Cancel' : 'Retry';
      const which = action === 'cancel'
        ? 'every QUEUED or RUNNING job'
        : 'every FAILED or CANCELLED job';
      const conditions = describeFilter(filter);
      const confirmButton = actionButton(verb + ' them', { class: 'button ' + (action === 'cancel' ? 'danger' : 'primary'), 'data-test': 'bulk-confirm-yes' },
        () => runBulk(action, parsedArgs.value));
      confirmPanel.replaceChildren(
        h('div', { class: 'confirm-text' },
          h('strong', null, verb + ' ' + which + (conditions.length ? ' where' : '') + ':'),
          conditions.length
            ? h('ul', { class: 'conditions', 'data-test': 'bulk-filter' }, conditions.map((c) => h('li', null, c)))
            : h('p', { class: 'warn', 'data-test': 'bulk-filter' }, 'No filter is set: this is every such job in every queue.')),
        h('div', { class: 'confirm-actions' },
          confirmButton,
          h('button', { type: 'button', class: 'button', 'data-test': 'bulk-confirm-no', onclick: () => { confirmPanel.hidden = true; } }, 'Keep them')));
      confirmPanel.hidden = false;
      confirmButton.focus();
    };

    const runBulk = async (action, args) => {
      const body = {};
      if (filter.status) body.status = filter.status;
      if (filter.kind) body.kind = filter.kind;
      if (filter.queue) body.queue = filter.queue;
      if (args !== undefined) body.args = args;
      let total = 0;
      const past = action === 'cancel' ? 'Cancelled' : 'Queued again';
      try {
        // The API handles a page of the selected jobs per call and answers the cursor of the next one (`next`; `more`
        // in an answer of the first shape): call until none is left.
        body.limit = 1000;
        for (let round = 0; round < 100000; round++) {
          const answer = await ctx.api('POST', '/jobs/' + action, body);
          total += answer.count || 0;
          bulkMessages.info(past + ' ' + fmtInt(total) + ' so far…');
          if (answer.next !== null && answer.next !== undefined) body.after = answer.next;
          else if (!(answer.more && answer.count)) break;
        }
        confirmPanel.hidden = true;
        bulkMessages.info(past + ' ' + fmtInt(total) + (total === 1 ? ' job.' : ' jobs.'), 'success');
        bulkMessages.el.dataset.count = String(total);
        refresh();
      } catch (error) {
        bulkMessages.error(error, past + ' ' + fmtInt(total) + ' before an error:');
      }
    };

    const bulkButtons = [
      h('button', { type: 'button', class: 'button', 'data-test': 'bulk-cancel', onclick: () => openConfirm('cancel') }, 'Cancel matching…'),
      h('button', { type: 'button', class: 'button', 'data-test': 'bulk-retry', onclick: () => openConfirm('retry') }, 'Retry matching…'),
    ];

    // The list.
    const body = h('tbody');
    const empty = h('p', { class: 'empty', hidden: true, 'data-test': 'jobs-empty' }, 'No job matches.');
    const table = h('table', { class: 'table jobs-table', 'data-test': 'jobs' },
      h('thead', null, h('tr', null,
        h('th', { class: 'num' }, 'ID'), h('th', null, 'Kind'), h('th', null, 'Queue'), h('th', null, 'Status'),
        h('th', null, 'Progress'), h('th', { class: 'num' }, 'Attempt'), h('th', null, 'Arguments'),
        h('th', null, 'Created'), h('th', null, 'Finished'))),
      body);
    const stack = pageHistory.get(filterKey) || [];
    const pager = h('div', { class: 'pager' });
    const updated = h('span', { class: 'muted small', 'data-test': 'updated' });

    view.append(
      pageHeader('Jobs', 'Newest first' + (after ? ', older than job #' + after : '') + '.', updated),
      messages.el,
      card(null, h('div', null, form, formError)),
      h('div', { class: 'bulk-bar' }, h('span', { class: 'muted small' }, 'Bulk, for every job the filter selects:'), bulkButtons),
      confirmPanel,
      bulkMessages.el,
      card(null, h('div', { class: 'table-wrap' }, table, empty, pager)));

    const render = (page) => {
      const jobs = page.jobs || [];
      empty.hidden = jobs.length > 0;
      body.replaceChildren(...jobs.map(jobRow));
      const buttons = [];
      if (after) {
        buttons.push(h('a', { class: 'button small', href: jobsHash(filter), 'data-test': 'page-newest' }, '« Newest'));
        const previous = stack.length ? stack[stack.length - 1] : '';
        buttons.push(h('a', {
          class: 'button small', href: jobsHash(Object.assign({}, filter, { after: previous })), 'data-test': 'page-newer',
          onclick: () => { stack.pop(); pageHistory.set(filterKey, stack); },
        }, '‹ Newer'));
      }
      if (page.next) {
        buttons.push(h('a', {
          class: 'button small', href: jobsHash(Object.assign({}, filter, { after: page.next })), 'data-test': 'page-older',
          onclick: () => { stack.push(after); pageHistory.set(filterKey, stack); },
        }, 'Older ›'));
      }
      pager.replaceChildren(h('span', { class: 'muted small' }, fmtInt(jobs.length) + (jobs.length === 1 ? ' job' : ' jobs') + ' on this page'), h('span', { class: 'pager-buttons' }, buttons));
    };

    const refresh = async () => {
      const query = new URLSearchParams();
      for (const key of ['status', 'kind', 'queue', 'args']) if (filter[key]) query.set(key, filter[key]);
      if (after) query.set('after', after);
      query.set('limit', '50');
      try {
        const page = await ctx.api('GET', '/jobs?' + query.toString());
        render(page);
        messages.clear();
        updated.textContent = 'Updated ' + new Date().toLocaleTimeString();
      } catch (error) { messages.error(error, 'Could not list the jobs:'); }
    };

    // The first page follows new jobs; an older page stays as it was read.
    if (after) refresh(); else ctx.every(REFRESH_MS, refresh);

    // Suggestions for the kind and queue inputs (best effort).
    ctx.api('GET', '/kinds').then((data) => {
      kindsList.replaceChildren(...((data && data.kinds) || []).map((k) => h('option', { value: k.kind })));
    }).catch(() => {});
    ctx.api('GET', '/queues').then((data) => {
      queuesList.replaceChildren(...((data && data.queues) || []).map((q) => h('option', { value: q.queue })));
    }).catch(() => {});
  }

  function parseArgs(text) {
    let value;
    try { value = JSON.parse(text); } catch (e) { return { error: 'Arguments: not JSON (' + e.message + '). Write an object, such as {"merchant_id": 42}.' }; }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      return { error: 'Arguments: must be a JSON object, such as {"merchant_id": 42}.' };
    }
    return { value };
  }

  function describeFilter(filter) {
    const out = [];
    if (filter.status) out.push('status is ' + filter.status);
    if (filter.kind) out.push('kind is ' + filter.kind);
    if (filter.queue) out.push('queue is ' + filter.queue);
    if (filter.args) out.push('arguments contain ' + filter.args);
    return out;
  }

  function jobsHash(filter) {
    const query = new URLSearchParams();
    for (const key of ['status', 'kind', 'queue', 'args', 'after']) if (filter[key]) query.set(key, filter[key]);
    const text = query.toString();
    return '#/jobs' + (text ? '?' + text : '');
  }

  function progressBar(job, test, large) {
    const value = Math.max(0, Math.min(100, Number(job.progress) || 0));
    const rounded = Math.round(value * 10) / 10;
    return h('div', {
      class: 'progress' + (large ? ' progress-large' : '') + ' progress-' + String(job.status).toLowerCase(),
      role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': rounded,
      'aria-label': 'Progress of job ' + job.job_id, 'data-test': test,
    }, h('div', { class: 'progress-fill', style: { width: value + '%' } }));
  }

  function jobRow(job) {
    const href = '#/jobs/' + job.job_id;
    const row = h('tr', { 'data-test': 'job-row', 'data-job-id': job.job_id, 'data-status': job.status, class: 'clickable' },
      h('td', { class: 'num' }, h('a', { href, class: 'strong', 'data-test': 'job-link' }, '#' + job.job_id)),
      h('td', null, job.kind),
      h('td', null, job.queue),
      h('td', null, statusBadge(job.status, 'job-row-status')),
      h('td', { class: 'progress-cell' }, progressBar(job, 'row-progress'), h('span', { class: 'small muted' }, (Math.round(job.progress * 10) / 10) + ' %')),
      h('td', { class: 'num' }, job.attempt + ' / ' + job.max_attempts),
      h('td', { class: 'mono small args', title: compactJSON(job.args) }, compactJSON(job.args, 60)),
      h('td', null, timeEl(job.created_at)),
      h('td', null, timeEl(job.finished_at)));
    row.addEventListener('click', (event) => {
      if (event.target.closest('a, button')) return;
      location.hash = href;
    });
    return row;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // A job

  function jobPage(view, ctx, params, id) {
    const messages = messageBox();
    const header = h('div', { class: 'page-header' });
    const progressCard = h('section', { class: 'card' });
    const details = h('section', { class: 'card' });
    const payloads = h('div', { class: 'grid-2' });
    const errors = h('section', { class: 'card' });
    const streamState = h('span', { class: 'stream-state', 'data-test': 'stream-state', 'data-state': 'connecting' }, 'connecting…');
    const confirm = h('div', { class: 'confirm', hidden: true, 'data-test': 'cancel-confirm', role: 'dialog' });
    let job = null;
    let streamAbort = null;

    view.append(
      h('nav', { class: 'breadcrumb' }, h('a', { href: '#/jobs' }, 'Jobs'), ' / ', '#' + id),
      header, messages.el, confirm, progressCard, details, payloads, errors);

    const setStream = (state, text) => { streamState.dataset.state = state; streamState.textContent = text; };

    const render = () => {
      if (!job) return;
      const unfinished = UNFINISHED.has(job.status);
      const cancelButton = h('button', {
        type: 'button', class: 'button danger-outline', 'data-test': 'cancel-job', disabled: !unfinished || !!job.cancel_requested_at,
        title: job.cancel_requested_at ? 'A cancel was requested ' + relative(job.cancel_requested_at) : undefined,
        onclick: () => askCancel(),
      }, job.cancel_requested_at && unfinished ? 'Cancelling…' : 'Cancel');
      const retryButton = actionButton('Retry', {
        class: 'button', 'data-test': 'retry-job', disabled: !(job.status === 'FAILED' || job.status === 'CANCELLED'),
      }, () => act('retry'));
      header.replaceChildren(
        h('div', null,
          h('h1', null, 'Job #' + job.job_id, ' ', statusBadge(job.status, 'job-status')),
          h('p', { class: 'subtitle' }, h('span', { class: 'mono' }, job.kind), ' in queue ', h('a', { href: '#/jobs?queue=' + encodeURIComponent(job.queue) }, job.queue))),
        h('div', { class: 'page-actions' }, cancelButton, retryButton));

      const value = Math.round((Number(job.progress) || 0) * 10) / 10;
      progressCard.replaceChildren(
        h('div', { class: 'card-header' }, h('h2', null, 'Progress'), streamState),
        h('div', { class: 'progress-row' },
          progressBar(job, 'progress', true),
          h('span', { class: 'progress-value', 'data-test': 'progress-value' }, value + ' %')),
        h('p', { class: 'muted small' },
          job.total !== null && job.total !== undefined
            ? fmtInt(job.processed) + ' of ' + fmtInt(job.total) + ' processed'
            : (job.processed ? fmtInt(job.processed) + ' processed' : unfinished ? 'No progress reported yet.' : 'No progress reported.'),
          job.started_at && !job.finished_at ? ' · running for ' : '',
          job.started_at && !job.finished_at ? timeEl(job.started_at, 'age') : '',
          job.started_at && job.finished_at ? ' · ran ' + fmtMs(Date.parse(job.finished_at) - Date.parse(job.started_at)) : ''));

      const runnerID = job.runner_id || null;
      const meta = job.meta || {};
      const field = (label, value, test) => [h('dt', null, label), h('dd', { 'data-test': test }, value)];
      details.replaceChildren(
        h('div', { class: 'card-header' }, h('h2', null, 'Details')),
        h('dl', { class: 'fields' },
          field('Status', statusBadge(job.status), 'field-status'),
          field('Kind', h('a', { href: '#/jobs?kind=' + encodeURIComponent(job.kind), class: 'mono' }, job.kind)),
          field('Queue', h('a', { href: '#/jobs?queue=' + encodeURIComponent(job.queue) }, job.queue)),
          field('Attempt', job.attempt + ' of ' + job.max_attempts, 'field-attempt'),
          field('Priority', String(job.priority)),
          field('Runner', runnerID
            ? h('a', { href: '#/runners?runner=' + encodeURIComponent(runnerID), class: 'mono', 'data-test': 'job-runner' }, runnerID)
            : h('span', { class: 'muted', 'data-test': 'job-runner' }, job.status === 'RUNNING' ? 'unknown' : 'none'), 'field-runner'),
          field('Created', timeEl(job.created_at, 'both')),
          field('Due', timeEl(job.run_at, 'both')),
          field('Started', timeEl(job.started_at, 'both')),
          field('Finished', timeEl(job.finished_at, 'both')),
          job.cancel_requested_at ? field('Cancel requested', timeEl(job.cancel_requested_at, 'both')) : null,
          field('Time limit', job.timeout_ms ? fmtMs(job.timeout_ms) + ' per attempt' : h('span', { class: 'muted' }, 'none of its own')),
          job.snoozed ? field('Snoozed', String(job.snoozed) + '×') : null,
          field('Unique key', job.unique_key ? h('span', { class: 'mono' }, job.unique_key) : h('span', { class: 'muted' }, 'none')),
          meta.request_id ? field('Request ID', h('span', { class: 'mono small' }, meta.request_id)) : null,
          typeof meta.traceparent === 'string' && meta.traceparent.length >= 35
            ? field('Trace ID', h('span', { class: 'mono small' }, meta.traceparent.slice(3, 35))) : null,
          meta.schedule ? field('Schedule', h('a', { href: '#/schedules' }, meta.schedule)) : null,
          job.download_url ? field('File', h('button', {
            type: 'button', class: 'link-button', 'data-test': 'download',
            onclick: () => download(job.download_url, 'job-' + job.job_id + '.csv', messages),
          }, 'Download ' + job.download_url.split('/').pop())) : null));

      payloads.replaceChildren(
        card('Arguments', h('pre', { class: 'json', 'data-test': 'job-args' }, prettyJSON(job.args))),
        card('Result', job.result === null || job.result === undefined
          ? h('p', { class: 'muted', 'data-test': 'job-result' }, unfinished ? 'Not finished yet.' : 'None.')
          : h('pre', { class: 'json', 'data-test': 'job-result' }, prettyJSON(job.result))),
        card('Meta', h('pre', { class: 'json small' }, prettyJSON(meta))));

      const list = job.errors || [];
      errors.replaceChildren(
        h('div', { class: 'card-header' }, h('h2', null, 'Failed attempts'), h('span', { class: 'muted small' }, list.length ? fmtInt(list.length) : '')),
        list.length
          ? h('table', { class: 'table errors-table', 'data-test': 'job-errors' },
            h('thead', null, h('tr', null, h('th', { class: 'num' }, 'Attempt'), h('th', null, 'When'), h('th', null, 'Runner'), h('th', null, 'Error'))),
            h('tbody', null, list.map((e) => h('tr', { 'data-test': 'job-error' },
              h('td', { class: 'num' }, e.attempt === undefined ? '–' : String(e.attempt)),
              h('td', { class: 'nowrap' }, timeEl(e.at, 'both')),
              h('td', null, e.runner ? h('a', { href: '#/runners?runner=' + encodeURIComponent(e.runner), class: 'mono small' }, e.runner) : '–'),
              h('td', null, h('pre', { class: 'error-text' }, e.error || ''))))))
          : h('p', { class: 'muted', 'data-test': 'job-errors-empty' }, 'No failed attempt.'));
    };

    const askCancel = () => {
      const yes = actionButton('Cancel job #' + id, { class: 'button danger', 'data-test': 'confirm-cancel-job' }, async () => {
        confirm.hidden = true;
        await act('cancel');
      });
      confirm.replaceChildren(
        h('div', { class: 'confirm-text' }, h('strong', null, 'Cancel job #' + id + '?'), ' ',
          job && job.status === 'RUNNING' ? 'Its runner is told to stop it; it becomes CANCELLED once it has.' : 'It will not run.'),
        h('div', { class: 'confirm-actions' }, yes,
          h('button', { type: 'button', class: 'button', 'data-test': 'confirm-keep-job', onclick: () => { confirm.hidden = true; } }, 'Keep it')));
      confirm.hidden = false;
      yes.focus();
    };

    const act = async (action) => {
      try {
        job = await ctx.api('POST', '/jobs/' + id + '/' + action);
        messages.clear();
        render();
        if (UNFINISHED.has(job.status)) follow();
      } catch (error) {
        messages.error(error, action === 'cancel' ? 'Could not cancel:' : 'Could not retry:');
        load();
      }
    };

    const load = async () => {
      try {
        job = await ctx.api('GET', '/jobs/' + id);
        messages.clear();
        render();
      } catch (error) { messages.error(error, 'Could not read job #' + id + ':'); }
    };

    // The event stream: read with fetch (EventSource cannot send the token), parsed by hand. A stream that closes
    // without `end` (the server stopped) is opened again; a stream that cannot be opened falls back to polling.
    const follow = () => {
      if (streamAbort) streamAbort.abort();
      const controller = new AbortController();
      streamAbort = controller;
      ctx.onStop(() => controller.abort());
      let failures = 0;
      const run = async () => {
        while (ctx.alive && !controller.signal.aborted) {
          setStream('connecting', 'connecting…');
          let ended = false;
          try {
            ended = await readEvents('/jobs/' + id + '/events', controller.signal, (event, data) => {
              if (event === 'job') {
                try { job = JSON.parse(data); } catch (e) { return; }
                failures = 0;
                setStream('live', 'live');
                messages.clear();
                render();
              }
            });
          } catch (error) {
            if (error.name === 'AbortError' || controller.signal.aborted) return;
            failures++;
            if (error instanceof APIError && error.status && error.status < 500 && error.status !== 429) {
              messages.error(error, 'Could not follow job #' + id + ':');
              setStream('off', 'not live');
              return;
            }
            setStream('retrying', 'reconnecting…');
            // Meanwhile, read it plainly.
            await load();
          }
          if (ended) { setStream('ended', job && UNFINISHED.has(job.status) ? 'stream ended' : 'finished'); return; }
          if (!ctx.alive || controller.signal.aborted) return;
          await new Promise((resolve) => ctx.later(Math.min(5000, 500 * Math.pow(2, Math.min(failures, 4))), resolve));
        }
      };
      run();
    };

    load().then(() => follow());
  }

  /**
   * Reads a text/event-stream with fetch and calls onEvent(name, data) for each event; returns true once the server
   * sent `end`, false when the stream closed without it. Throws APIError for an error answer.
   */
  async function readEvents(path, signal, onEvent) {
    for (;;) {
      const sentToken = sessionStorage.getItem(TOKEN_KEY);
      let response;
      try {
        response = await fetch(path, { headers: Object.assign({ Accept: 'text/event-stream' }, authHeaders()), signal, cache: 'no-store' });
      } catch (error) {
        if (error.name === 'AbortError') throw error;
        connection.set('down', 'API unreachable');
        throw new APIError(0, 'NETWORK', 'The API cannot be reached (' + error.message + ').');
      }
      if (response.status === 401) {
        await askForToken('The token was refused.', sentToken);
        continue;
      }
      if (!response.ok) {
        const data = await readJSON(response);
        throw new APIError(response.status, (data && data.error) || 'HTTP_' + response.status, (data && data.message) || 'HTTP ' + response.status);
      }
      connection.set('up', 'live');
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      let event = 'message';
      let data = [];
      const line = (text) => {
        if (text === '') {
          if (data.length) onEvent(event, data.join('\n'));
          const name = event;
          event = 'message';
          data = [];
          return name === 'end';
        }
        if (text.startsWith(':')) return false;
        const colon = text.indexOf(':');
        const field = colon === -1 ? text : text.slice(0, colon);
        let value = colon === -1 ? '' : text.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
        return false;
      };
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let index;
          while ((index = buffer.search(/\r\n|\r|\n/)) !== -1) {
            const text = buffer.slice(0, index);
            buffer = buffer.slice(index + (buffer[index] === '\r' && buffer[index + 1] === '\n' ? 2 : 1));
            if (line(text)) { reader.cancel().catch(() => {}); return true; }
          }
        }
      } finally {
        try { reader.releaseLock(); } catch (e) { /* already released */ }
      }
      return false;
    }
  }

  /** Downloads a file with the token (a plain link could not send it). */
  async function download(url, name, messages) {
    try {
      const response = await fetch(url, { headers: authHeaders() });
      if (!response.ok) {
        const data = await readJSON(response);
        throw new APIError(response.status, (data && data.error) || 'HTTP_' + response.status, (data && data.message) || 'HTTP ' + response.status);
      }
      const blob = await response.blob();
      const link = h('a', { href: URL.createObjectURL(blob), download: name });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    } catch (error) { messages.error(error, 'Could not download:'); }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Runners

  function runnersPage(view, ctx, params) {
    const highlight = params.get('runner') || '';
    const messages = messageBox();
    const updated = h('span', { class: 'muted small', 'data-test': 'updated' });
    const summary = h('p', { class: 'subtitle', 'data-test': 'runners-summary' }, 'Runner processes and their leases.');
    const body = h('tbody');
    const empty = h('p', { class: 'empty', hidden: true, 'data-test': 'runners-empty' },
      'No runner has registered. Start skipper-runner (or your own program with a JobRunner) against this database.');
    const table = h('table', { class: 'table', 'data-test': 'runners' },
      h('thead', null, h('tr', null,
        h('th', null, 'Runner'), h('th', null, 'Host'), h('th', { class: 'num' }, 'PID'), h('th', null, 'Queues'),
        h('th', null, 'Kinds'), h('th', null, 'Running'), h('th', null, 'Started'), h('th', null, 'Heartbeat'),
        h('th', null, 'State'))),
      body);
    view.append(
      h('div', { class: 'page-header' }, h('div', null, h('h1', null, 'Runners'), summary), h('div', { class: 'page-actions' }, updated)),
      messages.el,
      card(null, h('div', { class: 'table-wrap' }, table, empty)));

    const chips = (list, cls) => h('div', { class: 'chips' }, (list || []).map((item) => h('span', { class: 'chip ' + (cls || '') }, item)));

    const render = (runners) => {
      empty.hidden = runners.length > 0;
      const stale = runners.filter((r) => r.stale).length;
      summary.replaceChildren(
        fmtInt(runners.length - stale) + ' live',
        stale ? h('span', { class: 'danger-text' }, ' · ' + fmtInt(stale) + ' stale (its heartbeat is older than half its lease; its jobs are rescued once it misses the whole lease)') : '',
        '.');
      body.replaceChildren(...runners.map((r) => {
        const workers = Number(r.workers) || 0;
        const running = Number(r.running) || 0;
        const load = workers ? Math.min(100, (running / workers) * 100) : 0;
        const leaseSeconds = Number(r.lease_seconds) || 0;
        const age = Number(r.heartbeat_age_seconds);
        return h('tr', {
          'data-test': 'runner-row', 'data-runner-id': r.runner_id, 'data-stale': r.stale ? 'true' : 'false',
          class: (r.stale ? 'row-stale' : '') + (highlight && highlight === r.runner_id ? ' row-highlight' : ''),
        },
        h('td', { class: 'nowrap' }, h('span', { class: 'mono strong' }, r.runner_id)),
        h('td', { class: 'nowrap' }, r.host),
        h('td', { class: 'num mono' }, String(r.pid)),
        h('td', null, chips(r.queues, 'chip-queue')),
        h('td', null, chips(r.kinds)),
        h('td', { class: 'load-cell', 'data-test': 'runner-running' },
          h('div', { class: 'load' }, h('div', { class: 'load-fill', style: { width: load + '%' } })),
          h('span', { class: 'small' }, fmtInt(running) + ' / ' + fmtInt(workers))),
        h('td', { class: 'nowrap' }, timeEl(r.started_at)),
        h('td', { class: 'nowrap', 'data-test': 'runner-heartbeat' },
          h('span', { class: r.stale ? 'danger-text strong' : (leaseSeconds && age > leaseSeconds / 3 ? 'warn' : '') },
            Number.isFinite(age) ? fmtAge(age) + ' ago' : '–'),
          leaseSeconds ? h('span', { class: 'muted small' }, ' / lease ' + fmtAge(leaseSeconds)) : ''),
        h('td', null, r.stale
          ? h('span', { class: 'pill pill-stale', 'data-test': 'runner-stale' }, 'stale')
          : h('span', { class: 'pill pill-live', 'data-test': 'runner-live' }, 'live')));
      }));
    };

    ctx.every(REFRESH_MS, async () => {
      try {
        const data = await ctx.api('GET', '/runners');
        render((data && data.runners) || []);
        messages.clear();
        updated.textContent = 'Updated ' + new Date().toLocaleTimeString();
      } catch (error) { messages.error(error, 'Could not load the runners:'); }
    });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Schedules

  function schedulesPage(view, ctx) {
    const messages = messageBox();
    const updated = h('span', { class: 'muted small', 'data-test': 'updated' });
    const body = h('tbody');
    const empty = h('p', { class: 'empty', hidden: true, 'data-test': 'schedules-empty' },
      'No schedule yet. POST /schedules makes one, and a program declares its own with PeriodicJob.');
    const table = h('table', { class: 'table', 'data-test': 'schedules' },
      h('thead', null, h('tr', null,
        h('th', null, 'Name'), h('th', null, 'When'), h('th', null, 'Kind'), h('th', null, 'Queue'),
        h('th', null, 'Next run'), h('th', null, 'Last run'), h('th', null, 'Last job'), h('th', null, 'Source'),
        h('th', null, 'State'), h('th', null, ''))),
      body);
    view.append(
      pageHeader('Schedules', 'Periodic jobs: one job per tick, whatever the number of runners.', updated),
      messages.el,
      card(null, h('div', { class: 'table-wrap' }, table, empty)));

    const setPaused = async (name, paused) => {
      try {
        await ctx.api('POST', '/schedules/' + encodeURIComponent(name) + (paused ? '/pause' : '/resume'));
        await refresh();
      } catch (error) { messages.error(error, (paused ? 'Could not pause ' : 'Could not resume ') + name + ':'); }
    };

    const render = (schedules) => {
      empty.hidden = schedules.length > 0;
      body.replaceChildren(...schedules.map((s) => h('tr', { 'data-test': 'schedule-row', 'data-schedule': s.name, class: s.paused ? 'row-paused' : '' },
        h('td', null, h('span', { class: 'strong' }, s.name)),
        h('td', null, h('code', { class: 'cron' }, s.cron), h('div', { class: 'muted small' }, s.timezone + (s.catch_up === 'none' ? ' · no catch-up' : ''))),
        h('td', null, h('a', { href: '#/jobs?kind=' + encodeURIComponent(s.kind), class: 'mono' }, s.kind)),
        h('td', null, s.queue),
        h('td', { 'data-test': 'schedule-next' }, s.paused ? h('span', { class: 'muted' }, 'paused') : s.next_run_at
          ? [h('div', null, timeEl(s.next_run_at, 'local')), h('div', { class: 'muted small' }, timeEl(s.next_run_at))]
          : h('span', { class: 'muted' }, '–')),
        h('td', null, s.last_run_at ? [h('div', null, timeEl(s.last_run_at, 'local')), h('div', { class: 'muted small' }, timeEl(s.last_run_at))] : h('span', { class: 'muted' }, 'never')),
        h('td', null, s.last_job_id
          ? h('a', { href: '#/jobs/' + s.last_job_id, 'data-test': 'schedule-last-job' }, '#' + s.last_job_id)
          : h('span', { class: 'muted' }, '–')),
        h('td', null, h('span', { class: 'chip', title: s.source === 'code' ? 'Declared by a runner\'s program, written again when it starts' : 'Made over the API' }, s.source)),
        h('td', null, s.paused
          ? h('span', { class: 'pill pill-paused', 'data-test': 'schedule-paused' }, 'paused')
          : h('span', { class: 'pill pill-active', 'data-test': 'schedule-active' }, 'active')),
        h('td', { class: 'actions' }, s.paused
          ? actionButton('Resume', { class: 'button small', 'data-test': 'schedule-resume' }, () => setPaused(s.name, false))
          : actionButton('Pause', { class: 'button small', 'data-test': 'schedule-pause' }, () => setPaused(s.name, true))))));
    };

    const refresh = async () => {
      try {
        const data = await ctx.api('GET', '/schedules');
        render((data && data.schedules) || []);
        messages.clear();
        updated.textContent = 'Updated ' + new Date().toLocaleTimeString();
      } catch (error) { messages.error(error, 'Could not load the schedules:'); }
    };
    ctx.every(5000, refresh);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Routing

  function notFoundPage(view, ctx, params, path) {
    view.append(pageHeader('Not found', null), h('p', { class: 'banner error', 'data-test': 'error' },
      'No page at #' + path + '. ', h('a', { href: '#/' }, 'Go to the overview.')));
  }

  const routes = [
    { pattern: /^\/$/, nav: 'overview', title: 'Overview', page: overviewPage },
    { pattern: /^\/jobs$/, nav: 'jobs', title: 'Jobs', page: jobsPage },
    { pattern: /^\/jobs\/(\d+)$/, nav: 'jobs', title: 'Job', page: jobPage },
    { pattern: /^\/runners$/, nav: 'runners', title: 'Runners', page: runnersPage },
    { pattern: /^\/schedules$/, nav: 'schedules', title: 'Schedules', page: schedulesPage },
  ];

  let current = null;

  function route() {
    if (current) current.stop();
    const raw = location.hash.replace(/^#/, '') || '/';
    const question = raw.indexOf('?');
    const path = (question === -1 ? raw : raw.slice(0, question)) || '/';
    const params = new URLSearchParams(question === -1 ? '' : raw.slice(question + 1));
    let match = null;
    let found = routes.find((r) => (match = r.pattern.exec(path)));
    const ctx = new PageContext();
    current = ctx;
    const view = h('div', { class: 'page', 'data-page': found ? found.nav : 'not-found' });
    document.querySelectorAll('[data-nav]').forEach((a) => {
      a.classList.toggle('active', !!found && a.dataset.nav === found.nav);
      if (found && a.dataset.nav === found.nav) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    });
    $('#app').replaceChildren(view);
    window.scrollTo(0, 0);
    try {
      if (!found) {
        document.title = 'Not found · Skipper';
        notFoundPage(view, ctx, params, path);
        return;
      }
      document.title = (found.title === 'Job' ? 'Job #' + match[1] : found.title) + ' · Skipper';
      found.page(view, ctx, params, match[1]);
    } catch (error) {
      // Never a blank page.
      console.error(error);
      view.append(h('p', { class: 'banner error', 'data-test': 'error' }, 'This page failed: ' + (error && error.message ? error.message : error)));
    }
  }

  window.addEventListener('hashchange', route);
  window.addEventListener('error', (event) => {
    const app = $('#app');
    if (app && !app.querySelector('.banner.error:not([hidden])')) {
      app.prepend(h('p', { class: 'banner error', 'data-test': 'error' }, 'Something failed in this page: ' + event.message));
    }
  });
  updateTokenButton();
  route();
})();
