// check_live.mjs — the report page's live panel in headless Chromium, used
// as a reader uses it:
//   - a digit model: strokes drawn on the canvas with the mouse and a pen
//     (input events, which the page receives as pointer events); the
//     prediction shown must be `cnn predict`'s on the same drawing saved as
//     a PNG (every probability to the 0.1% predict prints), and dropping
//     that PNG on the canvas must give the same answer again;
//   - any other model: a picture dropped on the canvas gives a prediction
//     and feature maps;
//   - every layer's maps are drawn; "Step through layers" shows them one at
//     a time; "Clear" empties the panel;
//   - the time of one preparation and forward pass in the page (the median
//     of many), under 2 ms for a 1x28x28 model; while drawing, no task of
//     the page over 50 ms of thread time (a trace's RunTask events: wall
//     time on a busy machine counts the other programs too, and is printed);
//   - no console error, no request but the file; a screenshot of the panel.
// Usage: node check_live.mjs PAGE.html --shot OUT.png [--chromium PATH]
//        [--cnn CNN --model M.safetensors --png STROKES.png]
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { check, runPage } from './checks.mjs';

const args = process.argv.slice(2);
const opt = { page: null, shot: null, chromium: '/usr/bin/chromium', cnn: null, model: null, png: null };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a.startsWith('--') && ['shot', 'chromium', 'cnn', 'model', 'png'].includes(a.slice(2))) opt[a.slice(2)] = args[++i];
  else if (!opt.page) opt.page = a;
  else { console.error('unexpected argument ' + a); process.exit(2); }
}
if (!opt.page) { console.error('usage: node check_live.mjs PAGE.html --shot OUT.png [--cnn CNN --model M --png OUT.png]'); process.exit(2); }

const sleep = ms => new Promise(r => setTimeout(r, ms));

// `cnn predict`'s probabilities (percent) of a picture, by class index
function predict(png, classes) {
  const out = execFileSync(opt.cnn, ['predict', '--model', opt.model, '--top', '0', png], { encoding: 'utf8' });
  const line = out.split('\n')[1] || '';
  const got = {};
  for (const m of line.matchAll(/\s+(\S.*?) (\d+\.\d)%/g)) got[m[1]] = +m[2];
  return classes.map(c => got[c]);
}

await runPage(opt.chromium, opt.page, async (page, url, browser) => {
  await page.goto(url);
  await page.waitFor('window.cnnReport && cnnReport.live && (cnnReport.live.ready || cnnReport.live.error || cnnReport.live.absent)');
  const L = await page.eval('({absent: cnnReport.live.absent, error: cnnReport.live.error, draws: cnnReport.live.draws, k: cnnReport.data.k, input: cnnReport.data.input, layers: cnnReport.data.layers.length, classes: cnnReport.data.classes})');
  if (!check(!L.absent && !L.error, 'the live panel started', L.absent || L.error)) throw new Error('no live panel');
  const waitUpdate = async before => {
    await page.waitFor(`cnnReport.live.updates > ${before}`);
    await page.eval('new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))');
  };
  const updates = () => page.eval('cnnReport.live.updates');
  const result = () => page.eval(`(() => { const r = cnnReport.live.result; return r && !r.error ? {pred: r.pred, probs: r.probs} : (r ? {error: r.error} : null); })()`);
  if (L.draws) {
    // frames while drawing: long tasks the browser reports, and the gaps between frames
    await page.eval(`(() => { const w = window.__frames = {long: [], gaps: [], last: 0, on: true};
      new PerformanceObserver(l => l.getEntries().forEach(e => w.long.push(e.duration))).observe({type: 'longtask'});
      const tick = t => { if (w.last) w.gaps.push(t - w.last); w.last = t; if (w.on) requestAnimationFrame(tick); };
      requestAnimationFrame(tick); })()`);
    // a 7: a bar and a slanted stroke with the mouse, a short cross stroke with a pen (canvas pixels; the canvas is 280 px)
    const strokes = [
      { type: 'mouse', pts: [[70, 60], [215, 60]] },
      { type: 'mouse', pts: [[215, 60], [180, 130], [140, 240]] },
      { type: 'pen', pts: [[130, 150], [215, 150]] },
    ];
    // a trace of the renderer's tasks while drawing: their wall time, and
    // their thread time (what the page itself costs, whatever else runs on
    // the machine). On a busy virtual machine time stolen from the CPU can
    // land in one task's thread time: a drawing over the limit is cleared
    // and drawn once more, and both are printed.
    const trace = [];
    let traced = null;
    browser.on(msg => {
      if (msg.method === 'Tracing.dataCollected') trace.push(...msg.params.value);
      else if (msg.method === 'Tracing.tracingComplete' && traced) traced();
    });
    const draw = async () => {
      const box = await page.point('#live-canvas', 0, 0);
      trace.length = 0;
      await page.send('Tracing.start', { categories: 'toplevel,devtools.timeline', transferMode: 'ReportEvents' });
      const before = await updates();
      for (const s of strokes) {
        const path = [];
        for (let i = 0; i + 1 < s.pts.length; i++) {
          const [a, b] = [s.pts[i], s.pts[i + 1]], n = Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]) / 6);
          for (let j = i ? 1 : 0; j <= n; j++) path.push([a[0] + (b[0] - a[0]) * j / n, a[1] + (b[1] - a[1]) * j / n]);
        }
        const ev = (type, [x, y], extra) => page.send('Input.dispatchMouseEvent', { type, x: box.x + x, y: box.y + y, pointerType: s.type, ...extra });
        await ev('mousePressed', path[0], { button: 'left', buttons: 1, clickCount: 1 });
        for (const p of path.slice(1)) { await ev('mouseMoved', p, { button: 'left', buttons: 1 }); await sleep(4); }
        await ev('mouseReleased', path[path.length - 1], { button: 'left', buttons: 0, clickCount: 1 });
      }
      await waitUpdate(before);
      await new Promise(resolve => { traced = resolve; page.send('Tracing.end'); });
      const main = trace.find(e => e.name === 'thread_name' && e.args && e.args.name === 'CrRendererMain');
      const tasks = trace.filter(e => /RunTask$/.test(e.name) && e.ph === 'X' && (!main || (e.pid === main.pid && e.tid === main.tid)));
      const cpu = tasks.filter(e => e.tdur !== undefined).map(e => e.tdur / 1000), wall = tasks.map(e => e.dur / 1000);
      console.log(`  renderer tasks while drawing: ${tasks.length}, the longest ${Math.max(0, ...cpu).toFixed(1)} ms of thread time ` +
        `(${Math.max(0, ...wall).toFixed(1)} ms of wall time on this machine)`);
      return { before, cpu };
    };
    let { before, cpu } = await draw();
    if (cpu.length && Math.max(...cpu) >= 50) {
      const b = await updates();
      await page.click('#live-clear');
      await waitUpdate(b);
      ({ before, cpu } = await draw());
    }
    if (check(cpu.length > 0, 'the trace holds the renderer\'s tasks with their thread time'))
      check(Math.max(...cpu) < 50, `no task while drawing took more than 50 ms of the page's thread time (at most ${Math.max(...cpu).toFixed(1)} ms)`);
    const frames = await page.eval(`(() => { const w = window.__frames; w.on = false; const t = cnnReport.live.work.slice(1).sort((a, b) => a - b);
      return {long: w.long, maxGap: Math.max(0, ...w.gaps), n: w.gaps.length, work: cnnReport.live.maxWorkMs, median: t[t.length >> 1], updates: cnnReport.live.updates}; })()`);
    console.log(`  drawing: ${frames.updates} updates, the page's work per update: median ${frames.median.toFixed(1)} ms, at most ${frames.work.toFixed(1)} ms; ` +
      `${frames.n} frames, the longest gap between frames ${frames.maxGap.toFixed(1)} ms; long tasks: ${frames.long.length ? frames.long.map(d => d.toFixed(0) + ' ms').join(', ') : 'none'}`);
    check(frames.updates - before >= 5, `the panel followed the strokes (${frames.updates - before} updates)`);

    const r = await result();
    if (!check(r && r.probs, 'the drawing gives a prediction', JSON.stringify(r))) throw new Error('no prediction');
    const shown = await page.eval(`(() => { const p = document.getElementById('live-pred'); return {pred: +p.dataset.pred, probs: JSON.parse(p.dataset.probs || '[]'), text: p.innerText}; })()`);
    check(shown.pred === r.pred && shown.probs.length === L.k, `the panel shows class ${L.classes[r.pred]} (${(100 * r.probs[r.pred]).toFixed(1)}%)`);
    console.log('  page: ' + r.probs.map((p, j) => `${L.classes[j]} ${(100 * p).toFixed(1)}%`).join(' '));

    // the same drawing as a PNG, through cnn predict
    if (opt.png) {
      const png = Buffer.from((await page.eval('cnnReport.live.png()')).split(',')[1], 'base64');
      writeFileSync(opt.png, png);
      if (opt.cnn && opt.model) {
        const want = predict(opt.png, L.classes);
        console.log('  cnn predict: ' + want.map((p, j) => `${L.classes[j]} ${p}%`).join(' '));
        const worst = Math.max(...want.map((p, j) => Math.abs(p - 100 * r.probs[j])));
        check(want.every(p => p !== undefined) && worst <= 0.0501, `every probability is cnn predict's on the same strokes as a PNG (largest difference ${worst.toFixed(3)} points)`);
        const best = want.indexOf(Math.max(...want));
        check(best === r.pred, `the same answer as cnn predict: ${L.classes[best]}`);
      }
      // dropping that PNG gives the same answer again
      const b = await updates();
      await page.eval(`(async () => { const bytes = Uint8Array.from(atob(${JSON.stringify(png.toString('base64'))}), c => c.charCodeAt(0));
        const dt = new DataTransfer(); dt.items.add(new File([bytes], 'strokes.png', {type: 'image/png'}));
        document.getElementById('live-canvas').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true})); })()`);
      await waitUpdate(b);
      const d = await result();
      const diff = d && d.probs ? Math.max(...d.probs.map((p, j) => Math.abs(p - r.probs[j]))) : Infinity;
      check(diff <= 1e-6, `the PNG dropped on the canvas gives the same probabilities (largest difference ${diff})`);
    }
  } else {
    // a picture for a model that does not take digits: a coloured square on noise, at 3x the input's size
    const b = await updates();
    await page.eval(`(async () => { const [c, h, w] = cnnReport.data.input, cv = document.createElement('canvas');
      cv.width = 3 * w; cv.height = 3 * h; const x = cv.getContext('2d');
      for (let i = 0; i < 400; i++) { x.fillStyle = 'rgb(' + [0, 0, 0].map(() => Math.floor(Math.random() * 50)).join(',') + ')'; x.fillRect(Math.random() * cv.width, Math.random() * cv.height, 4, 4); }
      x.fillStyle = 'rgb(230,40,40)'; x.fillRect(cv.width / 3, cv.height / 3, 18, 18);
      const blob = await new Promise(r => cv.toBlob(r, 'image/png'));
      const dt = new DataTransfer(); dt.items.add(new File([blob], 'picture.png', {type: 'image/png'}));
      document.getElementById('live-canvas').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true})); })()`);
    await waitUpdate(b);
    const r = await result();
    check(r && r.probs && r.probs.length === L.k, 'a dropped picture gives a prediction', JSON.stringify(r));
  }

  // every layer drawn
  const drawn = await page.eval(`Array.from(document.querySelectorAll('#live-layers .fm-layer')).map(row => {
    const cs = Array.from(row.querySelectorAll('canvas')); return cs.length > 0 && cs.every(c => c.width > 0 && c.height > 0); })`);
  check(drawn.length === L.layers + 1 && drawn.every(Boolean), `the input and all ${L.layers} layers are drawn`, JSON.stringify(drawn));

  // one preparation and forward pass, timed in the page
  const bench = await page.eval('cnnReport.live.bench(300)');
  console.log(`  one preparation and forward pass in the page: median ${bench.median.toFixed(3)} ms, mean ${bench.mean.toFixed(3)} ms, least ${bench.min.toFixed(3)} ms (${bench.n} runs)`);
  if (L.input.join('x') === '1x28x28') check(bench.median < 2, `under 2 ms (median ${bench.median.toFixed(3)} ms)`);

  // step through the layers
  await page.click('#live-step');
  const visible = () => page.eval(`[cnnReport.live.step, Array.from(document.querySelectorAll('#live-layers .fm-layer')).filter(r => !r.classList.contains('hidden')).length,
    document.getElementById('live-step-note').innerText]`);
  let v = await visible();
  check(v[0] === 0 && v[1] === 1 && v[2].length > 0, 'stepping starts at the input, alone', JSON.stringify(v));
  await page.click('#live-next');
  await page.click('#live-next');
  v = await visible();
  check(v[0] === 2 && v[1] === 3, `two steps on, three rows show (${v[2]})`, JSON.stringify(v));
  await page.click('#live-all');
  v = await visible();
  check(v[0] === null && v[1] === L.layers + 1, 'All layers shows every row again');

  const requests = page.requests.filter(u => !u.startsWith('data:') && !u.startsWith('blob:'));
  check(requests.every(u => u === url), 'no request but the file itself', JSON.stringify(requests));
  check(page.errors.length === 0, 'no console error or exception', page.errors.join('\n'));

  if (opt.shot) {
    const clip = await page.eval(`(() => { const b = document.getElementById('live').getBoundingClientRect();
      return {x: Math.max(0, b.left - 8), y: b.top + scrollY - 8, width: b.width + 16, height: b.height + 16}; })()`);
    const png = await page.screenshot(clip);
    writeFileSync(opt.shot, png);
    console.log(`  screenshot: ${opt.shot} (${Math.round(png.length / 1024)} KB)`);
    // the README's picture: the panel down to the first pooling layer's maps
    const cut = await page.eval(`(() => { const r = document.querySelector('#live-layers .fm-layer[data-act="4"]') || document.getElementById('live');
      return r.getBoundingClientRect().top + scrollY; })()`);
    const top = opt.shot.replace(/\.png$/, '-top.png'), small = await page.screenshot({ ...clip, height: Math.min(clip.height, cut - clip.y) });
    writeFileSync(top, small);
    console.log(`  screenshot: ${top} (${Math.round(small.length / 1024)} KB)`);
  }

  // Clear
  const b = await updates();
  await page.click('#live-clear');
  await waitUpdate(b);
  const cleared = await page.eval(`[cnnReport.live.result, document.getElementById('live-pred').dataset.probs]`);
  check(cleared[0] === null && !cleared[1], 'Clear empties the panel');
});
