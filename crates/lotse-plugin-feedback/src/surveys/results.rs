//! A survey's results: counts per option (a multiple choice question's totals per option),
//! mean and distribution of scales, the net promoter score, each statement of a Likert
//! matrix; and the export of the single responses as CSV.

use serde::{Deserialize, Serialize};

use super::definition::{Kind, Survey};

/// Below this many responses no breakdown is shown (one answer could be told from another).
pub const MIN_BREAKDOWN: i64 = 5;

/// One response as kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub at_ms: i64,
    pub lang: String,
    pub channel: String,
    pub answers: serde_json::Map<String, serde_json::Value>,
}

/// How often one option (or scale point) was chosen.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Count {
    pub id: String,
    pub label: String,
    pub n: i64,
}

/// One statement of a Likert matrix: how many chose 1 (agree fully) … 5 (disagree fully).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Statement {
    pub id: String,
    pub label: String,
    pub counts: Vec<i64>,
    pub mean: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QuestionResult {
    pub id: String,
    pub kind: Kind,
    pub text: String,
    /// How many responses answered it.
    pub answered: i64,
    /// Published, and fewer than [`MIN_BREAKDOWN`] answered it (a question shown only on a
    /// condition): only that count is shown.
    #[serde(default)]
    pub withheld: bool,
    /// Per option; for a scale per point (1 … 5, 0 … 10); for yes/no `yes` and `no`.
    pub counts: Vec<Count>,
    pub mean: Option<f64>,
    /// Net promoter score: per cent of 9 and 10 less per cent of 0 to 6.
    pub nps: Option<f64>,
    pub statements: Vec<Statement>,
    /// The free texts (staff only; never published).
    pub texts: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Results {
    pub id: String,
    pub title: String,
    pub responses: i64,
    /// Fewer than [`MIN_BREAKDOWN`] responses: only the count is shown.
    pub withheld: bool,
    pub questions: Vec<QuestionResult>,
}

/// Counts `responses`; labels in `lang`; free texts only `with_texts`.
pub fn tally(id: &str, survey: &Survey, responses: &[Response], lang: &str, with_texts: bool) -> Results {
    let total = responses.len() as i64;
    let withheld = total < MIN_BREAKDOWN;
    let questions = if withheld {
        Vec::new()
    } else {
        survey.questions().map(|q| question(q, responses, lang, with_texts)).collect()
    };
    Results { id: id.to_string(), title: survey.title.get(lang).to_string(), responses: total, withheld, questions }
}

fn question(q: &super::definition::Question, responses: &[Response], lang: &str, with_texts: bool) -> QuestionResult {
    let given: Vec<&serde_json::Value> = responses.iter().filter_map(|r| r.answers.get(&q.id)).collect();
    let mut r = QuestionResult {
        id: q.id.clone(),
        kind: q.kind,
        text: q.text.get(lang).to_string(),
        answered: given.len() as i64,
        withheld: !with_texts && (given.len() as i64) < MIN_BREAKDOWN,
        counts: Vec::new(),
        mean: None,
        nps: None,
        statements: Vec::new(),
        texts: Vec::new(),
    };
    if r.withheld {
        return r;
    }
    let mean = |values: &[i64]| (!values.is_empty()).then(|| values.iter().sum::<i64>() as f64 / values.len() as f64);
    match q.kind {
        Kind::Single | Kind::Multiple => {
            r.counts = q
                .options
                .iter()
                .map(|o| Count {
                    id: o.id.clone(),
                    label: o.label.get(lang).to_string(),
                    n: given
                        .iter()
                        .filter(|v| match v {
                            serde_json::Value::String(s) => *s == o.id,
                            serde_json::Value::Array(a) => a.iter().any(|x| x.as_str() == Some(&o.id)),
                            _ => false,
                        })
                        .count() as i64,
                })
                .collect();
        }
        Kind::YesNo => {
            let (yes, no) = if lang == "en" { ("Yes", "No") } else { ("Ja", "Nein") };
            for (id, label, b) in [("yes", yes, true), ("no", no, false)] {
                let n = given.iter().filter(|v| v.as_bool() == Some(b)).count() as i64;
                r.counts.push(Count { id: id.into(), label: label.into(), n });
            }
        }
        Kind::Rating | Kind::Nps => {
            let values: Vec<i64> = given.iter().filter_map(|v| v.as_i64()).collect();
            let points = if q.kind == Kind::Rating { 1..=5 } else { 0..=10 };
            r.counts = points
                .map(|p| Count {
                    id: p.to_string(),
                    label: p.to_string(),
                    n: values.iter().filter(|v| **v == p).count() as i64,
                })
                .collect();
            r.mean = mean(&values);
            if q.kind == Kind::Nps && !values.is_empty() {
                let share =
                    |f: &dyn Fn(i64) -> bool| values.iter().filter(|v| f(**v)).count() as f64 / values.len() as f64;
                r.nps = Some(100.0 * (share(&|v| v >= 9) - share(&|v| v <= 6)));
            }
        }
        Kind::Likert => {
            r.statements = q
                .rows
                .iter()
                .map(|row| {
                    let values: Vec<i64> = given.iter().filter_map(|v| v.get(&row.id)?.as_i64()).collect();
                    Statement {
                        id: row.id.clone(),
                        label: row.label.get(lang).to_string(),
                        counts: (1..=5).map(|p| values.iter().filter(|v| **v == p).count() as i64).collect(),
                        mean: mean(&values),
                    }
                })
                .collect();
        }
        Kind::ShortText | Kind::LongText => {
            if with_texts {
                r.texts = given.iter().filter_map(|v| v.as_str().map(String::from)).collect();
            }
        }
    }
    r
}

/// A spreadsheet would run a cell that starts like a formula: such text gets a leading `'`.
fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_string() }
}

/// The single responses, one line each: time (the city's), language, channel, then a column
/// per question (a multiple choice question one per option, 1 or empty; a Likert matrix one
/// per statement), headed by the ids.
pub fn csv(survey: &Survey, responses: &[Response], sep: u8, tz: &jiff::tz::TimeZone) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new().delimiter(sep).from_writer(Vec::new());
    let mut head = vec!["submitted".to_string(), "lang".into(), "channel".into()];
    for q in survey.questions() {
        match q.kind {
            Kind::Multiple => head.extend(q.options.iter().map(|o| format!("{}.{}", q.id, o.id))),
            Kind::Likert => head.extend(q.rows.iter().map(|o| format!("{}.{}", q.id, o.id))),
            _ => head.push(q.id.clone()),
        }
    }
    w.write_record(&head)?;
    for r in responses {
        let at =
            jiff::Timestamp::from_millisecond(r.at_ms)?.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M").to_string();
        let mut line = vec![at, r.lang.clone(), r.channel.clone()];
        for q in survey.questions() {
            let v = r.answers.get(&q.id);
            match q.kind {
                Kind::Multiple => line.extend(q.options.iter().map(|o| {
                    let chosen =
                        v.and_then(|v| v.as_array()).is_some_and(|a| a.iter().any(|x| x.as_str() == Some(&o.id)));
                    if chosen { "1".to_string() } else { String::new() }
                })),
                Kind::Likert => line.extend(
                    q.rows
                        .iter()
                        .map(|row| v.and_then(|v| v.get(&row.id)?.as_i64()).map(|n| n.to_string()).unwrap_or_default()),
                ),
                Kind::YesNo => line.push(match v.and_then(|v| v.as_bool()) {
                    Some(true) => "ja".into(),
                    Some(false) => "nein".into(),
                    None => String::new(),
                }),
                Kind::Rating | Kind::Nps => {
                    line.push(v.and_then(|v| v.as_i64()).map(|n| n.to_string()).unwrap_or_default())
                }
                Kind::Single | Kind::ShortText | Kind::LongText => {
                    line.push(v.and_then(|v| v.as_str()).map(cell).unwrap_or_default())
                }
            }
        }
        w.write_record(&line)?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SURVEY: &str = r#"
title.de = "Test"
[[sections]]
[[sections.questions]]
id = "dienste"
kind = "multiple"
text.de = "Welche Dienste?"
options = [{ id = "pass", label.de = "Pass" }, { id = "kfz", label.de = "Kfz" }]
[[sections.questions]]
id = "nps"
kind = "nps"
text.de = "Empfehlen?"
[[sections.questions]]
id = "note"
kind = "short_text"
text.de = "Anmerkung"
[[sections.questions]]
id = "m"
kind = "likert"
text.de = "Aussagen"
rows = [{ id = "a", label.de = "A" }]
"#;

    fn responses(answers: &[serde_json::Value]) -> Vec<Response> {
        answers
            .iter()
            .enumerate()
            .map(|(i, a)| Response {
                at_ms: 1_800_000_000_000 + i as i64,
                lang: "de".into(),
                channel: "web".into(),
                answers: a.as_object().unwrap().clone(),
            })
            .collect()
    }

    #[test]
    fn counts_means_and_the_net_promoter_score() {
        let s = Survey::parse(SURVEY).unwrap();
        let rs = responses(&[
            json!({ "dienste": ["pass", "kfz"], "nps": 10, "m": { "a": 1 } }),
            json!({ "dienste": ["pass"], "nps": 9, "note": "=HYPERLINK(1)" }),
            json!({ "dienste": ["kfz"], "nps": 3 }),
            json!({ "nps": 7, "m": { "a": 3 } }),
            json!({ "dienste": ["pass"], "nps": 0 }),
        ]);
        let r = tally("t", &s, &rs, "de", true);
        assert!(!r.withheld);
        let d = &r.questions[0];
        assert_eq!((d.answered, d.counts[0].n, d.counts[1].n), (4, 3, 2), "totals per option");
        let n = &r.questions[1];
        assert_eq!(n.mean, Some(29.0 / 5.0));
        // 2 promoters, 2 detractors of 5.
        assert_eq!(n.nps, Some(0.0));
        assert_eq!(n.counts.iter().map(|c| c.n).sum::<i64>(), 5);
        assert_eq!(r.questions[2].texts, vec!["=HYPERLINK(1)"]);
        assert_eq!(r.questions[3].statements[0].counts, vec![1, 0, 1, 0, 0]);
        assert_eq!(r.questions[3].statements[0].mean, Some(2.0));
        let public = tally("t", &s, &rs, "de", false);
        assert!(public.questions[2].texts.is_empty(), "texts are never published");
        // Two answered the matrix: published, only that count.
        assert!(public.questions[3].withheld && public.questions[3].statements.is_empty());
        assert_eq!((public.questions[3].answered, public.questions[1].withheld), (2, false));
        let few = tally("t", &s, &rs[..4], "de", true);
        assert!(few.withheld && few.questions.is_empty() && few.responses == 4, "no breakdown below five");
    }

    #[test]
    fn the_export_has_a_column_per_option_and_defuses_formulas() {
        let s = Survey::parse(SURVEY).unwrap();
        let rs = responses(&[
            json!({ "dienste": ["kfz"], "nps": 10, "note": "=HYPERLINK(1); \"gut\"" }),
            json!({ "nps": 3 }),
        ]);
        let tz = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        let text = String::from_utf8(csv(&s, &rs, b';', &tz).unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "submitted;lang;channel;dienste.pass;dienste.kfz;nps;note;m.a");
        assert_eq!(lines[1], "2027-01-15 09:00;de;web;;1;10;\"'=HYPERLINK(1); \"\"gut\"\"\";");
        assert_eq!(lines[2], "2027-01-15 09:00;de;web;;;3;;");
    }
}
