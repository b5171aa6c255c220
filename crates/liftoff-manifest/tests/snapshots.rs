//! insta snapshots of the generated artefacts (the byte-exact checks live in `oracle.rs`).

use std::path::Path;

use liftoff_manifest::{
    BuildManifest, BuildSection, DeploySection, EnvMap, External, FileEntry, ImageSection,
    ManifestConfig, OtelImportHook, Runtime, containerfile, encode_source, package_json,
};

const DEST: &str = "/work/proj/.trigger/tmp/build-Xy12Zq";

fn manifest(runtime: Runtime) -> BuildManifest {
    let cli = format!("{DEST}/node_modules/trigger.dev/dist/esm/entryPoints");
    let mut m = BuildManifest {
        package_version: "3.3.17".into(),
        cli_package_version: "3.3.17".into(),
        content_hash: "5d41402abc4b2a76b9719d911017c592".into(),
        runtime,
        environment: "prod".into(),
        config: ManifestConfig {
            project: "proj_snapshot".into(),
            dirs: vec!["./trigger".into()],
        },
        files: vec![FileEntry {
            entry: "trigger/hello.ts?sentryProxyModule=true".into(),
            out: format!("{DEST}/trigger/hello.mjs"),
        }],
        output_path: DEST.into(),
        run_worker_entry_point: format!("{cli}/deploy-run-worker.mjs"),
        run_controller_entry_point: Some(format!("{cli}/deploy-run-controller.mjs")),
        index_worker_entry_point: format!("{cli}/deploy-index-worker.mjs"),
        index_controller_entry_point: Some(format!("{cli}/deploy-index-controller.mjs")),
        config_path: format!("{DEST}/trigger.config.mjs"),
        externals: Some(vec![External {
            name: "sharp".into(),
            version: "0.33.5".into(),
        }]),
        build: BuildSection {
            env: Some(EnvMap::from_iter([
                ("PRISMA_HIDE_UPDATE_MESSAGE".into(), "1".into()),
                ("DATABASE_URL".into(), "postgres://secret@db/app".into()),
            ])),
            commands: Some(vec!["npx prisma generate".into()]),
        },
        custom_conditions: Some(vec![]),
        deploy: DeploySection {
            env: Some(EnvMap::from_iter([("API_KEY".into(), "secret".into())])),
            sync: None,
        },
        image: Some(ImageSection {
            pkgs: Some(vec!["ffmpeg".into(), "git".into()]),
            instructions: Some(vec!["RUN echo base > /base.txt".into()]),
        }),
        otel_import_hook: Some(OtelImportHook {
            include: Some(vec!["openai".into()]),
            exclude: None,
        }),
        ..BuildManifest::default()
    };
    m.sources.insert(
        "trigger/hello.ts?sentryProxyModule=true".into(),
        encode_source("export const hello = 1;\n"),
    );
    m.rewrite_paths(Path::new(DEST)).unwrap();
    m
}

#[test]
fn containerfile_node() {
    insta::assert_snapshot!(containerfile(&manifest(Runtime::Node)).unwrap());
}

#[test]
fn containerfile_bun() {
    insta::assert_snapshot!(containerfile(&manifest(Runtime::Bun)).unwrap());
}

#[test]
fn build_json() {
    insta::assert_snapshot!(manifest(Runtime::Node).to_build_json());
}

#[test]
fn package_json_from_project() {
    let project = serde_json::json!({
        "name": "snapshot-tasks",
        "version": "0.1.0",
        "type": "module",
        "scripts": {"dev": "trigger dev"},
        "dependencies": {"@trigger.dev/sdk": "3.3.17"},
        "engines": {"node": ">=20"}
    });
    let externals = [
        External {
            name: "sharp".into(),
            version: "0.33.5".into(),
        },
        External {
            name: "@prisma/client".into(),
            version: "5.19.0".into(),
        },
    ];
    insta::assert_snapshot!(package_json(Some(&project), &externals).unwrap());
}
