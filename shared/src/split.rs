//! Splitting: one pass over an uploaded file that validates every row, keeps
//! the failures, cuts the valid rows into batches and collects the preview.
//! Memory stays flat: one record, one partial batch per shard, one chunk of
//! failures and the 50-row preview.

use crate::batch::{Batch, BatchPlan, BatchRow, Batcher};
use crate::csv_input::{CsvInput, FileError, Header};
use crate::kind::ImportKind;
use crate::membership::cards::{CardColumns, CardRow};
use crate::membership::programs::Memberships;
use crate::membership::tier_changes::{TierChangeColumns, TierChangeRow};
use crate::outcome::RowOutcome;
use crate::points::{PointsColumns, PointsRow, PreviewRow};
use csv::ByteRecord;
use std::io::Read;

/// Rows shown in a job's preview.
pub const PREVIEW_ROWS: usize = 50;
/// Failed rows handed to the sink at a time.
pub const FAILED_CHUNK: usize = 100;

#[derive(Debug, Clone)]
pub struct SplitRequest {
    pub tenant_id: String,
    pub job_id: String,
    /// `None` infers a points kind from the header (console drops).
    pub kind: Option<ImportKind>,
    pub reason: String,
    pub dry_run: bool,
    pub default_country: String,
    pub rows_per_batch: usize,
    pub shards: u32,
}

/// Where the splitter's results go (the queue and tables, in production).
pub trait SplitSink<R> {
    type Error;
    /// The first rows, once, as soon as they are read (formats that have a
    /// preview: points).
    fn preview(&mut self, kind: ImportKind, rows: &[PreviewRow]) -> Result<(), Self::Error>;
    /// Rows that failed validation, in file order.
    fn failed(&mut self, outcomes: &[RowOutcome]) -> Result<(), Self::Error>;
    fn batch(&mut self, batch: Batch<R>) -> Result<(), Self::Error>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitSummary {
    pub kind: ImportKind,
    pub total_rows: u64,
    pub invalid_rows: u64,
    pub batches: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SplitError<E> {
    /// The file as a whole cannot be imported; nothing of it is applied.
    #[error("{0}")]
    Rejected(String),
    #[error("reading the file failed: {0}")]
    Read(String),
    #[error(transparent)]
    Sink(E),
}

/// How one kind of file reads its rows.
pub trait RowFormat {
    type Row: BatchRow;
    fn kind(&self) -> ImportKind;
    /// The row, or why it is not imported (its outcome: failed or skipped).
    fn read(&self, row: u64, record: &ByteRecord) -> Result<Self::Row, RowOutcome>;
    /// The row as the preview shows it, for formats that have one.
    fn preview(
        &self,
        row: u64,
        record: &ByteRecord,
        result: &Result<Self::Row, RowOutcome>,
    ) -> Option<PreviewRow>;
}

struct PointsFormat<'a> {
    columns: PointsColumns,
    default_country: &'a str,
}

impl RowFormat for PointsFormat<'_> {
    type Row = PointsRow;
    fn kind(&self) -> ImportKind {
        self.columns.kind.into()
    }
    fn read(&self, row: u64, record: &ByteRecord) -> Result<PointsRow, RowOutcome> {
        self.columns
            .validate(row, record, self.default_country)
            .map_err(|e| RowOutcome::from(&e))
    }
    fn preview(
        &self,
        row: u64,
        record: &ByteRecord,
        result: &Result<PointsRow, RowOutcome>,
    ) -> Option<PreviewRow> {
        Some(self.columns.preview(row, record, result))
    }
}

impl RowFormat for CardColumns {
    type Row = CardRow;
    fn kind(&self) -> ImportKind {
        ImportKind::CardCode
    }
    fn read(&self, row: u64, record: &ByteRecord) -> Result<CardRow, RowOutcome> {
        CardColumns::read(self, row, record).map_err(|e| RowOutcome::from(&e))
    }
    fn preview(
        &self,
        _: u64,
        _: &ByteRecord,
        _: &Result<CardRow, RowOutcome>,
    ) -> Option<PreviewRow> {
        None
    }
}

impl RowFormat for TierChangeColumns {
    type Row = TierChangeRow;
    fn kind(&self) -> ImportKind {
        ImportKind::TierChange
    }
    fn read(&self, row: u64, record: &ByteRecord) -> Result<TierChangeRow, RowOutcome> {
        TierChangeColumns::read(self, row, record)
    }
    fn preview(
        &self,
        _: u64,
        _: &ByteRecord,
        _: &Result<TierChangeRow, RowOutcome>,
    ) -> Option<PreviewRow> {
        None
    }
}

fn open<R: Read, E>(input: R) -> Result<CsvInput<R>, SplitError<E>> {
    CsvInput::open(input).map_err(|e| match e {
        FileError::Io(io) => SplitError::Read(io.to_string()),
        other => SplitError::Rejected(other.to_string()),
    })
}

fn header_checked<T, E, H: std::fmt::Display>(
    header: &Header,
    read: impl FnOnce(&Header) -> Result<T, H>,
) -> Result<T, SplitError<E>> {
    read(header).map_err(|e| SplitError::Rejected(e.to_string()))
}

/// Splits a points file; the kind asked for, or the one its header says.
pub fn split<R: Read, S: SplitSink<PointsRow>>(
    input: R,
    request: &SplitRequest,
    sink: &mut S,
) -> Result<SplitSummary, SplitError<S::Error>> {
    let input = open(input)?;
    let columns = header_checked(input.header(), |h| {
        PointsColumns::from_header(h, request.kind.and_then(ImportKind::points))
    })?;
    let format = PointsFormat {
        columns,
        default_country: &request.default_country,
    };
    split_rows(input, &format, request, sink)
}

/// Splits a card code file of a tenant with this membership configuration.
pub fn split_cards<R: Read, S: SplitSink<CardRow>>(
    input: R,
    config: &Memberships,
    request: &SplitRequest,
    sink: &mut S,
) -> Result<SplitSummary, SplitError<S::Error>> {
    let input = open(input)?;
    let columns = header_checked(input.header(), |h| CardColumns::from_header(h, config))?;
    split_rows(input, &columns, request, sink)
}

/// Splits a tier change file.
pub fn split_tier_changes<R: Read, S: SplitSink<TierChangeRow>>(
    input: R,
    request: &SplitRequest,
    sink: &mut S,
) -> Result<SplitSummary, SplitError<S::Error>> {
    let input = open(input)?;
    let columns = header_checked(input.header(), TierChangeColumns::from_header)?;
    split_rows(input, &columns, request, sink)
}

fn split_rows<R: Read, F: RowFormat, S: SplitSink<F::Row>>(
    mut input: CsvInput<R>,
    format: &F,
    request: &SplitRequest,
    sink: &mut S,
) -> Result<SplitSummary, SplitError<S::Error>> {
    let kind = format.kind();
    let mut batcher = Batcher::new(BatchPlan {
        tenant_id: request.tenant_id.clone(),
        job_id: request.job_id.clone(),
        reason: request.reason.clone(),
        dry_run: request.dry_run,
        rows_per_batch: request.rows_per_batch,
        shards: request.shards,
    });
    let mut preview = Vec::with_capacity(PREVIEW_ROWS);
    let mut preview_sent = false;
    let mut failed = Vec::with_capacity(FAILED_CHUNK);
    let mut summary = SplitSummary {
        kind,
        total_rows: 0,
        invalid_rows: 0,
        batches: 0,
    };
    while let Some(row) = input
        .next_row()
        .map_err(|e| SplitError::Read(e.to_string()))?
    {
        summary.total_rows = row;
        let result = format.read(row, input.record());
        if preview.len() < PREVIEW_ROWS {
            preview.extend(format.preview(row, input.record(), &result));
        } else if !preview_sent {
            sink.preview(kind, &preview).map_err(SplitError::Sink)?;
            preview_sent = true;
        }
        match result {
            Ok(valid) => {
                if let Some(batch) = batcher.push(valid) {
                    summary.batches += 1;
                    sink.batch(batch).map_err(SplitError::Sink)?;
                }
            }
            Err(outcome) => {
                summary.invalid_rows += 1;
                failed.push(outcome);
                if failed.len() == FAILED_CHUNK {
                    sink.failed(&failed).map_err(SplitError::Sink)?;
                    failed.clear();
                }
            }
        }
    }
    if !preview_sent {
        sink.preview(kind, &preview).map_err(SplitError::Sink)?;
    }
    if !failed.is_empty() {
        sink.failed(&failed).map_err(SplitError::Sink)?;
    }
    for batch in batcher.finish() {
        summary.batches += 1;
        sink.batch(batch).map_err(SplitError::Sink)?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ErrorCode;
    use std::convert::Infallible;

    struct Collect<R> {
        kind: Option<ImportKind>,
        preview: Vec<PreviewRow>,
        failed: Vec<RowOutcome>,
        batches: Vec<Batch<R>>,
    }

    impl<R> Default for Collect<R> {
        fn default() -> Self {
            Collect {
                kind: None,
                preview: Vec::new(),
                failed: Vec::new(),
                batches: Vec::new(),
            }
        }
    }

    impl<R> SplitSink<R> for Collect<R> {
        type Error = Infallible;
        fn preview(&mut self, kind: ImportKind, rows: &[PreviewRow]) -> Result<(), Infallible> {
            assert!(self.kind.is_none(), "preview sent twice");
            self.kind = Some(kind);
            self.preview = rows.to_vec();
            Ok(())
        }
        fn failed(&mut self, outcomes: &[RowOutcome]) -> Result<(), Infallible> {
            self.failed.extend_from_slice(outcomes);
            Ok(())
        }
        fn batch(&mut self, batch: Batch<R>) -> Result<(), Infallible> {
            self.batches.push(batch);
            Ok(())
        }
    }

    fn request() -> SplitRequest {
        SplitRequest {
            tenant_id: "acme".into(),
            job_id: "J".into(),
            kind: None,
            reason: "test".into(),
            dry_run: false,
            default_country: "FR".into(),
            rows_per_batch: 4,
            shards: 2,
        }
    }

    #[test]
    fn every_row_is_either_batched_or_failed() {
        let mut file = String::from("email,amount,operation\n");
        for n in 1..=120 {
            let amount = if n % 10 == 0 {
                "10.5".to_string()
            } else {
                n.to_string()
            };
            file.push_str(&format!("c{}@x.io,{amount},CR\n", n % 7));
        }
        let mut sink = Collect::<PointsRow>::default();
        let summary = split(file.as_bytes(), &request(), &mut sink).unwrap();
        assert_eq!(summary.total_rows, 120);
        assert_eq!(summary.invalid_rows, 12);
        assert_eq!(summary.batches, sink.batches.len() as u64);
        let mut rows: Vec<u64> = sink
            .batches
            .iter()
            .flat_map(|b| b.rows.iter().map(|r| r.row))
            .collect();
        rows.extend(sink.failed.iter().map(|o| o.row));
        rows.sort();
        assert_eq!(rows, (1..=120).collect::<Vec<_>>());
        assert!(sink
            .failed
            .iter()
            .all(|o| o.error_code == Some(ErrorCode::InvalidAmount)));
        assert_eq!(sink.preview.len(), PREVIEW_ROWS);
        assert_eq!(sink.preview[9].result, "row 10, column amount: '10.5' is not a whole number of points: use digits only, with no sign, separators, decimals or exponent");
    }

    #[test]
    fn a_bad_header_rejects_the_file_before_any_row() {
        let mut sink = Collect::<PointsRow>::default();
        let err = split(
            &b"email,amount,colour\na@x.io,1,red\n"[..],
            &request(),
            &mut sink,
        )
        .unwrap_err();
        assert!(
            matches!(&err, SplitError::Rejected(m) if m.contains("'colour'")),
            "{err}"
        );
        assert!(sink.kind.is_none() && sink.batches.is_empty());
    }

    #[test]
    fn the_kind_is_inferred_from_the_header() {
        let mut sink = Collect::<PointsRow>::default();
        split(
            &b"email,amount,expire_in_days\na@x.io,1,3\n"[..],
            &request(),
            &mut sink,
        )
        .unwrap();
        assert_eq!(sink.kind, Some(ImportKind::PointsWithExpiry));
        assert_eq!(sink.preview[0].expiry.as_deref(), Some("3"));
    }
}
