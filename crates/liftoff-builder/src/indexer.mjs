// liftoff's indexer: what upstream's deploy-index-controller does inside the
// image, without the platform. Run with the app dir as cwd:
//   node indexer.mjs <build.json> <index.json out> [timeoutMs]
// Forks the bundled index worker with an IPC channel (the worker reports only
// over IPC), with upstream's env and NODE_OPTIONS, and writes index.json
// (the worker manifest, pretty-printed with 2 spaces). Prints one JSON line:
// {"ok":true,"tasks":[{"id","filePath","exportName"}...]} or
// {"ok":false,"error":"...","stderr":"..."}; exits 1 on failure.
import { fork } from "node:child_process";
import fs from "node:fs";
import { pathToFileURL } from "node:url";

const [manifestPath, outPath, timeoutArg] = process.argv.slice(2);
const timeoutMs = Number(timeoutArg ?? 20000);
const manifest = JSON.parse(fs.readFileSync(manifestPath, "utf8"));

function finish(result) {
  fs.writeSync(1, JSON.stringify(result) + "\n");
  process.exit(result.ok ? 0 : 1);
}

const nodeOptions = [
  manifest.loaderEntryPoint ? `--import=${pathToFileURL(manifest.loaderEntryPoint).href}` : undefined,
  ...(manifest.customConditions ?? []).map((c) => `--conditions=${c}`),
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

let stderr = "";
const child = fork(manifest.indexWorkerEntryPoint, [], { env, execArgv: [], stdio: ["ignore", "pipe", "pipe", "ipc"] });
child.stdout.on("data", (d) => (stderr += d));
child.stderr.on("data", (d) => (stderr += d));
const tail = () => stderr.split("\n").slice(-40).join("\n");
const timer = setTimeout(() => {
  child.kill("SIGKILL");
  finish({ ok: false, error: `the index worker did not finish within ${timeoutMs / 1000} s`, stderr: tail() });
}, timeoutMs);

child.on("message", (msg) => {
  if (!msg || typeof msg !== "object" || !msg.type) return;
  clearTimeout(timer);
  child.kill();
  if (msg.type === "INDEX_COMPLETE") {
    const { manifest: workerManifest, importErrors = [] } = msg.payload;
    if (importErrors.length > 0) {
      const first = importErrors
        .map((e) => `${e.file}: ${e.message}${e.stack ? "\n" + e.stack : ""}`)
        .join("\n\n");
      finish({ ok: false, error: `could not import ${importErrors.length} task file(s):\n${first}`, stderr: tail() });
    }
    const seen = new Map();
    for (const t of workerManifest.tasks ?? []) {
      if (seen.has(t.id)) {
        finish({ ok: false, error: `duplicate task id "${t.id}" in ${seen.get(t.id)} and ${t.filePath}`, stderr: tail() });
      }
      seen.set(t.id, t.filePath);
    }
    fs.writeFileSync(outPath, JSON.stringify(workerManifest, null, 2));
    finish({
      ok: true,
      tasks: (workerManifest.tasks ?? []).map((t) => ({ id: t.id, filePath: t.filePath, exportName: t.exportName })),
    });
  } else if (msg.type === "TASKS_FAILED_TO_PARSE") {
    finish({ ok: false, error: `task metadata failed to parse: ${JSON.stringify(msg.payload).slice(0, 4000)}`, stderr: tail() });
  } else if (msg.type === "UNCAUGHT_EXCEPTION") {
    const e = msg.payload?.error ?? msg.payload;
    finish({ ok: false, error: `uncaught exception while indexing: ${e?.message ?? JSON.stringify(e)}\n${e?.stack ?? ""}`, stderr: tail() });
  }
});
child.on("error", (e) => finish({ ok: false, error: String(e), stderr: tail() }));
child.on("exit", (code, signal) => {
  clearTimeout(timer);
  finish({ ok: false, error: `the index worker exited (code ${code}, signal ${signal}) without reporting`, stderr: tail() });
});
