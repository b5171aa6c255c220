#!/usr/bin/env node
// Differential oracle for the built-in build extensions: run ONE real upstream extension (from the
// project's own node_modules) against a recording BuildContext and print what it did.
//
//   node tests/node/record-extension.mjs <projectDir> <case.json> [--case <id>] [--output-path <dir>]
//                                        [--keep] [--normalize]
//   node tests/node/record-extension.mjs --all [<cases.json>] [--fixtures <dir>] [--normalize] [--only <id>...]
//
// <case.json> holds one case object, or a list of cases (a JSON array, or { "cases": [...] }); with a
// list, --case <id> picks one. A case:
//   {
//     "id": "ffmpeg-version",                       // only needed in lists
//     "project": "extensions-core",                 // fixture to run in (used by --all; informational otherwise)
//     "module": "@trigger.dev/build/extensions/core", // resolved from the project (mlly, conditions node+import)
//     "export": "ffmpeg",                           // factory export; called as factory(...args)
//     "args": [ { "version": "7" } ],               // JSON; any {"$js": "<expression>"} is evaluated (functions, plugins)
//     "extension": {"$js": "({ name, onBuildComplete(){} })"}, // instead of module/export: an inline extension
//     "target": "deploy",                           // or "dev"; default "deploy"
//     "manifest": { "externals": [...], "deploy": { "env": {...} }, "runtime": "node", ... },
//     "config": { "project": "proj_x", ... },       // ResolvedConfig overrides
//     "workingDir": ".",                            // relative to projectDir (or absolute); default "."
//     "cwd": ".",                                   // process cwd while constructing/running; default workingDir
//     "env": { "VAR": "value", "OTHER": null }      // set (null = delete) in process.env before constructing
//   }
//
// What runs, in upstream's order (trigger.dev 3.3.17 build/buildWorker.js + build/extensions.js):
//   1. construct: factory(...args)
//   2. externalsForTarget(target)            (called synchronously, as build/externals.js does)
//   3. onBuildStart(context)                 (an error here is fatal upstream: onBuildComplete is skipped)
//   4. onBuildComplete(context, manifest)    (upstream catches and logs errors here)
//   5. the layers are merged into the manifest by upstream's own notifyExtensionOnBuildComplete /
//      applyLayerToManifest (imported from the project's trigger.dev package), start layers first.
//
// The BuildContext is shaped like upstream's createBuildContext(): target, config, workingDir, addLayer,
// registerPlugin (dropped when options.target differs from the build target), resolvePath (upstream's
// own build/resolveModule.js, i.e. mlly resolvePath(path, { url: workingDir }), undefined on error),
// logger { debug, log, warn, progress, spinner } -- all recorded instead of printed.
//
// stdout (single case): one JSON object
//   { id, name, target, externals, startLayers, completeLayers, logs, plugins, pluginRegistrations,
//     files, fileHashes, manifest, envChanges, error, outputPath, workingDir }
//   * externals: externalsForTarget(target) ([] when the extension has none or returns undefined)
//   * startLayers / completeLayers: layers passed to addLayer during onBuildStart / onBuildComplete,
//     JSON-cloned at the time of the call; undefined values inside objects are kept as null
//   * logs: [{ level, message, text }] in call order. level is debug | log | warn | progress | spinner |
//     spinner.message | spinner.stop | console.<method> | cli.error (upstream's own "Failed to apply
//     extension <name> onBuildComplete" after an onBuildComplete error). message = util.format(...args), exactly the
//     string upstream's logger prints (before esbuild's warning decoration); text = the first argument.
//     spinner.stop entries carry `code` when one was passed.
//   * plugins: names of the esbuild plugins kept by registerPlugin; pluginRegistrations: every call,
//     { name, options, kept }
//   * files: files under manifest.outputPath after the run (relative, "/"-separated, sorted);
//     fileHashes: { path: sha256 hex }
//   * manifest: the manifest after upstream's merge of all recorded layers (null if onBuildStart failed
//     or upstream's trigger.dev package is not installed in the project)
//   * envChanges: process.env keys the extension set or deleted ({ key: value | null })
//   * error: null, or { phase: "import"|"construct"|"externalsForTarget"|"onBuildStart"|"onBuildComplete", message }
// Exit code 0 whenever the case ran (even if the extension threw: see `error`); 2 on usage errors.
//
// --output-path sets manifest.outputPath (created if missing, must be empty); otherwise the case's
// manifest.outputPath (relative to projectDir), otherwise a fresh temporary directory that is removed
// afterwards unless --keep. --normalize replaces the outputPath, workingDir and projectDir in every
// string of the result with $OUTPUT_PATH, $WORKING_DIR and $PROJECT_DIR.
//
// --all runs every case of <cases.json> (default: tests/node/extension-cases.json) in
// <fixtures>/<case.project> (default fixtures dir: <repo>/fixtures), each in its own node process, and
// prints [{ id, project, ok, result }] (ok = the recorder ran; the extension may still have thrown).

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { format } from "node:util";

const SELF = fileURLToPath(import.meta.url);
const HERE = path.dirname(SELF);
const REPO = path.resolve(HERE, "..", "..");

function usage(msg) {
  if (msg) process.stderr.write(`record-extension: ${msg}\n`);
  process.stderr.write(
    "usage: node record-extension.mjs <projectDir> <case.json> [--case <id>] [--output-path <dir>] [--keep] [--normalize]\n" +
      "       node record-extension.mjs --all [<cases.json>] [--fixtures <dir>] [--normalize] [--only <id>...]\n"
  );
  process.exit(2);
}

// ------------------------------------------------------------------ args
const argv = process.argv.slice(2);
const positional = [];
let caseId;
let outputPathArg;
let keep = false;
let normalize = false;
let all = false;
let fixturesDir = path.join(REPO, "fixtures");
const only = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === "--case") caseId = argv[++i];
  else if (a === "--output-path") outputPathArg = argv[++i];
  else if (a === "--keep") keep = true;
  else if (a === "--normalize") normalize = true;
  else if (a === "--all") all = true;
  else if (a === "--fixtures") fixturesDir = path.resolve(argv[++i]);
  else if (a === "--only") only.push(argv[++i]);
  else if (a === "-h" || a === "--help") usage();
  else if (a.startsWith("-")) usage(`unknown option ${a}`);
  else positional.push(a);
}

function readCases(file) {
  let data;
  try {
    data = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    usage(`cannot read ${file}: ${e.message}`);
  }
  if (Array.isArray(data)) return { list: data };
  if (data && Array.isArray(data.cases)) return { list: data.cases };
  if (data && typeof data === "object") return { single: data };
  usage(`${file} is neither a case nor a list of cases`);
}

// ------------------------------------------------------------------ --all
if (all) {
  if (positional.length > 1) usage("--all takes at most one <cases.json>");
  const casesFile = path.resolve(positional[0] ?? path.join(HERE, "extension-cases.json"));
  const { list, single } = readCases(casesFile);
  const cases = (list ?? [single]).filter((c) => only.length === 0 || only.includes(c.id));
  const out = [];
  for (const c of cases) {
    if (!c.project) usage(`case ${c.id} has no "project"`);
    const projectDir = path.join(fixturesDir, c.project);
    const args = [SELF, projectDir, casesFile];
    if (list) args.push("--case", c.id);
    if (normalize) args.push("--normalize");
    const r = spawnSync(process.execPath, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    let result = null;
    try {
      result = JSON.parse(r.stdout);
    } catch {}
    const ok = r.status === 0 && result !== null;
    if (!ok) process.stderr.write(`record-extension: case ${c.id} failed (exit ${r.status})\n${r.stderr}\n`);
    out.push({ id: c.id, project: c.project, ok, result, ...(ok ? {} : { stderr: r.stderr }) });
  }
  // Synchronous write: process.exit() right after an async pipe write truncates large output.
  fs.writeSync(1, JSON.stringify(out, null, 2) + "\n");
  process.exit(out.every((o) => o.ok) ? 0 : 1);
}

// ------------------------------------------------------------------ single case
if (positional.length !== 2) usage("expected <projectDir> <case.json>");
const projectDir = fs.realpathSync(path.resolve(positional[0]));
const casesFile = path.resolve(positional[1]);
const { list, single } = readCases(casesFile);
let theCase = single;
if (list) {
  if (!caseId) usage(`${casesFile} holds ${list.length} cases: pick one with --case <id>`);
  theCase = list.find((c) => c.id === caseId);
  if (!theCase) usage(`no case with id ${caseId} in ${casesFile}`);
} else if (caseId && theCase.id !== caseId) {
  usage(`${casesFile} holds case ${theCase.id}, not ${caseId}`);
}

// Nothing but our JSON goes to stdout.
const realStdoutWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);

// upstream's logger (imported with trigger.dev's build/extensions.js) must stay quiet: it reads
// TRIGGER_LOG_LEVEL when the module is first loaded.
const savedLogLevel = process.env.TRIGGER_LOG_LEVEL;
process.env.TRIGGER_LOG_LEVEL = "none";

const target = theCase.target ?? "deploy";
if (target !== "deploy" && target !== "dev") usage(`target must be "deploy" or "dev", not ${target}`);
const workingDir = path.resolve(projectDir, theCase.workingDir ?? ".");
const runCwd = path.resolve(projectDir, theCase.cwd ?? theCase.workingDir ?? ".");

// Output directory (manifest.outputPath).
let outputPath;
let removeOutput = false;
if (outputPathArg || theCase.manifest?.outputPath) {
  outputPath = path.resolve(outputPathArg ? process.cwd() : projectDir, outputPathArg ?? theCase.manifest.outputPath);
  fs.mkdirSync(outputPath, { recursive: true });
  if (fs.readdirSync(outputPath).length > 0) usage(`${outputPath} is not empty`);
  outputPath = fs.realpathSync(outputPath);
} else {
  outputPath = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "record-extension-")));
  removeOutput = !keep;
}

// ------------------------------------------------------------------ project modules
const projectRequire = createRequire(path.join(projectDir, "package.json"));

function tryResolvePackageDir(name) {
  try {
    return path.dirname(projectRequire.resolve(`${name}/package.json`));
  } catch {
    return undefined;
  }
}

const cliDir = tryResolvePackageDir("trigger.dev");
const cliDist = cliDir ? path.join(cliDir, "dist", "esm") : undefined;
const importCli = async (rel) => {
  if (!cliDist || !fs.existsSync(path.join(cliDist, rel))) return undefined;
  return import(pathToFileURL(path.join(cliDist, rel)).href);
};

let mlly;
try {
  mlly = projectRequire("mlly");
} catch {}

// ESM resolution of the extension module from the project (conditions node + import), like the
// config would import it.
async function resolveFromProject(specifier) {
  if (mlly) {
    try {
      return await mlly.resolvePath(specifier, { url: pathToFileURL(path.join(projectDir, "package.json")).href });
    } catch {}
  }
  return projectRequire.resolve(specifier);
}

// BuildContext.resolvePath: upstream's own build/resolveModule.js when available.
const resolveModuleMod = await importCli("build/resolveModule.js").catch(() => undefined);
async function resolvePathLikeUpstream(p) {
  try {
    if (resolveModuleMod?.resolveModule) return await resolveModuleMod.resolveModule(p, workingDir);
    if (mlly) return await mlly.resolvePath(p, { url: workingDir });
    return createRequire(path.join(workingDir, "noop.js")).resolve(p);
  } catch {
    return undefined;
  }
}

const upstreamExtensions = await importCli("build/extensions.js").catch(() => undefined);

// ------------------------------------------------------------------ helpers
function evalArgs(value) {
  if (Array.isArray(value)) return value.map(evalArgs);
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$js") {
      // Indirect eval: global scope.
      return (0, eval)(`(${value.$js})`);
    }
    return Object.fromEntries(keys.map((k) => [k, evalArgs(value[k])]));
  }
  return value;
}

// JSON-safe deep copy. Object properties whose value is undefined are kept as null (upstream
// keeps such keys, e.g. prisma's DIRECT_URL, and they become ARG/ENV lines).
function jsonSafe(value, seen = new WeakSet()) {
  if (value === undefined) return null;
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value);
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "function") return `[Function ${value.name || "anonymous"}]`;
  if (typeof value === "symbol") return value.toString();
  if (value instanceof Error) return { error: value.message };
  if (seen.has(value)) return "[Circular]";
  seen.add(value);
  let out;
  if (Array.isArray(value)) out = value.map((v) => jsonSafe(v, seen));
  else {
    out = {};
    for (const [k, v] of Object.entries(value)) out[k] = jsonSafe(v, seen);
  }
  seen.delete(value);
  return out;
}

const logs = [];
const record = (level, args, extra) =>
  logs.push({
    level,
    message: format(...args),
    text: typeof args[0] === "string" ? args[0] : format(args[0]),
    ...(extra ?? {}),
  });

// Console output of the extension itself (e.g. additionalPackages' console.warn) is recorded too.
const consoleMethods = ["log", "info", "warn", "error", "debug"];
const realConsole = Object.fromEntries(consoleMethods.map((m) => [m, console[m]]));
let capturing = false;
for (const m of consoleMethods) {
  console[m] = (...args) => {
    if (capturing) record(`console.${m}`, args);
    else realConsole[m](...args);
  };
}
async function capture(fn) {
  capturing = true;
  try {
    return await fn();
  } finally {
    capturing = false;
  }
}

// ------------------------------------------------------------------ environment
if (savedLogLevel === undefined) delete process.env.TRIGGER_LOG_LEVEL;
else process.env.TRIGGER_LOG_LEVEL = savedLogLevel;
for (const [k, v] of Object.entries(theCase.env ?? {})) {
  if (v === null) delete process.env[k];
  else process.env[k] = String(v);
}
const envAfterSetup = { ...process.env };
process.chdir(runCwd);

// ------------------------------------------------------------------ build context
const result = {
  id: theCase.id ?? null,
  name: null,
  target,
  externals: [],
  startLayers: [],
  completeLayers: [],
  logs,
  plugins: [],
  pluginRegistrations: [],
  files: [],
  fileHashes: {},
  manifest: null,
  envChanges: {},
  error: null,
  outputPath,
  workingDir,
};

const config = {
  project: "proj_recordextension",
  dirs: ["trigger"],
  workingDir,
  configFile: path.join(workingDir, "trigger.config.ts"),
  runtime: theCase.manifest?.runtime ?? "node",
  maxDuration: 60,
  instrumentedPackageNames: [],
  build: {
    extensions: [],
    external: [],
    conditions: [],
    jsx: { factory: "React.createElement", fragment: "React.Fragment", automatic: true },
  },
  ...(theCase.config ?? {}),
};

let phase = "construct";
const pendingLayers = [];
const registered = [];
let extensionsForNotify = [];
const context = {
  target,
  config,
  workingDir,
  addLayer(layer) {
    (phase === "onBuildStart" ? result.startLayers : result.completeLayers).push(jsonSafe(layer));
    pendingLayers.push(layer);
  },
  getLayers() {
    return pendingLayers;
  },
  clearLayers() {
    pendingLayers.splice(0);
  },
  registerPlugin(plugin, options) {
    const kept = !(options?.target && options.target !== target);
    result.pluginRegistrations.push({ name: plugin?.name ?? null, options: jsonSafe(options ?? {}), kept });
    if (kept) registered.push({ plugin, ...options });
  },
  getPlugins() {
    return registered;
  },
  resolvePath: resolvePathLikeUpstream,
  getExtensions() {
    return extensionsForNotify;
  },
  appendExtension(extension) {
    extensionsForNotify.push(extension);
  },
  prependExtension(extension) {
    extensionsForNotify.unshift(extension);
  },
  logger: {
    debug: (...args) => record("debug", args),
    log: (...args) => record("log", args),
    warn: (...args) => record("warn", args),
    progress: (message) => record("progress", [message]),
    spinner: (message) => {
      record("spinner", [message]);
      return {
        start: (m) => record("spinner.start", [m]),
        message: (m) => record("spinner.message", [m]),
        stop: (m, code) => record("spinner.stop", [m], code === undefined ? undefined : { code }),
      };
    },
  },
};

const defaultManifest = {
  contentHash: "record-extension",
  runtime: config.runtime,
  environment: "prod",
  packageVersion: "3.3.17",
  cliPackageVersion: "3.3.17",
  target,
  files: [],
  sources: {},
  config: { project: config.project, dirs: config.dirs },
  outputPath,
  runControllerEntryPoint: path.join(outputPath, "deploy-run-controller.mjs"),
  runWorkerEntryPoint: path.join(outputPath, "deploy-run-worker.mjs"),
  indexControllerEntryPoint: path.join(outputPath, "deploy-index-controller.mjs"),
  indexWorkerEntryPoint: path.join(outputPath, "deploy-index-worker.mjs"),
  configPath: path.join(outputPath, "trigger.config.mjs"),
  customConditions: [],
  deploy: { env: {} },
  build: {},
  otelImportHook: { include: [] },
  externals: [],
};
const caseManifest = structuredClone(theCase.manifest ?? {});
delete caseManifest.outputPath;
const manifest = {
  ...defaultManifest,
  ...caseManifest,
  deploy: { ...defaultManifest.deploy, ...(caseManifest.deploy ?? {}) },
  outputPath,
};

const errMessage = (e) => (e && typeof e === "object" && "message" in e ? String(e.message) : String(e));

// ------------------------------------------------------------------ run
let extension;
try {
  let factory;
  if (theCase.extension !== undefined) {
    phase = "construct";
    extension = await capture(() => evalArgs(theCase.extension));
  } else {
    if (!theCase.module || !theCase.export) usage("a case needs module + export, or extension");
    phase = "import";
    const file = await resolveFromProject(theCase.module);
    const mod = await import(pathToFileURL(file).href);
    factory = mod[theCase.export];
    if (typeof factory !== "function") throw new Error(`${theCase.module} has no function export ${theCase.export}`);
    phase = "construct";
    const args = evalArgs(theCase.args ?? []);
    extension = await capture(() => factory(...args));
  }
  result.name = extension?.name ?? null;
  config.build.extensions = [extension];

  // Upstream (build/externals.js discoverMaybeExternals) calls it synchronously and iterates the
  // result with for...of: a Promise (the documented `async (target) => [...]` form) throws
  // "TypeError: (moduleExternals ?? []) is not iterable" and aborts the build.
  phase = "externalsForTarget";
  let externals;
  if (extension.externalsForTarget) {
    capturing = true;
    try {
      externals = extension.externalsForTarget(target);
    } finally {
      capturing = false;
    }
  }
  if (externals != null && typeof externals[Symbol.iterator] !== "function") {
    throw new TypeError("(moduleExternals ?? []) is not iterable");
  }
  result.externals = jsonSafe([...(externals ?? [])]);

  phase = "onBuildStart";
  if (extension.onBuildStart) await capture(() => extension.onBuildStart(context));

  phase = "onBuildComplete";
  let completeError = null;
  const wrapped = {
    name: extension.name,
    ...(extension.onBuildComplete
      ? {
          async onBuildComplete(ctx, m) {
            try {
              await capture(() => extension.onBuildComplete(ctx, m));
            } catch (e) {
              completeError = e;
              throw e;
            }
          },
        }
      : {}),
  };
  // A trailing no-op extension makes upstream apply the layers still pending (start layers of an
  // extension without onBuildComplete, or layers added before an onBuildComplete error), as the
  // next extension of a real build would.
  const flush = { name: "record-extension-flush", onBuildComplete() {} };
  extensionsForNotify = [wrapped, flush];
  if (upstreamExtensions?.notifyExtensionOnBuildComplete) {
    result.manifest = jsonSafe(await upstreamExtensions.notifyExtensionOnBuildComplete(context, manifest));
  } else {
    await wrapped.onBuildComplete?.(context, manifest);
  }
  if (completeError) {
    result.error = { phase: "onBuildComplete", message: errMessage(completeError) };
    // What upstream's notifyExtensionOnBuildComplete logs (logger.error) before carrying on.
    record("cli.error", [`Failed to apply extension ${extension.name} onBuildComplete`, completeError]);
  }
} catch (e) {
  result.error = { phase, message: errMessage(e) };
  if (process.env.RECORD_EXTENSION_DEBUG) realConsole.error(e);
}

// ------------------------------------------------------------------ collect
function walk(dir, base = dir, out = []) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full, base, out);
    else out.push(path.relative(base, full).split(path.sep).join("/"));
  }
  return out;
}
result.files = walk(outputPath).sort();
for (const f of result.files) {
  result.fileHashes[f] = createHash("sha256").update(fs.readFileSync(path.join(outputPath, f))).digest("hex");
}
for (const k of new Set([...Object.keys(envAfterSetup), ...Object.keys(process.env)])) {
  if (k === "TRIGGER_LOG_LEVEL") continue;
  if (envAfterSetup[k] !== process.env[k]) result.envChanges[k] = process.env[k] ?? null;
}
result.plugins = result.pluginRegistrations.filter((r) => r.kept).map((r) => r.name);

let output = result;
if (normalize) {
  const pairs = [
    [outputPath, "$OUTPUT_PATH"],
    [workingDir, "$WORKING_DIR"],
    [projectDir, "$PROJECT_DIR"],
  ].sort((a, b) => b[0].length - a[0].length);
  // A path is replaced only where it ends: at the end of the string or before a character that
  // cannot continue a file name ("/work/p" in "/work/p-shared/x" is left alone).
  const patterns = pairs.map(([from, to]) => [
    new RegExp(from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "(?![\\w.-])", "g"),
    to,
  ]);
  const fix = (v) => {
    if (typeof v === "string") {
      for (const [re, to] of patterns) v = v.replace(re, () => to);
      return v;
    }
    if (Array.isArray(v)) return v.map(fix);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [fix(k), fix(x)]));
    return v;
  };
  output = fix(result);
}

if (removeOutput) fs.rmSync(outputPath, { recursive: true, force: true });
process.chdir(HERE);
await new Promise((r) => realStdoutWrite(JSON.stringify(output, null, 2) + "\n", r));
process.exit(0);
