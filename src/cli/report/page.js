/* page.js — the report page of `cnn report` (src/cli/report_html.c embeds
 * it). Plain JavaScript, no library, no network: it reads the JSON of
 * #cnn-data and the base64 arrays of #cnn-blob and draws every section with
 * DOM elements, SVG and canvas. */
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

  /* ------------------------------------------------------------ classification */

  function classification(c) {
    if (!T) { c.append(absent(D.no_data)); return; }
    const m = T.shown.length, n = T.n;
    const tb = el('table', null, el('tr', null, el('th', {class: 'l'}, 'class'), el('th', null, 'precision'), el('th', null, 'recall'),
      el('th', null, 'F1-score'), el('th', null, 'support')));
    let mp = 0, mr = 0, mf = 0, wp = 0, wr = 0, wf = 0, occurring = 0;
    for (let j = 0; j < m; j++) {
      const tp = T.tp[j], sup = T.support[j], pr = T.predicted[j];
      const p = pr ? tp / pr : 0, r = sup ? tp / sup : 0, f = p + r > 0 ? 2 * p * r / (p + r) : 0;
      if (sup || pr) { occurring++; mp += p; mr += r; mf += f; }
      wp += p * sup / n; wr += r * sup / n; wf += f * sup / n;
      tb.append(el('tr', null, el('td', {class: 'l'}, clabel(T.shown[j])), el('td', null, p.toFixed(2)), el('td', null, r.toFixed(2)),
        el('td', null, f.toFixed(2)), el('td', null, sup)));
    }
    if (occurring) { mp /= occurring; mr /= occurring; mf /= occurring; }
    tb.append(el('tr', {class: 'total'}, el('td', {class: 'l'}, 'accuracy'), el('td'), el('td'), el('td', null, (T.correct / n).toFixed(4)), el('td', null, n)));
    tb.append(el('tr', null, el('td', {class: 'l'}, 'macro avg'), el('td', null, mp.toFixed(2)), el('td', null, mr.toFixed(2)), el('td', null, mf.toFixed(2)), el('td', null, n)));
    tb.append(el('tr', null, el('td', {class: 'l'}, 'weighted avg'), el('td', null, wp.toFixed(2)), el('td', null, wr.toFixed(2)), el('td', null, wf.toFixed(2)), el('td', null, n)));
    const left = el('div', {class: 'cls-table'}, tb);
    if (m < D.k) left.append(el('p', {class: 'note'}, m + ' of the model\u2019s ' + D.k + ' classes occur in the test (as a true class or a prediction); the others are not listed.'));
    const wrap = el('div', {class: 'cls-wrap'}, left);
    c.append(el('p', {class: 'note'}, 'Test accuracy ' + pct(T.correct / n) + ': ' + commas(T.correct) + ' of ' + commas(n) + ' test images of ' + D.data + '.'));
    c.append(wrap);
    const panelEl = el('div', {id: 'cell-images'});
    const caps = T.cell_caps;
    const showImages = (title, ids, count, key) => {
      fill(panelEl, el('h3', null, title),
        count > ids.length ? el('p', {class: 'note'}, 'Showing ' + ids.length + ' of ' + commas(count) + ' (' +
          (key === 'diag' ? 'the first in test order' : 'the most confident first') + ').') : null,
        ids.length ? el('div', {class: 'tiles'}, ids.map(tile)) : el('p', {class: 'note'}, 'No test image.'));
    };
    if (T.matrix) {
      const counts = T.matrix;
      let maxOff = 1;
      for (let a = 0; a < m; a++) for (let b = 0; b < m; b++) if (a !== b) maxOff = Math.max(maxOff, counts[a * m + b]);
      const cm = el('table', {class: 'cm'});
      cm.append(el('tr', null, el('th', {class: 'cm-axis'}, 'true \u2193 predicted \u2192'),
        T.shown.map(cl => el('th', {class: 'col', title: clabel(cl)}, cl))));
      let best = null;
      for (let a = 0; a < m; a++) {
        const rowTotal = T.support[a] || 1;
        const tr = el('tr', null, el('th', {class: 'row', title: clabel(T.shown[a])}, clabel(T.shown[a])));
        for (let b = 0; b < m; b++) {
          const v = counts[a * m + b];
          const alpha = a === b ? v / rowTotal : Math.sqrt(v / maxOff);
          const bg = v === 0 ? '#f4f5f7' : a === b ? 'rgba(42,122,75,' + (0.15 + 0.85 * alpha).toFixed(3) + ')' : 'rgba(200,55,45,' + (0.12 + 0.88 * alpha).toFixed(3) + ')';
          const dark = a === b ? alpha > 0.55 : alpha > 0.6;
          const td = el('td', {class: 'cm-cell', 'data-t': T.shown[a], 'data-p': T.shown[b], 'data-count': v, tabindex: 0,
            title: 'true ' + clabel(T.shown[a]) + ', predicted ' + clabel(T.shown[b]) + ': ' + v + ' images',
            style: 'background:' + bg + (dark ? ';color:#fff' : '')}, v ? v : '');
          const open = () => {
            cm.querySelectorAll('td.sel').forEach(x => x.classList.remove('sel'));
            td.classList.add('sel');
            showImages((a === b ? 'Correct: ' : 'True ' + clabel(T.shown[a]) + ', predicted ') + clabel(T.shown[b]) + ' \u2014 ' + v + ' image' + (v === 1 ? '' : 's'),
              T.cells[a * m + b], v, a === b ? 'diag' : 'off');
          };
          td.addEventListener('click', open);
          td.addEventListener('keydown', e => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); } });
          if (a !== b && v && (!best || v > best.v)) best = {v, open};
          tr.append(td);
        }
        cm.append(tr);
      }
      wrap.append(el('div', {class: 'scroll'}, cm));
      c.append(panelEl);
      if (best) best.open();
      else panelEl.append(el('p', {class: 'note'}, 'No mistakes. Click a cell to see its images.'));
    } else {
      const list = el('ol', {class: 'confusions'});
      T.confusions.forEach(([t, p, count, ids]) => {
        const li = el('li', {'data-t': t, 'data-p': p}, count + ' \u00d7 true ' + clabel(t) + ' predicted as ' + clabel(p));
        li.addEventListener('click', () => {
          list.querySelectorAll('li.sel').forEach(x => x.classList.remove('sel'));
          li.classList.add('sel');
          showImages('True ' + clabel(t) + ', predicted ' + clabel(p) + ' \u2014 ' + count + ' images', ids, count, 'off');
        });
        list.append(li);
      });
      wrap.append(el('div', null, el('p', {class: 'note'}, 'Too many classes occur for a matrix: the most frequent confusions (click one to see its images).'), list));
      c.append(panelEl);
      if (T.confusions.length) list.firstChild.click();
    }
    if (caps && (caps[0] < 16 || caps[1] < 40))
      c.append(el('p', {class: 'note'}, 'To keep the page small it holds up to ' + caps[0] + ' images of each diagonal cell and ' + caps[1] + ' of each other cell.'));
  }

  function wrong(c) {
    if (!T) { c.append(absent(D.no_data)); return; }
    if (!T.wrong.length) { c.append(el('p', {class: 'note'}, 'The network got every test image right.')); return; }
    c.append(el('div', {class: 'tiles'}, T.wrong.map(tile)));
  }

  /* ------------------------------------------------------------ filters */

  function weightRange(w) { let m = 0; for (let i = 0; i < w.length; i++) m = Math.max(m, Math.abs(w[i])); return m || 1; }

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
      const m = weightRange(w);
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

  function flatCanvas(v, n) {
    let m = 0;
    for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(v[i]));
    m = m || 1;
    if (n <= 160) {
      const bw = Math.max(2, Math.min(8, Math.floor(640 / n))), H = 60, cvs = el('canvas', {width: n * bw, height: H});
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
    const per = 64, rows = Math.ceil(n / per);
    return paint(el('canvas'), per, rows, 7, (x, y) => { const i = y * per + x; return i < n ? diverging(v[i] / m) : [244, 245, 247]; });
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

  window.cnnReport = {data: D, array: A, mapOf, exactOf, convAt, selectPick, state, lastConv: null,
    /* what the live panel's script (live.js) draws with */
    lib: {el, fill, absent, content, section, fmt, shapeText, cname, clabel, paint, diverging, grey, flatCanvas, probBars}};
  summary();
  section('architecture', architecture);
  section('curves', curves);
  section('classification', classification);
  section('wrong', wrong);
  section('filters', filters);
  section('featuremaps', featureMaps);
  section('convolution', convolution);
  section('stats', stats);
  document.getElementById('footer').append('Written by ' + D.generator + ' (cnn report). Everything on this page is in this one file: ' +
    Math.round(BLOB.length / 1024) + ' KB of numbers, drawn by the page itself, with no network.');
  window.cnnReport.ready = true;
})();
