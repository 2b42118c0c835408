/* live.js — the report page's live panel (section #live). The model runs in
 * the page through cnn's own C code compiled to WebAssembly (src/wasm/live.c
 * and the library's sources), embedded in #cnn-live with the model's
 * tensors. The reader draws on a canvas (mouse, finger or pen: pointer
 * events) or drops a picture; the page hands the module RGBA pixels, the
 * module prepares them as `cnn predict` prepares a picture file and runs
 * every layer, and the panel draws the prepared input, every layer's output
 * and the probabilities. Runs after page.js and draws with its helpers. */
(function () {
  'use strict';

  const R = window.cnnReport;
  const {el, fill, absent, section, fmt, shapeText, cname, paint, diverging, drawBars, probBars} = R.lib;
  const D = R.data;
  const LIVE = JSON.parse(document.getElementById('cnn-live').textContent);
  const [IC, IH, IW] = D.input;
  const NL = D.layers.length;
  const DRAW = IC === 1 && IH === 28 && IW === 28;  /* a digit model: the reader draws */
  const SIDE = 280;                                   /* the canvas shown, pixels a side */
  const INK = 18;                                     /* stroke width, in those pixels */
  /* The drawing the model reads: the same strokes at 64 pixels a side. cnn
   * predict's preparation takes pictures up to 64 pixels a side as digital
   * drawings (no smoothing), and its analysis of a larger one would cost
   * more than the network itself. */
  const WORK = 64;
  const MAX_PICTURE = 4096;                           /* dropped pictures are shrunk to this side */

  /* what the tests and the curious read: the state of the panel */
  const api = R.live = {ready: false, error: null, absent: LIVE.absent || null, draws: DRAW, updates: 0,
    lastMs: 0, maxWorkMs: 0, work: [], result: null, step: null};

  /* ------------------------------------------------------------ the module */

  function bytesOf(b64) {
    const bin = atob(b64), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  /* The C library's system calls (WASI): the page has no files, clock or
   * environment to give, so each answers "none" or "not supported". */
  function wasiImports(module, memory) {
    const imports = {};
    const calls = {
      environ_sizes_get(count, size) { const v = new Uint32Array(memory().buffer); v[count >> 2] = 0; v[size >> 2] = 0; return 0; },
      environ_get() { return 0; },
      fd_write(fd, iovs, n, written) {
        const m = memory().buffer, v = new Uint32Array(m);
        let text = '', total = 0;
        for (let i = 0; i < n; i++) {
          const p = v[(iovs >> 2) + 2 * i], len = v[(iovs >> 2) + 2 * i + 1];
          text += new TextDecoder().decode(new Uint8Array(m, p, len));
          total += len;
        }
        v[written >> 2] = total;
        if (text.trim()) console.warn('cnn module: ' + text.trim());
        return 0;
      },
      fd_prestat_get() { return 8; },   /* EBADF: no directories */
      proc_exit(code) { throw new Error('the module exited with status ' + code); },
    };
    for (const imp of WebAssembly.Module.imports(module)) {
      if (imp.kind !== 'function') continue;
      const ns = imports[imp.module] = imports[imp.module] || {};
      ns[imp.name] = calls[imp.name] || (() => 52); /* ENOSYS */
    }
    return imports;
  }

  /* The module, with the model loaded: its exports. */
  async function start() {
    const module = await WebAssembly.compile(bytesOf(LIVE.module));
    let memory = null;
    const inst = await WebAssembly.instantiate(module, wasiImports(module, () => memory));
    const X = inst.exports;
    memory = X.memory;
    if (X._initialize) X._initialize();
    const put = bytes => { const p = X.live_alloc(bytes.length); new Uint8Array(X.memory.buffer, p, bytes.length).set(bytes); return p; };
    const arch = put(new TextEncoder().encode(D.arch + '\0'));
    const weights = put(bytesOf(LIVE.weights));
    const [means, stds] = D.norm;
    const mean = put(new Uint8Array(new Float32Array(means).buffer)), std = put(new Uint8Array(new Float32Array(stds).buffer));
    const rc = X.live_load(arch, weights, LIVE.nfloats, LIVE.prep_id, means.length, mean, std);
    [arch, weights, mean, std].forEach(p => X.live_release(p));
    if (rc) throw new Error(cString(X, X.live_error()));
    return X;
  }

  function cString(X, p) {
    const m = new Uint8Array(X.memory.buffer);
    let e = p;
    while (m[e]) e++;
    return new TextDecoder().decode(m.subarray(p, e));
  }

  /* ------------------------------------------------------------ running it */

  let X = null, rgba = 0, rgbaBytes = 0;

  /* Prepare and run one picture (an ImageData): the probabilities, the
   * prepared input and every layer's output, copied out of the module. */
  function run(image) {
    const t0 = performance.now();
    const n = image.data.length;
    if (n > rgbaBytes) {
      if (rgba) X.live_release(rgba);
      rgba = X.live_alloc(n);
      rgbaBytes = n;
    }
    new Uint8Array(X.memory.buffer, rgba, n).set(image.data);
    let rc = X.live_prepare_rgba(rgba, image.width, image.height);
    if (!rc) rc = X.live_forward();
    const ms = performance.now() - t0;
    if (rc) return {error: cString(X, X.live_error()), ms};
    const buf = X.memory.buffer;
    const probs = Array.from(new Float32Array(buf, X.live_probs(), D.k));
    const pixels = new Uint8Array(buf, X.live_pixels(), IC * IH * IW).slice();
    const acts = D.layers.map((l, i) => new Float32Array(buf, X.live_act(i), l.out[0] * l.out[1] * l.out[2]).slice());
    let pred = 0;
    probs.forEach((p, j) => { if (p > probs[pred]) pred = j; });
    return {probs, pred, pixels, acts, ms};
  }

  /* ------------------------------------------------------------ the panel */

  const EXPLAIN = {
    input: 'The picture as the network reads it: prepared the way the training images were.',
    conv: 'Each map is the layer\u2019s input convolved with one learned filter (plus its bias): bright where the input looks like the filter.',
    relu: 'ReLU keeps the positive values and sets the negative ones to zero.',
    leaky_relu: 'Leaky ReLU keeps the positive values and shrinks the negative ones.',
    sigmoid: 'The sigmoid squashes every value into (0, 1).',
    tanh: 'tanh squashes every value into (\u22121, 1).',
    maxpool: 'Max pooling keeps the largest value of each window: smaller maps that forget the exact position.',
    avgpool: 'Average pooling keeps the mean of each window: smaller, smoother maps.',
    batchnorm: 'Batch normalisation shifts and scales each channel by the statistics learned in training.',
    dropout: 'Dropout does nothing once the network is trained (it only acts during training).',
    flatten: 'Flatten lines every value of the maps up in one row for the dense layers.',
    dense: 'Each value is a weighted sum of every value of the layer before, plus a bias.',
    softmax: 'Softmax turns the scores into probabilities that add up to one.',
  };

  function build(c) {
    if (LIVE.absent) { c.append(absent(LIVE.absent)); return; }
    const status = el('p', {class: 'note live-status'}, 'Starting the model\u2026');
    const canvas = el('canvas', {id: 'live-canvas', width: SIDE, height: SIDE, class: DRAW ? 'draw' : 'drop',
      'aria-label': DRAW ? 'draw a digit here' : 'drop a picture here'});
    const ctx = canvas.getContext('2d');
    const work = el('canvas', {width: WORK, height: WORK}), wctx = work.getContext('2d', {willReadFrequently: true});
    const file = el('input', {type: 'file', accept: 'image/*', id: 'live-file', style: 'display:none'});
    const clearBtn = el('button', {type: 'button', id: 'live-clear'}, 'Clear');
    const openBtn = el('button', {type: 'button', id: 'live-open', onclick: () => file.click()}, 'Open a picture\u2026');
    const stepBtn = el('button', {type: 'button', id: 'live-step'}, 'Step through layers');
    const backBtn = el('button', {type: 'button', id: 'live-back', disabled: true}, '\u25c0 Back');
    const nextBtn = el('button', {type: 'button', id: 'live-next', disabled: true}, 'Next layer \u25b6');
    const allBtn = el('button', {type: 'button', id: 'live-all', disabled: true}, 'All layers');
    const pred = el('div', {id: 'live-pred', class: 'live-pred'});
    const seen = el('canvas', {id: 'live-seen'});
    const stepNote = el('p', {id: 'live-step-note', class: 'note'});
    const rows = el('div', {id: 'live-layers', class: 'live-layers'});
    const hint = DRAW ? 'Draw a digit, as large as the box, or drop a picture on it. The model reads the drawing at ' + WORK + '\u00d7' + WORK + ' pixels.'
                      : 'Drop a picture on the box, or open one.';
    c.append(el('div', {class: 'live-top'},
      el('div', {class: 'live-pad'}, canvas, el('div', {class: 'live-buttons'}, clearBtn, openBtn, file), el('p', {class: 'note'}, hint)),
      el('div', {class: 'live-out'}, pred, el('div', {class: 'live-seen'}, seen, el('div', {class: 'note'}, 'what the network sees (' + IC + '\u00d7' + IH + '\u00d7' + IW + ')')), status)),
      el('div', {class: 'live-buttons'}, stepBtn, backBtn, nextBtn, allBtn), stepNote, rows);

    /* one row per activation: 0 the prepared input, i + 1 layer i's output */
    const rowEls = [];
    for (let a = 0; a <= NL; a++) {
      const s = a ? D.layers[a - 1].out : D.input, kind = a ? D.layers[a - 1].kind : 'input';
      const head = el('div', {class: 'lh'}, el('b', null, a ? '#' + (a - 1) + ' ' + kind : 'input'),
        el('div', {class: 'desc'}, a ? D.layers[a - 1].desc : ''), el('div', null, shapeText(s)));
      const range = el('div', {class: 'range'});
      head.append(range);
      const maps = el('div', {class: 'fm-maps'});
      const row = el('div', {class: 'fm-layer', 'data-act': a}, head, maps);
      const planes = s[1] * s[2] > 1 ? Math.min(s[0], 32) : 0;
      const canv = [];
      for (let ch = 0; ch < planes; ch++) { const cv = el('canvas', {title: 'channel ' + ch}); maps.append(cv); canv.push(cv); }
      if (planes && planes < s[0]) maps.append(el('span', {class: 'note'}, 'the first 32 of ' + s[0] + ' channels'));
      const flat = el('canvas', {class: 'flat'});
      if (!planes) maps.append(flat);
      rowEls.push({row, range, canv, flat, shape: s, kind});
      rows.append(row);
    }

    function drawInput(px) {
      const sc = Math.max(2, Math.round(84 / Math.max(IH, IW))), plane = IH * IW;
      paint(seen, IW, IH, sc, (x, y) => {
        const i = y * IW + x;
        return IC === 3 ? [px[i], px[i + plane], px[i + 2 * plane]] : [px[i], px[i], px[i]];
      });
      const r = rowEls[0];
      r.canv.forEach((cv, ch) => paint(cv, IW, IH, Math.max(1, Math.round(52 / Math.max(IH, IW))), (x, y) => {
        const s = px[ch * plane + y * IW + x];
        return [s, s, s];
      }));
      r.range.textContent = 'bytes 0 to 255';
    }

    /* One map into its canvas, coloured as the report's feature maps (grey,
     * or blue-white-red when it holds negatives), reusing the canvas's
     * pixels: this runs for every map on every frame of a drawing. */
    const POS = diverging(1), NEG = diverging(-1);
    function drawPlane(cv, v, off, W, H, sc) {
      if (cv.width !== W || cv.height !== H || !cv.pixels) {
        cv.width = W; cv.height = H;
        cv.style.width = W * sc + 'px'; cv.style.height = H * sc + 'px';
        cv.classList.add('px');
        cv.pixels = cv.getContext('2d').createImageData(W, H);
      }
      const d = cv.pixels.data, n = W * H;
      let l = Infinity, h = -Infinity;
      for (let i = 0; i < n; i++) { const x = v[off + i]; if (x < l) l = x; if (x > h) h = x; }
      const signed = l < 0, m = signed ? Math.max(-l, h) || 1 : h || 1;
      for (let i = 0, o = 0; i < n; i++, o += 4) {
        const t = v[off + i] / m;
        if (signed) {
          const e = t >= 0 ? POS : NEG, a = Math.min(1, Math.abs(t)) || 0;
          d[o] = 255 + (e[0] - 255) * a; d[o + 1] = 255 + (e[1] - 255) * a; d[o + 2] = 255 + (e[2] - 255) * a;
        } else {
          d[o] = d[o + 1] = d[o + 2] = 255 * Math.max(0, Math.min(1, t || 0));
        }
        d[o + 3] = 255;
      }
      cv.getContext('2d').putImageData(cv.pixels, 0, 0);
    }

    function drawLayer(a, v) {
      const r = rowEls[a], [C, H, W] = r.shape;
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < v.length; i++) { if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i]; }
      r.range.textContent = 'from ' + fmt(lo, 3) + ' to ' + fmt(hi, 3);
      if (r.canv.length) {
        const sc = Math.max(1, Math.round(52 / Math.max(H, W)));
        r.canv.forEach((cv, ch) => drawPlane(cv, v, ch * H * W, W, H, sc));
      } else {
        drawBars(r.flat, v, C, 1);
      }
    }

    function showResult(res) {
      api.result = res;
      if (res.error) {
        fill(pred, el('p', {class: 'absent'}, res.error));
        bars = null;
        pred.dataset.probs = '';
        return;
      }
      drawInput(res.pixels);
      res.acts.forEach((v, i) => drawLayer(i + 1, v));
      const order = D.k > 20 ? res.probs.map((p, j) => j).sort((x, y) => res.probs[y] - res.probs[x]).slice(0, 10)
                             : res.probs.map((p, j) => j);
      /* the bars are made once and then only updated: no new elements per frame */
      if (!bars || D.k > 20) {
        bars = probBars(order.map(j => [j, res.probs[j]]), res.pred);
        answer = [el('span', {class: 'big'}), el('span')];
        fill(pred, el('div', {class: 'live-answer'}, answer), el('div', {class: 'probs'}, bars));
      }
      if (D.k <= 20)
        bars.forEach((b, j) => {
          const p = (100 * res.probs[j]).toFixed(1) + '%', f = b.querySelector('.fill');
          f.style.width = p;
          f.classList.toggle('hit', j === res.pred);
          b.querySelector('.v').textContent = p;
        });
      answer[0].textContent = cname(res.pred);
      answer[1].textContent = ' ' + (100 * res.probs[res.pred]).toFixed(1) + '%' + (cname(res.pred) !== String(res.pred) ? ' (class ' + res.pred + ')' : '');
      pred.dataset.pred = res.pred;
      pred.dataset.probs = JSON.stringify(res.probs);
      status.textContent = 'Prepared and run in ' + res.ms.toFixed(2) + ' ms by cnn\u2019s C code in WebAssembly.';
    }

    let bars = null, answer = null;
    function showEmpty() {
      api.result = null;
      bars = null;
      fill(pred, el('p', {class: 'note'}, DRAW ? 'Draw a digit in the box.' : 'Drop a picture in the box.'));
      pred.dataset.probs = '';
      delete pred.dataset.pred;
      rowEls.forEach(r => { r.canv.concat([r.flat]).forEach(cv => cv.getContext('2d').clearRect(0, 0, cv.width, cv.height)); r.range.textContent = ''; });
      seen.getContext('2d').clearRect(0, 0, seen.width, seen.height);
    }

    /* ---- the picture: the canvas, or a dropped picture at its own size */
    let inked = false, picture = null, pending = false;
    function blank() {
      ctx.fillStyle = '#fff';
      ctx.fillRect(0, 0, SIDE, SIDE);
      wctx.fillStyle = '#fff';
      wctx.fillRect(0, 0, WORK, WORK);
      if (!DRAW) {
        ctx.fillStyle = '#8a8f99';
        ctx.font = '16px system-ui, sans-serif';
        ctx.textAlign = 'center';
        ctx.fillText('drop a picture here', SIDE / 2, SIDE / 2);
      }
      inked = false;
      picture = null;
    }
    function update() {
      pending = false;
      if (!X) return;
      const t0 = performance.now();
      if (!inked && !picture) showEmpty();
      else showResult(run(picture || wctx.getImageData(0, 0, WORK, WORK)));
      const ms = performance.now() - t0;
      api.updates++;
      api.lastMs = api.result ? api.result.ms : 0;
      api.work.push(ms);
      api.maxWorkMs = Math.max(api.maxWorkMs, ms);
    }
    function schedule() { if (!pending) { pending = true; requestAnimationFrame(update); } }

    /* ---- drawing with pointer events (mouse, touch and pen alike) */
    let last = null;
    const at = e => { const b = canvas.getBoundingClientRect(); return [(e.clientX - b.left) * SIDE / b.width, (e.clientY - b.top) * SIDE / b.height]; };
    function stroke(from, to) {
      for (const [c2, f] of [[ctx, 1], [wctx, WORK / SIDE]]) {
        c2.strokeStyle = '#000';
        c2.lineWidth = INK * f;
        c2.lineCap = 'round';
        c2.lineJoin = 'round';
        c2.beginPath();
        c2.moveTo(from[0] * f, from[1] * f);
        c2.lineTo(to[0] * f, to[1] * f);
        c2.stroke();
      }
    }
    if (DRAW) {
      canvas.addEventListener('pointerdown', e => {
        if (e.button !== 0 && e.pointerType === 'mouse') return;
        e.preventDefault();
        canvas.setPointerCapture(e.pointerId);
        if (picture) picture = null; /* strokes go on the picture as the box shows it */
        last = at(e);
        stroke(last, last);
        inked = true;
        schedule();
      });
      canvas.addEventListener('pointermove', e => {
        if (!last) return;
        const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
        for (const ev of events.length ? events : [e]) { const p = at(ev); stroke(last, p); last = p; }
        schedule();
      });
      const end = () => { if (last) { last = null; schedule(); } };
      canvas.addEventListener('pointerup', end);
      canvas.addEventListener('pointercancel', end);
    }

    /* ---- dropped or opened pictures: decoded by the browser, fed at their own size */
    async function takeFile(f) {
      if (!f) return;
      try {
        const bmp = await createImageBitmap(f);
        const s = Math.min(1, MAX_PICTURE / Math.max(bmp.width, bmp.height));
        const w = Math.max(1, Math.round(bmp.width * s)), h = Math.max(1, Math.round(bmp.height * s));
        const off = document.createElement('canvas');
        off.width = w; off.height = h;
        const o = off.getContext('2d', {willReadFrequently: true});
        o.drawImage(bmp, 0, 0, w, h);
        blank();
        for (const [c2, side] of [[ctx, SIDE], [wctx, WORK]]) {
          const f2 = Math.min(side / w, side / h);
          c2.drawImage(bmp, (side - w * f2) / 2, (side - h * f2) / 2, w * f2, h * f2);
        }
        picture = o.getImageData(0, 0, w, h);
        schedule();
      } catch (e) {
        status.textContent = 'That file could not be read as a picture (' + e.message + ').';
      }
    }
    if (!DRAW) canvas.addEventListener('click', () => file.click());
    canvas.addEventListener('dragover', e => { e.preventDefault(); canvas.classList.add('over'); });
    canvas.addEventListener('dragleave', () => canvas.classList.remove('over'));
    canvas.addEventListener('drop', e => {
      e.preventDefault();
      canvas.classList.remove('over');
      const f = e.dataTransfer && e.dataTransfer.files[0];
      if (f) takeFile(f);
    });
    file.addEventListener('change', () => { takeFile(file.files[0]); file.value = ''; });
    clearBtn.addEventListener('click', () => { blank(); schedule(); });

    /* ---- stepping through the layers */
    function setStep(s) {
      api.step = s;
      rowEls.forEach((r, a) => {
        r.row.classList.toggle('hidden', s !== null && a > s);
        r.row.classList.toggle('current', s !== null && a === s);
      });
      backBtn.disabled = s === null || s === 0;
      nextBtn.disabled = s === null || s === NL;
      allBtn.disabled = s === null;
      if (s === null) { stepNote.textContent = ''; return; }
      const r = rowEls[s];
      stepNote.textContent = (s ? 'Layer #' + (s - 1) + ' (' + D.layers[s - 1].desc + '), ' : 'The input, ') + shapeText(r.shape) + '. ' +
        (EXPLAIN[r.kind] || '') + (s === NL ? ' This is the last layer: its output gives the prediction.' : '');
      r.row.scrollIntoView({block: 'nearest'});
    }
    stepBtn.addEventListener('click', () => setStep(0));
    backBtn.addEventListener('click', () => setStep(Math.max(0, api.step - 1)));
    nextBtn.addEventListener('click', () => setStep(Math.min(NL, api.step + 1)));
    allBtn.addEventListener('click', () => setStep(null));

    blank();
    showEmpty();
    /* for tests and measurements: the drawing as a PNG, and timed runs of the current picture */
    api.png = () => work.toDataURL('image/png');
    api.bench = n => {
      const image = picture || wctx.getImageData(0, 0, WORK, WORK), t = [];
      for (let i = 0; i < n; i++) t.push(run(image).ms);
      t.sort((a, b) => a - b);
      return {median: t[t.length >> 1], mean: t.reduce((a, b) => a + b, 0) / n, min: t[0], max: t[n - 1], n};
    };
    start().then(x => {
      X = x;
      /* one stroke run through every step, drawn and then cleared, before
       * the reader starts: the first real frame then runs compiled code */
      if (DRAW) {
        stroke([SIDE / 2, SIDE / 4], [SIDE / 2, 3 * SIDE / 4]);
        inked = true;
        update();
        blank();
      }
      update();
      api.ready = true;
      status.textContent = 'The model is ready: ' + LIVE.nfloats.toLocaleString('en-US') + ' weights, a ' +
        Math.round(LIVE.module_bytes / 1024) + ' KB WebAssembly module, pictures prepared as \u201c' + LIVE.prep + '\u201d.';
      schedule();
    }, e => {
      api.error = e.message;
      fill(c, absent('The model could not be started in this browser: ' + e.message));
      console.warn(e);
    });
  }

  section('live', build);
})();
