//! What a file imports: points (with or without expiry), or one of the two
//! membership scopes. Every import runs through the same pipeline; the kind
//! picks the row format, how rows are batched and how they are applied.

use crate::membership::file_name::Scope;
use crate::membership::programs::Memberships;
use crate::points::PointsKind;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ImportKind {
    #[serde(rename = "points")]
    Points,
    #[serde(rename = "points_with_expiry")]
    PointsWithExpiry,
    /// Smile.io's points template or customer export (`crate::smile`).
    #[serde(rename = "smile")]
    Smile,
    /// Loyalty cards (subscriptions): created or updated.
    #[serde(rename = "cardcode")]
    CardCode,
    /// Tier changes of existing cards.
    #[serde(rename = "tierchange")]
    TierChange,
}

impl ImportKind {
    pub const ALL: [ImportKind; 5] = [
        ImportKind::Points,
        ImportKind::PointsWithExpiry,
        ImportKind::Smile,
        ImportKind::CardCode,
        ImportKind::TierChange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Points => "points",
            ImportKind::PointsWithExpiry => "points_with_expiry",
            ImportKind::Smile => "smile",
            ImportKind::CardCode => "cardcode",
            ImportKind::TierChange => "tierchange",
        }
    }

    /// The native points format, for a native points import.
    pub fn points(self) -> Option<PointsKind> {
        match self {
            ImportKind::Points => Some(PointsKind::Points),
            ImportKind::PointsWithExpiry => Some(PointsKind::PointsWithExpiry),
            ImportKind::Smile | ImportKind::CardCode | ImportKind::TierChange => None,
        }
    }

    /// The membership scope, for a membership import.
    pub fn scope(self) -> Option<Scope> {
        match self {
            ImportKind::CardCode => Some(Scope::CardCode),
            ImportKind::TierChange => Some(Scope::TierChange),
            ImportKind::Points | ImportKind::PointsWithExpiry | ImportKind::Smile => None,
        }
    }

    /// A sample file of this kind.
    pub fn template(self) -> &'static str {
        match self {
            ImportKind::Points | ImportKind::PointsWithExpiry => {
                self.points().map(PointsKind::template).unwrap_or_default()
            }
            ImportKind::Smile => crate::smile::TEMPLATE,
            ImportKind::CardCode => {
                "card_code;customer_key;id_program;join_date;expiration_date;birthday;id_tier\n\
                 \"C-0001\";\"jane@example.com\";\"1\";\"2026-03-01 10:30:00\";\"2027-03-01 00:00:00\";\"1985-02-01\";\"2\"\n\
                 \"\";\"john@example.com\";\"1\";;;;\n"
            }
            ImportKind::TierChange => {
                "card_code;tier_name;context;value_date;last_downgrade_check\n\
                 \"C-0001\";\"Gold\";\"Spring upgrade\";\"2026-04-01 09:00:00\";\n"
            }
        }
    }

    /// A sample file of this kind for a tenant: a membership file's names
    /// the tenant's own program, tiers and custom fields, when it has them.
    pub fn template_for(self, memberships: Option<&Memberships>) -> String {
        match (self, memberships) {
            (ImportKind::CardCode, Some(config)) => crate::membership::cards::template(config),
            (ImportKind::TierChange, Some(config)) => {
                crate::membership::tier_changes::template(config)
            }
            _ => self.template().to_owned(),
        }
    }
}

impl From<PointsKind> for ImportKind {
    fn from(kind: PointsKind) -> Self {
        match kind {
            PointsKind::Points => ImportKind::Points,
            PointsKind::PointsWithExpiry => ImportKind::PointsWithExpiry,
        }
    }
}

impl From<Scope> for ImportKind {
    fn from(scope: Scope) -> Self {
        match scope {
            Scope::CardCode => ImportKind::CardCode,
            Scope::TierChange => ImportKind::TierChange,
        }
    }
}

impl fmt::Display for ImportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ImportKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ImportKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "'{s}' is not an import kind: use points, points_with_expiry, smile, cardcode or tierchange"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_their_names_in_json_and_text() {
        for kind in ImportKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(kind.as_str().parse::<ImportKind>(), Ok(kind));
        }
        assert_eq!(
            serde_json::to_string(&PointsKind::PointsWithExpiry).unwrap(),
            serde_json::to_string(&ImportKind::PointsWithExpiry).unwrap()
        );
        assert!("coins".parse::<ImportKind>().is_err());
    }
}
