// Drives the mlserve web page in Debian's Chromium with playwright-core (no downloaded
// browsers). Called by test_ui_browser.py; prints one JSON object with what it saw.
// Usage: node ui_flow.mjs <config.json>
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { baseUrl, row, badColumn, missingColumn, csvPath, artifacts, chromiumPath } = config;
const steps = new Set(config.steps || ['prediction', 'field-errors', 'dates', 'batch', 'api-key']);
const shot = (name) => join(artifacts, `${config.prefix || ''}${name}`);
const seen = { steps: [] };
const profile = mkdtempSync(join(tmpdir(), 'mlserve-ui-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: chromiumPath,
  headless: true,
  acceptDownloads: true,
  viewport: { width: 1400, height: 1000 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  timeout: 30000,
});
const page = context.pages()[0] || (await context.newPage());
page.setDefaultTimeout(15000);
const consoleErrors = [];
page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(msg.text()); });
page.on('pageerror', (err) => consoleErrors.push(String(err)));
seen.posts = [];
page.on('request', (req) => { if (req.method() === 'POST') seen.posts.push(req.url()); });
const field = (name) => page.locator(`#fields .field[data-field="${name.replace(/"/g, '\\"')}"]`);

try {
  // 1. the form is built from the signature; fill it and predict
  await page.goto(`${baseUrl}/ui`);
  await page.waitForFunction(() => document.querySelectorAll('#fields .field').length > 0);
  seen.badge = await page.textContent('#model-badge');
  seen.fieldCount = await page.locator('#fields .field').count();
  seen.requiredMarks = await page.locator('#fields .field .req').count();
  for (const [name, value] of Object.entries(row)) await field(name).locator('input, select').fill(String(value));
  await page.click('#predict-button');
  await page.waitForSelector('#result:not([hidden])');
  seen.prediction = (await page.textContent('#prediction')).trim();
  seen.predictionLabel = (await page.textContent('#prediction-label')).trim();
  seen.bars = await page.locator('#probabilities .track').count();
  seen.barLabels = await page.locator('#probabilities .label').allTextContents();
  seen.resultModel = await page.textContent('#result-model');
  await page.screenshot({ path: shot('01-prediction.png'), fullPage: true });
  seen.steps.push('prediction');

  if (steps.has('field-errors')) {
    // 2. a bad value and a missing required value: the API's errors appear next to the fields
    await field(badColumn).locator('input').fill('not a number');
    await field(missingColumn).locator('input').fill('');
    await page.click('#predict-button');
    await page.waitForSelector(`#fields .field.invalid`);
    await page.waitForFunction((n) => document.querySelectorAll('#fields .field.invalid').length >= n, 2);
    seen.badError = (await field(badColumn).locator('.field-error').textContent()).trim();
    seen.missingError = (await field(missingColumn).locator('.field-error').textContent()).trim();
    seen.invalidFields = await page.locator('#fields .field.invalid').evaluateAll((els) => els.map((e) => e.dataset.field));
    seen.resultHidden = await page.locator('#result').isHidden();
    await field(badColumn).scrollIntoViewIfNeeded();
    await page.screenshot({ path: shot('02-field-errors.png'), fullPage: true });
    seen.steps.push('field-errors');
  }

  if (steps.has('dates')) {
    // 3. dates in several common formats are normalized to ISO before sending
    seen.dates = await page.evaluate(() => {
      const cases = ['2024-01-31', '2024/1/31 14:30', '31.01.2024', '01/31/2024', '31/01/2024 9:05 pm',
        '31 Jan 2024', 'January 31, 2024', '2024-01-31T10:00:00Z', '2024-02-30', 'yesterday'];
      return Object.fromEntries(cases.map((c) => { const n = window.mlserveUI.normalizeDate(c); return [c, n.iso || 'ERROR']; }));
    });
    seen.steps.push('dates');
  }

  if (steps.has('batch')) {
    // 4. a CSV with some bad rows: upload, wait for the report, look, download
    await page.setInputFiles('#csv-file', csvPath);
    await page.click('#upload-button');
    await page.waitForSelector('#batch-result:not([hidden])', { timeout: 30000 });
    seen.batch = {
      read: await page.textContent('#rows-read'),
      scored: await page.textContent('#rows-scored'),
      rejected: await page.textContent('#rows-rejected'),
      rejectedTable: await page.locator('#rejected-table tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent))),
      summaryLabels: await page.locator('#summary-chart .label').allTextContents(),
      previewColumns: await page.locator('#preview-table thead th').allTextContents(),
      previewRows: await page.locator('#preview-table tbody tr').count(),
      batchError: await page.locator('#batch-error').isVisible() ? await page.textContent('#batch-error') : null,
      downloadText: await page.textContent('#download'),
    };
    await page.screenshot({ path: shot('03-batch-report.png'), fullPage: true });
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    const saved = shot('downloaded-' + download.suggestedFilename());
    await download.saveAs(saved);
    seen.download = { filename: download.suggestedFilename(), path: saved };
    seen.steps.push('batch');
  }

  if (steps.has('api-key')) {
    // 5. API-key mode, as API Gateway enforces it: the page asks for the key, keeps it in
    //    sessionStorage only and sends it as x-api-key. A fresh tab has an empty sessionStorage.
    const keyPage = await context.newPage();
    const KEY = 'test-key-123';
    const sentKeys = [];
    await keyPage.route('**/ui/config', (route) => route.fulfill({
      contentType: 'application/json', body: JSON.stringify({ auth: 'api_key', upload_max_bytes: 1000 }) }));
    await keyPage.route(/\/(model|predict|ui\/example)$/, (route) => {
      const key = route.request().headers()['x-api-key'];
      sentKeys.push(key || null);
      if (key !== KEY) return route.fulfill({ status: 403, contentType: 'application/json', body: '{"message":"Forbidden"}' });
      return route.continue();
    });
    await keyPage.goto(`${baseUrl}/`);
    await keyPage.waitForSelector('#key-panel:not([hidden])');
    seen.auth = { askedFirst: (await keyPage.textContent('#model-badge')).includes('loading') };
    await keyPage.fill('#key-input', 'wrong-key');
    await keyPage.click('#key-form button[type=submit]');
    await keyPage.waitForSelector('#key-panel:not([hidden])');
    await keyPage.waitForFunction(() => document.getElementById('key-reason').textContent.includes('refused'));
    seen.auth.refusedMessage = await keyPage.textContent('#key-reason');
    await keyPage.screenshot({ path: shot('04-api-key.png') });
    await keyPage.fill('#key-input', KEY);
    await keyPage.click('#key-form button[type=submit]');
    await keyPage.waitForFunction(() => document.querySelectorAll('#fields .field').length > 0);
    for (const [name, value] of Object.entries(row)) {
      await keyPage.locator(`#fields .field[data-field="${name}"] input`).fill(String(value));
    }
    await keyPage.click('#predict-button');
    await keyPage.waitForSelector('#result:not([hidden])');
    seen.auth.prediction = (await keyPage.textContent('#prediction')).trim();
    seen.auth.sentKeys = sentKeys;
    seen.auth.storage = await keyPage.evaluate(() => ({
      session: sessionStorage.getItem('mlserve.apiKey'),
      local: Object.keys(localStorage).length,
      cookies: document.cookie,
    }));
    seen.auth.keyPanelHidden = await keyPage.locator('#key-panel').isHidden();
    await keyPage.close();
    seen.steps.push('api-key');
  }
} catch (err) {
  seen.failure = String(err && err.stack || err);
  try { await page.screenshot({ path: shot('failure.png'), fullPage: true }); } catch { /* ignore */ }
} finally {
  seen.consoleErrors = consoleErrors;
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
writeFileSync(shot('ui-flow.json'), JSON.stringify(seen, null, 1));
process.stdout.write(JSON.stringify(seen));
