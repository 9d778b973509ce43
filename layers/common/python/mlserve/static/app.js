/* mlserve web page: a form built from the live model's signature, CSV batches, results.
   Vanilla JS, no build step, no third-party code. Every URL is relative to <base>, which
   the API sets to its own root (so it works under an API Gateway stage path too). */
(function () {
  'use strict';

  var KEY_STORE = 'mlserve.apiKey';
  var POLL_MS = [500, 1000, 1000, 2000, 2000, 3000, 5000];
  var POLL_GIVE_UP_MS = 15 * 60 * 1000;
  var state = { config: { auth: 'none' }, model: null, columns: [], classes: null, example: null };

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function apiUrl(path) { return new URL(path, document.baseURI).toString(); }
  function show(node, on) { node.hidden = !on; }

  // ---- dates: several common formats -> ISO 8601 -----------------------------------
  var MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
  function pad(n, w) { n = String(n); while (n.length < (w || 2)) n = '0' + n; return n; }
  function monthNumber(name) {
    var i = MONTHS.indexOf(name.slice(0, 3).toLowerCase());
    return i < 0 ? null : i + 1;
  }
  function parseTime(rest) {
    // '', '10:30', '10:30:15', '10:30:15.250', '9:05 pm', optionally Z or +02:00
    rest = rest.trim();
    if (!rest) return { h: 0, m: 0, s: 0, frac: '', tz: '' };
    var t = /^(?:T|at\s+)?(\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?\s*([ap]\.?m\.?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i.exec(rest);
    if (!t) return null;
    var h = +t[1], ampm = (t[5] || '').replace(/\./g, '').toLowerCase();
    if (ampm) { if (h < 1 || h > 12) return null; h = (h % 12) + (ampm === 'pm' ? 12 : 0); }
    var tz = t[6] || '';
    if (tz && tz !== 'Z' && tz.indexOf(':') < 0) tz = tz.slice(0, 3) + ':' + tz.slice(3);
    return { h: h, m: +t[2], s: +(t[3] || 0), frac: t[4] || '', tz: tz.toUpperCase() };
  }
  function normalizeDate(text) {
    var s = String(text || '').trim().replace(/\s+/g, ' ');
    if (!s) return { empty: true };
    var y, mo, d, rest, m;
    if ((m = /^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(.*)$/.exec(s))) { // 2024-01-31, 2024/1/31
      y = +m[1]; mo = +m[2]; d = +m[3]; rest = m[4];
    } else if ((m = /^(\d{1,2})\.(\d{1,2})\.(\d{4})(.*)$/.exec(s)) || (m = /^(\d{1,2})-(\d{1,2})-(\d{4})(.*)$/.exec(s))) {
      d = +m[1]; mo = +m[2]; y = +m[3]; rest = m[4]; // 31.01.2024, 31-01-2024 (day first)
    } else if ((m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})(.*)$/.exec(s))) {
      // 01/31/2024 is US (month first); 31/01/2024 can only be day first.
      if (+m[1] > 12) { d = +m[1]; mo = +m[2]; } else { mo = +m[1]; d = +m[2]; }
      y = +m[3]; rest = m[4];
    } else if ((m = /^(\d{1,2}) ([A-Za-z]+)\.?,? (\d{4})(.*)$/.exec(s))) { // 31 Jan 2024
      d = +m[1]; mo = monthNumber(m[2]); y = +m[3]; rest = m[4];
    } else if ((m = /^([A-Za-z]+)\.? (\d{1,2})(?:st|nd|rd|th)?,? (\d{4})(.*)$/.exec(s))) { // Jan 31, 2024
      mo = monthNumber(m[1]); d = +m[2]; y = +m[3]; rest = m[4];
    } else {
      return { error: 'not a date I recognise: use e.g. 2024-01-31, 31.01.2024, 01/31/2024 or 31 Jan 2024' };
    }
    if (!mo) return { error: 'unknown month name' };
    var check = new Date(Date.UTC(y, mo - 1, d));
    if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) {
      return { error: 'no such day: ' + y + '-' + pad(mo) + '-' + pad(d) };
    }
    var t = parseTime(rest.replace(/^,/, ''));
    if (!t || t.h > 23 || t.m > 59 || t.s > 59) return { error: 'the time is not understood (use HH:MM or HH:MM:SS)' };
    return { iso: pad(y, 4) + '-' + pad(mo) + '-' + pad(d) + 'T' + pad(t.h) + ':' + pad(t.m) + ':' + pad(t.s) + t.frac + t.tz };
  }

  // ---- form values by signature type ------------------------------------------------
  var NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
  function toValue(raw, type) {
    // Returns {skip} for an empty optional field, else {value}. A value that does not
    // convert is sent as typed, so the API's own validation names the field and the problem.
    var s = raw === undefined || raw === null ? '' : String(raw);
    if (type === 'string') return s === '' ? { skip: true } : { value: s };
    s = s.trim();
    if (s === '') return { skip: true };
    if (type === 'double' || type === 'float') {
      var dec = /^[-+]?\d+,\d+$/.test(s) ? s.replace(',', '.') : s; // 3,5 (decimal comma)
      return NUMBER.test(dec) ? { value: Number(dec) } : { value: s };
    }
    if (type === 'long' || type === 'integer') return /^[-+]?\d+$/.test(s) ? { value: Number(s) } : { value: s };
    if (type === 'boolean') return s === 'true' ? { value: true } : s === 'false' ? { value: false } : { value: s };
    if (type === 'datetime') { var n = normalizeDate(s); return n.iso ? { value: n.iso } : { value: s, dateError: n.error }; }
    return { value: s };
  }

  // ---- HTTP -------------------------------------------------------------------------
  function isMlserveError(body) { return body && typeof body === 'object' && body.error && body.error.code; }
  async function call(path, options) {
    options = options || {};
    var headers = Object.assign({}, options.headers || {});
    var key = sessionStorage.getItem(KEY_STORE);
    if (key) headers['x-api-key'] = key;
    var response;
    try {
      response = await fetch(apiUrl(path), { method: options.method || 'GET', headers: headers, body: options.body });
    } catch (err) {
      return { ok: false, status: 0, body: { error: { code: 'network', message: 'the API could not be reached (' + err.message + ')', details: [] } } };
    }
    var text = await response.text(), body = null;
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = { raw: text }; }
    if ((response.status === 401 || response.status === 403) && !isMlserveError(body)) {
      // API Gateway's own refusal ({"message": "Forbidden"}): a key is missing or wrong.
      showKeyPanel(key ? 'The API refused this key. Check it and try again.' : 'This API needs a key.');
      body = { error: { code: 'unauthorized', message: 'the API needs a valid API key', details: [] } };
    }
    if (!response.ok && !isMlserveError(body)) {
      var message = (body && (body.message || body.raw)) || response.statusText || 'request failed';
      body = { error: { code: 'http_' + response.status, message: String(message).slice(0, 300), details: [] } };
    }
    return { ok: response.ok, status: response.status, body: body };
  }

  // ---- API key ----------------------------------------------------------------------
  function showKeyPanel(reason) {
    if (reason) $('key-reason').textContent = reason + ' It is kept in this browser tab only (session storage) and sent as x-api-key.';
    show($('key-panel'), true);
    show($('key-button'), true);
    $('key-input').focus();
  }
  function setupKey() {
    $('key-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var value = $('key-input').value.trim();
      if (value) sessionStorage.setItem(KEY_STORE, value);
      $('key-input').value = '';
      show($('key-panel'), false);
      loadModel();
    });
    $('key-forget').addEventListener('click', function () { sessionStorage.removeItem(KEY_STORE); $('key-input').value = ''; });
    $('key-button').addEventListener('click', function () { showKeyPanel(); });
  }

  // ---- the form ---------------------------------------------------------------------
  function fieldId(i) { return 'f-' + i; }
  function buildForm(columns) {
    var box = $('fields');
    box.textContent = '';
    columns.forEach(function (col, i) {
      var wrap = el('div', { 'class': 'field', 'data-field': col.name });
      var label = el('label', { 'for': fieldId(i) }, col.name);
      if (col.required) label.appendChild(el('span', { 'class': 'req', 'aria-hidden': 'true', title: 'required' }, '*'));
      label.appendChild(el('span', { 'class': 'type' }, col.type));
      var input;
      if (col.type === 'boolean') {
        input = el('select', { id: fieldId(i), name: col.name });
        [['', '—'], ['true', 'true'], ['false', 'false']].forEach(function (o) { input.appendChild(el('option', { value: o[0] }, o[1])); });
      } else {
        input = el('input', { id: fieldId(i), name: col.name, type: 'text', autocomplete: 'off', spellcheck: 'false' });
        if (col.type === 'double' || col.type === 'float') input.setAttribute('inputmode', 'decimal');
        if (col.type === 'long' || col.type === 'integer') input.setAttribute('inputmode', 'numeric');
        if (col.type === 'datetime') input.setAttribute('placeholder', '2024-01-31 or 31.01.2024 14:30');
      }
      if (col.required) input.setAttribute('aria-required', 'true');
      input.setAttribute('aria-describedby', fieldId(i) + '-err');
      wrap.appendChild(label);
      wrap.appendChild(input);
      if (col.type === 'datetime') {
        var note = el('div', { 'class': 'normalized', id: fieldId(i) + '-iso' });
        input.addEventListener('input', function () {
          var n = normalizeDate(input.value);
          note.textContent = n.iso ? '→ ' + n.iso : n.error ? n.error : '';
        });
        wrap.appendChild(note);
      }
      wrap.appendChild(el('div', { 'class': 'field-error', id: fieldId(i) + '-err', role: 'alert' }));
      input.addEventListener('input', function () { setFieldError(col.name, null); });
      box.appendChild(wrap);
    });
  }
  function fieldWrap(name) {
    var found = null;
    document.querySelectorAll('#fields .field').forEach(function (w) { if (w.getAttribute('data-field') === name) found = w; });
    return found;
  }
  function setFieldError(name, message) {
    var wrap = fieldWrap(name);
    if (!wrap) return false;
    wrap.classList.toggle('invalid', !!message);
    wrap.querySelector('.field-error').textContent = message || '';
    var input = wrap.querySelector('input, select');
    if (message) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid');
    return true;
  }
  function clearErrors() {
    state.columns.forEach(function (c) { setFieldError(c.name, null); });
    show($('form-error'), false);
  }
  function showErrors(error) {
    // details[].loc names the field: ["instances", 0, "<column>"] -> the input for <column>.
    var names = state.columns.map(function (c) { return c.name; });
    var unplaced = [];
    (error.details || []).forEach(function (d) {
      var loc = d.loc || [];
      var field = null;
      for (var i = loc.length - 1; i >= 0; i--) { if (names.indexOf(loc[i]) >= 0) { field = loc[i]; break; } }
      if (!field || !setFieldError(field, d.msg)) unplaced.push((loc.join('.') ? loc.join('.') + ': ' : '') + d.msg);
    });
    if (unplaced.length || !(error.details || []).length) {
      $('form-error').textContent = error.message + (unplaced.length ? ' — ' + unplaced.join('; ') : '');
      show($('form-error'), true);
    }
  }
  function collectRow() {
    var row = {};
    state.columns.forEach(function (col, i) {
      var v = toValue($(fieldId(i)).value, col.type);
      if (!v.skip) row[col.name] = v.value;
    });
    return row;
  }
  function fillExample() {
    if (!state.example) return;
    state.columns.forEach(function (col, i) {
      var v = state.example[col.name];
      var input = $(fieldId(i));
      input.value = v === null || v === undefined ? '' : String(v);
      input.dispatchEvent(new Event('input'));
    });
  }

  async function predict(ev) {
    ev.preventDefault();
    clearErrors();
    var button = $('predict-button');
    button.disabled = true;
    try {
      var payload = { instances: [collectRow()] };
      if (state.classes) payload.probabilities = true;
      var res = await call('predict', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(payload) });
      if (!res.ok) { show($('result'), false); showErrors(res.body.error); return; }
      renderPrediction(res.body);
    } finally { button.disabled = false; }
  }
  function renderPrediction(body) {
    var predicted = body.predictions[0];
    $('prediction').textContent = typeof predicted === 'number' && !Number.isInteger(predicted) ? predicted.toPrecision(6) : String(predicted);
    // The class's display name, when the model was logged with class_labels (/predict's `labels`).
    var named = body.labels ? body.labels[0] : null;
    $('prediction-label').textContent = named && named !== String(predicted) ? named : '';
    show($('prediction-label'), !!$('prediction-label').textContent);
    var box = $('probabilities');
    box.textContent = '';
    var probs = body.probabilities ? body.probabilities[0] : null;
    if (probs) {
      var labels = Object.keys(probs);
      bars(box, labels.map(function (k) {
        return { label: k, value: probs[k], text: (probs[k] * 100).toFixed(1) + '%', top: String(predicted) === k };
      }), 1);
    }
    show(box, !!probs);
    $('result-model').textContent = modelText(body.model);
    show($('result'), true);
  }
  function modelText(m) { return m ? m.name + ' v' + m.version + (m.run_id ? ' (run ' + String(m.run_id).slice(0, 8) + ')' : '') : ''; }

  // Horizontal bar chart: label | bar | value (CSS widths, set through the CSSOM).
  function bars(box, items, max) {
    box.textContent = '';
    var top = max || Math.max.apply(null, items.map(function (i) { return i.value; }).concat([1]));
    items.forEach(function (item) {
      var label = el('div', { 'class': 'label' }, item.label);
      var track = el('div', { 'class': 'track' + (item.top ? ' top-class' : ''), role: 'img', 'aria-label': item.label + ': ' + item.text });
      var fill = el('div', { 'class': 'fill' });
      fill.style.width = Math.max(0, Math.min(100, (item.value / top) * 100)).toFixed(2) + '%';
      track.appendChild(fill);
      if (item.top) label.classList.add('top-class');
      box.appendChild(label);
      box.appendChild(track);
      box.appendChild(el('div', { 'class': 'value' }, item.text));
    });
  }

  // ---- batch ------------------------------------------------------------------------
  function formatBytes(n) {
    if (n >= 1048576) return (n / 1048576).toFixed(n % 1048576 ? 1 : 0) + ' MB';
    if (n >= 1024) return Math.round(n / 1024) + ' kB';
    return n + ' bytes';
  }
  function batchError(message) { $('batch-error').textContent = message; show($('batch-error'), !!message); }
  function batchStatus(message) { $('batch-status').textContent = message || ''; }
  function s3ErrorMessage(text) {
    var code = /<Code>([^<]*)<\/Code>/.exec(text || ''), msg = /<Message>([^<]*)<\/Message>/.exec(text || '');
    if (code && code[1] === 'EntityTooLarge') return 'the file is larger than ' + formatBytes(state.config.upload_max_bytes);
    return (code ? code[1] + ': ' : '') + (msg ? msg[1] : 'the upload was refused');
  }

  async function upload(ev) {
    ev.preventDefault();
    batchError('');
    show($('batch-result'), false);
    var file = $('csv-file').files[0];
    if (!file) { batchError('Choose a CSV file first.'); return; }
    var button = $('upload-button');
    button.disabled = true;
    try {
      batchStatus('Preparing the upload…');
      var started = await call('batch/uploads', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ filename: file.name, size: file.size, content_type: file.type || '' })
      });
      if (!started.ok) { batchStatus(''); batchError(started.body.error.message); return; }
      var job = started.body, target = job.upload;
      batchStatus('Uploading ' + file.name + ' (' + formatBytes(file.size) + ')…');
      if (target.mode === 's3') {
        // Straight to S3 with the presigned POST: no API key, the policy is the authorization.
        var form = new FormData();
        Object.keys(target.fields).forEach(function (k) { form.append(k, target.fields[k]); });
        form.append('file', file);
        var s3res;
        try { s3res = await fetch(target.url, { method: 'POST', body: form }); } catch (err) {
          batchStatus(''); batchError('The upload to S3 failed: ' + err.message); return;
        }
        if (!s3res.ok) { batchStatus(''); batchError('The upload was refused: ' + s3ErrorMessage(await s3res.text())); return; }
      } else {
        var local = await call(target.url, { method: 'POST', headers: target.headers, body: file });
        if (!local.ok) { batchStatus(''); batchError(local.body.error.message); return; }
      }
      batchStatus('Uploaded. Scoring…');
      await poll(job.status_url, Date.now());
    } finally { button.disabled = false; }
  }

  async function poll(statusUrl, since) {
    for (var attempt = 0; ; attempt++) {
      var res = await call(statusUrl);
      if (!res.ok) { batchStatus(''); batchError(res.body.error.message); return; }
      if (res.body.status === 'done') { batchStatus(''); renderJob(res.body); return; }
      if (Date.now() - since > POLL_GIVE_UP_MS) { batchStatus(''); batchError('No result after 15 minutes; the job id is ' + res.body.job_id + '.'); return; }
      batchStatus((res.body.uploaded === false ? 'Waiting for the file to arrive…' : 'Scoring…') + ' (' + Math.round((Date.now() - since) / 1000) + ' s)');
      await new Promise(function (r) { setTimeout(r, POLL_MS[Math.min(attempt, POLL_MS.length - 1)]); });
    }
  }

  function renderJob(job) {
    var report = job.report || {};
    $('rows-read').textContent = (report.rows_read || 0).toLocaleString();
    $('rows-scored').textContent = (report.rows_scored || 0).toLocaleString();
    $('rows-rejected').textContent = (report.rows_rejected || 0).toLocaleString();
    $('batch-model').textContent = report.model ? 'by ' + modelText(report.model) : '';
    if (report.status !== 'succeeded') {
      var err = report.error || {};
      batchError('The file was ' + (report.status || 'not scored') + ': ' + (err.message || 'see the report'));
    }
    var link = $('download');
    if (job.download) {
      link.href = apiUrl(job.download.url);
      link.setAttribute('download', job.download.filename);
      link.textContent = 'Download ' + job.download.filename;
    }
    show(link, !!job.download);
    renderRejected(report);
    renderSummary(job.summary);
    renderPreview(job.preview);
    show($('batch-result'), true);
  }
  function renderRejected(report) {
    var rows = report.rejected_rows || [];
    var body = $('rejected-table').querySelector('tbody');
    body.textContent = '';
    var shown = 0;
    rows.slice(0, 20).forEach(function (r) {
      (r.errors && r.errors.length ? r.errors : [{ message: 'rejected' }]).forEach(function (e) {
        var tr = el('tr');
        [r.line, e.column || '—', e.message || e.reason, e.value === undefined || e.value === null ? '' : e.value].forEach(function (c) { tr.appendChild(el('td', {}, c)); });
        body.appendChild(tr);
      });
      shown++;
    });
    var more = (report.rows_rejected || 0) - shown;
    $('rejected-more').textContent = more > 0 ? more.toLocaleString() + ' more rejected rows are listed in the report.' : '';
    show($('rejected-more'), more > 0);
    show($('rejected'), rows.length > 0);
  }
  function renderSummary(summary) {
    var box = $('summary-chart');
    if (!summary || summary.kind === 'none' || !summary.rows) { show($('summary'), false); return; }
    var items;
    if (summary.kind === 'counts') {
      items = Object.keys(summary.counts).map(function (k) {
        var n = summary.counts[k];
        return { label: k, value: n, text: n.toLocaleString() + ' (' + (100 * n / summary.rows).toFixed(1) + '%)' };
      });
      if (summary.other) items.push({ label: 'other', value: summary.other, text: summary.other.toLocaleString() });
    } else {
      items = summary.bins.map(function (b) {
        return { label: b.from.toPrecision(4) + ' – ' + b.to.toPrecision(4), value: b.count, text: b.count.toLocaleString() };
      });
    }
    bars(box, items);
    $('summary-note').textContent = summary.partial ? 'From the first ' + summary.rows.toLocaleString() + ' rows.' : summary.rows.toLocaleString() + ' predictions.';
    show($('summary'), true);
  }
  function renderPreview(preview) {
    if (!preview || !preview.rows.length) { show($('preview'), false); return; }
    var table = $('preview-table'), head = table.querySelector('thead'), body = table.querySelector('tbody');
    head.textContent = ''; body.textContent = '';
    var tr = el('tr');
    preview.columns.forEach(function (c) { tr.appendChild(el('th', {}, c)); });
    head.appendChild(tr);
    preview.rows.forEach(function (row) {
      var r = el('tr');
      row.forEach(function (c) { r.appendChild(el('td', {}, c)); });
      body.appendChild(r);
    });
    show($('preview'), true);
  }

  // ---- start ------------------------------------------------------------------------
  function pageError(message) { $('page-error').textContent = message || ''; show($('page-error'), !!message); }
  async function loadModel() {
    pageError('');
    var res = await call('model');
    if (!res.ok) {
      $('model-badge').textContent = 'no model';
      // A refused key is explained in the key panel already.
      if (res.body.error.code !== 'unauthorized') pageError('The model could not be loaded: ' + res.body.error.message);
      return;
    }
    var m = res.body;
    state.model = m;
    state.columns = (m.signature && m.signature.inputs) || [];
    state.classes = m.classes || null;
    $('model-badge').textContent = m.name + ' v' + m.version;
    $('model-badge').title = 'run ' + (m.run_id || '—') + ', promoted ' + (m.promoted_at || '—');
    buildForm(state.columns);
    var ex = await call('ui/example');
    state.example = ex.ok && ex.body && ex.body.row ? ex.body.row : null;
    show($('example-button'), !!state.example);
  }
  async function start() {
    setupKey();
    $('predict-form').addEventListener('submit', predict);
    $('predict-form').addEventListener('reset', function () { clearErrors(); show($('result'), false); });
    $('example-button').addEventListener('click', fillExample);
    $('batch-form').addEventListener('submit', upload);
    var cfg = await call('ui/config');
    if (cfg.ok && cfg.body) state.config = cfg.body;
    $('max-size').textContent = formatBytes(state.config.upload_max_bytes || 0);
    if (state.config.auth === 'iam') {
      pageError('This API uses IAM authorization, which a browser cannot sign. Ask your administrator for the API-key deployment of this page (see docs/ui.md).');
    }
    if (state.config.auth === 'api_key') {
      show($('key-button'), true);
      if (!sessionStorage.getItem(KEY_STORE)) { showKeyPanel('This API needs a key.'); return; }
    }
    await loadModel();
  }

  window.mlserveUI = { normalizeDate: normalizeDate, toValue: toValue };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
