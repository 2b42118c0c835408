/* page.js — the report page of `cnn report` (src/cli/report_html.c embeds
 * it). Plain JavaScript, no library, no network: it reads the JSON of
 * #cnn-data and the base64 arrays of #cnn-blob and draws every section with
 * DOM elements, SVG and canvas. This script holds the data and the drawing
 * helpers every section uses (window.cnnReport.lib) and draws the summary,
 * the architecture and the training curves; page_test.js, page_layers.js
 * and live.js, run after it in the same page, draw the rest. */
(function () {
  'use strict';

  /* ------------------------------------------------------------ data */

  const D = JSON.parse(document.getElementById('cnn-data').textContent);
  const BLOB = (function () {
    const bin = atob(document.getElementById('cnn-blob').textContent.replace(/\s+/g, ''));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  })();
  /* an array of the blob: {o: offset, n: count, t: 'f32' | 'u8'} */
  function A(r) {
    if (!r) return null;
    if (r.t === 'f32') return new Float32Array(BLOB.buffer, r.o, r.n);
    return new Uint8Array(BLOB.buffer, r.o, r.n);
  }

  const L = D.layers.length;
  const [IC, IH, IW] = D.input;
  const T = D.test || null;        /* the test sections' data, or null */
  const IMG = T ? A(T.images.px) : null;
  const IMG_SIZE = IC * IH * IW;

  /* shape of activation a: 0 the input, i + 1 layer i's output */
  function shapeOf(a) { return a === 0 ? D.input : D.layers[a - 1].out; }
  function sizeOf(a) { const s = shapeOf(a); return s[0] * s[1] * s[2]; }
  function isFlat(a) { const s = shapeOf(a); return s[1] * s[2] === 1; }

  /* ------------------------------------------------------------ helpers */

  function el(tag, attrs) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    for (let i = 2; i < arguments.length; i++) add(e, arguments[i]);
    return e;
  }
  const SVGNS = 'http://www.w3.org/2000/svg';
  function sv(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    for (let i = 2; i < arguments.length; i++) add(e, arguments[i]);
    return e;
  }
  function setAttrs(e, attrs) {
    if (!attrs) return;
    for (const k of Object.keys(attrs)) {
      const v = attrs[k];
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.setAttribute('class', v);
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
  }
  function add(e, c) {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) { c.forEach(x => add(e, x)); return; }
    e.append(c.nodeType ? c : document.createTextNode(String(c)));
  }
  /* replace e's children (null and false skipped) */
  function fill(e) {
    e.replaceChildren();
    for (let i = 1; i < arguments.length; i++) add(e, arguments[i]);
    return e;
  }
  function content(id) { return document.querySelector('#' + id + ' > .content'); }
  function absent(text) { return el('p', {class: 'absent'}, text); }

  function fmt(v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return '\u2014';
    digits = digits || 4;
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
    return Number(v.toPrecision(digits)).toString();
  }
  function fixed(v, d) { return v === null || v === undefined ? '\u2014' : v.toFixed(d); }
  function pct(v) { return (100 * v).toFixed(1) + '%'; }
  function commas(n) { return Math.round(n).toLocaleString('en-US'); }
  function shapeText(s) { return s[1] * s[2] === 1 ? String(s[0]) : s.join('\u00d7'); }
  function flopsText(f) {
    return f >= 1e9 ? (f / 1e9).toFixed(2) + ' GFLOPs' : f >= 1e6 ? (f / 1e6).toFixed(2) + ' MFLOPs'
         : f >= 1e3 ? (f / 1e3).toFixed(1) + ' KFLOPs' : Math.round(f) + ' FLOPs';
  }
  function cname(c) { return D.classes[c] !== undefined ? D.classes[c] : String(c); }
  /* "7", or "7 cat" when the class has a name of its own */
  function clabel(c) { const n = cname(c); return n === String(c) ? n : c + ' ' + n; }

  /* colours: blue (negative) - white - red (positive), and grey */
  const POS = [200, 55, 45], NEG = [47, 109, 181];
  function diverging(t) {
    const e = t >= 0 ? POS : NEG, a = Math.min(1, Math.abs(t)) || 0;
    return [255 + (e[0] - 255) * a, 255 + (e[1] - 255) * a, 255 + (e[2] - 255) * a];
  }
  function grey(t) { const v = 255 * Math.max(0, Math.min(1, t || 0)); return [v, v, v]; }

  /* a canvas of w x h cells, shown `scale` times larger, pixel(x, y) -> [r, g, b] */
  function paint(canvas, w, h, scale, pixel) {
    canvas.width = w;
    canvas.height = h;
    canvas.style.width = (w * scale) + 'px';
    canvas.style.height = (h * scale) + 'px';
    canvas.classList.add('px');
    const ctx = canvas.getContext('2d');
    const im = ctx.createImageData(w, h);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const c = pixel(x, y), o = 4 * (y * w + x);
        im.data[o] = c[0]; im.data[o + 1] = c[1]; im.data[o + 2] = c[2]; im.data[o + 3] = 255;
      }
    ctx.putImageData(im, 0, 0);
    return canvas;
  }

  /* one plane of values as a picture: diverging if it holds negatives */
  function planeCanvas(v, off, w, h, scale, lo, hi) {
    if (lo === undefined) {
      lo = Infinity; hi = -Infinity;
      for (let i = 0; i < w * h; i++) { const x = v[off + i]; if (x < lo) lo = x; if (x > hi) hi = x; }
    }
    const signed = lo < 0, m = signed ? Math.max(-lo, hi) || 1 : hi || 1;
    return paint(el('canvas'), w, h, scale, (x, y) => {
      const val = v[off + y * w + x];
      return signed ? diverging(val / m) : grey(val / m);
    });
  }

  /* pixels (c, h, w planes of bytes) as a picture: grey, RGB, or the mean of other counts */
  function pixelsCanvas(px, off, c, h, w, scale) {
    const plane = h * w;
    return paint(el('canvas'), w, h, scale, (x, y) => {
      const i = off + y * w + x;
      if (c === 3) return [px[i], px[i + plane], px[i + 2 * plane]];
      let s = 0;
      for (let ch = 0; ch < c; ch++) s += px[i + ch * plane];
      s /= c;
      return [s, s, s];
    });
  }
  /* a crop of a test image drawn `scale` times larger, with a box (y, x, h, w) outlined */
  function cropCanvas(px, off, h, w, scale, box) {
    const small = pixelsCanvas(px, off, IC, h, w, 1), cvs = el('canvas', {width: w * scale, height: h * scale});
    const ctx = cvs.getContext('2d');
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, w * scale, h * scale);
    if (box && (box[2] < h || box[3] < w)) {
      ctx.strokeStyle = '#f5b800';
      ctx.lineWidth = Math.max(1, scale / 2);
      ctx.strokeRect(box[1] * scale + 0.5, box[0] * scale + 0.5, box[3] * scale - 1, box[2] * scale - 1);
    }
    return cvs;
  }
  function imageScale() { return Math.max(1, Math.round(56 / Math.max(IH, IW))); }
  function imageCanvas(id, scale) { return pixelsCanvas(IMG, id * IMG_SIZE, IC, IH, IW, scale || imageScale()); }

  /* the store's image id: its test index, label, top classes */
  function imgIndex(id) { return T.images.index[id]; }
  function imgLabel(id) { return T.images.label[id]; }
  function imgTop(id) { const t = T.images.top[id], r = []; for (let j = 0; j + 1 < t.length; j += 2) r.push([t[j], t[j + 1]]); return r; }
  function imgPred(id) { return T.images.top[id][0]; }

  function probBars(top, truth) {
    return top.map(([c, p]) => el('div', {class: 'bar', title: clabel(c) + ': ' + (100 * p).toFixed(2) + '%'},
      el('span', {class: 'name'}, cname(c)),
      el('span', {class: 'track'}, el('span', {class: 'fill' + (c === truth ? ' hit' : ''), style: 'width:' + (100 * p).toFixed(1) + '%'})),
      el('span', {class: 'v'}, (100 * p).toFixed(1) + '%')));
  }

  /* a test image with its label, prediction and top 3 */
  function tile(id) {
    const truth = imgLabel(id), pred = imgPred(id), ok = truth === pred;
    return el('div', {class: 'tile', 'data-img': imgIndex(id)},
      imageCanvas(id),
      el('div', {class: 'cap'}, '#' + imgIndex(id) + ' ',
        el('span', {class: ok ? 'ok' : 'bad'}, ok ? cname(truth) : cname(truth) + ' \u2192 ' + cname(pred))),
      probBars(imgTop(id), truth));
  }

  function section(id, fn) {
    const c = content(id);
    try {
      fn(c);
    } catch (e) {
      c.append(absent('This part of the page failed: ' + e.message));
      console.error(e);
    }
  }

  /* the largest magnitude of v[0..n), or 1 if all are 0 */
  function largestAbs(v, n) {
    let m = 0;
    for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(v[i]));
    return m || 1;
  }

  /* n values as bars about a middle line, red up and blue down, scaled to
   * the largest magnitude, drawn into canvas cvs (sized to n bars of
   * minBar to 8 pixels, 60 high) */
  function drawBars(cvs, v, n, minBar) {
    const m = largestAbs(v, n);
    const bw = Math.max(minBar, Math.min(8, Math.floor(640 / n))), H = 60;
    if (cvs.width !== n * bw || cvs.height !== H) { cvs.width = n * bw; cvs.height = H; }
    const ctx = cvs.getContext('2d');
    ctx.fillStyle = '#f4f5f7';
    ctx.fillRect(0, 0, n * bw, H);
    ctx.fillStyle = '#bbb';
    ctx.fillRect(0, H / 2, n * bw, 1);
    for (let i = 0; i < n; i++) {
      const t = v[i] / m, hgt = Math.abs(t) * (H / 2 - 2);
      ctx.fillStyle = t >= 0 ? 'rgb(200,55,45)' : 'rgb(47,109,181)';
      ctx.fillRect(i * bw, t >= 0 ? H / 2 - hgt : H / 2 + 1, Math.max(1, bw - 1), hgt);
    }
    return cvs;
  }

  function flatCanvas(v, n) {
    if (n <= 160) return drawBars(el('canvas'), v, n, 2);
    const m = largestAbs(v, n);
    const per = 64, rows = Math.ceil(n / per);
    return paint(el('canvas'), per, rows, 7, (x, y) => { const i = y * per + x; return i < n ? diverging(v[i] / m) : [244, 245, 247]; });
  }

  /* ------------------------------------------------------------ summary */

  function summary() {
    const s = document.getElementById('summary');
    const dl = el('dl');
    const row = (k, v) => { dl.append(el('dt', null, k), el('dd', null, v)); };
    const meta = D.meta || {};
    const arch = meta['train.opt.arch'];
    row('Model', D.model + (arch ? ' (architecture ' + arch + ')' : ''));
    row('Size', L + ' layers, ' + commas(D.params) + ' parameters, ' + flopsText(D.flops) + ' per image');
    row('Input', shapeText(D.input) + (IC === 1 ? ' grey' : IC === 3 ? ' colour (RGB)' : ' (' + IC + ' channels)') +
        ' images, normalised as (pixel / 255 \u2212 ' + D.norm[0].map(fmt).join(', ') + ') / ' +
        D.norm[1].map(fmt).join(', ') + (D.norm[0].length > 1 ? ' (per channel)' : ''));
    const shown = D.classes.slice(0, 20).map((n, i) => n === String(i) ? n : n).join(', ');
    row('Classes', D.k + ': ' + shown + (D.k > 20 ? ', \u2026' : ''));
    if (meta['train.opt.epochs']) {
      const opt = meta['train.opt.opt'] || '?';
      row('Training', meta['train.opt.epochs'] + (meta['train.opt.epochs'] === '1' ? ' epoch' : ' epochs') + ' on ' + (meta['train.opt.data'] || meta['train.opt.dataset'] || meta.dataset || '?') +
          ', ' + opt + ' at lr ' + (meta['train.opt.lr'] || '?') + ' (' + (meta['train.opt.sched'] || '?') + ' schedule), batch ' +
          (meta['train.opt.batch'] || '?') + ', loss ' + (meta['train.opt.loss'] || '?') +
          (meta['train.opt.augment'] === '1' ? ', augmented' : ''));
    }
    if (T) row('Test', pct(T.correct / T.n) + ' correct (' + commas(T.correct) + ' of ' + commas(T.n) + ' test images of ' + D.data + ')');
    else row('Test images', D.no_data);
    s.append(dl);
  }

  /* ------------------------------------------------------------ architecture */

  const KIND_COLOUR = {input: '#8a8f99', conv: '#4e79a7', maxpool: '#59a14f', avgpool: '#59a14f',
    relu: '#f28e2b', leaky_relu: '#f28e2b', sigmoid: '#f28e2b', tanh: '#f28e2b', softmax: '#b07aa1',
    dense: '#e15759', flatten: '#9c755f', dropout: '#bab0ac', batchnorm: '#76b7b2'};

  function architecture(c) {
    const items = [{kind: 'input', desc: 'input ' + D.input.join('x'), out: D.input, params: 0}].concat(D.layers);
    const cw = 122, rh = 200, width = Math.max(cw * 2, Math.min(1120, c.clientWidth || 1100));
    const per = Math.max(2, Math.floor(width / cw)), rows = Math.ceil(items.length / per);
    const svg = sv('svg', {class: 'arch', width: per * cw, height: rows * rh, viewBox: '0 0 ' + per * cw + ' ' + rows * rh,
                           role: 'img', 'aria-label': 'the layers of the network'});
    const maxHW = Math.max(...items.map(it => it.out[1] * it.out[2] > 1 ? Math.max(it.out[1], it.out[2]) : 1));
    const maxF = Math.max(...items.map(it => it.out[0] * it.out[1] * it.out[2]));
    svg.append(sv('defs', null, sv('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto'},
      sv('path', {d: 'M0,0 L10,5 L0,10 z', fill: '#777'}))));
    items.forEach((it, n) => {
      const col = n % per, r = Math.floor(n / per), x0 = col * cw, y0 = r * rh, cx = x0 + cw / 2, base = y0 + 112;
      const colour = KIND_COLOUR[it.kind] || '#777';
      const g = sv('g', {class: 'layer', 'data-layer': n - 1});
      g.append(sv('title', null, (n ? n - 1 + ': ' : '') + it.desc + ' \u2192 ' + shapeText(it.out) + (it.params ? ', ' + commas(it.params) + ' parameters' : '')));
      const [C, H, W] = it.out;
      if (n === 0 && T) {
        const side = 18 + 50 * Math.sqrt(Math.max(H, W) / maxHW), img = imageCanvas(T.picks[0].img, 1);
        g.append(sv('image', {href: img.toDataURL(), x: cx - side / 2, y: base - side, width: side, height: side, style: 'image-rendering:pixelated'}));
      } else if (H * W > 1) {
        /* a stack of planes: side by the map's size, depth by the channels */
        const side = 18 + 50 * Math.sqrt(Math.max(H, W) / maxHW), depth = Math.min(7, 1 + Math.round(Math.log2(C)));
        for (let d = depth - 1; d >= 0; d--) {
          const off = d * 4;
          g.append(sv('rect', {x: cx - side / 2 + off - depth * 2, y: base - side - off + depth * 2, width: side, height: side,
                               fill: colour, 'fill-opacity': 0.35 + 0.65 * (d === 0), stroke: '#fff', 'stroke-width': 1}));
        }
      } else {
        const hgt = 16 + 76 * Math.log10(C + 1) / Math.log10(maxF + 1);
        g.append(sv('rect', {x: cx - 7, y: base - hgt, width: 14, height: hgt, fill: colour, rx: 2}));
      }
      g.append(sv('text', {x: cx, y: base + 20, 'text-anchor': 'middle', 'font-size': 13, 'font-weight': 700, fill: colour}, it.kind));
      g.append(sv('text', {x: cx, y: base + 37, 'text-anchor': 'middle', 'font-size': 12}, shapeText(it.out)));
      g.append(sv('text', {x: cx, y: base + 53, 'text-anchor': 'middle', 'font-size': 11, fill: '#5b6475'},
        it.params ? commas(it.params) + ' params' : n ? '' : 'the image'));
      if (n) g.append(sv('text', {x: cx, y: y0 + 16, 'text-anchor': 'middle', 'font-size': 10.5, fill: '#8a8f99'}, '#' + (n - 1)));
      svg.append(g);
      if (col < per - 1 && n < items.length - 1)
        svg.append(sv('line', {x1: x0 + cw - 18, y1: base - 20, x2: x0 + cw + 8, y2: base - 20, stroke: '#777', 'stroke-width': 1.5, 'marker-end': 'url(#arrow)'}));
    });
    c.append(el('div', {class: 'arch-wrap'}, svg));
    if (rows > 1) c.append(el('p', {class: 'note'}, 'The chain continues row after row.'));

    const tb = el('table', null, el('tr', null, el('th', null, '#'), el('th', {class: 'l'}, 'layer'), el('th', null, 'output'),
      el('th', null, 'parameters'), el('th', null, 'FLOPs / image'), el('th', {class: 'l'}, 'torch.nn'), el('th', {class: 'l'}, 'each output pixel sees')));
    tb.append(el('tr', null, el('td'), el('td', {class: 'l mono'}, 'input ' + D.input.join('x')), el('td', null, shapeText(D.input)),
      el('td', null, '0'), el('td', null, '0'), el('td'), el('td')));
    D.layers.forEach(l => tb.append(el('tr', null, el('td', null, l.i), el('td', {class: 'l mono'}, l.desc), el('td', null, shapeText(l.out)),
      el('td', null, commas(l.params)), el('td', null, commas(l.flops)), el('td', {class: 'l'}, l.torch),
      el('td', {class: 'l'}, l.rf ? l.rf[0] + '\u00d7' + l.rf[1] + ' input pixels' : ''))));
    tb.append(el('tr', {class: 'total'}, el('td'), el('td', {class: 'l'}, 'total'), el('td'), el('td', null, commas(D.params)),
      el('td', null, commas(D.flops)), el('td'), el('td')));
    c.append(el('div', {class: 'scroll'}, tb));
    c.append(el('details', null, el('summary', null, 'The architecture file'), el('pre', null, D.arch)));
  }

  /* ------------------------------------------------------------ curves */

  function niceStep(range, want) {
    if (!(range > 0)) return 1;
    const raw = range / want, p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
  }

  function panel(title, ylabel, series, epochs, isAcc) {
    const W = 520, H = 300, x0 = 64, y0 = 30, w = W - x0 - 20, h = H - y0 - 50;
    let lo = Infinity, hi = -Infinity;
    series.forEach(s => s.v.forEach(v => { if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }));
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
    const ys = niceStep(hi - lo, 5);
    let ymin = Math.floor(lo / ys) * ys, ymax = Math.ceil(hi / ys) * ys;
    if (!isAcc && ymin < 0) ymin = 0;
    if (isAcc && ymax > 100) ymax = 100;
    if (ymax <= ymin) ymax = ymin + ys;
    const xmin = epochs[0], xmax = epochs.length > 1 ? epochs[epochs.length - 1] : xmin + 1;
    const px = e => x0 + (e - xmin) / (xmax - xmin) * w, py = v => y0 + h - (v - ymin) / (ymax - ymin) * h;
    const svg = sv('svg', {width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, class: 'curve'});
    svg.append(sv('text', {x: x0 + w / 2, y: 18, 'text-anchor': 'middle', 'font-size': 14, 'font-weight': 700}, title));
    svg.append(sv('rect', {x: x0, y: y0, width: w, height: h, fill: '#fff', stroke: '#888'}));
    for (let v = ymin; v <= ymax + ys * 1e-6; v += ys) {
      svg.append(sv('line', {x1: x0, x2: x0 + w, y1: py(v), y2: py(v), stroke: '#e3e6ec'}));
      svg.append(sv('text', {x: x0 - 6, y: py(v) + 4, 'text-anchor': 'end', 'font-size': 11}, fmt(Math.abs(v) < ys * 1e-6 ? 0 : v, 3)));
    }
    const xs = Math.max(1, niceStep(xmax - xmin, 8));
    for (let e = xmin; e <= xmax + 1e-9; e += xs) {
      svg.append(sv('line', {x1: px(e), x2: px(e), y1: y0 + h, y2: y0 + h + 4, stroke: '#888'}));
      svg.append(sv('text', {x: px(e), y: y0 + h + 17, 'text-anchor': 'middle', 'font-size': 11}, Math.round(e)));
    }
    svg.append(sv('text', {x: x0 + w / 2, y: H - 8, 'text-anchor': 'middle', 'font-size': 12}, 'epoch'));
    svg.append(sv('text', {transform: 'translate(16,' + (y0 + h / 2) + ') rotate(-90)', 'text-anchor': 'middle', 'font-size': 12}, ylabel));
    series.forEach((s, si) => {
      const pts = [];
      s.v.forEach((v, i) => { if (v !== null) pts.push(px(epochs[i]).toFixed(1) + ',' + py(v).toFixed(1)); });
      if (!pts.length) return;
      svg.append(sv('polyline', {points: pts.join(' '), fill: 'none', stroke: s.colour, 'stroke-width': 2, 'stroke-dasharray': si ? '6,3' : null, class: 'series'}));
      s.v.forEach((v, i) => {
        if (v === null) return;
        svg.append(sv('circle', {cx: px(epochs[i]), cy: py(v), r: 3, fill: s.colour}, sv('title', null, s.name + ', epoch ' + epochs[i] + ': ' + fmt(v, 5))));
      });
      svg.append(sv('line', {x1: x0 + w - 118, x2: x0 + w - 94, y1: y0 + 16 + 18 * si, y2: y0 + 16 + 18 * si, stroke: s.colour, 'stroke-width': 2, 'stroke-dasharray': si ? '6,3' : null}));
      svg.append(sv('text', {x: x0 + w - 88, y: y0 + 20 + 18 * si, 'font-size': 11}, s.name));
    });
    return svg;
  }

  function curves(c) {
    if (!D.history) { c.append(absent('No curves: ' + D.history_note + '.')); return; }
    const rows = D.history.rows, ep = rows.map(r => r[0]);
    const col = j => rows.map(r => r[j]);
    const hasVal = col(4).some(v => v !== null);
    const loss = [{name: 'train', colour: '#1f77b4', v: col(2)}], acc = [{name: 'train', colour: '#1f77b4', v: col(3)}];
    if (hasVal) { loss.push({name: 'validation', colour: '#ff7f0e', v: col(4)}); acc.push({name: 'validation', colour: '#ff7f0e', v: col(5)}); }
    c.append(el('div', {class: 'scroll', style: 'display:flex;gap:12px;flex-wrap:wrap'},
      panel('Loss', 'loss', loss, ep, false), panel('Accuracy', 'accuracy (%)', acc, ep, true)));
    const last = rows[rows.length - 1];
    c.append(el('p', {class: 'note'}, 'From ' + D.history.from + ': ' + rows.length + ' epoch' + (rows.length === 1 ? '' : 's') +
      '; last epoch: train loss ' + fmt(last[2]) + ', accuracy ' + fixed(last[3], 2) + '%' +
      (hasVal ? '; validation loss ' + fmt(last[4]) + ', accuracy ' + fixed(last[5], 2) + '%' : ' (no validation set was held out)') + '.'));
    const tb = el('table', null, el('tr', null, ['epoch', 'learning rate', 'train loss', 'train acc', 'val loss', 'val acc', 'seconds'].map(h => el('th', null, h))));
    rows.forEach(r => tb.append(el('tr', null, el('td', null, r[0]), el('td', null, fmt(r[1])), el('td', null, fmt(r[2])),
      el('td', null, fixed(r[3], 2)), el('td', null, fmt(r[4])), el('td', null, fixed(r[5], 2)), el('td', null, r[6] === null ? '\u2014' : r[6].toFixed(1)))));
    c.append(el('details', null, el('summary', null, 'The numbers'), tb));
  }

  /* ------------------------------------------------------------ the page */

  window.cnnReport = {data: D, array: A, lastConv: null,
    /* what the other scripts of the page (page_test.js, page_layers.js,
     * live.js) draw with */
    lib: {el, sv, fill, absent, content, section, fmt, pct, commas, shapeText, cname, clabel, shapeOf,
      paint, diverging, grey, planeCanvas, cropCanvas, imageCanvas, imgIndex, imgLabel, imgPred, probBars,
      tile, largestAbs, drawBars, flatCanvas}};
  summary();
  section('architecture', architecture);
  section('curves', curves);
  document.getElementById('footer').append('Written by ' + D.generator + ' (cnn report). Everything on this page is in this one file: ' +
    Math.round(BLOB.length / 1024) + ' KB of numbers, drawn by the page itself, with no network.');
})();
