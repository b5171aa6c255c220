//! The `liftoff` command line: arguments, commands and the output layer.

mod commands;
mod output;
mod pipeline;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use output::{LogLevel, Output};

/// Build and deploy Trigger.dev task projects without a Docker daemon.
#[derive(Debug, Parser)]
#[command(name = "liftoff", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build (and, later, deploy) a Trigger.dev project. Flags match `trigger.dev deploy` 3.3.17.
    Deploy(DeployArgs),
    /// Build the project and its image without the platform; push it or load it into Docker.
    Build(BuildArgs),
    /// Promote a previously deployed version to the current deployment.
    Promote(PromoteArgs),
    /// Log in to Trigger.dev (`TRIGGER_ACCESS_TOKEN`, or the browser device flow) and save the profile.
    Login(AccountArgs),
    /// Show the account of the profile.
    Whoami(AccountArgs),
    /// List the saved profiles.
    ListProfiles(AccountArgs),
    /// Remove the profile's token.
    Logout(AccountArgs),
    /// Check that this machine and project can build and deploy: config, versions, node, sandbox,
    /// cache, registry and platform. Exits 1 if a check fails.
    Doctor(DoctorArgs),
}

/// Flags shared by every command, as upstream's common options.
#[derive(Debug, Args, Clone)]
pub struct CommonArgs {
    /// How much to print: debug, info, log, warn, error or none.
    #[arg(
        short = 'l',
        long,
        value_enum,
        env = "TRIGGER_LOG_LEVEL",
        default_value = "log",
        global = true
    )]
    pub log_level: LogLevel,
    /// The login profile (in `<config>/trigger/default.json`, shared with `trigger.dev login`).
    #[arg(long, default_value = "default", global = true)]
    pub profile: String,
    /// The Trigger.dev API URL.
    #[arg(short = 'a', long, env = "TRIGGER_API_URL", global = true)]
    pub api_url: Option<String>,
    /// Accepted for compatibility: liftoff sends no telemetry.
    #[arg(long, global = true)]
    pub skip_telemetry: bool,
    /// Print the result as JSON on stdout (messages stay on stderr).
    #[arg(long, global = true)]
    pub json: bool,
}

/// Layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    Gzip,
    Zstd,
}

/// Upstream's `--network` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkArg {
    Default,
    Host,
    None,
}

/// `trigger.dev` environments a deploy may target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeployEnv {
    Prod,
    Staging,
}

impl DeployEnv {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prod => "prod",
            Self::Staging => "staging",
        }
    }
}

/// The project and how its extensions run (shared by `deploy` and `build`).
#[derive(Debug, Args)]
pub struct ProjectArgs {
    /// The path to the project.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// The environment to build for (and deploy to).
    #[arg(short = 'e', long, value_enum, default_value = "prod")]
    pub env: DeployEnv,
    /// The config file, looked up in the project directory.
    #[arg(short = 'c', long)]
    pub config: Option<PathBuf>,
    /// The project ref; overrides `project` in the config file.
    #[arg(short = 'p', long)]
    pub project_ref: Option<String>,
    /// A .env file whose variables are available to `process.env` in the config.
    #[arg(long)]
    pub env_file: Option<PathBuf>,
    /// The environment's env vars as the Trigger.dev platform holds them (KEY=VALUE lines), for
    /// extensions that read them, such as prismaExtension's `DATABASE_URL` for `migrate`, when
    /// building without the platform. They are build-time only: never in the image.
    #[arg(long, value_name = "FILE")]
    pub server_env_file: Option<PathBuf>,
    /// Build without this extension (by its name or its call in the config); repeatable.
    /// The plan and the output say it was skipped.
    #[arg(long = "skip-extension", value_name = "NAME")]
    pub skip_extension: Vec<String>,
    /// Carry on when an extension's onBuildComplete fails, as upstream does. By
    /// default liftoff stops with the extension's name and error.
    #[arg(long)]
    pub keep_going: bool,
    /// Seconds each custom extension hook may run in the Node sidecar.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub extension_timeout: u64,
}

/// How the image is built (shared by `deploy` and `build`).
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// The base image: a registry reference, oci:PATH[:TAG] or oci-archive:FILE[:TAG].
    /// Default: upstream's node (or bun) image.
    #[arg(long, value_name = "REF")]
    pub base_image: Option<String>,
    /// Where pulled blobs, unpacked layers, .deb files and cached steps are kept.
    #[arg(long, env = "LIFTOFF_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Layer compression.
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: CompressionArg,
    /// Where the image goes: oci:DIR, oci-archive:FILE or docker-archive:FILE (for `docker load`)
    /// (default: oci:<build dir>/image).
    #[arg(long, value_name = "oci:DIR|oci-archive:FILE|docker-archive:FILE")]
    pub output: Option<String>,
    /// Network for `npm i`, image instructions and build commands: default (host network), host,
    /// or none.
    #[arg(long, value_enum, default_value = "default")]
    pub network: NetworkArg,
    /// Seconds each sandboxed build step (npm i, dpkg --configure, an image instruction, a build
    /// command) may run.
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    pub step_timeout: u64,
    /// Put consecutive RUN instructions of extensions into one layer.
    #[arg(long)]
    pub squash_instructions: bool,
    /// Fetch `ADD <url>` files whose URL starts with PREFIX from URL instead (air-gapped builds,
    /// artifact mirrors); checksums are still enforced. Repeatable; also `LIFTOFF_URL_MIRRORS`
    /// (comma-separated PREFIX=URL pairs).
    #[arg(long = "url-mirror", value_name = "PREFIX=URL")]
    pub url_mirror: Vec<String>,
}

/// Reaching registries: credentials, TLS, parallelism.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Username for the registry pushed to (before Docker's config.json and credential helpers).
    #[arg(long, env = "LIFTOFF_REGISTRY_USERNAME", value_name = "USER")]
    pub registry_username: Option<String>,
    /// Password or token for the registry pushed to.
    #[arg(
        long,
        env = "LIFTOFF_REGISTRY_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub registry_password: Option<String>,
    /// A registry (host[:port]) reached over plain HTTP; repeatable. Loopback registries always are.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registry: Vec<String>,
    /// An extra PEM CA certificate for registries; repeatable (Docker's
    /// /etc/docker/certs.d/<host>/ca.crt is read too).
    #[arg(long = "registry-ca", value_name = "FILE")]
    pub registry_ca: Vec<PathBuf>,
    /// Parallel blob uploads.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub jobs: usize,
}

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)]
pub struct DeployArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Build only: keep the build directory, print its path, and exit. Needs no login or network.
    #[arg(long)]
    pub dry_run: bool,
    /// Skip the version check (accepted for compatibility; liftoff does not phone home).
    #[arg(long)]
    pub skip_update_check: bool,
    /// Skip syncing env vars from `syncEnvVars` extensions.
    #[arg(long)]
    pub skip_sync_env_vars: bool,
    /// Deploy without promoting the new version to current.
    #[arg(long)]
    pub skip_promotion: bool,
    /// Build only the build directory, not the image.
    #[arg(long)]
    pub no_image: bool,
    /// Self-hosted platform: the image goes to your registry (liftoff always builds locally,
    /// without Docker; accepted for compatibility with upstream's flag).
    #[arg(long)]
    pub self_hosted: bool,
    /// Push the image after the build (implied by --registry, also for localhost registries).
    #[arg(long)]
    pub push: bool,
    /// The registry host to push to (sent to the platform as `registryHost`).
    #[arg(long, value_name = "HOST")]
    pub registry: Option<String>,
    /// The image namespace (sent to the platform; its default is `trigger`).
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Also load the image into the local Docker engine (`DOCKER_HOST` or the default socket).
    #[arg(long)]
    pub load_image: bool,
    /// Accepted for compatibility: a no-op in upstream 3.3.17 too (liftoff rebuilds a step only
    /// when its inputs change).
    #[arg(long, hide = true)]
    pub no_cache: bool,
    /// Accepted for compatibility ("coming soon" and ignored in upstream 3.3.17).
    #[arg(long, hide = true, value_name = "TAG")]
    pub tag: Option<String>,
    /// The image platform: only linux/amd64 (upstream's default).
    #[arg(
        long,
        hide = true,
        value_name = "PLATFORM",
        default_value = "linux/amd64"
    )]
    pub build_platform: String,
    /// Accepted for compatibility (unused in upstream 3.3.17).
    #[arg(long, hide = true)]
    pub save_logs: bool,
    #[command(flatten)]
    pub image: ImageArgs,
    #[command(flatten)]
    pub registry_args: RegistryArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `liftoff promote [version]`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The version to promote, e.g. 20250208.1.
    #[arg(value_name = "VERSION", id = "deployment_version")]
    pub version: Option<String>,
    /// The project directory (for the project ref in the config).
    #[arg(long, default_value = ".")]
    pub path: PathBuf,
    #[arg(short = 'e', long, value_enum, default_value = "prod")]
    pub env: DeployEnv,
    #[arg(short = 'c', long)]
    pub config: Option<PathBuf>,
    #[arg(short = 'p', long)]
    pub project_ref: Option<String>,
    /// Accepted for compatibility.
    #[arg(long)]
    pub skip_update_check: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Flags of the account commands.
#[derive(Debug, Args)]
pub struct AccountArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `liftoff doctor [path]`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The path to the project.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// The config file, looked up in the project directory.
    #[arg(short = 'c', long)]
    pub config: Option<PathBuf>,
    /// Check this registry (host[:port]): it answers, and accepts the credentials liftoff would
    /// push with. Without it the registry check is skipped.
    #[arg(long, value_name = "HOST")]
    pub registry: Option<String>,
    /// The cache directory to check (default: `$XDG_CACHE_HOME/liftoff` or `~/.cache/liftoff`).
    #[arg(long, env = "LIFTOFF_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Username for --registry (before Docker's config.json and credential helpers).
    #[arg(long, env = "LIFTOFF_REGISTRY_USERNAME", value_name = "USER")]
    pub registry_username: Option<String>,
    /// Password or token for --registry.
    #[arg(
        long,
        env = "LIFTOFF_REGISTRY_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub registry_password: Option<String>,
    /// A registry (host[:port]) reached over plain HTTP; repeatable. Loopback registries always are.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registry: Vec<String>,
    /// An extra PEM CA certificate for registries; repeatable.
    #[arg(long = "registry-ca", value_name = "FILE")]
    pub registry_ca: Vec<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `liftoff build`: the dry-run pipeline plus the image, optionally pushed or loaded; no platform.
#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The image reference to tag the image with (registry/repository:tag); needed by --push and
    /// --load-image, and used as the tag of --output docker-archive:FILE.
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Push the image to --image's registry (verified: every blob and the manifest are checked
    /// after the push), then print the reference with its digest.
    #[arg(long, requires = "image")]
    pub push: bool,
    /// Load the image into the local Docker engine (`DOCKER_HOST` or the default socket), tagged
    /// with --image.
    #[arg(long, requires = "image")]
    pub load_image: bool,
    #[command(flatten)]
    pub image_args: ImageArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Deploy(args) => {
            let out = Output::new(args.common.log_level, args.common.json);
            report(&out, commands::deploy::run(&args, &out))
        }
        Command::Build(args) => {
            let out = Output::new(args.common.log_level, args.common.json);
            report(&out, commands::build::run(&args, &out))
        }
        Command::Promote(args) => {
            let out = Output::new(args.common.log_level, args.common.json);
            report(&out, commands::account::promote(&args, &out))
        }
        Command::Login(args) => {
            let out = Output::new(args.common.log_level, args.common.json);
            report(&out, commands::account::login(&args.common, &out))
        }
        Command::Whoami(args) => {
            let out = Output::new(args.common.log_level, args.common.json);
            report(&out, commands::account::whoami(&args.common, &out))
        }
        Command::ListProfiles(args) => {
            let out = Output::new(args.common.log_level, args.common.json);
            report(&out, commands::account::list_profiles(&out))
        }
        Command::Logout(args) => {
            let out = Output::new(args.common.log_level, args.common.json);
            report(&out, commands::account::logout(&args.common, &out))
        }
        Command::Doctor(args) => {
            let out = Output::new(args.common.log_level, args.common.json);
            report(&out, commands::doctor::run(&args, &out))
        }
    }
}

fn report(out: &Output, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let mut msg = err.to_string();
            for cause in err.chain().skip(1) {
                let cause = cause.to_string();
                if !msg.contains(&cause) {
                    msg.push_str("\n  caused by: ");
                    msg.push_str(&cause);
                }
            }
            out.error(msg);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
