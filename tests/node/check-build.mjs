#!/usr/bin/env node
// Validate a Trigger.dev v3 deploy build directory (from liftoff or from upstream-build.mjs).
//
//   node tests/node/check-build.mjs <outDir> <expected.json> [--json] [--no-index] [--index-timeout <ms>]
//
// <outDir>/build.json is an upstream BuildManifest. Its paths may be absolute local paths or
// rewritten "/app/..." paths; "/app/" is mapped to "<outDir>/". The outDir is expected to live
// inside the project (e.g. <project>/.trigger/tmp/build-XXXXXX/), so that externals left as bare
// imports resolve from <project>/node_modules by Node's upward lookup.
//
// Checks, in order (all failures are collected; exit code 1 if any):
//   1. `node --check` on every .mjs under outDir (including node_modules/trigger.dev/... entry points).
//   2. Install a real StandardTaskCatalog as the global task catalog, using the project's installed
//      @trigger.dev/core (the SDK bundled into the outputs finds it through the global registry
//      globalThis[Symbol.for("dev.trigger.ts.api")]["task-catalog"], as deploy-index-worker does).
//   3. import() the config output, then every task file output (registering file metadata exactly
//      like trigger.dev's indexing/registerTasks.js), then every other .mjs chunk in the outDir
//      except the deploy-* / loader entry points (importing those starts workers) and anything
//      under <outDir>/node_modules/.
//   4. The catalog's tasks must be exactly the ids listed in expected.json.
//   5. For each expected task: payload -> JSON round-trip -> fns.parsePayload (schemaTask) ->
//      fns.init -> fns.run (through fns.middleware if any), with { ctx, init, signal } as
//      TaskExecutor does; the output is JSON round-tripped and deep-compared with "output".
//   6. (unless --no-index) fork the bundled index worker entry point (indexWorkerEntryPoint) with an
//      IPC channel and TRIGGER_BUILD_MANIFEST_PATH pointing at a copy of build.json whose paths are
//      mapped to outDir, as upstream's deploy-index-controller does; it must answer INDEX_COMPLETE
//      with no importErrors and exactly the expected task ids.
//
// If build.json has customConditions, the check re-runs itself under
// `node --conditions=<c> ...`, because the deployed workers get NODE_OPTIONS=--conditions=<c>.
//
// --json prints { ok, tasks:[{id,filePath,exportName}] (sorted by id), results:{id:{ok,output,expected,error?}},
//                 failures:[...], checked:{...}, index:{...}|null } on stdout.

import { spawn, spawnSync, fork } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { isDeepStrictEqual, inspect } from "node:util";
import { pathToFileURL, fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const SELF = fileURLToPath(import.meta.url);

function usage(msg) {
  if (msg) process.stderr.write(`check-build: ${msg}\n`);
  process.stderr.write(
    "usage: node check-build.mjs <outDir> <expected.json> [--json] [--no-index] [--index-timeout <ms>]\n"
  );
  process.exit(2);
}

const argv = process.argv.slice(2);
const positional = [];
let jsonOut = false;
let runIndex = true;
let indexTimeout = 30_000;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === "--json") jsonOut = true;
  else if (a === "--no-index") runIndex = false;
  else if (a === "--index-timeout") indexTimeout = Number(argv[++i]);
  else if (a === "-h" || a === "--help") usage();
  else if (a.startsWith("-")) usage(`unknown option ${a}`);
  else positional.push(a);
}
if (positional.length !== 2) usage("expected <outDir> <expected.json>");

const outDir = fs.realpathSync(path.resolve(positional[0]));
const expectedPath = path.resolve(positional[1]);

const failures = [];
const fail = (stage, message, extra) => failures.push({ stage, message, ...(extra ?? {}) });

// Everything the outputs print goes to stderr; stdout is reserved for the result.
const realStdoutWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);
const log = (...a) => process.stderr.write(a.join(" ") + "\n");

let expected;
try {
  expected = JSON.parse(fs.readFileSync(expectedPath, "utf8"));
} catch (e) {
  usage(`cannot read ${expectedPath}: ${e.message}`);
}
if (!expected || typeof expected.tasks !== "object") usage(`${expectedPath} has no "tasks" object`);

const buildJsonPath = path.join(outDir, "build.json");
let manifest;
try {
  manifest = JSON.parse(fs.readFileSync(buildJsonPath, "utf8"));
} catch (e) {
  usage(`cannot read ${buildJsonPath}: ${e.message}`);
}

// Re-exec under --conditions when the build has custom conditions (deployed workers run with
// NODE_OPTIONS=--conditions=<c>, so externals must resolve the same way here).
const customConditions = Array.isArray(manifest.customConditions) ? manifest.customConditions : [];
if (customConditions.length > 0 && process.env.LIFTOFF_CHECK_BUILD_CHILD !== "1") {
  const child = spawn(
    process.execPath,
    [...customConditions.map((c) => `--conditions=${c}`), SELF, ...argv],
    { stdio: "inherit", env: { ...process.env, LIFTOFF_CHECK_BUILD_CHILD: "1" } }
  );
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  await new Promise(() => {});
}

function mapPath(p) {
  if (typeof p !== "string" || p.length === 0) return undefined;
  if (p === "/app" || p === "/app/") return outDir;
  if (p.startsWith("/app/")) return path.join(outDir, p.slice("/app/".length));
  if (path.isAbsolute(p)) return p;
  return path.join(outDir, p);
}

function walk(dir, out = []) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full, out);
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

const rel = (p) => path.relative(outDir, p).split(path.sep).join("/");

// ---------------------------------------------------------------- manifest sanity
const entryPointKeys = [
  "runWorkerEntryPoint",
  "indexWorkerEntryPoint",
  "runControllerEntryPoint",
  "indexControllerEntryPoint",
  "loaderEntryPoint",
];
const entryPoints = new Map(); // key -> abs path
for (const key of entryPointKeys) {
  const p = mapPath(manifest[key]);
  if (!p) {
    if (key !== "loaderEntryPoint") fail("manifest", `build.json has no ${key}`);
    continue;
  }
  entryPoints.set(key, p);
  if (!fs.existsSync(p)) fail("manifest", `${key} ${manifest[key]} -> ${p} does not exist`);
}
const configPath = mapPath(manifest.configPath);
if (!configPath) fail("manifest", "build.json has no configPath");
else if (!fs.existsSync(configPath)) fail("manifest", `configPath ${manifest.configPath} -> ${configPath} does not exist`);
if (!Array.isArray(manifest.files)) fail("manifest", "build.json has no files array");
const files = (manifest.files ?? []).map((f) => ({ entry: f.entry, out: mapPath(f.out) }));
for (const f of files) {
  if (!f.out || !fs.existsSync(f.out)) fail("manifest", `files entry ${f.entry}: output ${f.out} does not exist`);
}

// ---------------------------------------------------------------- 1. node --check
const allMjs = walk(outDir).filter((p) => p.endsWith(".mjs")).sort();
if (allMjs.length === 0) fail("syntax", "no .mjs files under outDir");
for (const p of allMjs) {
  const r = spawnSync(process.execPath, ["--check", p], { encoding: "utf8" });
  if (r.status !== 0) fail("syntax", `node --check ${rel(p)} failed`, { stderr: (r.stderr || "").trim() });
}
// 1b. every relative import between output files must point at an existing file (this also covers
// the deploy-* entry points, which are never imported here).
const staticImportRe = /^(?:import|export)\b[^;]*?\bfrom\s*["'](\.\.?\/[^"']+)["']/gm;
const bareImportRe = /^import\s*["'](\.\.?\/[^"']+)["']/gm;
const dynamicImportRe = /\bimport\(\s*["'](\.\.?\/[^"']+\.m?js)["']\s*\)/g;
for (const p of allMjs) {
  const src = fs.readFileSync(p, "utf8");
  const specs = new Set();
  for (const re of [staticImportRe, bareImportRe, dynamicImportRe]) {
    re.lastIndex = 0;
    for (const m of src.matchAll(re)) specs.add(m[1]);
  }
  for (const spec of specs) {
    const target = path.resolve(path.dirname(p), spec);
    if (!fs.existsSync(target)) fail("links", `${rel(p)} imports ${spec}, which does not exist`);
  }
}
for (const [key, p] of entryPoints) {
  if (!p.endsWith(".mjs") && fs.existsSync(p)) {
    const r = spawnSync(process.execPath, ["--check", p], { encoding: "utf8" });
    if (r.status !== 0) fail("syntax", `node --check ${key} failed`, { stderr: (r.stderr || "").trim() });
  }
}

// ---------------------------------------------------------------- 2. global task catalog
function findPackageDir(name, fromDir) {
  let dir = fromDir;
  for (;;) {
    const candidate = path.join(dir, "node_modules", name, "package.json");
    if (fs.existsSync(candidate)) return path.dirname(candidate);
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

// ESM-resolve "<pkg><subpath>" through the package's "exports" (import condition).
async function importFromProject(pkgName, subpath) {
  const pkgDir = findPackageDir(pkgName, outDir);
  if (!pkgDir) throw new Error(`cannot find ${pkgName} above ${outDir} (run npm ci in the project)`);
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
  let target = pkg.exports?.[subpath];
  const pick = (t) => {
    if (typeof t === "string") return t;
    if (t && typeof t === "object") {
      for (const cond of ["import", "node", "default"]) {
        if (cond in t) {
          const r = pick(t[cond]);
          if (r) return r;
        }
      }
    }
    return undefined;
  };
  const file = pick(target);
  if (file) return { mod: await import(pathToFileURL(path.join(pkgDir, file)).href), pkgDir, version: pkg.version };
  const req = createRequire(path.join(outDir, "__check_build__.js"));
  return { mod: req(`${pkgName}${subpath === "." ? "" : subpath.slice(1)}`), pkgDir, version: pkg.version };
}

let taskCatalog;
let coreVersion;
try {
  const core = await importFromProject("@trigger.dev/core", "./v3");
  const workers = await importFromProject("@trigger.dev/core", "./v3/workers");
  coreVersion = core.version;
  taskCatalog = core.mod.taskCatalog;
  const ok = taskCatalog.setGlobalTaskCatalog(new workers.mod.StandardTaskCatalog());
  if (!ok) fail("catalog", "a global task catalog was already registered");
} catch (e) {
  fail("catalog", `cannot install the global task catalog: ${e.message}`);
}

// ---------------------------------------------------------------- 3. imports
const imported = new Set();
let config;
async function tryImport(p) {
  imported.add(p);
  try {
    return [null, await import(pathToFileURL(p).href)];
  } catch (e) {
    return [e, null];
  }
}
const errText = (e) => (e && e.stack ? e.stack : String(e));

if (configPath && fs.existsSync(configPath) && taskCatalog) {
  const [err, mod] = await tryImport(configPath);
  if (err) fail("import", `importing config ${rel(configPath)} failed`, { error: errText(err) });
  else {
    config = mod?.default ?? mod?.config;
    if (!config || typeof config !== "object") fail("import", `config ${rel(configPath)} has no default/config export`);
    else {
      if (typeof config.project !== "string") fail("import", "config has no project");
      if (typeof config.maxDuration !== "number") fail("import", "config has no maxDuration");
      if (config.build && Object.keys(config.build).length > 0) {
        fail("import", `config.build was not stripped from the bundled config: ${inspect(config.build)}`);
      }
    }
  }
}

// Same logic as trigger.dev 3.3.17 dist/esm/indexing/registerTasks.js
function getExportNames(module) {
  if (!module) return [];
  const keys = Object.keys(module);
  if (keys.length === 0) return [];
  if (keys.length === 1 && keys[0] === "default") return Object.keys(module.default);
  return keys;
}

const TASK_SYMBOL = Symbol.for("trigger.dev/task");
if (taskCatalog) {
  for (const file of files) {
    if (!file.out || !fs.existsSync(file.out)) continue;
    const [err, module] = await tryImport(file.out);
    if (err) {
      fail("import", `importing task file ${file.entry} (${rel(file.out)}) failed`, { error: errText(err) });
      continue;
    }
    for (const exportName of getExportNames(module)) {
      const task = module[exportName] ?? module.default?.[exportName];
      if (!task) continue;
      if (task[TASK_SYMBOL] && taskCatalog.taskExists(task.id)) {
        taskCatalog.registerTaskFileMetadata(task.id, {
          exportName,
          filePath: file.entry.split("?")[0],
          entryPoint: file.out,
        });
      }
    }
  }

  const skip = new Set(entryPoints.values());
  const nodeModulesDir = path.join(outDir, "node_modules") + path.sep;
  for (const p of allMjs) {
    if (imported.has(p) || skip.has(p) || p.startsWith(nodeModulesDir)) continue;
    const [err] = await tryImport(p);
    if (err) fail("import", `importing chunk ${rel(p)} failed`, { error: errText(err) });
  }
}

// ---------------------------------------------------------------- 4. catalog contents
const tasks = taskCatalog
  ? taskCatalog
      .listTaskManifests()
      .map((t) => ({ id: t.id, filePath: t.filePath, exportName: t.exportName }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  : [];
const expectedIds = Object.keys(expected.tasks).sort();
const foundIds = new Set(tasks.map((t) => t.id));
for (const id of expectedIds) if (!foundIds.has(id)) fail("catalog", `expected task "${id}" not found in the catalog`);
for (const t of tasks) {
  if (!(t.id in expected.tasks)) fail("catalog", `unexpected task "${t.id}" (${t.filePath} export ${t.exportName}) is not listed in expected.json`);
}

// ---------------------------------------------------------------- 5. run tasks
function makeCtx(task) {
  const now = new Date();
  return {
    task: { id: task.id, filePath: task.filePath, exportName: task.exportName },
    attempt: { id: "attempt_check", number: 1, startedAt: now, backgroundWorkerId: "worker_check", backgroundWorkerTaskId: "task_check", status: "EXECUTING" },
    run: { id: "run_check", payload: "", payloadType: "application/json", tags: [], isTest: true, createdAt: now, startedAt: now, durationMs: 0, costInCents: 0, baseCostInCents: 0, maxAttempts: 1, version: "check" },
    queue: { id: "queue_check", name: `task/${task.id}` },
    environment: { id: "env_check", slug: "prod", type: "PRODUCTION" },
    organization: { id: "org_check", slug: "check", name: "check" },
    project: { id: "project_check", ref: manifest?.config?.project ?? "proj_check", slug: "check", name: "check" },
    machine: { name: "small-1x", cpu: 0.5, memory: 0.5, centsPerMs: 0 },
  };
}

const jsonRoundTrip = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

const results = {};
if (taskCatalog) {
  for (const id of expectedIds) {
    const spec = expected.tasks[id];
    const task = taskCatalog.getTask(id);
    if (!task) {
      results[id] = { ok: false, error: "not in catalog", expected: spec.output };
      continue;
    }
    const ctx = makeCtx(task);
    const controller = new AbortController();
    const signal = controller.signal;
    try {
      let payload = jsonRoundTrip(spec.payload);
      if (task.fns.parsePayload) payload = await task.fns.parsePayload(payload);
      const init = task.fns.init ? await task.fns.init(payload, { ctx, signal }) : undefined;
      const run = () => task.fns.run(payload, { ctx, init, signal });
      const raw = task.fns.middleware
        ? await (async () => {
            let out;
            await task.fns.middleware(payload, { ctx, signal, next: async () => { out = await run(); } });
            return out;
          })()
        : await run();
      const output = jsonRoundTrip(raw);
      const ok = isDeepStrictEqual(output, spec.output);
      results[id] = { ok, output, expected: spec.output };
      if (!ok) {
        fail("run", `task "${id}" returned ${JSON.stringify(output)}, expected ${JSON.stringify(spec.output)}`);
      }
    } catch (e) {
      results[id] = { ok: false, error: errText(e), expected: spec.output };
      fail("run", `task "${id}" threw: ${e && e.message ? e.message : String(e)}`, { error: errText(e) });
    }
  }
}

// ---------------------------------------------------------------- 6. bundled index worker
async function runIndexWorker() {
  const worker = entryPoints.get("indexWorkerEntryPoint");
  if (!worker || !fs.existsSync(worker)) return null;
  const mapped = {
    ...manifest,
    files: files.map((f) => ({ entry: f.entry, out: f.out })),
    outputPath: outDir + path.sep,
    configPath,
  };
  for (const key of entryPointKeys) if (entryPoints.has(key)) mapped[key] = entryPoints.get(key);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "check-build-"));
  const manifestPath = path.join(tmp, "build.json");
  fs.writeFileSync(manifestPath, JSON.stringify(mapped));
  // Same as upstream execOptionsForRuntime("node", manifest): --import=<loader>, --conditions=<c>...
  const nodeOptions = [
    entryPoints.has("loaderEntryPoint") ? `--import=${pathToFileURL(entryPoints.get("loaderEntryPoint")).href}` : undefined,
    ...customConditions.map((c) => `--conditions=${c}`),
    process.env.NODE_OPTIONS,
  ]
    .filter(Boolean)
    .join(" ");
  const env = {
    ...process.env,
    TRIGGER_BUILD_MANIFEST_PATH: manifestPath,
    TRIGGER_INDEXING: "1",
    OTEL_IMPORT_HOOK_INCLUDES: (manifest.otelImportHook?.include ?? []).join(","),
    OTEL_IMPORT_HOOK_EXCLUDES: (manifest.otelImportHook?.exclude ?? []).join(","),
    NODE_OPTIONS: nodeOptions,
  };
  delete env.LIFTOFF_CHECK_BUILD_CHILD;
  return await new Promise((resolve) => {
    let stderr = "";
    let settled = false;
    const child = fork(worker, [], { cwd: outDir, env, execArgv: [], stdio: ["ignore", "pipe", "pipe", "ipc"] });
    child.stdout.on("data", (d) => process.stderr.write(d));
    child.stderr.on("data", (d) => {
      stderr += d;
      process.stderr.write(d);
    });
    const done = (r) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try { child.kill(); } catch {}
      fs.rmSync(tmp, { recursive: true, force: true });
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, error: `index worker timed out after ${indexTimeout} ms`, stderr }), indexTimeout);
    child.on("message", (msg) => {
      if (msg && typeof msg === "object" && msg.type) done({ ok: msg.type === "INDEX_COMPLETE", message: msg, stderr });
    });
    child.on("error", (e) => done({ ok: false, error: String(e), stderr }));
    child.on("exit", (code, sig) => done({ ok: false, error: `index worker exited (code ${code}, signal ${sig}) without a message`, stderr }));
  });
}

let index = null;
if (runIndex) {
  const r = await runIndexWorker();
  if (!r) {
    fail("index", "no index worker entry point to run");
  } else if (!r.ok) {
    const detail = r.message ? JSON.stringify(r.message.payload).slice(0, 4000) : r.error;
    fail("index", `bundled index worker failed: ${r.message?.type ?? ""} ${detail}`, { stderr: r.stderr?.slice(-4000) });
    index = { ok: false, type: r.message?.type ?? null, error: r.error ?? null };
  } else {
    const m = r.message.payload.manifest;
    const importErrors = r.message.payload.importErrors ?? [];
    for (const e of importErrors) fail("index", `index worker import error in ${e.file}: ${e.message}`);
    const idxTasks = (m.tasks ?? [])
      .map((t) => ({ id: t.id, filePath: t.filePath, exportName: t.exportName, maxDuration: t.maxDuration }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const idxIds = idxTasks.map((t) => t.id);
    if (JSON.stringify(idxIds) !== JSON.stringify(expectedIds)) {
      fail("index", `index worker found tasks ${JSON.stringify(idxIds)}, expected ${JSON.stringify(expectedIds)}`);
    }
    for (const t of idxTasks) {
      const mine = tasks.find((x) => x.id === t.id);
      if (mine && (mine.filePath !== t.filePath || mine.exportName !== t.exportName)) {
        fail("index", `index worker disagrees on ${t.id}: ${t.filePath}#${t.exportName} vs ${mine.filePath}#${mine.exportName}`);
      }
      if (typeof t.maxDuration !== "number") fail("index", `index worker gave ${t.id} no maxDuration`);
    }
    index = {
      ok: !failures.some((f) => f.stage === "index"),
      tasks: idxTasks,
      importErrors,
      runtime: m.runtime,
      customConditions: m.customConditions ?? [],
    };
  }
}

// ---------------------------------------------------------------- report
const ok = failures.length === 0;
const summary = {
  ok,
  outDir,
  expected: expectedPath,
  tasks,
  results,
  failures,
  checked: {
    syntaxChecked: allMjs.length,
    imported: [...imported].map(rel).sort(),
    coreVersion: coreVersion ?? null,
    customConditions,
  },
  index,
};

if (jsonOut) {
  await new Promise((r) => realStdoutWrite(JSON.stringify(summary, null, 2) + "\n", r));
} else {
  const lines = [];
  lines.push(`check-build: ${outDir}`);
  lines.push(`  node --check: ${allMjs.length} .mjs files`);
  lines.push(`  imported: ${imported.size} modules`);
  for (const t of tasks) {
    const r = results[t.id];
    lines.push(`  task ${t.id} (${t.filePath}#${t.exportName}): ${r ? (r.ok ? "ok" : "FAILED") : "not run"}`);
  }
  if (index) lines.push(`  index worker: ${index.ok ? "ok" : "FAILED"} (${(index.tasks ?? []).length} tasks)`);
  if (ok) lines.push(`check-build: OK (${tasks.length} tasks)`);
  else {
    lines.push(`check-build: FAILED (${failures.length} problem${failures.length === 1 ? "" : "s"})`);
    for (const f of failures) {
      lines.push(`  [${f.stage}] ${f.message}`);
      const more = f.error || f.stderr;
      if (more) lines.push(more.split("\n").slice(0, 12).map((l) => "      " + l).join("\n"));
    }
  }
  await new Promise((r) => realStdoutWrite(lines.join("\n") + "\n", r));
}
process.exit(ok ? 0 : 1);
