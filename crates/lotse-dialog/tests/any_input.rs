//! Any text a citizen can send gets a reply, never a panic: property tests over the whole
//! understanding, search, decision and composition path, on the real curated knowledge.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use lotse_core::{Channel, Lang, ReplyKind};
use lotse_dialog::{Engine, EngineConfig};
use lotse_search::SearchIndex;
use proptest::prelude::*;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge");
        let kb = Arc::new(lotse_knowledge::load_dir(&dir).expect("curated knowledge loads"));
        let index = Arc::new(SearchIndex::build(&kb).expect("index builds"));
        Engine::new(kb, index, EngineConfig::default())
    })
}

/// Pieces a message is made of: words of the domain, and the characters that break naive byte
/// arithmetic — dashes, typographic quotes, emoji, combining marks, right-to-left text,
/// zero-width and control characters, and umlauts in both normal forms.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "Gewerbe", "abmelden", "Personalausweis", "Perso", "was", "kostet", "Bürgeramt", "wann", "offen",
            "Reisepass", "für", "Kinder", "ich", "bin", "19", "Jahre", "Wo", "ist", "der", "Bürgerservice",
            "passport", "how", "much", "Einfache", "Sprache", "Mensch", "sprechen", "ja", "nein", "und",
            "Dienstag", "jetzt", "heute", "Hundesteuer", "Ummeldung", "Straße", "€", "12,50",
        ]).prop_map(str::to_string),
        2 => prop::sample::select(vec![
            " ", " – ", "—", "„", "“", "»", "«", "'", "\"", "?", "!", ".", ",", "\n", "\t", "😀", "👩‍👩‍👧",
            "\u{301}", "\u{308}", "u\u{308}", "\u{200b}", "\u{200d}", "\u{feff}", "\u{202e}", "\u{0}",
            "\u{7}", "\u{1b}[31m", "שלום", "مرحبا", "İ", "ß", "ẞ", "ﬁ", "\u{fffd}", "<b>", "</script>",
        ]).prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

fn message() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..24).prop_map(|parts| parts.concat())
}

fn turn(channel: Channel, turns: &[String]) {
    let e = engine();
    let (mut conv, _) = e.start("prop".into(), channel, Lang::De);
    let now = jiff::civil::date(2026, 11, 24).at(10, 0, 0, 0);
    for t in turns {
        let r = e.respond(&mut conv, lotse_dialog::TurnRequest::new(t).at(jiff::Timestamp::UNIX_EPOCH, now));
        assert!(!r.text.trim().is_empty(), "an empty reply to {t:?}");
        if r.kind == ReplyKind::Answer {
            assert!(!r.sources.is_empty(), "an answer without sources to {t:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_message_gets_a_reply_on_the_web(m in message()) {
        turn(Channel::Web, &[m]);
    }

    #[test]
    fn any_two_turns_get_replies_on_the_phone(a in message(), b in message()) {
        turn(Channel::Phone, &[a, b]);
    }

    #[test]
    fn search_takes_any_text(m in message()) {
        let index = search_index();
        let result = index.search(&m, 5).expect("search does not fail on text");
        prop_assert!((0.0..=1.0).contains(&result.confidence));
        prop_assert!(result.hits.len() <= 5);
    }
}

fn search_index() -> &'static SearchIndex {
    static INDEX: OnceLock<SearchIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge");
        let kb = lotse_knowledge::load_dir(&dir).expect("curated knowledge loads");
        SearchIndex::build(&kb).expect("index builds")
    })
}

/// The question that took a turn down: a byte index inside the en dash.
#[test]
fn the_en_dash_question_gets_an_answer() {
    let e = engine();
    let (mut conv, _) = e.start("dash".into(), Channel::Web, Lang::De);
    let r = e.respond(&mut conv, lotse_dialog::TurnRequest::new("Gewerbe abmelden – fallen da Gebühren an?"));
    assert_eq!(r.kind, ReplyKind::Answer, "{}", r.text);
    assert_eq!(r.sources[0].id, "gewerbeabmeldung");
}

/// A message at the length limit (2,000 characters) of every kind of character.
#[test]
fn long_messages_of_odd_characters_get_replies() {
    for unit in ["–", "😀", "\u{301}", "\u{200b}", "ש", "a\u{308}", "Gewerbe abmelden – "] {
        let text: String = unit.chars().cycle().take(2000).collect();
        turn(Channel::Web, &[text]);
    }
}
