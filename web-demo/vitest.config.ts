import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    // The machine is shared and small: one file at a time, each starting its own
    // gateway (and, for test/e2e, one Chromium). Tests await events, never sleep.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
