//! The knowledge base: every service and office Lotse may talk about, loaded from the curated
//! `knowledge/` folder (one TOML file per service and per office) or imported from the formats
//! German administrations publish (DLDB JSON, XZuFi 2.2 XML, PVOG JSON).
//!
//! Imports are written out as the same TOML files ([`write_dir`]), so curated and imported
//! knowledge load through one path ([`load_dir`]) and pass one validation ([`check_dir`]).
//! Everything here is synchronous file IO and pure transformation; no search, no HTTP.

mod check;
pub mod dldb;
mod html;
mod locate;
pub mod pvog;
mod synonyms;
mod write;
pub mod xzufi;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use check::{Problem, Severity, check_dir, check_knowledge, load_and_check};
pub use html::html_to_text;
use lotse_core::{Office, Service};
pub use synonyms::Synonyms;
pub use write::write_dir;

/// A loaded knowledge base: services, offices and the colloquial-word table.
#[derive(Debug, Clone, Default)]
pub struct KnowledgeBase {
    pub services: Vec<Service>,
    pub offices: Vec<Office>,
    pub synonyms: Synonyms,
}

impl KnowledgeBase {
    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }

    pub fn office(&self, id: &str) -> Option<&Office> {
        self.offices.iter().find(|o| o.id == id)
    }

    /// An id → index map for offices, for callers that look up many.
    pub fn office_index(&self) -> HashMap<&str, &Office> {
        self.offices.iter().map(|o| (o.id.as_str(), o)).collect()
    }
}

/// Why knowledge could not be loaded or imported. Positions are 1-based.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax { path: PathBuf, line: usize, column: usize, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("the knowledge in {dir} has {count} error(s); run `lotse knowledge check {dir}`:\n{first}")]
    Check { dir: PathBuf, count: usize, first: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

/// Replaces the item with the same id, or appends it.
pub(crate) fn upsert<T>(list: &mut Vec<T>, item: T, id: impl Fn(&T) -> &String) {
    match list.iter().position(|x| id(x) == id(&item)) {
        Some(i) => list[i] = item,
        None => list.push(item),
    }
}

/// Loads a knowledge folder (`services/*.toml`, `offices/*.toml`, optional `synonyms.toml`) and
/// refuses it if `check_dir` finds errors, so a server never runs on broken knowledge.
pub fn load_dir(dir: &Path) -> Result<KnowledgeBase> {
    let (kb, problems) = check::load_and_check(dir)?;
    let errors: Vec<&Problem> = problems.iter().filter(|p| p.severity == Severity::Error).collect();
    if let Some(first) = errors.first() {
        return Err(Error::Check { dir: dir.to_path_buf(), count: errors.len(), first: first.to_string() });
    }
    Ok(kb)
}
