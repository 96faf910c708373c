//! What a DynamoDB write request costs in write capacity units, computed
//! from the request itself, for the cost benchmark (the emulator does not
//! report consumed capacity faithfully).
//!
//! The rules are DynamoDB's (Developer Guide, "Item sizes and formats" and
//! "Capacity management for transactions"): a write consumes one unit per
//! started kilobyte of the item; a transactional write two. An item's size
//! is the sum of its attribute names' and values' lengths: a string its
//! UTF-8 length, a number about one byte per two significant digits plus
//! one, a boolean or null one byte, a list or map three bytes plus one per
//! element plus its elements. Condition checks read, they do not write.
//!
//! An update's cost depends on the item as stored, which the request does
//! not show: it is counted from the attributes the request names, a lower
//! bound, and reported apart.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use std::collections::BTreeMap;

/// The write units of the requests seen so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteCost {
    /// Units of puts and deletes, whose item the request carries whole.
    pub units: f64,
    /// Units of updates, counted from the attributes they name (a lower
    /// bound), by table.
    pub update_units: BTreeMap<String, f64>,
    /// How many updates each table had.
    pub updates: BTreeMap<String, u64>,
}

impl WriteCost {
    pub fn add(&mut self, other: WriteCost) {
        self.units += other.units;
        for (table, units) in other.update_units {
            *self.update_units.entry(table).or_default() += units;
        }
        for (table, n) in other.updates {
            *self.updates.entry(table).or_default() += n;
        }
    }

    pub fn total(&self) -> f64 {
        self.units + self.update_units.values().sum::<f64>()
    }

    fn update(&mut self, table: &Value, units: f64) {
        let table = table.as_str().unwrap_or_default().to_owned();
        *self.update_units.entry(table.clone()).or_default() += units;
        *self.updates.entry(table).or_default() += 1;
    }
}

/// The cost of one DynamoDB request (`operation` as the API names it, `body`
/// its JSON); zero for reads.
pub fn of_request(operation: &str, body: &[u8]) -> WriteCost {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return WriteCost::default();
    };
    let mut cost = WriteCost::default();
    match operation {
        "PutItem" => cost.units += units(item_size(&request["Item"])),
        "DeleteItem" => cost.units += units(item_size(&request["Key"])),
        "UpdateItem" => cost.update(&request["TableName"], units(update_size(&request))),
        "BatchWriteItem" => {
            for requests in object_values(&request["RequestItems"]) {
                for write in requests.as_array().into_iter().flatten() {
                    let item = &write["PutRequest"]["Item"];
                    let size = if item.is_null() {
                        item_size(&write["DeleteRequest"]["Key"])
                    } else {
                        item_size(item)
                    };
                    cost.units += units(size);
                }
            }
        }
        "TransactWriteItems" => {
            for action in request["TransactItems"].as_array().into_iter().flatten() {
                if !action["Put"].is_null() {
                    cost.units += 2.0 * units(item_size(&action["Put"]["Item"]));
                } else if !action["Delete"].is_null() {
                    cost.units += 2.0 * units(item_size(&action["Delete"]["Key"]));
                } else if !action["Update"].is_null() {
                    let update = &action["Update"];
                    cost.update(&update["TableName"], 2.0 * units(update_size(update)));
                }
            }
        }
        _ => {}
    }
    cost
}

/// Write units of one write of an item of `bytes`: one per started kilobyte.
pub fn units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

fn object_values(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_object().into_iter().flat_map(|m| m.values())
}

/// An update's key, the attribute names it gives and the values it sets.
fn update_size(update: &Value) -> usize {
    item_size(&update["Key"])
        + object_values(&update["ExpressionAttributeNames"])
            .filter_map(Value::as_str)
            .map(str::len)
            .sum::<usize>()
        + object_values(&update["ExpressionAttributeValues"])
            .map(value_size)
            .sum::<usize>()
}

/// The size of an item given as DynamoDB JSON (`{"name": {"S": "..."}}`).
pub fn item_size(item: &Value) -> usize {
    item.as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &Value) -> usize {
    let Some((kind, v)) = value.as_object().and_then(|m| m.iter().next()) else {
        return 0;
    };
    match kind.as_str() {
        "S" => v.as_str().map_or(0, str::len),
        // Base64 in the request: the stored bytes are three quarters of it.
        "B" => v.as_str().map_or(0, |b| b.len() * 3 / 4),
        "N" => v.as_str().map_or(0, number_size),
        "BOOL" | "NULL" => 1,
        "SS" => strings(v).map(str::len).sum(),
        "NS" => strings(v).map(number_size).sum(),
        "BS" => strings(v).map(|b| b.len() * 3 / 4).sum(),
        "L" => {
            let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
            3 + items.iter().map(|i| 1 + value_size(i)).sum::<usize>()
        }
        "M" => {
            3 + v
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, i)| 1 + name.len() + value_size(i))
                .sum::<usize>()
        }
        _ => 0,
    }
}

/// The size of an item as the SDK holds it, by the same rules.
pub fn stored_item_size(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + stored_value_size(value))
        .sum()
}

fn stored_value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(items) => {
            3 + items
                .iter()
                .map(|i| 1 + stored_value_size(i))
                .sum::<usize>()
        }
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(name, i)| 1 + name.len() + stored_value_size(i))
                .sum::<usize>()
        }
        _ => 0,
    }
}

fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

/// About one byte per two significant digits, plus one.
fn number_size(n: &str) -> usize {
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0');
    significant.len().div_ceil(2) + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_item_counts_its_names_and_values() {
        let item = json!({
            "pk": {"S": "acme#email:a@x.io"},
            "version": {"N": "12"},
            "done": {"BOOL": true},
            "lots": {"L": [{"M": {"n": {"N": "100"}}}]}
        });
        // 2+17, 7+2, 4+1, 4+(3 + 1+(3 + 1+1+2))
        assert_eq!(item_size(&item), 19 + 9 + 5 + 15);
    }

    #[test]
    fn a_transaction_costs_two_units_a_started_kilobyte_and_checks_cost_no_write() {
        let big = "x".repeat(1500);
        let body = json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}}}},
            {"Put": {"TableName": "t", "Item": {"pk": {"S": big}}}},
            {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "b"}}}}
        ]});
        let cost = of_request("TransactWriteItems", body.to_string().as_bytes());
        assert_eq!(cost.units, 2.0 + 4.0);
        assert!(cost.update_units.is_empty());
        assert_eq!(of_request("GetItem", b"{}"), WriteCost::default());
    }

    #[test]
    fn a_batch_write_costs_one_unit_a_started_kilobyte_per_item() {
        let body = json!({"RequestItems": {"t": [
            {"PutRequest": {"Item": {"pk": {"S": "a"}}}},
            {"PutRequest": {"Item": {"pk": {"S": "b"}}}}
        ]}});
        assert_eq!(
            of_request("BatchWriteItem", body.to_string().as_bytes()).units,
            2.0
        );
    }
}
