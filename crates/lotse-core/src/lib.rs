//! Lotse's domain types: the canonical model of a public service ([`Service`]), the office that
//! provides it ([`Office`]), and the responsibility relation between them ([`Responsibility`],
//! German *Zuständigkeit*).
//!
//! This crate does no IO. Every type is plain data with serde derives, so the knowledge loaders,
//! the importers, the search index and the conversation engine all speak the same model. Types are
//! `Send + Sync` and cheap to share behind an `Arc`. [`calendar`] knows the public holidays
//! of every German state and whether opening hours are open at a moment; the engine and the staff schedule
//! both use it.

pub mod calendar;
mod hours;
mod reply;

pub use hours::{HoursError, MONTHS_DE, MONTHS_EN, OpeningHours, TimeRange, Weekday, parse_day};
pub use reply::{
    CallbackOffer, Channel, ConversationId, GeneratedBy, HandoffInfo, HandoffState, Lang, Reply, ReplyKind, Source,
};
use serde::{Deserialize, Serialize};

/// The id of a service: the file name of a curated record, or the source system's id for imported
/// records (e.g. the DLDB id `1063423`).
pub type ServiceId = String;

/// The id of an office, unique within one knowledge base.
pub type OfficeId = String;

/// Who runs a service: the city itself, a state authority or a federal one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    City,
    State,
    Federal,
}

/// A public service (German *Leistung*), e.g. "Personalausweis beantragen".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub id: ServiceId,
    /// The 14-digit key of the federal service catalogue (LeiKa), where one exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leika: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    /// Words citizens use for this service, German and English.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub synonyms: Vec<String>,
    #[serde(default)]
    pub teaser: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prerequisites: Vec<String>,
    /// Documents to bring or upload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fees: Vec<Fee>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_time: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deadlines: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub procedure: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legal_basis: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub online_services: Vec<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responsible: Vec<Responsibility>,
    #[serde(default)]
    pub scope: Scope,
    /// An editor's note; never shown to citizens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Where the facts come from.
    pub source: String,
    /// When the facts were read from the source (YYYY-MM-DD).
    pub as_of: String,
}

impl Service {
    /// A service with only its identity and provenance; every other field empty.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        source: impl Into<String>,
        as_of: impl Into<String>,
    ) -> Self {
        Service {
            id: id.into(),
            leika: None,
            name: name.into(),
            name_en: None,
            synonyms: Vec::new(),
            teaser: String::new(),
            description: String::new(),
            prerequisites: Vec::new(),
            documents: Vec::new(),
            fees: Vec::new(),
            processing_time: None,
            deadlines: Vec::new(),
            procedure: Vec::new(),
            legal_basis: Vec::new(),
            online_services: Vec::new(),
            appointment_url: None,
            responsible: Vec::new(),
            scope: Scope::City,
            notes: None,
            source: source.into(),
            as_of: as_of.into(),
        }
    }
}

/// One fee case: an amount in euro and when it applies, or the source's wording where the fee is
/// not a plain amount ("50 bis 60 Euro, abhängig von der Rechtsform").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fee {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<f64>,
    /// Upper bound where the source gives a range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The source's own wording, kept when the fee is not (only) an amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A titled link, e.g. an online application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub title: String,
    pub url: String,
}

/// What an office does for a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Decides and processes (German *zuständig*).
    #[default]
    Zustaendig,
    /// Advises only.
    Beratung,
    /// Hands out documents.
    Ausgabe,
}

/// The responsibility relation (German *Zuständigkeit*): this office does this for the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Responsibility {
    pub office: OfficeId,
    #[serde(default)]
    pub role: Role,
}

/// What kind of body an office belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OfficeKind {
    #[default]
    City,
    State,
    Federal,
    Other,
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub street: String,
    #[serde(default)]
    pub postcode: String,
    #[serde(default)]
    pub city: String,
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.street)?;
        let place = format!("{} {}", self.postcode, self.city);
        let place = place.trim();
        if place.is_empty() { Ok(()) } else { write!(f, ", {place}") }
    }
}

/// An office (German *Organisationseinheit*) where citizens get a service done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Office {
    pub id: OfficeId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    /// Names citizens use for this office ("Bürgeramt", "Einwohnermeldeamt"), German and English.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub synonyms: Vec<String>,
    #[serde(default)]
    pub kind: OfficeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opening_hours: Option<OpeningHours>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub source: String,
    pub as_of: String,
}

/// Declares an id type: a string on the wire and in the database, a type of its own in the code,
/// so that a conversation's id cannot be passed where a handoff's is meant.
#[macro_export]
macro_rules! string_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> $name {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_string())
            }
        }
    };
}
