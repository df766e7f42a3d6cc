// Runs the pinned Durable Streams server conformance suite
// (@durable-streams/server-conformance-tests@0.3.6) against an external server.
//
//   DS_BASE_URL          server origin, e.g. http://127.0.0.1:4437 (required).
//                        NOTE: not BASE_URL -- Vite/Vitest overwrite process.env.BASE_URL
//                        with Vite's `base` ("/") inside the test worker.
//   LONG_POLL_TIMEOUT_MS the server's long-poll timeout in ms; the suite uses
//                        (value + 1000) as the vitest timeout of long-poll tests
//                        (suite default 20000 when unset)
//   DS_SUBSCRIPTIONS=1   also run the opt-in "Reserved subscription APIs" group
import { runConformanceTests } from "@durable-streams/server-conformance-tests"

const baseUrl = process.env.DS_BASE_URL
if (!baseUrl || !/^https?:\/\//.test(baseUrl)) {
  throw new Error(`DS_BASE_URL must be an absolute http(s) URL, got ${JSON.stringify(baseUrl)}`)
}

const options = { baseUrl: baseUrl.replace(/\/+$/, "") }
if (process.env.LONG_POLL_TIMEOUT_MS) {
  options.longPollTimeoutMs = Number(process.env.LONG_POLL_TIMEOUT_MS)
}
if (process.env.DS_SUBSCRIPTIONS === "1") options.subscriptions = true

runConformanceTests(options)
