// Opens a Medallion HTML report in headless Chromium (Debian's, driven by playwright-core) and
// prints what a reader would meet, as JSON: console errors and page errors, requests leaving
// the file, the section headings, and each chart's drawn marks and table rows. Sorting a table
// by a click runs the page's script. With a second argument, writes a full-page screenshot.
//
// usage: node check_report.cjs report.html [screenshot.png]
const path = require('path');
const { chromium } = require('playwright-core');

(async () => {
  const [file, screenshot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`page: ${e}`));
  page.on('request', (r) => {
    if (!/^(file|data|about):/.test(r.url())) errors.push(`fetched ${r.url()}`);
  });
  await page.goto('file://' + path.resolve(file), { waitUntil: 'load' });
  const charts = await page.$$eval('figure.chart', (figures) => figures.map((f) => ({
    title: (f.querySelector('figcaption') || {}).textContent || '',
    marks: f.querySelectorAll('svg [data-mark]').length,
    rows: f.querySelectorAll('tbody tr').length,
  })));
  const sections = await page.$$eval('section > h2', (hs) => hs.map((h) => h.textContent));
  // Sorting the first table twice by its first column reverses its first cell.
  const sort = async () => {
    await page.click('table.sortable th');
    return page.$eval('table.sortable tbody tr td', (td) => td.textContent);
  };
  const sorted = [await sort(), await sort()];
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ errors, sections, charts, sorted }));
  await browser.close();
})().catch((e) => { console.error(e); process.exit(2); });
