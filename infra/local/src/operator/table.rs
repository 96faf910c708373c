//! Text for a person: a table of columns, and labelled values.

/// A table: a header, then rows, each column as wide as its widest cell,
/// two spaces apart.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The lines of the table, each ending in a line break. A cell's own
    /// line breaks (a file name may hold one) become spaces.
    pub fn render(&self) -> String {
        let clean = |cell: &str| cell.replace(['\n', '\r', '\t'], " ");
        let lines: Vec<Vec<String>> = std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|row| row.iter().map(|c| clean(c)).collect())
            .collect();
        let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                lines
                    .iter()
                    .filter_map(|l| l.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for line in lines {
            let mut text = String::new();
            for (cell, width) in line.iter().zip(&widths) {
                let pad = width - cell.chars().count();
                text.push_str(cell);
                text.push_str(&" ".repeat(pad + 2));
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Labelled values, one a line, the values lined up after the longest
/// label: `  status:   completed`.
pub fn labelled(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    pairs
        .iter()
        .map(|(label, value)| {
            format!(
                "  {:<width$}  {value}\n",
                format!("{label}:"),
                width = width + 1
            )
        })
        .collect()
}

/// A time as the tables show it: UTC to the second, or `-`.
pub fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let mut table = Table::new(&["job", "status"]);
        table.row(vec!["J1".into(), "completed".into()]);
        table.row(vec!["a-longer-job".into(), "line\nbreak".into()]);
        assert_eq!(
            table.render(),
            "job           status\nJ1            completed\na-longer-job  line break\n"
        );
    }

    #[test]
    fn labels_line_their_values_up() {
        assert_eq!(
            labelled(&[("status", "done".into()), ("file", "f.csv".into())]),
            "  status:  done\n  file:    f.csv\n"
        );
    }
}
