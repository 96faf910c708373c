//! The HTML part of an email: the letter laid out with inline styles (mail
//! clients drop style sheets), every value escaped.

use super::letter::Letter;
use std::borrow::Cow;
use std::fmt::Write;

/// `text` as HTML text or attribute value: `&`, `<`, `>`, `"` and `'`
/// become character references, so a file name, a reason or a row message
/// quoting a cell can never open a tag or leave an attribute.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

const BODY: &str = "margin:0;padding:24px 12px;background:#f3f4f6;\
                    font-family:Arial,Helvetica,sans-serif;color:#1f2937;";
const CARD: &str = "max-width:640px;margin:0 auto;background:#ffffff;padding:24px;\
                    border-radius:8px;border:1px solid #e5e7eb;";
const H1: &str = "font-size:20px;line-height:1.3;margin:0 0 16px;";
const H2: &str = "font-size:16px;margin:24px 0 8px;";
const P: &str = "font-size:14px;line-height:1.5;margin:0 0 12px;";
const TABLE: &str = "border-collapse:collapse;width:100%;font-size:14px;margin:0 0 12px;";
const TH: &str = "text-align:left;padding:6px 8px;border-bottom:2px solid #e5e7eb;\
                  background:#f9fafb;";
const LABEL: &str = "text-align:left;font-weight:normal;padding:6px 8px;\
                     border-bottom:1px solid #e5e7eb;color:#4b5563;";
const CELL: &str = "padding:6px 8px;border-bottom:1px solid #e5e7eb;vertical-align:top;\
                    word-break:break-word;";
const NUMBER: &str = "padding:6px 8px;border-bottom:1px solid #e5e7eb;vertical-align:top;\
                      text-align:right;white-space:nowrap;";
const CODE: &str = "font-family:Consolas,Menlo,monospace;font-size:13px;";
const MUTED: &str = "color:#6b7280;font-size:13px;";
const EXAMPLE: &str = "font-size:13px;margin:0 0 4px;word-break:break-word;";
const BUTTON: &str = "display:inline-block;padding:12px 20px;background:#1d4ed8;color:#ffffff;\
                      text-decoration:none;border-radius:6px;font-weight:bold;font-size:14px;";
const SMALL: &str = "font-size:12px;line-height:1.5;color:#6b7280;margin:16px 0 0;\
                     word-break:break-all;";

impl Letter<'_> {
    pub fn html(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_html(&mut out);
        out
    }

    fn write_html(&self, out: &mut String) -> std::fmt::Result {
        let t = self.texts;
        let subject = escape(&self.subject);
        writeln!(
            out,
            "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width\">\n<title>{subject}</title>\n\
             </head>\n<body style=\"{BODY}\">\n<div style=\"{CARD}\">\n\
             <h1 style=\"{H1}\">{subject}</h1>\n<p style=\"{P}\">{}</p>",
            t.language.code(),
            escape(&self.intro),
        )?;
        writeln!(out, "<table role=\"presentation\" style=\"{TABLE}\">")?;
        for (label, value) in &self.facts {
            let style = if value.bytes().all(|b| b.is_ascii_digit()) {
                NUMBER
            } else {
                CELL
            };
            writeln!(
                out,
                "<tr><th scope=\"row\" style=\"{LABEL}\">{}</th><td style=\"{style}\">{}</td></tr>",
                escape(label),
                escape(value)
            )?;
        }
        writeln!(out, "</table>")?;
        for note in &self.notes {
            writeln!(out, "<p style=\"{P}\">{}</p>", escape(note))?;
        }
        if !self.errors.is_empty() {
            writeln!(
                out,
                "<h2 style=\"{H2}\">{}</h2>\n<table style=\"{TABLE}\">\n\
                 <tr><th style=\"{TH}\">{}</th><th style=\"{TH}\">{}</th><th style=\"{TH}\">{}</th></tr>",
                escape(t.errors_heading),
                escape(t.error_code),
                escape(t.rows),
                escape(t.examples),
            )?;
            for code in &self.errors.codes {
                write!(
                    out,
                    "<tr><td style=\"{CELL}\"><span style=\"{CODE}\">{}</span><br>\
                     <span style=\"{MUTED}\">{}</span></td><td style=\"{NUMBER}\">{}</td>\
                     <td style=\"{CELL}\">",
                    code.code,
                    escape((t.code)(code.code)),
                    code.count
                )?;
                for example in &code.examples {
                    write!(
                        out,
                        "<p style=\"{EXAMPLE}\">{} {}{}{}</p>",
                        escape(t.row),
                        example.row,
                        escape(t.colon),
                        escape(example.detail())
                    )?;
                }
                writeln!(out, "</td></tr>")?;
            }
            writeln!(out, "</table>")?;
        }
        if let Some((url, hours)) = self.link {
            let url = escape(url);
            writeln!(
                out,
                "<p style=\"{P}\">{}</p>\n<p style=\"{P}\"><a href=\"{url}\" style=\"{BUTTON}\">{}</a></p>\n\
                 <p style=\"{SMALL}\">{}<br><a href=\"{url}\" style=\"color:#1d4ed8;\">{url}</a></p>",
                escape(&(t.download_within)(hours)),
                escape(t.download_button),
                escape(t.link_fallback),
            )?;
        }
        writeln!(out, "</div>\n</body>\n</html>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_quotes_and_ampersands_are_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        );
        assert_eq!(
            escape("\"><img src=x onerror=alert(1)>"),
            "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(escape("Tom & Jerry &amp;"), "Tom &amp; Jerry &amp;amp;");
        assert_eq!(escape("crème brûlée: 10 €"), "crème brûlée: 10 €");
        assert!(matches!(escape("plain"), Cow::Borrowed("plain")));
    }
}
