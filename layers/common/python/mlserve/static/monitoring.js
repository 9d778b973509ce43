// The "Monitoring" view: the latest drift report (GET monitoring/latest), as a table of
// features with their verdicts and a link to the full HTML report. No inline script:
// the page's CSP allows only files served by the API.
(function () {
  'use strict';
  var KEY_STORE = 'mlserve.apiKey';

  function $(id) { return document.getElementById(id); }
  function cell(row, text, cls) {
    var td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
  }
  function number(value) {
    if (value === null || value === undefined) return '–';
    return Math.abs(value) >= 0.001 || value === 0 ? Number(value).toPrecision(3) : Number(value).toExponential(2);
  }

  async function load() {
    var box = $('monitoring');
    if (!box) return;
    var headers = {};
    var key = sessionStorage.getItem(KEY_STORE);
    if (key) headers['x-api-key'] = key;
    var status = $('monitoring-status');
    try {
      var response = await fetch(new URL('monitoring/latest', document.baseURI).toString(), { headers: headers });
      var report = await response.json();
      if (!response.ok) {
        status.textContent = (report.error && report.error.message) || ('monitoring: HTTP ' + response.status);
        return;
      }
      render(report);
    } catch (err) {
      status.textContent = 'Could not load the drift report: ' + err.message;
    }
  }

  function render(report) {
    var status = $('monitoring-status');
    var table = $('monitoring-table');
    var body = table.querySelector('tbody');
    body.textContent = '';
    if (report.status !== 'ok') {
      status.textContent = report.message || ('No drift report yet (' + report.status + ').');
      table.hidden = true;
      return;
    }
    var drifted = report.drifted_features || [];
    var total = Object.keys(report.features || {}).length;
    status.textContent = (report.dataset_drift ? 'Dataset drift' : 'No dataset drift') + ' on ' + report.date +
      ' (version ' + report.version + '): ' + drifted.length + ' of ' + total + ' features drifted.';
    status.className = 'status ' + (report.dataset_drift ? 'bad' : 'good');
    Object.keys(report.features).forEach(function (name) {
      var f = report.features[name];
      var row = document.createElement('tr');
      if (f.drifted) row.className = 'drifted';
      cell(row, name);
      cell(row, f.test || '–');
      cell(row, number(f.statistic));
      cell(row, number(f.psi));
      cell(row, f.test === null ? 'untested' : (f.drifted ? 'DRIFT' : 'ok'), f.drifted ? 'bad' : '');
      body.appendChild(row);
    });
    table.hidden = false;
    var link = $('monitoring-report');
    link.href = new URL('monitoring/latest.html', document.baseURI).toString();
    link.hidden = !report.html_key;
  }

  document.addEventListener('DOMContentLoaded', load);
})();
