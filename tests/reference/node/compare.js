// Reads JSON lines [a, b] on stdin; prints one line per pair: -1, 0, 1, or "invalid".
// Uses node's semver package (strict parsing) as the reference for patchwarden's semver scheme.
"use strict";
const semver = require("semver");
const readline = require("readline");
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
const out = [];
rl.on("line", (line) => {
  if (!line.trim()) return;
  const [a, b] = JSON.parse(line);
  if (semver.valid(a) === null || semver.valid(b) === null) {
    out.push("invalid");
  } else {
    out.push(String(semver.compare(a, b)));
  }
});
rl.on("close", () => process.stdout.write(out.join("\n") + (out.length ? "\n" : "")));
