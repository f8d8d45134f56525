//! Public holidays of the German states and "open now / until / next" for an office's opening
//! hours.

use jiff::civil::{Date, Weekday as JWeekday};
use serde::{Deserialize, Serialize};

use crate::{OpeningHours, TimeRange, Weekday};

/// Easter Sunday (Gregorian), by the anonymous Gregorian algorithm (Meeus/Jones/Butcher).
pub fn easter_sunday(year: i16) -> Date {
    let y = year as i32;
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    // The algorithm yields March or April and a valid day for every Gregorian year.
    Date::new(year, month as i8, day as i8).expect("Easter is a valid date")
}

/// A German state (Land), for its public holidays; written as its two-letter code ("TH", "BY";
/// lower case is read too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    #[serde(rename = "BW", alias = "bw")]
    BadenWuerttemberg,
    #[serde(rename = "BY", alias = "by")]
    Bayern,
    #[serde(rename = "BE", alias = "be")]
    Berlin,
    #[serde(rename = "BB", alias = "bb")]
    Brandenburg,
    #[serde(rename = "HB", alias = "hb")]
    Bremen,
    #[serde(rename = "HH", alias = "hh")]
    Hamburg,
    #[serde(rename = "HE", alias = "he")]
    Hessen,
    #[serde(rename = "MV", alias = "mv")]
    MecklenburgVorpommern,
    #[serde(rename = "NI", alias = "ni")]
    Niedersachsen,
    #[serde(rename = "NW", alias = "nw")]
    NordrheinWestfalen,
    #[serde(rename = "RP", alias = "rp")]
    RheinlandPfalz,
    #[serde(rename = "SL", alias = "sl")]
    Saarland,
    #[serde(rename = "SN", alias = "sn")]
    Sachsen,
    #[serde(rename = "ST", alias = "st")]
    SachsenAnhalt,
    #[serde(rename = "SH", alias = "sh")]
    SchleswigHolstein,
    /// Lotse's first home, Jena.
    #[default]
    #[serde(rename = "TH", alias = "th")]
    Thueringen,
}

/// Where a city's clock and public holidays come from: its time zone and its state.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub tz: jiff::tz::TimeZone,
    pub state: State,
}

/// The name of the public holiday on `date` in `state`, if it is one: the nine every state keeps
/// and the state's own. Holidays of only some municipalities are left out (Fronleichnam in parts
/// of Saxony and Thuringia, the Augsburg Friedensfest), except Mariä Himmelfahrt in Bavaria,
/// which the cities with a Catholic majority keep (Munich among them).
pub fn holiday(state: State, date: Date) -> Option<&'static str> {
    use State::*;
    let (month, day, year) = (date.month(), date.day(), date.year());
    let fixed = match (month, day) {
        (1, 1) => Some("Neujahr"),
        (1, 6) if matches!(state, BadenWuerttemberg | Bayern | SachsenAnhalt) => Some("Heilige Drei Könige"),
        (3, 8) if (state == Berlin && year >= 2019) || (state == MecklenburgVorpommern && year >= 2023) => {
            Some("Internationaler Frauentag")
        }
        (5, 1) => Some("Tag der Arbeit"),
        // Once each, on the 75th and 80th anniversary of the end of the war in Europe.
        (5, 8) if state == Berlin && (year == 2020 || year == 2025) => Some("Tag der Befreiung"),
        (8, 15) if matches!(state, Bayern | Saarland) => Some("Mariä Himmelfahrt"),
        (9, 20) if state == Thueringen && year >= 2019 => Some("Weltkindertag"),
        (10, 3) => Some("Tag der Deutschen Einheit"),
        (10, 31)
            if year == 2017
                || matches!(state, Brandenburg | MecklenburgVorpommern | Sachsen | SachsenAnhalt | Thueringen)
                || (matches!(state, Bremen | Hamburg | Niedersachsen | SchleswigHolstein) && year >= 2018) =>
        {
            Some("Reformationstag")
        }
        (11, 1) if matches!(state, BadenWuerttemberg | Bayern | NordrheinWestfalen | RheinlandPfalz | Saarland) => {
            Some("Allerheiligen")
        }
        // Buß- und Bettag: the Wednesday between 16 and 22 November.
        (11, 16..=22) if state == Sachsen && date.weekday() == JWeekday::Wednesday => Some("Buß- und Bettag"),
        (12, 25) => Some("Erster Weihnachtsfeiertag"),
        (12, 26) => Some("Zweiter Weihnachtsfeiertag"),
        _ => None,
    };
    if fixed.is_some() {
        return fixed;
    }
    let easter = easter_sunday(year);
    match (date - easter).get_days() {
        -2 => Some("Karfreitag"),
        0 if matches!(state, Brandenburg | Hessen) => Some("Ostersonntag"),
        1 => Some("Ostermontag"),
        39 => Some("Christi Himmelfahrt"),
        49 if matches!(state, Brandenburg | Hessen) => Some("Pfingstsonntag"),
        50 => Some("Pfingstmontag"),
        60 if matches!(state, BadenWuerttemberg | Bayern | Hessen | NordrheinWestfalen | RheinlandPfalz | Saarland) => {
            Some("Fronleichnam")
        }
        _ => None,
    }
}

/// The knowledge's weekday of a date.
pub fn weekday(date: Date) -> Weekday {
    let i = match date.weekday() {
        JWeekday::Monday => 0,
        JWeekday::Tuesday => 1,
        JWeekday::Wednesday => 2,
        JWeekday::Thursday => 3,
        JWeekday::Friday => 4,
        JWeekday::Saturday => 5,
        JWeekday::Sunday => 6,
    };
    Weekday::ALL[i]
}

/// An office's state at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenState {
    /// Open now, until this range ends.
    OpenUntil(TimeRange),
    /// Closed now; opens next on this date within this range.
    Opens { date: Date, range: TimeRange, holiday_today: Option<&'static str> },
    /// No regular hours known.
    Unknown,
}

/// Whether the office is open at `date`/`minute` (minutes since midnight, local time), and if not,
/// when it opens next (within two weeks), with the public holidays of `state` closed.
pub fn open_state(hours: &OpeningHours, date: Date, minute: u16, state: State) -> OpenState {
    if hours.is_empty() {
        return OpenState::Unknown;
    }
    let holiday_today = holiday(state, date);
    if holiday_today.is_none() {
        let today = hours.ranges(weekday(date)).unwrap_or_default();
        if let Some(r) = today.iter().find(|r| r.contains(minute)) {
            return OpenState::OpenUntil(*r);
        }
        if let Some(r) = today.iter().find(|r| r.from > minute) {
            return OpenState::Opens { date, range: *r, holiday_today };
        }
    }
    let mut d = date;
    for _ in 0..14 {
        d = d.tomorrow().unwrap_or(d);
        if holiday(state, d).is_some() {
            continue;
        }
        if let Some(r) = hours.ranges(weekday(d)).unwrap_or_default().first() {
            return OpenState::Opens { date: d, range: *r, holiday_today };
        }
    }
    OpenState::Unknown
}

/// German weekday name of a date.
pub fn weekday_name(date: Date, english: bool) -> &'static str {
    let w = weekday(date);
    if english { w.name_en() } else { w.name_de() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn easter_dates() {
        assert_eq!(easter_sunday(2024), date(2024, 3, 31));
        assert_eq!(easter_sunday(2025), date(2025, 4, 20));
        assert_eq!(easter_sunday(2026), date(2026, 4, 5));
        assert_eq!(easter_sunday(2038), date(2038, 4, 25));
    }

    #[test]
    fn thuringian_holidays() {
        let table = [
            (date(2026, 1, 1), Some("Neujahr")),
            (date(2026, 4, 3), Some("Karfreitag")),
            (date(2026, 4, 6), Some("Ostermontag")),
            (date(2026, 5, 14), Some("Christi Himmelfahrt")),
            (date(2026, 5, 25), Some("Pfingstmontag")),
            (date(2026, 9, 20), Some("Weltkindertag")),
            (date(2026, 10, 31), Some("Reformationstag")),
            (date(2026, 6, 4), None), // Fronleichnam: not in Jena
            (date(2026, 11, 23), None),
        ];
        for (d, want) in table {
            assert_eq!(holiday(State::Thueringen, d), want, "{d}");
        }
    }

    #[test]
    fn other_states_keep_their_own_holidays() {
        let munich = State::Bayern;
        assert_eq!(holiday(munich, date(2026, 6, 4)), Some("Fronleichnam"));
        assert_eq!(holiday(munich, date(2026, 8, 15)), Some("Mariä Himmelfahrt"));
        assert_eq!(holiday(munich, date(2026, 11, 1)), Some("Allerheiligen"));
        assert_eq!(holiday(munich, date(2026, 10, 31)), None);
        assert_eq!(holiday(munich, date(2026, 9, 20)), None);
        assert_eq!(holiday(State::Sachsen, date(2026, 11, 18)), Some("Buß- und Bettag"));
        assert_eq!(holiday(State::Sachsen, date(2025, 11, 19)), Some("Buß- und Bettag"));
        assert_eq!(holiday(State::Sachsen, date(2026, 11, 25)), None);
        assert_eq!(holiday(State::Berlin, date(2026, 3, 8)), Some("Internationaler Frauentag"));
        assert_eq!(holiday(State::Hamburg, date(2017, 10, 31)), Some("Reformationstag"));
        assert_eq!(holiday(State::Hamburg, date(2016, 10, 31)), None);
        // Every state keeps the nine national ones.
        assert_eq!(holiday(State::Bremen, date(2026, 5, 25)), Some("Pfingstmontag"));
        let parsed: State = serde_json::from_str("\"BY\"").unwrap();
        assert_eq!(parsed, State::Bayern);
        let parsed: State = serde_json::from_str("\"sn\"").unwrap();
        assert_eq!(parsed, State::Sachsen);
        assert_eq!(holiday(State::Berlin, date(2025, 5, 8)), Some("Tag der Befreiung"));
        assert_eq!(holiday(State::Berlin, date(2026, 5, 8)), None);
    }

    fn hours() -> OpeningHours {
        OpeningHours {
            mo: Some("08:30-13:00".into()),
            di: Some("08:30-12:00, 13:00-18:00".into()),
            ..Default::default()
        }
    }

    #[test]
    fn open_until_and_next_opening() {
        // Monday 23 Nov 2026, 10:00: open until 13:00.
        assert_eq!(
            open_state(&hours(), date(2026, 11, 23), 600, State::Thueringen),
            OpenState::OpenUntil(TimeRange { from: 510, to: 780 })
        );
        // Tuesday 12:30: in the lunch break, opens 13:00 the same day.
        match open_state(&hours(), date(2026, 11, 24), 750, State::Thueringen) {
            OpenState::Opens { date: d, range, .. } => assert_eq!((d, range.from), (date(2026, 11, 24), 780)),
            other => panic!("{other:?}"),
        }
        // Easter Monday 2026 is a holiday: next opening is Tuesday.
        match open_state(&hours(), date(2026, 4, 6), 600, State::Thueringen) {
            OpenState::Opens { date: d, holiday_today, .. } => {
                assert_eq!(d, date(2026, 4, 7));
                assert_eq!(holiday_today, Some("Ostermontag"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(open_state(&OpeningHours::default(), date(2026, 4, 6), 600, State::Thueringen), OpenState::Unknown);
    }
}
