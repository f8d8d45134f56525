//! Public holidays in Thuringia and "open now / until / next" for an office's opening hours.

use jiff::civil::{Date, Weekday as JWeekday};

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

/// The name of the public holiday in Thuringia on `date`, if it is one. Fronleichnam is a holiday
/// only in some Thuringian municipalities (not in Jena) and is not included.
pub fn thuringian_holiday(date: Date) -> Option<&'static str> {
    let fixed = match (date.month(), date.day()) {
        (1, 1) => Some("Neujahr"),
        (5, 1) => Some("Tag der Arbeit"),
        (9, 20) if date.year() >= 2019 => Some("Weltkindertag"),
        (10, 3) => Some("Tag der Deutschen Einheit"),
        (10, 31) => Some("Reformationstag"),
        (12, 25) => Some("Erster Weihnachtsfeiertag"),
        (12, 26) => Some("Zweiter Weihnachtsfeiertag"),
        _ => None,
    };
    if fixed.is_some() {
        return fixed;
    }
    let easter = easter_sunday(date.year());
    let offset = (date - easter).get_days();
    match offset {
        -2 => Some("Karfreitag"),
        1 => Some("Ostermontag"),
        39 => Some("Christi Himmelfahrt"),
        50 => Some("Pfingstmontag"),
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
/// when it opens next (within two weeks), with public holidays closed.
pub fn open_state(hours: &OpeningHours, date: Date, minute: u16) -> OpenState {
    if hours.is_empty() {
        return OpenState::Unknown;
    }
    let holiday_today = thuringian_holiday(date);
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
        if thuringian_holiday(d).is_some() {
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
            assert_eq!(thuringian_holiday(d), want, "{d}");
        }
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
            open_state(&hours(), date(2026, 11, 23), 600),
            OpenState::OpenUntil(TimeRange { from: 510, to: 780 })
        );
        // Tuesday 12:30: in the lunch break, opens 13:00 the same day.
        match open_state(&hours(), date(2026, 11, 24), 750) {
            OpenState::Opens { date: d, range, .. } => assert_eq!((d, range.from), (date(2026, 11, 24), 780)),
            other => panic!("{other:?}"),
        }
        // Easter Monday 2026 is a holiday: next opening is Tuesday.
        match open_state(&hours(), date(2026, 4, 6), 600) {
            OpenState::Opens { date: d, holiday_today, .. } => {
                assert_eq!(d, date(2026, 4, 7));
                assert_eq!(holiday_today, Some("Ostermontag"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(open_state(&OpeningHours::default(), date(2026, 4, 6), 600), OpenState::Unknown);
    }
}
