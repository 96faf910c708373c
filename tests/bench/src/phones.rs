//! `loyalty-bench phones`: mobile numbers to E.164 by each candidate
//! library, on one generated corpus, for speed and for agreement with
//! `phonenumber` (the library the importer used first).
//!
//! Every candidate applies the importer's own rules first, the same for all
//! (a number a spreadsheet turned into scientific notation, or a national
//! number of a trunk-0 country without its 0, is refused before any library
//! reads it), then parses the number in the tenant's country, refuses it
//! unless it is valid, and formats it as E.164.

use std::collections::BTreeMap;
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The tenant countries the corpus draws from, with their calling codes.
const COUNTRIES: [(&str, &str); 7] = [
    ("FR", "33"),
    ("BE", "32"),
    ("ES", "34"),
    ("IT", "39"),
    ("DE", "49"),
    ("GB", "44"),
    ("US", "1"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Library {
    /// `phonenumber` 0.3, the reference.
    Phonenumber,
    /// `rlibphonenumber` 2.2, a port of Google's libphonenumber 9.
    Rlib,
    /// `phonelib` 2.1, its own tables of number ranges.
    Phonelib,
    /// What the importer runs: `shared::identifier::CustomerRef::mobile`.
    Importer,
}

impl Library {
    pub const ALL: [Library; 4] = [
        Library::Phonenumber,
        Library::Rlib,
        Library::Phonelib,
        Library::Importer,
    ];

    fn name(self) -> &'static str {
        match self {
            Library::Phonenumber => "phonenumber",
            Library::Rlib => "rlibphonenumber",
            Library::Phonelib => "phonelib",
            Library::Importer => "importer",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Library::Phonenumber => "`phonenumber` 0.3 (before)",
            Library::Rlib => "`rlibphonenumber` 2.2",
            Library::Phonelib => "`phonelib` 2.1",
            Library::Importer => "the importer (`CustomerRef::mobile`)",
        }
    }

    /// The number in E.164, or `None` where it is refused.
    pub fn e164(self, raw: &str, country: &str) -> Option<String> {
        if self == Library::Importer {
            let rules = shared::identifier::MobileCountry::new(country);
            return shared::identifier::CustomerRef::mobile(raw, &rules)
                .ok()
                .map(|c| c.value().to_owned());
        }
        let value = raw.trim();
        if refused_by_rules(value, country) {
            return None;
        }
        match self {
            Library::Phonenumber => {
                let id = phonenumber::country::Id::from_str(country).ok();
                let number = phonenumber::parse(id, value).ok()?;
                phonenumber::is_valid(&number)
                    .then(|| number.format().mode(phonenumber::Mode::E164).to_string())
            }
            Library::Rlib => {
                let region = rlibphonenumber::Region::from_str(country).ok();
                let number = rlibphonenumber::PHONE_NUMBER_UTIL
                    .parse(value, region)
                    .ok()?;
                number.is_valid().then(|| {
                    number
                        .format_as(rlibphonenumber::PhoneNumberFormat::E164)
                        .into_owned()
                })
            }
            Library::Phonelib => phonelib::PhoneNumber::parse_with_country(value, country)
                .map(|n| n.e164().to_owned()),
            Library::Importer => unreachable!("handled above"),
        }
    }
}

/// The importer's rules before any library: scientific notation, and a
/// trunk-0 country's national number without its 0.
fn refused_by_rules(value: &str, country: &str) -> bool {
    if value.contains(['e', 'E']) && value.contains('.') {
        return true;
    }
    // The importer's list, held to `phonenumber`'s metadata by its tests.
    let trunk_zero = shared::identifier::MobileCountry::new(country).trunk_zero();
    let digits = value.trim_start_matches(|c: char| !c.is_ascii_digit() && c != '+');
    trunk_zero && !digits.starts_with(['0', '+'])
}

/// How a number of the corpus is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Form {
    /// `06 12 34 56 78`, `0612345678`, `06.12.34.56.78`, `(415) 555-0132`.
    National,
    /// `+33 6 12 34 56 78`, `+33612345678`, `+33 (0)6 12 34 56 78`.
    International,
    /// `0033 6 12 34 56 78` (or `011 33 …` from the US).
    AccessCode,
    /// Another country's number, in international form.
    Foreign,
    /// A national number with its trunk 0 dropped, as a spreadsheet does.
    NoTrunk,
    /// A digit too few or too many, letters, scientific notation, a
    /// made-up range.
    Damaged,
}

impl Form {
    fn title(self) -> &'static str {
        match self {
            Form::National => "national",
            Form::International => "international (+)",
            Form::AccessCode => "international (00)",
            Form::Foreign => "another country's",
            Form::NoTrunk => "trunk 0 dropped",
            Form::Damaged => "damaged",
        }
    }
}

/// How a library's outcome differs from the reference's, by what the
/// number is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Difference {
    /// Another country's number after `+` or an access code: the
    /// reference applies the tenant's own national prefix to it
    /// (`+33 (0)6 …` refused in Spain, `+49 170 …` read as `+49 70 …` in
    /// the US).
    Abroad,
    /// A letter in the number: the reference reads it as a keypad digit
    /// (`x` as 9), Google's library as the start of an extension.
    Letter,
    /// A national number that begins with the country's own calling code
    /// (`39…` in Italy): the reference strips the code even where the whole
    /// number is valid; Google's library keeps the valid national reading.
    OwnCallingCode,
    /// Anything else: valid now, refused before.
    NowValid,
    /// Anything else: refused now, valid before.
    NowRefused,
    /// Anything else: both valid, not the same number.
    OtherNumber,
}

impl Difference {
    fn of(case: &Case, reference: &Option<String>, other: &Option<String>) -> Option<Self> {
        if reference == other {
            return None;
        }
        let calling_code = COUNTRIES
            .iter()
            .find(|c| c.0 == case.country)
            .map_or("", |c| c.1);
        let digits: String = case.raw.chars().filter(char::is_ascii_digit).collect();
        let international = case.raw.trim_start().starts_with('+')
            || digits.starts_with("00")
            || digits.starts_with("011");
        let own = format!("+{calling_code}");
        let abroad = international
            && !case.raw.trim_start().starts_with(&own)
            && !digits.starts_with(&format!("00{calling_code}"))
            && !digits.starts_with(&format!("011{calling_code}"));
        Some(if abroad {
            Difference::Abroad
        } else if case.raw.chars().any(|c| c.is_ascii_alphabetic()) {
            Difference::Letter
        } else if !international && digits.starts_with(calling_code) {
            Difference::OwnCallingCode
        } else {
            match (reference, other) {
                (None, _) => Difference::NowValid,
                (_, None) => Difference::NowRefused,
                _ => Difference::OtherNumber,
            }
        })
    }

    fn title(self) -> &'static str {
        match self {
            Difference::Abroad => "another country's number after + or 00",
            Difference::Letter => "a letter in the number",
            Difference::OwnCallingCode => "a national number beginning with its calling code",
            Difference::NowValid => "other: valid now, refused before",
            Difference::NowRefused => "other: refused now, valid before",
            Difference::OtherNumber => "other: another number",
        }
    }
}

pub struct Case {
    pub country: &'static str,
    pub form: Form,
    pub raw: String,
}

/// A deterministic corpus of `per_country` numbers for each country.
pub fn corpus(per_country: usize, seed: u64) -> Vec<Case> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut cases = Vec::with_capacity(per_country * COUNTRIES.len());
    for (i, &(country, code)) in COUNTRIES.iter().enumerate() {
        for n in 0..per_country {
            let form = match n % 20 {
                0..=7 => Form::National,
                8..=11 => Form::International,
                12 | 13 => Form::AccessCode,
                14 | 15 => Form::Foreign,
                16 => Form::NoTrunk,
                _ => Form::Damaged,
            };
            let (number_country, number_code) = if form == Form::Foreign {
                COUNTRIES[(i + 1 + rng.usize(..COUNTRIES.len() - 1)) % COUNTRIES.len()]
            } else {
                (country, code)
            };
            let nsn = significant_number(&mut rng, number_country);
            let raw = write(&mut rng, form, country, number_country, number_code, &nsn);
            cases.push(Case { country, form, raw });
        }
    }
    cases
}

fn digits(rng: &mut fastrand::Rng, n: usize) -> String {
    (0..n).map(|_| char::from(b'0' + rng.u8(..10))).collect()
}

/// A national significant number of the country: mostly its mobile and
/// fixed ranges, some of it made up (so valid and invalid both).
fn significant_number(rng: &mut fastrand::Rng, country: &str) -> String {
    let pick =
        |rng: &mut fastrand::Rng, options: &[&str]| options[rng.usize(..options.len())].to_owned();
    let kind = rng.u8(..10);
    let (lead, rest) = match (country, kind) {
        ("FR", 0..=5) => (pick(rng, &["6", "7"]), 8),
        ("FR", 6..=8) => (pick(rng, &["1", "2", "3", "4", "5", "9"]), 8),
        ("BE", 0..=5) => (pick(rng, &["46", "47", "48", "49"]), 7),
        ("BE", 6..=8) => (pick(rng, &["2", "3", "9", "4"]), 7),
        ("ES", 0..=5) => (pick(rng, &["6", "7"]), 8),
        ("ES", 6..=8) => (pick(rng, &["91", "93", "95", "8"]), 7),
        ("IT", 0..=5) => (pick(rng, &["32", "33", "34", "35", "36", "38", "39"]), 8),
        ("IT", 6..=8) => (pick(rng, &["02", "06", "011", "055"]), 6 + rng.usize(..3)),
        ("DE", 0..=5) => (
            pick(rng, &["151", "152", "157", "160", "170", "171", "176"]),
            7 + rng.usize(..2),
        ),
        ("DE", 6..=8) => (
            pick(rng, &["30", "40", "89", "221", "6221"]),
            5 + rng.usize(..4),
        ),
        ("GB", 0..=5) => (pick(rng, &["71", "74", "75", "77", "78", "79"]), 8),
        ("GB", 6..=8) => (
            pick(rng, &["20", "113", "121", "161", "1632"]),
            6 + rng.usize(..3),
        ),
        ("US", 0..=8) => {
            let area = 200 + rng.u16(..800);
            let exchange = 200 + rng.u16(..800);
            (format!("{area}{exchange}"), 4)
        }
        _ => {
            let lead = 1 + rng.usize(..2);
            (digits(rng, lead), 5 + rng.usize(..7))
        }
    };
    lead + &digits(rng, rest)
}

/// The trunk prefix a national number is written with.
fn trunk(country: &str) -> &'static str {
    match country {
        "FR" | "BE" | "DE" | "GB" => "0",
        _ => "",
    }
}

/// Groups of two, of three, or none, with one separator.
fn spaced(rng: &mut fastrand::Rng, digits: &str) -> String {
    let (group, separator) = match rng.u8(..6) {
        0 => (2, " "),
        1 => (3, " "),
        2 => (2, "."),
        3 => (3, "-"),
        4 => (4, " "),
        _ => return digits.to_owned(),
    };
    let bytes = digits.as_bytes();
    bytes
        .chunks(group)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(separator)
}

fn write(
    rng: &mut fastrand::Rng,
    form: Form,
    tenant: &str,
    country: &str,
    code: &str,
    nsn: &str,
) -> String {
    match form {
        Form::National if country == "US" && rng.bool() => {
            format!("({}) {}-{}", &nsn[..3], &nsn[3..6], &nsn[6..])
        }
        Form::National => spaced(rng, &format!("{}{nsn}", trunk(country))),
        Form::International | Form::Foreign => match rng.u8(..4) {
            0 if !trunk(country).is_empty() => format!("+{code} (0){}", spaced(rng, nsn)),
            1 => format!("+{code}{nsn}"),
            _ => format!("+{code} {}", spaced(rng, nsn)),
        },
        Form::AccessCode => {
            let access = if tenant == "US" { "011" } else { "00" };
            format!("{access}{code} {}", spaced(rng, nsn))
        }
        Form::NoTrunk => spaced(rng, nsn),
        Form::Damaged => {
            let whole = format!("{}{nsn}", trunk(country));
            match rng.u8(..5) {
                0 => whole[..whole.len() - 1].to_owned(),
                1 => format!("{whole}{}", rng.u8(..10)),
                2 => format!("{}.{}E+{}", &whole[..1], &whole[1..5], whole.len() - 1),
                3 => format!("{}x{}", &whole[..4], &whole[4..]),
                _ => {
                    let length = 3 + rng.usize(..12);
                    format!("+{code} {}", digits(rng, length))
                }
            }
        }
    }
}

/// Every library's outcome on every case, and how each agrees with the
/// reference, by country and form; then the speed of each.
pub fn run(per_country: usize) -> anyhow::Result<()> {
    let cases = corpus(per_country, 19);
    println!(
        "## Mobile numbers ({} numbers: {per_country} for each of {})\n",
        cases.len(),
        COUNTRIES.map(|c| c.0).join(", ")
    );
    let outcomes: Vec<Vec<Option<String>>> = Library::ALL
        .iter()
        .map(|lib| cases.iter().map(|c| lib.e164(&c.raw, c.country)).collect())
        .collect();
    let reference = &outcomes[0];

    println!("### Agreement with `phonenumber`\n");
    let mut header = String::from("| country | form | numbers | valid (phonenumber) |");
    let mut rule = String::from("|---|---|---:|---:|");
    for lib in &Library::ALL[1..] {
        header.push_str(&format!(" {} differs |", lib.name()));
        rule.push_str("---:|");
    }
    println!("{header}\n{rule}");
    let mut groups: BTreeMap<(&str, Form), Vec<usize>> = BTreeMap::new();
    for (i, case) in cases.iter().enumerate() {
        groups.entry((case.country, case.form)).or_default().push(i);
    }
    let mut totals = vec![0usize; Library::ALL.len()];
    for ((country, form), indices) in &groups {
        let valid = indices.iter().filter(|&&i| reference[i].is_some()).count();
        let mut line = format!(
            "| {country} | {} | {} | {valid} |",
            form.title(),
            indices.len()
        );
        for (l, lib_outcomes) in outcomes.iter().enumerate().skip(1) {
            let differ = indices
                .iter()
                .filter(|&&i| lib_outcomes[i] != reference[i])
                .count();
            totals[l] += differ;
            line.push_str(&format!(" {differ} |"));
        }
        println!("{line}");
    }
    let valid = reference.iter().filter(|o| o.is_some()).count();
    let mut line = format!("| all | | {} | {valid} |", cases.len());
    for total in &totals[1..] {
        line.push_str(&format!(" **{total}** |"));
    }
    println!("{line}\n");

    for (l, lib) in Library::ALL.iter().enumerate().skip(1) {
        let mut kinds: BTreeMap<Difference, Vec<usize>> = BTreeMap::new();
        for i in 0..cases.len() {
            if let Some(kind) = Difference::of(&cases[i], &reference[i], &outcomes[l][i]) {
                kinds.entry(kind).or_default().push(i);
            }
        }
        if kinds.is_empty() {
            continue;
        }
        println!("{} differs:\n", lib.title());
        println!(
            "| difference | numbers | for example | phonenumber | {} |",
            lib.name()
        );
        println!("|---|---:|---|---|---|");
        let show = |o: &Option<String>| o.clone().unwrap_or_else(|| "refused".into());
        for (kind, indices) in &kinds {
            let shown = if kind >= &Difference::NowValid { 20 } else { 4 };
            for (n, &i) in indices
                .iter()
                .step_by((indices.len() / shown).max(1))
                .take(shown)
                .enumerate()
            {
                let (title, count) = if n == 0 {
                    (kind.title(), indices.len().to_string())
                } else {
                    ("", String::new())
                };
                println!(
                    "| {title} | {count} | {} `{}` | {} | {} |",
                    cases[i].country,
                    cases[i].raw,
                    show(&reference[i]),
                    show(&outcomes[l][i])
                );
            }
        }
        println!();
    }

    println!("### Speed\n");
    println!("| library | first number in a fresh process: median of 5 | then per number: best of 3 over the corpus |");
    println!("|---|---:|---:|");
    for lib in Library::ALL {
        let mut firsts = (0..5)
            .map(|_| first_in_fresh_process(lib))
            .collect::<anyhow::Result<Vec<_>>>()?;
        firsts.sort();
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            let mut valid = 0usize;
            for case in &cases {
                valid += usize::from(lib.e164(&case.raw, case.country).is_some());
            }
            best = best.min(started.elapsed());
            std::hint::black_box(valid);
        }
        println!(
            "| {} | {:.2} ms | {:.0} ns |",
            lib.title(),
            firsts[2].as_secs_f64() * 1000.0,
            best.as_secs_f64() * 1e9 / cases.len() as f64
        );
    }
    once_per_distinct_number(&cases);
    Ok(())
}

/// Each number of the corpus four times in a shuffled order (the §1
/// file's four rows per customer), read by the importer every time and
/// read once per distinct number with a map of the numbers seen.
fn once_per_distinct_number(cases: &[Case]) {
    let mut order: Vec<usize> = (0..cases.len()).flat_map(|i| [i; 4]).collect();
    fastrand::Rng::with_seed(4).shuffle(&mut order);
    let every = || {
        let started = Instant::now();
        let valid = order
            .iter()
            .filter(|&&i| {
                Library::Importer
                    .e164(&cases[i].raw, cases[i].country)
                    .is_some()
            })
            .count();
        (started.elapsed(), valid, 0usize)
    };
    let once = || {
        let started = Instant::now();
        let mut seen: std::collections::HashMap<(&str, &str), Option<String>> =
            std::collections::HashMap::new();
        let valid = order
            .iter()
            .filter(|&&i| {
                let case = &cases[i];
                seen.entry((case.country, case.raw.as_str()))
                    .or_insert_with(|| Library::Importer.e164(&case.raw, case.country))
                    .is_some()
            })
            .count();
        let bytes: usize = seen
            .iter()
            .map(|((_, raw), e164)| raw.len() + e164.as_ref().map_or(0, String::len) + 72)
            .sum();
        (started.elapsed(), valid, bytes)
    };
    println!(
        "\n### Each distinct number once\n\n{} numbers, each four times in a shuffled order ({} reads):\n",
        cases.len(),
        order.len()
    );
    println!("| reading | per read: best of 3 | map of the numbers seen |");
    println!("|---|---:|---:|");
    for (name, run) in [
        (
            "every read (the importer)",
            &every as &dyn Fn() -> (Duration, usize, usize),
        ),
        ("once per distinct number", &once),
    ] {
        let (best, valid, bytes) = (0..3)
            .map(|_| run())
            .min_by_key(|r| r.0)
            .unwrap_or_default();
        std::hint::black_box(valid);
        println!(
            "| {name} | {:.0} ns | {} |",
            best.as_secs_f64() * 1e9 / order.len() as f64,
            if bytes == 0 {
                "none".to_owned()
            } else {
                format!("{:.1} MiB", bytes as f64 / 1048576.0)
            }
        );
    }
}

/// The time of the library's first number in a new process: what a cold
/// splitter pays on its first mobile.
fn first_in_fresh_process(lib: Library) -> anyhow::Result<Duration> {
    let out = Command::new(std::env::current_exe()?)
        .args(["phones-first", lib.name()])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nanos: u64 = String::from_utf8(out.stdout)?.trim().parse()?;
    Ok(Duration::from_nanos(nanos))
}

/// `loyalty-bench phones-first <library>`: times one French mobile, the
/// process's first, and prints the nanoseconds.
pub fn first(name: &str) -> anyhow::Result<()> {
    let lib = Library::ALL
        .into_iter()
        .find(|l| l.name() == name)
        .ok_or_else(|| anyhow::anyhow!("no library {name}"))?;
    let started = Instant::now();
    let e164 = lib.e164("06 12 34 56 78", "FR");
    let elapsed = started.elapsed();
    anyhow::ensure!(e164.as_deref() == Some("+33612345678"), "{e164:?}");
    println!("{}", elapsed.as_nanos());
    Ok(())
}
