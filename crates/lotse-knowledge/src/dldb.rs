//! Importer for the DLDB JSON format ("Dienstleistungsdatenbank"), published by Munich and Berlin
//! and used by the ZMS appointment system: `services_*.json` and `locations_*.json`, each
//! `{"data": [...]}`. Services keep their DLDB id; offices keep the location id.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use lotse_core::{Address, Fee, Link, Office, OfficeKind, Responsibility, Role, Scope, Service};
use serde::Deserialize;
use serde_json::Value;

use crate::html::html_to_text;
use crate::{Error, KnowledgeBase, Result, read};

#[derive(Deserialize)]
struct DataFile<T> {
    data: Vec<T>,
}

#[derive(Deserialize)]
struct DService {
    #[serde(deserialize_with = "id_string")]
    id: String,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    meta: Option<DMeta>,
    #[serde(default)]
    leika: Option<Value>,
    #[serde(default)]
    fees: Option<Value>,
    #[serde(default)]
    links: Vec<DLink>,
    #[serde(default)]
    forms: Vec<DLink>,
    #[serde(default)]
    locations: Vec<DLocationRef>,
    #[serde(default)]
    appointment: Option<DAppointment>,
    #[serde(default)]
    prerequisites: Option<Vec<DLink>>,
    #[serde(default)]
    requirements: Option<Vec<DLink>>,
    #[serde(default)]
    process_time: Option<Value>,
    #[serde(default)]
    legal: Option<Vec<DLink>>,
    #[serde(default)]
    onlineprocessing: Option<DOnline>,
}

#[derive(Deserialize, Default)]
struct DMeta {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    lastupdate: Option<String>,
    #[serde(default)]
    keywords: Option<String>,
}

#[derive(Deserialize)]
struct DLink {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    description: Option<Value>,
}

#[derive(Deserialize)]
struct DLocationRef {
    #[serde(deserialize_with = "id_string")]
    location: String,
}

#[derive(Deserialize)]
struct DAppointment {
    #[serde(default)]
    link: Option<String>,
}

#[derive(Deserialize)]
struct DOnline {
    #[serde(default)]
    link: Option<String>,
}

#[derive(Deserialize)]
struct DLocation {
    #[serde(deserialize_with = "id_string")]
    id: String,
    name: String,
    #[serde(default, rename = "displayName")]
    display_name: Option<String>,
    #[serde(default)]
    meta: Option<DMeta>,
    #[serde(default)]
    address: Option<DAddress>,
    #[serde(default)]
    contact: Option<DContact>,
}

#[derive(Deserialize)]
struct DAddress {
    #[serde(default)]
    street: Option<String>,
    #[serde(default)]
    house_number: Option<String>,
    #[serde(default)]
    postal_code: Option<String>,
    #[serde(default)]
    city: Option<String>,
}

#[derive(Deserialize)]
struct DContact {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    webinfo: Option<String>,
}

fn id_string<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("expected an id, found {other}"))),
    }
}

/// What an import did, for the CLI's summary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportStats {
    pub services: usize,
    pub offices: usize,
    pub fees_with_amount: usize,
    pub dropped_office_refs: usize,
}

/// Finds the services and locations files: a folder holding `services_*.json` (and
/// `locations_*.json`), or the services file itself with the locations file beside it.
fn resolve(path: &Path) -> Result<(PathBuf, Option<PathBuf>)> {
    let find = |dir: &Path, prefix: &str| -> Option<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix) && n.ends_with(".json"))
            })
            .collect();
        found.sort();
        found.into_iter().next()
    };
    if path.is_dir() {
        let services = find(path, "services").ok_or_else(|| Error::Invalid {
            path: path.to_path_buf(),
            message: "no services_*.json in this folder".into(),
        })?;
        Ok((services, find(path, "locations")))
    } else {
        let dir = path.parent().unwrap_or(Path::new("."));
        Ok((path.to_path_buf(), find(dir, "locations")))
    }
}

fn parse_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    parse_json_str(&read(path)?, path)
}

/// `src` as JSON; errors name `path` (where it came from).
fn parse_json_str<T: for<'de> Deserialize<'de>>(src: &str, path: &Path) -> Result<T> {
    serde_json::from_str(src).map_err(|e| Error::Syntax {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// Imports a DLDB export into the canonical model.
pub fn import(path: &Path) -> Result<(KnowledgeBase, ImportStats)> {
    let (services_path, locations_path) = resolve(path)?;
    let services: DataFile<DService> = parse_json(&services_path)?;
    let locations: Vec<DLocation> = match &locations_path {
        Some(p) => parse_json::<DataFile<DLocation>>(p)?.data,
        None => Vec::new(),
    };
    convert_export(services, &services_path, locations)
}

/// Imports a DLDB export given as text (the services file and, if there is one, the
/// locations file): what [`import`] does after reading them. Any text gets the model or an
/// error, never a panic (`fuzz/fuzz_targets/import.rs`).
pub fn import_str(services: &str, locations: Option<&str>) -> Result<(KnowledgeBase, ImportStats)> {
    let services_path = Path::new("services.json");
    let services: DataFile<DService> = parse_json_str(services, services_path)?;
    let locations = match locations {
        Some(src) => parse_json_str::<DataFile<DLocation>>(src, Path::new("locations.json"))?.data,
        None => Vec::new(),
    };
    convert_export(services, services_path, locations)
}

fn convert_export(
    services: DataFile<DService>,
    services_path: &Path,
    locations: Vec<DLocation>,
) -> Result<(KnowledgeBase, ImportStats)> {
    let services_path = services_path.to_path_buf();
    let mut stats = ImportStats::default();
    let offices: Vec<Office> = locations.into_iter().map(convert_location).collect();
    let office_ids: HashSet<&str> = offices.iter().map(|o| o.id.as_str()).collect();
    let mut seen = HashMap::new();
    let mut out = Vec::new();
    for (i, s) in services.data.into_iter().enumerate() {
        if seen.insert(s.id.clone(), i).is_some() {
            return Err(Error::Invalid {
                path: services_path.clone(),
                message: format!("service id {} appears twice", s.id),
            });
        }
        let service = convert_service(s, &office_ids, &mut stats);
        stats.fees_with_amount += service.fees.iter().filter(|f| f.amount.is_some()).count();
        out.push(service);
    }
    stats.services = out.len();
    stats.offices = offices.len();
    Ok((KnowledgeBase { services: out, offices, synonyms: Default::default() }, stats))
}

fn date_of(meta: &Option<DMeta>) -> String {
    meta.as_ref()
        .and_then(|m| m.lastupdate.as_deref())
        .and_then(|d| d.get(..10))
        .filter(|d| d.parse::<jiff::civil::Date>().is_ok())
        .unwrap_or("1970-01-01")
        .to_string()
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn convert_location(l: DLocation) -> Office {
    let source =
        l.meta.as_ref().and_then(|m| m.url.clone()).map(|u| u.replace("{locationId}", &l.id)).unwrap_or_default();
    let address = l.address.and_then(|a| {
        let street = format!("{} {}", a.street.unwrap_or_default().trim(), a.house_number.unwrap_or_default().trim());
        let street = street.trim().to_string();
        (!street.is_empty()).then(|| Address {
            street,
            postcode: a.postal_code.unwrap_or_default().trim().to_string(),
            city: a.city.unwrap_or_default().trim().to_string(),
        })
    });
    let contact = l.contact.unwrap_or(DContact { email: None, phone: None, webinfo: None });
    Office {
        as_of: date_of(&l.meta),
        name: non_empty(l.display_name)
            .map_or(l.name.clone(), |d| if l.name.contains(&d) { l.name.clone() } else { d }),
        id: l.id,
        name_en: None,
        synonyms: Vec::new(),
        kind: OfficeKind::City,
        address,
        phone: non_empty(contact.phone),
        email: non_empty(contact.email),
        website: non_empty(contact.webinfo).filter(|w| w.starts_with("http")),
        appointment_url: None,
        opening_hours: None,
        notes: None,
        source,
    }
}

fn link_text(l: &DLink) -> Option<String> {
    let name = l.name.as_deref().map(str::trim).filter(|n| !n.is_empty())?;
    let desc = match &l.description {
        Some(Value::String(d)) if !d.trim().is_empty() => format!(": {}", html_to_text(d)),
        _ => String::new(),
    };
    Some(format!("{name}{desc}"))
}

fn convert_service(s: DService, offices: &HashSet<&str>, stats: &mut ImportStats) -> Service {
    let id = s.id;
    let description = s.description.as_deref().map(html_to_text).unwrap_or_default();
    let teaser = first_sentence(&description).unwrap_or_else(|| s.name.clone());
    let synonyms = s
        .meta
        .as_ref()
        .and_then(|m| m.keywords.as_deref())
        .map(|k| {
            let mut seen = HashSet::new();
            k.split(',')
                .map(str::trim)
                .filter(|w| !w.is_empty() && seen.insert(w.to_lowercase()))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let leika = match &s.leika {
        Some(Value::String(k)) => Some(k.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
    .filter(|k| k.len() == 14 && k.chars().all(|c| c.is_ascii_digit()));
    let fees = match &s.fees {
        Some(Value::String(html)) => parse_fees(&html_to_text(html)),
        _ => Vec::new(),
    };
    let mut online_services = Vec::new();
    let mut links: Vec<&DLink> = s.links.iter().collect();
    links.extend(s.forms.iter());
    let mut seen_urls = HashSet::new();
    for l in links {
        if let (Some(name), Some(url)) = (l.name.as_deref(), l.link.as_deref()) {
            let url = url.trim();
            if url.starts_with("http") && seen_urls.insert(url.to_string()) {
                online_services.push(Link { title: name.trim().to_string(), url: url.to_string() });
            }
        }
    }
    if let Some(url) = s.onlineprocessing.as_ref().and_then(|o| o.link.clone()).filter(|u| u.starts_with("http"))
        && seen_urls.insert(url.clone())
    {
        online_services.push(Link { title: "Online-Antrag".into(), url });
    }
    let mut responsible = Vec::new();
    for loc in &s.locations {
        if offices.contains(loc.location.as_str()) {
            if !responsible.iter().any(|r: &Responsibility| r.office == loc.location) {
                responsible.push(Responsibility { office: loc.location.clone(), role: Role::Zustaendig });
            }
        } else {
            stats.dropped_office_refs += 1;
        }
    }
    let prerequisites = s.prerequisites.iter().chain(s.requirements.iter()).flatten().filter_map(link_text).collect();
    let processing_time = match &s.process_time {
        Some(Value::String(t)) => non_empty(Some(html_to_text(t))),
        _ => None,
    };
    let legal_basis = s.legal.iter().flatten().filter_map(link_text).collect();
    let fill = |u: String| u.replace("{serviceId}", &id);
    Service {
        source: s.meta.as_ref().and_then(|m| m.url.clone()).map(fill).unwrap_or_default(),
        as_of: date_of(&s.meta),
        appointment_url: s.appointment.and_then(|a| a.link).filter(|u| u.starts_with("http")).map(fill),
        id: id.clone(),
        leika,
        name: s.name.trim().to_string(),
        name_en: None,
        synonyms,
        teaser,
        description,
        prerequisites,
        documents: Vec::new(),
        fees,
        processing_time,
        deadlines: Vec::new(),
        procedure: Vec::new(),
        legal_basis,
        online_services,
        responsible,
        scope: Scope::City,
        notes: None,
    }
}

/// The first sentence of a text, if it is a reasonable teaser.
pub(crate) fn first_sentence(text: &str) -> Option<String> {
    let para = text.split("\n\n").map(str::trim).find(|p| !p.is_empty())?;
    let line = para.lines().next()?.trim();
    let mut end = line.len();
    for (i, c) in line.char_indices() {
        if matches!(c, '.' | '!' | '?') && i > 20 {
            let rest = &line[i + 1..];
            if rest.is_empty() || rest.starts_with(' ') {
                end = i + 1;
                break;
            }
        }
    }
    let s = line[..end].trim();
    let s = if s.chars().count() > 240 {
        let cut: String = s.chars().take(237).collect();
        format!("{}…", cut.trim_end())
    } else {
        s.to_string()
    };
    (!s.is_empty()).then_some(s)
}

/// Reads fee amounts out of a fee text, one fee per line: "Tageszulassung: ab 25,50 Euro" becomes
/// amount 25.5 with the condition "Tageszulassung: ab", "50 bis 60 Euro" an amount range. Lines
/// without an amount are kept as text, so nothing of the source is lost.
pub fn parse_fees(text: &str) -> Vec<Fee> {
    let re = fee_regex();
    let mut out = Vec::new();
    for line in text.lines().map(|l| l.trim().trim_start_matches("- ").trim()).filter(|l| !l.is_empty()) {
        let amounts: Vec<regex::Captures<'_>> = re.captures_iter(line).collect();
        if amounts.len() == 1 {
            let c = &amounts[0];
            let lo = parse_amount(&c["lo"]);
            let hi = c.name("hi").and_then(|m| parse_amount(m.as_str()));
            let whole = c.get(0).map_or(0..0, |m| m.range());
            // What stands around the amount is its condition: "Tageszulassung: ab …",
            // "… (abhängig von der Rechtsform)".
            let before = line[..whole.start].trim().trim_end_matches(':').trim();
            let after = line[whole.end..].trim().trim_start_matches(['(', ',', ';']).trim_end_matches(')').trim();
            let condition = match (before.is_empty(), after.is_empty()) {
                (_, true) => before.to_string(),
                (true, false) => after.to_string(),
                (false, false) => format!("{before}, {after}"),
            };
            out.push(Fee {
                amount: lo,
                amount_max: hi,
                condition: (!condition.is_empty()).then_some(condition),
                text: Some(line.to_string()),
            });
        } else {
            out.push(Fee { amount: None, amount_max: None, condition: None, text: Some(line.to_string()) });
        }
    }
    out
}

fn fee_regex() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        // The pattern is a literal known to compile.
        regex::Regex::new(r"(?i)(?P<lo>\d{1,3}(?:\.\d{3})*(?:,\d{1,2})?|\d+(?:,\d{1,2})?)(?:\s*(?:bis|-|–)\s*(?P<hi>\d{1,3}(?:\.\d{3})*(?:,\d{1,2})?|\d+(?:,\d{1,2})?))?\s*(?:euro|eur\b|€)")
            .expect("static regex")
    })
}

fn parse_amount(s: &str) -> Option<f64> {
    s.replace('.', "").replace(',', ".").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fee_lines() {
        let fees = parse_fees(
            "50 bis 60 Euro (abhängig von der Rechtsform)\nTageszulassung: ab 25,50 Euro\ngebührenfrei\n1.234,50 €",
        );
        assert_eq!(fees.len(), 4);
        assert_eq!((fees[0].amount, fees[0].amount_max), (Some(50.0), Some(60.0)));
        assert_eq!(fees[0].condition.as_deref(), Some("abhängig von der Rechtsform"));
        assert_eq!(fees[1].amount, Some(25.5));
        assert_eq!(fees[1].condition.as_deref(), Some("Tageszulassung: ab"));
        assert_eq!(fees[2].amount, None);
        assert_eq!(fees[2].text.as_deref(), Some("gebührenfrei"));
        assert_eq!(fees[3].amount, Some(1234.5));
        // Two amounts on one line stay text: we cannot tell which case each belongs to.
        assert_eq!(parse_fees("10 Euro oder 20 Euro")[0].amount, None);
    }

    #[test]
    fn teaser_is_first_sentence() {
        assert_eq!(
            first_sentence("Sie haben ein Gewerbe in der Stadt. Mehr Text.").as_deref(),
            Some("Sie haben ein Gewerbe in der Stadt.")
        );
        assert_eq!(first_sentence(""), None);
    }
}
