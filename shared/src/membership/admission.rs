//! Whether a membership file may take its place in its tenant's order: its
//! name must follow the membership naming rule, the tenant must have its
//! programs set up, and the name must be of the tenant's universe. And
//! whether it is short enough to import, its rows counted before any is
//! applied.

use super::file_name::FileName;
use super::programs::Memberships;
use super::MAX_ROWS;

/// Why a card code file of a tenant without programs is refused.
pub const NO_PROGRAMS: &str = "this account has no membership programs set up";

/// The file's name, read, if the file is admitted with the tenant's
/// `programs`; else why not.
pub fn admit(filename: &str, programs: Option<&Memberships>) -> Result<FileName, String> {
    let name = FileName::parse(filename).map_err(|e| e.to_string())?;
    let Some(programs) = programs else {
        return Err(format!(
            "{NO_PROGRAMS}, so card code and tier change files cannot be imported yet: ask for \
             the programs to be configured"
        ));
    };
    if name.universe != programs.universe {
        return Err(format!(
            "the file name is for the universe '{}', but this account's universe is '{}': \
             name the file {}",
            name.universe,
            programs.universe,
            FileName {
                universe: programs.universe.clone(),
                ..name
            }
        ));
    }
    Ok(name)
}

/// Why a membership file with at least `rows` rows is refused, if it is
/// longer than a membership file may be.
pub fn too_many_rows(rows: u64) -> Option<String> {
    (rows > MAX_ROWS).then(|| {
        format!(
            "the file has at least {rows} rows, more than the {MAX_ROWS} a membership file may \
             have: split it into several files of the same day with sequence numbers \
             (…_<YYYYMMDD>_2.csv, …_3.csv)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn programs(universe: &str) -> Memberships {
        Memberships {
            universe: universe.into(),
            auto_card_codes: false,
            programs: Vec::new(),
            custom_fields: Vec::new(),
        }
    }

    #[test]
    fn a_file_of_the_tenants_universe_is_admitted() {
        let name = admit(
            "demoshop_cardcode_s_20261125_2.csv",
            Some(&programs("demoshop")),
        );
        assert_eq!(name.unwrap().sequence, Some(2));
    }

    #[test]
    fn a_bad_name_no_programs_or_another_universe_are_refused() {
        let why = admit("cards.csv", Some(&programs("demoshop"))).unwrap_err();
        assert!(
            why.starts_with("the file name 'cards.csv' names no scope"),
            "{why}"
        );
        assert_eq!(
            admit("demoshop_cardcode_s_20261125.csv", None).unwrap_err(),
            "this account has no membership programs set up, so card code and tier change files \
             cannot be imported yet: ask for the programs to be configured"
        );
        assert_eq!(
            admit(
                "acme_tierchange_s_20261125_3.csv",
                Some(&programs("demoshop"))
            )
            .unwrap_err(),
            "the file name is for the universe 'acme', but this account's universe is \
             'demoshop': name the file demoshop_tierchange_s_20261125_3.csv"
        );
    }

    #[test]
    fn a_membership_file_may_have_the_limit_of_rows_and_no_more() {
        assert_eq!(too_many_rows(MAX_ROWS), None);
        let why = too_many_rows(MAX_ROWS + 1).unwrap();
        assert!(
            why.starts_with("the file has at least 200001 rows, more than the 200000"),
            "{why}"
        );
    }
}
