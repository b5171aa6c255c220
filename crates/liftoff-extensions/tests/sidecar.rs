//! End to end: a config with custom extensions, loaded statically by
//! liftoff-config, run through the `Host` with a real Node sidecar.

use std::collections::BTreeMap;
use std::time::Duration;

use liftoff_extensions::{Host, HostOptions, Sidecar, SidecarOptions};
use liftoff_manifest::BuildManifest;

const CONFIG: &str = r#"
import { aptGet } from "@trigger.dev/build/extensions/core";

const suffix = ["a", "b"].join("");

export default {
  project: "proj_e2e",
  maxDuration: 60,
  dirs: ["trigger"],
  build: {
    extensions: [
      aptGet({ packages: ["curl"] }),
      {
        name: "custom-" + suffix,
        onBuildStart(context) {
          console.log("starting for", context.target);
          context.addLayer({ id: "start", image: { pkgs: ["git"] } });
        },
        onBuildComplete(context, manifest) {
          context.addLayer({
            id: "complete",
            build: { env: { DATABASE_URL: manifest.deploy.env.DATABASE_URL } },
            deploy: { env: { NEW_VAR: "v" } },
          });
        },
      },
    ],
  },
};
"#;

#[test]
#[allow(clippy::too_many_lines)]
fn host_runs_custom_extensions_through_the_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::write(root.join("trigger.config.mjs"), CONFIG).unwrap();
    std::fs::write(
        root.join("package.json"),
        r#"{"name":"e2e","type":"module"}"#,
    )
    .unwrap();
    std::fs::create_dir_all(root.join("trigger")).unwrap();
    // The config imports a built-in; the sidecar imports the config, so the import must resolve.
    let stub = root.join("node_modules/@trigger.dev/build");
    std::fs::create_dir_all(stub.join("extensions")).unwrap();
    std::fs::write(
        stub.join("package.json"),
        r#"{"name":"@trigger.dev/build","type":"module","exports":{"./extensions/core":"./extensions/core.js"}}"#,
    )
    .unwrap();
    std::fs::write(
        stub.join("extensions/core.js"),
        "export function aptGet(o) { return { name: \"aptget\", onBuildComplete(c) { c.addLayer({ id: \"apt-get-from-node\" }); } }; }\n",
    )
    .unwrap();

    let mut env = BTreeMap::new();
    if let Some(path) = std::env::var_os("PATH") {
        env.insert("PATH".to_string(), path.to_string_lossy().into_owned());
    }
    let config = liftoff_config::load(&liftoff_config::LoadOptions {
        project_dir: root.clone(),
        config_file: None,
        project_ref: None,
        env: env.clone(),
    })
    .unwrap();
    let mut host = Host::new(
        &config,
        HostOptions {
            env: env.clone(),
            ..HostOptions::default()
        },
    )
    .unwrap();
    assert!(host.needs_sidecar());

    let mut sidecar = Sidecar::start(SidecarOptions {
        node: "node".into(),
        config_module: root.join("trigger.config.mjs"),
        working_dir: root.clone(),
        timeout: Duration::from_secs(30),
        resolved_config: serde_json::to_value(&config).unwrap(),
        env,
    })
    .unwrap();
    let description = sidecar.describe().unwrap();
    assert_eq!(
        description
            .extensions
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        ["aptget", "custom-ab"]
    );
    host.attach_sidecar(sidecar).unwrap();

    let build_dir = root.join(".trigger/tmp/build-x");
    std::fs::create_dir_all(&build_dir).unwrap();
    host.build_start(&build_dir).unwrap();
    let mut manifest = BuildManifest {
        output_path: build_dir.display().to_string(),
        ..BuildManifest::default()
    };
    manifest.deploy.env = Some(
        [("DATABASE_URL".to_string(), "postgres://server".to_string())]
            .into_iter()
            .collect(),
    );
    host.build_complete(&mut manifest, &[]).unwrap();

    let image = manifest.image.as_ref().unwrap();
    // onBuildStart layers are applied first (upstream), then aptGet's (native) on completion.
    assert_eq!(image.pkgs.as_deref().unwrap(), ["git", "curl"]);
    assert_eq!(
        manifest.build.env.as_ref().unwrap()["DATABASE_URL"],
        "postgres://server"
    );
    assert_eq!(
        manifest.deploy.sync.as_ref().unwrap().env.as_ref().unwrap()["NEW_VAR"],
        "v"
    );

    let plan = serde_json::to_value(host.plan(&manifest)).unwrap();
    let text = plan.to_string();
    assert!(
        text.contains("custom-ab"),
        "the sidecar extension takes its runtime name: {text}"
    );
    assert!(
        !text.contains("apt-get-from-node"),
        "the built-in did not run in Node: {text}"
    );
    let logs = host.logs(&manifest);
    assert!(
        logs.iter()
            .any(|l| l.extension == "custom-ab" && l.message == "starting for deploy"),
        "{logs:?}"
    );
    assert!(
        !text.contains("postgres://server"),
        "no env values in the plan: {text}"
    );
}
