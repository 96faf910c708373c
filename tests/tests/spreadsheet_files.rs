//! Files as spreadsheets really save them (`tests/files/`), dropped in the
//! bucket and imported end to end: a UTF-8 file with a byte order mark,
//! semicolons, CRLF, quoted cells holding the delimiter and a line break,
//! blank lines, trailing delimiters, spaces around values and headers in
//! any case; a Windows-1252 file; a UTF-16 "Unicode text" file with tabs;
//! and another platform's column names (`lead_id`, `coins`).

use pipeline_tests::{expected, outcomes, processed_rows, Harness};

const EXCEL_UTF8: &[u8] = include_bytes!("../files/excel-utf8-bom-semicolons.csv");
const EXCEL_1252: &[u8] = include_bytes!("../files/excel-windows-1252.csv");
const EXCEL_UNICODE_TEXT: &[u8] = include_bytes!("../files/excel-unicode-text.txt");

#[tokio::test(flavor = "multi_thread")]
async fn an_excel_file_with_a_bom_semicolons_and_quoted_line_breaks_is_read_row_by_row() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(&t, "excel.csv", EXCEL_UTF8, None).await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    let processed = h.processed_file(&job).await;
    assert_eq!(
        outcomes(&processed),
        expected(&[
            ("applied", "", "100"),
            ("applied", "", "25"),
            ("failed", "insufficient_balance", "0"),
            ("applied", "", "50"),
            ("failed", "invalid_customer_id", ""),
            ("failed", "invalid_mobile", ""),
            ("failed", "invalid_amount", ""),
            ("failed", "invalid_mobile", ""),
            ("applied", "", "101"),
        ])
    );
    let rows = processed_rows(&processed);
    // The quoted cells come back whole, the delimiter and line break kept.
    assert_eq!(rows[3].get("customer_id"), "C-1042; main store");
    assert_eq!(rows[4].get("customer_id"), "C-2001\nsecond line");
    assert!(rows[5].get("error_message").contains("3.3612E+10"));
    assert!(rows[6].get("error_message").contains("'1,000'"));
    assert!(rows[7]
        .get("error_message")
        .contains("dropped its leading zero"));
    // The header as written, without its byte order mark.
    assert!(processed.starts_with("Email ;"), "{processed}");
    // Emails trimmed and lower-cased: one wallet however they are written.
    assert_eq!(h.balance(&t, "email:alice@example.com").await, 101);
    assert_eq!(h.balance(&t, "mobile:+33612345678").await, 25);
    assert_eq!(h.balance(&t, "customer_id:C-1042; main store").await, 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn another_platforms_column_names_are_read_as_ours() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    let file = "Lead_ID,Coins,Operation\nL-77,40,CR\nL-77,15,DR\nL-78,1.000,CR\n";
    h.drop_file(&t, "crm-export.csv", file, None).await;
    h.settle(&t).await;
    let processed = h.processed_file(&h.only_job(&t).await).await;
    assert_eq!(
        outcomes(&processed),
        expected(&[
            ("applied", "", "40"),
            ("applied", "", "25"),
            ("failed", "invalid_amount", ""),
        ])
    );
    let message = processed_rows(&processed)[2]
        .get("error_message")
        .to_owned();
    assert!(message.contains("column coins: '1.000'"), "{message}");
    assert_eq!(h.balance(&t, "customer_id:L-77").await, 25);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_windows_1252_file_is_decoded_and_a_byte_it_cannot_hold_fails_its_row() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(&t, "export-caisse.csv", EXCEL_1252, None).await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    let processed = h.processed_file(&job).await;
    assert_eq!(
        outcomes(&processed),
        expected(&[
            ("applied", "", "30"),
            ("applied", "", "12"),
            ("applied", "", "8"),
            ("failed", "invalid_encoding", ""),
        ])
    );
    // The processed file is UTF-8 and holds the names as the merchant typed them.
    let rows = processed_rows(&processed);
    assert_eq!(rows[0].get("customer_id"), "Zoë Müller");
    assert_eq!(rows[1].get("customer_id"), "Café-Crème n°2");
    assert!(rows[3].get("error_message").contains("column customer_id"));
    assert_eq!(h.balance(&t, "customer_id:Zoë Müller").await, 30);
    assert_eq!(h.balance(&t, "email:élodie@exemple.fr").await, 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_excel_unicode_text_file_is_read_as_utf16_with_tabs() {
    let h = Harness::start().await;
    let t = h.tenant().await;
    h.drop_file(&t, "unicode.txt", EXCEL_UNICODE_TEXT, None)
        .await;
    h.settle(&t).await;
    let job = h.only_job(&t).await;
    assert_eq!(
        outcomes(&h.processed_file(&job).await),
        expected(&[("applied", "", "15"), ("applied", "", "6")])
    );
    assert_eq!(h.balance(&t, "email:zoë@example.com").await, 15);
}
