//! Importer for the detail JSON of the PVOG search service (Portalverbund Online-Gateway): one
//! service per object, or an array of them, with `details` as LeiKa text modules (the same codes as
//! XZuFi, plus 95 processing time, 97 deadlines, 98 costs).

use std::path::Path;

use lotse_core::{Address, Link, Office, OfficeKind, Responsibility, Role, Service};
use serde::Deserialize;
use serde_json::Value;

use crate::dldb::{first_sentence, parse_fees};
use crate::html::{html_to_text, list_items as lines};
use crate::xzufi::normalise_id;
use crate::{Error, KnowledgeBase, Result, read, upsert};

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<PService>),
    One(Box<PService>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PService {
    id: Value,
    name: String,
    #[serde(default)]
    leikakeys: Vec<String>,
    #[serde(default)]
    online_service_links: Vec<PLink>,
    #[serde(default)]
    organisations: Vec<POrganisation>,
    #[serde(default)]
    details: Vec<PDetail>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    last_modified: Option<String>,
}

#[derive(Deserialize)]
struct PLink {
    #[serde(default)]
    title: Option<String>,
    uri: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct POrganisation {
    id: Value,
    name: String,
    #[serde(default)]
    address: Option<PAddress>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    website: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PAddress {
    #[serde(default)]
    street: Option<String>,
    #[serde(default)]
    house_number: Option<String>,
    #[serde(default)]
    zip_code: Option<String>,
    #[serde(default)]
    city: Option<String>,
}

#[derive(Deserialize)]
struct PDetail {
    code: Value,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    links: Vec<PLink>,
}

fn value_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

/// Reads a PVOG detail file and adds its services and organisations to `kb` (replacing records
/// with the same id).
pub fn import(path: &Path, kb: &mut KnowledgeBase) -> Result<usize> {
    apply(&read(path)?, path, kb)
}

/// Applies PVOG JSON given as text (`path` names it in errors): what [`import`] does after
/// reading the file. Any text gets the update or an error, never a panic.
pub fn apply(src: &str, path: &Path, kb: &mut KnowledgeBase) -> Result<usize> {
    let parsed: OneOrMany = serde_json::from_str(src).map_err(|e| Error::Syntax {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let list = match parsed {
        OneOrMany::Many(v) => v,
        OneOrMany::One(s) => vec![*s],
    };
    let mut next = kb.clone();
    let n = list.len();
    for p in list {
        let (service, offices) = convert(p).map_err(|message| Error::Invalid { path: path.to_path_buf(), message })?;
        for o in offices {
            upsert(&mut next.offices, o, |o| &o.id);
        }
        upsert(&mut next.services, service, |s| &s.id);
    }
    *kb = next;
    Ok(n)
}

fn convert(p: PService) -> Result<(Service, Vec<Office>), String> {
    let id = value_string(&p.id).map(|s| normalise_id(&s)).filter(|s| !s.is_empty()).ok_or("a service has no id")?;
    let as_of = p.last_modified.as_deref().and_then(|d| d.get(..10)).unwrap_or_default().to_string();
    let mut s = Service::new(id.clone(), p.name.trim(), p.source.clone().unwrap_or_default(), as_of.clone());
    s.leika = p.leikakeys.first().cloned();
    s.online_services = p
        .online_service_links
        .iter()
        .map(|l| Link { title: l.title.clone().unwrap_or_else(|| "Online-Antrag".into()), url: l.uri.clone() })
        .collect();
    if s.name.is_empty() {
        return Err(format!("service {id} has no name"));
    }
    for d in &p.details {
        let code = value_string(&d.code).unwrap_or_default();
        let text = d.text.as_deref().map(html_to_text).unwrap_or_default();
        for l in &d.links {
            if code == "15" || code == "07" {
                s.online_services
                    .push(Link { title: l.title.clone().unwrap_or_else(|| "Link".into()), url: l.uri.clone() });
            }
        }
        if text.is_empty() {
            continue;
        }
        match code.as_str() {
            "02" | "03" => {}
            "05" | "24" if s.teaser.is_empty() => s.teaser = text,
            "06" => s.description = text,
            "08" => s.documents = lines(&text),
            "09" => s.prerequisites = lines(&text),
            "11" => s.procedure = lines(&text),
            "07" => s.legal_basis = lines(&text),
            "16" => s.notes = Some(text),
            "95" => s.processing_time = Some(text),
            "97" => s.deadlines = lines(&text),
            "98" => s.fees = parse_fees(&text),
            _ => {}
        }
    }
    if s.teaser.is_empty() {
        s.teaser = first_sentence(&s.description).unwrap_or_else(|| s.name.clone());
    }
    let mut offices = Vec::new();
    for o in p.organisations {
        let oid = value_string(&o.id)
            .map(|x| normalise_id(&x))
            .ok_or_else(|| format!("an organisation of {id} has no id"))?;
        s.responsible.push(Responsibility { office: oid.clone(), role: Role::Zustaendig });
        offices.push(Office {
            id: oid,
            name: o.name,
            name_en: None,
            synonyms: Vec::new(),
            kind: OfficeKind::City,
            address: o.address.and_then(|a| {
                let street = format!("{} {}", a.street.unwrap_or_default(), a.house_number.unwrap_or_default())
                    .trim()
                    .to_string();
                (!street.is_empty()).then(|| Address {
                    street,
                    postcode: a.zip_code.unwrap_or_default(),
                    city: a.city.unwrap_or_default(),
                })
            }),
            phone: o.phone,
            email: o.email,
            website: o.website,
            appointment_url: None,
            opening_hours: None,
            notes: None,
            source: p.source.clone().unwrap_or_default(),
            as_of: as_of.clone(),
        });
    }
    Ok((s, offices))
}
