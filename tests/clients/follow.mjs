// Follows a Durable Streams JSON stream with the official TypeScript client
// (@durable-streams/client), for tests/ds_clients.rs.
//
//   node follow.mjs <stream-url> <sse|long-poll> <offset-file> <stop-after>
//
// Prints one line per item: `item <json>`; saves the offset after each batch
// to <offset-file> and starts from it when the file exists (resume). Exits 0
// once <stop-after> items were printed or the stream is closed (`closed`
// line), 1 on an error. The client itself retries network errors and 5xx
// (a server restart), so one run outlives a restart of the server.
import { readFileSync, writeFileSync, existsSync } from "node:fs"
import { stream } from "@durable-streams/client"

const [url, live, offsetFile, stopAfter] = process.argv.slice(2)
if (!url || !["sse", "long-poll"].includes(live) || !offsetFile || !stopAfter) {
  console.error("usage: node follow.mjs <stream-url> <sse|long-poll> <offset-file> <stop-after>")
  process.exit(2)
}
const offset = existsSync(offsetFile) ? readFileSync(offsetFile, "utf8").trim() : "-1"
let seen = 0
const res = await stream({ url, offset, live })
await new Promise((resolve, reject) => {
  res.subscribeJson(async (batch) => {
    for (const item of batch.items) {
      console.log(`item ${JSON.stringify(item)}`)
      seen += 1
    }
    writeFileSync(offsetFile, batch.offset)
    if (batch.streamClosed) {
      console.log("closed")
      resolve()
    } else if (seen >= Number(stopAfter)) {
      resolve()
    }
  })
  res.closed.then(() => setTimeout(resolve, 100), reject)
})
res.cancel?.()
process.exit(0)
