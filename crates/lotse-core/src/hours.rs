//! Structured opening hours as an editor writes them: one line per weekday with
//! `HH:MM-HH:MM` ranges joined by commas, plus a free-text note for what is irregular.

use serde::{Deserialize, Serialize};

/// A day of the week, Monday first, named by its German two-letter abbreviation in files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weekday {
    Mo,
    Di,
    Mi,
    Do,
    Fr,
    Sa,
    So,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [Self::Mo, Self::Di, Self::Mi, Self::Do, Self::Fr, Self::Sa, Self::So];

    /// The key used in knowledge files (`mo`, `di`, …).
    pub fn key(self) -> &'static str {
        ["mo", "di", "mi", "do", "fr", "sa", "so"][self as usize]
    }

    pub fn name_de(self) -> &'static str {
        ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"][self as usize]
    }

    pub fn name_en(self) -> &'static str {
        ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"][self as usize]
    }

    /// Monday = 0 … Sunday = 6.
    pub fn from_index(i: usize) -> Option<Weekday> {
        Self::ALL.get(i).copied()
    }
}

/// Month names, January first (dates in replies, slots, spoken text).
pub const MONTHS_DE: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];
pub const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Minutes since midnight, from (inclusive) to (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from: u16,
    pub to: u16,
}

impl TimeRange {
    pub fn contains(&self, minute_of_day: u16) -> bool {
        self.from <= minute_of_day && minute_of_day < self.to
    }
}

impl std::fmt::Display for TimeRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}–{:02}:{:02}", self.from / 60, self.from % 60, self.to / 60, self.to % 60)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error("`{0}` is not a time range like 08:30-13:00")]
    BadRange(String),
    #[error("`{0}` is not a time of day like 08:30")]
    BadTime(String),
    #[error("range `{0}` ends before it starts")]
    Backwards(String),
    #[error("ranges on one day overlap or are out of order: `{0}`")]
    Overlap(String),
}

/// Weekly opening hours as written in an office file. The per-day strings are kept as written and
/// parsed on demand; `lotse knowledge check` parses all of them, so a loaded knowledge base only
/// holds valid ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OpeningHours {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub di: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mi: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#do: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sa: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub so: Option<String>,
    /// Irregular hours in words ("ausgewählte Samstage 09:00-13:00"), shown as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl OpeningHours {
    /// The raw text for one day, if any.
    pub fn day(&self, day: Weekday) -> Option<&str> {
        let s = match day {
            Weekday::Mo => &self.mo,
            Weekday::Di => &self.di,
            Weekday::Mi => &self.mi,
            Weekday::Do => &self.r#do,
            Weekday::Fr => &self.fr,
            Weekday::Sa => &self.sa,
            Weekday::So => &self.so,
        };
        s.as_deref().filter(|s| !s.trim().is_empty())
    }

    /// The parsed ranges of one day; empty when closed.
    pub fn ranges(&self, day: Weekday) -> Result<Vec<TimeRange>, HoursError> {
        self.day(day).map(parse_day).unwrap_or(Ok(Vec::new()))
    }

    /// Checks every day; returns the first problem per day.
    pub fn validate(&self) -> Vec<(Weekday, HoursError)> {
        Weekday::ALL.iter().filter_map(|&d| self.ranges(d).err().map(|e| (d, e))).collect()
    }

    /// Whether any weekday has hours.
    pub fn is_empty(&self) -> bool {
        Weekday::ALL.iter().all(|&d| self.day(d).is_none())
    }
}

/// Parses `08:30-12:00, 13:00-15:30` (hyphen or en dash, optional spaces, "Uhr" tolerated).
pub fn parse_day(text: &str) -> Result<Vec<TimeRange>, HoursError> {
    let mut out: Vec<TimeRange> = Vec::new();
    for part in text.split([',', ';']).map(str::trim).filter(|p| !p.is_empty()) {
        let cleaned = part.trim_end_matches("Uhr").trim();
        let (a, b) = cleaned.split_once(['-', '–']).ok_or_else(|| HoursError::BadRange(part.to_string()))?;
        let range = TimeRange { from: parse_time(a.trim())?, to: parse_time(b.trim())? };
        if range.to <= range.from {
            return Err(HoursError::Backwards(part.to_string()));
        }
        if out.last().is_some_and(|prev| prev.to > range.from) {
            return Err(HoursError::Overlap(text.to_string()));
        }
        out.push(range);
    }
    Ok(out)
}

fn parse_time(s: &str) -> Result<u16, HoursError> {
    let bad = || HoursError::BadTime(s.to_string());
    let (h, m) = s.split_once([':', '.']).unwrap_or((s, "00"));
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if h > 24 || m > 59 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_day_strings() {
        type Case = (&'static str, Option<Vec<(u16, u16)>>);
        let table: &[Case] = &[
            ("08:30-13:00", Some(vec![(510, 780)])),
            ("08:30 - 12:00, 13:00-15:30", Some(vec![(510, 720), (780, 930)])),
            ("9-13 Uhr", Some(vec![(540, 780)])),
            ("08:30–18:00", Some(vec![(510, 1080)])),
            ("13:00-08:00", None),
            ("08:30-12:00, 11:00-15:00", None),
            ("morgens", None),
            ("25:00-26:00", None),
            ("08:3-09:00", None),
        ];
        for (input, expected) in table {
            let got = parse_day(input).ok().map(|v| v.iter().map(|r| (r.from, r.to)).collect::<Vec<_>>());
            assert_eq!(&got, expected, "input {input:?}");
        }
    }

    #[test]
    fn ranges_by_day_and_validation() {
        let h = OpeningHours { mo: Some("08:30-13:00".into()), di: Some("kaputt".into()), ..Default::default() };
        assert_eq!(h.ranges(Weekday::Mo).unwrap(), vec![TimeRange { from: 510, to: 780 }]);
        assert!(h.ranges(Weekday::Sa).unwrap().is_empty());
        let problems = h.validate();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, Weekday::Di);
        assert!(TimeRange { from: 510, to: 780 }.contains(510));
        assert!(!TimeRange { from: 510, to: 780 }.contains(780));
    }
}
