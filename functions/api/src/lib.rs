//! The API: creates imports with a presigned upload URL, shows a job's
//! status and preview, and serves the sample files.

mod error;
pub mod handler;
mod review;

pub use handler::handle;
