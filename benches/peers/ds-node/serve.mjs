// The Node reference Durable Streams server (@durable-streams/server,
// pinned in package.json and package-lock.json), in memory, for benches/ds.
//   PORT (default 4437), HOST (default 127.0.0.1), LONG_POLL_TIMEOUT_MS (default 30000)
// benches/run installs it with `npm ci`; the bench starts it with `node serve.mjs`
// and stops it with a signal.
import { DurableStreamTestServer } from "@durable-streams/server"

const server = new DurableStreamTestServer({
  port: Number(process.env.PORT ?? 4437),
  host: process.env.HOST ?? "127.0.0.1",
  longPollTimeout: Number(process.env.LONG_POLL_TIMEOUT_MS ?? 30000),
})
await server.start()
console.log(`LISTEN ${server.url}`)
const stop = async () => {
  await server.stop()
  process.exit(0)
}
process.on("SIGINT", stop)
process.on("SIGTERM", stop)
