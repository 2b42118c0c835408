// check_module.mjs — the WebAssembly module a report page embeds, run by
// Node.js on the first N images of an IDX file, against the native forward
// pass (tests/live_reference.c): every layer's output and the
// probabilities must agree within 1e-5 (relative to the value when its
// magnitude is above 1). The module, the model's tensors and its
// normalisation are read from the page as the page's own script reads them.
// Usage: node check_module.mjs PAGE.html IMAGES.idx N NATIVE.bin
import { readFileSync } from 'node:fs';

const [pagePath, idxPath, nArg, nativePath] = process.argv.slice(2);
if (!nativePath) { console.error('usage: node check_module.mjs PAGE.html IMAGES.idx N NATIVE.bin'); process.exit(2); }
const N = +nArg;
const html = readFileSync(pagePath, 'utf8');
const script = id => {
  const m = html.match(new RegExp(`<script type="application/json" id="${id}">([\\s\\S]*?)</script>`));
  if (!m) throw new Error(`no #${id} in ${pagePath}`);
  return JSON.parse(m[1]);
};
const D = script('cnn-data'), LIVE = script('cnn-live');
if (LIVE.absent) { console.log(`FAIL: the page has no live panel: ${LIVE.absent}`); process.exit(1); }

// the module's system calls answer "none", as in the page (src/cli/report/live.js)
const module = await WebAssembly.compile(Buffer.from(LIVE.module, 'base64'));
let memory = null;
const imports = {};
for (const imp of WebAssembly.Module.imports(module)) {
  const ns = imports[imp.module] = imports[imp.module] || {};
  ns[imp.name] = imp.name === 'environ_sizes_get' ? (a, b) => { const v = new Uint32Array(memory.buffer); v[a >> 2] = 0; v[b >> 2] = 0; return 0; }
    : imp.name === 'environ_get' ? () => 0 : imp.name === 'fd_prestat_get' ? () => 8 : () => 52;
}
const X = (await WebAssembly.instantiate(module, imports)).exports;
memory = X.memory;
if (X._initialize) X._initialize();
const put = bytes => { const p = X.live_alloc(bytes.length); new Uint8Array(X.memory.buffer, p, bytes.length).set(bytes); return p; };
const cstr = p => { const m = new Uint8Array(X.memory.buffer); let e = p; while (m[e]) e++; return Buffer.from(m.subarray(p, e)).toString(); };
const [means, stds] = D.norm;
const rc = X.live_load(put(Buffer.from(D.arch + '\0')), put(Buffer.from(LIVE.weights, 'base64')), LIVE.nfloats, LIVE.prep_id,
  means.length, put(new Uint8Array(new Float32Array(means).buffer)), put(new Uint8Array(new Float32Array(stds).buffer)));
if (rc) { console.log('FAIL: live_load: ' + cstr(X.live_error())); process.exit(1); }

// the IDX images (big-endian header: magic, count, rows, columns)
const idx = readFileSync(idxPath);
const count = idx.readUInt32BE(4), rows = idx.readUInt32BE(8), cols = idx.readUInt32BE(12);
const [C, H, W] = D.input, px = C * H * W;
if (rows * cols !== px || count < N) { console.log(`FAIL: ${count} images of ${rows}x${cols} for a ${D.input.join('x')} model`); process.exit(1); }

const native = new Float32Array(readFileSync(nativePath).buffer.slice(0));
const sizes = D.layers.map(l => l.out[0] * l.out[1] * l.out[2]);
let worst = 0, where = '', checked = 0, off = 0;
const starts = sizes.map(s => { const o = off; off += s * N; return o; });
const probStart = off;
if (native.length !== probStart + N * D.k) { console.log(`FAIL: ${nativePath} holds ${native.length} floats, expected ${probStart + N * D.k}`); process.exit(1); }
const compare = (got, want, what) => {
  for (let j = 0; j < got.length; j++) {
    const err = Math.abs(got[j] - want[j]) / Math.max(1, Math.abs(want[j]));
    if (!(err <= worst)) { worst = Number.isNaN(err) ? Infinity : err; where = `${what}, element ${j}: wasm ${got[j]}, native ${want[j]}`; }
    checked++;
  }
};
let agree = 0, ms = 0;
for (let i = 0; i < N; i++) {
  new Uint8Array(X.memory.buffer, X.live_pixels(), px).set(idx.subarray(16 + i * px, 16 + (i + 1) * px));
  const t0 = performance.now();
  let r = X.live_prepare_pixels();
  if (!r) r = X.live_forward();
  ms += performance.now() - t0;
  if (r) { console.log(`FAIL: image ${i}: ${cstr(X.live_error())}`); process.exit(1); }
  for (let l = 0; l < sizes.length; l++)
    compare(new Float32Array(X.memory.buffer, X.live_act(l), sizes[l]), native.subarray(starts[l] + i * sizes[l], starts[l] + (i + 1) * sizes[l]),
      `image ${i} layer ${l} (${D.layers[l].desc})`);
  const p = new Float32Array(X.memory.buffer, X.live_probs(), D.k), q = native.subarray(probStart + i * D.k, probStart + (i + 1) * D.k);
  compare(p, q, `image ${i} probabilities`);
  const arg = a => a.reduce((b, v, j) => v > a[b] ? j : b, 0);
  if (arg(p) === arg(q)) agree++;
}
console.log(`${N} images, ${checked} numbers: largest difference ${worst.toExponential(2)} (${where || 'none'})`);
console.log(`the same predicted class for ${agree} of ${N}; ${(ms / N).toFixed(3)} ms per image in Node (normalise + forward)`);
const ok = worst <= 1e-5 && agree === N;
console.log(ok ? 'PASS: the WebAssembly module matches the native forward pass within 1e-5' : 'FAIL: the WebAssembly module differs from the native forward pass');
process.exit(ok ? 0 : 1);
