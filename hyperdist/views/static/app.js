// hyperdist's pages: the experiments list and one experiment, drawn from JSON that the dashboard's
// API serves (and this script polls), or that a report carries inline (window.HD_EMBED).
// Every value from the database reaches the page as text (textContent), never as markup.
(function () {
  'use strict';
  const cfg = window.HD_CONFIG;
  const embed = window.HD_EMBED || null;
  const FIGS = ['history', 'importance', 'slices', 'parallel', 'edf', 'curves', 'timeline'];
  const PLOT_OPTS = {responsive: true, displaylogo: false};
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') node.className = v; else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }
  const fmt = (v) => (v === null || v === undefined) ? '' : (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(5).replace(/\.?0+(e|$)/, '$1')) : String(v));
  const ago = (s) => s === null || s === undefined ? '-' : (s < 90 ? `${s.toFixed(0)} s ago` : `${(s / 60).toFixed(1)} min ago`);
  const since = (iso, now) => iso ? ago((Date.parse(now) - Date.parse(iso)) / 1000) : '-';

  let answerMs = 0;  // how long the server took for the last answer
  async function getJSON(url) {
    const began = performance.now();
    const r = await fetch(url, {headers: {Accept: 'application/json'}});
    const body = await r.json().catch(() => ({error: `${url}: HTTP ${r.status}, not JSON`}));
    answerMs = performance.now() - began;
    if (!r.ok) throw new Error(body.error || `${url}: HTTP ${r.status}`);
    return body;
  }
  const api = (path) => '/api/experiments' + path;
  const enc = encodeURIComponent;
  const source = embed ? {
    experiment: () => Promise.resolve(embed.experiment),
    detail: (tid) => Promise.resolve(embed.details[String(tid)]),
    contour: (a, b) => Promise.resolve(embed.contours[a + '\t' + b]),
  } : {
    list: () => getJSON(api('')),
    experiment: (v) => getJSON(api(`/${enc(cfg.key)}` + (v ? `?since=${enc(v)}` : ''))),
    detail: (tid) => getJSON(api(`/${enc(cfg.key)}/trials/${tid}`)),
    contour: (a, b) => getJSON(api(`/${enc(cfg.key)}/contour?x=${enc(a)}&y=${enc(b)}`)),
  };

  function showError(err) {
    const box = $('error');
    box.textContent = err ? `error: ${err.message || err}` : '';
    box.hidden = !err;
  }
  function live(text) { $('live').textContent = text; }

  // Refresh every poll_ms, or less often when the server took long to answer (a large
  // experiment), so that one open page keeps the server busy a fifth of the time at most.
  function poll(step) {
    const run = () => step().then(() => showError(null), showError).finally(() => {
      if (cfg.poll_ms > 0) setTimeout(run, Math.max(cfg.poll_ms, 5 * answerMs));
    });
    run();
  }

  function draw(div, fig) {
    return Plotly.react(div, fig.data, fig.layout, PLOT_OPTS).then(() => {
      div.dataset.rendered = String(Number(div.dataset.rendered || 0) + 1);
    });
  }

  // --- the experiments list -------------------------------------------------------------------
  function indexPage() {
    poll(async () => {
      const rows = await source.list();
      const body = $('experiments').tBodies[0];
      body.replaceChildren(...rows.map((e) => {
        const pct = e.max_evals ? Math.min(100, 100 * e.finished / e.max_evals) : 0;
        return el('tr', {'data-key': e.key},
          el('td', {}, el('a', {href: `/experiments/${enc(e.key)}`, text: e.key})),
          el('td', {text: e.state || '?'}),
          el('td', {}, `${e.finished}/${e.max_evals || '?'}`, el('div', {class: 'bar'}, el('div', {style: `width:${pct}%`}))),
          el('td', {class: 'num', text: fmt(e.best_loss)}),
          el('td', {class: 'num', text: e.rate ? e.rate.toFixed(1) : '-'}),
          el('td', {class: 'num', text: e.workers}),
          el('td', {class: 'num', text: e.counts.failed}),
          el('td', {class: 'num', text: e.counts.pruned}),
          el('td', {text: e.objective || ''}),
          el('td', {text: e.last_finished ? new Date(e.last_finished).toLocaleString() : '-'}));
      }));
      $('no-experiments').hidden = rows.length > 0;
      live(`${cfg.server} · updated ${new Date().toLocaleTimeString()}`);
    });
  }

  // --- one experiment -------------------------------------------------------------------------
  const state = {version: null, rows: [], labels: [], numeric: [], sort: {key: 'tid', dir: 1}, selected: null, pairs: []};

  function summaryCards(s) {
    const card = (k, v, extra) => el('div', {class: 'stat'}, el('div', {class: 'v', text: v}), el('div', {class: 'k', text: k}), ...(extra ? [extra] : []));
    const pct = s.max_evals ? Math.min(100, 100 * s.finished / s.max_evals) : 0;
    $('summary').replaceChildren(
      card('state', s.state || '?'),
      card('finished', `${s.finished} / ${s.max_evals || '?'}`, el('div', {class: 'bar'}, el('div', {style: `width:${pct}%`}))),
      card(s.best_tid === null ? 'best loss' : `best loss (trial ${s.best_tid})`, s.best_loss === null ? '-' : fmt(s.best_loss)),
      card('trials / min', s.rate ? s.rate.toFixed(1) : '-'),
      card('workers running', String(s.workers)),
      card('failed', String(s.counts.failed)),
      card('pruned', String(s.counts.pruned)),
      card('running / waiting', `${s.counts.running} / ${s.counts.new}`));
  }

  function setupPanel(setup, now) {
    $('space').tBodies[0].replaceChildren(...setup.space.map((p) =>
      el('tr', {}, el('td', {text: p.label}), el('td', {text: p.distribution}), el('td', {text: p.active}))));
    const algo = {objective: setup.objective, algorithm: setup.algo, options: setup.options, seed: setup.seed,
      max_evals: setup.max_evals, created: setup.created};
    const c = setup.coordinator;
    const coord = c ? el('p', {}, `coordinator lease held by ${c.owner} until ${c.lease_until ? new Date(c.lease_until).toLocaleTimeString() : '?'}`,
      ...(c.expired ? [el('span', {class: 'warn', text: ' (lease expired)'})] : []))
      : el('p', {text: 'no coordinator holds the experiment now'});
    $('setup').replaceChildren(el('pre', {text: JSON.stringify(algo, null, 1)}), coord);
    $('workers').tBodies[0].replaceChildren(...setup.workers.map((w) => el('tr', {},
      el('td', {text: w.owner}), el('td', {text: w.running.length ? `trial ${w.running.join(', ')}` : '-'}),
      el('td', {}, w.running.length ? ago(w.heartbeat_age) : '-', ...(w.lease_expired ? [el('span', {class: 'warn', text: ' lease expired'})] : [])),
      el('td', {class: 'num', text: w.finished}), el('td', {text: since(w.last_finished, now)}))));
  }

  function tableHead() {
    const cols = [['tid', 'trial'], ['kind', 'status'], ['loss', 'loss'], ['seconds', 'seconds'], ['owner', 'worker']]
      .concat(state.labels.map((l) => ['p:' + l, l]));
    $('trial-table').tHead.replaceChildren(el('tr', {}, ...cols.map(([key, name]) => {
      const th = el('th', {text: name, 'data-key': key});
      if (state.sort.key === key) th.dataset.order = state.sort.dir > 0 ? 'asc' : 'desc';
      th.addEventListener('click', () => {
        state.sort = {key, dir: state.sort.key === key ? -state.sort.dir : 1};
        tableHead(); tableBody();
      });
      return th;
    })));
  }

  function value(row, key) { return key.startsWith('p:') ? row.params[key.slice(2)] : row[key]; }

  function tableBody() {
    const kind = $('filter-state').value, param = $('filter-param').value;
    const lo = parseFloat($('filter-min').value), hi = parseFloat($('filter-max').value);
    let rows = state.rows.filter((r) => (!kind || r.kind === kind) && (!param ||
      (typeof r.params[param] === 'number' && !(r.params[param] < lo) && !(r.params[param] > hi))));
    const {key, dir} = state.sort;
    rows = rows.slice().sort((a, b) => {
      const x = value(a, key), y = value(b, key);
      if (x === y) return 0; if (x === null || x === undefined) return 1; if (y === null || y === undefined) return -1;
      return (x > y ? 1 : -1) * dir;
    });
    const shown = rows.slice(0, 500);
    $('trial-table').tBodies[0].replaceChildren(...shown.map((r) => {
      const tr = el('tr', {'data-tid': r.tid, class: r.tid === state.selected ? 'sel' : '', onclick: () => openDetail(r.tid)},
        el('td', {class: 'num', text: r.tid}), el('td', {class: 'k-' + r.kind, text: r.kind + (r.error ? ` (${r.error})` : '')}),
        el('td', {class: 'num', text: fmt(r.loss)}), el('td', {class: 'num', text: r.seconds === null ? '' : r.seconds.toFixed(2)}),
        el('td', {text: r.owner || ''}),
        ...state.labels.map((l) => el('td', {class: typeof r.params[l] === 'number' ? 'num' : '', text: l in r.params ? fmt(r.params[l]) : '·'})));
      return tr;
    }));
    $('table-count').textContent = `${rows.length} of ${state.rows.length} trials` + (rows.length > 500 ? ' (first 500 shown; narrow with the filters)' : '') + '; click a row for its detail';
  }

  async function openDetail(tid) {
    state.selected = tid;
    tableBody();
    const d = await source.detail(tid).catch((e) => { showError(e); return null; });
    if (!d) return;
    const box = $('detail');
    const parts = [el('h3', {text: `trial ${d.tid}: ${d.kind}`}),
      el('p', {class: 'note', text: `worker ${d.owner || '-'} · attempts ${d.attempts ?? '-'} · claimed ${d.claimed ? new Date(d.claimed).toLocaleString() : '-'} · finished ${d.finished ? new Date(d.finished).toLocaleString() : '-'}`}),
      el('h3', {text: 'configuration (what the objective received)'}), el('pre', {text: JSON.stringify(d.config, null, 2)}),
      el('h3', {text: 'parameters'}), el('pre', {text: JSON.stringify(d.readable, null, 2)}),
      el('h3', {text: 'result'}), el('pre', {text: JSON.stringify(d.result, null, 2)})];
    if (d.error) {
      parts.push(el('h3', {class: 'warn', text: `error: ${d.error.type}`}), el('pre', {text: `${d.error.message || ''}\n\n${d.error.traceback || '(no traceback)'}`}));
    }
    if (d.intermediate && d.intermediate.length) {
      parts.push(el('h3', {text: 'intermediate values'}), el('pre', {text: d.intermediate.map(([s, v]) => `step ${s}: ${fmt(v)}`).join('\n')}));
    }
    box.replaceChildren(...parts);
    box.hidden = false;
  }

  function fillPicker(id, items, keep) {
    const select = $(id), old = select.value;
    select.replaceChildren(...items.map(([v, text]) => el('option', {value: v, text})));
    if (keep && items.some(([v]) => v === old)) select.value = old;
  }

  async function drawContour() {
    const pick = $('contour-pair').value;
    if (!pick) return draw($('fig-contour'), {data: [], layout: {title: {text: 'Contour: needs two parameters'}}});
    const [a, b] = pick.split('\t');
    await draw($('fig-contour'), await source.contour(a, b));
  }

  async function experimentStep() {
    const p = await source.experiment(state.version);
    summaryCards(p.summary);
    setupPanel(p.setup, p.now);
    live(`${cfg.server} · ${p.summary.finished} finished` + (embed ? '' : ` · updated ${new Date().toLocaleTimeString()}`));
    if (!p.figures) return;
    state.version = p.version;
    state.rows = p.rows; state.labels = p.labels; state.numeric = p.numeric;
    $('importance-note').textContent = p.importance_note;
    const first = !state.pairs.length;
    state.pairs = p.pairs;
    fillPicker('contour-pair', p.pairs.map(([a, b]) => [a + '\t' + b, `${a} × ${b}`]), !first);
    fillPicker('filter-param', [['', '-']].concat(p.numeric.map((l) => [l, l])), true);
    await Promise.all(FIGS.map((name) => draw($('fig-' + name), p.figures[name])));
    await drawContour();
    tableHead(); tableBody();
    if (state.selected !== null) openDetail(state.selected);
  }

  function experimentPage() {
    $('title').textContent = cfg.key;
    if (embed) $('crumb-list').hidden = true;  // a report has no experiments list
    $('contour-pair').addEventListener('change', () => drawContour().catch(showError));
    for (const id of ['filter-state', 'filter-param', 'filter-min', 'filter-max']) $(id).addEventListener('input', tableBody);
    poll(experimentStep);
  }

  if (cfg.page === 'index') indexPage(); else experimentPage();
})();
