//! What an email says, once, and its plain text part. The HTML part
//! (`super::html`) renders the same letter.

use super::texts::Texts;
use crate::digest::ErrorDigest;
use std::fmt::Write;

/// An email's content, in plain words (no markup): the HTML part escapes
/// every piece of it.
pub(super) struct Letter<'a> {
    pub texts: &'static Texts,
    /// The subject, and the HTML part's heading.
    pub subject: String,
    pub intro: String,
    /// Labelled values: the job, its reason, its counts.
    pub facts: Vec<(&'static str, String)>,
    /// Paragraphs after the facts.
    pub notes: Vec<String>,
    /// The rows not applied, by code (none in a rejection).
    pub errors: &'a ErrorDigest,
    /// The processed file's link, and the hours it lasts.
    pub link: Option<(&'a str, u64)>,
}

impl Letter<'_> {
    pub fn text(&self) -> String {
        let t = self.texts;
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_text(&mut out, t);
        out
    }

    fn write_text(&self, out: &mut String, t: &Texts) -> std::fmt::Result {
        writeln!(out, "{}\n", self.intro)?;
        for (label, value) in &self.facts {
            writeln!(out, "{label}{}{value}", t.colon)?;
        }
        for note in &self.notes {
            writeln!(out, "\n{note}")?;
        }
        if !self.errors.is_empty() {
            writeln!(out, "\n{}{}", t.errors_heading, t.colon.trim_end())?;
            for code in &self.errors.codes {
                writeln!(
                    out,
                    "- {} ({}){}{}",
                    code.code,
                    (t.code)(code.code),
                    t.colon,
                    (t.row_count)(code.count)
                )?;
                for example in &code.examples {
                    writeln!(
                        out,
                        "    {} {}{}{}",
                        t.row,
                        example.row,
                        t.colon,
                        example.detail()
                    )?;
                }
            }
        }
        if let Some((url, hours)) = self.link {
            writeln!(out, "\n{}\n{url}", (t.download_within)(hours))?;
        }
        Ok(())
    }
}
