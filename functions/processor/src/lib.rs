//! The processor: applies batches of rows to wallets, exactly once, and
//! asks for the job to be finalized when its last batch is done.

pub mod handler;

pub use handler::handle;
