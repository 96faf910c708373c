//! The API: creates imports with a presigned upload URL, shows a job's
//! status and preview, and serves the sample files.

pub mod handler;

pub use handler::handle;
