//! Which text encoding a file is in, and reading it as UTF-8.
//!
//! Spreadsheets save CSV in more than one encoding: UTF-8 with or without a
//! byte order mark, UTF-16 ("Unicode text", with a mark), and on Windows in
//! Western European locales Windows-1252. The rule, in order:
//!
//! 1. A byte order mark decides: UTF-8, UTF-16 LE or UTF-16 BE.
//! 2. Without one, a file whose first 64 KiB are valid UTF-8 is UTF-8. A
//!    byte further on that is not valid UTF-8 is a row error
//!    (`invalid_encoding`) naming the row, the column and the byte.
//! 3. Anything else is Windows-1252 (a superset of Latin-1's printable
//!    characters), decoded with `encoding_rs`. Its five undefined bytes
//!    (0x81, 0x8D, 0x8F, 0x90, 0x9D) are passed on undecoded, so the cell
//!    holding one is a row error rather than a wrong character.
//!
//! So a character is either read as the spreadsheet wrote it or refused;
//! it is never replaced by a lookalike.

use encoding_rs::{Decoder, UTF_16BE, UTF_16LE, WINDOWS_1252};
use serde::{Deserialize, Serialize};
use std::io::{self, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TextEncoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    Windows1252,
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

impl TextEncoding {
    /// The encoding of a file that starts with `head` (the whole file, or
    /// at least its first 64 KiB).
    pub fn detect(head: &[u8]) -> TextEncoding {
        if head.starts_with(UTF8_BOM) {
            return TextEncoding::Utf8;
        }
        if head.starts_with(b"\xFF\xFE") {
            return TextEncoding::Utf16Le;
        }
        if head.starts_with(b"\xFE\xFF") {
            return TextEncoding::Utf16Be;
        }
        match std::str::from_utf8(head) {
            Ok(_) => TextEncoding::Utf8,
            // A character cut by the end of the sample is still UTF-8.
            Err(e) if e.error_len().is_none() => TextEncoding::Utf8,
            Err(_) => TextEncoding::Windows1252,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::Utf16Le => "UTF-16LE",
            TextEncoding::Utf16Be => "UTF-16BE",
            TextEncoding::Windows1252 => "Windows-1252",
        }
    }
}

/// Bytes Windows-1252 gives no character.
fn undefined_in_1252(b: u8) -> bool {
    matches!(b, 0x81 | 0x8D | 0x8F | 0x90 | 0x9D)
}

/// A file's bytes, read as UTF-8.
pub struct Utf8Text<R> {
    inner: R,
    decoding: Decoding,
    input: Vec<u8>,
    output: Vec<u8>,
    at: usize,
    done: bool,
}

enum Decoding {
    Verbatim,
    Windows1252,
    /// UTF-16, its byte order mark removed by the decoder.
    Utf16(Decoder),
}

const CHUNK: usize = 32 * 1024;

impl<R: Read> Utf8Text<R> {
    pub fn new(inner: R, encoding: TextEncoding) -> Self {
        let decoding = match encoding {
            TextEncoding::Utf8 => Decoding::Verbatim,
            TextEncoding::Windows1252 => Decoding::Windows1252,
            TextEncoding::Utf16Le => Decoding::Utf16(UTF_16LE.new_decoder_with_bom_removal()),
            TextEncoding::Utf16Be => Decoding::Utf16(UTF_16BE.new_decoder_with_bom_removal()),
        };
        Utf8Text {
            inner,
            decoding,
            input: vec![0; CHUNK],
            output: Vec::new(),
            at: 0,
            done: false,
        }
    }

    /// Decodes the next chunk of input into `output`; false at the end.
    /// Decodes a file read from the middle (a row's start): a byte order
    /// mark can only be at the file's start, so none is looked for.
    pub fn resumed(inner: R, encoding: TextEncoding) -> Self {
        let mut text = Self::new(inner, encoding);
        text.decoding = match encoding {
            TextEncoding::Utf16Le => Decoding::Utf16(UTF_16LE.new_decoder_without_bom_handling()),
            TextEncoding::Utf16Be => Decoding::Utf16(UTF_16BE.new_decoder_without_bom_handling()),
            _ => text.decoding,
        };
        text
    }

    fn refill(&mut self) -> io::Result<bool> {
        self.output.clear();
        self.at = 0;
        while self.output.is_empty() && !self.done {
            let read = self.inner.read(&mut self.input)?;
            let chunk = &self.input[..read];
            self.done = read == 0;
            match &mut self.decoding {
                Decoding::Verbatim => self.output.extend_from_slice(chunk),
                Decoding::Windows1252 => {
                    for piece in chunk.split_inclusive(|&b| undefined_in_1252(b)) {
                        let (text, undefined) = match piece.split_last() {
                            Some((&last, text)) if undefined_in_1252(last) => (text, Some(last)),
                            _ => (piece, None),
                        };
                        let (decoded, _) = WINDOWS_1252.decode_without_bom_handling(text);
                        self.output.extend_from_slice(decoded.as_bytes());
                        self.output.extend(undefined);
                    }
                }
                Decoding::Utf16(decoder) => {
                    let room = decoder
                        .max_utf8_buffer_length(chunk.len())
                        .unwrap_or(chunk.len() * 3 + 16);
                    let mut out = vec![0; room];
                    let (_, _, written, _) = decoder.decode_to_utf8(chunk, &mut out, self.done);
                    self.output.extend_from_slice(&out[..written]);
                }
            }
        }
        Ok(!self.output.is_empty())
    }
}

impl<R: Read> Read for Utf8Text<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Decoding::Verbatim = self.decoding {
            return self.inner.read(buf);
        }
        if self.at == self.output.len() && !self.refill()? {
            return Ok(0);
        }
        let n = buf.len().min(self.output.len() - self.at);
        buf[..n].copy_from_slice(&self.output[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8]) -> (TextEncoding, Vec<u8>) {
        let encoding = TextEncoding::detect(bytes);
        let mut out = Vec::new();
        Utf8Text::new(bytes, encoding)
            .read_to_end(&mut out)
            .unwrap();
        (encoding, out)
    }

    #[test]
    fn utf8_is_read_as_it_is_with_or_without_a_mark() {
        assert_eq!(
            text("é;€\n".as_bytes()),
            (TextEncoding::Utf8, "é;€\n".into())
        );
        let marked = [UTF8_BOM, "é".as_bytes()].concat();
        assert_eq!(text(&marked), (TextEncoding::Utf8, marked.clone()));
    }

    #[test]
    fn a_utf8_character_cut_by_the_sample_is_still_utf8() {
        let head = &"aé".as_bytes()[..2];
        assert_eq!(TextEncoding::detect(head), TextEncoding::Utf8);
    }

    #[test]
    fn windows_1252_is_decoded_and_its_undefined_bytes_are_left_for_the_cell_check() {
        // "Zoë;5€;" then 0x81, undefined in Windows-1252.
        let (encoding, out) = text(b"Zo\xEB;5\x80;\x81\n");
        assert_eq!(encoding, TextEncoding::Windows1252);
        assert_eq!(out, ["Zoë;5€;".as_bytes(), b"\x81\n"].concat());
        assert!(std::str::from_utf8(&out).is_err());
    }

    #[test]
    fn utf16_with_a_mark_is_decoded_in_either_byte_order() {
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("é\tx\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(text(&le), (TextEncoding::Utf16Le, "é\tx\n".into()));
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("é\tx\n".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(text(&be), (TextEncoding::Utf16Be, "é\tx\n".into()));
    }

    #[test]
    fn decoding_does_not_depend_on_how_the_input_is_cut() {
        let bytes: Vec<u8> = (0..100_000u32)
            .map(|i| [b'a', 0xE9, b';', b'\n'][i as usize % 4])
            .collect();
        let (_, whole) = text(&bytes);
        assert_eq!(whole.len(), bytes.len() + bytes.len() / 4);
        assert!(std::str::from_utf8(&whole).is_ok());
    }
}
