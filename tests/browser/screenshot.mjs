// A screenshot of the search page after uploading IMAGE: the query beside
// its attention map and the most similar cases.
// usage: node screenshot.mjs BASE_URL IMAGE OUT.png
import { chromium } from "playwright-core";

const [base, image, out] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  await page.goto(base);
  await page.waitForFunction(() => /documents/.test(document.getElementById("stats").textContent));
  await page.setInputFiles("#file", image);
  await page.waitForSelector(".hit");
  await page.waitForSelector("#attention-figure", { state: "visible" });
  await page.waitForTimeout(500);
  await page.screenshot({ path: out, fullPage: false });
} finally {
  await browser.close();
}
