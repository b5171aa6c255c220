// liftoff's Node sidecar: runs the custom build extensions of a trigger.config.
//
// Started as `node --input-type=module -e <this file> <prefix>` with the project
// dir as cwd. Protocol: newline-delimited JSON.
//   stdin  (liftoff → node): {"id": n, "method": "...", "params": {...}}
//   stdout (node → liftoff): <prefix>{"id": n, "result": ...}
//                            <prefix>{"id": n, "error": {"name", "message", "stack"}}
//                            <prefix>{"method": "log", "params": {"level", "message"}}
// Only lines carrying <prefix> are protocol messages; anything else on stdout
// (a child process inheriting fd 1, say) is shown as a log line. console.* and
// process.stdout.write are redirected to log notifications.
// Methods: init, describe, externalsForTarget, onBuildStart, onBuildComplete.

import { Console } from "node:console";
import * as nodeModule from "node:module";
import * as path from "node:path";
import * as readline from "node:readline";
import { Writable } from "node:stream";
import { pathToFileURL } from "node:url";
import * as util from "node:util";

const PREFIX = process.argv[1] ?? "";
// `-e <script>` must not leak into child Node processes started with fork().
process.execArgv.splice(0);

const rawWrite = process.stdout.write.bind(process.stdout);

function send(message) {
  let line;
  try {
    line = JSON.stringify(message);
  } catch (error) {
    line = JSON.stringify({
      id: message.id,
      error: { name: "Error", message: `liftoff could not serialise the reply: ${String(error)}`, stack: null },
    });
  }
  rawWrite(`${PREFIX}${line}\n`);
}

function emitLog(level, message) {
  send({ method: "log", params: { level, message: String(message) } });
}

// ---------------------------------------------------------------------------
// Output redirection.

// Console writes each call's output in one write, so one write is one log line.
function sink(level) {
  return new Writable({
    decodeStrings: false,
    write(chunk, _encoding, callback) {
      emitLog(level, String(chunk).replace(/\n$/, ""));
      callback();
    },
  });
}

const redirected = new Console({ stdout: sink("log"), stderr: sink("warn"), colorMode: false });
for (const key of Object.keys(console)) {
  if (typeof redirected[key] === "function") {
    console[key] = redirected[key].bind(redirected);
  }
}
console.debug = (...args) => emitLog("debug", util.format(...args));

let partialStdout = "";
process.stdout.write = function write(chunk, encoding, callback) {
  const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString(typeof encoding === "string" ? encoding : "utf8");
  partialStdout += text;
  const lines = partialStdout.split("\n");
  partialStdout = lines.pop() ?? "";
  for (const line of lines) {
    emitLog("log", line);
  }
  const cb = typeof encoding === "function" ? encoding : callback;
  if (typeof cb === "function") {
    process.nextTick(cb);
  }
  return true;
};

function flushStdout() {
  if (partialStdout !== "") {
    emitLog("log", partialStdout);
    partialStdout = "";
  }
}

process.on("uncaughtException", (error) => {
  emitLog("warn", `Uncaught exception in a build extension: ${describeThrown(error)}`);
});
process.on("unhandledRejection", (reason) => {
  emitLog("warn", `Unhandled promise rejection in a build extension: ${describeThrown(reason)}`);
});

function describeThrown(error) {
  if (error && typeof error === "object" && typeof error.stack === "string") {
    return error.stack;
  }
  return util.inspect(error);
}

function serializeError(error) {
  if (error && typeof error === "object") {
    const name = typeof error.name === "string" ? error.name : "Error";
    const message = typeof error.message === "string" ? error.message : util.inspect(error);
    let stack = typeof error.stack === "string" ? error.stack : null;
    if (error.cause !== undefined && stack !== null) {
      stack += `\nCaused by: ${describeThrown(error.cause)}`;
    }
    return { name, message, stack };
  }
  return { name: "Error", message: `a non-Error value was thrown: ${util.inspect(error)}`, stack: null };
}

// ---------------------------------------------------------------------------
// State.

let options = null; // { configModule, workingDir, resolvedConfig }
let loaded = null; // { config, extensions, instrumentedPackageNames }

const HOOKS = ["externalsForTarget", "onBuildStart", "onBuildComplete"];

const isBuiltin =
  typeof nodeModule.isBuiltin === "function"
    ? nodeModule.isBuiltin
    : (name) => nodeModule.builtinModules.includes(name.startsWith("node:") ? name.slice(5) : name);

// Upstream's syncEnvVars (@trigger.dev/build 3.3.17), used only for the deprecated
// top-level `resolveEnvVars` option, exactly as upstream's validateConfig does.
const UNSYNCABLE_ENV_VARS = [
  "PWD", "MallocNanoZone", "USER", "LANG", "__CFBundleIdentifier", "COMMAND_MODE", "PATH", "LOGNAME",
  "SSLKEYLOGFILE", "SSH_AUTH_SOCK", "SHLVL", "SHELL", "HOME", "__CF_USER_TEXT_ENCODING", "XPC_SERVICE_NAME",
  "XPC_FLAGS", "ORIGINAL_XDG_CURRENT_DESKTOP", "TERM_PROGRAM", "TERM_PROGRAM_VERSION", "COLORTERM",
  "GIT_ASKPASS", "VSCODE_GIT_ASKPASS_NODE", "VSCODE_GIT_ASKPASS_EXTRA_ARGS", "VSCODE_GIT_ASKPASS_MAIN",
  "VSCODE_GIT_IPC_HANDLE", "VSCODE_INJECTION", "ZDOTDIR", "USER_ZDOTDIR", "TERM", "OLDPWD", "HOMEBREW_PREFIX",
  "HOMEBREW_CELLAR", "HOMEBREW_REPOSITORY", "MANPATH", "INFOPATH", "__GIT_PROMPT_DIR", "GIT_PROMPT_EXECUTABLE",
  "NVM_DIR", "NVM_CD_FLAGS", "NVM_BIN", "NVM_INC", "BUN_INSTALL", "DENO_INSTALL", "GITHUB_TOKEN", "TMPDIR", "_",
];
const UNSYNCABLE_ENV_VARS_PREFIXES = ["TRIGGER_"];

function syncEnvVars(fn, syncOptions) {
  return {
    name: "SyncEnvVarsExtension",
    async onBuildComplete(context, manifest) {
      if (context.target === "dev") {
        return;
      }
      const $spinner = context.logger.spinner("Invoking syncEnvVars callback");
      const result = await callSyncEnvVarsFn(fn, manifest.deploy.env ?? {}, manifest.environment, context);
      if (!result) {
        $spinner.stop("No env vars detected");
        return;
      }
      const env = Object.entries(result).reduce((acc, [key, value]) => {
        if (UNSYNCABLE_ENV_VARS.includes(key)) {
          return acc;
        }
        if (UNSYNCABLE_ENV_VARS_PREFIXES.some((prefix) => key.startsWith(prefix))) {
          return acc;
        }
        acc[key] = value;
        return acc;
      }, {});
      const numberOfEnvVars = Object.keys(env).length;
      if (numberOfEnvVars === 0) {
        $spinner.stop("No env vars detected");
        return;
      } else if (numberOfEnvVars === 1) {
        $spinner.stop(`Found 1 env var`);
      } else {
        $spinner.stop(`Found ${numberOfEnvVars} env vars to sync`);
      }
      context.addLayer({ id: "sync-env-vars", deploy: { env, override: syncOptions?.override ?? true } });
    },
  };
}

async function callSyncEnvVarsFn(syncEnvVarsFn, env, environment, context) {
  if (syncEnvVarsFn && typeof syncEnvVarsFn === "function") {
    let resolvedEnvVars = {};
    let result;
    try {
      result = await syncEnvVarsFn({ projectRef: context.config.project, environment, env });
    } catch (error) {
      context.logger.warn("Error calling syncEnvVars function", error);
    }
    if (!result) {
      return;
    }
    if (Array.isArray(result)) {
      for (const item of result) {
        if (
          typeof item === "object" && item !== null && "name" in item && "value" in item &&
          typeof item.name === "string" && typeof item.value === "string"
        ) {
          resolvedEnvVars[item.name] = item.value;
        }
      }
    } else if (result) {
      resolvedEnvVars = result;
    }
    return resolvedEnvVars;
  }
  return;
}

// ---------------------------------------------------------------------------
// Loading the config.

async function load() {
  if (loaded) {
    return loaded;
  }
  if (!options) {
    throw new Error("the sidecar was not initialised");
  }
  const mod = await import(pathToFileURL(options.configModule).href);
  let userConfig = mod.default !== undefined ? mod.default : mod.config;
  if (typeof userConfig === "function") {
    userConfig = await userConfig();
  }
  if (!userConfig || typeof userConfig !== "object") {
    throw new Error(
      `${options.configModule} has no config object: expected \`export default defineConfig({...})\` or \`export const config = {...}\``,
    );
  }

  // build.extensions plus what upstream's validateConfig appends for deprecated
  // options, in the same order, so indices match liftoff's static view.
  const extensions = Array.isArray(userConfig.build?.extensions) ? [...userConfig.build.extensions] : [];
  if (userConfig.additionalFiles && userConfig.additionalFiles.length > 0) {
    extensions.push({ name: "AdditionalFiles" }); // runs natively in liftoff
  }
  if (userConfig.additionalPackages && userConfig.additionalPackages.length > 0) {
    extensions.push({ name: "AdditionalPackages" }); // runs natively in liftoff
  }
  if ("resolveEnvVars" in userConfig && typeof userConfig.resolveEnvVars === "function") {
    const resolveEnvVarsFn = userConfig.resolveEnvVars;
    extensions.push(
      syncEnvVars(
        async (ctx) => {
          const resolveEnvVarsResult = await resolveEnvVarsFn(ctx);
          if (!resolveEnvVarsResult) {
            return;
          }
          return resolveEnvVarsResult.variables;
        },
        { override: true },
      ),
    );
  }

  const instrumentedPackageNames = [];
  const instrumentations = userConfig.telemetry?.instrumentations ?? userConfig.instrumentations ?? [];
  if (Array.isArray(instrumentations)) {
    instrumentations.forEach((instrumentation, i) => {
      let definitions;
      try {
        definitions = instrumentation?.getModuleDefinitions?.();
      } catch (error) {
        const wrapped = new Error(`telemetry.instrumentations[${i}].getModuleDefinitions() threw: ${error?.message ?? String(error)}`);
        wrapped.cause = error;
        throw wrapped;
      }
      if (!Array.isArray(definitions)) {
        return;
      }
      for (const definition of definitions) {
        const name = definition?.name;
        if (typeof name === "string" && !isBuiltin(name) && !instrumentedPackageNames.includes(name)) {
          instrumentedPackageNames.push(name);
        }
      }
    });
  }

  // context.config: the resolved config liftoff computed, over the live user
  // config (functions, instrumentation objects), with the live extensions.
  const { raw: _raw, dirsSource: _dirsSource, hasInstrumentations: _has, warnings: _warnings, ...resolved } =
    options.resolvedConfig && typeof options.resolvedConfig === "object" ? options.resolvedConfig : {};
  const config = {
    ...userConfig,
    ...resolved,
    build: { ...(userConfig.build ?? {}), ...(resolved.build ?? {}), extensions },
    instrumentedPackageNames,
  };
  loaded = { config, extensions, instrumentedPackageNames };
  return loaded;
}

function extensionAt(index) {
  const extension = loaded.extensions[index];
  if (!extension || typeof extension !== "object") {
    throw new Error(`build.extensions[${index}] is not an extension object (the config has ${loaded.extensions.length} extensions)`);
  }
  return extension;
}

// ---------------------------------------------------------------------------
// BuildContext.

let mlly; // undefined: not looked up yet; null: not available

function loadMlly() {
  if (mlly === undefined) {
    try {
      mlly = nodeModule.createRequire(path.join(options.workingDir, "_index.js"))("mlly");
      if (typeof mlly?.resolvePath !== "function") {
        mlly = null;
      }
    } catch {
      mlly = null;
    }
  }
  return mlly;
}

async function resolvePathFromWorkingDir(specifier) {
  // Upstream: mlly's resolvePath(path, { url: workingDir }). Use the project's own
  // mlly when it has one (trigger.dev depends on it), else Node's resolver.
  const found = loadMlly();
  if (found) {
    return await found.resolvePath(specifier, { url: options.workingDir });
  }
  return nodeModule.createRequire(path.join(options.workingDir, "_index.js")).resolve(specifier);
}

function envToJson(env, deploy) {
  if (!env || typeof env !== "object") {
    return env;
  }
  return Object.fromEntries(
    Object.entries(env).map(([key, value]) => {
      if (value === undefined || value === null || (deploy && !value)) {
        return [key, null]; // undefined keys are kept; falsy deploy values are skipped by the merger
      }
      return [key, String(value)];
    }),
  );
}

function normalizeLayer(layer) {
  if (!layer || typeof layer !== "object") {
    throw new TypeError(`addLayer() expects a layer object, got ${layer === null ? "null" : typeof layer}`);
  }
  const copy = { ...layer, id: String(layer.id ?? "") };
  if (layer.build && typeof layer.build === "object") {
    copy.build = { ...layer.build, env: envToJson(layer.build.env, false) };
  }
  if (layer.deploy && typeof layer.deploy === "object") {
    copy.deploy = { ...layer.deploy, env: envToJson(layer.deploy.env, true) };
    if (layer.deploy.override !== undefined) {
      copy.deploy.override = Boolean(layer.deploy.override);
    }
  }
  if (layer.dependencies && typeof layer.dependencies === "object") {
    copy.dependencies = Object.fromEntries(Object.entries(layer.dependencies).map(([k, v]) => [k, String(v)]));
  }
  return JSON.parse(JSON.stringify(copy, (_key, value) => (typeof value === "bigint" ? String(value) : value)));
}

function formatArgs(args) {
  return util.format(...args);
}

function createContext(target) {
  const layers = [];
  const plugins = [];
  const context = {
    target,
    config: loaded.config,
    workingDir: options.workingDir,
    logger: {
      debug: (...args) => emitLog("debug", formatArgs(args)),
      log: (...args) => emitLog("log", formatArgs(args)),
      warn: (...args) => emitLog("warn", formatArgs(args)),
      progress: (message) => emitLog("log", String(message)),
      spinner: (message) => {
        emitLog("log", String(message));
        return {
          start: (msg) => {
            if (msg) emitLog("log", String(msg));
          },
          stop: (msg, code) => {
            if (msg) emitLog(code ? "warn" : "log", String(msg));
          },
          message: (msg) => {
            if (msg) emitLog("log", String(msg));
          },
        };
      },
    },
    addLayer(layer) {
      layers.push(layer);
    },
    registerPlugin(plugin, pluginOptions) {
      if (pluginOptions?.target && pluginOptions.target !== target) {
        return;
      }
      plugins.push({
        name: typeof plugin?.name === "string" ? plugin.name : "(unnamed)",
        placement: pluginOptions?.placement ?? null,
      });
    },
    resolvePath: async (specifier) => {
      try {
        return await resolvePathFromWorkingDir(specifier);
      } catch {
        return undefined;
      }
    },
  };
  return { context, layers, plugins };
}

// ---------------------------------------------------------------------------
// Methods.

const methods = {
  async init(params) {
    options = {
      configModule: params.configModule,
      workingDir: params.workingDir,
      resolvedConfig: params.resolvedConfig ?? {},
    };
    return { node: process.versions.node };
  },

  async describe() {
    const { extensions, instrumentedPackageNames } = await load();
    return {
      extensions: extensions.map((extension, index) => ({
        index,
        name: typeof extension?.name === "string" ? extension.name : "",
        hooks: HOOKS.filter((hook) => typeof extension?.[hook] === "function"),
      })),
      instrumentedPackageNames,
    };
  },

  async externalsForTarget({ index, target }) {
    await load();
    const extension = extensionAt(index);
    if (typeof extension.externalsForTarget !== "function") {
      return { externals: [] };
    }
    const externals = await extension.externalsForTarget(target);
    if (externals === undefined || externals === null) {
      return { externals: [] };
    }
    if (!Array.isArray(externals)) {
      throw new TypeError(`externalsForTarget() must return an array of package names, got ${typeof externals}`);
    }
    return { externals: externals.map(String) };
  },

  async onBuildStart({ index, target }) {
    await load();
    const extension = extensionAt(index);
    const { context, layers, plugins } = createContext(target);
    if (typeof extension.onBuildStart === "function") {
      await extension.onBuildStart(context);
    }
    return { layers: layers.map(normalizeLayer), plugins };
  },

  async onBuildComplete({ index, target, manifest }) {
    await load();
    const extension = extensionAt(index);
    const { context, layers, plugins } = createContext(target);
    if (typeof extension.onBuildComplete === "function") {
      await extension.onBuildComplete(context, manifest);
    }
    return { layers: layers.map(normalizeLayer), plugins };
  },
};

async function handle(request) {
  const { id, method, params } = request;
  try {
    const fn = Object.hasOwn(methods, method) ? methods[method] : undefined;
    if (!fn) {
      throw new Error(`unknown method ${String(method)}`);
    }
    const result = await fn(params ?? {});
    flushStdout();
    send({ id, result: result ?? null });
  } catch (error) {
    flushStdout();
    send({ id, error: serializeError(error) });
  }
}

let queue = Promise.resolve();
const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
input.on("line", (line) => {
  if (line.trim() === "") {
    return;
  }
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    emitLog("warn", "liftoff sidecar: ignored a request that is not JSON");
    return;
  }
  queue = queue.then(() => handle(request));
});
input.on("close", () => {
  queue.then(() => process.exit(0));
});
