//! The bucket adapter against the emulator: a processed file of any size is
//! written part by part, never held whole.

use loyalty_aws::faults::FaultPlan;
use loyalty_aws::objects::PART_BYTES;
use pipeline_tests::{unique, Harness};
use std::io::Write;
use tokio::runtime::Handle;

#[tokio::test(flavor = "multi_thread")]
async fn a_file_larger_than_a_part_is_uploaded_in_parts_and_comes_back_whole() {
    let h = Harness::start().await;
    let plan = FaultPlan::counting();
    let aws = loyalty_aws::Aws::with_faults(h.aws.settings.clone(), plan.clone()).await;
    let key = format!("processed/{}/big.processed.csv", unique("t"));
    // Two full parts and a bit, written in odd-sized pieces.
    let content: Vec<u8> = (0..2 * PART_BYTES + 3).map(|i| (i % 251) as u8).collect();
    let writer = aws.objects.writer(Handle::current(), &key, "text/csv");
    let pieces = content.clone();
    tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        for piece in pieces.chunks(1_000_003) {
            writer.write_all(piece).unwrap();
        }
        writer.finish().unwrap();
    })
    .await
    .unwrap();
    let calls = plan.calls();
    assert_eq!(
        calls,
        [
            "S3:CreateMultipartUpload",
            "S3:UploadPart",
            "S3:UploadPart",
            "S3:UploadPart",
            "S3:CompleteMultipartUpload"
        ]
    );
    assert_eq!(h.aws.objects.get_bytes(&key).await.unwrap(), content);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_smaller_than_a_part_is_put_in_one_request() {
    let h = Harness::start().await;
    let plan = FaultPlan::counting();
    let aws = loyalty_aws::Aws::with_faults(h.aws.settings.clone(), plan.clone()).await;
    let key = format!("processed/{}/small.processed.csv", unique("t"));
    let writer = aws.objects.writer(Handle::current(), &key, "text/csv");
    tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        writer.write_all(b"email,status\n").unwrap();
        writer.finish().unwrap();
    })
    .await
    .unwrap();
    assert_eq!(plan.calls(), ["S3:PutObject"]);
    assert_eq!(
        h.aws.objects.get_bytes(&key).await.unwrap(),
        b"email,status\n"
    );
}
