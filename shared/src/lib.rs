//! The loyalty-import domain.
//!
//! Everything here is plain Rust: file formats, row validation, the points
//! ledger rules, batching, job state and the processed file. AWS lives in the
//! adapters of `loyalty-aws`; the functions wire the two together.
//!
//! One file's journey through this crate:
//! [`split::split`] reads the upload, validates each row against its
//! [`points`] format and hands [`batch::Batch`]es to a sink; [`apply::apply_batch`]
//! applies a batch to wallets ([`ledger`]) through a [`apply::LedgerStore`];
//! [`processed::write_processed`] merges the original rows with their
//! [`outcome::RowOutcome`]s; [`notification`] words the admin's email.

pub mod admission;
pub mod apply;
pub mod batch;
pub mod csv_input;
pub mod identifier;
pub mod job;
pub mod kind;
pub mod ledger;
pub mod membership;
pub mod notification;
pub mod outcome;
pub mod points;
pub mod processed;
pub mod redact;
pub mod smile;
pub mod split;
pub mod tenant;
pub mod text_encoding;
pub mod upload;

#[cfg(test)]
pub(crate) mod test_support {
    use std::future::Future;

    /// Runs a future of the in-memory stores, which never wait: polling once
    /// completes it.
    pub fn block_on<F: Future>(future: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut future = std::pin::pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("the memory stores never wait"),
        }
    }
}
