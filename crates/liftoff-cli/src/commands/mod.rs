pub mod account;
pub mod build;
pub mod deploy;
pub mod doctor;
mod shared;
