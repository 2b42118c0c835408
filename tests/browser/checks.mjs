// checks.mjs — what the page checks (check_report.mjs, check_live.mjs)
// share: a line per check, "ok" or "FAIL", with the failures counted, and a
// run that opens the page in headless Chromium, runs the checks and exits
// 0 only when every one passed.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Browser } from './cdp.mjs';

let failures = 0;

// Print the check's line; a failed one says why (detail) and is counted.
export function check(ok, what, detail) {
  if (ok) console.log('  ok: ' + what);
  else { failures++; console.log('  FAIL: ' + what + (detail !== undefined ? ' -- ' + detail : '')); }
  return ok;
}

// Run body(page, url, browser) on a 1280x900 page of Chromium (the program at
// chromium) for the file pagePath, then print PASS or FAIL and exit: 1 when
// a check failed or body threw.
export async function runPage(chromium, pagePath, body) {
  const browser = await Browser.launch(chromium);
  let status = 1;
  try {
    const page = await browser.newPage({ width: 1280, height: 900 });
    await body(page, pathToFileURL(resolve(pagePath)).href, browser);
    status = failures ? 1 : 0;
  } catch (e) {
    console.log('  FAIL: ' + (e.stack || e.message));
    status = 1;
  } finally {
    await browser.close();
  }
  console.log(status ? `FAIL: ${failures} check(s) failed on ${pagePath}` : `PASS: ${pagePath}`);
  process.exit(status);
}
