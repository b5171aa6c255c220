pub mod build;
pub mod deploy;
mod shared;
