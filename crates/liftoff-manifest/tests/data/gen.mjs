// Oracle generator for liftoff-manifest's tests: runs trigger.dev@3.3.17's own build
// functions (rewriteBuildManifestPaths, buildManifestToJSON, generateContainerfile, and
// pkg-types' read/writePackageJSON as writeDeployFiles uses them) on sample manifests.
// Usage: ORACLE_NODE_MODULES=/path/node_modules node gen.mjs <crates/liftoff-manifest/tests/data>
import { mkdirSync, writeFileSync, readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import * as zlib from "node:zlib";
// ORACLE_NODE_MODULES: a node_modules with `npm install trigger.dev@3.3.17 --ignore-scripts`.
const NM = process.env.ORACLE_NODE_MODULES ?? "/tmp/oracle/inst/node_modules";
const T = `${NM}/trigger.dev/dist/esm`;
const { rewriteBuildManifestPaths } = await import(`${T}/build/buildWorker.js`);
const { buildManifestToJSON } = await import(`${T}/utilities/buildManifest.js`);
const { generateContainerfile } = await import(`${T}/deploy/buildImage.js`);
const { readPackageJSON, writePackageJSON } = await import(`${NM}/pkg-types/dist/index.mjs`);

const OUT = process.argv[2];
const DEST = "/tmp/proj/.trigger/tmp/build-AbC123";
const CLI = `${DEST}/node_modules/trigger.dev/dist/esm/entryPoints`;

function src(text) {
  return { contents: zlib.deflateSync(text).toString("base64"), contentHash: createHash("md5").update(text).digest("hex") };
}

function base(runtime) {
  return {
    contentHash: "0f3c1d2e4b5a69788796a5b4c3d2e1f0",
    runtime,
    environment: "prod",
    packageVersion: "3.3.17",
    cliPackageVersion: "3.3.17",
    target: "deploy",
    files: [{ entry: "src/trigger/example.ts", out: `${DEST}/src/trigger/example.mjs` }],
    sources: {
      "src/trigger/example.ts": src('import { task } from "@trigger.dev/sdk/v3";\nexport const helloWorld = task({ id: "hello-world", run: async () => ({ ok: true }) });\n'),
      "trigger.config.ts": src('export default { project: "proj_abcdefghijklmnop" };\n'),
    },
    config: { project: "proj_abcdefghijklmnop", dirs: ["./src/trigger"] },
    outputPath: DEST,
    runControllerEntryPoint: `${CLI}/deploy-run-controller.mjs`,
    runWorkerEntryPoint: `${CLI}/deploy-run-worker.mjs`,
    indexControllerEntryPoint: `${CLI}/deploy-index-controller.mjs`,
    indexWorkerEntryPoint: `${CLI}/deploy-index-worker.mjs`,
    loaderEntryPoint: undefined,
    configPath: `${DEST}/trigger.config.mjs`,
    customConditions: [],
    deploy: { env: {} },
    build: {},
    otelImportHook: { include: [] },
    externals: [],
  };
}

function full(runtime) {
  const m = base(runtime);
  m.files = [
    { entry: "src/trigger/example.ts", out: `${DEST}/src/trigger/example.mjs` },
    { entry: "src/trigger/ai.ts?sentryProxyModule=true", out: `${DEST}/src/trigger/ai.mjs` },
    { entry: "src/trigger/nested/q.ts?a=1?b=2", out: `${DEST}/src/trigger/nested/q.mjs` },
  ];
  m.sources["src/trigger/ai.ts?sentryProxyModule=true"] = src("export const ai = 1;\n");
  m.sources["package.json"] = src('{ "name": "proj" }\n');
  m.loaderEntryPoint = `${CLI}/loader.mjs`;
  m.customConditions = ["react-server"];
  m.deploy = { env: { SECRET_FROM_SERVER: "server-value" }, sync: { env: { NEW_VAR: "synced" } } };
  m.build = {
    env: { ZED_TOKEN: "zzz", DATABASE_URL: "postgres://user:p%40ss@db.example.com:5432/app?sslmode=require" },
    commands: ["npx prisma generate --schema=./prisma/schema.prisma", 'echo "done" && ls -la $HOME'],
  };
  m.otelImportHook = { include: ["openai", "@prisma/instrumentation"] };
  m.externals = [
    { name: "@prisma/client", version: "5.19.0" },
    { name: "sharp", version: "0.33.5" },
  ];
  m.image = {
    instructions: ["RUN echo 'hello from base' > /hello.txt", "ENV FFMPEG_PATH=/usr/bin/ffmpeg"],
    pkgs: ["ffmpeg", "git", "curl", "ffmpeg"],
  };
  return m;
}

function edge() {
  const m = base("node");
  m.image = { instructions: [], pkgs: [] };
  m.build = { env: { B: "1", 10: "ten", 2: "two" } };
  return m;
}

function commandsOnly(runtime) {
  const m = base(runtime);
  m.build = { commands: ["npm run generate"] };
  m.image = { instructions: ["RUN apt-get update && apt-get install -y jq"] };
  return m;
}

const cases = {
  "node-minimal": base("node"),
  "node-full": full("node"),
  "bun-minimal": base("bun"),
  "bun-full": full("bun"),
  "node-edge-env-order": edge(),
  "bun-commands-only": commandsOnly("bun"),
};

for (const [name, manifest] of Object.entries(cases)) {
  const dir = join(OUT, "manifests", name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "input.json"), JSON.stringify({ destination: DEST, manifest }, null, 2) + "\n");
  const rewritten = rewriteBuildManifestPaths(manifest, DEST);
  writeFileSync(join(dir, "build.json"), JSON.stringify(buildManifestToJSON(rewritten)));
  const containerfile = await generateContainerfile({
    runtime: rewritten.runtime,
    entrypoint: rewritten.runControllerEntryPoint,
    build: rewritten.build,
    image: rewritten.image,
    indexScript: rewritten.indexControllerEntryPoint,
  });
  writeFileSync(join(dir, "Containerfile"), containerfile);
}

// package.json cases: project package.json text + externals -> what writeDeployFiles writes.
const pkgCases = {
  typical: {
    project: '{\n  "name": "my-tasks",\n  "version": "1.0.0",\n  "private": true,\n  "type": "module",\n  "scripts": {\n    "dev": "trigger dev"\n  },\n  "dependencies": {\n    "@trigger.dev/sdk": "3.3.17",\n    "zod": "^3.23.8"\n  },\n  "devDependencies": {\n    "trigger.dev": "3.3.17"\n  },\n  "engines": { "node": ">=20" }\n}\n',
    externals: [
      { name: "sharp", version: "0.33.5" },
      { name: "@prisma/client", version: "5.19.0" },
      { name: "sharp", version: "0.34.0" },
    ],
  },
  "no-name-tabs": {
    project: '{\n\t"version": "0.0.1",\n\t"workspaces": ["packages/*"],\n\t"packageManager": "pnpm@9.0.0"\n}',
    externals: [],
  },
  "null-name-odd-values": {
    project: '{"name": null, "weird": {"10": 1.0, "2": 1e21, "a": 0.000001, "b": 1e-7, "c": 123456789012345678901234, "d": -0.0, "e": "\\u2028 \\u001f \\/ é"}, "peerDependencies": {"react": "*"}}',
    externals: [{ name: "import-in-the-middle", version: "1.11.0" }],
  },
};
for (const [name, c] of Object.entries(pkgCases)) {
  const dir = join(OUT, "package-json", name);
  mkdirSync(dir, { recursive: true });
  // readPackageJSON needs a file named package.json: use a scratch dir.
  const scratch = mkdtempSync(join(tmpdir(), "oracle-pkg-"));
  writeFileSync(join(scratch, "package.json"), c.project);
  writeFileSync(join(dir, "project-package.json"), c.project);
  writeFileSync(join(dir, "externals.json"), JSON.stringify(c.externals, null, 2) + "\n");
  const packageJson = await readPackageJSON(join(scratch, "package.json"));
  const dependencies = c.externals.reduce((acc, external) => { acc[external.name] = external.version; return acc; }, {});
  await writePackageJSON(join(dir, "expected-package.json"), {
    ...packageJson,
    name: packageJson.name ?? "trigger-project",
    dependencies: { ...dependencies },
    trustedDependencies: Object.keys(dependencies),
    devDependencies: {},
    peerDependencies: {},
    scripts: {},
  });
  rmSync(scratch, { recursive: true });
}
