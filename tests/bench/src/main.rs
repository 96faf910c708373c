//! `loyalty-bench`: the splitter's speed and memory on generated points
//! files, reported as Markdown for `BENCHMARKS.md`.
//!
//! ```text
//! loyalty-bench all [--binaries <dir>]
//!                                the full run: 1,000,000 rows for speed; 100,000, 1,000,000
//!                                and 5,000,000 rows for memory; with the functions' binaries
//!                                in <dir>, their sizes and cold starts
//! loyalty-bench all --quick [--binaries <dir>]
//!                                the same on small files (CI's smoke run)
//! loyalty-bench generate <rows> <file>
//! loyalty-bench memory <file>    split one file; print its peak resident memory
//! loyalty-bench finalize <file>  write its processed file (every row with an outcome, one in a
//!                                hundred failed) into 8 MiB parts, as the finalizer does, short
//!                                of the requests; print rows, bytes, seconds, peak memory
//! ```
//!
//! Speed: the splitter's work (`shared::split::split`: read, validate,
//! shard, batch and serialise every batch as the queue would carry it) next
//! to a plain `csv::ByteRecord` read of the same file, in the same process,
//! best of three runs each. Memory: each file split in a fresh process,
//! whose peak resident set (`VmHWM`) is read from `/proc/self/status`.

mod cold_start;
mod phones;

use anyhow::Context;
use shared::batch::Batch;
use shared::kind::ImportKind;
use shared::outcome::RowOutcome;
use shared::points::{PointsRow, PreviewRow};
use shared::processed::{ProcessedOut, Resume};
use shared::smile::Mode;
use shared::split::{split, SplitRequest, SplitSink, SplitSummary};
use std::convert::Infallible;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["all", rest @ ..] => {
            let binaries = rest
                .iter()
                .position(|a| *a == "--binaries")
                .and_then(|i| rest.get(i + 1))
                .map(Path::new);
            all(rest.contains(&"--quick"), binaries)
        }
        ["first-file", file] => {
            let started = Instant::now();
            split_file(Path::new(file))?;
            println!("{}", started.elapsed().as_nanos());
            Ok(())
        }
        ["phones"] => phones::run(16_000),
        ["phones", "--per-country", n] => phones::run(n.parse()?),
        ["phones-first", library] => phones::first(library),
        ["generate", rows, file] => generate(rows.parse()?, Path::new(file)),
        ["memory", file] => {
            let summary = split_file(Path::new(file))?;
            println!("{} {}", summary.total_rows, peak_resident_kib()?);
            Ok(())
        }
        ["finalize", file] => {
            let started = Instant::now();
            let (rows, bytes) = finalize_file(Path::new(file))?;
            let seconds = started.elapsed().as_secs_f64();
            println!("{rows} {bytes} {seconds:.2} {}", peak_resident_kib()?);
            Ok(())
        }
        _ => anyhow::bail!(
            "usage: loyalty-bench all [--quick] | generate <rows> <file> | memory <file> \
             | finalize <file>"
        ),
    }
}

/// The whole run, printed as Markdown.
fn all(quick: bool, binaries: Option<&Path>) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("loyalty-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (speed_rows, memory_rows): (u64, &[u64]) = if quick {
        (20_000, &[2_000, 20_000])
    } else {
        (1_000_000, &[100_000, 1_000_000, 5_000_000])
    };
    println!("## Splitter speed ({speed_rows} rows)\n");
    let file = dir.join(format!("points-{speed_rows}.csv"));
    generate(speed_rows, &file)?;
    let plain = best_of(3, || plain_read(&file))?;
    let splitter = best_of(3, || split_file(&file).map(|s| s.total_rows))?;
    // The worst case for the splitter's memory of mobiles: no customer
    // twice, so no number is read from it.
    let distinct = dir.join(format!("points-{speed_rows}-distinct.csv"));
    generate_for(speed_rows, speed_rows, &distinct)?;
    let all_distinct = best_of(3, || split_file(&distinct).map(|s| s.total_rows))?;
    std::fs::remove_file(&distinct)?;
    println!("| reader | rows | best of 3 | rows/s |");
    println!("|---|---:|---:|---:|");
    for (name, (rows, seconds)) in [
        ("plain `csv::ByteRecord` read", plain),
        ("splitter (read, validate, batch, serialise)", splitter),
        ("splitter, every customer distinct", all_distinct),
    ] {
        println!(
            "| {name} | {rows} | {seconds:.3} s | {:.0} |",
            rows as f64 / seconds
        );
    }
    let ratio = (splitter.0 as f64 / splitter.1) / (plain.0 as f64 / plain.1);
    println!("\nsplitter / plain read: {ratio:.2} (target: at least 0.50)\n");
    std::fs::remove_file(&file)?;

    println!("## Splitter peak memory\n");
    println!("| rows | file size | peak resident memory |");
    println!("|---:|---:|---:|");
    for &rows in memory_rows {
        let file = dir.join(format!("points-{rows}.csv"));
        generate(rows, &file)?;
        let size = std::fs::metadata(&file)?.len();
        let out = Command::new(std::env::current_exe()?)
            .arg("memory")
            .arg(&file)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout)?;
        let kib: u64 = text
            .split_whitespace()
            .nth(1)
            .context("the child's peak memory")?
            .parse()?;
        println!(
            "| {rows} | {:.1} MiB | {:.1} MiB |",
            size as f64 / 1048576.0,
            kib as f64 / 1024.0
        );
        std::fs::remove_file(&file)?;
    }
    first_files(&dir, if quick { 3 } else { 11 })?;
    if let Some(binaries) = binaries {
        functions(binaries, &dir, if quick { 1 } else { 10 })?;
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A cold splitter's first file: a 100-row file split in a fresh process,
/// with a fifth of its customers named by mobile and with none, so the
/// difference is what the first mobile costs (the phone metadata's load).
fn first_files(scratch: &Path, runs: usize) -> anyhow::Result<()> {
    println!("\n## A cold splitter's first file (100 rows, median of {runs} fresh processes)\n");
    println!("| file | split, from the process's start |");
    println!("|---|---:|");
    let with = scratch.join("first-with-mobiles.csv");
    generate(100, &with)?;
    let without = scratch.join("first-without-mobiles.csv");
    let text = std::fs::read_to_string(&with)?;
    // The same rows with each mobile turned into a customer id.
    let replaced: String = text
        .lines()
        .map(|line| match line.strip_prefix(',') {
            Some(rest) if rest.starts_with("06 ") => {
                let (mobile, tail) = rest.split_once(',').unwrap_or((rest, ""));
                format!(
                    ",,M-{}{}\n",
                    mobile.replace(' ', ""),
                    tail.trim_start_matches(',')
                )
            }
            _ => format!("{line}\n"),
        })
        .collect();
    std::fs::write(&without, replaced)?;
    let mut medians = Vec::new();
    for (name, file) in [("with mobiles", &with), ("without mobiles", &without)] {
        let mut times = (0..runs)
            .map(|_| -> anyhow::Result<f64> {
                let out = Command::new(std::env::current_exe()?)
                    .arg("first-file")
                    .arg(file)
                    .output()?;
                anyhow::ensure!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                Ok(String::from_utf8(out.stdout)?.trim().parse::<f64>()? / 1e6)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        times.sort_by(f64::total_cmp);
        let median = times[runs / 2];
        medians.push(median);
        println!("| {name} | {median:.2} ms |");
    }
    println!(
        "\nthe first mobile costs: {:.2} ms (target: at most 20 ms)",
        medians[0] - medians[1]
    );
    Ok(())
}

/// Each function's binary size (as built, and stripped) and cold start.
fn functions(binaries: &Path, scratch: &Path, runs: usize) -> anyhow::Result<()> {
    println!(
        "\n## Functions: size and cold start ({})\n",
        binaries.display()
    );
    println!("| function | binary | stripped | start to first event answered: median of {runs} (min, max) |");
    println!("|---|---:|---:|---:|");
    for (name, event) in cold_start::FUNCTIONS {
        let binary = binaries.join(name);
        let size = std::fs::metadata(&binary)
            .with_context(|| format!("{}", binary.display()))?
            .len();
        let stripped = scratch.join(format!("{name}.stripped"));
        let status = Command::new("strip")
            .arg("-o")
            .arg(&stripped)
            .arg(&binary)
            .status()?;
        anyhow::ensure!(status.success(), "strip {}", binary.display());
        let stripped_size = std::fs::metadata(&stripped)?.len();
        let mut times = (0..runs)
            .map(|_| cold_start::measure(&stripped, event))
            .collect::<anyhow::Result<Vec<_>>>()?;
        times.sort();
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        println!(
            "| {name} | {:.1} MiB | {:.1} MiB | {:.1} ms ({:.1}, {:.1}) |",
            size as f64 / 1048576.0,
            stripped_size as f64 / 1048576.0,
            ms(times[runs / 2]),
            ms(times[0]),
            ms(times[runs - 1])
        );
    }
    Ok(())
}

fn best_of(
    runs: usize,
    mut run: impl FnMut() -> anyhow::Result<u64>,
) -> anyhow::Result<(u64, f64)> {
    let mut best = f64::INFINITY;
    let mut rows = 0;
    for _ in 0..runs {
        let start = Instant::now();
        rows = run()?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok((rows, best))
}

/// A points file with expiry: half emails, a fifth French mobiles, the rest
/// customer ids; a debit every tenth row; one row in a hundred invalid;
/// 250,000 customers, so each has four rows in a million.
fn generate(rows: u64, path: &Path) -> anyhow::Result<()> {
    generate_for(rows, 250_000, path)
}

/// The same file for `customers` customers.
fn generate_for(rows: u64, customers: u64, path: &Path) -> anyhow::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    writeln!(
        out,
        "email,mobile,customer_id,amount,operation,expire_in_days"
    )?;
    for n in 0..rows {
        let customer = n % customers;
        match n % 10 {
            0..=4 => write!(out, "customer{customer}@example.com,,,")?,
            5 | 6 => write!(
                out,
                ",06 {:02} {:02} {:02} {:02},,",
                customer / 1_000_000 % 100,
                customer / 10_000 % 100,
                customer / 100 % 100,
                customer % 100
            )?,
            _ => write!(out, ",,C-{customer},")?,
        }
        match (n % 100, n % 10) {
            (99, _) => writeln!(out, "1.5,CR,30")?,
            (_, 9) => writeln!(out, "{},DR,", 1 + n % 50)?,
            _ => writeln!(out, "{},CR,{}", 1 + n % 1000, 1 + n % 365)?,
        }
    }
    out.flush()?;
    Ok(())
}

/// Reads every record of the file, as the `csv` crate's fastest loop does.
fn plain_read(path: &Path) -> anyhow::Result<u64> {
    let mut reader = csv::Reader::from_reader(BufReader::new(File::open(path)?));
    let mut record = csv::ByteRecord::new();
    let mut rows = 0;
    while reader.read_byte_record(&mut record)? {
        rows += 1;
    }
    Ok(rows)
}

/// Splits the file as the splitter does.
fn split_file(path: &Path) -> anyhow::Result<SplitSummary> {
    let request = SplitRequest {
        tenant_id: "bench".into(),
        job_id: "20261125000000-bench".into(),
        kind: Some(ImportKind::PointsWithExpiry),
        reason: "benchmark".into(),
        dry_run: false,
        smile_mode: Mode::Add,
        default_country: "FR".into(),
        rows_per_batch: 100,
        shards: 8,
        checkpoint_rows: shared::split::CHECKPOINT_ROWS,
        reverts: None,
    };
    let mut sink = Serialised::default();
    let summary =
        split(File::open(path)?, &request, &mut sink).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    anyhow::ensure!(sink.batches > 0 && sink.bytes > 0, "no batch was cut");
    anyhow::ensure!(sink.failed == summary.invalid_rows, "failures lost");
    Ok(summary)
}

/// A sink that does what the real one does to each batch short of sending
/// it: serialise it to the JSON the batch queue carries.
#[derive(Default)]
struct Serialised {
    batches: u64,
    bytes: u64,
    failed: u64,
}

impl SplitSink<PointsRow> for Serialised {
    type Error = Infallible;
    fn preview(&mut self, _: ImportKind, _: &[PreviewRow]) -> Result<(), Infallible> {
        Ok(())
    }
    fn failed(&mut self, outcomes: &[RowOutcome]) -> Result<(), Infallible> {
        self.failed += outcomes.len() as u64;
        Ok(())
    }
    fn batch(&mut self, batch: Batch<PointsRow>) -> Result<(), Infallible> {
        let body = batch.to_json().unwrap_or_default();
        self.batches += 1;
        self.bytes += body.len() as u64;
        Ok(())
    }
}

/// Writes the processed file of `path` as the finalizer does (its outcomes
/// made up: each row applied, one in a hundred failed), into parts of the
/// finalizer's size that are dropped when full instead of uploaded.
/// Returns the rows and the bytes written.
fn finalize_file(path: &Path) -> anyhow::Result<(u64, u64)> {
    use shared::outcome::ErrorCode;
    use shared::processed::{write_processed_from, Detail, Written};
    let input = shared::csv_input::CsvInput::open(File::open(path)?)?;
    let mut outcomes = (1u64..).map(|row| {
        Ok::<_, Infallible>(if row % 100 == 0 {
            RowOutcome::failed(
                row,
                ErrorCode::InsufficientBalance,
                format!("row {row}: no"),
            )
        } else {
            RowOutcome::applied(row, 10, row as i64)
        })
    });
    let mut parts = Parts {
        part: Vec::with_capacity(PART_BYTES),
        bytes: 0,
    };
    match write_processed_from(
        input,
        None,
        &mut outcomes,
        &mut parts,
        Detail::BalanceAfter,
        shared::processed::BOUNDARY_ROWS,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        Written::Done(tally, _) => Ok((tally.applied + tally.failed, parts.bytes)),
        Written::Stopped(_) => anyhow::bail!("stopped"),
    }
}

/// The finalizer's part size (`loyalty_aws::objects::PART_BYTES`).
const PART_BYTES: usize = 8 * 1024 * 1024;

/// Keeps one part of the output at a time, as the finalizer's upload does.
struct Parts {
    part: Vec<u8>,
    bytes: u64,
}

impl Write for Parts {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let taken = bytes.len().min(PART_BYTES - self.part.len());
        self.part.extend_from_slice(&bytes[..taken]);
        if self.part.len() == PART_BYTES {
            self.part.clear();
        }
        self.bytes += taken as u64;
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<I> ProcessedOut<I> for Parts {
    type Error = Infallible;

    fn boundary(&mut self, _: &Resume, _: &I) -> Result<shared::split::Flow, Infallible> {
        Ok(shared::split::Flow::Go)
    }
}

/// The process's peak resident set, in KiB.
fn peak_resident_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmHWM in /proc/self/status")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_file_splits_with_one_invalid_row_in_a_hundred() {
        let path = std::env::temp_dir().join(format!("bench-test-{}.csv", std::process::id()));
        generate(1_000, &path).unwrap();
        assert_eq!(plain_read(&path).unwrap(), 1_000);
        let summary = split_file(&path).unwrap();
        assert_eq!((summary.total_rows, summary.invalid_rows), (1_000, 10));
        assert_eq!(finalize_file(&path).unwrap().0, 1_000);
        std::fs::remove_file(&path).unwrap();
    }
}
