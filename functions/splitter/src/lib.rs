//! The splitter: turns an uploaded file into a job, failed-row outcomes and
//! batches on the batch queue.

pub mod handler;

pub use handler::{handle, handle_until};
