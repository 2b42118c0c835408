// check_report.mjs — opens a page of `cnn report` in headless Chromium and
// checks it the way a reader uses it:
//   - no console error or uncaught exception, and no request but the file;
//   - every section present and not empty (without test data, the sections
//     that need it say why they are absent, the others are drawn; without
//     the live panel, its section says why);
//   - clicking confusion-matrix cells shows their test images, and only
//     images of that cell;
//   - hovering over output pixels of every conv layer shows the window,
//     kernel and products, and the sum the page shows equals the output cnn
//     stored, and eq. 3.3 computed here, independently, from the page's
//     own numbers (to 1e-4);
//   - picking another of the chosen images changes the feature maps;
//   - a screenshot of the whole page.
// Usage: node check_report.mjs PAGE.html --shot OUT.png [--no-data] [--no-history] [--no-live]
//        [--chromium PATH] [--hero OUT.png --hero-sections id,id]
import { writeFileSync } from 'node:fs';
import { check, runPage } from './checks.mjs';

const args = process.argv.slice(2);
const opt = { page: null, shot: null, data: true, history: true, live: true, chromium: '/usr/bin/chromium', hero: null, heroSections: 'architecture' };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--shot') opt.shot = args[++i];
  else if (a === '--no-data') opt.data = false;
  else if (a === '--no-history') opt.history = false;
  else if (a === '--no-live') opt.live = false;
  else if (a === '--chromium') opt.chromium = args[++i];
  else if (a === '--hero') opt.hero = args[++i];
  else if (a === '--hero-sections') opt.heroSections = args[++i];
  else if (!opt.page) opt.page = a;
  else { console.error('unexpected argument ' + a); process.exit(2); }
}
if (!opt.page) { console.error('usage: node check_report.mjs PAGE.html --shot OUT.png [--no-data] [--no-history]'); process.exit(2); }


// eq. 3.3, written again here: output (f, oy, ox) of a conv layer from its input x (C, H, W)
function padAt(i, n, mode) {
  if (i >= 0 && i < n) return i;
  if (mode === 'zero') return -1;
  if (mode === 'replicate') return Math.min(Math.max(i, 0), n - 1);
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i; // reflect (PyTorch's: the edge is not repeated)
  return i;
}
function conv33(L, f, oy, ox) {
  const [, C, kh, kw] = L.dims, [, H, W] = L.inShape, g = L.g;
  let s = L.B ? L.B[f] : 0;
  for (let c = 0; c < C; c++)
    for (let i = 0; i < kh; i++)
      for (let j = 0; j < kw; j++) {
        const y = padAt(oy * g.sh - g.ph + i, H, g.padmode), x = padAt(ox * g.sw - g.pw + j, W, g.padmode);
        if (y >= 0 && x >= 0) s += L.W[((f * C + c) * kh + i) * kw + j] * L.X[(c * H + y) * W + x];
      }
  return s;
}

await runPage(opt.chromium, opt.page, async (page, url) => {
  const t0 = Date.now();
  await page.goto(url);
  await page.waitFor('window.cnnReport && window.cnnReport.ready');
  console.log(`${opt.page}: drawn in ${Date.now() - t0} ms`);

  // ---- sections
  const ids = ['summary', 'architecture', 'live', 'curves', 'classification', 'wrong', 'filters', 'featuremaps', 'convolution', 'stats'];
  const secs = await page.eval(`${JSON.stringify(ids)}.map(id => {
    const s = document.getElementById(id);
    if (!s) return {id, present: false};
    const c = s.querySelector(':scope > .content') || s;
    return {id, present: true, kids: c.children.length, text: c.innerText.trim().length,
            drawn: c.querySelectorAll('canvas, svg, table, .tile').length, absent: c.querySelectorAll('.absent').length,
            failed: c.innerText.includes('This part of the page failed')};
  })`);
  const needData = ['classification', 'wrong', 'featuremaps', 'convolution'];
  const D = await page.eval(`(() => { const D = cnnReport.data, T = D.test; return {k: D.k, convs: D.convs.length, layers: D.layers.length,
    test: !!T, picks: T ? T.picks.map(p => T.images.label[p.img]) : [], shown: T ? T.shown : [], support: T ? T.support : [],
    matrix: !!(T && T.matrix), caps: T ? T.cell_caps : null, history: !!D.history, perfect: !!(T && T.correct === T.n)}; })()`);
  for (const s of secs) {
    if (!check(s.present, `section #${s.id} is present`)) continue;
    check(s.kids > 0 && s.text > 0, `section #${s.id} is not empty`, JSON.stringify(s));
    check(!s.failed, `section #${s.id} drew without an error`);
    const wantAbsent = (!opt.data && needData.includes(s.id)) || (!opt.history && s.id === 'curves') || (!opt.live && s.id === 'live') ||
                       (!D.convs && (s.id === 'filters' || s.id === 'convolution'));
    if (!opt.data && s.id === 'stats') check(s.drawn > 0 && s.absent > 0, 'section #stats shows the weights and says why the outputs are absent', JSON.stringify(s));
    else if (wantAbsent) check(s.absent > 0, `section #${s.id} says why it is absent`);
    else check(s.absent === 0 && (s.id === 'summary' || s.drawn > 0 || (s.id === 'wrong' && D.perfect)), `section #${s.id} shows its content`, JSON.stringify(s));
  }
  check(D.test === opt.data, `the page ${opt.data ? 'holds' : 'does not hold'} test data`);
  check(D.history === opt.history, `the page ${opt.history ? 'holds' : 'does not hold'} a history`);

  if (opt.data) {
    // ---- the chosen images: at least ten, one per class when they are few
    const occurring = D.shown.filter((c, j) => D.support[j] > 0);
    check(D.picks.length >= 10 || D.picks.length >= occurring.length, `${D.picks.length} images are chosen for the feature maps`);
    if (occurring.length <= 20)
      check(occurring.every(c => D.picks.includes(c)), 'every class of the test has a chosen image', JSON.stringify({occurring, picks: D.picks}));

    // ---- confusion matrix: click cells, see their images
    if (D.matrix) {
      const cells = await page.eval(`Array.from(document.querySelectorAll('#classification td.cm-cell')).map(td => ({t: +td.dataset.t, p: +td.dataset.p, count: +td.dataset.count, sel: td.classList.contains('sel')}))`);
      check(cells.length === D.shown.length * D.shown.length, `the matrix has ${D.shown.length}x${D.shown.length} cells`);
      const off = cells.filter(c => c.t !== c.p && c.count > 0 && !c.sel).sort((a, b) => b.count - a.count);
      const diag = cells.filter(c => c.t === c.p && c.count > 0).sort((a, b) => b.count - a.count);
      const tries = [off[0], diag[0], off[off.length - 1]].filter(Boolean);
      check(tries.length >= (D.perfect ? 1 : 2), 'the matrix has cells with images to click');
      for (const c of tries) {
        await page.click(`#classification td.cm-cell[data-t="${c.t}"][data-p="${c.p}"]`);
        const got = await page.eval(`(() => { const R = cnnReport, I = R.data.test.images;
          return Array.from(document.querySelectorAll('#cell-images .tile')).map(t => { const id = I.index.indexOf(+t.dataset.img); return [I.label[id], I.top[id][0]]; }); })()`);
        const cap = c.t === c.p ? D.caps[0] : D.caps[1];
        check(got.length === Math.min(c.count, cap) && got.length > 0, `cell (true ${c.t}, predicted ${c.p}) shows ${got.length} of its ${c.count} images`);
        check(got.every(([l, p]) => l === c.t && p === c.p), `every image shown for cell (${c.t}, ${c.p}) belongs to it`, JSON.stringify(got.slice(0, 5)));
      }
    } else {
      const n = await page.eval(`document.querySelectorAll('#classification ol.confusions li').length`);
      if (n > 1) {
        await page.click('#classification ol.confusions li:nth-child(2)');
        const tiles = await page.eval(`document.querySelectorAll('#cell-images .tile').length`);
        check(tiles > 0, `clicking the second most frequent confusion shows ${tiles} images`);
      }
    }

    // ---- the convolution view: hover over output pixels of every conv layer
    for (let ci = 0; ci < D.convs; ci++) {
      const L = await page.eval(`(() => { const R = cnnReport, D = R.data, cv = D.convs[${ci}];
        const sel = (id, v) => { const e = document.getElementById(id); e.value = String(v); e.dispatchEvent(new Event('change')); };
        sel('conv-layer', ${ci});
        sel('conv-filter', cv.kept - 1);
        sel('conv-channel', cv.dims[1] - 1);
        const p = R.state.pick, X = R.exactOf(p, cv.layer), Y = R.exactOf(p, cv.layer + 1);
        return {layer: cv.layer, dims: cv.dims, f: cv.kept - 1, ch: cv.dims[1] - 1, pick: p,
                inShape: cv.layer ? D.layers[cv.layer - 1].out : D.input, out: D.layers[cv.layer].out, g: D.layers[cv.layer].window,
                X: X ? Array.from(X) : null, Y: Y ? Array.from(Y) : null, W: Array.from(R.array(cv.weight)), B: cv.bias ? Array.from(R.array(cv.bias)) : null}; })()`);
      if (!check(L.X && L.Y, `layer ${L.layer}: the page holds the exact input and output of image ${L.pick}`)) continue;
      const [, Ho, Wo] = L.out;
      const box = await page.eval(`(() => { const b = document.getElementById('conv-output').getBoundingClientRect(); return [b.width, b.height]; })()`);
      const pixels = [[0, 0], [Math.floor(Ho / 2), Math.floor(Wo / 3)], [Ho - 1, Wo - 1]];
      for (const [oy, ox] of pixels) {
        await page.hover('#conv-output', (ox + 0.5) * box[0] / Wo, (oy + 0.5) * box[1] / Ho);
        const r = await page.eval(`(() => { const q = s => document.querySelector(s);
          return {last: cnnReport.lastConv, computed: +q('#conv-computed').dataset.value, stored: +q('#conv-stored').dataset.value,
                  match: q('#conv-match').className, mats: document.querySelectorAll('#conv-detail table.mat').length,
                  cells: document.querySelectorAll('#conv-detail table.mat td').length, text: q('#conv-detail').innerText}; })()`);
        const where = `layer ${L.layer} filter ${L.f} pixel (${oy}, ${ox})`;
        if (!check(r.last && r.last.oy === oy && r.last.ox === ox && r.last.layer === L.layer && r.last.filter === L.f,
                   `hovering shows ${where}`, JSON.stringify(r.last))) continue;
        check(r.mats === 3 && r.cells === 3 * L.dims[2] * L.dims[3], `${where}: the window, the kernel and their products are shown (${r.cells} numbers)`);
        const stored = L.Y[(L.f * Ho + oy) * Wo + ox], ours = conv33(L, L.f, oy, ox), tol = 1e-4 * Math.max(1, Math.abs(stored));
        check(Math.abs(r.stored - stored) <= 1e-6 * Math.max(1, Math.abs(stored)), `${where}: the stored output shown is cnn's (${stored})`);
        check(Math.abs(r.computed - stored) <= tol, `${where}: the page's sum ${r.computed} equals the stored output ${stored}`, r.computed - stored);
        check(Math.abs(ours - stored) <= tol, `${where}: eq. 3.3 computed by this test, ${ours}, equals the stored output`, ours - stored);
        check(r.match === 'match', `${where}: the page says the numbers agree`);
      }
    }

    // ---- feature maps: another chosen image changes them
    const sig = `(() => { let h = 0; for (const c of document.querySelectorAll('#featuremaps .fm-body canvas')) {
        const u = c.toDataURL(); for (let i = 0; i < u.length; i += 3) h = (h * 31 + u.charCodeAt(i)) | 0; }
      return [h, document.querySelector('#featuremaps .fm-head').innerText, document.querySelectorAll('#featuremaps .fm-body canvas').length]; })()`;
    const before = await page.eval(sig);
    const other = D.picks.findIndex(l => l !== D.picks[0]);
    check(other > 0, 'another chosen image of another class exists');
    await page.click(`#featuremaps .pick[data-pick="${other}"]`);
    const after = await page.eval(sig);
    check(after[0] !== before[0], `picking image ${other} redraws the feature maps (${after[2]} maps)`);
    check(after[1] !== before[1], 'the feature maps say which image they show', after[1]);
    const selected = await page.eval(`Array.from(document.querySelectorAll('#featuremaps .pick')).findIndex(b => b.classList.contains('sel'))`);
    check(selected === other, 'the picked image is marked');
    const conv = await page.eval('cnnReport.lastConv');
    check(!D.convs || (conv && conv.pick === other), 'the convolution view follows the picked image');
    await page.click('#featuremaps .pick[data-pick="0"]');
  }

  // ---- nothing but the file itself, and no errors
  const requests = page.requests.filter(u => !u.startsWith('data:') && !u.startsWith('blob:'));
  check(requests.length >= 1 && requests.every(u => u === url), 'no request but the file itself', JSON.stringify(requests));
  check(page.errors.length === 0, 'no console error or exception', page.errors.join('\n'));

  if (opt.shot) {
    const png = await page.screenshot();
    writeFileSync(opt.shot, png);
    console.log(`  screenshot: ${opt.shot} (${Math.round(png.length / 1024)} KB)`);
  }
  if (opt.hero) {
    const clip = await page.eval(`(() => { const ids = ${JSON.stringify(opt.heroSections.split(','))};
      let top = Infinity, bottom = 0, left = Infinity, right = 0;
      for (const id of ids) { const b = document.getElementById(id).getBoundingClientRect();
        top = Math.min(top, b.top + scrollY); bottom = Math.max(bottom, b.bottom + scrollY); left = Math.min(left, b.left); right = Math.max(right, b.right); }
      return {x: Math.max(0, left - 10), y: Math.max(0, top - 10), width: right - left + 20, height: bottom - top + 20}; })()`);
    writeFileSync(opt.hero, await page.screenshot(clip));
    console.log(`  picture of ${opt.heroSections}: ${opt.hero}`);
  }
});
