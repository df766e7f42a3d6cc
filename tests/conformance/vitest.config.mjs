import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.mjs"],
    // One worker process is enough: the suite talks to an external server.
    pool: "forks",
    fileParallelism: false,
    // Keep vitest's default per-test timeout (5000 ms) like upstream; the
    // suite passes its own larger timeouts to long-poll / property tests.
    testTimeout: Number(process.env.DS_TEST_TIMEOUT_MS ?? 5000),
    hookTimeout: 30000,
    reporters: process.env.DS_REPORTER ? process.env.DS_REPORTER.split(",") : ["default"],
  },
})
