//! The API: creates imports with a presigned upload URL (once per
//! `Idempotency-Key`), lists a tenant's imports, shows a job's status and
//! preview, starts or discards reviews, serves the sample files and its
//! OpenAPI document.

pub mod cors;
mod error;
pub mod handler;
mod history;
mod idempotency;
mod openapi;
pub mod page;
mod revert;
mod review;
mod routes;

pub use handler::handle;
