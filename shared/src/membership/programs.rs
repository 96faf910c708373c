//! A tenant's membership configuration: its universe name (the first part
//! of its file names), its loyalty programs with their ordered tiers,
//! whether card codes are generated when a file leaves them empty, and the
//! custom fields its card files may carry after the mandatory columns.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memberships {
    pub universe: String,
    #[serde(default)]
    pub auto_card_codes: bool,
    pub programs: Vec<Program>,
    #[serde(default)]
    pub custom_fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    pub id_program: u64,
    pub name: String,
    /// Any order here; `rank` orders them (lowest rank = entry tier).
    pub tiers: Vec<Tier>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub id_tier: u64,
    pub name: String,
    pub rank: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the universe name '{0}' must be letters, digits and '-' (it starts every file name)")]
    Universe(String),
    #[error("program {0} is listed twice")]
    DuplicateProgram(u64),
    #[error("program {0} has no tier")]
    NoTier(u64),
    #[error("program {program} lists tier {id_tier} twice")]
    DuplicateTier { program: u64, id_tier: u64 },
    #[error("program {program} has two tiers named '{name}'")]
    DuplicateTierName { program: u64, name: String },
    #[error("program {program} has two tiers of rank {rank}")]
    DuplicateRank { program: u64, rank: u32 },
    #[error(
        "custom field '{0}' must be lower-case letters, digits and '_', and not a standard column"
    )]
    CustomField(String),
    #[error("{0} custom fields: a card file may carry at most {MAX_CUSTOM_FIELDS}")]
    TooManyCustomFields(usize),
}

/// The most custom fields a tenant's card files may carry: with each value
/// at most `MAX_CUSTOM_FIELD_CHARS`, a card row stays well inside a batch
/// message (SQS: 256 KiB) and a card inside its item (400 KB).
pub const MAX_CUSTOM_FIELDS: usize = 20;

/// The standard columns of a card code file, in the order a file has them.
pub const CARD_COLUMNS: [&str; 7] = [
    "card_code",
    "customer_key",
    "id_program",
    "join_date",
    "expiration_date",
    "birthday",
    "id_tier",
];

impl Memberships {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name_ok = |s: &str, extra: u8| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == extra)
        };
        if !name_ok(&self.universe, b'-') {
            return Err(ConfigError::Universe(self.universe.clone()));
        }
        for (i, program) in self.programs.iter().enumerate() {
            if self.programs[..i]
                .iter()
                .any(|p| p.id_program == program.id_program)
            {
                return Err(ConfigError::DuplicateProgram(program.id_program));
            }
            if program.tiers.is_empty() {
                return Err(ConfigError::NoTier(program.id_program));
            }
            // Tier ids are a program's own (the source document's example
            // has tier 2 in programs 1 and 3): a tier is always looked up
            // within the card's program.
            for (j, tier) in program.tiers.iter().enumerate() {
                let earlier = &program.tiers[..j];
                if earlier.iter().any(|t| t.id_tier == tier.id_tier) {
                    return Err(ConfigError::DuplicateTier {
                        program: program.id_program,
                        id_tier: tier.id_tier,
                    });
                }
                if earlier
                    .iter()
                    .any(|t| t.name.eq_ignore_ascii_case(&tier.name))
                {
                    return Err(ConfigError::DuplicateTierName {
                        program: program.id_program,
                        name: tier.name.clone(),
                    });
                }
                if earlier.iter().any(|t| t.rank == tier.rank) {
                    return Err(ConfigError::DuplicateRank {
                        program: program.id_program,
                        rank: tier.rank,
                    });
                }
            }
        }
        if self.custom_fields.len() > MAX_CUSTOM_FIELDS {
            return Err(ConfigError::TooManyCustomFields(self.custom_fields.len()));
        }
        for field in &self.custom_fields {
            let lower = field.bytes().all(|b| !b.is_ascii_uppercase());
            if !name_ok(field, b'_') || !lower || CARD_COLUMNS.contains(&field.as_str()) {
                return Err(ConfigError::CustomField(field.clone()));
            }
        }
        Ok(())
    }

    pub fn program(&self, id_program: u64) -> Option<&Program> {
        self.programs.iter().find(|p| p.id_program == id_program)
    }
}

impl Program {
    /// The entry tier: the lowest rank.
    pub fn lowest_tier(&self) -> Option<&Tier> {
        self.tiers.iter().min_by_key(|t| t.rank)
    }

    pub fn tier(&self, id_tier: u64) -> Option<&Tier> {
        self.tiers.iter().find(|t| t.id_tier == id_tier)
    }

    /// Tier names are matched without regard to case or surrounding blanks.
    pub fn tier_named(&self, name: &str) -> Option<&Tier> {
        let name = name.trim();
        self.tiers
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Memberships {
        let tier = |id_tier, name: &str, rank| Tier {
            id_tier,
            name: name.into(),
            rank,
        };
        Memberships {
            universe: "myuniverse".into(),
            auto_card_codes: true,
            programs: vec![
                Program {
                    id_program: 1,
                    name: "Club".into(),
                    tiers: vec![
                        tier(4, "Gold", 3),
                        tier(2, "Silver", 2),
                        tier(1, "Bronze", 1),
                    ],
                },
                Program {
                    id_program: 3,
                    name: "Kids".into(),
                    tiers: vec![tier(7, "Explorer", 1), tier(8, "Captain", 2)],
                },
            ],
            custom_fields: vec!["store".into()],
        }
    }

    #[test]
    fn the_entry_tier_is_the_lowest_rank_and_names_match_in_any_case() {
        let config = sample();
        assert!(config.validate().is_ok());
        let club = config.program(1).unwrap();
        assert_eq!(club.lowest_tier().unwrap().name, "Bronze");
        assert_eq!(club.tier_named(" gold ").unwrap().id_tier, 4);
        assert!(club.tier(7).is_none(), "tier 7 belongs to another program");
    }

    #[test]
    fn inconsistent_configurations_are_refused() {
        let mut config = sample();
        config.programs[1].tiers[0].id_tier = 8;
        assert_eq!(
            config.validate(),
            Err(ConfigError::DuplicateTier {
                program: 3,
                id_tier: 8
            })
        );
        // The same id in two programs is two tiers.
        let mut config = sample();
        config.programs[1].tiers[0].id_tier = 4;
        assert!(config.validate().is_ok());
        let mut config = sample();
        config.custom_fields.push("id_tier".into());
        assert_eq!(
            config.validate(),
            Err(ConfigError::CustomField("id_tier".into()))
        );
        let mut config = sample();
        config.custom_fields = (0..=MAX_CUSTOM_FIELDS).map(|n| format!("f{n}")).collect();
        assert_eq!(
            config.validate(),
            Err(ConfigError::TooManyCustomFields(MAX_CUSTOM_FIELDS + 1))
        );
        let mut config = sample();
        config.programs[0].tiers[1].rank = 3;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::DuplicateRank { .. })
        ));
    }
}
