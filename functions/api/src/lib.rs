//! The API: creates imports with a presigned upload URL, shows a job's
//! status and preview, and serves the sample files.

pub mod cors;
pub mod handler;
pub mod page;

pub use handler::handle;
