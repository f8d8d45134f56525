//! Importer for XZuFi 2.2 XML (namespace `http://xoev.de/schemata/xzufi/2_2_0`), the exchange
//! format of the German service portals (FIM, PVOG). A message is a `schreibe` (write or replace
//! objects) or a `loesche` (remove objects), applied in document order on top of an existing
//! knowledge base. Elements are matched by local name within the XZuFi namespace; repeated and
//! single elements are read alike. Text modules are selected by their LeiKa text-module code.

use std::path::Path;

use lotse_core::{Address, Fee, Link, Office, OfficeKind, OpeningHours, Responsibility, Role, Service};
use roxmltree::{Document, Node};

use crate::dldb::first_sentence;
use crate::html::{html_to_text, list_items as lines};
use crate::{Error, KnowledgeBase, Result, read, upsert};

pub const NAMESPACE: &str = "http://xoev.de/schemata/xzufi/2_2_0";

/// What one XZuFi message changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct XzufiStats {
    pub services_written: usize,
    pub offices_written: usize,
    pub responsibilities: usize,
    pub online_services: usize,
    pub removed: usize,
}

/// Reads an XZuFi file and applies it to `kb`.
pub fn import(path: &Path, kb: &mut KnowledgeBase) -> Result<XzufiStats> {
    let src = read(path)?;
    apply(&src, path, kb)
}

fn invalid(path: &Path, doc: &Document<'_>, node: Node<'_, '_>, message: impl Into<String>) -> Error {
    let pos = doc.text_pos_at(node.range().start);
    Error::Syntax {
        path: path.to_path_buf(),
        line: pos.row as usize,
        column: pos.col as usize,
        message: message.into(),
    }
}

fn is(node: Node<'_, '_>, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace().is_none_or(|ns| ns == NAMESPACE)
}

fn children<'a, 'i>(node: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(move |c| is(*c, name))
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &'a str) -> Option<Node<'a, 'i>> {
    children(node, name).next()
}

/// The trimmed text of a descendant path, e.g. `text(n, &["name", "name"])`.
fn text(node: Node<'_, '_>, path: &[&str]) -> Option<String> {
    let mut cur = node;
    for p in path {
        cur = child(cur, p)?;
    }
    let t: String = cur.descendants().filter(|d| d.is_text()).map(|d| d.text().unwrap_or_default()).collect();
    let t = t.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Applies an XZuFi document held in memory.
pub fn apply(src: &str, path: &Path, kb: &mut KnowledgeBase) -> Result<XzufiStats> {
    let doc = Document::parse(src).map_err(|e| {
        let pos = e.pos();
        Error::Syntax {
            path: path.to_path_buf(),
            line: pos.row as usize,
            column: pos.col as usize,
            message: e.to_string(),
        }
    })?;
    let root = doc.root_element();
    if root.tag_name().namespace() != Some(NAMESPACE) {
        return Err(invalid(
            path,
            &doc,
            root,
            format!("the root element is not in the XZuFi 2.2 namespace {NAMESPACE}"),
        ));
    }
    let mut stats = XzufiStats::default();
    // A root may be a single message or a container of several.
    let messages: Vec<Node<'_, '_>> = if is(root, "schreibe") || is(root, "loesche") {
        vec![root]
    } else {
        root.children().filter(|c| is(*c, "schreibe") || is(*c, "loesche")).collect()
    };
    if messages.is_empty() {
        return Err(invalid(path, &doc, root, "no `schreibe` or `loesche` message found"));
    }
    // Validate everything before touching `kb`, so that a bad file changes nothing.
    let mut next = kb.clone();
    for msg in messages {
        if is(msg, "loesche") {
            stats.removed += apply_loesche(msg, &mut next);
        } else {
            apply_schreibe(msg, path, &doc, &mut next, &mut stats)?;
        }
    }
    *kb = next;
    Ok(stats)
}

fn apply_loesche(msg: Node<'_, '_>, kb: &mut KnowledgeBase) -> usize {
    let mut removed = 0;
    for n in msg.descendants().filter(|n| n.is_element()) {
        let Some(id) = n.text().map(str::trim).filter(|t| !t.is_empty()) else { continue };
        let id = normalise_id(id);
        match n.tag_name().name() {
            "leistungID" | "leistungId" => {
                let before = kb.services.len();
                kb.services.retain(|s| s.id != id);
                removed += before - kb.services.len();
            }
            "organisationseinheitID" | "organisationseinheitId" => {
                let before = kb.offices.len();
                kb.offices.retain(|o| o.id != id);
                removed += before - kb.offices.len();
                for s in &mut kb.services {
                    s.responsible.retain(|r| r.office != id);
                }
            }
            "onlinedienstID" | "onlinedienstId" => {
                for s in &mut kb.services {
                    let before = s.online_services.len();
                    s.online_services.retain(|l| !l.url.contains(&id) && l.title != id);
                    removed += before - s.online_services.len();
                }
            }
            _ => {}
        }
    }
    removed
}

/// XZuFi ids may carry characters our file names do not allow; map them to lower-case a-z0-9-.
pub fn normalise_id(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for c in id.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

fn apply_schreibe(
    msg: Node<'_, '_>,
    path: &Path,
    doc: &Document<'_>,
    kb: &mut KnowledgeBase,
    stats: &mut XzufiStats,
) -> Result<()> {
    for n in msg.children().filter(|c| c.is_element()) {
        match n.tag_name().name() {
            "leistung" => {
                let s = read_leistung(n, path, doc)?;
                upsert(&mut kb.services, s, |s| &s.id);
                stats.services_written += 1;
            }
            "organisationseinheit" => {
                let o = read_organisationseinheit(n, path, doc)?;
                upsert(&mut kb.offices, o, |o| &o.id);
                stats.offices_written += 1;
            }
            "zustaendigkeitTransferObjekt" => {
                for z in n
                    .descendants()
                    .filter(|d| is(*d, "zustaendigkeit"))
                    .chain(std::iter::once(n).filter(|n| child(*n, "leistungID").is_some()))
                {
                    let service = text(z, &["leistungID"]).map(|t| normalise_id(&t));
                    let office = text(z, &["organisationseinheitID"])
                        .or_else(|| text(n, &["organisationseinheitID"]))
                        .map(|t| normalise_id(&t));
                    let (Some(service), Some(office)) = (service, office) else {
                        return Err(invalid(
                            path,
                            doc,
                            z,
                            "a zustaendigkeit needs a leistungID and an organisationseinheitID",
                        ));
                    };
                    let role = match text(z, &["rolle", "code"]).as_deref() {
                        Some("02") => Role::Beratung,
                        Some("03") => Role::Ausgabe,
                        _ => Role::Zustaendig,
                    };
                    let Some(s) = kb.services.iter_mut().find(|s| s.id == service) else {
                        return Err(invalid(
                            path,
                            doc,
                            z,
                            format!("zustaendigkeit names unknown leistung `{service}`"),
                        ));
                    };
                    if !s.responsible.iter().any(|r| r.office == office) {
                        s.responsible.push(Responsibility { office, role });
                    }
                    stats.responsibilities += 1;
                }
            }
            "onlinedienst" => {
                let title =
                    text(n, &["bezeichnung"]).or_else(|| text(n, &["name"])).unwrap_or_else(|| "Online-Dienst".into());
                let url = text(n, &["link", "uri"]).or_else(|| text(n, &["link"]));
                let Some(url) = url else { return Err(invalid(path, doc, n, "an onlinedienst needs a link")) };
                for sid in children(n, "leistungID").filter_map(|c| c.text()).map(normalise_id) {
                    let Some(s) = kb.services.iter_mut().find(|s| s.id == sid) else {
                        return Err(invalid(path, doc, n, format!("onlinedienst names unknown leistung `{sid}`")));
                    };
                    if !s.online_services.iter().any(|l| l.url == url) {
                        s.online_services.push(Link { title: title.clone(), url: url.clone() });
                    }
                }
                stats.online_services += 1;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Text-module content: HTML inside `inhalt`, reduced to plain text.
fn module_content(m: Node<'_, '_>) -> Option<String> {
    let raw = text(m, &["inhalt"])?;
    let t = html_to_text(&raw);
    (!t.is_empty()).then_some(t)
}

fn read_leistung(n: Node<'_, '_>, path: &Path, doc: &Document<'_>) -> Result<Service> {
    let id =
        text(n, &["id"]).map(|t| normalise_id(&t)).ok_or_else(|| invalid(path, doc, n, "a leistung needs an id"))?;
    let mut s = Service::new(id, "", "", "");
    s.leika = text(n, &["referenzLeiKa"]);
    for m in children(n, "modulText") {
        let code = text(m, &["leikaTextmodul", "code"]).or_else(|| text(m, &["leikaTextmodul"]));
        let content = module_content(m);
        let links: Vec<Link> = children(m, "weiterfuehrenderLink")
            .filter_map(|l| {
                Some(Link { url: text(l, &["uri"])?, title: text(l, &["titel"]).unwrap_or_else(|| "Link".into()) })
            })
            .collect();
        s.online_services.extend(links);
        let Some(content) = content else { continue };
        match code.as_deref() {
            Some("02") | Some("03") if s.name.is_empty() => {
                s.name = content.lines().next().unwrap_or_default().to_string()
            }
            Some("05") | Some("24") if s.teaser.is_empty() => s.teaser = content,
            Some("06") => s.description = content,
            Some("08") => s.documents = lines(&content),
            Some("09") => s.prerequisites = lines(&content),
            Some("11") => s.procedure = lines(&content),
            Some("07") => s.legal_basis = lines(&content),
            Some("16") => s.notes = Some(content),
            _ => {}
        }
    }
    for k in children(n, "modulKosten").flat_map(|m| children(m, "kosten").collect::<Vec<_>>()) {
        let amount = text(k, &["betragFix"])
            .or_else(|| text(k, &["betragUntergrenze"]))
            .and_then(|t| t.replace(',', ".").parse().ok());
        let amount_max = text(k, &["betragObergrenze"]).and_then(|t| t.replace(',', ".").parse().ok());
        let condition = text(k, &["beschreibung"]).map(|t| html_to_text(&t)).filter(|t| !t.is_empty());
        if amount.is_some() || condition.is_some() {
            let text = if amount.is_none() { condition.clone() } else { None };
            s.fees.push(Fee { amount, amount_max, condition: if amount.is_some() { condition } else { None }, text });
        }
    }
    for f in children(n, "modulFrist").flat_map(|m| children(m, "frist").collect::<Vec<_>>()) {
        if let Some(t) = text(f, &["beschreibung"]).map(|t| html_to_text(&t)).filter(|t| !t.is_empty()) {
            s.deadlines.push(t);
        }
    }
    if let Some(m) = child(n, "modulBearbeitungsdauer") {
        s.processing_time = m
            .descendants()
            .find(|d| is(*d, "beschreibung"))
            .and_then(|d| text(d.parent()?, &["beschreibung"]))
            .map(|t| html_to_text(&t));
    }
    for m in children(n, "modulBegriffImKontext") {
        for b in m.descendants().filter(|d| is(*d, "begriff")) {
            if let Some(t) = b.text().map(str::trim).filter(|t| !t.is_empty()) {
                s.synonyms.push(t.to_string());
            }
        }
    }
    if let Some(m) = child(n, "modulUrsprungsportal") {
        s.source = text(m, &["uri"]).or_else(|| text(m, &["link"])).unwrap_or_default();
    }
    s.as_of = text(n, &["versionsinformation", "geaendertDatumZeit"])
        .or_else(|| text(n, &["gueltigkeit", "beginn"]))
        .and_then(|d| d.get(..10).map(String::from))
        .unwrap_or_default();
    if s.name.is_empty() {
        return Err(invalid(path, doc, n, format!("leistung `{}` has no name (text module 02 or 03)", s.id)));
    }
    if s.teaser.is_empty() {
        s.teaser = first_sentence(&s.description).unwrap_or_else(|| s.name.clone());
    }
    Ok(s)
}

fn read_organisationseinheit(n: Node<'_, '_>, path: &Path, doc: &Document<'_>) -> Result<Office> {
    let id = text(n, &["id"])
        .map(|t| normalise_id(&t))
        .ok_or_else(|| invalid(path, doc, n, "an organisationseinheit needs an id"))?;
    let name = text(n, &["name", "name"])
        .or_else(|| text(n, &["name"]))
        .ok_or_else(|| invalid(path, doc, n, format!("organisationseinheit `{id}` has no name")))?;
    let address = child(n, "anschrift").and_then(|a| {
        let street =
            format!("{} {}", text(a, &["strasse"]).unwrap_or_default(), text(a, &["hausnummer"]).unwrap_or_default());
        let street = street.trim().to_string();
        (!street.is_empty()).then(|| Address {
            street,
            postcode: text(a, &["postleitzahl"]).unwrap_or_default(),
            city: text(a, &["ort"]).unwrap_or_default(),
        })
    });
    let mut phone = None;
    let mut email = None;
    for k in children(n, "kommunikation") {
        let kanal = text(k, &["kanal", "code"]).unwrap_or_default();
        let value = text(k, &["kennung"]);
        match kanal.as_str() {
            // Code list "Kommunikationskanal": 01 telephone, 02 e-mail (our fixtures follow this).
            "01" if phone.is_none() => phone = value,
            "02" if email.is_none() => email = value,
            _ => {}
        }
    }
    Ok(Office {
        id,
        name,
        name_en: None,
        synonyms: Vec::new(),
        kind: OfficeKind::City,
        address,
        phone,
        email,
        website: text(n, &["internetadresse", "uri"]).or_else(|| text(n, &["internetadresse"])),
        appointment_url: None,
        // XZuFi carries opening hours as text; they are shown as written.
        opening_hours: text(n, &["oeffnungszeiten"])
            .map(|t| html_to_text(&t))
            .filter(|t| !t.is_empty())
            .map(|t| OpeningHours { note: Some(t), ..Default::default() }),
        notes: None,
        source: text(n, &["ursprungsportal", "uri"]).unwrap_or_default(),
        as_of: text(n, &["versionsinformation", "geaendertDatumZeit"])
            .and_then(|d| d.get(..10).map(String::from))
            .unwrap_or_default(),
    })
}
