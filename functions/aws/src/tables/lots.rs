//! A wallet's expiring lots as stored: one binary attribute, so that the
//! wallet item stays under DynamoDB's 400 KB item limit whatever the
//! wallet's history.
//!
//! The lots are in expiry order, one per day (`shared::ledger`): each is its
//! day as the number of days since the previous lot's (the first: since
//! 1970-01-01) and its points, both as LEB128 varints. At most
//! [`MAX_LOTS`] lots can be unexpired, on consecutive days at worst: one
//! byte for each day step, at most nine for the points, so the attribute
//! stays under 10 bytes a lot, 365 KB in all ([`MAX_PACKED_BYTES`]).

use chrono::{Duration, NaiveDate};
use serde::de::{Error as _, Visitor};
use serde::{Deserializer, Serializer};
use shared::ledger::{Lot, MAX_LOTS};

/// The most the attribute can take, at [`MAX_LOTS`] lots.
pub const MAX_PACKED_BYTES: usize = 10 * MAX_LOTS + 3;

fn epoch() -> NaiveDate {
    NaiveDate::default()
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn take_varint(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The lots, packed.
pub fn pack(lots: &[Lot]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lots.len() * 4);
    let mut previous = epoch();
    for lot in lots {
        let step = (lot.expires_on - previous).num_days().max(0) as u64;
        put_varint(&mut out, step);
        put_varint(&mut out, lot.remaining.max(0) as u64);
        previous = lot.expires_on;
    }
    debug_assert!(lots.len() > MAX_LOTS || out.len() <= MAX_PACKED_BYTES);
    out
}

/// The lots packed by [`pack`], or `None` if the bytes are not such lots.
pub fn unpack(mut bytes: &[u8]) -> Option<Vec<Lot>> {
    let mut lots = Vec::new();
    let mut day = epoch();
    while !bytes.is_empty() {
        let step = i64::try_from(take_varint(&mut bytes)?).ok()?;
        day = day.checked_add_signed(Duration::try_days(step)?)?;
        let remaining = i64::try_from(take_varint(&mut bytes)?).ok()?;
        lots.push(Lot {
            expires_on: day,
            remaining,
        });
    }
    Some(lots)
}

/// `#[serde(with = "lots")]`: a `Vec<Lot>` as one binary attribute.
pub fn serialize<S: Serializer>(lots: &[Lot], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(&pack(lots))
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Lot>, D::Error> {
    struct Packed;
    impl Visitor<'_> for Packed {
        type Value = Vec<Lot>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a wallet's packed lots")
        }
        fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Vec<Lot>, E> {
            unpack(bytes).ok_or_else(|| E::custom("malformed packed lots"))
        }
    }
    deserializer
        .deserialize_bytes(Packed)
        .map_err(|e| D::Error::custom(format!("lots: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn lots_come_back_as_they_were_packed() {
        let lots = vec![
            Lot {
                expires_on: day(2026, 12, 4),
                remaining: 1,
            },
            Lot {
                expires_on: day(2027, 1, 10),
                remaining: 10_000_000,
            },
            Lot {
                expires_on: day(2126, 11, 9),
                remaining: i64::MAX,
            },
        ];
        assert_eq!(unpack(&pack(&lots)), Some(lots));
        assert_eq!(unpack(&[]), Some(Vec::new()));
        assert_eq!(unpack(&[0x80]), None);
    }

    #[test]
    fn the_fullest_wallet_packs_under_its_stated_bound() {
        // Every day from today to the furthest expiry, each lot holding as
        // many points as the wallet's balance can (its sum fits an i64).
        let today = day(2026, 12, 3);
        let lots: Vec<Lot> = (0..MAX_LOTS as i64)
            .map(|d| Lot {
                expires_on: today + Duration::days(d),
                remaining: i64::MAX / MAX_LOTS as i64,
            })
            .collect();
        let packed = pack(&lots);
        assert!(packed.len() <= MAX_PACKED_BYTES, "{}", packed.len());
        assert_eq!(unpack(&packed), Some(lots.clone()));

        // The whole item, for the longest customer a row can name, by
        // DynamoDB's size rules: under its 400 KB limit.
        let customer = shared::identifier::CustomerRef::Email(format!(
            "{}@{}.com",
            "l".repeat(64),
            "d".repeat(250)
        ));
        let item = super::super::wallets::WalletItem {
            pk: format!("{}#{customer}", "t".repeat(64)),
            sk: "WALLET".into(),
            tenant_id: "t".repeat(64),
            customer,
            permanent: i64::MAX,
            lots,
            version: u64::MAX,
            balance: i64::MAX,
            // A job id: `<yyyymmddhhmmss>-<12 hex>`.
            created_by: Some("20261203180101-0b94be8a0d63".into()),
            updated_at: chrono::Utc::now(),
            ttl: Some(i64::MAX),
        };
        let item = serde_dynamo::to_item(&item).unwrap();
        let size = crate::capacity::stored_item_size(&item);
        assert!(size < 400 * 1024, "{size} bytes");
        println!("the fullest wallet item: {size} bytes");
    }
}
