#!/usr/bin/env node
// Runs a workflow's actions/github-script `script:` body the way that action does: as the body
// of an AsyncFunction given github (a real @octokit/rest client), context, core and require.
// The client talks to GITHUB_API_URL (the tests' fake GitHub API).
// usage: node github_script.cjs SCRIPT.js
// environment: GITHUB_API_URL, GITHUB_TOKEN, GITHUB_REPOSITORY (owner/repo), GITHUB_RUN_ID,
// GITHUB_SERVER_URL; OCTOKIT_MODULE overrides where @octokit/rest is loaded from.
"use strict";
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

function loadOctokit() {
  const where = process.env.OCTOKIT_MODULE
    || join(__dirname, "..", "..", ".tools", "node_modules", "@octokit", "rest");
  try {
    return require(where).Octokit;
  } catch (err) {
    console.error(`github_script: cannot load ${where} (${err.code || err.message}); `
      + "run `make lint-tools`");
    process.exit(2);
  }
}

// the part of @actions/core the scripts use; workflow commands on stdout as the runner reads them
const core = {
  info: (message) => console.log(message),
  debug: (message) => console.log(`::debug::${message}`),
  warning: (message) => console.log(`::warning::${message}`),
  error: (message) => console.log(`::error::${message}`),
  setFailed: (message) => {
    console.log(`::error::${message}`);
    process.exitCode = 1;
  },
};

async function main(scriptPath) {
  const Octokit = loadOctokit();
  const [owner, repo] = (process.env.GITHUB_REPOSITORY || "").split("/");
  const github = new Octokit({
    auth: process.env.GITHUB_TOKEN,
    baseUrl: process.env.GITHUB_API_URL,
    userAgent: "tkedistro-github-script-harness",
  });
  const context = {
    repo: { owner, repo },
    runId: Number(process.env.GITHUB_RUN_ID),
    serverUrl: process.env.GITHUB_SERVER_URL,
  };
  const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor;
  const script = new AsyncFunction("require", "github", "octokit", "context", "core",
    readFileSync(scriptPath, "utf8"));
  await script(require, github, github, context, core);
}

if (process.argv.length !== 3) {
  console.error("usage: node github_script.cjs SCRIPT.js");
  process.exit(2);
}
main(process.argv[2]).catch((err) => {
  // actions/github-script fails the step with the error's message
  core.setFailed(`Unhandled error: ${err.stack || err}`);
});
