//! The splitter: turns an uploaded file into a job, failed-row outcomes and
//! batches on the batch queue.
//!
//! `handler` translates the upload events into calls of the modules
//! below, which connect the domain's decisions (`shared::upload`,
//! `shared::admission`, `shared::membership::order`, `shared::split`) to
//! S3, SQS and DynamoDB:
//!
//! - `job_for`: the job an object version belongs to, found or created;
//! - `turn`: a membership file's place in its tenant's order, and its turn;
//! - `before_split`: the checks that come before any row is read for
//!   import: the file's size, a membership file's row count, a duplicate
//!   content;
//! - `split`: the split itself, from its start or from a checkpoint;
//! - `sink`: where the split's results go: outcomes, preview, checkpoints
//!   and batches sent to the batch queue;
//! - `review`: a review's read of its file: rows counted, nothing sent;
//! - `finish`: a job's end as the splitter decides it: rejected, given up,
//!   or handed to the finalizer;
//! - `pace`: whether another step fits before the invocation's deadline.

mod before_split;
mod finish;
pub mod handler;
mod job_for;
mod pace;
mod review;
mod sink;
mod split;
mod turn;

pub use handler::{handle, handle_until};
