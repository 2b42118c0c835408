/* page_test.js — the report page's sections about the test set: the
 * classification report with its confusion matrix (whose cells show their
 * images), and the most confidently wrong images. Runs after page.js and
 * draws with its helpers. */
(function () {
  'use strict';

  const R = window.cnnReport;
  const {el, fill, absent, section, pct, commas, clabel, tile} = R.lib;
  const D = R.data;
  const T = D.test || null;        /* the test sections' data, or null */

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

  section('classification', classification);
  section('wrong', wrong);
})();
