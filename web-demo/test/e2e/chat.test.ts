// The page in headless Chromium against a real gateway (demo provider), through a
// TCP proxy that can cut the network. Each test waits for what the page shows.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { startGateway, type Gateway } from "../support/gateway";
import { startProxy, type Proxy } from "../support/proxy";
import { artifactsDir, browserAvailable, launchBrowser, type BrowserHandle } from "../support/browser";

const SENTENCE = Array.from({ length: 36 }, (_, i) => `token${i}`).join(" ");

describe.runIf(browserAvailable())("the chat page in headless Chromium", () => {
  let gateway: Gateway;
  let proxy: Proxy;
  let browser: BrowserHandle;
  let page: Page;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    gateway = await startGateway({ GATEWAY_DEMO_TOKEN_DELAY_MS: "50" });
    proxy = await startProxy(gateway.port);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await gateway?.stop();
  });

  async function openPage(viewport = { width: 1100, height: 800 }): Promise<Page> {
    page = await browser.context.newPage();
    await page.setViewportSize(viewport);
    page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
    await page.goto(`${proxy.url}/`);
    await expect.poll(() => page.getByTestId("connection-state").textContent()).toBe("Connected");
    await expect.poll(() => page.getByLabel("Model").inputValue()).toBe("demo/echo");
    return page;
  }
  afterEach(async () => {
    await page?.close();
  });

  const answer = () => page.getByTestId("answer").last();
  const status = () => answer().getByTestId("answer-status").textContent();
  const text = () => answer().getByTestId("answer-text").textContent();

  async function ask(message: string, model?: string) {
    if (model) await page.getByLabel("Model").selectOption(model);
    await page.getByLabel("Message").fill(message);
    await page.getByLabel("Message").press("Enter");
  }

  test("tokens stream in, the answer completes with its usage, without layout shift", async () => {
    await openPage();
    await page.evaluate(() => {
      type Shift = { value: number; hadRecentInput: boolean; sources?: { node?: Element }[] };
      const w = window as unknown as { shift: number; shifted: string[] };
      w.shift = 0;
      w.shifted = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries() as unknown as Shift[]) {
          if (e.hadRecentInput) continue;
          w.shift += e.value;
          for (const s of e.sources ?? []) w.shifted.push(`${s.node?.nodeName}.${s.node?.className}`);
        }
      }).observe({ type: "layout-shift", buffered: false });
    });
    await ask(SENTENCE);
    // Part of the answer is on screen while it still streams.
    await expect
      .poll(async () => {
        const t = (await text()) ?? "";
        return t.length > 0 && t.length < SENTENCE.length && (await status()) === "Answering…";
      })
      .toBe(true);
    await expect.poll(() => page.getByTestId("connection-state").textContent()).toBe("Streaming");
    await expect.poll(status, { timeout: 20_000 }).toBe("Completed");
    expect(await text()).toBe(SENTENCE);
    expect(await answer().getByTestId("usage").textContent()).toMatch(/^[1-9][0-9]* in · 36 out tokens$/);
    expect(await answer().locator(".model").textContent()).toContain("demo/echo");
    const { shift, shifted } = await page.evaluate(() => {
      const w = window as unknown as { shift: number; shifted: string[] };
      return { shift: w.shift, shifted: w.shifted };
    });
    expect(shift, `layout shifts of ${shifted.join(", ")}`).toBeLessThan(0.01);
    // The developer panel has the raw frames of this answer, from create to done.
    await page.getByText(/Developer: protocol frames/).click();
    const frames = await page.locator(".frame-list li code").allTextContents();
    expect(JSON.parse(frames[0]!).type).toBe("response.create");
    expect(JSON.parse(frames.at(-1)!).type).toBe("response.done");
    await page.screenshot({ path: join(artifactsDir, "chat.png"), fullPage: true });
  });

  test("Stop keeps the partial text, marks it stopped, and the gateway cancels the upstream", async () => {
    await openPage();
    await ask("go", "demo/lorem");
    await expect.poll(async () => ((await text()) ?? "").length).toBeGreaterThan(0);
    await page.getByTestId("stop").click();
    await expect.poll(status).toBe("Stopped");
    const partial = (await text()) ?? "";
    expect(partial.startsWith("Lorem")).toBe(true);
    // Focus is back in the message box, and Send is back in Stop's place.
    expect(await page.evaluate(() => document.activeElement?.getAttribute("placeholder"))).toMatch(/^Message/);
    expect(await page.getByTestId("send").isVisible()).toBe(true);
    // The request id, from the developer panel's first frame (the response.create).
    await page.getByText(/Developer: protocol frames/).click();
    const create = JSON.parse((await page.locator(".frame-list li code").first().textContent())!);
    expect(create.type).toBe("response.create");
    const summary = await gateway.waitForLog(
      (l) => l.event === "chat.request" && l.request_id === create.request_id,
      "the gateway's summary of the stopped request",
    );
    expect(summary).toMatchObject({ status: "cancelled", reason: "client_cancelled" });
    expect(summary.last_seq as number).toBeLessThan(64); // lorem would stream 64 tokens
    expect(await answer().getByTestId("answer-text").textContent()).toBe(partial);
  });

  test("the socket is cut mid-answer: the page reconnects and the answer completes exactly once", async () => {
    await openPage();
    await ask(SENTENCE, "demo/echo");
    await expect.poll(async () => ((await text()) ?? "").split(" ").length).toBeGreaterThan(3);
    const before = proxy.accepted;
    proxy.cut();
    await expect.poll(status, { timeout: 20_000 }).toBe("Completed");
    expect(await text()).toBe(SENTENCE);
    expect(await page.getByTestId("answer").count()).toBe(1);
    expect(proxy.accepted).toBeGreaterThan(before);
    await page.getByText(/Developer: protocol frames/).click();
    const frames = (await page.locator(".frame-list li code").allTextContents()).map((f) => JSON.parse(f));
    expect(frames.filter((f) => f.type === "response.resume")).toHaveLength(1);
    expect(frames.filter((f) => f.type === "response.done")).toHaveLength(1);
    expect(await page.getByTestId("connection-state").textContent()).toBe("Connected");
  });

  test("demo/tools with the lookup tool offered: its call shows as a card, arguments complete", async () => {
    await openPage();
    await page.getByLabel("Offer the lookup tool").check();
    await ask("weather in Paris", "demo/tools");
    await expect.poll(status, { timeout: 20_000 }).toBe("Completed");
    const card = answer().getByTestId("tool-call");
    expect(await card.count()).toBe(1);
    await expect.poll(() => card.getAttribute("data-done")).toBe("true");
    expect(await card.locator(".tool-name").textContent()).toBe("lookup");
    expect(await card.locator(".tool-id code").textContent()).toBe("call_demo_0");
    const args = await card.getByLabel("Arguments of lookup").textContent();
    expect(JSON.parse(args!)).toEqual({ query: "weather in Paris" });
    // What went over the socket: the tool in the create, the call's own frames back.
    await page.getByText(/Developer: protocol frames/).click();
    const frames = (await page.locator(".frame-list li code").allTextContents()).map((f) => JSON.parse(f));
    expect(frames[0].tools.map((t: { function: { name: string } }) => t.function.name)).toEqual(["lookup"]);
    const types = frames.map((f) => f.type as string);
    expect(types).toContain("response.output_item.added");
    expect(types.filter((t) => t === "response.function_call_arguments.delta").length).toBeGreaterThan(1);
    expect(types).toContain("response.function_call_arguments.done");
    expect(frames.at(-1)).toMatchObject({ type: "response.done", finish_reason: "tool_calls" });
    await page.screenshot({ path: join(artifactsDir, "chat-tool-call.png"), fullPage: true });
  });

  test("a model that does not exist gives an error a person can read", async () => {
    await openPage();
    await page.getByLabel("Model").selectOption({ label: "Another model id…" });
    await page.getByLabel("Model id").fill("demo/nope");
    await ask("hello");
    await expect.poll(status).toBe("Failed");
    const error = await answer().getByTestId("answer-error").textContent();
    expect(error).toContain("That model does not exist on this gateway");
    expect(error).toContain("model_not_found");
    // The socket goes on.
    expect(await page.getByTestId("connection-state").textContent()).toBe("Connected");
  });

  test("a narrow screen: nothing overflows sideways, controls stay reachable", async () => {
    await openPage({ width: 360, height: 740 });
    await ask("Hello from a phone", "demo/echo");
    await expect.poll(status).toBe("Completed");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    expect(await page.getByTestId("send").isVisible()).toBe(true);
    await page.screenshot({ path: join(artifactsDir, "chat-narrow.png"), fullPage: true });
  });

  test("labels, live region and keyboard order", async () => {
    await openPage();
    expect(await page.getByRole("log", { name: "Conversation" }).getAttribute("aria-live")).toBe("polite");
    expect(await page.getByRole("status").count()).toBeGreaterThan(0);
    // Tab order follows the page: model, agent, ..., message box, then Send.
    await page.getByLabel("Model").focus();
    const order: string[] = [];
    for (let i = 0; i < 4; i++) {
      await page.keyboard.press("Tab");
      order.push(await page.evaluate(() => document.activeElement?.id || document.activeElement?.getAttribute("aria-label") || document.activeElement?.tagName || ""));
    }
    expect(order[0]).toMatch(/agent$/);
    expect(order).toContain("Conversation");
    expect(order.some((o) => o.endsWith("input"))).toBe(true);
    expect(consoleErrors).toEqual([]);
  });
});
