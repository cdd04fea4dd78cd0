// trace-screenshot.js TRACE.json OUT.png (run by scripts/trace-screenshot): the trace opened in
// speedscope's page, served on 127.0.0.1 and driven in Debian's Chromium; every profile (thread)
// whose name has "NPU" in it, one under the other, in OUT.png.
const { chromium } = require('playwright-core');
const fs = require('fs');
const http = require('http');
const path = require('path');

const [trace, out] = process.argv.slice(2);
const root = path.join(require.resolve('speedscope/package.json'), '..', 'dist', 'release');
const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css',
                '.wasm': 'application/wasm', '.woff2': 'font/woff2', '.png': 'image/png' };
const server = http.createServer((req, res) => {
    const rel = path.normalize(decodeURIComponent(req.url.split('?')[0]));
    const f = path.join(root, rel === '/' ? 'index.html' : rel);
    if (!f.startsWith(root + path.sep) || !fs.existsSync(f) || !fs.statSync(f).isFile()) {
        res.writeHead(404);
        return res.end();
    }
    res.writeHead(200, { 'Content-Type': types[path.extname(f)] || 'application/octet-stream' });
    fs.createReadStream(f).pipe(res);
});

server.listen(0, '127.0.0.1', async () => {
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
                                            args: ['--no-sandbox'] });
    let status = 0;
    try {
        const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
        page.on('pageerror', e => console.error(`trace-screenshot: page error: ${e.message}`));
        await page.goto(`http://127.0.0.1:${server.address().port}/index.html`);
        await page.setInputFiles('input[type=file]', trace);
        const title = async () => (await page.innerText('body')).split('\n')
            .find(l => / \(\d+\/\d+\)$/.test(l)) || '';
        await page.waitForFunction(() => / \(\d+\/\d+\)/.test(document.body.innerText),
                                   null, { timeout: 30000 });
        const count = Number((await title()).match(/\((\d+)\/(\d+)\)$/)[2]);
        const shots = [];
        for (let i = 0; i < count; i++) {
            if (i) await page.keyboard.press('n');       // speedscope: next profile
            await page.waitForTimeout(500);
            const t = await title();
            console.log(`trace-screenshot: profile ${t}`);
            if (/NPU/.test(t)) {
                const clip = { x: 0, y: 0, width: 1600, height: 260 };
                shots.push((await page.screenshot({ clip })).toString('base64'));
            }
        }
        if (!shots.length) throw new Error('no NPU profile in the trace');
        // the NPU cores' views one under the other
        await page.setViewportSize({ width: 1600, height: 262 * shots.length });
        const img = s => `<img style="display:block;margin-bottom:2px"`
            + ` src="data:image/png;base64,${s}">`;
        const html = shots.map(img).join('');
        await page.setContent(`<body style="margin:0;background:#888">${html}</body>`);
        await page.waitForTimeout(300);
        await page.screenshot({ path: out, fullPage: true });
        console.log(`trace-screenshot: ${out} (${shots.length} NPU profile(s) of ${count})`);
    } catch (e) {
        console.error(`trace-screenshot: ${e.message}`);
        status = 1;
    } finally {
        await browser.close();
        server.close();
    }
    process.exitCode = status;
});
