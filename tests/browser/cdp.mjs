// cdp.mjs — headless Chromium driven through the DevTools protocol over a
// pipe (--remote-debugging-pipe: JSON messages ended by a NUL byte, on file
// descriptors 3 and 4). No npm package: Node's standard library only, so
// the tests run on Debian's Node.js and Chromium as they are.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The flags a root user needs on a closed network: no sandbox (root), no
// GPU, and nothing that phones home (or waits for a network that is not
// there); a fresh profile each time.
export const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-extensions', '--disable-default-apps', '--mute-audio', '--hide-scrollbars',
];

export class Browser {
  static async launch(executable, { timeoutMs = 120000 } = {}) {
    const profile = mkdtempSync(join(tmpdir(), 'cnn-chromium-'));
    const proc = spawn(executable, [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, '--remote-debugging-pipe',
      'about:blank'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    const b = new Browser(proc, profile);
    b.watchdog = setTimeout(() => {
      b.stderr += `\n(killed after ${timeoutMs / 1000} s)`;
      proc.kill('SIGKILL');
    }, timeoutMs);
    await new Promise((resolve, reject) => {
      proc.once('spawn', resolve);
      proc.once('error', reject);
    });
    await b.send('Target.setDiscoverTargets', { discover: true });
    return b;
  }

  constructor(proc, profile) {
    this.proc = proc;
    this.profile = profile;
    this.nextId = 1;
    this.pending = new Map();
    this.handlers = [];
    this.stderr = '';
    this.closed = false;
    let buf = Buffer.alloc(0);
    proc.stdio[4].on('data', chunk => {
      buf = Buffer.concat([buf, chunk]);
      for (let end; (end = buf.indexOf(0)) >= 0; buf = buf.subarray(end + 1)) this.receive(JSON.parse(buf.subarray(0, end).toString('utf8')));
    });
    proc.stderr.on('data', d => { this.stderr += d.toString(); if (this.stderr.length > 20000) this.stderr = this.stderr.slice(-10000); });
    proc.on('exit', code => {
      this.closed = true;
      for (const { reject, method } of this.pending.values()) reject(new Error(`Chromium exited (${code}) during ${method}: ${this.stderr.slice(-2000)}`));
      this.pending.clear();
    });
  }

  receive(msg) {
    if (msg.id !== undefined) {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message} ${msg.error.data || ''}`));
      else p.resolve(msg.result);
      return;
    }
    for (const h of this.handlers) h(msg);
  }

  send(method, params = {}, sessionId) {
    if (this.closed) return Promise.reject(new Error(`Chromium is gone (${method})`));
    const id = this.nextId++;
    const msg = { id, method, params };
    if (sessionId) msg.sessionId = sessionId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.proc.stdio[3].write(JSON.stringify(msg) + '\0');
    });
  }

  on(handler) { this.handlers.push(handler); }

  async newPage({ width = 1280, height = 900 } = {}) {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    const page = new Page(this, sessionId);
    await page.send('Page.enable');
    await page.send('Runtime.enable');
    await page.send('Network.enable');
    await page.send('Log.enable');
    await page.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false });
    return page;
  }

  async close() {
    clearTimeout(this.watchdog);
    if (!this.closed) {
      try { await this.send('Browser.close'); } catch (e) { /* already going */ }
      await new Promise(resolve => { if (this.closed) resolve(); else this.proc.once('exit', resolve); setTimeout(resolve, 5000); });
      if (!this.closed) this.proc.kill('SIGKILL');
    }
    rmSync(this.profile, { recursive: true, force: true });
  }
}

export class Page {
  constructor(browser, sessionId) {
    this.browser = browser;
    this.sessionId = sessionId;
    this.errors = [];    // console errors, uncaught exceptions, error log entries
    this.requests = [];  // every URL the page asked for
    this.loaded = null;
    browser.on(msg => {
      if (msg.sessionId !== sessionId) return;
      const p = msg.params || {};
      if (msg.method === 'Runtime.consoleAPICalled' && (p.type === 'error' || p.type === 'assert'))
        this.errors.push('console.' + p.type + ': ' + p.args.map(a => a.value !== undefined ? a.value : a.description).join(' '));
      else if (msg.method === 'Runtime.exceptionThrown')
        this.errors.push('exception: ' + (p.exceptionDetails.exception ? p.exceptionDetails.exception.description : p.exceptionDetails.text));
      else if (msg.method === 'Log.entryAdded' && p.entry.level === 'error')
        this.errors.push('log: ' + p.entry.text + (p.entry.url ? ' (' + p.entry.url + ')' : ''));
      else if (msg.method === 'Network.requestWillBeSent')
        this.requests.push(p.request.url);
      else if (msg.method === 'Page.loadEventFired' && this.loaded) this.loaded();
    });
  }

  send(method, params) { return this.browser.send(method, params, this.sessionId); }

  async goto(url) {
    const load = new Promise(resolve => { this.loaded = resolve; });
    const r = await this.send('Page.navigate', { url });
    if (r.errorText) throw new Error(`cannot open ${url}: ${r.errorText}`);
    await load;
  }

  // The value of an expression (awaited if it is a promise); throws what the page threw.
  async eval(expression) {
    const r = await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) throw new Error('in the page: ' + (r.exceptionDetails.exception ? r.exceptionDetails.exception.description : r.exceptionDetails.text) + '\n  evaluating: ' + expression.slice(0, 300));
    return r.result.value;
  }

  async waitFor(expression, timeoutMs = 60000) {
    const t0 = Date.now();
    for (;;) {
      if (await this.eval(`!!(${expression})`)) return;
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${expression}`);
      await new Promise(r => setTimeout(r, 50));
    }
  }

  // The viewport point of an element's pixel (dx, dy from its top left), scrolled into view.
  async point(selector, dx, dy) {
    const r = await this.eval(`(() => { const e = document.querySelector(${JSON.stringify(selector)});
      if (!e) return null; e.scrollIntoView({block: 'center', inline: 'center'});
      const b = e.getBoundingClientRect(); return {x: b.left, y: b.top, w: b.width, h: b.height}; })()`);
    if (!r) throw new Error(`no element ${selector}`);
    return { x: r.x + (dx === undefined ? r.w / 2 : dx), y: r.y + (dy === undefined ? r.h / 2 : dy) };
  }

  async hover(selector, dx, dy) {
    const p = await this.point(selector, dx, dy);
    await this.send('Input.dispatchMouseEvent', { type: 'mouseMoved', x: p.x, y: p.y });
    return p;
  }

  async click(selector, dx, dy) {
    const p = await this.hover(selector, dx, dy);
    await this.send('Input.dispatchMouseEvent', { type: 'mousePressed', x: p.x, y: p.y, button: 'left', clickCount: 1 });
    await this.send('Input.dispatchMouseEvent', { type: 'mouseReleased', x: p.x, y: p.y, button: 'left', clickCount: 1 });
  }

  // A PNG of the whole page (or of a clip {x, y, width, height} in page coordinates).
  async screenshot(clip) {
    await this.eval('window.scrollTo(0, 0)');
    if (!clip) {
      const m = await this.send('Page.getLayoutMetrics');
      const size = m.cssContentSize || m.contentSize;
      clip = { x: 0, y: 0, width: Math.ceil(size.width), height: Math.ceil(size.height) };
    }
    const r = await this.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true, clip: { ...clip, scale: 1 } });
    return Buffer.from(r.data, 'base64');
  }
}
