// End-to-end test of `plakar ui` in headless Chromium, driven by playwright-core.
// Usage: node e2e.cjs SPEC.json   (tests/ui.rs writes the spec and checks the exit code)
// The spec names the printed URL, the snapshots and files to expect, and where to keep
// screenshots. Any failed expectation throws, which exits non-zero with the step named.
"use strict";
const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
let step = "start";
const expect = (cond, what) => { if (!cond) throw new Error(`${step}: expected ${what}`); };

(async () => {
  const browser = await chromium.launch({
    executablePath: spec.chromium,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
  const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 860 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", e => errors.push(String(e)));
  page.on("console", m => { if (m.type() === "error") errors.push(m.text()); });
  page.on("dialog", d => { errors.push("a dialog opened: " + d.message()); d.dismiss(); });
  const shot = async name => page.screenshot({ path: path.join(spec.screenshots, name + ".png"), fullPage: true });
  try {
    step = "open the printed URL";
    await page.goto(spec.url);
    await page.waitForFunction(() => !location.hash.includes("token="));
    await page.waitForSelector("[data-testid=snapshot-row]");
    const rows = await page.$$eval("[data-testid=snapshot-row]", rs => rs.map(r => r.dataset.id));
    expect(rows.length === spec.snapshots.length, `${spec.snapshots.length} snapshots, got ${rows.length}`);
    expect(rows[0] === spec.snapshots[0], "the newest snapshot first");
    await shot("1-snapshots");

    step = "filter snapshots by tag";
    await page.selectOption("#snap-tag", spec.tag);
    await page.waitForFunction(n => document.querySelectorAll("[data-testid=snapshot-row]").length === n, 1);

    step = "open a snapshot";
    await page.goto(spec.url.split("#")[0]);
    await page.click(`[data-testid=snapshot-row][data-id="${spec.snapshots[0]}"] [data-testid=snapshot-link]`);
    await page.waitForSelector("[data-testid=entry]");
    const names = await page.$$eval("[data-testid=entry]", rs => rs.map(r => r.dataset.name));
    for (const n of spec.root_entries) expect(names.includes(n), `${n} in the snapshot's root, got ${names}`);

    step = "open a directory";
    await page.click(`[data-testid=entry][data-name="${spec.dir}"] a`);
    await page.waitForFunction(d => document.querySelector("[data-testid=crumbs]")?.textContent.includes(d), spec.dir);
    await page.waitForSelector(`[data-testid=entry][data-name="${spec.big_dir}"]`);
    const shown = await page.$eval(`[data-testid=entry][data-name="${spec.hostile.replace(/"/g, '\\"')}"] a`, a => a.textContent);
    expect(shown === spec.hostile, `the hostile name shown as text, got ${shown}`);
    expect(await page.$$eval("main img", is => is.length) === 0, "no <img> made from a file name");
    await shot("2-directory");

    step = "page through a large directory";
    await page.click(`[data-testid=entry][data-name="${spec.big_dir}"] a`);
    await page.waitForFunction(t => document.querySelector("#page-info")?.textContent.endsWith("of " + t), String(spec.big_count));
    await page.click("#next-page");
    await page.waitForFunction(() => document.querySelector("#page-info")?.textContent.startsWith("501"));
    await page.goBack();
    await page.goBack();
    await page.waitForSelector(`[data-testid=entry][data-name="${spec.text_file}"]`);

    step = "preview a text file";
    await page.click(`[data-testid=entry][data-name="${spec.text_file}"] a`);
    const text = await page.textContent("#preview-text");
    expect(text === spec.text_content, "the text preview to show the file");
    expect(!(await page.textContent("main")).includes("null"), "no stray null text in the page");
    await shot("3-text-preview");

    step = "download the file and compare its bytes";
    const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
    const got = fs.readFileSync(await dl.path());
    expect(got.equals(fs.readFileSync(spec.text_source)), "the downloaded bytes to equal the original");
    expect(dl.suggestedFilename() === spec.text_file, `file name ${spec.text_file}, got ${dl.suggestedFilename()}`);

    step = "preview an image";
    await page.goBack();
    await page.click(`[data-testid=entry][data-name="${spec.image_file}"] a`);
    await page.waitForSelector("#preview-image");
    await page.waitForFunction(() => document.querySelector("#preview-image").naturalWidth > 0);
    const w = await page.$eval("#preview-image", i => i.naturalWidth);
    expect(w === spec.image_width, `an image ${spec.image_width} px wide, got ${w}`);
    await shot("4-image-preview");

    step = "download a directory as .zip";
    await page.goBack();
    await page.waitForSelector("#download-zip");
    const [zip] = await Promise.all([page.waitForEvent("download"), page.click("#download-zip")]);
    const zbytes = fs.readFileSync(await zip.path());
    expect(zbytes.subarray(0, 2).toString() === "PK", "a zip archive");
    expect(zip.suggestedFilename() === spec.dir + ".zip", `${spec.dir}.zip, got ${zip.suggestedFilename()}`);
    fs.copyFileSync(await zip.path(), path.join(spec.screenshots, "download.zip"));

    step = "search";
    await page.click("nav a[data-nav=search]");
    await page.fill("#search-q", spec.search);
    await page.click("#search-go");
    await page.waitForSelector("[data-testid=search-hit]");
    const hits = await page.$$eval("[data-testid=search-link]", as => as.map(a => a.textContent));
    expect(hits.length === spec.search_hits, `${spec.search_hits} hits for ${spec.search}, got ${hits.length}: ${hits}`);
    await shot("5-search");

    step = "diff two snapshots";
    await page.click("nav a[data-nav=diff]");
    await page.waitForSelector("#diff-a");
    await page.selectOption("#diff-a", spec.snapshots[1]);
    await page.selectOption("#diff-b", spec.snapshots[0]);
    await page.click("#diff-go");
    await page.waitForSelector("[data-testid=change]");
    const changes = await page.$$eval("[data-testid=change]", ls => ls.map(l => l.dataset.op + " " + l.querySelector("a").textContent));
    for (const c of spec.changes) expect(changes.includes(c), `change "${c}" in ${JSON.stringify(changes)}`);
    await shot("6-diff");

    step = "store info";
    await page.click("nav a[data-nav=info]");
    await page.waitForSelector("[data-testid=chart] rect");
    const count = await page.textContent("[data-testid=info-snapshots] .v");
    expect(count === String(spec.snapshots.length), `${spec.snapshots.length} snapshots on the info page, got ${count}`);
    await shot("7-store");

    step = "a path outside the snapshot";
    await page.goto(spec.url.split("#")[0] + "#/snapshot/" + spec.snapshots[0] + "?path=%2F..%2F..%2Fetc%2Fpasswd");
    await page.waitForSelector("[data-testid=error]");

    step = "no script errors";
    // The one expected failure is the 404 of the path outside the snapshot, just above.
    const unexpected = errors.filter(e => !(e.includes("404") && e.includes("Failed to load resource")));
    expect(errors.length <= 1 && unexpected.length === 0, `no other errors in the page, got ${errors}`);
    console.log("ui e2e: all steps passed");
  } catch (e) {
    await shot("failure").catch(() => {});
    console.error(e.message);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
