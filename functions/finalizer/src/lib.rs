//! The finalizer: writes the processed file, settles the job's status and
//! totals, and emails the tenant's admin, once per job.

pub mod handler;
mod processed_file;
pub mod watchdog;

pub use handler::{handle, handle_event, handle_event_until, handle_until, FinalizerEvent};
