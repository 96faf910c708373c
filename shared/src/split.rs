//! Splitting: one pass over an uploaded file that validates every row, keeps
//! the failures, cuts the valid rows into batches and collects the preview.
//! Memory stays flat: one record, one partial batch per shard, one chunk of
//! failures and the 50-row preview.
//!
//! Its length: under 500 lines of code; its tests follow it.

use crate::batch::{Batch, BatchPlan, BatchRow, Batcher, MAX_COLUMN_NAME_CHARS};
use crate::csv_input::{CsvInput, FileError, Header};
use crate::identifier::{MobileCountry, Mobiles};
use crate::kind::ImportKind;
use crate::membership::cards::{CardColumns, CardRow};
use crate::membership::programs::Memberships;
use crate::membership::tier_changes::{TierChangeColumns, TierChangeRow};
use crate::outcome::{bounded, RowOutcome};
use crate::points::{self, HeaderError, PointsColumns, PointsRow, PreviewRow};
use crate::smile::{Mode, SmileColumns};
use csv::ByteRecord;
use std::io::Read;

/// Rows shown in a job's preview.
pub const PREVIEW_ROWS: usize = 50;
/// Rows between two checkpoints. At each, the split sends what it holds
/// (every shard's partial batch, the failed rows), so the rows after it are
/// batched the same whether the split goes on or stops there and is taken
/// up again: batches never depend on how often a split was interrupted.
pub const CHECKPOINT_ROWS: u64 = 20_000;

/// The rows a shard is given before a points file gets another: a shard is
/// one message group, applied by one processor at a time, so a job's time
/// to apply is its longest shard's (BENCHMARKS.md §5, "On AWS, a model":
/// halved by each doubling of the shards, the bill the same).
pub const ROWS_PER_SHARD: u64 = 12_500;

/// The most shards a file is spread over: each is a processor invocation in
/// flight, and an account's Lambda concurrency is shared by every tenant's
/// jobs.
pub const MAX_SHARDS: u32 = 64;

/// A points row's size as a file's rows are counted from its size before
/// any is read: the benchmark's mixed file averages 31 bytes a row; longer
/// rows (a Smile.io export's) make the estimate lower, never higher.
const ROW_BYTES_ESTIMATE: u64 = 32;

/// The shards a points file of `file_bytes` is spread over: one per
/// [`ROWS_PER_SHARD`] rows it may hold, at least `least` (the deployment's
/// setting) and, unless that setting says more, at most [`MAX_SHARDS`].
pub fn shards_for(file_bytes: u64, least: u32) -> u32 {
    let rows = file_bytes / ROW_BYTES_ESTIMATE;
    let wanted = rows.div_ceil(ROWS_PER_SHARD).min(u64::from(MAX_SHARDS)) as u32;
    wanted.max(least)
}

/// Where a split can go on from: everything before is sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// Where the next row starts, in the file as uploaded.
    pub offset: u64,
    /// Rows read so far.
    pub row: u64,
    pub invalid_rows: u64,
    /// Batches cut so far.
    pub batches: u64,
    /// The shards the split spreads batches over: a split going on from
    /// here keeps them, whatever the function's setting is now (a deploy
    /// may change it mid-split), so a customer's rows stay in one shard.
    /// (Absent from checkpoints written before it was kept.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
}

/// What the sink wants after a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Go,
    /// Stop here (the function's time is running out): the split is taken
    /// up again from the checkpoint.
    Stop,
}
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
    /// For Smile.io files: add the points, or set the balance to them.
    pub smile_mode: Mode,
    pub default_country: String,
    pub rows_per_batch: usize,
    pub shards: u32,
    /// Rows between checkpoints ([`CHECKPOINT_ROWS`], unless a test asks
    /// for more of them).
    pub checkpoint_rows: u64,
    /// A reversal's original job: its batches undo that job's rows.
    pub reverts: Option<String>,
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
    /// Everything up to `at` has been handed over: whether to go on.
    fn checkpoint(&mut self, at: &Checkpoint) -> Result<Flow, Self::Error> {
        let _ = at;
        Ok(Flow::Go)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitSummary {
    pub kind: ImportKind,
    pub total_rows: u64,
    pub invalid_rows: u64,
    pub batches: u64,
    /// The shards the batches were spread over.
    pub shards: u32,
    /// Set when the split stopped at a checkpoint, to be taken up from it;
    /// the counts are then those up to it.
    pub stopped: Option<Checkpoint>,
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
    /// The file's name for the amount, where it is not `amount`.
    fn amount_column(&self) -> Option<&str> {
        None
    }
    /// The row as the preview shows it, for formats that have one.
    fn preview(
        &self,
        row: u64,
        record: &ByteRecord,
        result: &Result<Self::Row, RowOutcome>,
    ) -> Option<PreviewRow>;
}

struct PointsFormat {
    columns: PointsColumns,
    mobiles: Mobiles,
}

impl RowFormat for PointsFormat {
    type Row = PointsRow;
    fn kind(&self) -> ImportKind {
        self.columns.kind.into()
    }
    fn amount_column(&self) -> Option<&str> {
        Some(self.columns.amount_column()).filter(|name| *name != "amount")
    }
    fn read(&self, row: u64, record: &ByteRecord) -> Result<PointsRow, RowOutcome> {
        self.columns
            .validate(row, record, &self.mobiles)
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

struct SmileFormat {
    columns: SmileColumns,
    mode: Mode,
}

impl RowFormat for SmileFormat {
    type Row = PointsRow;
    fn kind(&self) -> ImportKind {
        ImportKind::Smile
    }
    fn read(&self, row: u64, record: &ByteRecord) -> Result<PointsRow, RowOutcome> {
        self.columns.read(row, record, self.mode)
    }
    fn amount_column(&self) -> Option<&str> {
        Some(self.columns.points_column())
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
        row: u64,
        record: &ByteRecord,
        result: &Result<CardRow, RowOutcome>,
    ) -> Option<PreviewRow> {
        Some(PreviewRow::of_cells(row, record, result))
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
        row: u64,
        record: &ByteRecord,
        result: &Result<TierChangeRow, RowOutcome>,
    ) -> Option<PreviewRow> {
        Some(PreviewRow::of_cells(row, record, result))
    }
}

fn open<R: Read, E>(input: R) -> Result<CsvInput<R>, SplitError<E>> {
    CsvInput::open(input).map_err(|e| match e {
        FileError::Io(io) => SplitError::Read(io.to_string()),
        other => SplitError::Rejected(bounded(other.to_string())),
    })
}

fn header_checked<T, E, H: std::fmt::Display>(
    header: &Header,
    read: impl FnOnce(&Header) -> Result<T, H>,
) -> Result<T, SplitError<E>> {
    read(header).map_err(|e| SplitError::Rejected(bounded(e.to_string())))
}

/// Splits a points file: native or Smile.io, as asked for at upload, or
/// as its header says (console drops): Smile's two-column template, or a
/// header the native format refuses but Smile's reads, is a Smile file.
pub fn split<R: Read, S: SplitSink<PointsRow>>(
    input: R,
    request: &SplitRequest,
    sink: &mut S,
) -> Result<SplitSummary, SplitError<S::Error>> {
    split_input(open(input)?, None, request, sink)
}

/// Splits a points file opened already, from its start or going on `from`
/// a checkpoint (the input resumed there).
pub fn split_input<R: Read, S: SplitSink<PointsRow>>(
    input: CsvInput<R>,
    from: Option<&Checkpoint>,
    request: &SplitRequest,
    sink: &mut S,
) -> Result<SplitSummary, SplitError<S::Error>> {
    let header = input.header();
    let smile = |columns| SmileFormat {
        columns,
        mode: request.smile_mode,
    };
    let native = |columns| PointsFormat {
        columns,
        mobiles: Mobiles::new(MobileCountry::new(&request.default_country)),
    };
    match request.kind {
        Some(ImportKind::Smile) => {
            let columns = header_checked(header, SmileColumns::from_header)?;
            split_rows(input, &smile(columns), from, request, sink)
        }
        Some(kind) => {
            let columns = header_checked(header, |h| PointsColumns::from_header(h, kind.points()))?;
            split_rows(input, &native(columns), from, request, sink)
        }
        None if SmileColumns::is_template(header) => {
            let columns = header_checked(header, SmileColumns::from_header)?;
            split_rows(input, &smile(columns), from, request, sink)
        }
        None => match PointsColumns::from_header(header, None) {
            Ok(columns) => split_rows(input, &native(columns), from, request, sink),
            // A header the native format does not know may be a Smile.io
            // export; one it knows but refuses (a column and its synonym,
            // a column twice), or one with a native column Smile.io would
            // drop, is the native format's, refused with its reason.
            Err(native_error) => {
                let foreign = matches!(
                    native_error,
                    HeaderError::UnknownColumn(..) | HeaderError::MissingColumn(_)
                ) && points::native_column_besides_smiles(header).is_none();
                match SmileColumns::from_header(header) {
                    Ok(columns) if foreign => {
                        split_rows(input, &smile(columns), from, request, sink)
                    }
                    _ => Err(SplitError::Rejected(bounded(native_error.to_string()))),
                }
            }
        },
    }
}

/// The first rows of a points file (native or Smile.io) as the job's
/// preview shows them, and its kind; reads no further than the preview.
pub fn preview<R: Read>(
    input: R,
    request: &SplitRequest,
) -> Result<(ImportKind, Vec<PreviewRow>), SplitError<std::convert::Infallible>> {
    struct First(Option<(ImportKind, Vec<PreviewRow>)>);
    /// Ends the read once the preview is taken.
    struct Enough;
    impl SplitSink<PointsRow> for First {
        type Error = Enough;
        fn preview(&mut self, kind: ImportKind, rows: &[PreviewRow]) -> Result<(), Enough> {
            self.0 = Some((kind, rows.to_vec()));
            Err(Enough)
        }
        fn failed(&mut self, _: &[RowOutcome]) -> Result<(), Enough> {
            Ok(())
        }
        fn batch(&mut self, _: Batch<PointsRow>) -> Result<(), Enough> {
            Ok(())
        }
    }
    let mut first = First(None);
    match split(input, request, &mut first) {
        Err(SplitError::Rejected(why)) => Err(SplitError::Rejected(why)),
        Err(SplitError::Read(e)) => Err(SplitError::Read(e)),
        Ok(_) | Err(SplitError::Sink(Enough)) => first
            .0
            .ok_or_else(|| SplitError::Read("the file ended before its preview".into())),
    }
}

/// Splits a card code file of a tenant with this membership configuration.
pub fn split_cards<R: Read, S: SplitSink<CardRow>>(
    input: R,
    config: &Memberships,
    request: &SplitRequest,
    sink: &mut S,
) -> Result<SplitSummary, SplitError<S::Error>> {
    split_cards_input(open(input)?, None, config, request, sink)
}

/// [`split_cards`] of a file opened already, perhaps going on `from` a checkpoint.
pub fn split_cards_input<R: Read, S: SplitSink<CardRow>>(
    input: CsvInput<R>,
    from: Option<&Checkpoint>,
    config: &Memberships,
    request: &SplitRequest,
    sink: &mut S,
) -> Result<SplitSummary, SplitError<S::Error>> {
    let columns = header_checked(input.header(), |h| CardColumns::from_header(h, config))?;
    split_rows(input, &columns, from, request, sink)
}

/// Splits a tier change file.
pub fn split_tier_changes<R: Read, S: SplitSink<TierChangeRow>>(
    input: R,
    request: &SplitRequest,
    sink: &mut S,
) -> Result<SplitSummary, SplitError<S::Error>> {
    split_tier_changes_input(open(input)?, None, request, sink)
}

/// [`split_tier_changes`] of a file opened already, perhaps going on `from` a checkpoint.
pub fn split_tier_changes_input<R: Read, S: SplitSink<TierChangeRow>>(
    input: CsvInput<R>,
    from: Option<&Checkpoint>,
    request: &SplitRequest,
    sink: &mut S,
) -> Result<SplitSummary, SplitError<S::Error>> {
    let columns = header_checked(input.header(), TierChangeColumns::from_header)?;
    split_rows(input, &columns, from, request, sink)
}

/// Opens a file for splitting; a header the file cannot be read by rejects it.
pub fn open_input<R: Read, E>(input: R) -> Result<CsvInput<R>, SplitError<E>> {
    open(input)
}

fn split_rows<R: Read, F: RowFormat, S: SplitSink<F::Row>>(
    mut input: CsvInput<R>,
    format: &F,
    from: Option<&Checkpoint>,
    request: &SplitRequest,
    sink: &mut S,
) -> Result<SplitSummary, SplitError<S::Error>> {
    let kind = format.kind();
    let mut batcher = Batcher::resume(
        BatchPlan {
            tenant_id: request.tenant_id.clone(),
            job_id: request.job_id.clone(),
            reason: request.reason.clone(),
            dry_run: request.dry_run,
            amount_column: format
                .amount_column()
                .map(|name| name.chars().take(MAX_COLUMN_NAME_CHARS).collect()),
            reverts: request.reverts.clone(),
            rows_per_batch: request.rows_per_batch,
            shards: request.shards,
        },
        from.map_or(0, |c| c.batches),
    );
    let mut preview = Vec::with_capacity(PREVIEW_ROWS);
    // The preview's rows come before the first checkpoint.
    let mut preview_sent = from.is_some();
    let mut failed = Vec::with_capacity(FAILED_CHUNK);
    let mut summary = SplitSummary {
        kind,
        total_rows: from.map_or(0, |c| c.row),
        invalid_rows: from.map_or(0, |c| c.invalid_rows),
        batches: from.map_or(0, |c| c.batches),
        shards: request.shards,
        stopped: None,
    };
    while let Some(row) = input
        .next_row()
        .map_err(|e| SplitError::Read(e.to_string()))?
    {
        summary.total_rows = row;
        let result = format.read(row, input.record());
        if preview.len() < PREVIEW_ROWS {
            preview.extend(
                format
                    .preview(row, input.record(), &result)
                    .map(PreviewRow::shortened),
            );
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
        if row.is_multiple_of(request.checkpoint_rows.max(1)) {
            // An interval closes: hand everything over, and go on only if
            // the sink wants to.
            let at = checkpoint(
                &input,
                request,
                &mut batcher,
                &mut failed,
                &mut summary,
                sink,
            )?;
            if sink.checkpoint(&at).map_err(SplitError::Sink)? == Flow::Stop {
                summary.stopped = Some(at);
                return Ok(summary);
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

/// Hands over every partial batch and the failed rows, and tells where
/// the split stands: after the current row.
fn checkpoint<R: Read, Row: BatchRow, S: SplitSink<Row>>(
    input: &CsvInput<R>,
    request: &SplitRequest,
    batcher: &mut Batcher<Row>,
    failed: &mut Vec<RowOutcome>,
    summary: &mut SplitSummary,
    sink: &mut S,
) -> Result<Checkpoint, SplitError<S::Error>> {
    for batch in batcher.flush() {
        summary.batches += 1;
        sink.batch(batch).map_err(SplitError::Sink)?;
    }
    if !failed.is_empty() {
        sink.failed(failed).map_err(SplitError::Sink)?;
        failed.clear();
    }
    Ok(Checkpoint {
        offset: input.resume_offset(),
        row: input.row(),
        invalid_rows: summary.invalid_rows,
        batches: summary.batches,
        shards: Some(request.shards),
    })
}

#[cfg(test)]
mod hostile;

#[cfg(test)]
mod tests {

    #[test]
    fn a_files_shards_grow_with_its_size_from_the_setting_to_a_ceiling() {
        let mib = |m: f64| (m * 1_048_576.0) as u64;
        // The benchmark's files: 100,000 rows in 2.9 MiB, 200,000 in 5.9,
        // a million in 29.7.
        assert_eq!(shards_for(mib(2.9), 8), 8);
        assert_eq!(shards_for(mib(5.9), 8), 16);
        assert_eq!(shards_for(mib(29.7), 8), MAX_SHARDS);
        assert_eq!(shards_for(mib(148.3), 8), MAX_SHARDS);
        assert_eq!(shards_for(0, 8), 8);
        assert_eq!(shards_for(100, 1), 1);
        // The deployment's setting is the floor, even above the ceiling.
        assert_eq!(shards_for(mib(2.9), 80), 80);
    }

    use super::*;
    use crate::outcome::ErrorCode;
    use std::convert::Infallible;

    pub(super) struct Collect<R> {
        pub(super) kind: Option<ImportKind>,
        pub(super) preview: Vec<PreviewRow>,
        pub(super) failed: Vec<RowOutcome>,
        pub(super) batches: Vec<Batch<R>>,
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

    pub(super) fn request() -> SplitRequest {
        SplitRequest {
            tenant_id: "acme".into(),
            job_id: "J".into(),
            kind: None,
            reason: "test".into(),
            dry_run: false,
            smile_mode: Mode::Add,
            default_country: "FR".into(),
            rows_per_batch: 4,
            shards: 2,
            checkpoint_rows: CHECKPOINT_ROWS,
            reverts: None,
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

    /// Collects like `Collect`, and stops at the checkpoints asked.
    struct StopAt {
        inner: Collect<PointsRow>,
        stop: fn(u64) -> bool,
    }

    impl SplitSink<PointsRow> for StopAt {
        type Error = Infallible;
        fn preview(&mut self, kind: ImportKind, rows: &[PreviewRow]) -> Result<(), Infallible> {
            self.inner.preview(kind, rows)
        }
        fn failed(&mut self, outcomes: &[RowOutcome]) -> Result<(), Infallible> {
            self.inner.failed(outcomes)
        }
        fn batch(&mut self, batch: Batch<PointsRow>) -> Result<(), Infallible> {
            self.inner.batch(batch)
        }
        fn checkpoint(&mut self, at: &Checkpoint) -> Result<Flow, Infallible> {
            Ok(if (self.stop)(at.row) {
                Flow::Stop
            } else {
                Flow::Go
            })
        }
    }

    /// Splits `file` whole, taking the split up again from each checkpoint
    /// the sink stopped at, as the splitter does.
    fn split_with_stops(file: &[u8], stop: fn(u64) -> bool) -> (SplitSummary, StopAt, usize) {
        let mut sink = StopAt {
            inner: Collect::default(),
            stop,
        };
        let mut summary = split(file, &request(), &mut sink).unwrap();
        let mut runs = 1;
        while let Some(at) = summary.stopped.clone() {
            assert_eq!(at.shards, Some(request().shards), "kept for the rest");
            let header = CsvInput::open(file).unwrap().header().clone();
            let rest = CsvInput::resume(&file[at.offset as usize..], header, at.offset, at.row);
            summary = split_input(rest, Some(&at), &request(), &mut sink).unwrap();
            runs += 1;
        }
        (summary, sink, runs)
    }

    #[test]
    fn a_split_taken_up_at_its_checkpoints_sends_what_one_run_sends() {
        let rows = 3 * CHECKPOINT_ROWS + 123;
        let mut file = String::from("email,amount,operation\n");
        for n in 1..=rows {
            let amount = if n % 17 == 0 {
                "x".to_string()
            } else {
                (n % 90 + 1).to_string()
            };
            file.push_str(&format!("c{}@x.io,{amount},CR\n", n % 1_000));
            if n % 5_000 == 0 {
                file.push('\n');
            }
        }
        let (whole, once, runs) = split_with_stops(file.as_bytes(), |_| false);
        assert_eq!(runs, 1);
        for stop in [(|_| true) as fn(u64) -> bool, |row| {
            row == 2 * CHECKPOINT_ROWS
        }] {
            let (summary, resumed, runs) = split_with_stops(file.as_bytes(), stop);
            assert!(runs > 1);
            assert_eq!(summary, whole);
            assert_eq!(resumed.inner.batches, once.inner.batches);
            assert_eq!(resumed.inner.failed, once.inner.failed);
            assert_eq!(resumed.inner.preview, once.inner.preview);
        }
        assert_eq!(whole.total_rows, rows);
        let batched: usize = once.inner.batches.iter().map(|b| b.rows.len()).sum();
        assert_eq!(batched as u64 + whole.invalid_rows, rows);
    }

    #[test]
    fn a_membership_files_preview_shows_its_rows_first_cells_bounded() {
        let config = crate::test_support::sample_memberships();
        let mut file = String::from(
            "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier;store\n",
        );
        file.push_str("\"K-1\";\"ann@x.io\";\"1\";;;;\"2\";\"Lyon\"\n");
        file.push_str("\"K-2\";\"bob@x.io\";\"1\";\"not a date\";;;\"2\";\n");
        // The worst case: every cell 10,000 four-byte characters, 60 rows.
        let huge = "\u{1F600}".repeat(10_000);
        for n in 0..60 {
            file.push_str(&format!("\"H-{n}{huge}\";\"{huge}\";\"{huge}\";\"{huge}\";\"{huge}\";\"{huge}\";\"{huge}\";\"{huge}\"\n"));
        }
        let mut sink = Collect::<crate::membership::cards::CardRow>::default();
        split_cards(file.as_bytes(), &config, &request(), &mut sink).unwrap();
        let preview = &sink.preview;
        assert_eq!(preview.len(), PREVIEW_ROWS);
        assert_eq!(preview[0].cells, ["K-1", "ann@x.io", "1", "", "", ""]);
        assert_eq!(preview[0].result, "valid");
        assert_eq!(preview[1].cells[0], "K-2");
        assert!(
            preview[1].result.contains("not a date"),
            "{}",
            preview[1].result
        );
        assert!(preview
            .iter()
            .all(|r| r.cells.len() <= crate::points::PREVIEW_CELLS));
        // Kept on the job, a DynamoDB item of 400 KB at most: about 136 KB
        // at worst, cells and results together.
        let stored = serde_json::to_vec(preview).unwrap().len();
        assert!(stored < 150_000, "{stored} bytes");
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
    fn a_dropped_file_with_smiles_columns_is_a_smile_file() {
        for (file, debit) in [
            ("Email,Points\na@x.io,-5\n", true),
            (
                "First name,Email,Points balance,VIP tier\nAnn,a@x.io,12,Gold\n",
                false,
            ),
        ] {
            let mut sink = Collect::<PointsRow>::default();
            let summary = split(file.as_bytes(), &request(), &mut sink).unwrap();
            assert_eq!(summary.kind, ImportKind::Smile, "{file}");
            let row = &sink.batches[0].rows[0];
            assert_eq!(row.operation == crate::points::Operation::Debit, debit);
        }
        // A native header with a synonym stays native; one neither reads is
        // refused with the native format's reason.
        let mut sink = Collect::<PointsRow>::default();
        let native = split(
            &b"email,points,operation\na@x.io,5,DR\n"[..],
            &request(),
            &mut sink,
        );
        assert_eq!(native.unwrap().kind, ImportKind::Points);
        let err = split(&b"email,colour\na@x.io,red\n"[..], &request(), &mut sink).unwrap_err();
        assert!(
            matches!(err, SplitError::Rejected(why) if why.contains("unknown column 'colour'"))
        );
    }

    #[test]
    fn a_header_the_native_format_knows_but_refuses_is_not_read_as_smiles() {
        // Read as Smile.io, each would drop a column the merchant filled.
        for (file, why) in [
            (
                "email,amount,points\na@x.io,5,7\n",
                "columns 'amount' and 'points' are the same column",
            ),
            (
                "email,points,operation,first_name\na@x.io,5,DR,Ann\n",
                "unknown column 'first_name'",
            ),
            (
                "email,points_balance,customer_id\na@x.io,5,C-1\n",
                "unknown column 'points_balance'",
            ),
        ] {
            let mut sink = Collect::<PointsRow>::default();
            let err = split(file.as_bytes(), &request(), &mut sink).unwrap_err();
            assert!(
                matches!(&err, SplitError::Rejected(m) if m.contains(why)),
                "{file}: {err}"
            );
            assert!(sink.kind.is_none() && sink.batches.is_empty(), "{file}");
        }
    }

    #[test]
    fn a_preview_shows_the_first_rows_and_reads_no_further() {
        let mut file = String::from("email,amount,operation\n");
        for n in 1..=10_000 {
            let amount = if n == 2 { "\"1,5\"" } else { "10" };
            file.push_str(&format!("c{n}@x.io,{amount},CR\n"));
        }
        /// Fails if read: the preview must stop well before.
        struct Unreadable;
        impl Read for Unreadable {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("read past the preview"))
            }
        }
        let input = file.as_bytes().chain(Unreadable);
        let (kind, rows) = preview(input, &request()).unwrap();
        assert_eq!(kind, ImportKind::Points);
        assert_eq!(rows.len(), PREVIEW_ROWS);
        assert_eq!(rows[0].result, "valid");
        assert!(rows[1].result.contains("'1,5'"), "{}", rows[1].result);
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
