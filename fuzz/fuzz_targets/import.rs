#![no_main]
//! What the city's IT feeds in: a DLDB export (the services file, and the services and
//! locations files together), PVOG JSON, an XZuFi message and an office's opening hours of a
//! day. The first byte picks the reader, the rest is its text; any input gets the knowledge
//! or an error, never a panic. Seeds: the importers' test fixtures (`scripts/fuzz`).

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lotse_knowledge::KnowledgeBase;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    match which % 5 {
        0 => {
            let _ = lotse_knowledge::dldb::import_str(&text, None);
        }
        1 => {
            // The two files, split at the first NUL.
            let (services, locations) = text.split_once('\0').unwrap_or((&text, ""));
            let _ = lotse_knowledge::dldb::import_str(services, Some(locations));
        }
        2 => {
            let mut kb = KnowledgeBase::default();
            let _ = lotse_knowledge::pvog::apply(&text, Path::new("pvog.json"), &mut kb);
        }
        3 => {
            let mut kb = KnowledgeBase::default();
            let _ = lotse_knowledge::xzufi::apply(&text, Path::new("xzufi.xml"), &mut kb);
        }
        _ => {
            let _ = lotse_core::parse_day(&text);
        }
    }
});
