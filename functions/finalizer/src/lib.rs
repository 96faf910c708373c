//! The finalizer: writes the processed file, settles the job's status and
//! totals, and emails the tenant's admin, once per job.

pub mod handler;

pub use handler::handle;
