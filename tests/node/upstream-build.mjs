#!/usr/bin/env node
// Differential oracle: build a Trigger.dev v3 project for target "deploy" with
// upstream's own code, i.e. the project's installed `trigger.dev` CLI package
// (3.3.17) and the esbuild it depends on.
//
//   node tests/node/upstream-build.mjs <projectDir> <outDir> [--config <file>] [--debug]
//
// What runs (all from <project>/node_modules/trigger.dev/dist/esm/):
//   config.js            loadConfig({ cwd, configFile, overrides })   -> c12/jiti + resolveConfig
//   utilities/dotEnv.js  loadDotEnvVars(workingDir)                    (as `deploy` does)
//   build/externals.js   resolveAlwaysExternal(client)                 forced-externals list
//   build/buildWorker.js buildWorker({ target: "deploy", rewritePaths: true, ... })
//                          -> createExternalsBuildExtension, extensions, bundleWorker (esbuild),
//                             manifest, path rewrite to /app/..., package.json, build.json, Containerfile
// This is exactly the sequence of commands/deploy.js (`deployCommand` -> `_deployCommand`)
// between "Resolved config" and "Dry run complete", minus login/API calls:
//   * the server env vars are `{}` (deploy passes `serverEnvVars.data.variables`);
//   * the forced-externals fetch (a hard-coded public URL) is replaced by a client whose
//     `retrieveExternals()` fails at once, so upstream falls back to its built-in
//     `alwaysExternal` list (["import-in-the-middle", "header-generator"]). Going through the
//     real ApiClient would retry 5 times with back-off (~7.5 s) before falling back.
//   * global `fetch` is stubbed to reject every non-loopback request, so nothing can hang.
//
// stdout: one JSON object
//   { "taskFiles": [...], "externals": [{name,version}], "outputs": [...], "outDir", "configFile", "manifest": {...summary} }
// Everything upstream prints (its logger writes to stdout) is redirected to stderr.

import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

function usage(msg) {
  if (msg) process.stderr.write(`upstream-build: ${msg}\n`);
  process.stderr.write(
    "usage: node upstream-build.mjs <projectDir> <outDir> [--config <file>] [--env <name>] [--debug]\n"
  );
  process.exit(2);
}

const args = process.argv.slice(2);
const positional = [];
let configFile;
let environment = "prod";
let debug = false;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === "--config" || a === "-c") {
    configFile = args[++i];
    if (!configFile) usage("--config needs a value");
  } else if (a.startsWith("--config=")) {
    configFile = a.slice("--config=".length);
  } else if (a === "--env") {
    environment = args[++i];
  } else if (a === "--debug") {
    debug = true;
  } else if (a === "-h" || a === "--help") {
    usage();
  } else if (a.startsWith("-")) {
    usage(`unknown option ${a}`);
  } else {
    positional.push(a);
  }
}
if (positional.length !== 2) usage("expected <projectDir> <outDir>");

const projectDir = path.resolve(positional[0]);
// Resolve before chdir(projectDir) below.
const outDirArg = path.resolve(positional[1]);
if (!fs.existsSync(path.join(projectDir, "package.json"))) {
  usage(`${projectDir} has no package.json`);
}

// Keep stdout for our JSON summary only: upstream's logger (and anything else) goes to stderr.
const realStdoutWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);
function emit(obj) {
  return new Promise((resolve) => realStdoutWrite(JSON.stringify(obj, null, 2) + "\n", resolve));
}

// No network: anything that is not loopback is refused immediately.
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const url = typeof input === "string" ? input : input?.url ?? String(input);
  let host = "";
  try {
    host = new URL(url).hostname;
  } catch {}
  if (host === "localhost" || host === "127.0.0.1" || host === "[::1]" || host === "::1") {
    return realFetch(input, init);
  }
  throw new TypeError(`fetch failed (network disabled by upstream-build.mjs: ${url})`);
};

if (debug) process.env.TRIGGER_LOG_LEVEL = "debug";
// Must be set before upstream's logger module is imported.
process.env.TRIGGER_LOG_LEVEL ??= "log";

// Locate the project's own trigger.dev package (Node upward resolution from the project).
const projectRequire = createRequire(path.join(projectDir, "package.json"));
let cliPkgJsonPath;
try {
  cliPkgJsonPath = projectRequire.resolve("trigger.dev/package.json");
} catch (e) {
  usage(`cannot resolve trigger.dev from ${projectDir}; run \`npm ci\` there first (${e.message})`);
}
const cliDir = path.dirname(cliPkgJsonPath);
const cliPkg = JSON.parse(fs.readFileSync(cliPkgJsonPath, "utf8"));
const dist = path.join(cliDir, "dist", "esm");
const load = (rel) => import(pathToFileURL(path.join(dist, rel)).href);

const [{ loadConfig }, { buildWorker }, { resolveAlwaysExternal }, { loadDotEnvVars }] =
  await Promise.all([
    load("config.js"),
    load("build/buildWorker.js"),
    load("build/externals.js"),
    load("utilities/dotEnv.js"),
  ]);

// `deploy` is normally run from the project directory; some extensions read process.cwd().
process.chdir(projectDir);

const resolvedConfig = await loadConfig({
  cwd: projectDir,
  overrides: { project: undefined },
  configFile,
});

loadDotEnvVars(resolvedConfig.workingDir, undefined);

fs.mkdirSync(outDirArg, { recursive: true });
if (fs.readdirSync(outDirArg).length > 0) {
  usage(`${outDirArg} is not empty`);
}
// upstream: getTmpDir() returns realpathSync(mkdtempSync(...))
const destination = fs.realpathSync(outDirArg);

const offlineClient = {
  async retrieveExternals() {
    return { success: false, error: "network disabled by upstream-build.mjs" };
  },
};
const forcedExternals = await resolveAlwaysExternal(offlineClient);

const started = Date.now();
const manifest = await buildWorker({
  target: "deploy",
  environment,
  destination,
  resolvedConfig,
  rewritePaths: true,
  envVars: {},
  forcedExternals,
  listener: {
    onBundleStart() {
      process.stderr.write("upstream-build: Building trigger code\n");
    },
    onBundleComplete() {
      process.stderr.write("upstream-build: Successfully built code\n");
    },
  },
});
const elapsedMs = Date.now() - started;

function walk(dir, base = dir, out = []) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full, base, out);
    else out.push(path.relative(base, full).split(path.sep).join("/"));
  }
  return out;
}

const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

await emit({
  taskFiles: manifest.files.map((f) => f.entry).sort(),
  externals: (manifest.externals ?? [])
    .map(({ name, version }) => ({ name, version }))
    .sort(byName),
  outputs: walk(destination).sort(),
  outDir: destination,
  configFile: resolvedConfig.configFile ? path.relative(projectDir, resolvedConfig.configFile) : null,
  cli: { name: cliPkg.name, version: cliPkg.version, dir: cliDir },
  forcedExternals,
  elapsedMs,
  manifest: {
    packageVersion: manifest.packageVersion,
    cliPackageVersion: manifest.cliPackageVersion,
    contentHash: manifest.contentHash,
    runtime: manifest.runtime,
    config: manifest.config,
    customConditions: manifest.customConditions,
    configPath: manifest.configPath,
    runWorkerEntryPoint: manifest.runWorkerEntryPoint,
    runControllerEntryPoint: manifest.runControllerEntryPoint,
    indexWorkerEntryPoint: manifest.indexWorkerEntryPoint,
    indexControllerEntryPoint: manifest.indexControllerEntryPoint,
    loaderEntryPoint: manifest.loaderEntryPoint ?? null,
    files: manifest.files,
  },
});
// esbuild's service / signal-exit handlers must not keep us alive.
process.exit(0);
