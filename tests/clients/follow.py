"""Follows a Durable Streams JSON stream with the PyPI client
`durable-streams` 0.1.0, for tests/ds_clients.rs.

    python follow.py <stream-url> <sse|long-poll> <offset-file> <stop-after>

Prints one line per item: `item <json>`; saves the offset after each batch
to <offset-file> and starts from it when the file exists (resume; "-1"
otherwise: 0.1.0 leaves `offset` out when given none, which a server
refuses for a live read). Exits 0 once <stop-after> items were printed,
3 when the stream ended or the server went away first (0.1.0 neither
retries nor knows `Stream-Closed`: the caller starts a new follower from
the saved offset).
"""
import json
import os
import sys

from durable_streams import stream

url, live, offset_file, stop_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
offset = open(offset_file).read().strip() if os.path.exists(offset_file) else "-1"
seen = 0
try:
    with stream(url, offset=offset, live=live) as res:
        for ev in res.iter_events(mode="json"):
            items = ev.data if isinstance(ev.data, list) else [ev.data]
            for item in items:
                print("item " + json.dumps(item, separators=(",", ":")), flush=True)
                seen += 1
            with open(offset_file, "w") as f:
                f.write(ev.next_offset)
            if seen >= stop_after:
                sys.exit(0)
except Exception as err:  # the server went away: the caller resumes
    print(f"interrupted {type(err).__name__}: {err}", flush=True)
sys.exit(3)
