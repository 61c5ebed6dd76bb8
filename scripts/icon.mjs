// Renders the extension's 128 px marketplace icon (client/media/icon.png) from the activity-bar
// glyph (client/media/icon.svg) on a coloured tile, with Debian's chromium through playwright-core.
// Run by hand when the glyph changes: node scripts/icon.mjs
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const glyph = readFileSync(path.join(root, 'client/media/icon.svg'), 'utf8')
  .replace(/<!--[\s\S]*?-->/g, '')
  .replace('width="24" height="24"', 'width="88" height="88"')
  .replace('stroke="#c5c5c5"', 'stroke="#ffffff"')
  .replace('stroke-width="1.6"', 'stroke-width="2"');
const html = `<html><body style="margin:0;background:transparent">
<div style="width:128px;height:128px;border-radius:24px;background:linear-gradient(135deg,#3b5bdb,#1c7ed6);display:flex;align-items:center;justify-content:center">${glyph}</div>
</body></html>`;

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
try {
  const page = await browser.newPage({ viewport: { width: 128, height: 128 } });
  await page.setContent(html);
  await page.screenshot({ path: path.join(root, 'client/media/icon.png'), omitBackground: true, clip: { x: 0, y: 0, width: 128, height: 128 } });
} finally {
  await browser.close();
}
console.log('icon: client/media/icon.png');
