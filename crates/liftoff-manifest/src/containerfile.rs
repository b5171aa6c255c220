//! The Containerfile (upstream `generateContainerfile` in `deploy/buildImage.ts`, 3.3.17).
//!
//! The two templates below are the literal output of upstream's template literals, where the
//! backslash-newline continuations have already collapsed into single lines (hence the runs of
//! five spaces). `@NAME@` markers are substituted in a single pass, so substituted text is
//! never re-scanned. The file ends with `CMD []`, a newline and two spaces.

use crate::error::ManifestError;
use crate::js_json;
use crate::manifest::{BuildManifest, Runtime};

/// apt packages every image gets, before `image.pkgs`.
pub const DEFAULT_PACKAGES: [&str; 5] =
    ["busybox", "ca-certificates", "dumb-init", "git", "openssl"];

const NODE_TEMPLATE: &str = r#"# syntax=docker/dockerfile:1
FROM node:21-bookworm-slim@sha256:99afef5df7400a8d118e0504576d32ca700de5034c4f9271d2ff7c91cc12d170 AS base

@BASE_INSTRUCTIONS@

ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get --fix-broken install -y && apt-get install -y --no-install-recommends @PACKAGES@ && apt-get clean && rm -rf /var/lib/apt/lists/*

FROM base AS build

# Install build dependencies
RUN apt-get update && apt-get install -y --no-install-recommends     python3 make g++ &&     apt-get clean && rm -rf /var/lib/apt/lists/*

USER node
WORKDIR /app

@BUILD_ARGS@

@BUILD_ENV_VARS@

ENV NODE_ENV=production
ENV NPM_CONFIG_UPDATE_NOTIFIER=false

COPY --chown=node:node package.json ./
RUN npm i --no-audit --no-fund --no-save --no-package-lock

# Now copy all the files
# IMPORTANT: Do this after running npm install because npm i will wipe out the node_modules directory
COPY --chown=node:node . .

@POST_INSTALL_COMMANDS@

# IMPORTANT: Doing this again to fix an issue with prisma generate removing the files in node_modules/trigger.dev for some reason...
COPY --chown=node:node . .

FROM build AS indexer

USER node
WORKDIR /app

ARG TRIGGER_PROJECT_ID
ARG TRIGGER_DEPLOYMENT_ID
ARG TRIGGER_DEPLOYMENT_VERSION
ARG TRIGGER_CONTENT_HASH
ARG TRIGGER_PROJECT_REF
ARG NODE_EXTRA_CA_CERTS
ARG TRIGGER_SECRET_KEY
ARG TRIGGER_API_URL

ENV TRIGGER_PROJECT_ID=${TRIGGER_PROJECT_ID}     TRIGGER_DEPLOYMENT_ID=${TRIGGER_DEPLOYMENT_ID}     TRIGGER_DEPLOYMENT_VERSION=${TRIGGER_DEPLOYMENT_VERSION}     TRIGGER_PROJECT_REF=${TRIGGER_PROJECT_REF}     TRIGGER_CONTENT_HASH=${TRIGGER_CONTENT_HASH}     TRIGGER_SECRET_KEY=${TRIGGER_SECRET_KEY}     TRIGGER_API_URL=${TRIGGER_API_URL}     TRIGGER_LOG_LEVEL=debug     NODE_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS}     NODE_ENV=production     NODE_OPTIONS="--max_old_space_size=8192"

# Run the indexer
RUN node @INDEX_SCRIPT@

# Development or production stage builds upon the base stage
FROM base AS final

USER node
WORKDIR /app

ARG TRIGGER_PROJECT_ID
ARG TRIGGER_DEPLOYMENT_ID
ARG TRIGGER_DEPLOYMENT_VERSION
ARG TRIGGER_CONTENT_HASH
ARG TRIGGER_PROJECT_REF
ARG NODE_EXTRA_CA_CERTS

ENV TRIGGER_PROJECT_ID=${TRIGGER_PROJECT_ID}     TRIGGER_DEPLOYMENT_ID=${TRIGGER_DEPLOYMENT_ID}     TRIGGER_DEPLOYMENT_VERSION=${TRIGGER_DEPLOYMENT_VERSION}     TRIGGER_CONTENT_HASH=${TRIGGER_CONTENT_HASH}     TRIGGER_PROJECT_REF=${TRIGGER_PROJECT_REF}     NODE_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS}     NODE_ENV=production     NODE_OPTIONS="--max_old_space_size=8192"

# Copy the files from the install stage
COPY --from=build --chown=node:node /app ./

# Copy the index.json file from the indexer stage
COPY --from=indexer --chown=node:node /app/index.json ./

ENTRYPOINT [ "dumb-init", "node", "@ENTRYPOINT@" ]
CMD []
  "#;

const BUN_TEMPLATE: &str = r#"# syntax=docker/dockerfile:1
FROM imbios/bun-node:1.1.24-22-slim@sha256:9cfb7cd87529261c482fe17d8894c0986263f3a5ccf84ad65c00ec0e1ed539c6 AS base

@BASE_INSTRUCTIONS@

ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get --fix-broken install -y && apt-get install -y --no-install-recommends @PACKAGES@ && apt-get clean && rm -rf /var/lib/apt/lists/*

FROM base AS build

RUN apt-get update && apt-get install -y --no-install-recommends     python3 make g++ &&     apt-get clean && rm -rf /var/lib/apt/lists/*

USER bun
WORKDIR /app

@BUILD_ARGS@

@BUILD_ENV_VARS@

COPY --chown=bun:bun package.json ./
RUN bun install --production --no-save

# Now copy all the files
# IMPORTANT: Do this after running npm install because npm i will wipe out the node_modules directory
COPY --chown=bun:bun . .

@POST_INSTALL_COMMANDS@

FROM build AS indexer

USER bun
WORKDIR /app

ARG TRIGGER_PROJECT_ID
ARG TRIGGER_DEPLOYMENT_ID
ARG TRIGGER_DEPLOYMENT_VERSION
ARG TRIGGER_CONTENT_HASH
ARG TRIGGER_PROJECT_REF
ARG NODE_EXTRA_CA_CERTS
ARG TRIGGER_SECRET_KEY
ARG TRIGGER_API_URL

ENV TRIGGER_PROJECT_ID=${TRIGGER_PROJECT_ID}     TRIGGER_DEPLOYMENT_ID=${TRIGGER_DEPLOYMENT_ID}     TRIGGER_DEPLOYMENT_VERSION=${TRIGGER_DEPLOYMENT_VERSION}     TRIGGER_PROJECT_REF=${TRIGGER_PROJECT_REF}     TRIGGER_CONTENT_HASH=${TRIGGER_CONTENT_HASH}     TRIGGER_SECRET_KEY=${TRIGGER_SECRET_KEY}     TRIGGER_API_URL=${TRIGGER_API_URL}     NODE_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS}     NODE_ENV=production

# Run the indexer
RUN bun run @INDEX_SCRIPT@

# Development or production stage builds upon the base stage
FROM base AS final

USER bun
WORKDIR /app

ARG TRIGGER_PROJECT_ID
ARG TRIGGER_DEPLOYMENT_ID
ARG TRIGGER_DEPLOYMENT_VERSION
ARG TRIGGER_CONTENT_HASH
ARG TRIGGER_PROJECT_REF
ARG NODE_EXTRA_CA_CERTS

ENV TRIGGER_PROJECT_ID=${TRIGGER_PROJECT_ID}     TRIGGER_DEPLOYMENT_ID=${TRIGGER_DEPLOYMENT_ID}     TRIGGER_DEPLOYMENT_VERSION=${TRIGGER_DEPLOYMENT_VERSION}     TRIGGER_CONTENT_HASH=${TRIGGER_CONTENT_HASH}     TRIGGER_PROJECT_REF=${TRIGGER_PROJECT_REF}     NODE_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS}     NODE_ENV=production

# Copy the files from the build stage
COPY --from=build --chown=bun:bun /app ./

# Copy the index.json file from the indexer stage
COPY --from=indexer --chown=bun:bun /app/index.json ./

ENTRYPOINT [ "dumb-init", "node", "@ENTRYPOINT@" ]
CMD []
  "#;

/// Render the Containerfile for `manifest` (which should already have gone through
/// [`BuildManifest::rewrite_paths`], so the entry points are `/app/...` paths).
///
/// * packages: [`DEFAULT_PACKAGES`] followed by `image.pkgs`, de-duplicated keeping the
///   first occurrence, joined with spaces;
/// * `image.instructions` joined with newlines (an empty line when there are none);
/// * one `ARG K` and one `ENV K=$K` per `build.env` key (JavaScript key order);
/// * one `RUN cmd` per `build.commands` entry;
/// * the indexer runs `indexControllerEntryPoint` (`node` or `bun run`), the entrypoint is
///   `dumb-init node <runControllerEntryPoint>` for both runtimes.
///
/// Fails like upstream (`[code 7789]`) if either controller entry point is missing or empty.
pub fn containerfile(manifest: &BuildManifest) -> Result<String, ManifestError> {
    let entrypoint = manifest
        .run_controller_entry_point
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or(ManifestError::MissingControllerEntryPoint {
            field: "runControllerEntryPoint",
            file: "deploy-run-controller",
        })?;
    let index_script = manifest
        .index_controller_entry_point
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or(ManifestError::MissingControllerEntryPoint {
            field: "indexControllerEntryPoint",
            file: "deploy-index-controller",
        })?;

    let env_keys: Vec<&String> = manifest
        .build
        .env
        .as_ref()
        .map(|env| {
            js_json::js_key_order(env)
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default();
    let build_args = env_keys
        .iter()
        .map(|k| format!("ARG {k}"))
        .collect::<Vec<_>>()
        .join("\n");
    let build_env_vars = env_keys
        .iter()
        .map(|k| format!("ENV {k}=${k}"))
        .collect::<Vec<_>>()
        .join("\n");
    let post_install_commands = manifest
        .build
        .commands
        .iter()
        .flatten()
        .map(|cmd| format!("RUN {cmd}"))
        .collect::<Vec<_>>()
        .join("\n");
    let image = manifest.image.as_ref();
    let base_instructions = image
        .and_then(|i| i.instructions.as_deref())
        .unwrap_or_default()
        .join("\n");
    let packages = manifest.image_packages().join(" ");

    let template = match manifest.runtime {
        Runtime::Node => NODE_TEMPLATE,
        Runtime::Bun => BUN_TEMPLATE,
    };
    Ok(render(
        template,
        &[
            ("@BASE_INSTRUCTIONS@", &base_instructions),
            ("@PACKAGES@", &packages),
            ("@BUILD_ARGS@", &build_args),
            ("@BUILD_ENV_VARS@", &build_env_vars),
            ("@POST_INSTALL_COMMANDS@", &post_install_commands),
            ("@INDEX_SCRIPT@", index_script),
            ("@ENTRYPOINT@", entrypoint),
        ],
    ))
}

/// Replace each marker in `template` with its value, in one left-to-right pass.
fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 512);
    let mut rest = template;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some((marker, value)) = values.iter().find(|(m, _)| rest.starts_with(m)) {
            out.push_str(value);
            rest = &rest[marker.len()..];
        } else {
            out.push('@');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{BuildSection, ImageSection};

    fn manifest(runtime: Runtime) -> BuildManifest {
        BuildManifest {
            runtime,
            run_controller_entry_point: Some("/app/run-controller.mjs".into()),
            index_controller_entry_point: Some("/app/index-controller.mjs".into()),
            ..BuildManifest::default()
        }
    }

    #[test]
    fn templates_have_upstream_shape() {
        for t in [NODE_TEMPLATE, BUN_TEMPLATE] {
            assert!(t.starts_with("# syntax=docker/dockerfile:1\nFROM "));
            assert!(t.ends_with("\nCMD []\n  "));
            assert!(t.contains(
                "--no-install-recommends     python3 make g++ &&     apt-get clean && rm -rf /var/lib/apt/lists/*\n"
            ));
            assert!(!t.contains('\r'));
            assert!(!t.contains('\\'));
        }
    }

    #[test]
    fn substituted_text_is_not_rescanned() {
        let mut m = manifest(Runtime::Node);
        m.build.commands = Some(vec!["echo @ENTRYPOINT@ @PACKAGES@ user@host".into()]);
        let out = containerfile(&m).unwrap();
        assert!(
            out.contains("\nRUN echo @ENTRYPOINT@ @PACKAGES@ user@host\n"),
            "{out}"
        );
    }

    #[test]
    fn packages_are_unique_in_insertion_order() {
        let mut m = manifest(Runtime::Bun);
        m.image = Some(ImageSection {
            pkgs: Some(vec![
                "openssl".into(),
                "ffmpeg".into(),
                "busybox".into(),
                "ffmpeg".into(),
            ]),
            instructions: None,
        });
        let out = containerfile(&m).unwrap();
        assert!(out.contains(
            "--no-install-recommends busybox ca-certificates dumb-init git openssl ffmpeg && apt-get clean"
        ));
    }

    #[test]
    fn missing_controllers_fail_with_code_7789() {
        let mut m = manifest(Runtime::Node);
        m.run_controller_entry_point = None;
        let err = containerfile(&m).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "Something went wrong with the build. Aborting deployment. [code 7789]"
            ),
            "{err}"
        );
        assert!(err.contains("runControllerEntryPoint"), "{err}");

        let mut m = manifest(Runtime::Bun);
        m.index_controller_entry_point = Some(String::new());
        let err = containerfile(&m).unwrap_err().to_string();
        assert!(err.contains("indexControllerEntryPoint"), "{err}");
    }

    #[test]
    fn empty_build_env_and_commands_leave_empty_lines() {
        let mut m = manifest(Runtime::Node);
        m.build = BuildSection {
            env: Some(crate::EnvMap::new()),
            commands: Some(Vec::new()),
        };
        assert_eq!(
            containerfile(&m).unwrap(),
            containerfile(&manifest(Runtime::Node)).unwrap()
        );
        assert!(
            containerfile(&m)
                .unwrap()
                .contains("USER node\nWORKDIR /app\n\n\n\n\n\nENV NODE_ENV=production\n")
        );
    }
}
