//! The `liftoff` binary.

fn main() -> std::process::ExitCode {
    liftoff_cli::main()
}
