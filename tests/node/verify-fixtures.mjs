#!/usr/bin/env node
// Build every fixture with upstream (upstream-build.mjs) and validate the result (check-build.mjs).
//
//   node tests/node/verify-fixtures.mjs [--install] [--keep] [fixture ...]
//
//   --install  run `npm ci --no-audit --no-fund` in a fixture whose node_modules is missing
//   --keep     keep the build directories (<fixture>/.trigger/tmp/upstream-*)
//
// A fixture is a directory under fixtures/ with a package.json. Its configs are
// `trigger.config.ts` (checked against expected.json) and any `trigger.<variant>.config.ts`
// (checked against expected.<variant>.json).
// Ends with the line "N passed, N failed"; exit code 1 if anything failed.

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const fixturesDir = path.join(repo, "fixtures");

const args = process.argv.slice(2);
const install = args.includes("--install");
const keep = args.includes("--keep");
const only = args.filter((a) => !a.startsWith("--"));

const fixtures = fs
  .readdirSync(fixturesDir, { withFileTypes: true })
  .filter((d) => d.isDirectory() && fs.existsSync(path.join(fixturesDir, d.name, "package.json")))
  .map((d) => d.name)
  .filter((n) => only.length === 0 || only.includes(n))
  .sort();

if (only.length > 0) {
  for (const n of only) if (!fixtures.includes(n)) {
    console.error(`verify-fixtures: no fixture named ${n}`);
    process.exit(2);
  }
}

let passed = 0;
let failed = 0;

for (const name of fixtures) {
  const dir = path.join(fixturesDir, name);
  if (!fs.existsSync(path.join(dir, "node_modules"))) {
    if (!install) {
      console.log(`FAIL ${name}: node_modules missing (run npm ci there, or pass --install)`);
      failed++;
      continue;
    }
    const t0 = Date.now();
    const r = spawnSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: dir, stdio: ["ignore", "inherit", "inherit"] });
    if (r.status !== 0) {
      console.log(`FAIL ${name}: npm ci exited ${r.status}`);
      failed++;
      continue;
    }
    console.log(`     ${name}: npm ci ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }

  const configs = fs
    .readdirSync(dir)
    .filter((f) => /^trigger(\.[^.]+)?\.config\.ts$/.test(f))
    .sort();
  for (const config of configs) {
    const variant = config.match(/^trigger(?:\.([^.]+))?\.config\.ts$/)[1];
    const expected = variant ? `expected.${variant}.json` : "expected.json";
    const label = `${name}${variant ? `[${variant}]` : ""}`;
    if (!fs.existsSync(path.join(dir, expected))) {
      console.log(`FAIL ${label}: ${expected} missing`);
      failed++;
      continue;
    }
    const tmpRoot = path.join(dir, ".trigger", "tmp");
    fs.mkdirSync(tmpRoot, { recursive: true });
    const outDir = fs.mkdtempSync(path.join(tmpRoot, "upstream-"));
    const t0 = Date.now();
    const b = spawnSync(
      process.execPath,
      [path.join(here, "upstream-build.mjs"), dir, outDir, ...(variant ? ["--config", config] : [])],
      { encoding: "utf8" }
    );
    const buildMs = Date.now() - t0;
    if (b.status !== 0) {
      console.log(`FAIL ${label}: upstream-build exited ${b.status}\n${(b.stderr || "").slice(-3000)}`);
      failed++;
      continue;
    }
    const t1 = Date.now();
    const c = spawnSync(process.execPath, [path.join(here, "check-build.mjs"), outDir, path.join(dir, expected)], {
      encoding: "utf8",
    });
    const checkMs = Date.now() - t1;
    if (c.status !== 0) {
      console.log(`FAIL ${label}: check-build exited ${c.status}\n${c.stdout}${(c.stderr || "").slice(-3000)}`);
      failed++;
    } else {
      const summary = JSON.parse(b.stdout);
      console.log(
        `ok   ${label}: ${summary.taskFiles.length} task files, externals ${summary.externals
          .map((e) => `${e.name}@${e.version}`)
          .join(", ")} (build ${buildMs} ms, check ${checkMs} ms)`
      );
      passed++;
    }
    if (!keep) fs.rmSync(outDir, { recursive: true, force: true });
    else console.log(`     kept ${path.relative(repo, outDir)}`);
  }
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
