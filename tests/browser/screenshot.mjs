// screenshot.mjs — a PNG of some sections of a report page, as the README
// shows it: the page opened in headless Chromium with every other section
// hidden (and, for the filters, only the first conv layer).
// Usage: node screenshot.mjs PAGE.html OUT.png SECTION[,SECTION...] [--chromium PATH] [--width PX]
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Browser } from './cdp.mjs';

const args = process.argv.slice(2);
let chromium = '/usr/bin/chromium', width = 1200;
const pos = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--chromium') chromium = args[++i];
  else if (args[i] === '--width') width = +args[++i];
  else pos.push(args[i]);
}
if (pos.length !== 3) { console.error('usage: node screenshot.mjs PAGE.html OUT.png SECTION[,SECTION...]'); process.exit(2); }
const [pagePath, out, sections] = pos;
const keep = sections.split(',');
const browser = await Browser.launch(chromium);
try {
  const page = await browser.newPage({ width, height: 900 });
  await page.goto(pathToFileURL(resolve(pagePath)).href);
  await page.waitFor('window.cnnReport && window.cnnReport.ready');
  await page.eval(`(() => {
    const keep = ${JSON.stringify(keep)};
    document.querySelectorAll('main > section, #toc, footer').forEach(s => { if (!keep.includes(s.id)) s.style.display = 'none'; });
    if (!keep.includes('summary')) document.getElementById('summary').style.display = 'none';
    document.querySelectorAll('#filters .conv-block').forEach((b, i) => { if (i) b.style.display = 'none'; });
    document.querySelectorAll('.explain').forEach(p => { p.style.maxWidth = '1100px'; });
  })()`);
  const png = await page.screenshot();
  writeFileSync(out, png);
  console.log(`${out}: ${Math.round(png.length / 1024)} KB`);
  if (page.errors.length) { console.error(page.errors.join('\n')); process.exitCode = 1; }
} finally {
  await browser.close();
}
