//! `liftoff-platform`: serve the local deploy API until killed.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use liftoff_platform::{DEFAULT_NAMESPACE, Platform, PlatformConfig, Seed};

/// A local stand-in for the Trigger.dev deploy API, backed by one `SQLite` file.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The `SQLite` database (created when missing).
    #[arg(long, default_value = "liftoff-platform.sqlite")]
    db: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3030")]
    bind: SocketAddr,
    /// Registry host answered by initialize (`DEPLOY_REGISTRY_HOST`).
    #[arg(long, env = "DEPLOY_REGISTRY_HOST")]
    registry_host: Option<String>,
    /// Image namespace (`DEPLOY_REGISTRY_NAMESPACE`).
    #[arg(long, env = "DEPLOY_REGISTRY_NAMESPACE", default_value = DEFAULT_NAMESPACE)]
    namespace: String,
    /// Public base URL answered as apiUrl/dashboardUrl (`APP_ORIGIN`).
    #[arg(long, env = "APP_ORIGIN")]
    app_origin: Option<String>,
    /// Seed JSON (`{personal_access_token, user_id, projects:[…]}`). Default:
    /// `<db>.seed.json`, generated (mode 0600) when missing.
    #[arg(long)]
    seed: Option<PathBuf>,
}

fn load_seed(path: &PathBuf, generate: bool) -> Result<Seed, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("cannot parse the seed {}: {e}", path.display())),
        Err(e) if generate && e.kind() == std::io::ErrorKind::NotFound => {
            let seed = Seed::generate();
            let json = serde_json::to_vec_pretty(&seed).map_err(|e| e.to_string())?;
            write_private(path, &json)
                .map_err(|e| format!("cannot write the seed {}: {e}", path.display()))?;
            Ok(seed)
        }
        Err(e) => Err(format!("cannot read the seed {}: {e}", path.display())),
    }
}

fn write_private(path: &PathBuf, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut stderr = std::io::stderr();
    let (seed_path, generate) = if let Some(path) = &args.seed {
        (path.clone(), false)
    } else {
        let mut name = args.db.clone().into_os_string();
        name.push(".seed.json");
        (PathBuf::from(name), true)
    };
    let seed = match load_seed(&seed_path, generate) {
        Ok(seed) => seed,
        Err(message) => {
            let _ = writeln!(stderr, "liftoff-platform: {message}");
            return ExitCode::FAILURE;
        }
    };
    let config = PlatformConfig {
        db_path: args.db,
        bind: args.bind,
        registry_host: args.registry_host,
        namespace: args.namespace,
        seed,
    };
    let platform = match Platform::start(config) {
        Ok(platform) => platform,
        Err(e) => {
            let _ = writeln!(stderr, "liftoff-platform: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.app_origin.is_some() {
        platform.set_app_origin(args.app_origin);
    }
    platform.set_request_logger(|r| {
        let _ = writeln!(
            std::io::stderr(),
            "{} {} {} {}ms",
            r.method,
            r.path,
            r.status,
            r.millis
        );
    });
    let _ = writeln!(
        stderr,
        "liftoff-platform listening on {} (database {}, seed {})",
        platform.url(),
        platform.db().display(),
        seed_path.display()
    );
    platform.join();
    ExitCode::SUCCESS
}
