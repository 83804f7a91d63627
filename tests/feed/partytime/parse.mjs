// Reads an RSS document on stdin and prints what podcast-partytime (the Podcast Index parser)
// makes of it, as JSON on stdout. Used by tests/feed/test_partytime.py.
import { readFileSync } from "node:fs";

// partytime logs through pino to stdout; keep stdout for the JSON alone.
process.env.PARTYTIME_LOG = "silent";
const { parseFeed } = (await import("podcast-partytime")).default;

const xml = readFileSync(0, "utf8");
const feed = parseFeed(xml, { allowMissingGuid: false });
process.stdout.write(JSON.stringify(feed));
