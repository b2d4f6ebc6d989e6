// Headless Debian Chromium driven by playwright-core (no browser download).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, type Browser, type BrowserContext } from "playwright-core";
import { webDemoDir } from "./gateway";

export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const artifactsDir = resolve(webDemoDir, "test-artifacts");

/** Browser tests run when Chromium is there; CI (WEB_DEMO_REQUIRED) fails without it. */
export function browserAvailable(): boolean {
  if (existsSync(chromiumPath)) return true;
  if (process.env.WEB_DEMO_REQUIRED || process.env.CI) {
    throw new Error(`${chromiumPath} not found: apt-get install chromium (see .ci/run)`);
  }
  console.warn(`SKIPPING browser tests: ${chromiumPath} not found (apt-get install chromium)`);
  return false;
}

export interface BrowserHandle {
  browser: Browser;
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<BrowserHandle> {
  mkdirSync(artifactsDir, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), "webdemo-chromium-"));
  // launchPersistentContext takes the user-data-dir: a fresh profile per run.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1100, height: 800 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const browser = context.browser()!;
  return {
    browser,
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
