// The useChat page (src/pages/UIChatPage.tsx: the AI SDK's own hook, unmodified) in
// headless Chromium against a real gateway. Answers come from a fake OpenAI upstream
// process that paces a known text and reports how each of its requests ended, so
// "Stop closed the upstream" is asserted from the upstream's side.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { startGateway, type Gateway } from "../support/gateway";
import { startFakeUpstream, type FakeUpstream } from "../support/fake-upstream";
import { artifactsDir, browserAvailable, launchBrowser, type BrowserHandle } from "../support/browser";

const TOKENS = 120;
const DELAY_MS = 40; // about 5 s per answer: time to reload or stop in the middle
const WAIT = { timeout: 30_000 };

describe.runIf(browserAvailable())("useChat through the gateway, in headless Chromium", () => {
  let gateway: Gateway;
  let upstream: FakeUpstream;
  let anthropic: FakeUpstream;
  let browser: BrowserHandle;

  beforeAll(async () => {
    upstream = await startFakeUpstream(TOKENS, DELAY_MS);
    anthropic = await startFakeUpstream(4, 0, "anthropic");
    gateway = await startGateway({ ...upstream.env, ...anthropic.env, GATEWAY_DEMO_TOKEN_DELAY_MS: "10" });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.stop();
    await upstream?.stop();
    await anthropic?.stop();
  });

  async function openPage(model: string): Promise<Page> {
    const page = await browser.context.newPage();
    await page.goto(`${gateway.url}/#/ui-chat`);
    // A chat of its own for every test.
    await page.evaluate(() => localStorage.clear());
    await page.reload();
    await page.locator("#ui-model").fill(model);
    await expect.poll(() => status(page), WAIT).toBe("ready");
    return page;
  }

  function status(page: Page): Promise<string | null> {
    return page.locator("section[data-status]").getAttribute("data-status");
  }

  function assistantTexts(page: Page): Promise<string[]> {
    return page.locator('li[data-role="assistant"] .ui-text').allTextContents();
  }

  async function assistantText(page: Page): Promise<string> {
    return (await assistantTexts(page)).join("");
  }

  async function send(page: Page, text: string): Promise<void> {
    await page.getByRole("textbox", { name: "Message", exact: true }).fill(text);
    await page.getByRole("button", { name: "Send" }).click();
  }

  async function lastUpstreamRequest(count: number) {
    await expect.poll(async () => (await upstream.requests()).length, WAIT).toBe(count);
    return (await upstream.requests()).at(-1)!;
  }

  test("a message streams into the page", async () => {
    const page = await openPage("demo/echo");
    await send(page, "Hello through the AI SDK");
    await expect.poll(() => assistantText(page), WAIT).toBe("Hello through the AI SDK");
    await expect.poll(() => status(page), WAIT).toBe("ready");
    expect(await assistantTexts(page)).toHaveLength(1);
    await page.screenshot({ path: join(artifactsDir, "ui-chat.png") });
    await page.close();
  });

  test("demo/tools: the call shows as a card, runs in the page, and the answer continues the message", async () => {
    const page = await openPage("demo/tools");
    await page.getByLabel("Offer the lookup tool").check();
    await send(page, "weather in Paris");
    const card = page.locator('li[data-role="assistant"] .ui-tool');
    await expect.poll(() => card.getAttribute("data-state"), WAIT).toBe("output-available");
    expect(await card.getAttribute("data-tool-call-id")).toBe("call_demo_0");
    expect(await card.locator(".tool-name").textContent()).toBe("lookup");
    expect(JSON.parse((await card.getByLabel("Arguments of lookup").textContent())!)).toEqual({
      query: "weather in Paris",
    });
    const output = { answer: "16 characters, 3 words" };
    expect(JSON.parse((await card.getByLabel("Output of lookup").textContent())!)).toEqual(output);
    // useChat sent the output back by itself; demo/tools answers from it, in the same message.
    await expect.poll(() => assistantText(page), WAIT).toBe(`lookup returned: ${JSON.stringify(output)}`);
    await expect.poll(() => status(page), WAIT).toBe("ready");
    expect(await page.locator('li[data-role="assistant"]').count()).toBe(1);
    expect(await card.count()).toBe(1);
    await page.screenshot({ path: join(artifactsDir, "ui-chat-tool-call.png") });
    await page.close();
  });

  test("the model's reasoning shows above its answer", async () => {
    await anthropic.queue({ tokens: ["It is", " 4."], thinking: ["Two and two", " make four."] });
    const page = await openPage("anthropic/claude-sonnet-4-5");
    await send(page, "2+2?");
    await expect.poll(() => assistantText(page), WAIT).toBe("It is 4.");
    await expect.poll(() => status(page), WAIT).toBe("ready");
    const reasoning = page.locator('li[data-role="assistant"] .ui-reasoning');
    expect(await reasoning.allTextContents()).toEqual(["Two and two make four."]);
    await page.close();
  });

  test("Stop ends the answer and the upstream request is closed", async () => {
    const before = (await upstream.requests()).length;
    const page = await openPage("openai/gpt-4o-mini");
    await send(page, "stop me");
    await expect.poll(() => assistantText(page), WAIT).toContain(" tok3");
    await page.getByRole("button", { name: "Stop" }).click();
    await expect.poll(() => status(page), WAIT).toBe("ready");
    const request = await lastUpstreamRequest(before + 1);
    await expect.poll(async () => (await upstream.requests()).at(-1)!.outcome, WAIT).toBe("disconnected");
    expect(request.chunks_sent).toBeLessThan(TOKENS);
    const text = await assistantText(page);
    expect(upstream.text.startsWith(text)).toBe(true);
    expect(text.length).toBeLessThan(upstream.text.length);
    await page.close();
  });

  test("a reload mid-answer resumes it: the text is complete, exactly once", async () => {
    const before = (await upstream.requests()).length;
    const page = await openPage("openai/gpt-4o-mini");
    await send(page, "survive a reload");
    await expect.poll(() => assistantText(page), WAIT).toContain(" tok5");
    await page.reload();
    await expect.poll(() => assistantText(page), WAIT).toBe(upstream.text);
    await expect.poll(() => status(page), WAIT).toBe("ready");
    expect(await assistantTexts(page)).toHaveLength(1);
    expect((await assistantText(page)).split(" tok0 ").length).toBe(2);
    // One upstream request: the resume replayed it, nothing was asked twice.
    const request = await lastUpstreamRequest(before + 1);
    expect(request.outcome).toBe("completed");
    await page.close();
  });

  test("a resumed answer can be stopped, and its upstream closes", async () => {
    const before = (await upstream.requests()).length;
    const page = await openPage("openai/gpt-4o-mini");
    await send(page, "reload, then stop");
    await expect.poll(() => assistantText(page), WAIT).toContain(" tok3");
    await page.reload();
    // Resumed: the replay is on the page and new tokens keep arriving.
    await expect.poll(() => assistantText(page), WAIT).toContain(" tok8");
    await expect.poll(() => status(page), WAIT).toBe("streaming");
    await page.getByRole("button", { name: "Stop" }).click();
    await expect.poll(() => status(page), WAIT).toBe("ready");
    await lastUpstreamRequest(before + 1);
    await expect.poll(async () => (await upstream.requests()).at(-1)!.outcome, WAIT).toBe("disconnected");
    const text = await assistantText(page);
    expect(upstream.text.startsWith(text)).toBe(true);
    expect(text.length).toBeLessThan(upstream.text.length);
    expect(await assistantTexts(page)).toHaveLength(1);
    await page.close();
  });
});
