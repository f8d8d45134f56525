//! Loading a knowledge folder and validating it. Every problem names the file and line an editor
//! has to open, in plain words.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use lotse_core::{Office, Service};
use serde::de::DeserializeOwned;

use crate::locate::{line_of, position};
use crate::{Error, KnowledgeBase, Result, Synonyms, read};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One finding of `lotse knowledge check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    /// 1-based.
    pub line: usize,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}:{}: {level}: {}", self.path.display(), self.line, self.message)
    }
}

/// Validates a knowledge folder and returns every problem, errors first by file.
pub fn check_dir(dir: &Path) -> Result<Vec<Problem>> {
    load_and_check(dir).map(|(_, problems)| problems)
}

struct Loaded<T> {
    path: PathBuf,
    src: String,
    item: T,
}

/// Collects problems for one file; `array` selects a `[[table]]` by index.
struct Reporter<'a> {
    path: &'a Path,
    src: &'a str,
    problems: &'a mut Vec<Problem>,
}

impl Reporter<'_> {
    fn at(&mut self, severity: Severity, array: Option<(&str, usize)>, key: &str, message: String) {
        let line = line_of(self.src, array, key);
        self.problems.push(Problem { path: self.path.to_path_buf(), line, severity, message });
    }
    fn error(&mut self, key: &str, message: impl Into<String>) {
        self.at(Severity::Error, None, key, message.into());
    }
    fn warn(&mut self, key: &str, message: impl Into<String>) {
        self.at(Severity::Warning, None, key, message.into());
    }
}

/// Loads a knowledge folder as far as it parses and returns it with every problem found.
pub fn load_and_check(dir: &Path) -> Result<(KnowledgeBase, Vec<Problem>)> {
    if !dir.is_dir() {
        return Err(Error::Invalid { path: dir.to_path_buf(), message: "is not a knowledge folder".into() });
    }
    let mut problems = Vec::new();
    let services: Vec<Loaded<Service>> = load_all(&dir.join("services"), &mut problems)?;
    let offices: Vec<Loaded<Office>> = load_all(&dir.join("offices"), &mut problems)?;
    let synonyms_path = dir.join("synonyms.toml");
    let synonyms = if synonyms_path.exists() {
        let src = read(&synonyms_path)?;
        match Synonyms::parse(&src) {
            Ok(s) => s,
            Err(e) => {
                let (line, _) = e.span().map_or((1, 1), |s| position(&src, s.start));
                problems.push(Problem {
                    path: synonyms_path.clone(),
                    line,
                    severity: Severity::Error,
                    message: first_line(e.message()),
                });
                Synonyms::default()
            }
        }
    } else {
        Synonyms::default()
    };
    let kb = KnowledgeBase {
        services: services.iter().map(|l| l.item.clone()).collect(),
        offices: offices.iter().map(|l| l.item.clone()).collect(),
        synonyms,
    };
    let office_ids: HashSet<&str> = kb.offices.iter().map(|o| o.id.as_str()).collect();
    for l in &services {
        let mut r = Reporter { path: &l.path, src: &l.src, problems: &mut problems };
        check_service(&l.item, &l.path, &office_ids, &mut r);
    }
    for l in &offices {
        let mut r = Reporter { path: &l.path, src: &l.src, problems: &mut problems };
        check_office(&l.item, &l.path, &mut r);
    }
    problems.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    Ok((kb, problems))
}

/// Checks an in-memory knowledge base (an import before it is written): the same rules as for
/// files, reported against the record ids instead of lines.
pub fn check_knowledge(kb: &KnowledgeBase) -> Vec<Problem> {
    let mut problems = Vec::new();
    let office_ids: HashSet<&str> = kb.offices.iter().map(|o| o.id.as_str()).collect();
    for s in &kb.services {
        let path = PathBuf::from(format!("services/{}.toml", s.id));
        let mut r = Reporter { path: &path, src: "", problems: &mut problems };
        check_service(s, &path, &office_ids, &mut r);
    }
    for o in &kb.offices {
        let path = PathBuf::from(format!("offices/{}.toml", o.id));
        let mut r = Reporter { path: &path, src: "", problems: &mut problems };
        check_office(o, &path, &mut r);
    }
    problems
}

fn first_line(s: &str) -> String {
    s.trim().lines().next().unwrap_or("invalid TOML").to_string()
}

fn load_all<T: DeserializeOwned>(dir: &Path, problems: &mut Vec<Problem>) -> Result<Vec<Loaded<T>>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    for path in paths {
        let src = read(&path)?;
        match toml::from_str::<T>(&src) {
            Ok(item) => out.push(Loaded { path, src, item }),
            Err(e) => {
                let (line, _) = e.span().map_or((1, 1), |s| position(&src, s.start));
                problems.push(Problem { path, line, severity: Severity::Error, message: first_line(e.message()) });
            }
        }
    }
    Ok(out)
}

fn check_id(id: &str, path: &Path, r: &mut Reporter<'_>) {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        r.error("id", format!("id `{id}` may only hold a-z, 0-9 and '-'"));
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    if !r.src.is_empty() && stem != id {
        r.error("id", format!("id `{id}` differs from the file name `{stem}`"));
    }
}

fn check_url(url: &str, key: &str, array: Option<(&str, usize)>, r: &mut Reporter<'_>) {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        Ok(u) if u.scheme() == "mailto" => {}
        _ => r.at(Severity::Error, array, key, format!("`{url}` is not a well-formed web address (https://…)")),
    }
}

fn check_as_of(as_of: &str, r: &mut Reporter<'_>) {
    match as_of.parse::<jiff::civil::Date>() {
        Ok(date) => {
            let today = jiff::Zoned::now().date();
            if date > today {
                r.warn("as_of", format!("as_of {as_of} lies in the future"));
            }
        }
        Err(_) => r.error("as_of", format!("as_of `{as_of}` is not a date like 2025-06-01")),
    }
}

fn check_service(s: &Service, path: &Path, offices: &HashSet<&str>, r: &mut Reporter<'_>) {
    check_id(&s.id, path, r);
    if s.name.trim().is_empty() {
        r.error("name", "the service has no name");
    }
    if s.teaser.trim().is_empty() {
        r.error("teaser", "the service has no teaser (one sentence saying what it is)");
    }
    if let Some(leika) = &s.leika
        && (leika.len() != 14 || !leika.chars().all(|c| c.is_ascii_digit()))
    {
        r.error("leika", format!("LeiKa key `{leika}` must have exactly 14 digits"));
    }
    if s.source.trim().is_empty() {
        r.error("source", "the service has no source address");
    } else {
        check_url(&s.source, "source", None, r);
    }
    check_as_of(&s.as_of, r);
    for (i, fee) in s.fees.iter().enumerate() {
        let at = Some(("fees", i));
        match fee.amount {
            None if fee.text.as_deref().is_none_or(|t| t.trim().is_empty()) => r.at(
                Severity::Error,
                at,
                "amount",
                "a fee needs an amount in euro (or the source's wording as text)".into(),
            ),
            Some(a) if !(a >= 0.0 && a.is_finite()) => {
                r.at(Severity::Error, at, "amount", format!("fee amount {a} is not a valid euro amount"))
            }
            _ => {}
        }
        if let (Some(lo), Some(hi)) = (fee.amount, fee.amount_max)
            && hi < lo
        {
            r.at(Severity::Error, at, "amount_max", format!("fee range {lo}–{hi} ends below its start"));
        }
    }
    // With several fees, each must say when it applies: an amount without its condition is a
    // wrong fee waiting to be stated to a citizen it does not apply to.
    if s.fees.len() > 1 {
        for (i, fee) in s.fees.iter().enumerate() {
            // The source's own wording (`text`, as imports keep it) carries its condition.
            let bare = |o: &Option<String>| o.as_deref().is_none_or(|c| c.trim().is_empty());
            if fee.amount.is_some() && bare(&fee.condition) && bare(&fee.text) {
                r.at(
                    Severity::Error,
                    Some(("fees", i)),
                    "amount",
                    "one of several fees has no condition: say when it applies, or drop it and say why in `notes`"
                        .into(),
                );
            }
        }
    }
    for (i, link) in s.online_services.iter().enumerate() {
        check_url(&link.url, "url", Some(("online_services", i)), r);
        if link.title.trim().is_empty() {
            r.at(Severity::Error, Some(("online_services", i)), "title", "an online service needs a title".into());
        }
    }
    if let Some(url) = &s.appointment_url {
        check_url(url, "appointment_url", None, r);
    }
    for (i, resp) in s.responsible.iter().enumerate() {
        if !offices.contains(resp.office.as_str()) {
            r.at(
                Severity::Error,
                Some(("responsible", i)),
                "office",
                format!("office `{}` does not exist (no offices/{}.toml)", resp.office, resp.office),
            );
        }
    }
    if s.responsible.is_empty() {
        r.warn("id", "no responsible office: Lotse cannot say where to go");
    }
}

fn check_office(o: &Office, path: &Path, r: &mut Reporter<'_>) {
    check_id(&o.id, path, r);
    if o.name.trim().is_empty() {
        r.error("name", "the office has no name");
    }
    if o.source.trim().is_empty() {
        r.error("source", "the office has no source address");
    } else {
        check_url(&o.source, "source", None, r);
    }
    check_as_of(&o.as_of, r);
    for (key, url) in [("website", &o.website), ("appointment_url", &o.appointment_url)] {
        if let Some(url) = url {
            check_url(url, key, None, r);
        }
    }
    if let Some(email) = &o.email {
        let ok = email.split_once('@').is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !email.contains(' '));
        if !ok {
            r.error("email", format!("`{email}` is not an e-mail address"));
        }
    }
    if let Some(phone) = &o.phone {
        let ok = phone.chars().any(|c| c.is_ascii_digit())
            && phone.chars().all(|c| c.is_ascii_digit() || " +-/()".contains(c));
        if !ok {
            r.error("phone", format!("`{phone}` is not a phone number (digits, spaces, + - / only)"));
        }
    }
    if let Some(hours) = &o.opening_hours {
        for (day, e) in hours.validate() {
            r.at(
                Severity::Error,
                Some(("opening_hours", 0)),
                day.key(),
                format!("opening hours on {}: {e}", day.name_de()),
            );
        }
    }
}
