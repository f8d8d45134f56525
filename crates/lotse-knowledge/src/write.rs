//! Writes a knowledge base as the curated TOML layout. The files go to a fresh folder beside the
//! target, which then replaces the target in one rename: a failed import leaves nothing
//! half-written.

use std::path::Path;

use crate::{Error, KnowledgeBase, Result};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// Writes `kb` to `dir` (`services/`, `offices/`, `synonyms.toml` when there are synonyms),
/// replacing what was there.
pub fn write_dir(kb: &KnowledgeBase, dir: &Path) -> Result<()> {
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("knowledge");
    let staging = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    let result = (|| {
        for sub in ["services", "offices"] {
            std::fs::create_dir_all(staging.join(sub)).map_err(io(&staging))?;
        }
        for s in &kb.services {
            let path = staging.join("services").join(format!("{}.toml", s.id));
            let text = toml::to_string(s).map_err(|e| Error::Invalid { path: path.clone(), message: e.to_string() })?;
            std::fs::write(&path, text).map_err(io(&path))?;
        }
        for o in &kb.offices {
            let path = staging.join("offices").join(format!("{}.toml", o.id));
            let text = toml::to_string(o).map_err(|e| Error::Invalid { path: path.clone(), message: e.to_string() })?;
            std::fs::write(&path, text).map_err(io(&path))?;
        }
        if !kb.synonyms.is_empty() {
            let mut text = String::new();
            for (table, entries) in [("terms", &kb.synonyms.entries), ("english", &kb.synonyms.english)] {
                if entries.is_empty() {
                    continue;
                }
                text.push_str(&format!("[{table}]\n"));
                for (word, terms) in entries {
                    let list: Vec<String> = terms.iter().map(|t| toml_string(t)).collect();
                    text.push_str(&format!("{} = [{}]\n", toml_string(word), list.join(", ")));
                }
            }
            let path = staging.join("synonyms.toml");
            std::fs::write(&path, text).map_err(io(&path))?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::rename(&staging, dir).map_err(io(dir))
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
