import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { join } from "node:path";
import { startGateway, type Gateway } from "../support/gateway";
import { artifactsDir, browserAvailable, launchBrowser, type BrowserHandle } from "../support/browser";

describe.runIf(browserAvailable())("the page in headless Chromium", () => {
  let gateway: Gateway;
  let browser: BrowserHandle;

  beforeAll(async () => {
    gateway = await startGateway();
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  test("the gateway serves the page at / and it lists the demo models", async () => {
    const page = await browser.context.newPage();
    await page.goto(`${gateway.url}/`);
    await expect.poll(() => page.locator("#model option").allTextContents()).toContain("demo/echo");
    await page.screenshot({ path: join(artifactsDir, "page.png") });
  });
});
