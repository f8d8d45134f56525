//! Retrieval over the knowledge base: which services answer a citizen's question, and how sure
//! we are.
//!
//! [`SearchIndex::build`] analyses every service with the German [`Analyzer`] (folding, compound
//! splitting against the knowledge's own words, stemming) and indexes the terms in an in-memory
//! tantivy index with one field per part of the record (name, synonyms, teaser, body), boosted
//! in that order. [`SearchIndex::search`] expands the question with the colloquial-word table,
//! corrects typos against the index vocabulary, scores with BM25, and computes a
//! [`SearchResult::confidence`]: the share of the question's meaning (weighted by rarity) that
//! the best hit covers. Unknown words weigh most, so a question about something the knowledge
//! base lacks scores low.
//!
//! Threading: the index is built once and then only read; `SearchIndex` is `Send + Sync` and a
//! search takes no locks beyond tantivy's searcher. Indexing is CPU work: call `build` off the
//! async runtime.

pub mod analysis;
pub mod commonness;
pub mod glossary;
pub mod lexicon;
pub mod rank;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use lotse_embed::Embedder;

pub use analysis::{Analyzer, fold, split_sentences};
pub use commonness::{Commonness, CommonnessError};
pub use glossary::Glossary;
pub use lexicon::{DictionaryText, Lexicon, LexiconError};
use lotse_knowledge::KnowledgeBase;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value};
use tantivy::{Index, IndexReader, TantivyDocument, Term};

/// Confidence at or above which the conversation layer may answer; below it, it should ask back
/// or abstain. Chosen when the confidence model is fitted (`lotse train ranker`).
/// `LOTSE_ANSWER_THRESHOLD` overrides it (0–1), for a city that wants another trade-off
/// between declining and risking a wrong answer.
pub fn answer_threshold() -> f32 {
    static OVERRIDE: std::sync::OnceLock<Option<f32>> = std::sync::OnceLock::new();
    OVERRIDE
        .get_or_init(|| {
            std::env::var("LOTSE_ANSWER_THRESHOLD")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|t| (0.0..=1.0).contains(t))
        })
        .unwrap_or(rank::weights().threshold)
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("embeddings: {0}")]
    Embed(#[from] lotse_embed::Error),
}

/// Dense re-ranking: a sentence embedding per service, compared with the question's.
struct Dense {
    embedder: Arc<Embedder>,
    /// One L2-normalised vector per service, in knowledge order.
    vectors: Vec<Vec<f32>>,
    /// The vectors of each service's pieces (see [`pieces`]), with the service's index and,
    /// for a sentence of the record, the sentence.
    pieces: Vec<(usize, Option<String>, Vec<f32>)>,
    /// The questions embedded last, newest first, so that a turn that searches a question, a
    /// part of it and then the sentences of the service found embeds each text once, also
    /// while other conversations embed theirs.
    recent: std::sync::Mutex<std::collections::VecDeque<(String, Vec<f32>)>>,
}

/// How many question vectors [`Dense`] keeps.
const RECENT_QUERIES: usize = 16;

impl Dense {
    fn query(&self, text: &str) -> Result<Vec<f32>, Error> {
        {
            let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, v)) = recent.iter().find(|(t, _)| t == text) {
                return Ok(v.clone());
            }
        }
        // Embedding takes milliseconds: other turns must not wait for the lock meanwhile.
        let v = self.embedder.embed(text, true)?;
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.push_front((text.to_string(), v.clone()));
        recent.truncate(RECENT_QUERIES);
        Ok(v)
    }
}

/// The short texts of a service embedded one by one: its names, its synonyms and the sentences
/// of its teaser and description, each led by the service's name so that it keeps its sense.
/// A citizen's question often matches one sentence of a record ("Studierende bekommen in der
/// Regel kein Wohngeld") better than the record as a whole.
/// At most `max` pieces: the names first, then sentences and synonyms in turn.
fn pieces(s: &lotse_core::Service, max: usize) -> Vec<(String, Option<String>)> {
    let mut out = vec![(s.name.clone(), None)];
    out.extend(s.name_en.clone().map(|n| (n, None)));
    let text = format!("{}\n{}", s.teaser, s.description);
    let mut sentences = split_sentences(&text)
        .into_iter()
        .filter(|t| t.chars().count() >= MIN_PIECE_CHARS)
        .take(MAX_PIECE_SENTENCES)
        .map(|t| (format!("{}: {t}", s.name), Some(t)));
    let mut synonyms = s.synonyms.iter().take(MAX_PIECE_SYNONYMS).map(|syn| (format!("{}: {syn}", s.name), None));
    loop {
        let (a, b) = (sentences.next(), synonyms.next());
        if a.is_none() && b.is_none() {
            break;
        }
        out.extend(a);
        out.extend(b);
    }
    out.truncate(max.max(1));
    out
}

/// Bounds on the pieces, which keep the embedding of a large knowledge base affordable on the
/// first start (about 40 ms a piece on 2 cores; the cache holds them afterwards): at most
/// `PIECE_BUDGET` in all, shared evenly among the services.
const MAX_PIECE_SYNONYMS: usize = 12;
const MAX_PIECE_SENTENCES: usize = 12;
const MIN_PIECE_CHARS: usize = 25;
const PIECE_BUDGET: usize = 3200;

/// A colloquial phrase of `synonyms.toml`: its folded words, their stems, and the knowledge
/// terms it stands for.
struct Phrase {
    words: Vec<String>,
    stems: Vec<String>,
    targets: Vec<String>,
    /// Read only in questions that read as English (`[english]`).
    english: bool,
    /// The one knowledge word it stands for, as the synonym table writes it ("perso" →
    /// "Personalausweis"); none where it stands for several.
    said: Option<String>,
}

/// A question's closeness in meaning to every service, and the services' ranks by it.
struct Closeness {
    /// To each service's passage.
    sims: Vec<f32>,
    dense_rank: Vec<usize>,
    /// To each service's closest piece.
    piece_sims: Vec<f32>,
    piece_rank: Vec<usize>,
}

/// The positions of `values` from the highest down, and each position's rank in that order.
fn order_and_rank(values: &[f32]) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|a, b| values[*b].total_cmp(&values[*a]));
    let mut rank = vec![usize::MAX; values.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    (order, rank)
}

/// The text embedded for a service: what it is called and what it is, not the long description.
fn passage(s: &lotse_core::Service) -> String {
    let mut text = s.name.clone();
    if let Some(en) = &s.name_en {
        text.push_str(". ");
        text.push_str(en);
    }
    for syn in s.synonyms.iter().take(12) {
        text.push_str(", ");
        text.push_str(syn);
    }
    text.push_str(". ");
    text.extend(s.teaser.chars().take(300));
    // The description's opening says what the service is for in plain words ("Wer nach Jena
    // zieht, meldet sich …"), which is how citizens describe it.
    if !s.description.is_empty() {
        text.push(' ');
        text.extend(s.description.chars().take(PASSAGE_DESCRIPTION_CHARS));
    }
    text
}

/// How much of the description goes into a service's embedded passage.
const PASSAGE_DESCRIPTION_CHARS: usize = 400;

/// The evidence behind a search, for fitting and explaining the ranking.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// (service id, ranking probability, features) of every candidate considered, best first.
    pub candidates: Vec<(String, f32, Vec<f32>)>,
    /// The confidence features (see [`rank::CONF_FEATURES`]).
    pub confidence: Vec<f32>,
    /// The share of the question's weight no service knows.
    pub unknown_share: f32,
    /// The question's nouns no service knows, an everyday one counted by its weight.
    pub unknown_nouns: f32,
    /// How the question was read: each word or phrase, its weight in the coverage and the
    /// index terms it stands for.
    pub concepts: Vec<(String, f32, Vec<String>)>,
}

/// One ranked service.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub service_id: String,
    /// Position of the service in the knowledge base's `services`.
    pub index: usize,
    /// BM25 score (unbounded; compare within one result only).
    pub score: f32,
    /// Share of the question's weight this service covers, 0–1.
    pub coverage: f32,
}

/// Which stages a search may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Retrieval {
    /// Lexical ranking and, where the embedding model is loaded, the re-ranking by closeness in
    /// meaning.
    #[default]
    Full,
    /// The lexical ranking alone: cheap, for a server under load and for probes of clauses.
    Lexical,
}

/// What a search found.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult {
    /// Best first.
    pub hits: Vec<Hit>,
    /// The probability that the best hit is right, 0–1; compare with [`answer_threshold`].
    pub confidence: f32,
    /// Words of the question that no service knows (after typo correction), folded.
    pub unknown_words: Vec<String>,
}

impl SearchResult {
    pub fn top(&self) -> Option<&Hit> {
        self.hits.first()
    }

    pub fn is_confident(&self) -> bool {
        self.confidence >= answer_threshold()
    }
}

struct Fields {
    id: Field,
    name: Field,
    synonyms: Field,
    teaser: Field,
    body: Field,
}

/// Field boosts: a word in the name says more than one in the description.
const BOOST_NAME: f32 = 3.0;
const BOOST_SYNONYMS: f32 = 2.5;
const BOOST_TEASER: f32 = 1.5;
const BOOST_BODY: f32 = 1.0;

/// Query-term weights by how the term was derived from the question.
const W_WORD: f32 = 1.0;
const W_PART: f32 = 0.6;
const W_SYNONYM: f32 = 0.9;
const W_TYPO: f32 = 0.8;
const W_ASPECT: f32 = 0.3;
/// A dictionary's reading of an English word: less sure than a synonym citizens use.
const W_TRANSLATION: f32 = 0.7;
/// A form of the question's word that differs by an umlaut ("Tagesmutter" for "Tagesmütter");
/// its own value, so that a concept's rarity can leave such forms out (its credit is a
/// synonym's).
const W_FORM: f32 = 0.95;

/// How much of a word's weight counts as covered, by how it was matched: the word itself, a
/// colloquial synonym, a typo correction, or only a part of a compound.
fn credit(weight: f32) -> f32 {
    if weight >= W_WORD {
        1.0
    } else if weight >= W_SYNONYM {
        0.9
    } else if weight >= W_TYPO {
        0.85
    } else {
        0.5
    }
}

/// A match in the description counts less than one in the name, synonyms or teaser.
const BODY_CREDIT: f32 = 0.5;

/// Weight of a word no service knows, relative to the rarest known word. Unknown words are what
/// makes a question about something absent score low; everyday filler words are unknown too, so
/// they must not weigh more than a rare word.
const UNKNOWN_WEIGHT: f32 = 0.8;

/// The weight of a word the records write in lower case (a verb or adjective), relative to a
/// noun of the same rarity.
const QUALIFIER_WEIGHT: f32 = 0.4;

/// Candidates re-ranked by coverage after BM25.
const RERANK_DEPTH: usize = 20;

/// Services added as candidates by closeness in meaning (with embeddings).
const DENSE_DEPTH: usize = 10;

/// The entry of `by_len` closest to `word` by edit distance (1 edit for 5–7 letters, 2 from 8),
/// preferring the more frequent on ties.
fn closest(word: &str, by_len: &HashMap<usize, Vec<String>>, freq: impl Fn(&str) -> u32) -> Option<String> {
    let len = word.len();
    let max = match len {
        0..=4 => return None,
        5..=7 => 1,
        _ => 2,
    };
    let mut best: Option<(usize, u32, &String)> = None;
    for l in len.saturating_sub(max)..=len + max {
        for t in by_len.get(&l).into_iter().flatten() {
            let d = strsim::osa_distance(word, t);
            if d == 0 || d > max {
                continue;
            }
            let f = freq(t);
            let better = match best {
                None => true,
                Some((bd, bf, bt)) => d < bd || (d == bd && (f > bf || (f == bf && t < bt))),
            };
            if better {
                best = Some((d, f, t));
            }
        }
    }
    best.map(|(_, _, t)| t.clone())
}

/// One meaningful unit of the question: a word and the index terms that stand for it.
#[derive(Debug)]
struct Concept {
    word: String,
    /// (term, weight)
    terms: Vec<(String, f32)>,
    /// Rarity weight for the coverage computation.
    idf: f32,
    /// For a word no service knows: how much it says about the topic (see [`Shape`]).
    unknown_weight: f32,
    /// Written as a noun (capitalised inside a properly cased German question).
    noun: bool,
}

/// What the writing of a word tells about it. German capitalises nouns, and nouns name the
/// topic ("Waffenschein", "Scheidung"); lower-case words in a properly capitalised question are
/// verbs, adjectives and fillers ("geklaut", "übermorgen"). An unknown noun therefore says "this
/// is about something we lack" far more than an unknown lower-case word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Capitalised inside a sentence: a noun.
    Noun,
    /// Lower-case in a question that capitalises its nouns.
    Lower,
    /// Sentence start, all lower-case or all upper-case text: cannot tell.
    Unclear,
    /// Capitalised after a place preposition ("in Munich", "nach Italien"): a place name, in
    /// German and English alike. Unknown, it says nothing about the service asked for.
    Place,
}

impl Shape {
    fn unknown_weight(self) -> f32 {
        match self {
            Shape::Noun => 1.0,
            Shape::Unclear => 1.0,
            Shape::Lower => 0.5,
            Shape::Place => 0.0,
        }
    }
}

/// Prepositions before a place name, as written (lower case).
const PLACE_PREPOSITIONS: &[&str] = &["in", "nach", "aus", "from", "to", "near"];

/// Articles between a place preposition and a place name ("aus der Ukraine", "in den USA").
const PLACE_ARTICLES: &[&str] = &["der", "die", "den", "dem", "the"];

/// A word of the question (its byte span in the question as written) and what to write
/// instead for the dense stage.
type Rewrite = (std::ops::Range<usize>, String);

/// The terms of a question's concepts, each once with its surest weight.
fn merged_terms(concepts: Vec<Concept>) -> Vec<(String, f32)> {
    let mut out: Vec<(String, f32)> = Vec::new();
    for c in concepts {
        for (t, w) in c.terms {
            match out.iter_mut().find(|(x, _)| *x == t) {
                Some(e) => e.1 = e.1.max(w),
                None => out.push((t, w)),
            }
        }
    }
    out
}

/// `text` with the given spans replaced (a span that overlaps an earlier one is left out).
fn rewritten<'a>(text: &'a str, rewrites: &[Rewrite]) -> std::borrow::Cow<'a, str> {
    if rewrites.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut at = 0;
    let mut sorted: Vec<&Rewrite> = rewrites.iter().collect();
    sorted.sort_by_key(|(span, _)| span.start);
    for (span, with) in sorted {
        if span.start < at {
            continue;
        }
        out.push_str(&text[at..span.start]);
        out.push_str(with);
        at = span.end;
    }
    out.push_str(&text[at..]);
    std::borrow::Cow::Owned(out)
}

/// The question's words as written, with their byte offsets: runs of alphanumeric characters,
/// the same runs [`analysis::words`] finds in the folded text.
fn raw_words(text: &str) -> Vec<(usize, &str)> {
    // Separators may be several bytes long ("–", "„").
    let mut raw: Vec<(usize, &str)> = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                raw.push((s, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    raw
}

/// The [`Shape`] of each word of `text` (`raw`: its [`raw_words`]), in the order of
/// [`analysis::words`] over the folded text (folding keeps word boundaries, so the sequences
/// line up).
fn word_shapes(text: &str, raw: &[(usize, &str)]) -> Vec<Shape> {
    let has_lower_start = raw.iter().any(|(_, w)| w.chars().next().is_some_and(char::is_lowercase));
    let has_upper_start = raw.iter().skip(1).any(|(_, w)| w.chars().next().is_some_and(char::is_uppercase));
    // English does not capitalise nouns, so casing says nothing there.
    let cased = has_lower_start && has_upper_start && !analysis::looks_english(text);
    raw.iter()
        .enumerate()
        .map(|(i, &(start, w))| {
            let before = text[..start].trim_end();
            let sentence_start = before.is_empty() || before.ends_with(['.', '!', '?', ':']);
            let first_upper = w.chars().next().is_some_and(char::is_uppercase);
            let all_upper = w.chars().all(|c| !c.is_lowercase());
            // Or after one and an article ("aus der Ukraine", "in die Türkei").
            let after_place_word = i > 0
                && (PLACE_PREPOSITIONS.contains(&raw[i - 1].1) && before.ends_with(raw[i - 1].1)
                    || i > 1
                        && PLACE_ARTICLES.contains(&raw[i - 1].1)
                        && PLACE_PREPOSITIONS.contains(&raw[i - 2].1)
                        && before.ends_with(raw[i - 1].1));
            if after_place_word && first_upper && !all_upper && !sentence_start {
                return Shape::Place;
            }
            match (cased, sentence_start, first_upper, all_upper) {
                (false, _, _, _) | (_, true, _, _) => Shape::Unclear,
                (true, false, true, false) => Shape::Noun,
                (true, false, true, true) => Shape::Unclear,
                (true, false, false, _) => Shape::Lower,
            }
        })
        .collect()
}

/// The searchable form of a knowledge base.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    analyzer: Analyzer,
    /// Document frequency of each term over all fields.
    doc_freq: HashMap<String, u32>,
    /// Index terms (stems) by length, for typo correction.
    terms_by_len: HashMap<usize, Vec<String>>,
    /// Folded words of the knowledge by length, for correcting a misspelt word before stemming.
    words_by_len: HashMap<usize, Vec<String>>,
    /// The index term of each English stem of a knowledge word ("extend" → the term of
    /// "extend"), so that an English inflection the records do not use ("extending", "fees")
    /// finds the word they do: the analyzer stems German.
    english: HashMap<String, String>,
    /// The index terms by their umlaut-free form ("tagesmutt" → the terms of "Tagesmutter"
    /// and "Tagesmütter"), so that a plural with umlaut ("Tagesmütter", "Anträge") finds the
    /// word a service's name uses without it, and back ("Wertstoffhof", "Wertstoffhöfe").
    umlaut_free: HashMap<String, Vec<String>>,
    /// Terms of each service's name, synonyms and teaser, for coverage.
    title_terms: Vec<HashSet<String>>,
    /// Terms of each service's description, documents, prerequisites and procedure.
    body_terms: Vec<HashSet<String>>,
    /// Terms of each service's name, English name and synonyms.
    name_terms: Vec<HashSet<String>>,
    /// Each service's names as phrases: the stems of each synonym, of the English name and of
    /// each part of the name ("Hund abmelden (Hundesteuer)" → [hund, abmeld], [hundesteu]).
    phrases: Vec<Vec<Vec<String>>>,
    ids: Vec<String>,
    /// Colloquial phrases and the knowledge terms they stand for, longest first.
    synonyms: Vec<Phrase>,
    /// Every folded word of the records (names, synonyms, teasers, descriptions).
    record_words: HashSet<String>,
    /// The folded words of the services' names, teasers and descriptions.
    prose_words: HashSet<String>,
    /// Every folded word of the records and synonyms as written there ("fuehrerschein" →
    /// "Führerschein"), for the text the dense stage reads.
    written: HashMap<String, String>,
    /// Share of a stem's occurrences in the records written with a capital (not at a sentence
    /// start): near 1 for nouns, near 0 for verbs and adjectives.
    noun_share: HashMap<String, f32>,
    dense: Option<Dense>,
    /// Real words of the question's languages: a word they know is never taken for a typo.
    lexicon: Option<Arc<Lexicon>>,
    /// English words (and their English stems) with the index terms of the German words a
    /// dictionary gives for them, and those words as written ([`SearchIndex::with_glossary`]).
    translations: HashMap<String, Vec<(String, String)>>,
    /// How common words are in everyday language: an everyday word no record uses weighs less
    /// as a topic the knowledge lacks than a rare one ([`SearchIndex::with_commonness`]).
    commonness: Option<Arc<Commonness>>,
    /// Foreign countries' names, folded single words, read as the records' word for abroad
    /// ([`SearchIndex::with_countries`]): German names in any question, English ones in English
    /// questions.
    countries: (HashSet<String>, HashSet<String>),
    /// The index terms of the records' words for abroad ("Ausland", "ausländisch").
    abroad: Vec<(String, f32)>,
}

/// What ends a clause, for separable and reflexive verbs.
const CLAUSE_ENDS: [char; 7] = ['.', ',', ';', ':', '!', '?', '\n'];

/// The reflexive pronouns (folded) that make a verb of the synonym table's `sich …` entries.
const REFLEXIVE: &[&str] = &["mich", "dich", "sich", "uns", "euch"];

/// The most index terms an English word is read as: a word with more meanings in the
/// records says little about which service is meant.
const MAX_TRANSLATIONS: usize = 4;

/// The shortest word whose English inflections are looked for.
const MIN_ENGLISH: usize = 4;

/// The place the knowledge is about: the town most of its offices are in.
fn home(kb: &KnowledgeBase) -> Option<&str> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for o in &kb.offices {
        if let Some(a) = &o.address {
            *count.entry(a.city.as_str()).or_default() += 1;
        }
    }
    count.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0))).map(|(city, _)| city)
}

impl SearchIndex {
    /// Analyses and indexes every service of `kb`.
    pub fn build(kb: &KnowledgeBase) -> Result<SearchIndex, Error> {
        let mut texts: Vec<&str> = Vec::new();
        for s in &kb.services {
            texts.push(&s.name);
            texts.extend(s.name_en.as_deref());
            texts.extend(s.synonyms.iter().map(String::as_str));
            texts.push(&s.teaser);
            texts.push(&s.description);
        }
        // The words of the records themselves (not of the synonym table), folded.
        let record_words: HashSet<String> =
            texts.iter().flat_map(|t| analysis::words(&fold(t)).map(str::to_string).collect::<Vec<_>>()).collect();
        // The words the records' own prose uses (names, teasers, descriptions; not the
        // services' synonyms, which are the citizens' words).
        let prose_words: HashSet<String> = kb
            .services
            .iter()
            .flat_map(|s| [s.name.as_str(), s.teaser.as_str(), s.description.as_str()])
            .flat_map(|t| analysis::words(&fold(t)).map(str::to_string).collect::<Vec<_>>())
            .collect();
        for (word, terms, _) in kb.synonyms.all() {
            texts.push(word);
            texts.extend(terms.iter().map(String::as_str));
        }
        // How each word is written in the records: German capitalises nouns, and nouns name
        // what a service is about; adjectives and verbs ("neu", "gehen") only qualify it.
        let mut casing: HashMap<String, (u32, u32)> = HashMap::new();
        // Each folded word as written, from inside a sentence where it occurs there.
        let mut written: HashMap<String, (String, bool)> = HashMap::new();
        for t in &texts {
            let mut sentence_start = true;
            for piece in t.split_inclusive(|c: char| !c.is_alphanumeric()) {
                let word: String = piece.chars().take_while(|c| c.is_alphanumeric()).collect();
                if !word.is_empty() {
                    let e = written.entry(fold(&word)).or_insert_with(|| (word.clone(), !sentence_start));
                    if !e.1 && !sentence_start {
                        *e = (word.clone(), true);
                    }
                }
                if !word.is_empty() && !sentence_start && word.chars().any(char::is_lowercase) {
                    let e = casing.entry(fold(&word)).or_default();
                    if word.chars().next().is_some_and(char::is_uppercase) {
                        e.0 += 1;
                    } else {
                        e.1 += 1;
                    }
                }
                let end = piece.chars().last().unwrap_or(' ');
                if !word.is_empty() || !end.is_whitespace() {
                    sentence_start = matches!(end, '.' | '!' | '?' | ':' | '\n' | '(' | '"' | '„');
                }
            }
        }
        let analyzer = match home(kb) {
            Some(place) => Analyzer::new(texts).at_home(place),
            None => Analyzer::new(texts),
        };
        let mut by_stem: HashMap<String, (u32, u32)> = HashMap::new();
        for (w, (up, low)) in casing {
            let e = by_stem.entry(analyzer.stem(&w)).or_default();
            e.0 += up;
            e.1 += low;
        }
        let written: HashMap<String, String> = written.into_iter().map(|(k, (w, _))| (k, w)).collect();
        let noun_share: HashMap<String, f32> =
            by_stem.into_iter().map(|(stem, (up, low))| (stem, up as f32 / (up + low).max(1) as f32)).collect();

        let mut builder = Schema::builder();
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default().set_tokenizer("whitespace").set_index_option(IndexRecordOption::WithFreqs),
        );
        let fields = Fields {
            id: builder.add_text_field("id", STRING | STORED),
            name: builder.add_text_field("name", text.clone()),
            synonyms: builder.add_text_field("synonyms", text.clone()),
            teaser: builder.add_text_field("teaser", text.clone()),
            body: builder.add_text_field("body", text),
        };
        let index = Index::create_in_ram(builder.build());
        let mut writer = index.writer_with_num_threads(1, 50_000_000)?;
        let mut doc_freq: HashMap<String, u32> = HashMap::new();
        let mut title_terms = Vec::with_capacity(kb.services.len());
        let mut body_terms = Vec::with_capacity(kb.services.len());
        let mut name_terms = Vec::with_capacity(kb.services.len());
        let mut phrases = Vec::with_capacity(kb.services.len());
        for s in &kb.services {
            let mut names: Vec<&str> = s.name.split(['(', ')', ',', '/']).collect();
            names.extend(s.name_en.as_deref());
            names.extend(s.synonyms.iter().map(String::as_str));
            let mut own: Vec<Vec<String>> = Vec::new();
            for n in names {
                let folded = fold(n);
                let stems: Vec<String> =
                    analysis::words(&folded).filter(|w| !analyzer.is_stop_word(w)).map(|w| analyzer.stem(w)).collect();
                if !stems.is_empty() && !own.contains(&stems) {
                    own.push(stems);
                }
            }
            phrases.push(own);
            let name = analyzer.terms(&s.name);
            let mut syn_text = s.synonyms.join(" . ");
            if let Some(en) = &s.name_en {
                syn_text.push_str(" . ");
                syn_text.push_str(en);
            }
            let synonyms = analyzer.terms(&syn_text);
            let teaser = analyzer.terms(&s.teaser);
            let mut body_text = s.description.clone();
            for list in [&s.documents, &s.prerequisites, &s.procedure] {
                for item in list {
                    body_text.push('\n');
                    body_text.push_str(item);
                }
            }
            let body = analyzer.terms(&body_text);
            let title: HashSet<String> = name.iter().chain(&synonyms).chain(&teaser).cloned().collect();
            let body_set: HashSet<String> = body.iter().cloned().collect();
            for t in title.union(&body_set) {
                *doc_freq.entry(t.clone()).or_default() += 1;
            }
            let mut doc = TantivyDocument::default();
            doc.add_text(fields.id, &s.id);
            doc.add_text(fields.name, name.join(" "));
            doc.add_text(fields.synonyms, synonyms.join(" "));
            doc.add_text(fields.teaser, teaser.join(" "));
            doc.add_text(fields.body, body.join(" "));
            writer.add_document(doc)?;
            name_terms.push(name.iter().chain(&synonyms).cloned().collect::<HashSet<String>>());
            title_terms.push(title);
            body_terms.push(body_set);
        }
        writer.commit()?;
        let reader = index.reader()?;
        let mut terms_by_len: HashMap<usize, Vec<String>> = HashMap::new();
        for t in doc_freq.keys() {
            terms_by_len.entry(t.len()).or_default().push(t.clone());
        }
        let mut words_by_len: HashMap<usize, Vec<String>> = HashMap::new();
        for w in analyzer.vocabulary() {
            words_by_len.entry(w.len()).or_default().push(w.to_string());
        }
        for list in words_by_len.values_mut() {
            // Deterministic order, so that ties in typo correction resolve the same way each run.
            list.sort();
        }
        let english_stemmer = rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English);
        let mut english: HashMap<String, (u32, String)> = HashMap::new();
        for w in analyzer.vocabulary().filter(|w| w.len() >= MIN_ENGLISH && w.is_ascii()) {
            let term = analyzer.stem(w);
            let Some(&df) = doc_freq.get(&term) else { continue };
            let key = english_stemmer.stem(w).into_owned();
            // The most frequent term wins, and among equals the first in order.
            let e = english.entry(key).or_insert((0, String::new()));
            if df > e.0 || df == e.0 && term < e.1 {
                *e = (df, term);
            }
        }
        let english = english.into_iter().map(|(k, (_, term))| (k, term)).collect();
        let mut umlaut_free: HashMap<String, Vec<String>> = HashMap::new();
        for term in doc_freq.keys() {
            umlaut_free.entry(analysis::without_umlauts(term)).or_default().push(term.clone());
        }
        for terms in umlaut_free.values_mut() {
            terms.sort();
        }
        let mut synonyms = kb
            .synonyms
            .all()
            .map(|(phrase, terms, english)| {
                let words: Vec<String> = analysis::words(&fold(phrase)).map(str::to_string).collect();
                let stems = words.iter().map(|w| analyzer.stem(w)).collect();
                let targets = terms.iter().flat_map(|t| analyzer.terms(t)).collect();
                // As the records write it where they use it ("personalausweis" in the table is
                // "Personalausweis").
                let said = (terms.len() == 1).then(|| written.get(&fold(&terms[0])).unwrap_or(&terms[0]).clone());
                Phrase { words, stems, targets, english, said }
            })
            .collect::<Vec<Phrase>>();
        // Longer phrases first, so that "neue wohnung" wins over "wohnung".
        synonyms.sort_by_key(|p| std::cmp::Reverse(p.stems.len()));
        Ok(SearchIndex {
            index,
            reader,
            fields,
            analyzer,
            doc_freq,
            terms_by_len,
            words_by_len,
            english,
            umlaut_free,
            title_terms,
            body_terms,
            name_terms,
            phrases,
            ids: kb.services.iter().map(|s| s.id.clone()).collect(),
            synonyms,
            record_words,
            prose_words,
            written,
            noun_share,
            dense: None,
            lexicon: None,
            translations: HashMap::new(),
            countries: Default::default(),
            abroad: Vec::new(),
            commonness: None,
        })
    }

    /// Adds a German–English dictionary: in a question that reads as English, a word that
    /// neither the records nor the synonyms know is read as the German words the dictionary
    /// gives for it that the records use ("adult" → *Erwachsene*), with a weight below a
    /// synonym's. A word with more than [`MAX_TRANSLATIONS`] such readings is left unknown.
    pub fn with_glossary(mut self, glossary: &Glossary) -> SearchIndex {
        let stemmer = rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English);
        let mut translations: HashMap<String, Vec<(String, String)>> = HashMap::new();
        // By an English stem, the readings of the words behind it; none where they differ
        // ("residence" and "resident" are both "resid").
        let mut by_stem: HashMap<String, Option<Vec<(String, String)>>> = HashMap::new();
        // Each German word's index term, once (many English words share a German one).
        let mut terms: HashMap<&str, Option<String>> = HashMap::new();
        for (english, german) in glossary.iter() {
            if english.len() < 3 {
                continue;
            }
            let mut read: Vec<(String, String)> = Vec::new();
            for g in german {
                let term = terms.entry(g.as_str()).or_insert_with(|| {
                    let folded = fold(g);
                    let mut words = analysis::words(&folded);
                    let (Some(w), None) = (words.next(), words.next()) else { return None };
                    Some(self.analyzer.stem(w)).filter(|t| self.doc_freq.contains_key(t))
                });
                if let Some(t) = term.as_ref()
                    && !read.iter().any(|(r, _)| r == t)
                {
                    read.push((t.clone(), g.clone()));
                }
            }
            if read.is_empty() || read.len() > MAX_TRANSLATIONS {
                continue;
            }
            let stem = stemmer.stem(english).into_owned();
            if stem != *english {
                by_stem
                    .entry(stem)
                    .and_modify(|r| {
                        if r.as_ref().is_some_and(|r| *r != read) {
                            *r = None;
                        }
                    })
                    .or_insert_with(|| Some(read.clone()));
            }
            translations.insert(english.clone(), read);
        }
        // The word as written wins over another word's stem.
        for (stem, read) in by_stem {
            if let Some(read) = read {
                translations.entry(stem).or_insert(read);
            }
        }
        self.translations = translations;
        self
    }

    /// Adds other names of the place the records are about (their own name for it is read
    /// already): the English "Munich" of München's records is the home town too, a stop word
    /// for the words and left out of the embedded question ("How much is a passport in
    /// Munich?" is about the passport, not about the records that name the town most).
    pub fn with_home_names(mut self, names: impl IntoIterator<Item = String>) -> SearchIndex {
        for name in names {
            self.analyzer.add_home(&name);
        }
        self
    }

    /// Adds the names of foreign countries (German and English, each a name of one word): a
    /// country a question names is read as abroad as the records say it ("Wir wollen in Italien
    /// heiraten" asks what marrying abroad needs; "Mein Führerschein ist aus der Ukraine" is a
    /// foreign licence), besides the name itself where a record uses it. Records name the
    /// matters of other countries by *Ausland*, rarely by the country; a question names the
    /// country, never *Ausland*. Without a record that says *Ausland*, nothing changes.
    pub fn with_countries(
        mut self,
        german: impl IntoIterator<Item = String>,
        english: impl IntoIterator<Item = String>,
    ) -> SearchIndex {
        let single = |names: &mut dyn Iterator<Item = String>| -> HashSet<String> {
            names
                .map(|n| fold(n.trim()))
                .filter(|n| n.len() >= 3 && analysis::words(n).count() == 1 && !self.analyzer.is_stop_word(n))
                .collect()
        };
        self.countries = (single(&mut german.into_iter()), single(&mut english.into_iter()));
        self.abroad = ["Ausland", "ausländisch"]
            .iter()
            .map(|w| self.analyzer.stem(&fold(w)))
            .filter(|t| self.doc_freq.contains_key(t))
            .map(|t| (t, W_SYNONYM))
            .collect();
        self.abroad.dedup();
        self
    }

    /// Whether `folded_word` names a foreign country (see [`SearchIndex::with_countries`]).
    fn is_country(&self, folded_word: &str, english: bool) -> bool {
        self.countries.0.contains(folded_word) || english && self.countries.1.contains(folded_word)
    }

    /// How many English words the glossary added reads.
    pub fn translated_words(&self) -> usize {
        self.translations.len()
    }

    /// Adds dictionaries of real words: a word of the question that one of them knows is not
    /// corrected to a knowledge word it resembles ("Tasche" is not *Tausch*).
    pub fn with_lexicon(mut self, lexicon: Arc<Lexicon>) -> SearchIndex {
        self.lexicon = Some(lexicon);
        self
    }

    /// Adds word frequencies of everyday language: a word no record uses weighs as a topic the
    /// knowledge lacks by how rare it is ("Tasche" less than "Waffenschein"; see
    /// [`Commonness`]).
    pub fn with_commonness(mut self, commonness: Arc<Commonness>) -> SearchIndex {
        self.commonness = Some(commonness);
        self
    }

    /// Adds dense re-ranking: embeds every service of `kb` (the same knowledge this index was
    /// built from) once, and each question at search time.
    pub fn with_embeddings(mut self, kb: &KnowledgeBase, embedder: Arc<Embedder>) -> Result<SearchIndex, Error> {
        let passages: Vec<String> = kb.services.iter().map(passage).collect();
        let vectors = embedder.embed_passages(&passages)?;
        let mut owners = Vec::new();
        let mut texts = Vec::new();
        let per_service = PIECE_BUDGET / kb.services.len().max(1);
        for (i, s) in kb.services.iter().enumerate() {
            for (text, sentence) in pieces(s, per_service) {
                owners.push((i, sentence));
                texts.push(text);
            }
        }
        let pieces = owners
            .into_iter()
            .zip(embedder.embed_passages(&texts)?)
            .map(|((i, sentence), v)| (i, sentence, v))
            .collect();
        self.dense = Some(Dense { embedder, vectors, pieces, recent: Default::default() });
        Ok(self)
    }

    /// Whether `text` holds one of the service's names or synonyms whole (every term of the
    /// phrase, as the ranking's whole-name feature reads it: "Was kostet ein Personalausweis?"
    /// names `personalausweis`).
    /// Whether an index term stands in service `index`'s name, English name or synonyms.
    pub fn name_has_term(&self, index: usize, term: &str) -> bool {
        self.name_terms.get(index).is_some_and(|t| t.contains(term))
    }

    /// Whether an index term stands in any service's name, English name or synonyms.
    pub fn names_term(&self, term: &str) -> bool {
        self.name_terms.iter().any(|t| t.contains(term))
    }

    pub fn names_whole(&self, text: &str, index: usize) -> bool {
        self.whole_name_terms(text, index) > 0
    }

    /// How many terms the longest of service `index`'s names (name parts, English name,
    /// synonyms) has that `text` contains whole; 0 when it contains none ("vorläufiger
    /// Reisepass" names "Vorläufiger Reisepass" with two, "Reisepass" with one).
    pub fn whole_name_terms(&self, text: &str, index: usize) -> usize {
        let Some(phrases) = self.phrases.get(index) else { return 0 };
        let asked: HashSet<String> =
            self.concepts(text).into_iter().flat_map(|c| c.terms.into_iter().map(|(t, _)| t)).collect();
        phrases.iter().filter(|p| p.iter().all(|t| asked.contains(t))).map(Vec::len).max().unwrap_or(0)
    }

    /// The index terms a question stands for, each with how surely (1 for its own word, less
    /// for a compound's part, a synonym's target or a typo's correction): the same reading the
    /// search uses, with colloquial and English synonyms ("Perso" → Personalausweis, "student"
    /// → Studium) and corrected typos.
    pub fn question_terms(&self, question: &str) -> Vec<(String, f32)> {
        merged_terms(self.concepts(question))
    }

    /// [`SearchIndex::question_terms`] and [`SearchIndex::in_records_words`] from one reading of
    /// the question.
    pub fn read_question(&self, question: &str) -> (Vec<(String, f32)>, String) {
        let (concepts, rewrites) = self.read(question);
        (merged_terms(concepts), rewritten(question, &rewrites).into_owned())
    }

    /// The question in the records' words, as the dense stage reads it: a colloquial word
    /// that stands for one word of the records and, with the dictionaries, a misspelt word
    /// written as the records write it ("Personalasuweis" → "Personalausweis"), in a question
    /// that does not read as English. For [`SearchIndex::closest_sentences`], and for reading
    /// a record's sentences against the question word by word.
    pub fn in_records_words(&self, question: &str) -> String {
        let (_, rewrites) = self.read(question);
        rewritten(question, &rewrites).into_owned()
    }

    /// The sentences of service `index`'s teaser and description by closeness in meaning to
    /// `reading` (a question as [`SearchIndex::in_records_words`] gives it), closest first, with
    /// their similarity; empty without embeddings. The question is embedded as the search
    /// embeds it (misspelt words as the records write them, without the home town), so a typo
    /// moves the sentences no more than the service, and the search's embedding of the same
    /// question is reused.
    pub fn closest_sentences(&self, reading: &str, index: usize) -> Vec<(&str, f32)> {
        let Some(dense) = &self.dense else { return Vec::new() };
        let Ok(q) = dense.query(&self.analyzer.without_home(reading)) else {
            return Vec::new();
        };
        let mut out: Vec<(&str, f32)> = dense
            .pieces
            .iter()
            .filter(|(i, _, _)| *i == index)
            .filter_map(|(_, sentence, v)| sentence.as_deref().map(|t| (t, lotse_embed::cosine(&q, v))))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }

    /// The question's embedding (L2-normalised, as the search compares it), when the embedding
    /// model is loaded; for grouping questions by closeness in meaning.
    pub fn embed_question(&self, question: &str) -> Option<Result<Vec<f32>, Error>> {
        self.dense.as_ref().map(|d| d.query(&self.analyzer.without_home(question)))
    }

    /// Whether dense re-ranking is on.
    pub fn has_embeddings(&self) -> bool {
        self.dense.is_some()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Number of distinct index terms (for figures).
    pub fn n_terms(&self) -> usize {
        self.doc_freq.len()
    }

    fn idf(&self, df: u32) -> f32 {
        let n = self.ids.len().max(1) as f32;
        (1.0 + (n - df as f32 + 0.5) / (df as f32 + 0.5)).ln()
    }

    /// How rare an index term is among the services, 0–1 (1 for a term no service has).
    pub fn rarity(&self, term: &str) -> f32 {
        let df = self.doc_freq.get(term).copied().unwrap_or(0);
        self.idf(df) / self.idf(0).max(f32::MIN_POSITIVE)
    }

    /// The index term `stem` is without its last letter or two, where that is a knowledge word of
    /// four letters or more.
    fn without_ending(&self, stem: &str) -> Option<String> {
        let cuts: Vec<usize> = stem.char_indices().map(|(i, _)| i).rev().take(2).collect();
        cuts.into_iter()
            .map(|i| &stem[..i])
            .find(|p| p.chars().count() >= 4 && self.doc_freq.contains_key(*p))
            .map(str::to_string)
    }

    /// The closest index term to a misspelt stem, if one is close enough.
    fn correct(&self, stem: &str) -> Option<String> {
        closest(stem, &self.terms_by_len, |t| self.doc_freq.get(t).copied().unwrap_or(0))
    }

    /// The index term of an unknown word that is an English inflection of a word of the
    /// services' English names ("extending" → "extend", "permits" → "permit").
    fn english_form(&self, word: &str) -> Option<String> {
        if word.len() < MIN_ENGLISH || !word.is_ascii() {
            return None;
        }
        let stemmer = rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English);
        self.english.get(stemmer.stem(word).as_ref()).cloned()
    }

    /// The closest knowledge word to a misspelt (folded, unstemmed) word, stemmed, if it is an
    /// index term.
    fn correct_word(&self, word: &str) -> Option<String> {
        self.corrected(word).map(|(stem, _)| stem)
    }

    /// The records' word closest to a misspelt one, and its index term.
    fn corrected(&self, word: &str) -> Option<(String, String)> {
        let w = closest(word, &self.words_by_len, |w| self.doc_freq.get(&self.analyzer.stem(w)).copied().unwrap_or(0))?;
        let stem = self.analyzer.stem(&w);
        self.doc_freq.contains_key(&stem).then_some((stem, w))
    }

    /// The German readings of an English word, as written or by its English stem.
    fn translation(&self, word: &str) -> Option<&Vec<(String, String)>> {
        if self.translations.is_empty() || !word.is_ascii() {
            return None;
        }
        self.translations.get(word).or_else(|| {
            let stemmer = rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English);
            self.translations.get(stemmer.stem(word).as_ref())
        })
    }

    fn concepts(&self, query: &str) -> Vec<Concept> {
        self.read(query).0
    }

    /// The question's concepts, and the words of it to write as the records do for the dense
    /// stage: a colloquial word that stands for one word of
    /// the records ("Perso" → "Personalausweis") and, with the dictionaries, a misspelt one
    /// ("Führerschien" → "Führerschein"), in a question that does not read as English. The embedding knows the records' words; it may
    /// not know the citizen's.
    fn read(&self, query: &str) -> (Vec<Concept>, Vec<Rewrite>) {
        let mut rewrites: Vec<Rewrite> = Vec::new();
        let folded = fold(query);
        let all_words: Vec<&str> = analysis::words(&folded).collect();
        let all_stems: Vec<String> = all_words.iter().map(|w| self.analyzer.stem(w)).collect();
        let raw = raw_words(query);
        // Where the `i`th folded word stands in the question as written, if it is that word.
        let span = |i: usize, word: &str| {
            raw.get(i).filter(|(_, r)| fold(r) == word).map(|&(start, r)| start..start + r.len())
        };
        let shapes = word_shapes(query, &raw);
        let joins = self.separable_joins(&folded);
        let separable = self.separable_verbs(&all_words, &joins);
        let mut concepts: Vec<Concept> = Vec::new();
        // Colloquial phrases first: their words are consumed by the phrase.
        let mut consumed = vec![false; all_words.len()];
        // A reflexive verb of the synonym table ("sich anmelden": registering oneself, which is
        // the residence) is read where a reflexive pronoun and the verb stand in one clause, in
        // any order and with the particle apart ("Wie melde ich mich in Jena an?", "ich muss
        // mich anmelden"), before the verb alone.
        // Which clause each word stands in, worked out once a reflexive verb is there to read.
        let clause_of = std::cell::OnceCell::new();
        let clause_of = || {
            clause_of.get_or_init(|| -> Vec<usize> {
                folded
                    .split(CLAUSE_ENDS)
                    .enumerate()
                    .flat_map(|(k, clause)| std::iter::repeat_n(k, analysis::words(clause).count()))
                    .collect()
            })
        };
        for phrase in self.synonyms.iter().filter(|p| !p.english && p.words.len() == 2 && p.words[0] == "sich") {
            let verb = &phrase.stems[1];
            let free = |k: usize| !consumed.get(k).copied().unwrap_or(true);
            let at = all_stems.iter().position(|s| s == verb).filter(|&i| free(i)).map(|i| (i, None)).or_else(|| {
                joins
                    .iter()
                    .find(|(i, p, joined)| free(*i) && free(*p) && self.analyzer.stem(joined) == *verb)
                    .map(|&(i, p, _)| (i, Some(p)))
            });
            let Some((at, particle)) = at else { continue };
            let Some(pronoun) = (0..all_words.len())
                .find(|&k| free(k) && REFLEXIVE.contains(&all_words[k]) && clause_of().get(k) == clause_of().get(at))
            else {
                continue;
            };
            for k in [Some(at), particle, Some(pronoun)].into_iter().flatten() {
                consumed[k] = true;
            }
            let mut terms: Vec<(String, f32)> = phrase.targets.iter().map(|t| (t.clone(), W_SYNONYM)).collect();
            if self.doc_freq.contains_key(verb) && !terms.iter().any(|(t, _)| t == verb) {
                terms.push((verb.clone(), W_WORD));
            }
            concepts.push(Concept { word: phrase.words.join(" "), terms, idf: 0.0, unknown_weight: 1.0, noun: false });
        }
        // A separable verb is read whole before its verb alone: "wir ziehen … um" is
        // "umziehen" (moving house), not "ziehen" (moving in).
        for &(position, particle, ref joined) in &joins {
            let stem = self.analyzer.stem(joined);
            let Some(phrase) = self.synonyms.iter().find(|p| !p.english && p.stems.len() == 1 && p.stems[0] == stem)
            else {
                continue;
            };
            if consumed[position] || consumed.get(particle).copied().unwrap_or(true) {
                continue;
            }
            consumed[position] = true;
            consumed[particle] = true;
            let mut terms: Vec<(String, f32)> = phrase.targets.iter().map(|t| (t.clone(), W_SYNONYM)).collect();
            if self.doc_freq.contains_key(&stem) {
                terms.push((stem.clone(), W_WORD));
            }
            concepts.push(Concept { word: joined.clone(), terms, idf: 0.0, unknown_weight: 1.0, noun: false });
        }
        let english = analysis::looks_english(query);
        for Phrase { words: phrase_words, stems: phrase, targets, english: english_only, said } in &self.synonyms {
            if phrase.is_empty() || phrase.len() > all_words.len() || *english_only && !english {
                continue;
            }
            for start in 0..=all_words.len() - phrase.len() {
                if consumed[start..start + phrase.len()].iter().any(|c| *c) {
                    continue;
                }
                // A word matches a phrase's word as written, or by its stem unless the records
                // use the word and not the phrase's: "Persos" is "Perso" and "neuen" is "neue",
                // but "Rente", a word of the records, is not the English "rent".
                let matches = (0..phrase.len()).all(|k| {
                    let (word, stem) = (all_words[start + k], &all_stems[start + k]);
                    let written = phrase_words.get(k);
                    written.is_some_and(|p| p == word)
                        || stem == &phrase[k]
                            && (!self.record_words.contains(word)
                                || written.is_some_and(|p| self.record_words.contains(p)))
                });
                if matches {
                    if let Some(said) = said
                        && phrase.len() == 1
                        && !english
                        && !self.prose_words.contains(all_words[start])
                        && let Some(at) = span(start, all_words[start])
                    {
                        rewrites.push((at, said.clone()));
                    }
                    let mut terms: Vec<(String, f32)> = targets.iter().map(|t| (t.clone(), W_SYNONYM)).collect();
                    for (w, stem) in all_words[start..start + phrase.len()].iter().zip(&all_stems[start..]) {
                        if !self.analyzer.is_stop_word(w) && self.doc_freq.contains_key(stem) {
                            terms.push((stem.clone(), W_WORD));
                        }
                    }
                    consumed[start..start + phrase.len()].iter_mut().for_each(|c| *c = true);
                    concepts.push(Concept {
                        word: phrase.join(" "),
                        terms,
                        idf: 0.0,
                        unknown_weight: 1.0,
                        noun: false,
                    });
                }
            }
        }
        for (i, w) in all_words.iter().enumerate() {
            if consumed[i] || (w.len() < 2 && !w.chars().all(|c| c.is_ascii_digit())) {
                continue;
            }
            if self.analyzer.is_stop_word(w) {
                // A common verb is read only as the separable verb it is part of.
                if let Some(joined) = separable.get(&i) {
                    concepts.push(Concept {
                        word: w.to_string(),
                        terms: vec![joined.clone()],
                        idf: 0.0,
                        unknown_weight: 1.0,
                        noun: false,
                    });
                }
                continue;
            }
            if self.analyzer.is_aspect_word(w) {
                // Aspect words weigh little in ranking and nothing in the confidence.
                let stem = self.analyzer.stem(w);
                let terms = if self.doc_freq.contains_key(&stem) { vec![(stem, W_ASPECT)] } else { Vec::new() };
                concepts.push(Concept { word: w.to_string(), terms, idf: 0.0, unknown_weight: 0.0, noun: false });
                continue;
            }
            if !self.abroad.is_empty() && self.is_country(w, english) {
                let mut terms = self.abroad.clone();
                let stem = self.analyzer.stem(w);
                if self.doc_freq.contains_key(&stem) && !terms.iter().any(|(t, _)| *t == stem) {
                    terms.push((stem, W_WORD));
                }
                concepts.push(Concept { word: w.to_string(), terms, idf: 0.0, unknown_weight: 1.0, noun: true });
                continue;
            }
            let token = self.analyzer.token(w);
            let mut terms = Vec::new();
            let known = self.doc_freq.contains_key(&token.stem);
            if known {
                terms.push((token.stem.clone(), W_WORD));
            }
            // The other forms of the word, with or without umlaut: "Tagesmütter" is also
            // "Tagesmutter", "Wertstoffhof" also "Wertstoffhöfe". Where the word itself is an
            // index term, only a noun's forms count, and a little less: verbs that differ by an
            // umlaut are other verbs ("fallen", "fällen"; "absagen", "absägen"). Where the
            // question's casing does not tell (all lower case, a sentence's first word), the
            // records' does.
            let noun = match shapes.get(i) {
                Some(Shape::Noun) => true,
                Some(Shape::Lower) => false,
                _ => self.noun_share.get(&token.stem).is_some_and(|share| *share >= 0.5),
            };
            if !known || noun {
                let forms = self.umlaut_free.get(&analysis::without_umlauts(&token.stem));
                for t in forms.into_iter().flatten().filter(|t| **t != token.stem) {
                    terms.push((t.clone(), if known { W_FORM } else { W_WORD }));
                }
            }
            if let Some(joined) = separable.get(&i) {
                terms.push(joined.clone());
            }
            for p in &token.parts {
                if self.doc_freq.contains_key(p) {
                    terms.push((p.clone(), W_PART));
                }
            }
            if terms.is_empty()
                && let Some(verb) = analysis::without_infix_zu(w)
                && let stem = self.analyzer.stem(&verb)
                && self.doc_freq.contains_key(&stem)
            {
                terms.push((stem, W_WORD));
            }
            if terms.is_empty()
                && let Some(noun) = analysis::nouns_of_verb(w)
                    .iter()
                    .map(|n| self.analyzer.stem(n))
                    .find(|n| self.doc_freq.contains_key(n))
            {
                terms.push((noun, W_WORD));
            }
            if terms.is_empty()
                && let Some(c) = self.english_form(w)
            {
                terms.push((c, W_WORD));
            }
            if terms.is_empty()
                && english
                && let Some(read) = self.translation(w)
            {
                terms.extend(read.iter().map(|(t, _)| (t.clone(), W_TRANSLATION)));
            }
            if terms.is_empty() {
                // A real word ("Tasche", "night") is not a misspelling of a knowledge word it
                // resembles ("Tausch", "nicht"); only one that differs from a knowledge word by
                // an ending the stemmer keeps ("Möbeln", "Rentner": *Möbel*, *Rente*) is that
                // word, as correction had found it.
                let real_word =
                    self.lexicon.as_ref().is_some_and(|l| raw.get(i).is_some_and(|(_, r)| fold(r) == *w && l.knows(r)));
                let read_as = if real_word {
                    self.without_ending(&token.stem)
                } else if let Some((stem, word)) = self.corrected(w) {
                    // (Only where the dictionaries say it is no word: otherwise a real word one
                    // letter from a record's would change the embedded meaning.)
                    if !english
                        && self.lexicon.is_some()
                        && let Some(at) = span(i, w)
                        && let Some(written) = self.written.get(&word)
                    {
                        rewrites.push((at, written.clone()));
                    }
                    Some(stem)
                } else {
                    self.correct(&token.stem)
                };
                terms.extend(read_as.map(|c| (c, W_TYPO)));
            }
            // A function word no record uses ("jemanden") is no topic the knowledge lacks.
            let unknown_weight = if !terms.is_empty() {
                1.0
            } else if self.analyzer.is_function_word(w) {
                0.0
            } else {
                let shape = shapes.get(i).copied().unwrap_or(Shape::Unclear);
                // An everyday word ("Tasche", "Garten") tells the citizen's story more often
                // than it names a topic the knowledge lacks ("Waffenschein").
                let lang = if english { "en" } else { "de" };
                shape.unknown_weight() * self.commonness.as_ref().map_or(1.0, |c| c.unknown_factor(lang, w))
            };
            concepts.push(Concept { word: w.to_string(), terms, idf: 0.0, unknown_weight, noun });
        }
        let max_idf = self.idf(0) * UNKNOWN_WEIGHT;
        for c in concepts.iter_mut().filter(|c| c.unknown_weight > 0.0) {
            // A concept is as informative as its rarest known term; unknown concepts weigh most.
            // (A word's lighter forms do not lend it their rarity.)
            c.idf = c
                .terms
                .iter()
                .filter(|(_, w)| *w != W_FORM)
                .filter_map(|(t, _)| self.doc_freq.get(t))
                .map(|&df| self.idf(df))
                .fold(None, |acc: Option<f32>, x| Some(acc.map_or(x, |a| a.max(x))))
                .unwrap_or(max_idf * c.unknown_weight);
            // A known word that the records write in lower case (a verb, an adjective) says
            // less about which service is meant than a noun does.
            if c.unknown_weight >= 1.0 && !c.terms.is_empty() && !c.word.contains(' ') {
                let stem = self.analyzer.stem(&c.word);
                if let Some(share) = self.noun_share.get(&stem) {
                    c.idf *= QUALIFIER_WEIGHT + (1.0 - QUALIFIER_WEIGHT) * share;
                }
            }
        }
        (concepts, rewrites)
    }

    /// German separable verbs: a particle at the end of a clause belongs to a verb before it
    /// ("Wie melde ich mich an?" → "anmelden", "Mein Ausweis läuft ab" → "ablaufen"). Returns,
    /// by word position, the index term of particle + verb, where the knowledge has one (as it
    /// is, or one letter off: "abläuft" → "Ablauf"). `words` are the folded question's words,
    /// `joins` their [`SearchIndex::separable_joins`].
    fn separable_verbs(&self, words: &[&str], joins: &[(usize, usize, String)]) -> HashMap<usize, (String, f32)> {
        let mut out = HashMap::new();
        for &(position, _, ref joined) in joins {
            let stem = self.analyzer.stem(joined);
            // A verb too common to read alone ("schreiben", "geben") is read with its particle
            // only as the records write the joined verb ("schreib … um" → "umschreiben"), never
            // corrected towards one.
            let common = words.get(position).is_some_and(|w| self.analyzer.is_stop_word(w));
            let term = if self.doc_freq.contains_key(&stem) {
                Some((stem, W_WORD))
            } else if common {
                None
            } else {
                self.correct_word(joined).map(|t| (t, W_TYPO))
            };
            if let Some(term) = term {
                out.insert(position, term);
            }
        }
        out
    }

    /// Every word that a clause-final particle may belong to, as (word position, particle
    /// position, particle + word): "wir ziehen innerhalb von Jena um" → (1, 6, "umziehen").
    fn separable_joins(&self, folded: &str) -> Vec<(usize, usize, String)> {
        const PARTICLES: &[&str] =
            &["an", "ab", "um", "aus", "ein", "zu", "nach", "vor", "mit", "auf", "zurueck", "weg", "los", "her", "hin"];
        let mut out = Vec::new();
        let mut position = 0;
        for clause in folded.split(CLAUSE_ENDS) {
            let words: Vec<&str> = analysis::words(clause).collect();
            let start = position;
            position += words.len();
            let Some((last, rest)) = words.split_last() else { continue };
            if !PARTICLES.contains(last) {
                continue;
            }
            for (k, w) in rest.iter().enumerate() {
                // (Function words are no verbs; common verbs are stop words and still joined.)
                if w.len() < 3 || self.analyzer.is_function_word(w) || PARTICLES.contains(w) {
                    continue;
                }
                out.push((start + k, start + rest.len(), format!("{last}{w}")));
            }
        }
        out
    }

    /// Finds the services that best answer `query`, best first, at most `limit`.
    pub fn search(&self, query: &str, limit: usize) -> Result<SearchResult, Error> {
        self.search_by(query, limit, Retrieval::Full)
    }

    /// [`SearchIndex::search`] without the embedding re-ranking: for cheap probes (the clauses of
    /// a long message) where a question embedding each would cost too much.
    pub fn search_lexical(&self, query: &str, limit: usize) -> Result<SearchResult, Error> {
        self.search_by(query, limit, Retrieval::Lexical)
    }

    /// [`SearchIndex::search`] with the stages `retrieval` allows.
    pub fn search_by(&self, query: &str, limit: usize, retrieval: Retrieval) -> Result<SearchResult, Error> {
        self.ranked(query, limit, retrieval == Retrieval::Full, false).map(|(result, _)| result)
    }

    /// The search with the evidence behind it: every candidate's ranking features (see
    /// [`rank::RANK_FEATURES`]) and the result's confidence features, for `lotse train ranker`
    /// and `lotse search --explain`.
    pub fn explain(&self, query: &str, limit: usize, dense: bool) -> Result<(SearchResult, Evidence), Error> {
        self.ranked(query, limit, dense, true).map(|(result, evidence)| (result, evidence.unwrap_or_default()))
    }

    /// The search; with `keep_evidence`, also what it rests on (copied out only when asked:
    /// a citizen's search needs none of it).
    fn ranked(
        &self,
        query: &str,
        limit: usize,
        dense: bool,
        keep_evidence: bool,
    ) -> Result<(SearchResult, Option<Evidence>), Error> {
        let query_text = query;
        let (concepts, rewrites) = self.read(query);
        let unknown_words: Vec<String> =
            concepts.iter().filter(|c| c.terms.is_empty() && c.unknown_weight > 0.0).map(|c| c.word.clone()).collect();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut seen = HashSet::new();
        for c in &concepts {
            for (term, weight) in &c.terms {
                if !seen.insert(term.clone()) {
                    continue;
                }
                for (field, boost) in [
                    (self.fields.name, BOOST_NAME),
                    (self.fields.synonyms, BOOST_SYNONYMS),
                    (self.fields.teaser, BOOST_TEASER),
                    (self.fields.body, BOOST_BODY),
                ] {
                    let q = TermQuery::new(Term::from_field_text(field, term), IndexRecordOption::WithFreqs);
                    clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(q), boost * weight))));
                }
            }
        }
        let empty = || (SearchResult { hits: Vec::new(), confidence: 0.0, unknown_words: unknown_words.clone() }, None);
        if clauses.is_empty() || self.ids.is_empty() {
            return Ok(empty());
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(limit.max(RERANK_DEPTH)).order_by_score())?;
        let total_idf: f32 = concepts.iter().map(|c| c.idf).sum();
        let unknown_idf: f32 = concepts.iter().filter(|c| c.terms.is_empty()).map(|c| c.idf).sum();
        let unknown_share = if total_idf > 0.0 { unknown_idf / total_idf } else { 1.0 };
        // Nouns no service knows ("Zahnarzt", "Waffenschein") say the topic is one we lack;
        // an everyday one ("Tasche") less so, a place name or function word not at all.
        let unknown_nouns: f32 =
            concepts.iter().filter(|c| c.terms.is_empty() && c.noun).map(|c| c.unknown_weight.min(1.0)).sum();
        let best_score = top.first().map_or(1.0, |(s, _)| s.max(f32::MIN_POSITIVE));
        // Candidates: the BM25 top (score, rank), plus (with embeddings) the closest in meaning.
        let mut candidates: Vec<(usize, f32, Option<usize>)> = Vec::with_capacity(top.len() + DENSE_DEPTH);
        for (rank, (score, addr)) in top.into_iter().enumerate() {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let Some(id) = doc.get_first(self.fields.id).and_then(|v| v.as_str()) else { continue };
            // Documents are added in knowledge order into one segment, so the doc id is the index;
            // look it up by id anyway in case tantivy ever merges differently.
            let index = if self.ids.get(addr.doc_id as usize).is_some_and(|x| x == id) {
                addr.doc_id as usize
            } else {
                self.ids.iter().position(|x| x == id).unwrap_or(0)
            };
            candidates.push((index, score, Some(rank)));
        }
        // Closeness in meaning to each service's passage and to its closest piece, with the
        // rank of each; the closest services join the candidates.
        let similarity = match self.dense.as_ref().filter(|_| dense) {
            Some(dense) => {
                let q = dense.query(&self.analyzer.without_home(&rewritten(query_text, &rewrites)))?;
                let sims: Vec<f32> = dense.vectors.iter().map(|v| lotse_embed::cosine(&q, v)).collect();
                let mut piece_sims = vec![f32::MIN; sims.len()];
                for (i, _, v) in &dense.pieces {
                    piece_sims[*i] = piece_sims[*i].max(lotse_embed::cosine(&q, v));
                }
                for p in piece_sims.iter_mut().filter(|p| **p == f32::MIN) {
                    *p = 0.0;
                }
                let (dense_order, dense_rank) = order_and_rank(&sims);
                let (piece_order, piece_rank) = order_and_rank(&piece_sims);
                for &i in dense_order.iter().take(DENSE_DEPTH).chain(piece_order.iter().take(DENSE_DEPTH)) {
                    if !candidates.iter().any(|(c, _, _)| *c == i) {
                        candidates.push((i, 0.0, None));
                    }
                }
                Some(Closeness { sims, dense_rank, piece_sims, piece_rank })
            }
            None => None,
        };
        let best_sim = similarity.as_ref().map(|c| c.sims.iter().copied().fold(f32::MIN, f32::max));
        let best_piece = similarity.as_ref().map(|c| c.piece_sims.iter().copied().fold(f32::MIN, f32::max));
        let weights = rank::weights();
        // How strongly the question names each candidate: its rarest word found in the
        // candidate's name or synonyms, relative to the rarest possible word; and by how much
        // that beats every other candidate's.
        let max_idf = self.idf(0).max(f32::MIN_POSITIVE);
        let naming: Vec<f32> = candidates
            .iter()
            .map(|&(index, _, _)| {
                let names = &self.name_terms[index];
                concepts
                    .iter()
                    .filter(|c| c.unknown_weight > 0.0)
                    .flat_map(|c| {
                        c.terms
                            .iter()
                            .filter(|(t, _)| names.contains(t))
                            .map(move |(_, w)| credit(*w) * c.idf / max_idf)
                    })
                    .fold(0.0f32, f32::max)
            })
            .collect();
        // A whole name or synonym of the service in the question ("Gewerbe abmelden"), by the
        // number of its words (up to three), and by how much that beats every other candidate.
        let asked: HashSet<&String> = concepts.iter().flat_map(|c| c.terms.iter().map(|(t, _)| t)).collect();
        let phrase_hit: Vec<f32> = candidates
            .iter()
            .map(|&(index, _, _)| {
                self.phrases[index]
                    .iter()
                    .filter(|p| p.iter().all(|t| asked.contains(t)))
                    .map(|p| p.len().min(3) as f32 / 3.0)
                    .fold(0.0f32, f32::max)
            })
            .collect();
        let mut ranked: Vec<(f32, Hit, Vec<f32>)> = Vec::with_capacity(candidates.len());
        for (k, (index, score, bm25_rank)) in candidates.into_iter().enumerate() {
            let others = naming.iter().enumerate().filter(|(j, _)| *j != k).map(|(_, n)| *n).fold(0.0f32, f32::max);
            let other_phrases =
                phrase_hit.iter().enumerate().filter(|(j, _)| *j != k).map(|(_, n)| *n).fold(0.0f32, f32::max);
            let coverage = self.coverage(&concepts, index, total_idf);
            let (title_cov, name_cov) = self.field_coverage(&concepts, index, total_idf);
            let (sim, gap, dense_rr, has) = match (&similarity, best_sim) {
                (Some(c), Some(best)) => {
                    (c.sims[index], (best - c.sims[index]).min(0.3), 1.0 / (1.0 + c.dense_rank[index] as f32), 1.0)
                }
                _ => (0.0, 0.0, 0.0, 0.0),
            };
            let (piece_sim, piece_gap, piece_rr) = match (&similarity, best_piece) {
                (Some(c), Some(best)) => (
                    c.piece_sims[index],
                    (best - c.piece_sims[index]).min(0.3),
                    1.0 / (1.0 + c.piece_rank[index] as f32),
                ),
                _ => (0.0, 0.0, 0.0),
            };
            let features = vec![
                1.0,
                score / best_score,
                coverage,
                title_cov,
                name_cov,
                bm25_rank.map_or(0.0, |r| 1.0 / (1.0 + r as f32)),
                sim,
                gap,
                dense_rr,
                has,
                naming[k],
                naming[k] - others,
                phrase_hit[k],
                phrase_hit[k] - other_phrases,
                piece_sim,
                piece_gap,
                piece_rr,
            ];
            let p = rank::predict(&weights.rank, &features);
            ranked.push((p, Hit { service_id: self.ids[index].clone(), index, score, coverage }, features));
        }
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.score.total_cmp(&a.1.score)));
        if ranked.is_empty() {
            return Ok(empty());
        }
        let scored: Vec<(f32, &[f32])> = ranked.iter().map(|(p, _, f)| (*p, f.as_slice())).collect();
        let conf_features = rank::confidence_features(&scored, unknown_share, unknown_nouns);
        let confidence = rank::predict(&weights.confidence, &conf_features);
        let evidence = keep_evidence.then(|| Evidence {
            candidates: ranked.iter().map(|(p, h, f)| (h.service_id.clone(), *p, f.clone())).collect(),
            confidence: conf_features,
            unknown_share,
            unknown_nouns,
            concepts: concepts
                .iter()
                .map(|c| (c.word.clone(), c.idf, c.terms.iter().map(|t| t.0.clone()).collect()))
                .collect(),
        });
        let hits: Vec<Hit> = ranked.into_iter().take(limit).map(|(_, h, _)| h).collect();
        Ok((SearchResult { hits, confidence, unknown_words }, evidence))
    }

    /// The share of the question's weight that service `index` covers in its name, synonyms and
    /// teaser, and in its name and synonyms alone.
    fn field_coverage(&self, concepts: &[Concept], index: usize, total_idf: f32) -> (f32, f32) {
        if total_idf <= 0.0 {
            return (0.0, 0.0);
        }
        let (title, name) = (&self.title_terms[index], &self.name_terms[index]);
        let mut t = 0.0;
        let mut n = 0.0;
        for c in concepts {
            let best = |set: &HashSet<String>| {
                c.terms.iter().filter(|(term, _)| set.contains(term)).map(|(_, w)| credit(*w)).fold(0.0f32, f32::max)
            };
            t += best(title) * c.idf;
            n += best(name) * c.idf;
        }
        (t / total_idf, n / total_idf)
    }

    /// The share of the question's weight that service `index` covers.
    fn coverage(&self, concepts: &[Concept], index: usize, total_idf: f32) -> f32 {
        if total_idf <= 0.0 {
            return 0.0;
        }
        let (title, body) = (&self.title_terms[index], &self.body_terms[index]);
        let covered: f32 = concepts
            .iter()
            .map(|c| {
                let field = |t: &String| {
                    if title.contains(t) {
                        1.0
                    } else if body.contains(t) {
                        BODY_CREDIT
                    } else {
                        0.0
                    }
                };
                let best = c.terms.iter().map(|(t, w)| credit(*w) * field(t)).fold(0.0f32, f32::max);
                // A compound ("Personalausweisantrag") is covered by its parts as a synonym
                // would be, each part by its rarity: the rare part says what it is about.
                let parts: Vec<&String> = c.terms.iter().filter(|(_, w)| *w == W_PART).map(|(t, _)| t).collect();
                let whole = if parts.len() >= 2 && c.terms.iter().all(|(_, w)| *w <= W_PART) {
                    let idf = |t: &String| self.idf(self.doc_freq.get(t).copied().unwrap_or(0));
                    let total: f32 = parts.iter().map(|t| idf(t)).sum::<f32>().max(f32::MIN_POSITIVE);
                    credit(W_SYNONYM) * parts.iter().map(|t| field(t) * idf(t)).sum::<f32>() / total
                } else {
                    0.0
                };
                best.max(whole) * c.idf
            })
            .sum();
        covered / total_idf
    }

    /// The analyzer this index was built with.
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// The tantivy index, for diagnostics.
    pub fn tantivy(&self) -> &Index {
        &self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word_shapes(text: &str) -> Vec<Shape> {
        super::word_shapes(text, &raw_words(text))
    }
    use lotse_core::Service;
    use lotse_knowledge::Synonyms;

    fn service(id: &str, name: &str, synonyms: &[&str], teaser: &str, description: &str) -> Service {
        let mut s = Service::new(id, name, "https://example.org", "2025-01-01");
        s.synonyms = synonyms.iter().map(|s| s.to_string()).collect();
        s.teaser = teaser.into();
        s.description = description.into();
        s
    }

    fn index() -> SearchIndex {
        let kb = KnowledgeBase {
            services: vec![
                service(
                    "personalausweis",
                    "Personalausweis beantragen",
                    &["ID card"],
                    "Den Ausweis für Deutsche beantragen.",
                    "Der Personalausweis gilt zehn Jahre. Den Antrag stellen Sie persönlich.",
                ),
                service(
                    "reisepass",
                    "Reisepass beantragen",
                    &["passport"],
                    "Einen Pass für Reisen beantragen.",
                    "Der Reisepass wird in Berlin hergestellt.",
                ),
                service(
                    "hundesteuer",
                    "Hundesteuer anmelden",
                    &["dog tax"],
                    "Hunde zur Steuer anmelden.",
                    "Wer einen Hund hält, zahlt Steuer.",
                ),
                service(
                    "wohnsitz-anmeldung",
                    "Wohnsitz anmelden",
                    &["register address"],
                    "Nach dem Umzug den Wohnsitz anmelden.",
                    "Innerhalb von zwei Wochen nach dem Einzug.",
                ),
                service(
                    "sperrmuell",
                    "Sperrmüll anmelden",
                    &["bulky waste"],
                    "Große Abfälle abholen lassen.",
                    "Möbel und Matratzen werden abgeholt.",
                ),
            ],
            offices: vec![],
            synonyms: Synonyms::parse(
                "[terms]\nperso = [\"Personalausweis\"]\nsofa = [\"Sperrmüll\"]\n\"neue wohnung\" = [\"Wohnsitz\"]\n\
                 [english]\nbin = [\"Abfälle\"]\n",
            )
            .unwrap(),
        };
        SearchIndex::build(&kb).unwrap()
    }

    /// A knowledge base of `services`, no offices, and a synonym table in its TOML.
    fn knowledge(services: Vec<Service>, synonyms: &str) -> KnowledgeBase {
        KnowledgeBase { services, offices: vec![], synonyms: Synonyms::parse(synonyms).unwrap() }
    }

    /// The index terms the search reads a question as.
    fn terms(index: &SearchIndex, q: &str) -> Vec<String> {
        index.question_terms(q).into_iter().map(|(t, _)| t).collect()
    }

    fn top(index: &SearchIndex, q: &str) -> (String, f32) {
        let r = index.search(q, 3).unwrap();
        (r.top().map(|h| h.service_id.clone()).unwrap_or_default(), r.confidence)
    }

    #[test]
    fn another_name_of_the_home_town_is_the_home_town() {
        let q = "How much is a passport in Munich?";
        let plain = index();
        assert!(!plain.analyzer().is_stop_word("munich"));
        let index = index().with_home_names(["München".to_string(), "Munich".to_string()]);
        assert!(index.analyzer().is_stop_word("munich") && index.analyzer().is_stop_word("muenchner"));
        // Left out of the embedded question, with its preposition; the terms are the same.
        assert_eq!(index.analyzer().without_home(q), "How much is a passport?");
        assert_eq!(terms(&index, q), terms(&plain, "How much is a passport?"));
        assert_eq!(top(&index, q).0, "reisepass");
    }

    #[test]
    fn finds_services_by_name_synonym_typo_and_compound() {
        let index = index();
        let table: &[(&str, &str)] = &[
            ("Personalausweis beantragen", "personalausweis"),
            ("Was kostet ein neuer Perso?", "personalausweis"),
            ("Persnalausweis beantragen", "personalausweis"),
            ("Personalausweisantrag", "personalausweis"),
            ("I need a passport", "reisepass"),
            ("Hundesteur zahlen", "hundesteuer"),
            ("wie viel Steuer für meinen Hund", "hundesteuer"),
            ("Sofa abholen", "sperrmuell"),
            ("Ich habe eine neue Wohnung", "wohnsitz-anmeldung"),
            ("Fuehrerschein", ""),
        ];
        for (q, want) in table {
            let (got, conf) = top(&index, q);
            if want.is_empty() {
                assert!(conf < answer_threshold(), "{q:?}: expected abstention, got {got} at {conf}");
            } else {
                assert_eq!(&got, want, "{q:?}");
                assert!(conf >= answer_threshold(), "{q:?}: confidence {conf} too low");
            }
        }
    }

    #[test]
    fn a_real_word_is_no_typo_of_a_knowledge_word() {
        let Some(lexicon) = lexicon::system_for_tests() else { return };
        let hund = index().analyzer.stem("hunde");
        // Without the dictionaries "Runde" is read as a misspelt "Hunde" ...
        assert!(terms(&index(), "Noch eine Runde").contains(&hund));
        let index = index().with_lexicon(Arc::new(lexicon));
        // ... with them it is a word of its own that no record uses; a typo is still corrected.
        assert!(!terms(&index, "Noch eine Runde").contains(&hund));
        assert!(terms(&index, "Meine Hnude").contains(&hund), "{:?}", terms(&index, "Meine Hnude"));
        // A real word with an ending the stemmer keeps is still the knowledge's word.
        let moebel = index.analyzer.stem(&fold("Möbel"));
        assert!(terms(&index, "Wohin mit alten Möbeln?").contains(&moebel), "{:?}", terms(&index, "alten Möbeln"));
    }

    #[test]
    fn the_dense_stage_reads_the_records_words_for_colloquial_and_misspelt_ones() {
        let index = index();
        let meaning = |q: &str| index.in_records_words(q);
        // A colloquial word that stands for one word of the records, as the table writes it.
        assert_eq!(meaning("Mein Perso ist abgelaufen, was nun?"), "Mein Personalausweis ist abgelaufen, was nun?");
        // Without the dictionaries a misspelt word is left as it is (it may be a real word) ...
        assert_eq!(meaning("Wann zahle ich Hundesteur?"), "Wann zahle ich Hundesteur?");
        // ... with them it is written as the records write it, umlauts and capital included.
        if let Some(lexicon) = lexicon::system_for_tests() {
            let index = self::tests::index().with_lexicon(Arc::new(lexicon));
            assert_eq!(index.in_records_words("Wo gibt es Möbl zu holen?"), "Wo gibt es Möbel zu holen?");
            assert_eq!(index.in_records_words("Wann zahle ich Hundesteur?"), "Wann zahle ich Hundesteuer?");
        }
        // Words the records use stay as they are, and so does an English question.
        assert_eq!(meaning("Personalausweis beantragen"), "Personalausweis beantragen");
        assert_eq!(meaning("I need a new perso"), "I need a new perso");
        // Positions are counted as the question's words, across dashes and quotes.
        assert_eq!(meaning("„Perso“ – verloren"), "„Personalausweis“ – verloren");
        // In the order of the text, whatever the order found; an overlapping span is left out.
        assert_eq!(rewritten("a b", &[(2..3, "c".into()), (0..1, "d".into()), (0..3, "x".into())]), "d c");
    }

    #[test]
    fn an_everyday_word_no_record_uses_weighs_less_than_a_rare_one() {
        let weight = |index: &SearchIndex, q: &str, word: &str| {
            index.concepts(q).into_iter().find(|c| c.word == word).map(|c| c.idf).unwrap_or_default()
        };
        let q = "Mir wurde die Tasche mit dem Personalausweis geklaut";
        let plain = index();
        let mut common = Commonness::default();
        common.add_words("de", [("tasche", 4.5), ("personalausweis", 3.9)]);
        let with = index().with_commonness(Arc::new(common));
        let (before, after) = (weight(&plain, q, "tasche"), weight(&with, q, "tasche"));
        assert!(before > 0.0 && after < 0.6 * before, "{before} → {after}");
        // A rare unknown word keeps its weight; a known word is weighed by the records.
        let q2 = "Wo bekomme ich einen Waffenschein?";
        assert_eq!(weight(&plain, q2, "waffenschein"), weight(&with, q2, "waffenschein"));
        assert_eq!(weight(&plain, q, "personalausweis"), weight(&with, q, "personalausweis"));
        // The unknown share falls with it: the question is more about what the records know.
        let (_, ev) = plain.explain(q, 3, false).unwrap();
        let (_, ev2) = with.explain(q, 3, false).unwrap();
        assert!(ev2.unknown_share < ev.unknown_share, "{} → {}", ev.unknown_share, ev2.unknown_share);
    }

    #[test]
    fn a_separable_verbs_zu_form_finds_the_infinitive() {
        let index = index();
        let anmeld = index.analyzer.stem("anmelden");
        let terms = terms(&index, "um den Hund anzumelden");
        assert!(terms.contains(&anmeld), "{terms:?}");
    }

    #[test]
    fn a_common_verb_is_read_with_its_particle_only_as_the_records_write_it() {
        let kb = knowledge(
            vec![
                service("umschreibung", "Fahrzeug umschreiben", &[], "Nach dem Kauf.", "Das Fahrzeug umschreiben."),
                service("abmeldung", "Fahrzeug abmelden", &[], "Außer Betrieb setzen.", "Das Fahrzeug abmelden."),
            ],
            "",
        );
        let index = SearchIndex::build(&kb).unwrap();
        let terms = |q: &str| terms(&index, q);
        // "schreiben" is too common to read alone ...
        assert!(index.analyzer.is_stop_word("schreibe"));
        // ... but with the particle at the end of its clause it is the records' verb.
        let um = index.analyzer.stem("umschreiben");
        assert!(terms("Wie schreibe ich das Fahrzeug auf mich um?").contains(&um));
        assert_eq!(top(&index, "Wie schreibe ich das Fahrzeug auf mich um?").0, "umschreibung");
        // A joined verb no record writes is not corrected towards one ("abschreiben" is not
        // "abmelden"), and the common verb stays unread.
        assert_eq!(terms("Wie schreibe ich das Fahrzeug ab?"), terms("Fahrzeug"));
    }

    #[test]
    fn a_foreign_country_is_read_as_abroad() {
        let kb = knowledge(
            vec![
                service("heirat", "Eheschließung anmelden", &[], "Heiraten im Standesamt.", "Die Ehe anmelden."),
                service("zeugnis", "Ehefähigkeitszeugnis", &[], "Für eine Ehe im Ausland.", "Vom Standesamt."),
            ],
            "",
        );
        let q = "Wir wollen in Italien heiraten";
        let found = |index: &SearchIndex, q: &str| -> Vec<String> {
            index.search(q, 3).unwrap().hits.into_iter().map(|h| h.service_id).collect()
        };
        let plain = SearchIndex::build(&kb).unwrap();
        assert_eq!(found(&plain, q), ["heirat"]);
        let countries = || vec!["Italien".to_string(), "Deutschland".to_string()];
        let index = SearchIndex::build(&kb).unwrap().with_countries(countries(), vec!["Italy".to_string()]);
        assert!(found(&index, q).contains(&"zeugnis".to_string()), "{:?}", found(&index, q));
        assert_eq!(found(&index, "Ehe in Italien"), ["zeugnis", "heirat"]);
        assert_eq!(found(&index, "Ehe in Italy, please")[0], "zeugnis");
        // English names are read in English questions only.
        let ausland = index.analyzer.stem("ausland");
        assert!(terms(&index, "Italien").contains(&ausland));
        assert!(!terms(&index, "Ehe Italy Standesamt").contains(&ausland));
        // Knowledge without a record that says abroad reads the country as before.
        let kb = KnowledgeBase { services: vec![kb.services[0].clone()], ..kb };
        let index = SearchIndex::build(&kb).unwrap().with_countries(countries(), Vec::new());
        assert!(!terms(&index, q).contains(&ausland));
    }

    #[test]
    fn a_reflexive_verb_of_the_synonym_table_is_read_across_its_clause() {
        let kb = knowledge(
            vec![
                service("wohnsitz", "Wohnsitz anmelden", &[], "Nach dem Einzug anmelden.", "Beim Bürgerservice."),
                service("gewerbe", "Gewerbe anmelden", &[], "Ein Gewerbe anmelden.", "Beim Gewerbeamt anmelden."),
            ],
            "[terms]\n\"sich anmelden\" = [\"Wohnsitz\"]\n",
        );
        let index = SearchIndex::build(&kb).unwrap();
        let wohnsitz = index.analyzer.stem("wohnsitz");
        let terms = |q: &str| terms(&index, q);
        for q in ["Wie melde ich mich in der Stadt an?", "ich bin neu und muss mich anmelden", "Wo melden wir uns an?"]
        {
            assert!(terms(q).contains(&wohnsitz), "{q}: {:?}", terms(q));
            assert_eq!(top(&index, q).0, "wohnsitz", "{q}");
        }
        // Without the pronoun, or with it in another clause, the verb is only the verb.
        for q in ["Wie melde ich das Gewerbe an?", "Ich freue mich. Wie melde ich das Gewerbe an?"] {
            assert!(!terms(q).contains(&wohnsitz), "{q}: {:?}", terms(q));
            assert_eq!(top(&index, q).0, "gewerbe", "{q}");
        }
    }

    #[test]
    fn forms_that_differ_by_an_umlaut_meet() {
        let index = index();
        // A plural with umlaut finds the singular the records use, as its own word (not as a
        // typo or a compound part) ...
        assert_eq!(index.question_terms("Reisepässe"), index.question_terms("Reisepass"));
        // ... and a singular finds the plural the records use ("Große Abfälle").
        assert_eq!(index.question_terms("Abfall"), index.question_terms("Abfälle"));
        assert_eq!(top(&index, "Abfall abholen").0, "sperrmuell");
        // A word no form of which the records use stays unknown.
        assert!(index.question_terms("Bäume").is_empty());
    }

    #[test]
    fn unknown_topics_score_low() {
        let index = index();
        for q in
            ["Waffenschein beantragen", "Wie wird das Wetter morgen?", "Bootsführerschein", "gun license how to apply"]
        {
            let r = index.search(q, 3).unwrap();
            assert!(!r.is_confident(), "{q:?} scored {}", r.confidence);
            assert!(!r.unknown_words.is_empty(), "{q:?} should have unknown words");
        }
        let empty = index.search("   ", 3).unwrap();
        assert!(empty.hits.is_empty() && empty.confidence == 0.0);
    }

    #[test]
    fn english_only_words_are_read_in_english_questions_only() {
        let index = index();
        assert_eq!(top(&index, "My bin is full, can you pick it up?").0, "sperrmuell");
        assert!(index.question_terms("Ich bin neu hier").is_empty());
        // Nor does a function word no record uses weigh as a topic the knowledge lacks.
        let plain = index.search("Reisepass", 3).unwrap().confidence;
        let someone = index.search("Reisepass für jemanden", 3).unwrap().confidence;
        assert!((plain - someone).abs() < 1e-6, "{plain} vs {someone}");
    }

    #[test]
    fn english_words_the_synonyms_lack_are_read_through_the_glossary() {
        let g = Glossary::parse_ding(
            "Ausweis {m} :: identification\n\
             Personalausweis {m}; Reisepass {m}; Antrag {m}; Ausweis {m}; Deutsche {pl} :: papers\n",
        );
        let index = index().with_glossary(&g);
        let reads = |q: &str| index.question_terms(q).into_iter().map(|(t, _)| t).collect::<Vec<_>>();
        assert!(reads("Where do I get an identification?").contains(&"ausweis".to_string()));
        assert!(reads("Where do I get identifications?").contains(&"ausweis".to_string()), "by its English stem");
        assert!(!reads("Ich brauche eine identification").contains(&"ausweis".to_string()), "only in English");
        assert!(reads("Do I need papers?").is_empty(), "five readings say nothing");
    }

    #[test]
    fn aspect_words_do_not_lower_confidence() {
        let index = index();
        let plain = index.search("Reisepass", 3).unwrap().confidence;
        let asking = index.search("Wie lange dauert ein Reisepass und was kostet er?", 3).unwrap().confidence;
        assert!((plain - asking).abs() < 1e-6, "{plain} vs {asking}");
    }

    #[test]
    fn word_shapes_follow_german_casing() {
        assert_eq!(
            word_shapes("Ich will einen Waffenschein haben"),
            vec![Shape::Unclear, Shape::Lower, Shape::Lower, Shape::Noun, Shape::Lower]
        );
        assert!(word_shapes("ich will einen waffenschein").iter().all(|s| *s == Shape::Unclear));
        assert!(word_shapes("How do I get a Gun license").iter().all(|s| *s == Shape::Unclear));
        assert_eq!(word_shapes("Fees in Hamburg?")[2], Shape::Place);
        assert_eq!(word_shapes("Ich ziehe nach Leipzig")[3], Shape::Place);
        assert_eq!(word_shapes("in Leipzig")[1], Shape::Place);
        assert_eq!(word_shapes("Ich komme aus der Ukraine")[4], Shape::Place);
        assert_eq!(word_shapes("Er kam in der Uniklinik zur Welt")[4], Shape::Place);
        assert_ne!(word_shapes("Ich komme der Ukraine")[3], Shape::Place);
        assert_ne!(word_shapes("Ich bin in. Leipzig")[3], Shape::Place);
    }
}
