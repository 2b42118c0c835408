/* page_layers.js — the report page's sections about what the layers do:
 * every conv layer's filters with the test patches that excite them most,
 * the feature maps of chosen test images after every layer, one
 * convolution step by step with the real numbers, and statistics of every
 * layer's weights and outputs. Runs after page.js and draws with its
 * helpers; the last of the report's own scripts, it marks the page ready. */
(function () {
  'use strict';

  const R = window.cnnReport;
  const {el, sv, fill, absent, section, fmt, pct, shapeText, cname, clabel, shapeOf, paint, diverging, grey,
    planeCanvas, cropCanvas, imageCanvas, imgIndex, imgLabel, imgPred, probBars, largestAbs,
    flatCanvas} = R.lib;
  const D = R.data, A = R.array;
  const L = D.layers.length;
  const [IC, IH, IW] = D.input;
  const T = D.test || null;        /* the test sections' data, or null */

  /* ------------------------------------------------------------ filters */

  function kernelCanvas(w, off, kh, kw, m, scale) {
    return paint(el('canvas'), kw, kh, scale, (x, y) => diverging(w[off + y * kw + x] / m));
  }
  function rgbKernelCanvas(w, off, kh, kw, m, scale) {
    const plane = kh * kw;
    return paint(el('canvas'), kw, kh, scale, (x, y) => {
      const i = off + y * kw + x;
      return [0, 1, 2].map(ch => 128 + 127 * w[i + ch * plane] / m);
    });
  }

  function filters(c) {
    if (!D.convs.length) { c.append(absent('This model has no conv layer, so it has no filters.')); return; }
    const patches = T ? T.patches : [];
    D.convs.forEach((cv, ci) => {
      const layer = D.layers[cv.layer], [F, C, kh, kw] = cv.dims, w = A(cv.weight), b = A(cv.bias);
      const m = largestAbs(w, w.length);
      const block = el('div', {class: 'conv-block', 'data-layer': cv.layer});
      block.append(el('h3', null, 'Layer ' + cv.layer + ': ' + layer.desc));
      block.append(el('p', {class: 'note'}, F + ' filters of ' + C + '\u00d7' + kh + '\u00d7' + kw + ' weights' + (b ? ' and a bias each' : '') +
        ': filter f makes output channel f. ' + (layer.rf ? 'Each output pixel sees ' + layer.rf[0] + '\u00d7' + layer.rf[1] + ' pixels of the input image. ' : '') +
        'Colours: the largest weight of the layer, ' + fmt(m, 3) + ', is full red; \u2212' + fmt(m, 3) + ' full blue.' +
        (cv.kept < F ? ' The page holds the first ' + cv.kept + ' filters.' : '')));
      /* the whole layer: each filter a block of its input channels' kernels
       * side by side, the blocks in rows */
      const cols = Math.min(C, 64), gap = 1, bgap = 3, bw = cols * (kw + gap) - gap;
      const cell = Math.max(Math.min(5, Math.floor(1050 / (bw + bgap))), Math.min(12, Math.floor(1050 / (bw + bgap) / Math.min(cv.kept, 8))), 1);
      const per = Math.max(1, Math.min(cv.kept, Math.floor((1050 / cell + bgap) / (bw + bgap))));
      const nrow = Math.ceil(cv.kept / per), cwid = per * (bw + bgap) - bgap, chgt = nrow * (kh + bgap + 2) - bgap;
      const grid = el('canvas', {class: 'wgrid', width: cwid, height: chgt});
      grid.classList.add('px');
      grid.style.width = cwid * cell + 'px';
      grid.style.height = chgt * cell + 'px';
      const ctx = grid.getContext('2d'), im = ctx.createImageData(cwid, chgt);
      for (let i = 0; i < im.data.length; i += 4) { im.data[i] = im.data[i + 1] = im.data[i + 2] = 255; im.data[i + 3] = 255; }
      const where = f => [(f % per) * (bw + bgap), Math.floor(f / per) * (kh + bgap + 2)];
      for (let f = 0; f < cv.kept; f++) {
        const [bx, by] = where(f);
        for (let ch = 0; ch < cols; ch++)
          for (let y = 0; y < kh; y++)
            for (let x = 0; x < kw; x++) {
              const col = diverging(w[((f * C + ch) * kh + y) * kw + x] / m);
              const o = 4 * ((by + y) * cwid + bx + ch * (kw + gap) + x);
              im.data[o] = col[0]; im.data[o + 1] = col[1]; im.data[o + 2] = col[2];
            }
      }
      ctx.putImageData(im, 0, 0);
      const info = el('div', {class: 'hoverinfo'}, C > 1 ? 'Each block is one filter (filters 0, 1, \u2026 left to right, row by row): its kernels for input channels 0, 1, \u2026 side by side. Hover for the numbers.'
                                                          : 'Each square is one filter (0, 1, \u2026 left to right). Hover for the numbers.');
      grid.addEventListener('mousemove', e => {
        const r = grid.getBoundingClientRect();
        const gx = Math.floor((e.clientX - r.left) / cell), gy = Math.floor((e.clientY - r.top) / cell);
        const f = Math.floor(gy / (kh + bgap + 2)) * per + Math.floor(gx / (bw + bgap));
        const ch = Math.floor((gx % (bw + bgap)) / (kw + gap));
        if (f < 0 || f >= cv.kept || ch < 0 || ch >= cols || gy % (kh + bgap + 2) >= kh) return;
        const vals = [];
        for (let k = 0; k < kh * kw; k++) vals.push(fmt(w[(f * C + ch) * kh * kw + k], 3));
        info.textContent = 'filter ' + f + ', input channel ' + ch + (b ? ' (bias ' + fmt(b[f], 3) + ')' : '') + ': ' + vals.join('  ');
      });
      block.append(el('div', {class: 'wgrid-wrap'}, grid), info);
      if (cols < C) block.append(el('p', {class: 'note'}, 'Showing the first 64 of ' + C + ' input channels.'));

      /* filter cards: big kernels for a first layer, and the strongest patches */
      const pt = patches.find(p => p.layer === cv.layer);
      const first = ci === 0 && cv.layer === D.convs[0].layer && C <= 4;
      if (pt || first) {
        const cards = el('div', {class: 'filter-cards'});
        const nf = pt ? pt.filters : Math.min(cv.kept, 64);
        const px = pt ? A(pt.px) : null, one = pt ? IC * pt.rh * pt.rw : 0;
        let at = 0;
        const big = Math.max(3, Math.min(14, Math.floor(56 / Math.max(kh, kw))));
        for (let f = 0; f < nf; f++) {
          const card = el('div', {class: 'fcard', 'data-filter': f});
          card.append(el('div', {class: 'head'}, 'filter ' + f + (b ? ' \u00b7 bias ' + fmt(b[f], 3) : '')));
          const row = el('div', {class: 'row'});
          if (C <= 4) {
            const kern = el('div', {class: 'kern'});
            if (C === 3 && cv.layer === D.convs[0].layer && IC === 3) kern.append(rgbKernelCanvas(w, f * C * kh * kw, kh, kw, m, big));
            for (let ch = 0; ch < C; ch++) kern.append(kernelCanvas(w, (f * C + ch) * kh * kw, kh, kw, m, big));
            row.append(kern);
          }
          if (pt) {
            const hits = pt.hits[f], box = el('div', {class: 'patches', title: 'test patches that make filter ' + f + ' respond most'});
            const sc = Math.max(2, Math.round(48 / Math.max(pt.rh, pt.rw)));
            hits.forEach(h => {
              const cv2 = cropCanvas(px, at * one, pt.rh, pt.rw, sc, [h[4] - h[6], h[5] - h[7], pt.field[0], pt.field[1]]);
              cv2.title = 'test image #' + h[1] + ': output pixel (' + h[2] + ', ' + h[3] + ') = ' + fmt(h[0], 4);
              box.append(cv2);
              at++;
            });
            row.append(box);
          }
          card.append(row);
          cards.append(card);
        }
        if (pt) block.append(el('p', {class: 'note'}, 'Each card: the filter' + (C <= 4 ? ' (one picture per input channel' + (C === 3 && IC === 3 && ci === 0 ? ', and first all three as RGB: grey where the weights are zero' : '') + ')' : '') +
          ', then the ' + pt.top + ' pieces of test images (of the first ' + T.sample + ') that give its output the largest value, each the ' +
          pt.rh + '\u00d7' + pt.rw + ' pixels around the ' + pt.field[0] + '\u00d7' + pt.field[1] + ' that its output pixel sees (outlined in yellow' +
          (pt.field[0] >= IH ? '; the field covers the whole image' : '') + ').' +
          (pt.filters < F ? ' The first ' + pt.filters + ' filters.' : '')));
        else block.append(el('p', {class: 'note'}, 'Give test images (--data or --dataset) to see the pieces of test images that excite each filter most.'));
        block.append(cards);
      }
      c.append(block);
    });
  }

  /* ------------------------------------------------------------ feature maps */

  const state = {pick: 0, strips: [], listeners: []};
  const mapCache = new Map();

  /* activation a of pick p as floats: exact, or from its uint8 quantisation */
  function resolve(p, a) {
    let mp = T.picks[p].maps[a];
    while (mp && mp.same !== undefined) { a = mp.same; mp = T.picks[p].maps[a]; }
    return {mp, a};
  }
  function mapOf(p, a) {
    const key = p + ':' + a;
    if (mapCache.has(key)) return mapCache.get(key);
    const r = resolve(p, a);
    let out = null;
    if (r.mp && r.mp.x) out = {v: A(r.mp.x), exact: true};
    else if (r.mp && r.mp.q) {
      const q = A(r.mp.q), lo = A(r.mp.lo), hi = A(r.mp.hi), planes = lo.length, plane = q.length / planes;
      const v = new Float32Array(q.length);
      for (let ch = 0; ch < planes; ch++)
        for (let e = 0; e < plane; e++) v[ch * plane + e] = lo[ch] + q[ch * plane + e] / 255 * (hi[ch] - lo[ch]);
      out = {v, exact: false};
    }
    mapCache.set(key, out);
    return out;
  }
  function exactOf(p, a) { const r = resolve(p, a); return r.mp && r.mp.x ? A(r.mp.x) : null; }

  function selectPick(p) {
    state.pick = p;
    state.strips.forEach(s => s.querySelectorAll('.pick').forEach((b, i) => b.classList.toggle('sel', i === p)));
    state.listeners.forEach(f => f());
  }

  function pickStrip() {
    const strip = el('div', {class: 'picks', role: 'listbox'});
    T.picks.forEach((pk, i) => {
      const id = pk.img, truth = imgLabel(id), pred = imgPred(id);
      const b = el('button', {class: 'pick' + (i === state.pick ? ' sel' : ''), 'data-pick': i, type: 'button',
        title: 'test image #' + imgIndex(id) + ': ' + clabel(truth) + (truth === pred ? '' : ', predicted ' + clabel(pred))},
        imageCanvas(id, Math.max(1, Math.round(40 / Math.max(IH, IW)))),
        truth === pred ? cname(truth) : el('span', {class: 'bad'}, cname(truth) + '\u2192' + cname(pred)));
      b.addEventListener('click', () => selectPick(i));
      strip.append(b);
    });
    state.strips.push(strip);
    return strip;
  }

  function featureMaps(c) {
    if (!T) { c.append(absent(D.no_data)); return; }
    c.append(pickStrip());
    const head = el('div', {class: 'fm-head'}), body = el('div', {class: 'fm-body'});
    c.append(head, body);
    const expanded = new Set();
    const render = () => {
      const p = state.pick, pk = T.picks[p], id = pk.img, truth = imgLabel(id), pred = imgPred(id);
      fill(head, el('p', null, 'Test image #' + imgIndex(id) + ': a ' + clabel(truth) + ', predicted ' + clabel(pred) +
        (truth === pred ? ' (right)' : ' (wrong)') + '.'));
      body.replaceChildren();
      for (let a = 0; a <= L; a++) {
        const s = shapeOf(a), [C, H, W] = s;
        const lh = el('div', {class: 'lh'});
        const maps = el('div', {class: 'fm-maps'});
        const row = el('div', {class: 'fm-layer', 'data-act': a}, lh, maps);
        if (a === 0) {
          lh.append(el('b', null, 'input'), el('div', {class: 'desc'}, shapeText(s)), el('div', {class: 'range'}, 'the test image as the network reads it'));
          maps.append(imageCanvas(id, Math.max(2, Math.round(84 / Math.max(IH, IW)))));
          body.append(row);
          continue;
        }
        const layer = D.layers[a - 1];
        lh.append(el('b', null, '#' + (a - 1) + ' ' + layer.kind), el('div', {class: 'desc'}, layer.desc), el('div', null, shapeText(s)));
        const mo = mapOf(p, a);
        if (!mo) {
          maps.append(el('p', {class: 'note'}, 'Not in the page for this image (size budget): pick one of the first images.'));
          body.append(row);
          continue;
        }
        const v = mo.v;
        let lo = Infinity, hi = -Infinity;
        for (let i = 0; i < v.length; i++) { if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i]; }
        lh.append(el('div', {class: 'range'}, 'from ' + fmt(lo, 3) + ' to ' + fmt(hi, 3) + (mo.exact ? '' : ' (rounded to 256 levels per map)')));
        if (H * W > 1) {
          const shown = expanded.has(a) ? C : Math.min(C, 32), sc = Math.max(1, Math.round(52 / Math.max(H, W)));
          for (let ch = 0; ch < shown; ch++) {
            const cv = planeCanvas(v, ch * H * W, W, H, sc);
            cv.title = 'channel ' + ch;
            maps.append(cv);
          }
          if (shown < C) maps.append(el('button', {class: 'more', type: 'button', onclick: () => { expanded.add(a); render(); }}, 'show all ' + C + ' channels'));
        } else {
          maps.append(flatCanvas(v, C));
          if (a === L) {
            const probs = A(pk.probs);
            let order = Array.from(probs.keys());
            if (D.k > 20) order = order.sort((x, y) => probs[y] - probs[x]).slice(0, 10);
            maps.append(el('div', {class: 'probs'}, el('div', {class: 'note'}, D.softmax ? 'Probabilities (this layer\u2019s output):' : 'Probabilities (softmax of these scores):'),
              probBars(order.map(cl => [cl, probs[cl]]), truth)));
          }
        }
        body.append(row);
      }
    };
    state.listeners.push(render);
    render();
  }

  /* ------------------------------------------------------------ convolution */

  function padIndex(i, n, mode) {
    if (i >= 0 && i < n) return i;
    if (mode === 'zero') return -1;
    if (mode === 'replicate') return i < 0 ? 0 : n - 1;
    if (n === 1) return 0;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
  }

  /* eq. 3.3 for output pixel (oy, ox) of filter f of conv D.convs[ci] on pick p */
  function convAt(ci, p, f, oy, ox) {
    const cv = D.convs[ci], layer = D.layers[cv.layer], g = layer.window;
    const [, C, kh, kw] = cv.dims, [, H, W] = shapeOf(cv.layer), [, Ho, Wo] = layer.out;
    const X = exactOf(p, cv.layer), Y = exactOf(p, cv.layer + 1), w = A(cv.weight), b = A(cv.bias);
    if (!X || !Y) return null;
    const y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw, partial = [], win = [];
    let total = 0;
    for (let ch = 0; ch < C; ch++) {
      let s = 0;
      const wv = [];
      for (let i = 0; i < kh; i++)
        for (let j = 0; j < kw; j++) {
          const yy = padIndex(y0 + i, H, g.padmode), xx = padIndex(x0 + j, W, g.padmode);
          const pad = y0 + i < 0 || y0 + i >= H || x0 + j < 0 || x0 + j >= W;
          const xv = yy < 0 || xx < 0 ? 0 : X[(ch * H + yy) * W + xx];
          const k = w[((f * C + ch) * kh + i) * kw + j];
          s += xv * k;
          wv.push({x: xv, k, pad});
        }
      partial.push(s);
      win.push(wv);
      total += s;
    }
    const bias = b ? b[f] : 0;
    return {partial, win, bias, sum: total, computed: total + bias, stored: Y[(f * Ho + oy) * Wo + ox], y0, x0};
  }

  function matTable(caption, kh, kw, cellOf) {
    const t = el('table', {class: 'mat'}, el('caption', null, caption));
    for (let i = 0; i < kh; i++) {
      const tr = el('tr');
      for (let j = 0; j < kw; j++) {
        const c = cellOf(i * kw + j);
        const bg = c.tint === undefined ? null : diverging(c.tint).map(Math.round);
        tr.append(el('td', {class: c.pad ? 'pad' : null, style: bg && !c.pad ? 'background:rgb(' + bg.join(',') + ')' : null}, c.text));
      }
      t.append(tr);
    }
    return t;
  }

  function convolution(c) {
    if (!T) { c.append(absent(D.no_data)); return; }
    if (!D.convs.length) { c.append(absent('This model has no conv layer.')); return; }
    c.append(pickStrip());
    const selLayer = el('select', {id: 'conv-layer'}), selF = el('select', {id: 'conv-filter'}), selC = el('select', {id: 'conv-channel'});
    D.convs.forEach((cv, ci) => selLayer.append(el('option', {value: ci}, 'layer ' + cv.layer + ': ' + D.layers[cv.layer].desc)));
    c.append(el('div', {class: 'conv-controls'}, el('label', null, 'Conv layer ', selLayer), el('label', null, 'filter (output channel) ', selF),
      el('label', null, 'input channel shown ', selC)));
    const inCanvas = el('canvas', {id: 'conv-input'}), outCanvas = el('canvas', {id: 'conv-output'});
    const inCap = el('figcaption'), outCap = el('figcaption');
    c.append(el('div', {class: 'conv-planes'}, el('figure', null, inCanvas, inCap), el('figure', null, outCanvas, outCap)));
    const detail = el('div', {id: 'conv-detail'});
    c.append(detail);
    let cur = null; /* what is drawn: {ci, f, ch, sIn, sOut, baseIn, baseOut, pinned} */

    const fillSelects = () => {
      const cv = D.convs[+selLayer.value];
      selF.replaceChildren();
      for (let f = 0; f < cv.kept; f++) selF.append(el('option', {value: f}, String(f)));
      selC.replaceChildren();
      for (let ch = 0; ch < cv.dims[1]; ch++) selC.append(el('option', {value: ch}, String(ch)));
    };

    const draw = () => {
      const ci = +selLayer.value, f = +selF.value, ch = +selC.value, p = state.pick;
      const cv = D.convs[ci], layer = D.layers[cv.layer], g = layer.window;
      const [, H, W] = shapeOf(cv.layer), [, Ho, Wo] = layer.out;
      const X = exactOf(p, cv.layer), Y = exactOf(p, cv.layer + 1);
      if (!X || !Y) {
        cur = null;
        inCanvas.width = outCanvas.width = 0;
        inCap.textContent = outCap.textContent = '';
        fill(detail, absent('The exact numbers of this image are not in the page (to keep it small): pick one of the first ' + T.exact_images + ' images.'));
        return;
      }
      const Hp = H + 2 * g.ph, Wp = W + 2 * g.pw;
      const sIn = Math.max(4, Math.min(16, Math.floor(380 / Math.max(Hp, Wp)))), sOut = Math.max(4, Math.min(16, Math.floor(380 / Math.max(Ho, Wo))));
      let m = 0;
      for (let i = 0; i < H * W; i++) m = Math.max(m, Math.abs(X[ch * H * W + i]));
      let lo = 0;
      for (let i = 0; i < H * W; i++) lo = Math.min(lo, X[ch * H * W + i]);
      const signedIn = lo < 0;
      const colourIn = v => signedIn ? diverging(v / (m || 1)) : grey(v / (m || 1));
      const inBase = el('canvas');
      paint(inBase, Wp, Hp, 1, (x, y) => {
        const yy = padIndex(y - g.ph, H, g.padmode), xx = padIndex(x - g.pw, W, g.padmode);
        const inside = y >= g.ph && y < g.ph + H && x >= g.pw && x < g.pw + W;
        const col = colourIn(yy < 0 || xx < 0 ? 0 : X[(ch * H + yy) * W + xx]);
        return inside ? col : col.map(v => 0.55 * v + 0.45 * 200);
      });
      let om = 0, olo = 0;
      for (let i = 0; i < Ho * Wo; i++) { om = Math.max(om, Math.abs(Y[f * Ho * Wo + i])); olo = Math.min(olo, Y[f * Ho * Wo + i]); }
      const outBase = el('canvas');
      paint(outBase, Wo, Ho, 1, (x, y) => {
        const v = Y[(f * Ho + y) * Wo + x];
        return olo < 0 ? diverging(v / (om || 1)) : grey(v / (om || 1));
      });
      cur = {ci, f, ch, p, sIn, sOut, inBase, outBase, Hp, Wp, Ho, Wo, g, pinned: cur && cur.ci === ci && cur.pinned ? cur.pinned : null};
      inCap.textContent = 'Input of layer ' + cv.layer + ', channel ' + ch + ' of ' + cv.dims[1] + ' (' + H + '\u00d7' + W +
        (g.ph || g.pw ? ', with ' + g.padmode + ' padding of ' + g.ph + (g.pw !== g.ph ? '\u00d7' + g.pw : '') + ' drawn pale around it' : '') + ').';
      outCap.textContent = 'Output channel ' + f + ' (' + Ho + '\u00d7' + Wo + '). Hover over a pixel; click to pin it.';
      /* at first the pixel where this filter responds most */
      let pin = cur.pinned;
      if (!pin) {
        let bi = 0;
        for (let i = 1; i < Ho * Wo; i++) if (Y[f * Ho * Wo + i] > Y[f * Ho * Wo + bi]) bi = i;
        pin = [Math.floor(bi / Wo), bi % Wo];
      }
      show(pin[0], pin[1]);
    };

    const redraw = (oy, ox) => {
      const k = cur, cvl = D.convs[k.ci].dims;
      for (const [cvs, base, s, w, h] of [[inCanvas, k.inBase, k.sIn, k.Wp, k.Hp], [outCanvas, k.outBase, k.sOut, k.Wo, k.Ho]]) {
        cvs.width = w * s;
        cvs.height = h * s;
        const ctx = cvs.getContext('2d');
        ctx.imageSmoothingEnabled = false;
        ctx.drawImage(base, 0, 0, w * s, h * s);
        if (s >= 8) {
          ctx.strokeStyle = 'rgba(0,0,0,0.08)';
          ctx.beginPath();
          for (let i = 1; i < w; i++) { ctx.moveTo(i * s + 0.5, 0); ctx.lineTo(i * s + 0.5, h * s); }
          for (let i = 1; i < h; i++) { ctx.moveTo(0, i * s + 0.5); ctx.lineTo(w * s, i * s + 0.5); }
          ctx.stroke();
        }
      }
      const g = k.g;
      const ctxIn = inCanvas.getContext('2d'), ctxOut = outCanvas.getContext('2d');
      ctxIn.lineWidth = ctxOut.lineWidth = 2;
      ctxIn.strokeStyle = ctxOut.strokeStyle = '#f5b800';
      ctxIn.strokeRect((ox * g.sw) * k.sIn + 1, (oy * g.sh) * k.sIn + 1, cvl[3] * k.sIn - 2, cvl[2] * k.sIn - 2);
      ctxOut.strokeRect(ox * k.sOut + 1, oy * k.sOut + 1, k.sOut - 2, k.sOut - 2);
      ctxIn.strokeStyle = ctxOut.strokeStyle = '#222';
      ctxIn.lineWidth = ctxOut.lineWidth = 1;
      ctxIn.strokeRect((ox * g.sw) * k.sIn + 0.5, (oy * g.sh) * k.sIn + 0.5, cvl[3] * k.sIn - 1, cvl[2] * k.sIn - 1);
      ctxOut.strokeRect(ox * k.sOut + 0.5, oy * k.sOut + 0.5, k.sOut - 1, k.sOut - 1);
    };

    const show = (oy, ox) => {
      const k = cur;
      redraw(oy, ox);
      const cv = D.convs[k.ci], [, C, kh, kw] = cv.dims, r = convAt(k.ci, k.p, k.f, oy, ox);
      const ch = k.ch, wv = r.win[ch];
      let mx = 1e-12, mk = 1e-12, mp = 1e-12;
      wv.forEach(c => { mx = Math.max(mx, Math.abs(c.x)); mk = Math.max(mk, Math.abs(c.k)); mp = Math.max(mp, Math.abs(c.x * c.k)); });
      const tol = 1e-4 * Math.max(1, Math.abs(r.stored)), diff = Math.abs(r.computed - r.stored);
      const id = T.picks[k.p].img;
      const sumLine = el('div', {class: 'sum'});
      sumLine.append(el('div', null, '\u03a3 window \u00d7 kernel over input channel ' + ch + ' = ', el('b', {id: 'conv-partial', 'data-value': r.partial[ch]}, fmt(r.partial[ch], 6))));
      if (C > 1) {
        sumLine.append(el('div', null, 'the same for every input channel:'),
          el('div', {class: 'chsums'}, r.partial.map((s, i) => el('div', {class: i === ch ? 'cur' : null}, 'channel ' + i + ': ' + fmt(s, 6)))),
          el('div', null, 'sum over the ' + C + ' input channels = ', el('b', null, fmt(r.sum, 7))));
      }
      sumLine.append(el('div', null, '+ bias b[' + k.f + '] = ' + fmt(r.bias, 6)));
      sumLine.append(el('div', {class: 'big'}, '= ', el('span', {id: 'conv-computed', 'data-value': r.computed}, fmt(r.computed, 7)), ' (computed here, in your browser)'));
      sumLine.append(el('div', {class: 'big'}, 'cnn computed y[' + k.f + ', ' + oy + ', ' + ox + '] = ', el('span', {id: 'conv-stored', 'data-value': r.stored}, fmt(r.stored, 7)),
        ' \u2014 ', el('span', {id: 'conv-match', class: diff <= tol ? 'match' : 'mismatch', 'data-diff': diff},
          diff <= tol ? 'the same (difference ' + (diff ? diff.toExponential(1) : '0') + ', float32 rounding)' : 'DIFFERENT by ' + diff.toExponential(2))));
      fill(detail,
        el('p', null, 'Output pixel (row ' + oy + ', column ' + ox + ') of filter ' + k.f + ', layer ' + cv.layer + ', test image #' + imgIndex(id) +
          '. Its window covers input rows ' + r.y0 + '\u2026' + (r.y0 + kh - 1) + ' and columns ' + r.x0 + '\u2026' + (r.x0 + kw - 1) +
          (wv.some(c => c.pad) ? '; the grey cells are outside the input: ' + k.g.padmode + ' padding' +
            (k.g.padmode === 'zero' ? ' (0, not the background: the input is normalised)' : '') : '') + '.'),
        el('div', {class: 'mats'},
          matTable('input window, channel ' + ch, kh, kw, i => ({text: fmt(wv[i].x, 4), pad: wv[i].pad, tint: 0.6 * wv[i].x / mx})),
          el('span', {class: 'op'}, '\u00d7'),
          matTable('kernel W[' + k.f + ', ' + ch + ']', kh, kw, i => ({text: fmt(wv[i].k, 4), tint: 0.6 * wv[i].k / mk})),
          el('span', {class: 'op'}, '='),
          matTable('products', kh, kw, i => ({text: fmt(wv[i].x * wv[i].k, 4), pad: wv[i].pad, tint: 0.6 * wv[i].x * wv[i].k / mp}))),
        sumLine);
      window.cnnReport.lastConv = {layer: cv.layer, filter: k.f, channel: ch, pick: k.p, oy, ox, computed: r.computed, stored: r.stored};
    };

    const pixelAt = e => {
      const r = outCanvas.getBoundingClientRect();
      const ox = Math.floor((e.clientX - r.left) / cur.sOut), oy = Math.floor((e.clientY - r.top) / cur.sOut);
      return oy >= 0 && oy < cur.Ho && ox >= 0 && ox < cur.Wo ? [oy, ox] : null;
    };
    outCanvas.addEventListener('mousemove', e => { if (!cur || cur.pinned) return; const q = pixelAt(e); if (q) show(q[0], q[1]); });
    outCanvas.addEventListener('click', e => {
      if (!cur) return;
      const q = pixelAt(e);
      if (!q) return;
      cur.pinned = cur.pinned && cur.pinned[0] === q[0] && cur.pinned[1] === q[1] ? null : q;
      show(q[0], q[1]);
    });
    outCanvas.addEventListener('mouseleave', () => { if (cur && cur.pinned) show(cur.pinned[0], cur.pinned[1]); });
    selLayer.addEventListener('change', () => { fillSelects(); cur = null; draw(); });
    selF.addEventListener('change', draw);
    selC.addEventListener('change', draw);
    fillSelects();
    state.listeners.push(draw);
    draw();
  }

  /* ------------------------------------------------------------ statistics */

  function histSvg(h) {
    const W = 96, H = 22, mx = Math.max(...h) || 1, bw = W / h.length;
    const s = sv('svg', {width: W, height: H, viewBox: '0 0 ' + W + ' ' + H});
    h.forEach((v, i) => { const hh = (H - 1) * v / mx; s.append(sv('rect', {x: i * bw, y: H - hh, width: Math.max(1, bw - 0.5), height: hh, fill: '#4e79a7'})); });
    return s;
  }

  function stats(c) {
    const over = T ? 'over the ' + D.act_over + ' test images of Feature maps' : null;
    if (!T) c.append(absent('Activation statistics need test images. ' + D.no_data));
    else c.append(el('p', {class: 'note'}, 'Outputs: ' + over + ' (every value of every channel).'));
    const tb = el('table', {class: 'stats'}, el('tr', null, el('th', null, '#'), el('th', {class: 'l'}, 'layer'), el('th', null, 'output'),
      el('th', null, 'mean'), el('th', null, 'std'), el('th', null, 'min'), el('th', null, 'max'), el('th', null, 'zeros'),
      el('th', {class: 'l'}, 'weights'), el('th', null, 'mean'), el('th', null, 'std'), el('th', null, 'min \u2026 max'), el('th', null, 'histogram')));
    tb.prepend(el('tr', null, el('th', {colspan: 3}), el('th', {colspan: 5, class: 'grp'}, 'outputs'), el('th', {colspan: 5, class: 'grp'}, 'tensors')));
    const actCells = s => s ? [el('td', null, fmt(s.mean, 3)), el('td', null, fmt(s.std, 3)), el('td', null, fmt(s.min, 3)), el('td', null, fmt(s.max, 3)), el('td', null, pct(s.zeros))]
                            : [el('td', null, '\u2014'), el('td', null, '\u2014'), el('td'), el('td'), el('td')];
    const rows = [{i: '', desc: 'input (normalised)', out: D.input, tensors: [], act: D.input_act}].concat(D.layers);
    rows.forEach(l => {
      const ts = l.tensors.length ? l.tensors : [null];
      ts.forEach((t, j) => {
        const tr = el('tr', {'data-layer': l.i});
        if (j === 0) {
          const span = ts.length;
          tr.append(el('td', {rowspan: span}, l.i), el('td', {class: 'l mono desc', rowspan: span}, l.desc), el('td', {rowspan: span}, shapeText(l.out)));
          actCells(T ? l.act : null).forEach(x => { x.setAttribute('rowspan', span); tr.append(x); });
        }
        if (t) tr.append(el('td', {class: 'l mono', title: t.name + ': ' + t.dims.join('\u00d7') + (t.trainable ? '' : ' (a running statistic, not trained)')},
          t.name.replace(/^\d+\./, '')), el('td', null, fmt(t.stats.mean, 3)),
          el('td', null, fmt(t.stats.std, 3)), el('td', null, fmt(t.stats.min, 2) + ' \u2026 ' + fmt(t.stats.max, 2)), el('td', {class: 'hist'}, histSvg(t.stats.hist)));
        else tr.append(el('td', {class: 'l'}), el('td'), el('td'), el('td'), el('td'));
        tb.append(tr);
      });
    });
    c.append(el('div', {class: 'scroll'}, tb));
  }

  /* ------------------------------------------------------------ the page */

  /* what the page's checks (tests/browser) look into */
  Object.assign(R, {mapOf, exactOf, convAt, selectPick, state});
  section('filters', filters);
  section('featuremaps', featureMaps);
  section('convolution', convolution);
  section('stats', stats);
  R.ready = true;
})();
