//! What a survey is (written by administrators in TOML), its checks, and the check of a
//! citizen's answers against it.
//!
//! ```toml
//! title.de = "Wie zufrieden sind Sie mit dem Bürgerservice?"
//! title.en = "How satisfied are you with the citizens' office?"
//! starts = "2027-01-01"          # optional, in the city's time zone
//! ends = "2027-03-31"            # optional, the last day
//! max_responses = 500            # optional
//! public_results = false
//!
//! [[sections]]
//! title.de = "Ihr Besuch"
//!
//! [[sections.questions]]
//! id = "weg"
//! kind = "single"                # single, multiple, rating, nps, likert, yes_no, short_text, long_text
//! text.de = "Wie haben Sie uns erreicht?"
//! required = true
//! options = [{ id = "online", label.de = "Online" }, { id = "vor_ort", label.de = "Vor Ort" }]
//!
//! [[sections.questions]]
//! id = "warum"
//! kind = "long_text"
//! text.de = "Was hat online nicht geklappt?"
//! show_if = { question = "weg", any_of = ["vor_ort"] }
//! ```

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

/// The longest answer to a short and to a long text question.
pub const MAX_SHORT: usize = 200;
pub const MAX_LONG: usize = 2000;

/// The most sections, questions per survey, and options (or statements) per question.
const MAX_SECTIONS: usize = 20;
const MAX_QUESTIONS: usize = 100;
const MAX_OPTIONS: usize = 30;

/// A text in German (required), English and Einfache Sprache.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    pub de: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en: Option<String>,
    /// Einfache Sprache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ls: Option<String>,
}

impl Texts {
    /// The text for `lang` (`de`, `en`, `ls`), German where there is none.
    pub fn get(&self, lang: &str) -> &str {
        let other = match lang {
            "en" => self.en.as_deref(),
            "ls" => self.ls.as_deref(),
            _ => None,
        };
        other.filter(|t| !t.trim().is_empty()).unwrap_or(&self.de)
    }
}

/// The kinds of question.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One of the options.
    Single,
    /// Any of the options.
    Multiple,
    /// 1 to 5.
    Rating,
    /// How likely to recommend, 0 to 10 (net promoter score).
    Nps,
    /// Each statement (`rows`) on the five-point scale from "agree fully" (1) to "disagree
    /// fully" (5).
    Likert,
    YesNo,
    ShortText,
    LongText,
}

impl Kind {
    /// Whether its answers are options (what a display condition may look at).
    fn chooses(self) -> bool {
        matches!(self, Kind::Single | Kind::Multiple | Kind::YesNo)
    }
}

/// An option of a choice question, or a statement of a Likert matrix.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub id: String,
    pub label: Texts,
}

/// Show a question only when an earlier choice question was answered with one of `any_of`
/// (one level: that question has no condition of its own).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub question: String,
    /// Option ids (`yes` or `no` for a yes/no question).
    pub any_of: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    pub kind: Kind,
    pub text: Texts,
    /// A hint under the question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<Texts>,
    #[serde(default)]
    pub required: bool,
    /// The options of a single or multiple choice question.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<Choice>,
    /// The statements of a Likert matrix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_if: Option<Condition>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Section {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<Texts>,
    pub questions: Vec<Question>,
}

/// A questionnaire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Survey {
    pub title: Texts,
    /// Shown above the first section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intro: Option<Texts>,
    /// The first day it is open (the city's time zone); open at once without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts: Option<jiff::civil::Date>,
    /// The last day it is open; open until closed without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends: Option<jiff::civil::Date>,
    /// It closes after this many responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_responses: Option<u32>,
    /// Whether everyone may read the results (never the free texts, and no breakdown below
    /// five responses).
    #[serde(default)]
    pub public_results: bool,
    pub sections: Vec<Section>,
}

/// A survey's id: lower-case letters, digits and dashes, as in its link.
pub fn valid_id(id: &str) -> bool {
    (2..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
}

fn valid_key(id: &str) -> bool {
    (1..=40).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Survey {
    /// Reads and checks a definition; the message says what is wrong and where.
    pub fn parse(text: &str) -> Result<Survey, String> {
        let survey: Survey = toml::from_str(text).map_err(|e| e.to_string())?;
        survey.check()?;
        Ok(survey)
    }

    /// The definition as TOML (what the console's editor shows).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    pub fn questions(&self) -> impl Iterator<Item = &Question> {
        self.sections.iter().flat_map(|s| s.questions.iter())
    }

    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions().find(|q| q.id == id)
    }

    fn check(&self) -> Result<(), String> {
        let texts = |t: &Texts, what: &str| {
            if t.de.trim().is_empty() { Err(format!("{what}: the German text (de) is empty")) } else { Ok(()) }
        };
        texts(&self.title, "title")?;
        if self.sections.is_empty() || self.sections.len() > MAX_SECTIONS {
            return Err(format!("a survey has 1 to {MAX_SECTIONS} sections"));
        }
        if let (Some(s), Some(e)) = (self.starts, self.ends)
            && e < s
        {
            return Err("ends is before starts".into());
        }
        let count = self.questions().count();
        if count == 0 || count > MAX_QUESTIONS {
            return Err(format!("a survey has 1 to {MAX_QUESTIONS} questions"));
        }
        let mut seen: BTreeMap<&str, &Question> = BTreeMap::new();
        for q in self.questions() {
            let at = format!("question {:?}", q.id);
            if !valid_key(&q.id) {
                return Err(format!("{at}: an id is 1 to 40 letters, digits, _ or -"));
            }
            if seen.contains_key(q.id.as_str()) {
                return Err(format!("{at}: the id is used twice"));
            }
            texts(&q.text, &at)?;
            let needs_options = matches!(q.kind, Kind::Single | Kind::Multiple);
            if needs_options == q.options.is_empty() || q.options.len() > MAX_OPTIONS {
                return Err(if needs_options {
                    format!("{at}: a choice question has 1 to {MAX_OPTIONS} options")
                } else {
                    format!("{at}: only single and multiple choice questions have options")
                });
            }
            if (q.kind == Kind::Likert) == q.rows.is_empty() || q.rows.len() > MAX_OPTIONS {
                return Err(if q.kind == Kind::Likert {
                    format!("{at}: a Likert matrix has 1 to {MAX_OPTIONS} statements (rows)")
                } else {
                    format!("{at}: only a Likert matrix has rows")
                });
            }
            for list in [&q.options, &q.rows] {
                let mut ids = HashSet::new();
                for c in list {
                    if !valid_key(&c.id) || !ids.insert(c.id.as_str()) {
                        return Err(format!("{at}: option {:?} is not a valid, distinct id", c.id));
                    }
                    texts(&c.label, &format!("{at}, option {:?}", c.id))?;
                }
            }
            if let Some(c) = &q.show_if {
                let Some(target) = seen.get(c.question.as_str()) else {
                    return Err(format!("{at}: show_if names {:?}, which is not an earlier question", c.question));
                };
                if !target.kind.chooses() {
                    return Err(format!("{at}: show_if needs a single, multiple or yes/no question"));
                }
                if target.show_if.is_some() {
                    return Err(format!("{at}: show_if names a question that has a condition itself (one level only)"));
                }
                let known: Vec<&str> = if target.kind == Kind::YesNo {
                    vec!["yes", "no"]
                } else {
                    target.options.iter().map(|o| o.id.as_str()).collect()
                };
                if c.any_of.is_empty() || c.any_of.iter().any(|o| !known.contains(&o.as_str())) {
                    return Err(format!("{at}: show_if's any_of must name options of {:?}", c.question));
                }
            }
            seen.insert(&q.id, q);
        }
        Ok(())
    }

    /// What results are kept by: question ids with their kinds and option and statement ids.
    /// Once answers came in, a change may reword, but not change this.
    pub fn shape(&self) -> Vec<(String, Kind, Vec<String>)> {
        self.questions()
            .map(|q| (q.id.clone(), q.kind, q.options.iter().chain(&q.rows).map(|c| c.id.clone()).collect()))
            .collect()
    }

    /// Whether `q` is shown, given the answers so far.
    pub fn shown(&self, q: &Question, answers: &BTreeMap<String, Answer>) -> bool {
        let Some(c) = &q.show_if else { return true };
        match answers.get(&c.question) {
            Some(Answer::One(o)) => c.any_of.contains(o),
            Some(Answer::Many(os)) => os.iter().any(|o| c.any_of.contains(o)),
            Some(Answer::Yes(b)) => c.any_of.iter().any(|o| o == if *b { "yes" } else { "no" }),
            _ => false,
        }
    }

    /// Checks a citizen's answers: every shown required question answered, every answer of
    /// its question's form; answers to hidden questions dropped, texts redacted. The message
    /// names the question.
    pub fn check_answers(
        &self,
        given: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<BTreeMap<String, Answer>, (String, String)> {
        use serde_json::Value;
        if let Some(unknown) = given.keys().find(|k| self.question(k).is_none()) {
            return Err((unknown.clone(), "There is no such question.".into()));
        }
        let mut out = BTreeMap::new();
        for q in self.questions() {
            let wrong = || (q.id.clone(), "This answer does not fit the question.".to_string());
            if !self.shown(q, &out) {
                continue;
            }
            let value = given.get(&q.id).filter(|v| !v.is_null());
            let option = |v: &Value| v.as_str().filter(|o| q.options.iter().any(|c| c.id == *o)).map(String::from);
            let answer = match value {
                None => None,
                Some(v) => Some(match q.kind {
                    Kind::Single => Answer::One(option(v).ok_or_else(wrong)?),
                    Kind::Multiple => {
                        let list = v.as_array().ok_or_else(wrong)?;
                        let mut chosen = Vec::new();
                        for o in list {
                            let o = option(o).ok_or_else(wrong)?;
                            if !chosen.contains(&o) {
                                chosen.push(o);
                            }
                        }
                        Answer::Many(chosen)
                    }
                    Kind::Rating | Kind::Nps => {
                        let top = if q.kind == Kind::Rating { 5 } else { 10 };
                        let low = if q.kind == Kind::Rating { 1 } else { 0 };
                        let n = v.as_i64().filter(|n| (low..=top).contains(n)).ok_or_else(wrong)?;
                        Answer::Scale(n)
                    }
                    Kind::Likert => {
                        let map = v.as_object().ok_or_else(wrong)?;
                        let mut rows = BTreeMap::new();
                        for (row, n) in map {
                            if !q.rows.iter().any(|r| r.id == *row) {
                                return Err(wrong());
                            }
                            let n = n.as_i64().filter(|n| (1..=5).contains(n)).ok_or_else(wrong)?;
                            rows.insert(row.clone(), n);
                        }
                        Answer::Matrix(rows)
                    }
                    Kind::YesNo => Answer::Yes(v.as_bool().ok_or_else(wrong)?),
                    Kind::ShortText | Kind::LongText => {
                        let max = if q.kind == Kind::ShortText { MAX_SHORT } else { MAX_LONG };
                        Answer::Text(lotse_plugin::redact(v.as_str().ok_or_else(wrong)?, max))
                    }
                }),
            };
            let empty = match &answer {
                None => true,
                Some(Answer::Many(v)) => v.is_empty(),
                Some(Answer::Text(t)) => t.trim().is_empty(),
                // A matrix is answered when each statement is.
                Some(Answer::Matrix(rows)) => rows.len() < q.rows.len() && q.required || rows.is_empty(),
                _ => false,
            };
            if empty {
                if q.required {
                    return Err((q.id.clone(), "Please answer this question.".into()));
                }
                continue;
            }
            out.insert(q.id.clone(), answer.expect("not empty"));
        }
        Ok(out)
    }
}

/// One answer, as kept (JSON; read back by its question's kind).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Answer {
    Yes(bool),
    Scale(i64),
    One(String),
    Many(Vec<String>),
    Matrix(BTreeMap<String, i64>),
    Text(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) const EXAMPLE: &str = r#"
title.de = "Bürgerservice"
title.en = "Citizens' office"
max_responses = 3
[[sections]]
title.de = "Besuch"
[[sections.questions]]
id = "weg"
kind = "single"
text.de = "Wie haben Sie uns erreicht?"
required = true
options = [{ id = "online", label.de = "Online" }, { id = "vor_ort", label.de = "Vor Ort", label.en = "In person" }]
[[sections.questions]]
id = "warum"
kind = "long_text"
text.de = "Warum nicht online?"
required = true
show_if = { question = "weg", any_of = ["vor_ort"] }
[[sections.questions]]
id = "aussagen"
kind = "likert"
text.de = "Wie sehr stimmen Sie zu?"
rows = [{ id = "schnell", label.de = "Es ging schnell." }, { id = "freundlich", label.de = "Man war freundlich." }]
[[sections.questions]]
id = "empfehlen"
kind = "nps"
text.de = "Würden Sie uns empfehlen?"
"#;

    #[test]
    fn a_definition_reads_and_its_texts_fall_back_to_german() {
        let s = Survey::parse(EXAMPLE).unwrap();
        assert_eq!(s.questions().count(), 4);
        let o = &s.question("weg").unwrap().options[1];
        assert_eq!(o.label.get("en"), "In person");
        assert_eq!(s.question("weg").unwrap().options[0].label.get("en"), "Online");
        assert_eq!(Survey::parse(&s.to_toml()).unwrap(), s, "the editor's text reads back the same");
    }

    #[test]
    fn mistakes_in_a_definition_are_named() {
        let bad = |from: &str, to: &str| Survey::parse(&EXAMPLE.replace(from, to)).unwrap_err();
        assert!(bad(r#"id = "warum""#, r#"id = "weg""#).contains("used twice"));
        assert!(bad(r#"any_of = ["vor_ort"]"#, r#"any_of = ["bus"]"#).contains("any_of"));
        assert!(bad(r#"question = "weg""#, r#"question = "empfehlen""#).contains("earlier"));
        assert!(bad(r#"kind = "single""#, r#"kind = "rating""#).contains("only single and multiple"));
        assert!(
            bad(
                r#"kind = "nps""#,
                r#"kind = "nps"
colour = "red""#
            )
            .contains("colour")
        );
        assert!(bad("title.de = \"Bürgerservice\"", "title.de = \" \"").contains("German"));
        // A condition on a question with a condition of its own: one level only.
        let q = |id: &str, on: &str, opt: &str| {
            format!(
                "[[sections.questions]]\nid = \"{id}\"\nkind = \"yes_no\"\ntext.de = \"?\"\nshow_if = {{ question = \"{on}\", any_of = [\"{opt}\"] }}\n"
            )
        };
        let two = format!("{EXAMPLE}{}{}", q("x", "weg", "online"), q("y", "x", "yes"));
        assert!(Survey::parse(&two).unwrap_err().contains("one level"));
        let on_text = format!("{EXAMPLE}{}", q("x", "empfehlen", "a"));
        assert!(Survey::parse(&on_text).unwrap_err().contains("single, multiple or yes/no"));
        assert!(Survey::parse(&format!("{EXAMPLE}{}", q("x", "weg", "online"))).is_ok());
    }

    /// Any JSON value, a few levels deep.
    fn any_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            "[a-z_ äöü0-9]{0,12}".prop_map(serde_json::Value::from),
            // Values a question takes, so that answers also get through.
            prop_oneof![Just("online"), Just("vor_ort"), Just("schnell")].prop_map(serde_json::Value::from),
            (0i64..12).prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map("[a-z_]{1,10}", inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Whatever a form sends: the answers taken or the question named, never a panic; what
        /// is taken fits its question.
        #[test]
        fn any_answers_are_taken_or_refused_never_a_panic(
            answers in proptest::collection::btree_map(
                proptest::prop_oneof![
                    proptest::strategy::Just("weg".to_string()),
                    proptest::strategy::Just("warum".to_string()),
                    proptest::strategy::Just("aussagen".to_string()),
                    proptest::strategy::Just("empfehlen".to_string()),
                    "[a-z]{1,8}",
                ],
                any_json(),
                0..6,
            )
        ) {
            let s = Survey::parse(EXAMPLE).unwrap();
            let map: serde_json::Map<String, serde_json::Value> = answers.into_iter().collect();
            match s.check_answers(&map) {
                Ok(taken) => {
                    for (id, a) in &taken {
                        let q = s.question(id).unwrap();
                        match (q.kind, a) {
                            (Kind::Nps, Answer::Scale(n)) => proptest::prop_assert!((0..=10).contains(n)),
                            (Kind::LongText, Answer::Text(t)) => proptest::prop_assert!(t.chars().count() <= MAX_LONG),
                            (Kind::Single, Answer::One(o)) => proptest::prop_assert!(q.options.iter().any(|c| &c.id == o)),
                            (Kind::Likert, Answer::Matrix(m)) => proptest::prop_assert!(m.values().all(|n| (1..=5).contains(n))),
                            (k, a) => proptest::prop_assert!(false, "{k:?} took {a:?}"),
                        }
                    }
                }
                Err((question, _)) => proptest::prop_assert!(!question.is_empty()),
            }
        }

        /// Any text in the editor: a survey or a message, never a panic.
        #[test]
        fn any_definition_text_reads_or_is_refused(text in "(?s).{0,400}") {
            let _ = Survey::parse(&text);
            let _ = Survey::parse(&format!("{EXAMPLE}\n{text}"));
        }
    }

    #[test]
    fn answers_are_checked_against_the_questions_shown() {
        let s = Survey::parse(EXAMPLE).unwrap();
        let check = |v: serde_json::Value| s.check_answers(v.as_object().unwrap());
        // Online: "warum" is hidden, so not required, and an answer to it is dropped.
        let a = check(json!({ "weg": "online", "warum": "egal", "empfehlen": 9 })).unwrap();
        assert_eq!(a.get("warum"), None);
        assert_eq!(a.get("empfehlen"), Some(&Answer::Scale(9)));
        // In person: "warum" is shown and required.
        assert_eq!(check(json!({ "weg": "vor_ort" })).unwrap_err().0, "warum");
        let a = check(json!({ "weg": "vor_ort", "warum": "Kein Termin, Tel. 0176 1234567" })).unwrap();
        let Some(Answer::Text(t)) = a.get("warum") else { panic!() };
        assert!(!t.contains("1234567"), "texts are redacted: {t}");
        assert_eq!(check(json!({})).unwrap_err().0, "weg");
        assert_eq!(check(json!({ "weg": "bus" })).unwrap_err().0, "weg");
        assert_eq!(check(json!({ "weg": "online", "empfehlen": 11 })).unwrap_err().0, "empfehlen");
        assert_eq!(check(json!({ "weg": "online", "aussagen": { "laut": 2 } })).unwrap_err().0, "aussagen");
        assert_eq!(check(json!({ "weg": "online", "nope": 1 })).unwrap_err().0, "nope");
        let a = check(json!({ "weg": "online", "aussagen": { "schnell": 2 } })).unwrap();
        assert_eq!(a.get("aussagen"), Some(&Answer::Matrix([("schnell".to_string(), 2)].into())));
    }
}
