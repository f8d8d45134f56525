//! Any text up to the API's length limit, as a first message on the web and as two turns on the
//! phone, through understanding, search, decision and composition: a reply, never a panic.
#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use lotse_core::{Channel, Lang};
use lotse_dialog::{Engine, EngineConfig, TurnRequest};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../knowledge");
        let kb = Arc::new(lotse_knowledge::load_dir(&dir).expect("curated knowledge loads"));
        let index = Arc::new(lotse_search::SearchIndex::build(&kb).expect("index builds"));
        Engine::new(kb, index, EngineConfig::default())
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.chars().count() > 2000 {
        return;
    }
    let e = engine();
    let now = jiff::civil::date(2026, 11, 24).at(10, 0, 0, 0);
    let at = jiff::Timestamp::UNIX_EPOCH;
    let (mut web, _) = e.start("fuzz-web".into(), Channel::Web, Lang::De);
    let r = e.respond(&mut web, TurnRequest::new(text).at(at, now));
    assert!(!r.text.is_empty());
    let (mut phone, _) = e.start("fuzz-phone".into(), Channel::Phone, Lang::De);
    let (first, second) = text.split_at(text.char_indices().nth(text.chars().count() / 2).map_or(0, |(i, _)| i));
    e.respond(&mut phone, TurnRequest::new(first).at(at, now));
    let r = e.respond(&mut phone, TurnRequest::new(second).at(at, now));
    assert!(!r.text.is_empty());
});
