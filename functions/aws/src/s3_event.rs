//! S3 "object created" notifications, however they arrive.
//!
//! In production S3 notifies a queue and the splitter receives an SQS event
//! whose bodies are S3 events; `cargo lambda invoke` with a sample file hands
//! it a plain S3 event. Both are accepted here, `s3:TestEvent` bodies (sent
//! when a notification is configured) are skipped, and keys are URL-decoded
//! (`+` is a space). The fields are read leniently: an emulator's events lack
//! `userIdentity`, `requestParameters` and `responseElements`, which
//! `aws_lambda_events::s3::S3Event` requires.

use serde::Deserialize;

/// One object-created record, key decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub size: Option<u64>,
    /// Orders events for one key; tells two uploads apart where versioning is off.
    pub sequencer: Option<String>,
}

/// The records of one delivery: `message_id` is the SQS message they came in
/// (for partial batch failure reports), `None` for a direct S3 invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub message_id: Option<String>,
    /// The queue the message came from (`eventSourceARN`), for SQS events.
    pub source_arn: Option<String>,
    pub objects: Vec<ObjectCreated>,
}

#[derive(Debug, thiserror::Error)]
#[error("not an S3 or SQS event: {0}")]
pub struct EventError(String);

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Records", default)]
    records: Vec<serde_json::Value>,
    #[serde(rename = "Event")]
    event: Option<String>,
}

#[derive(Deserialize)]
struct S3Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: S3Entity,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: S3Bucket,
    object: S3Object,
}

#[derive(Deserialize)]
struct S3Bucket {
    name: String,
}

#[derive(Deserialize)]
struct S3Object {
    key: String,
    size: Option<u64>,
    #[serde(rename = "versionId")]
    version_id: Option<String>,
    sequencer: Option<String>,
}

/// Reads a Lambda event that is either an SQS event carrying S3 events or a
/// plain S3 event.
pub fn deliveries(event: &serde_json::Value) -> Result<Vec<Delivery>, EventError> {
    let envelope = Envelope::deserialize(event).map_err(|e| EventError(e.to_string()))?;
    let is_sqs = envelope
        .records
        .first()
        .and_then(|r| r.get("eventSource"))
        .and_then(|s| s.as_str())
        == Some("aws:sqs");
    if !is_sqs {
        return Ok(vec![Delivery {
            message_id: None,
            source_arn: None,
            objects: objects_of(event)?,
        }]);
    }
    envelope
        .records
        .iter()
        .map(|record| {
            let message_id = record
                .get("messageId")
                .and_then(|m| m.as_str())
                .map(str::to_owned);
            let body = record
                .get("body")
                .and_then(|b| b.as_str())
                .unwrap_or_default();
            let inner: serde_json::Value =
                serde_json::from_str(body).map_err(|e| EventError(format!("message body: {e}")))?;
            Ok(Delivery {
                message_id,
                source_arn: record
                    .get("eventSourceARN")
                    .and_then(|a| a.as_str())
                    .map(str::to_owned),
                objects: objects_of(&inner)?,
            })
        })
        .collect()
}

/// The object-created records of one S3 event (none for `s3:TestEvent`).
fn objects_of(event: &serde_json::Value) -> Result<Vec<ObjectCreated>, EventError> {
    let envelope = Envelope::deserialize(event).map_err(|e| EventError(e.to_string()))?;
    if envelope.event.as_deref() == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    let mut objects = Vec::new();
    for value in envelope.records {
        let record = S3Record::deserialize(&value).map_err(|e| EventError(e.to_string()))?;
        if !record.event_name.starts_with("ObjectCreated") {
            continue;
        }
        objects.push(ObjectCreated {
            bucket: record.s3.bucket.name,
            key: decode_key(&record.s3.object.key)?,
            version_id: record
                .s3
                .object
                .version_id
                .filter(|v| !v.is_empty() && v != "null"),
            size: record.s3.object.size,
            sequencer: record.s3.object.sequencer,
        });
    }
    Ok(objects)
}

/// S3 event keys are URL-encoded with `+` for a space (a real `+` is `%2B`).
pub fn decode_key(raw: &str) -> Result<String, EventError> {
    percent_encoding::percent_decode_str(&raw.replace('+', " "))
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|e| EventError(format!("key '{raw}' is not UTF-8 once decoded: {e}")))
}

/// An S3 notification for an object, as S3 would send it: how an import
/// held back (a membership file waiting for its turn) is handed to the
/// splitter again.
pub fn object_created_event(object: &ObjectCreated) -> serde_json::Value {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let mut entry = serde_json::json!({
        "key": utf8_percent_encode(&object.key, KEEP).to_string(),
    });
    if let Some(size) = object.size {
        entry["size"] = size.into();
    }
    if let Some(version) = &object.version_id {
        entry["versionId"] = version.as_str().into();
    }
    if let Some(sequencer) = &object.sequencer {
        entry["sequencer"] = sequencer.as_str().into();
    }
    serde_json::json!({"Records": [{
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": object.bucket}, "object": entry}
    }]})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s3_event(key: &str) -> serde_json::Value {
        json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-24T10:00:00.000Z", "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "incoming",
                   "bucket": {"name": "imports", "arn": "arn:aws:s3:::imports"},
                   "object": {"key": key, "size": 42, "eTag": "abc", "sequencer": "0055"}}
        }]})
    }

    #[test]
    fn keys_are_url_decoded_with_plus_as_space() {
        let d = deliveries(&s3_event(
            "incoming/acme/spring+bonus+%C3%A9t%C3%A9+1%2B1.csv",
        ))
        .unwrap();
        assert_eq!(
            d[0].objects[0].key,
            "incoming/acme/spring bonus été 1+1.csv"
        );
        assert_eq!(d[0].message_id, None);
    }

    #[test]
    fn an_event_made_here_reads_back_as_the_same_object() {
        let object = ObjectCreated {
            bucket: "imports".into(),
            key: "incoming/acme/memberships/u_cardcode_é 1+1_20261125.csv".into(),
            version_id: Some("v1".into()),
            size: Some(12),
            sequencer: None,
        };
        let read = deliveries(&object_created_event(&object)).unwrap();
        assert_eq!(read[0].objects, [object]);
    }

    #[test]
    fn sqs_wrapped_events_keep_their_message_ids_and_test_events_are_skipped() {
        let event = json!({"Records": [
            {"messageId": "m1", "eventSource": "aws:sqs", "body": s3_event("incoming/acme/a.csv").to_string()},
            {"messageId": "m2", "eventSource": "aws:sqs",
             "body": json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "imports"}).to_string()}
        ]});
        let d = deliveries(&event).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].message_id.as_deref(), Some("m1"));
        assert_eq!(d[0].objects[0].sequencer.as_deref(), Some("0055"));
        assert!(d[1].objects.is_empty());
    }
}
