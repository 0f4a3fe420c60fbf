// The search page in a real browser: upload an image, wait for the grid,
// check the first hit, narrow by grade, click a result to search like it.
// usage: node search_page.mjs BASE_URL IMAGE SCREENSHOT
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const [base, image, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1024, height: 800 } });
  const failures = [];
  page.on("pageerror", (e) => failures.push(e.message));
  await page.goto(base);
  await page.waitForFunction(() => /documents/.test(document.getElementById("stats").textContent));

  // Upload: the grid fills, the first hit is at distance 0, the attention map shows.
  await page.setInputFiles("#file", image);
  await page.waitForSelector(".hit");
  const first = await page.$eval(".hit", (h) => ({
    id: h.dataset.id,
    distance: h.querySelector(".distance").textContent,
    grade: h.querySelector(".grade").textContent,
    thumb: h.querySelector("img") && h.querySelector("img").getAttribute("src"),
  }));
  assert.equal(first.distance, "d=0", JSON.stringify(first));
  assert.match(first.grade, /^grade [0-4]$/);
  assert.ok(first.thumb && first.thumb.startsWith("/documents/"), "thumbnail shown");
  await page.waitForFunction(() => {
    const img = document.querySelector(".hit img");
    return img && img.complete && img.naturalWidth > 0;
  });
  assert.ok(await page.isVisible("#attention-figure"), "attention map shown");
  assert.match(await page.textContent("#status"), /results in/);

  // Filter: grade 3 or worse.
  await page.selectOption("#grade-min", "3");
  await page.waitForFunction(() => {
    const grades = [...document.querySelectorAll(".hit .grade")].map((g) => Number(g.textContent.slice(6)));
    return grades.length > 0 && grades.every((g) => g >= 3);
  });

  // Click a result: the page searches like it, and it finds itself at distance 0.
  const clicked = await page.$eval(".hit:nth-child(2)", (h) => h.dataset.id);
  await page.click(".hit:nth-child(2)");
  await page.waitForFunction((id) => document.getElementById("like-id").textContent === id, clicked);
  await page.waitForFunction(
    (id) => [...document.querySelectorAll(".hit")].some((h) => h.dataset.id === id && h.querySelector(".distance").textContent === "d=0"),
    clicked,
  );
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  assert.deepEqual(failures, [], "no script errors on the page");
  console.log(`browser test passed: first hit ${first.id}, clicked ${clicked}`);
} finally {
  await browser.close();
}
