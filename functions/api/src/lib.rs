//! The API: creates imports with a presigned upload URL, shows a job's
//! status and preview, and serves the sample files.

pub mod cors;
mod error;
pub mod handler;
pub mod page;
mod revert;
mod review;

pub use handler::handle;
