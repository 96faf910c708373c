//! The IAM actions a request needs, and on what, read off the request the
//! SDK is about to sign: what a function's role must allow for the calls it
//! really makes. The fault plan records them (`FaultPlan::accesses`), and
//! the least-privilege test checks them against the template's roles.
//!
//! An access reads `<action> <resource>`, the resource one of
//! `table/<name>`, `object/<bucket>/<key>`, `bucket/<bucket>`,
//! `queue/<name>`, `from/<address>` (the sender of an email) and
//! `configuration-set/<name>` (the SES configuration set it is sent under): the test
//! turns them into ARNs of the stack it provisioned.

use percent_encoding::percent_decode_str;
use serde_json::Value;

/// The accesses one request needs: `operation` of `service` (the SDK's
/// names), sent to `uri` with this body (`None`: a streamed body).
pub fn of_request(service: &str, operation: &str, uri: &str, body: Option<&[u8]>) -> Vec<String> {
    let json = || body.and_then(|b| serde_json::from_slice::<Value>(b).ok());
    match service {
        "DynamoDB" => dynamodb(operation, &json().unwrap_or(Value::Null)),
        "S3" => s3(operation, uri),
        "SQS" => {
            let queue = json()
                .and_then(|j| j["QueueUrl"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let name = queue.rsplit('/').next().unwrap_or_default();
            let action = match operation {
                "SendMessageBatch" => "SendMessage",
                "DeleteMessageBatch" => "DeleteMessage",
                "ChangeMessageVisibilityBatch" => "ChangeMessageVisibility",
                other => other,
            };
            vec![format!("sqs:{action} queue/{name}")]
        }
        // SES API v2 (JSON): the sender's identity, and the configuration
        // set the email is sent under, if any, are both authorized.
        "SESv2" => {
            let body = json().unwrap_or(Value::Null);
            let source = body["FromEmailAddress"].as_str().unwrap_or_default();
            let mut accesses = vec![format!("ses:{operation} from/{source}")];
            if let Some(set) = body["ConfigurationSetName"].as_str() {
                accesses.push(format!("ses:{operation} configuration-set/{set}"));
            }
            accesses
        }
        other => vec![format!("{}:{operation} *", other.to_ascii_lowercase())],
    }
}

fn dynamodb(operation: &str, body: &Value) -> Vec<String> {
    let table = |v: &Value| v["TableName"].as_str().unwrap_or_default().to_owned();
    match operation {
        // A transaction needs each item's own action on its table.
        "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let (kind, inner) = item.as_object()?.iter().next()?;
                let action = match kind.as_str() {
                    "Put" => "PutItem",
                    "Update" => "UpdateItem",
                    "Delete" => "DeleteItem",
                    "ConditionCheck" => "ConditionCheckItem",
                    "Get" => "GetItem",
                    _ => return None,
                };
                Some(format!("dynamodb:{action} table/{}", table(inner)))
            })
            .collect(),
        "BatchGetItem" | "BatchWriteItem" => body["RequestItems"]
            .as_object()
            .into_iter()
            .flat_map(|items| items.keys())
            .map(|name| format!("dynamodb:{operation} table/{name}"))
            .collect(),
        // A query of an index needs the action on the index.
        _ => match body["IndexName"].as_str() {
            Some(index) => vec![format!(
                "dynamodb:{operation} table/{}/index/{index}",
                table(body)
            )],
            None => vec![format!("dynamodb:{operation} table/{}", table(body))],
        },
    }
}

fn s3(operation: &str, uri: &str) -> Vec<String> {
    // Path-style (`/<bucket>/<key>`, the emulator) or virtual-hosted.
    let (without_query, query) = uri.split_once('?').unwrap_or((uri, ""));
    let after_scheme = without_query
        .split_once("://")
        .map_or(without_query, |(_, rest)| rest);
    let (host, path) = after_scheme.split_once('/').unwrap_or((after_scheme, ""));
    let path = percent_decode_str(path).decode_utf8_lossy().into_owned();
    let (bucket, key) = match host.split_once(".s3.") {
        Some((bucket, _)) => (bucket.to_owned(), path),
        None => match path.split_once('/') {
            Some((bucket, key)) => (bucket.to_owned(), key.to_owned()),
            None => (path, String::new()),
        },
    };
    let object = format!("object/{bucket}/{key}");
    let versioned = query.split('&').any(|p| p.starts_with("versionId="));
    match operation {
        "GetObject" | "HeadObject" if versioned => vec![format!("s3:GetObjectVersion {object}")],
        "GetObject" | "HeadObject" => vec![format!("s3:GetObject {object}")],
        "ListObjectsV2" | "ListObjects" => vec![format!("s3:ListBucket bucket/{bucket}")],
        "ListObjectVersions" => vec![format!("s3:ListBucketVersions bucket/{bucket}")],
        // A multipart upload is written with the permission to put the object.
        "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload" => {
            vec![format!("s3:PutObject {object}")]
        }
        "ListParts" => vec![format!("s3:ListMultipartUploadParts {object}")],
        other => vec![format!("s3:{other} {object}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_needs_each_items_action_on_its_table() {
        let body = br#"{"TransactItems": [
            {"Put": {"TableName": "w", "Item": {}}},
            {"ConditionCheck": {"TableName": "j", "Key": {}}},
            {"Update": {"TableName": "o", "Key": {}}}]}"#;
        assert_eq!(
            of_request("DynamoDB", "TransactWriteItems", "http://x/", Some(body)),
            [
                "dynamodb:PutItem table/w",
                "dynamodb:ConditionCheckItem table/j",
                "dynamodb:UpdateItem table/o"
            ]
        );
    }

    #[test]
    fn objects_are_read_off_path_style_and_virtual_hosted_urls() {
        assert_eq!(
            of_request(
                "S3",
                "HeadObject",
                "http://127.0.0.1:5055/b/incoming/t/a%20b.csv?versionId=3",
                None
            ),
            ["s3:GetObjectVersion object/b/incoming/t/a b.csv"]
        );
        assert_eq!(
            of_request(
                "S3",
                "PutObject",
                "https://b.s3.eu-west-1.amazonaws.com/processed/t/x.csv?x-id=PutObject",
                None
            ),
            ["s3:PutObject object/b/processed/t/x.csv"]
        );
        assert_eq!(
            of_request(
                "S3",
                "ListObjectsV2",
                "http://h/b?list-type=2&prefix=p",
                None
            ),
            ["s3:ListBucket bucket/b"]
        );
    }

    #[test]
    fn queues_and_senders_are_named() {
        let body = br#"{"QueueUrl": "http://h/123456789012/loyalty-batches.fifo", "Entries": []}"#;
        assert_eq!(
            of_request("SQS", "SendMessageBatch", "http://h/", Some(body)),
            ["sqs:SendMessage queue/loyalty-batches.fifo"]
        );
        let email = br#"{"FromEmailAddress": "imports@shop.example", "ConfigurationSetName": "loyalty-emails",
            "Destination": {"ToAddresses": ["a@b.c"]}}"#;
        assert_eq!(
            of_request(
                "SESv2",
                "SendEmail",
                "http://h/v2/email/outbound-emails",
                Some(email)
            ),
            [
                "ses:SendEmail from/imports@shop.example",
                "ses:SendEmail configuration-set/loyalty-emails"
            ]
        );
    }
}
