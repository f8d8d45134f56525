//! When staff are reachable: weekly hours per team, the configured state's public holidays
//! (computed, the Easter-based ones included) and dated exceptions (a closed day, shorter hours).

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use lotse_core::calendar::{Zone, holiday, weekday};
use lotse_core::{MONTHS_DE, MONTHS_EN, OpeningHours, TimeRange};
use serde::{Deserialize, Serialize};

/// A team that takes handed-over conversations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    /// Stable id (`buergerservice`), used in the database and the console.
    pub id: String,
    /// Shown to citizens and staff (`Bürgerservice`).
    pub name: String,
    /// Knowledge offices whose services this team answers for (routing).
    #[serde(default)]
    pub offices: Vec<String>,
    /// Weekly reachable hours, as in office files (`mo = "08:00-12:00, 13:00-16:00"`).
    #[serde(default)]
    pub hours: OpeningHours,
    /// Where the SIP bridge puts a caller through to this team within its hours (a SIP URI
    /// of the city's PBX, `sip:3800@pbx.example`); without one, a caller is queued as a chat
    /// is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<String>,
}

/// A dated change to the weekly hours: closed (no `hours`) or other hours that day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Ranges for that day (`09:00-12:00`); absent means closed.
    #[serde(default)]
    pub hours: Option<String>,
    /// The team it applies to; absent means all teams.
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// The whole schedule: teams (the first one listed with `general = …` is the fallback queue) and
/// exceptions. Editable by admins in the console; validated before it is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// The team that takes conversations no other team's offices match.
    pub general: String,
    pub teams: Vec<Team>,
    #[serde(default)]
    pub exceptions: Vec<Exception>,
}

fn hours(days: [Option<&str>; 7]) -> OpeningHours {
    let d = |i: usize| days[i].map(str::to_string);
    OpeningHours { mo: d(0), di: d(1), mi: d(2), r#do: d(3), fr: d(4), sa: d(5), so: d(6), note: None }
}

impl Default for Schedule {
    /// Jena's three teams with plausible reachable hours; a city sets its own in `lotse.toml`
    /// or in the console.
    fn default() -> Schedule {
        let weekdays = |t: &'static str| [Some(t), Some(t), Some(t), Some(t), Some(t), None, None];
        Schedule {
            general: "buergerservice".into(),
            teams: vec![
                Team {
                    id: "buergerservice".into(),
                    name: "Bürgerservice".into(),
                    offices: vec!["buergerservice".into(), "stadtverwaltung".into()],
                    hours: hours(weekdays("08:00-18:00")),
                    transfer: None,
                },
                Team {
                    id: "standesamt".into(),
                    name: "Standesamt".into(),
                    offices: vec!["standesamt".into()],
                    hours: hours([
                        Some("09:00-12:00"),
                        Some("09:00-12:00, 13:00-18:00"),
                        None,
                        Some("09:00-12:00, 13:00-16:00"),
                        Some("09:00-12:00"),
                        None,
                        None,
                    ]),
                    transfer: None,
                },
                Team {
                    id: "auslaenderbehoerde".into(),
                    name: "Ausländerbehörde".into(),
                    offices: vec!["auslaenderbehoerde".into()],
                    hours: hours(weekdays("08:00-15:00")),
                    transfer: None,
                },
            ],
            exceptions: Vec::new(),
        }
    }
}

/// A schedule that does not make sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("there are no teams")]
    NoTeams,
    #[error("the general team `{0}` is not among the teams")]
    UnknownGeneral(String),
    #[error("team id `{0}` appears twice")]
    DuplicateTeam(String),
    #[error("team `{0}`: {1}")]
    Hours(String, String),
    #[error("exception `{0}`: {1}")]
    Exception(String, String),
    #[error("team `{0}`: the transfer target `{1}` is not a SIP URI (sip:3800@pbx.example)")]
    Transfer(String, String),
}

/// A reachable window: start and end in the city's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub start: Zoned,
    pub end: Zoned,
}

impl Window {
    /// "Montag, 7. Dezember, 08:00–12:00 Uhr" / "Monday, 7 December, 08:00–12:00".
    pub fn describe(&self, english: bool) -> String {
        let d = self.start.date();
        let w = weekday(d);
        let m = (d.month() - 1) as usize;
        let (s, e) = (self.start.time(), self.end.time());
        if english {
            format!(
                "{}, {} {}, {:02}:{:02}–{:02}:{:02}",
                w.name_en(),
                d.day(),
                MONTHS_EN[m],
                s.hour(),
                s.minute(),
                e.hour(),
                e.minute()
            )
        } else {
            format!(
                "{}, {}. {}, {:02}:{:02}–{:02}:{:02} Uhr",
                w.name_de(),
                d.day(),
                MONTHS_DE[m],
                s.hour(),
                s.minute(),
                e.hour(),
                e.minute()
            )
        }
    }
}

impl Schedule {
    /// Reads a schedule from TOML (the console's editor and `lotse.toml` use the same form).
    pub fn from_toml(text: &str) -> Result<Schedule, String> {
        let s: Schedule = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate().map_err(|e| e.to_string())?;
        Ok(s)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    pub fn validate(&self) -> Result<(), ScheduleError> {
        if self.teams.is_empty() {
            return Err(ScheduleError::NoTeams);
        }
        let mut seen = std::collections::HashSet::new();
        for t in &self.teams {
            if !seen.insert(t.id.as_str()) {
                return Err(ScheduleError::DuplicateTeam(t.id.clone()));
            }
            if let Some((day, e)) = t.hours.validate().into_iter().next() {
                return Err(ScheduleError::Hours(t.id.clone(), format!("{}: {e}", day.name_de())));
            }
            if let Some(uri) = &t.transfer {
                // A SIP URI the bridge can name in Refer-To: `sip:` or `sips:`, one token.
                let ok = (uri.starts_with("sip:") || uri.starts_with("sips:"))
                    && uri.len() > 5
                    && uri.len() <= 256
                    && !uri.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'));
                if !ok {
                    return Err(ScheduleError::Transfer(t.id.clone(), uri.clone()));
                }
            }
        }
        if !seen.contains(self.general.as_str()) {
            return Err(ScheduleError::UnknownGeneral(self.general.clone()));
        }
        for x in &self.exceptions {
            x.date.parse::<Date>().map_err(|_| ScheduleError::Exception(x.date.clone(), "not a date".into()))?;
            if let Some(h) = &x.hours {
                lotse_core::parse_day(h).map_err(|e| ScheduleError::Exception(x.date.clone(), e.to_string()))?;
            }
            if let Some(team) = &x.team
                && !seen.contains(team.as_str())
            {
                return Err(ScheduleError::Exception(x.date.clone(), format!("unknown team `{team}`")));
            }
        }
        Ok(())
    }

    pub fn team(&self, id: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.id == id)
    }

    /// The team for a service answered by these offices; the general team when none matches.
    pub fn route<'a>(&self, offices: impl IntoIterator<Item = &'a str>) -> &Team {
        let offices: Vec<&str> = offices.into_iter().collect();
        // The first responsible office decides: it is the one that does the service.
        for o in &offices {
            if let Some(t) = self.teams.iter().find(|t| t.offices.iter().any(|x| x == o)) {
                return t;
            }
        }
        self.team(&self.general).unwrap_or(&self.teams[0])
    }

    /// The team's ranges on `date`: exceptions first, then public holidays (closed), then the
    /// weekly hours.
    pub fn ranges(&self, team: &str, date: Date, zone: &Zone) -> Vec<TimeRange> {
        let exception = self
            .exceptions
            .iter()
            .filter(|x| x.team.as_deref().is_none_or(|t| t == team))
            .find(|x| x.date.parse::<Date>().ok() == Some(date));
        if let Some(x) = exception {
            return x.hours.as_deref().and_then(|h| lotse_core::parse_day(h).ok()).unwrap_or_default();
        }
        if holiday(zone.state, date).is_some() {
            return Vec::new();
        }
        self.team(team).and_then(|t| t.hours.ranges(weekday(date)).ok()).unwrap_or_default()
    }

    /// Whether the team is reachable at `at`.
    pub fn is_open(&self, team: &str, at: Timestamp, zone: &Zone) -> bool {
        self.current(team, at, zone).is_some()
    }

    /// The window the team is in at `at`, if it is open.
    pub fn current(&self, team: &str, at: Timestamp, zone: &Zone) -> Option<Window> {
        let tz = &zone.tz;
        let local = at.to_zoned(tz.clone());
        let minute = (local.hour() as u16) * 60 + local.minute() as u16;
        let r = self.ranges(team, local.date(), zone).into_iter().find(|r| r.contains(minute))?;
        Some(self.window(local.date(), r, tz))
    }

    fn window(&self, date: Date, r: TimeRange, tz: &TimeZone) -> Window {
        let at = |m: u16| {
            // A range ending at 24:00 ends at the next midnight.
            if m >= 24 * 60 {
                let next = date.tomorrow().unwrap_or(date).to_datetime(jiff::civil::time(0, 0, 0, 0));
                return next.to_zoned(tz.clone()).unwrap_or_else(|_| Timestamp::UNIX_EPOCH.to_zoned(tz.clone()));
            }
            let dt = DateTime::from_parts(date, jiff::civil::time((m / 60) as i8, (m % 60) as i8, 0, 0));
            dt.to_zoned(tz.clone()).unwrap_or_else(|_| Timestamp::UNIX_EPOCH.to_zoned(tz.clone()))
        };
        Window { start: at(r.from), end: at(r.to) }
    }

    /// The next window that starts after `at` (within 60 days), for callbacks and "back on …".
    pub fn next_opening(&self, team: &str, at: Timestamp, zone: &Zone) -> Option<Window> {
        let tz = &zone.tz;
        let local = at.to_zoned(tz.clone());
        let minute = (local.hour() as u16) * 60 + local.minute() as u16;
        let mut date = local.date();
        for day in 0..60 {
            for r in self.ranges(team, date, zone) {
                if day > 0 || r.from > minute {
                    return Some(self.window(date, r, tz));
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz() -> Zone {
        Zone { tz: TimeZone::get("Europe/Berlin").unwrap(), state: lotse_core::calendar::State::Thueringen }
    }

    fn at(s: &str) -> Timestamp {
        s.parse::<DateTime>().unwrap().to_zoned(tz().tz).unwrap().timestamp()
    }

    #[test]
    fn a_transfer_target_must_be_a_sip_uri_and_survives_the_toml() {
        let mut s = Schedule::default();
        s.teams[0].transfer = Some("sip:3800@pbx.jena.example".into());
        s.validate().unwrap();
        assert_eq!(Schedule::from_toml(&s.to_toml()).unwrap().teams[0].transfer, s.teams[0].transfer);
        for bad in ["3800", "sip:", "sip:38 00@pbx", "<sip:3800@pbx>", "http://pbx/3800"] {
            s.teams[0].transfer = Some(bad.into());
            assert!(matches!(s.validate(), Err(ScheduleError::Transfer(..))), "{bad}");
        }
    }

    #[test]
    fn weekly_hours_holidays_and_exceptions() {
        let mut s = Schedule::default();
        s.exceptions.push(Exception { date: "2026-12-24".into(), hours: None, team: None, note: None });
        s.exceptions.push(Exception {
            date: "2026-12-30".into(),
            hours: Some("09:00-11:00".into()),
            team: Some("buergerservice".into()),
            note: None,
        });
        s.validate().unwrap();
        // Tuesday 1 December 2026, 10:00: open; 19:00: closed.
        assert!(s.is_open("buergerservice", at("2026-12-01T10:00"), &tz()));
        assert!(!s.is_open("buergerservice", at("2026-12-01T19:00"), &tz()));
        // Saturday: closed; the next opening is Monday 08:00.
        let next = s.next_opening("buergerservice", at("2026-12-05T10:00"), &tz()).unwrap();
        assert_eq!(next.describe(false), "Montag, 7. Dezember, 08:00–18:00 Uhr");
        // Christmas Eve by exception, the two holidays by law: closed from the 24th to the 27th.
        let next = s.next_opening("buergerservice", at("2026-12-23T18:30"), &tz()).unwrap();
        assert_eq!(next.start.date(), jiff::civil::date(2026, 12, 28));
        // Shorter hours on the 30th for one team only.
        assert!(!s.is_open("buergerservice", at("2026-12-30T12:00"), &tz()));
        assert!(s.is_open("auslaenderbehoerde", at("2026-12-30T12:00"), &tz()));
        // Easter-based: Karfreitag 2027 is 26 March, Ostermontag 29 March.
        assert!(!s.is_open("buergerservice", at("2027-03-26T10:00"), &tz()));
        assert!(!s.is_open("buergerservice", at("2027-03-29T10:00"), &tz()));
        assert!(s.is_open("buergerservice", at("2027-03-30T10:00"), &tz()));
        // Before opening on a working day, the next window is the same day.
        let next = s.next_opening("standesamt", at("2026-12-01T07:00"), &tz()).unwrap();
        assert_eq!(next.describe(true), "Tuesday, 1 December, 09:00–12:00");
    }

    #[test]
    fn a_range_to_midnight_ends_at_the_next_day() {
        let mut s = Schedule::default();
        s.exceptions.push(Exception {
            date: "2026-12-01".into(),
            hours: Some("20:00-24:00".into()),
            team: None,
            note: None,
        });
        let w = s.current("buergerservice", at("2026-12-01T23:30"), &tz()).unwrap();
        assert_eq!(w.end.date(), jiff::civil::date(2026, 12, 2));
        assert_eq!(w.describe(false), "Dienstag, 1. Dezember, 20:00–00:00 Uhr");
    }

    #[test]
    fn routing_by_office_with_general_fallback() {
        let s = Schedule::default();
        assert_eq!(s.route(["standesamt"]).id, "standesamt");
        assert_eq!(s.route(["kfz-zulassung", "auslaenderbehoerde"]).id, "auslaenderbehoerde");
        assert_eq!(s.route(["gibt-es-nicht"]).id, "buergerservice");
        assert_eq!(s.route([]).id, "buergerservice");
    }

    #[test]
    fn invalid_schedules_are_refused_with_a_reason() {
        let s = Schedule { general: "nobody".into(), ..Default::default() };
        assert_eq!(s.validate(), Err(ScheduleError::UnknownGeneral("nobody".into())));
        let text = Schedule::default().to_toml().replace("08:00-18:00", "18:00-08:00");
        let e = Schedule::from_toml(&text).unwrap_err();
        assert!(e.contains("buergerservice"), "{e}");
        let back = Schedule::from_toml(&Schedule::default().to_toml()).unwrap();
        assert_eq!(back, Schedule::default());
    }
}
