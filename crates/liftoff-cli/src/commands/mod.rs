pub mod account;
pub mod build;
pub mod deploy;
mod shared;
