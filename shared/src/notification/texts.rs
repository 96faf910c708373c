//! Every word of the emails, one table per language. Adding a language is
//! adding a [`Texts`] here and its [`Language`].

use crate::kind::ImportKind;
use crate::outcome::ErrorCode;
use crate::tenant::Language;

/// An import's name: alone (a subject, a heading) and within a sentence.
pub struct Title {
    pub name: &'static str,
    pub in_sentence: &'static str,
}

/// A reversal's name, alone and within a sentence: (the job it reverts).
pub struct ReversalTitle {
    pub name: fn(&str) -> String,
    pub in_sentence: fn(&str) -> String,
}

/// The words of the emails in one language. Row messages are not among
/// them: they are written where rows are checked, in English.
pub struct Texts {
    pub language: Language,
    /// Between a label and its value.
    pub colon: &'static str,

    pub points_import: Title,
    pub smile_import: Title,
    pub card_code_import: Title,
    pub tier_change_import: Title,
    /// A membership file refused before its name said which kind.
    pub membership_import: Title,
    /// A job undoing another (`crate::reversal`).
    pub reversal: ReversalTitle,

    pub completed: &'static str,
    pub completed_with_errors: &'static str,
    pub rejected: &'static str,
    /// After the verdict, in a dry run's subject and first sentence.
    pub dry_run: &'static str,
    /// The first sentence of a completion email: (import, file, verdict).
    pub finished: fn(&str, &str, &str) -> String,
    /// The first sentence of a rejection email: (import, file).
    pub refused: fn(&str, &str) -> String,

    pub job: &'static str,
    pub adjustment_reason: &'static str,
    pub rows: &'static str,
    pub applied: &'static str,
    pub failed: &'static str,
    pub skipped: &'static str,
    pub points_credited: &'static str,
    pub points_debited: &'static str,
    pub cards_changed: &'static str,
    pub rejection_reason: &'static str,
    /// A rejection's reason when none was recorded.
    pub unreadable: &'static str,

    /// A split given up: (why).
    pub given_up: fn(&str) -> String,
    /// What to do about the rows a split given up never reached.
    pub given_up_next: &'static str,
    /// After a duplicate's rejection.
    pub duplicate_next: &'static str,
    /// After any other rejection.
    pub fix_next: &'static str,

    pub errors_heading: &'static str,
    pub error_code: &'static str,
    pub examples: &'static str,
    /// A count of rows.
    pub row_count: fn(u64) -> String,
    /// Before an example's row number.
    pub row: &'static str,
    /// What an error code means.
    pub code: fn(ErrorCode) -> &'static str,

    /// Before the link: (hours it lasts).
    pub download_within: fn(u64) -> String,
    pub download_button: &'static str,
    pub link_fallback: &'static str,
}

impl Texts {
    pub fn of(language: Language) -> &'static Texts {
        match language {
            Language::En => &EN,
            Language::Fr => &FR,
        }
    }

    /// The import's name: its kind's, or until the file says which, a
    /// membership import if it was dropped as one, else a points import.
    pub fn title(&self, kind: Option<ImportKind>, membership: bool) -> &Title {
        match kind {
            Some(ImportKind::Points | ImportKind::PointsWithExpiry) => &self.points_import,
            Some(ImportKind::Smile) => &self.smile_import,
            Some(ImportKind::CardCode) => &self.card_code_import,
            Some(ImportKind::TierChange) => &self.tier_change_import,
            None if membership => &self.membership_import,
            None => &self.points_import,
        }
    }
}

pub const EN: Texts = Texts {
    language: Language::En,
    colon: ": ",
    points_import: Title {
        name: "Points import",
        in_sentence: "points import",
    },
    smile_import: Title {
        name: "Smile.io points import",
        in_sentence: "Smile.io points import",
    },
    card_code_import: Title {
        name: "Card code import",
        in_sentence: "card code import",
    },
    tier_change_import: Title {
        name: "Tier change import",
        in_sentence: "tier change import",
    },
    membership_import: Title {
        name: "Membership import",
        in_sentence: "membership import",
    },
    reversal: ReversalTitle {
        name: |job| format!("Reversal of import {job}"),
        in_sentence: |job| format!("reversal of import {job}"),
    },
    completed: "completed",
    completed_with_errors: "completed with errors",
    rejected: "rejected",
    dry_run: " (dry run: no wallet was changed)",
    finished: |import, file, verdict| format!("Your {import} of {file} is {verdict}."),
    refused: |import, file| {
        format!("Your {import} of {file} was rejected and nothing was applied.")
    },
    job: "Job",
    adjustment_reason: "Adjustment reason",
    rows: "Rows",
    applied: "Applied",
    failed: "Failed",
    skipped: "Skipped",
    points_credited: "Points credited",
    points_debited: "Points debited",
    cards_changed: "Cards created or changed",
    rejection_reason: "Reason",
    unreadable: "the file could not be read",
    given_up: |why| format!("Not every row could be applied: {why}."),
    given_up_next: "To import the rows marked not_processed, upload a file of just those rows, \
                    with the same header. Uploading this file again would be refused as a \
                    duplicate (and with allow_duplicate it would apply its applied rows a second \
                    time).",
    duplicate_next: "Nothing is wrong with the file: it was imported before.",
    fix_next: "Fix the file and upload it again.",
    errors_heading: "Rows not applied, by error code",
    error_code: "Error code",
    examples: "Examples",
    row_count: |n| match n {
        1 => "1 row".to_owned(),
        n => format!("{n} rows"),
    },
    row: "row",
    code: english_code,
    download_within: |hours| {
        format!(
            "The processed file lists every row with its outcome. Download it within {hours} hours:"
        )
    },
    download_button: "Download the processed file",
    link_fallback: "If the button does not work, open this link:",
};

fn english_code(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::MissingIdentifier => "no email, mobile or customer id",
        ErrorCode::InvalidEmail => "invalid email address",
        ErrorCode::InvalidMobile => "invalid mobile number",
        ErrorCode::InvalidCustomerId => "invalid customer id",
        ErrorCode::MissingAmount => "missing amount",
        ErrorCode::InvalidAmount => "invalid amount",
        ErrorCode::AmountTooLarge => "amount too large",
        ErrorCode::InvalidOperation => "invalid operation",
        ErrorCode::MissingExpiry => "missing expiry",
        ErrorCode::InvalidExpiry => "invalid expiry",
        ErrorCode::InvalidEncoding => "a byte the file's encoding cannot read",
        ErrorCode::TooManyFields => "too many values",
        ErrorCode::TooFewFields => "too few values",
        ErrorCode::InsufficientBalance => "insufficient balance",
        ErrorCode::NothingToChange => "nothing to change",
        ErrorCode::ConflictingIdentifiers => "identifiers that may name two customers",
        ErrorCode::MissingCardCode => "missing card code",
        ErrorCode::MissingProgram => "missing program",
        ErrorCode::UnknownProgram => "unknown program",
        ErrorCode::UnknownTier => "unknown tier",
        ErrorCode::ProgramOnUpdate => "program given for an existing card",
        ErrorCode::TierOnUpdate => "tier given for an existing card",
        ErrorCode::SecondActiveCard => "a second active card in the program",
        ErrorCode::UnknownCard => "unknown card",
        ErrorCode::MissingTierName => "missing tier name",
        ErrorCode::MissingValueDate => "missing value date",
        ErrorCode::InvalidDate => "invalid date",
        ErrorCode::InvalidNumber => "invalid number",
        ErrorCode::ValueTooLong => "value too long",
        ErrorCode::ProcessingFailed => "processing failed",
        ErrorCode::NotProcessed => "not processed",
        ErrorCode::NotApplied => "not applied by the import reverted: nothing to undo",
        ErrorCode::CannotReverse => "points spent or expired since: not undone",
    }
}

pub const FR: Texts = Texts {
    language: Language::Fr,
    colon: " : ",
    points_import: Title {
        name: "Import de points",
        in_sentence: "import de points",
    },
    smile_import: Title {
        name: "Import de points Smile.io",
        in_sentence: "import de points Smile.io",
    },
    card_code_import: Title {
        name: "Import de cartes",
        in_sentence: "import de cartes",
    },
    tier_change_import: Title {
        name: "Import de changements de niveau",
        in_sentence: "import de changements de niveau",
    },
    membership_import: Title {
        name: "Import d'adhésions",
        in_sentence: "import d'adhésions",
    },
    reversal: ReversalTitle {
        name: |job| format!("Import d'annulation de l'import {job}"),
        in_sentence: |job| format!("import d'annulation de l'import {job}"),
    },
    completed: "terminé",
    completed_with_errors: "terminé avec des erreurs",
    rejected: "refusé",
    dry_run: " (simulation : aucun compte de points n'a été modifié)",
    finished: |import, file, verdict| format!("Votre {import} du fichier {file} est {verdict}."),
    refused: |import, file| {
        format!("Votre {import} du fichier {file} a été refusé : rien n'a été appliqué.")
    },
    job: "Référence de l'import",
    adjustment_reason: "Motif de l'ajustement",
    rows: "Lignes",
    applied: "Appliquées",
    failed: "En erreur",
    skipped: "Ignorées",
    points_credited: "Points crédités",
    points_debited: "Points débités",
    cards_changed: "Cartes créées ou modifiées",
    rejection_reason: "Motif du refus",
    unreadable: "le fichier n'a pas pu être lu",
    given_up: |why| format!("Toutes les lignes n'ont pas pu être appliquées : {why}."),
    given_up_next: "Pour importer les lignes marquées not_processed, déposez un fichier ne \
                    contenant que ces lignes, avec le même en-tête. Déposer de nouveau ce fichier \
                    serait refusé comme doublon (et avec allow_duplicate, ses lignes déjà \
                    appliquées le seraient une seconde fois).",
    duplicate_next: "Le fichier n'a rien d'incorrect : il a déjà été importé.",
    fix_next: "Corrigez le fichier, puis déposez-le de nouveau.",
    errors_heading: "Lignes non appliquées, par code d'erreur",
    error_code: "Code d'erreur",
    examples: "Exemples",
    row_count: |n| match n {
        0 | 1 => format!("{n} ligne"),
        n => format!("{n} lignes"),
    },
    row: "ligne",
    code: french_code,
    download_within: |hours| {
        format!(
            "Le fichier traité reprend chaque ligne avec son résultat. Téléchargez-le dans les \
             {hours} heures :"
        )
    },
    download_button: "Télécharger le fichier traité",
    link_fallback: "Si le bouton ne fonctionne pas, ouvrez ce lien :",
};

fn french_code(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::MissingIdentifier => "ni e-mail, ni mobile, ni identifiant client",
        ErrorCode::InvalidEmail => "adresse e-mail invalide",
        ErrorCode::InvalidMobile => "numéro de mobile invalide",
        ErrorCode::InvalidCustomerId => "identifiant client invalide",
        ErrorCode::MissingAmount => "montant manquant",
        ErrorCode::InvalidAmount => "montant invalide",
        ErrorCode::AmountTooLarge => "montant trop élevé",
        ErrorCode::InvalidOperation => "opération invalide",
        ErrorCode::MissingExpiry => "expiration manquante",
        ErrorCode::InvalidExpiry => "expiration invalide",
        ErrorCode::InvalidEncoding => "un octet illisible dans l'encodage du fichier",
        ErrorCode::TooManyFields => "trop de valeurs",
        ErrorCode::TooFewFields => "valeurs manquantes",
        ErrorCode::InsufficientBalance => "solde insuffisant",
        ErrorCode::NothingToChange => "rien à modifier",
        ErrorCode::ConflictingIdentifiers => "identifiants pouvant désigner deux clients",
        ErrorCode::MissingCardCode => "code carte manquant",
        ErrorCode::MissingProgram => "programme manquant",
        ErrorCode::UnknownProgram => "programme inconnu",
        ErrorCode::UnknownTier => "niveau inconnu",
        ErrorCode::ProgramOnUpdate => "programme indiqué pour une carte existante",
        ErrorCode::TierOnUpdate => "niveau indiqué pour une carte existante",
        ErrorCode::SecondActiveCard => "deuxième carte active dans le programme",
        ErrorCode::UnknownCard => "carte inconnue",
        ErrorCode::MissingTierName => "nom de niveau manquant",
        ErrorCode::MissingValueDate => "date de valeur manquante",
        ErrorCode::InvalidDate => "date invalide",
        ErrorCode::InvalidNumber => "nombre invalide",
        ErrorCode::ValueTooLong => "valeur trop longue",
        ErrorCode::ProcessingFailed => "échec du traitement",
        ErrorCode::NotProcessed => "ligne non traitée",
        ErrorCode::NotApplied => "non appliquée par l'import annulé : rien à annuler",
        ErrorCode::CannotReverse => "points dépensés ou expirés depuis : non annulée",
    }
}
