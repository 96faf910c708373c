//! Reading an uploaded CSV file as a stream of records.
//!
//! One [`ByteRecord`] is reused for every row, so memory does not grow with
//! the file. The text encoding is detected from the start of the file and
//! the file read as UTF-8 ([`crate::text_encoding`]); the delimiter (comma,
//! semicolon or tab) is detected from the header line; a byte order mark is
//! ignored; header names are matched after trimming and lower-casing.
//!
//! Its length: under 450 lines of code; its tests follow it.

use crate::outcome::{ErrorCode, RowError};
use crate::text_encoding::{TextEncoding, Utf8Text};
use csv::ByteRecord;
use std::io::{self, Read};

/// The header line of a file, as written and as matched.
#[derive(Debug, Clone)]
pub struct Header {
    /// Trimmed, lower-cased column names, in file order.
    pub names: Vec<String>,
    /// The header cells as written (BOM removed), for the processed file.
    pub raw: ByteRecord,
    pub delimiter: u8,
    /// What the file was read as.
    pub encoding: TextEncoding,
}

impl Header {
    pub fn position(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// A problem with the file as a whole.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is empty: it has no header line")]
    Empty,
    #[error("the header is not valid UTF-8 (byte offset {offset}); save the file as CSV UTF-8")]
    HeaderEncoding { offset: u64 },
    #[error("the file could not be read as CSV at line {line}: {message}")]
    Malformed { line: u64, message: String },
    #[error("reading the file failed: {0}")]
    Io(#[from] io::Error),
}

impl From<csv::Error> for FileError {
    fn from(err: csv::Error) -> Self {
        let line = err.position().map(|p| p.line()).unwrap_or(0);
        match err.into_kind() {
            csv::ErrorKind::Io(e) => FileError::Io(e),
            other => FileError::Malformed {
                line,
                message: format!("{other:?}"),
            },
        }
    }
}

/// A CSV file opened for streaming: its header, then one record at a time.
pub struct CsvInput<R: Read> {
    reader: csv::Reader<Tap<Sniffed<Utf8Text<Sniffed<R>>>>>,
    header: Header,
    record: ByteRecord,
    row: u64,
    /// Where in the file (as uploaded) the stream the reader reads begins.
    base: u64,
}

const SNIFF_BYTES: usize = 64 * 1024;
const BOM: &[u8] = b"\xEF\xBB\xBF";

impl<R: Read> CsvInput<R> {
    pub fn open(input: R) -> Result<Self, FileError> {
        let raw = sniff(input)?;
        let encoding = TextEncoding::detect(head(&raw));
        let text = sniff(Utf8Text::new(raw, encoding))?;
        let delimiter = detect_delimiter(head(&text));
        let mut reader = reader(delimiter, Tap::new(text, encoding));
        let mut raw = ByteRecord::new();
        loop {
            if !reader.read_byte_record(&mut raw)? {
                return Err(FileError::Empty);
            }
            // Leading blank lines before the header are not a header.
            if !raw.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                break;
            }
        }
        let raw = strip_bom(&raw);
        let mut names = Vec::with_capacity(raw.len());
        // Offsets in the file as uploaded: a Windows-1252 character is one
        // byte there, however long it is in UTF-8.
        let file_bytes = |text: &[u8]| match encoding {
            TextEncoding::Windows1252 => String::from_utf8_lossy(text).chars().count() as u64,
            _ => text.len() as u64,
        };
        let mut offset = 0u64;
        for field in raw.iter() {
            let name = std::str::from_utf8(field).map_err(|e| FileError::HeaderEncoding {
                offset: offset + file_bytes(&field[..e.valid_up_to()]),
            })?;
            names.push(name.trim().to_lowercase());
            offset += file_bytes(field) + 1;
        }
        // Trailing delimiters on the header line make empty trailing names.
        while names.last().is_some_and(String::is_empty) && names.len() > 1 {
            names.pop();
        }
        Ok(CsvInput {
            reader,
            header: Header {
                names,
                raw,
                delimiter,
                encoding,
            },
            record: ByteRecord::new(),
            row: 0,
            base: 0,
        })
    }

    /// Goes on reading a file whose rows up to `row` were read before:
    /// `rest` is the file from `offset` on (a [`CsvInput::resume_offset`]),
    /// `header` the file's header as [`CsvInput::open`] read it.
    pub fn resume(rest: R, header: Header, offset: u64, row: u64) -> Self {
        let text = io::Cursor::new(Vec::new()).chain(Utf8Text::resumed(
            io::Cursor::new(Vec::new()).chain(rest),
            header.encoding,
        ));
        CsvInput {
            reader: reader(header.delimiter, Tap::new(text, header.encoding)),
            header,
            record: ByteRecord::new(),
            row,
            base: offset,
        }
    }

    /// The offset in the file as uploaded (not as decoded) where the row
    /// after the current one starts: reading can resume there.
    pub fn resume_offset(&self) -> u64 {
        let decoded = self.reader.position().byte();
        let units = self.reader.get_ref().units_before(decoded);
        self.base
            + match self.header.encoding {
                TextEncoding::Utf8 | TextEncoding::Windows1252 => units,
                // Two bytes a unit, after the byte order mark that a
                // UTF-16 file starts with (a resumed stream has none).
                TextEncoding::Utf16Le | TextEncoding::Utf16Be => {
                    2 * units + if self.base == 0 { 2 } else { 0 }
                }
            }
    }

    /// The number of the current row.
    pub fn row(&self) -> u64 {
        self.row
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Advances to the next data row and returns its 1-based number, or `None`
    /// at the end of the file. Blank lines are not rows.
    pub fn next_row(&mut self) -> Result<Option<u64>, FileError> {
        loop {
            if !self.reader.read_byte_record(&mut self.record)? {
                return Ok(None);
            }
            if self
                .record
                .iter()
                .all(|f| f.iter().all(u8::is_ascii_whitespace))
            {
                continue;
            }
            self.row += 1;
            return Ok(Some(self.row));
        }
    }

    /// The current row's cells, as read.
    pub fn record(&self) -> &ByteRecord {
        &self.record
    }

    /// Byte offset of the current row in the file.
    pub fn offset(&self) -> u64 {
        self.record.position().map(|p| p.byte()).unwrap_or(0)
    }
}

fn reader<R: Read>(delimiter: u8, input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(input)
}

/// A stream whose first bytes were read ahead to look at.
type Sniffed<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// The decoded text on its way to the CSV reader, counted so that a
/// position in it (the reader's) can be told as a position in the file as
/// uploaded: in units of the file's encoding (a byte of UTF-8 or
/// Windows-1252, a 16-bit unit of UTF-16). The reader reads ahead of its
/// position by at most its buffer; the last [`Tap::KEPT`] bytes passed are
/// kept to count back from.
struct Tap<R> {
    inner: R,
    encoding: TextEncoding,
    /// Decoded bytes passed so far; the last of them may end in part of a
    /// character (`partial` bytes), whose units are counted with the rest.
    passed: u64,
    partial: usize,
    /// The units of the bytes passed but the partial character.
    units: u64,
    kept: std::collections::VecDeque<u8>,
}

impl<R> Tap<R> {
    const KEPT: usize = 256 * 1024;

    fn new(inner: R, encoding: TextEncoding) -> Self {
        Tap {
            inner,
            encoding,
            passed: 0,
            partial: 0,
            units: 0,
            kept: std::collections::VecDeque::new(),
        }
    }

    /// The units that the first `decoded` bytes passed stand for (a
    /// character boundary, at most [`Tap::KEPT`] bytes back).
    fn units_before(&self, decoded: u64) -> u64 {
        if self.encoding == TextEncoding::Utf8 {
            return decoded;
        }
        let counted = self.kept.len() - self.partial;
        let after = (self.passed - self.partial as u64).saturating_sub(decoded) as usize;
        let tail: Vec<u8> = self
            .kept
            .range(counted.saturating_sub(after)..counted)
            .copied()
            .collect();
        self.units - units_of(&tail, self.encoding)
    }
}

/// The units of the file's encoding that decoded text stands for: a
/// Windows-1252 byte is one character (an undefined byte passes through
/// alone), a UTF-16 unit is half a character above U+FFFF.
fn units_of(decoded: &[u8], encoding: TextEncoding) -> u64 {
    let mut units = 0u64;
    for chunk in decoded.utf8_chunks() {
        units += match encoding {
            TextEncoding::Utf16Le | TextEncoding::Utf16Be => chunk
                .valid()
                .chars()
                .map(|c| c.len_utf16() as u64)
                .sum::<u64>(),
            _ => chunk.valid().chars().count() as u64,
        };
        units += chunk.invalid().len() as u64;
    }
    units
}

/// How many bytes at the end of `bytes` are the start of a character whose
/// other bytes are still to come.
fn partial_tail(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let lead = bytes[bytes.len() - back];
        if lead & 0xC0 == 0x80 {
            continue;
        }
        let needs = match lead {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if needs > back { back } else { 0 };
    }
    0
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.passed += n as u64;
        if self.encoding != TextEncoding::Utf8 {
            self.kept.extend(&buf[..n]);
            let start = self.kept.len() - self.partial - n;
            let fresh: Vec<u8> = self.kept.range(start..).copied().collect();
            // At the end of the stream a partial character is what it is.
            self.partial = if n == 0 { 0 } else { partial_tail(&fresh) };
            self.units += units_of(&fresh[..fresh.len() - self.partial], self.encoding);
            let over = self.kept.len().saturating_sub(Self::KEPT);
            self.kept.drain(..over);
        }
        Ok(n)
    }
}

/// Reads up to `SNIFF_BYTES` ahead (however many reads that takes), and
/// gives them back with the rest of the stream.
fn sniff<R: Read>(mut input: R) -> io::Result<Sniffed<R>> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    (&mut input)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok(io::Cursor::new(head).chain(input))
}

fn head<R>(sniffed: &Sniffed<R>) -> &[u8] {
    sniffed.get_ref().0.get_ref()
}

fn strip_bom(record: &ByteRecord) -> ByteRecord {
    record
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if i == 0 {
                f.strip_prefix(BOM).unwrap_or(f)
            } else {
                f
            }
        })
        .collect()
}

/// Picks the delimiter that occurs most often, outside quotes, on the first line.
fn detect_delimiter(head: &[u8]) -> u8 {
    let head = head.strip_prefix(BOM).unwrap_or(head);
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for &b in head {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if !quoted => {
                if let Some(c) = counts.iter_mut().find(|(d, _)| *d == b) {
                    c.1 += 1;
                }
            }
            _ => {}
        }
    }
    // Ties (including a one-column header) go to the comma, the first entry.
    counts
        .iter()
        .fold((b',', 0), |best, &c| if c.1 > best.1 { c } else { best })
        .0
}

/// The cells of one row, read as trimmed UTF-8 text with row errors that
/// name the row and column.
pub struct Cells<'a> {
    pub row: u64,
    pub record: &'a ByteRecord,
    /// The encoding the file was read as.
    pub encoding: TextEncoding,
    /// The record's cells one after the other, when they are UTF-8: each
    /// cell is then a slice of it, checked once for the row instead of
    /// once for each cell.
    text: Option<&'a str>,
}

/// `text.trim()`, without looking up Unicode's spaces when both ends are
/// visible ASCII (almost every cell).
fn trimmed(text: &str) -> &str {
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

impl<'a> Cells<'a> {
    pub fn new(row: u64, record: &'a ByteRecord, encoding: TextEncoding) -> Self {
        Cells {
            row,
            record,
            encoding,
            text: std::str::from_utf8(record.as_slice()).ok(),
        }
    }

    pub fn raw(&self, i: usize) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.record.get(i).unwrap_or_default())
    }

    /// Refuses a row with a value beyond the header's last column (empty
    /// trailing fields are fine: spreadsheets add them).
    pub fn within(&self, width: usize) -> Result<(), RowError> {
        match (width..self.record.len()).find(|&i| !self.raw(i).trim().is_empty()) {
            None => Ok(()),
            Some(extra) => Err(RowError::new(
                self.row,
                None,
                ErrorCode::TooManyFields,
                format!(
                    "the row has a value '{}' in field {} but the header has only {width} columns",
                    self.raw(extra).trim(),
                    extra + 1,
                ),
            )),
        }
    }

    /// The trimmed text of a cell; a missing column or cell reads as empty.
    pub fn text(&self, index: Option<usize>, column: &str) -> Result<&'a str, RowError> {
        let Some(i) = index else {
            return Ok("");
        };
        // The cell's slice of the row's text; `get` refuses one that is
        // not on character boundaries (bytes that are no character in
        // either cell, joined across two), which the check below names.
        let cell = self.record.range(i).and_then(|at| self.text?.get(at));
        if let Some(cell) = cell {
            return Ok(trimmed(cell));
        }
        let Some(bytes) = self.record.get(i) else {
            return Ok("");
        };
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(trimmed(s)),
            Err(e) => {
                let before = String::from_utf8_lossy(&bytes[..e.valid_up_to()]);
                let byte = bytes[e.valid_up_to()];
                let at = before.chars().count() + 1;
                // Read as UTF-8, the byte starts no character; read as
                // Windows-1252, it is one of the five bytes with none.
                let why = match self.encoding {
                    TextEncoding::Windows1252 => {
                        "Windows-1252 (the encoding the file was read as) has no character for it"
                    }
                    _ => "it is not UTF-8 (the encoding the file was read as, from its start)",
                };
                Err(RowError::new(
                    self.row,
                    Some(column),
                    ErrorCode::InvalidEncoding,
                    format!(
                        "the byte 0x{byte:02X} (character {at} of the cell, after '{before}'): {why}; \
                         save the file as CSV UTF-8"
                    ),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> (Header, Vec<(u64, Vec<String>)>) {
        rows_of(text.as_bytes())
    }

    fn rows_of(bytes: &[u8]) -> (Header, Vec<(u64, Vec<String>)>) {
        let mut input = CsvInput::open(bytes).unwrap();
        let mut out = Vec::new();
        while let Some(n) = input.next_row().unwrap() {
            let cells = input
                .record()
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            out.push((n, cells));
        }
        (input.header().clone(), out)
    }

    #[test]
    fn semicolons_are_detected_and_the_bom_ignored() {
        let (header, rows) = rows("\u{feff}Email;Amount\r\na@x.io;10\r\n");
        assert_eq!(header.delimiter, b';');
        assert_eq!(header.names, ["email", "amount"]);
        assert_eq!(rows, [(1, vec!["a@x.io".to_string(), "10".to_string()])]);
    }

    #[test]
    fn quoted_delimiters_do_not_count_when_detecting() {
        let (header, _) = rows("\"a;b\",c,d\n1,2,3\n");
        assert_eq!(header.delimiter, b',');
        assert_eq!(header.names, ["a;b", "c", "d"]);
    }

    #[test]
    fn blank_lines_are_not_rows() {
        let (_, rows) = rows("email,amount\n\na@x.io,1\n\n\nb@x.io,2\n");
        let numbers: Vec<u64> = rows.iter().map(|r| r.0).collect();
        assert_eq!(numbers, [1, 2]);
    }

    #[test]
    fn an_empty_file_has_no_header() {
        assert!(matches!(CsvInput::open(&b""[..]), Err(FileError::Empty)));
    }

    #[test]
    fn a_header_with_a_byte_no_encoding_reads_is_refused_with_its_offset() {
        // 0xE9 makes it Windows-1252, where 0x81 is no character.
        let err = CsvInput::open(&b"\xE9mail,am\x81ount\n"[..]).err().unwrap();
        assert!(
            matches!(err, FileError::HeaderEncoding { offset: 8 }),
            "{err:?}"
        );
    }

    #[test]
    fn a_windows_1252_file_is_read_as_written() {
        let (header, rows) = rows_of(b"Pr\xE9nom;Montant\r\nZo\xEB;10\x80\r\n");
        assert_eq!(header.encoding, TextEncoding::Windows1252);
        assert_eq!(header.names, ["prénom", "montant"]);
        assert_eq!(rows[0].1, ["Zoë", "10€"]);
    }

    #[test]
    fn a_utf16_file_from_excel_unicode_text_is_read_with_its_tabs() {
        let bytes: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(
                "email\tamount\r\nzoë@x.io\t5\r\n"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes),
            )
            .collect();
        let (header, rows) = rows_of(&bytes);
        assert_eq!(
            (header.encoding, header.delimiter),
            (TextEncoding::Utf16Le, b'\t')
        );
        assert_eq!(header.names, ["email", "amount"]);
        assert_eq!(rows[0].1, ["zoë@x.io", "5"]);
    }

    /// Every row's cells, read whole, and read again resuming after many a
    /// row: the same.
    fn resumes_everywhere(file: &[u8]) {
        let (header, all) = rows_of(file);
        let mut input = CsvInput::open(file).unwrap();
        while let Some(row) = input.next_row().unwrap() {
            // Every row near the start and the end, every 97th between.
            if row > 20 && row + 20 < all.len() as u64 && row % 97 != 0 {
                continue;
            }
            let offset = input.resume_offset();
            let mut rest = CsvInput::resume(&file[offset as usize..], header.clone(), offset, row);
            let mut read = Vec::new();
            while let Some(n) = rest.next_row().unwrap() {
                let cells = rest
                    .record()
                    .iter()
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect();
                read.push((n, cells));
            }
            assert_eq!(
                read,
                all[row as usize..],
                "resumed after row {row} at byte {offset}"
            );
        }
    }

    fn sample_text(rows: usize) -> String {
        let mut text = String::from("email;name;note\r\n");
        for n in 0..rows {
            let name = ["Zoë", "€uro", "Ann", "Jörg \"J\""][n % 4];
            let note = if n % 7 == 0 {
                "\"two\nlines; quoted\""
            } else {
                "plain"
            };
            text.push_str(&format!("r{n}@x.io;{name};{note}\r\n"));
            if n % 11 == 0 {
                text.push_str("\r\n");
            }
        }
        text
    }

    #[test]
    fn a_utf8_file_resumes_at_any_row() {
        let mut file = BOM.to_vec();
        file.extend(sample_text(3_000).as_bytes());
        file.extend("r;😀;last".as_bytes());
        resumes_everywhere(&file);
    }

    #[test]
    fn a_windows_1252_file_resumes_at_any_row() {
        let text = sample_text(3_000);
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
        let mut file = bytes.into_owned();
        // An undefined byte, passed through to fail its row only.
        file.extend(b"r\x81@x.io;a;b\r\nlast@x.io;\xe9;\x80\r\n");
        resumes_everywhere(&file);
    }

    #[test]
    fn a_utf16_file_resumes_at_any_row() {
        let text = sample_text(1_500).replace(';', "\t") + "r\t😀\tlast\r\n";
        let mut le = vec![0xFF, 0xFE];
        let mut be = vec![0xFE, 0xFF];
        for unit in text.encode_utf16() {
            le.extend(unit.to_le_bytes());
            be.extend(unit.to_be_bytes());
        }
        resumes_everywhere(&le);
        resumes_everywhere(&be);
    }
}
