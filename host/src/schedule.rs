//! Cron schedules as LangGraph reads them: five fields, read in an IANA
//! timezone (UTC when none is given), next firings stored in UTC.
//!
//! `0 9 * * *` in `America/New_York` fires at 09:00 New York time: 13:00
//! UTC in summer, 14:00 in winter.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// A schedule or timezone the API refuses; the messages are the reference
/// server's.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// Not a five-field cron expression.
    #[error("Invalid cron schedule: '{schedule}'. {reason}")]
    Schedule {
        /// The schedule as given.
        schedule: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Not an IANA timezone name.
    #[error("Invalid timezone: '{0}'. Use IANA timezone format (e.g. 'America/New_York').")]
    Timezone(String),
}

/// An IANA timezone name (`Europe/Paris`, `UTC`), checked.
pub fn timezone(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name).map_err(|_| ScheduleError::Timezone(name.to_owned()))
}

/// A five-field schedule and the timezone it is read in.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: croner::Cron,
    timezone: Tz,
}

impl Schedule {
    /// Parses `schedule` (minute hour day month weekday), read in
    /// `timezone`, UTC when `None`.
    pub fn parse(schedule: &str, timezone: Option<&str>) -> Result<Self, ScheduleError> {
        let invalid = |reason: String| ScheduleError::Schedule {
            schedule: schedule.to_owned(),
            reason,
        };
        if schedule.split_whitespace().count() != 5 {
            return Err(invalid(
                "Expected 5 fields: minute hour day month weekday".into(),
            ));
        }
        let cron = croner::Cron::from_str(schedule).map_err(|e| invalid(e.to_string()))?;
        let timezone = timezone.map(self::timezone).transpose()?.unwrap_or(Tz::UTC);
        Ok(Self {
            text: schedule.to_owned(),
            cron,
            timezone,
        })
    }

    /// The first firing strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Result<DateTime<Utc>, ScheduleError> {
        let local = after.with_timezone(&self.timezone);
        let next =
            self.cron
                .find_next_occurrence(&local, false)
                .map_err(|e| ScheduleError::Schedule {
                    schedule: self.text.clone(),
                    reason: e.to_string(),
                })?;
        Ok(next.with_timezone(&Utc))
    }
}

/// The next firing after now, as the API writes timestamps
/// ([`crate::timestamp`]).
pub fn next_run(schedule: &str, timezone: Option<&str>) -> Result<String, ScheduleError> {
    let next = Schedule::parse(schedule, timezone)?.next_after(Utc::now())?;
    Ok(crate::timestamp::format(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn next(schedule: &str, timezone: Option<&str>, after: &str) -> String {
        Schedule::parse(schedule, timezone)
            .unwrap()
            .next_after(at(after))
            .unwrap()
            .to_rfc3339()
    }

    #[test]
    fn without_a_timezone_the_schedule_is_utc() {
        assert_eq!(
            next("0 9 * * *", None, "2026-07-01T10:00:00Z"),
            "2026-07-02T09:00:00+00:00"
        );
    }

    #[test]
    fn a_timezone_moves_the_firing_with_daylight_saving() {
        // New York is UTC-4 in July and UTC-5 in January.
        assert_eq!(
            next(
                "0 9 * * *",
                Some("America/New_York"),
                "2026-07-01T10:00:00Z"
            ),
            "2026-07-01T13:00:00+00:00"
        );
        assert_eq!(
            next(
                "0 9 * * *",
                Some("America/New_York"),
                "2026-01-15T10:00:00Z"
            ),
            "2026-01-15T14:00:00+00:00"
        );
        // Half-hour offsets too: Kolkata is UTC+5:30.
        assert_eq!(
            next("0 9 * * *", Some("Asia/Kolkata"), "2026-07-01T00:00:00Z"),
            "2026-07-01T03:30:00+00:00"
        );
    }

    #[test]
    fn the_next_firing_is_strictly_after() {
        assert_eq!(
            next("*/15 * * * *", Some("Europe/Paris"), "2026-03-10T08:15:00Z"),
            "2026-03-10T08:30:00+00:00"
        );
    }

    #[test]
    fn bad_schedules_and_timezones_have_the_reference_messages() {
        let error = Schedule::parse("0 9 * *", None).unwrap_err().to_string();
        assert_eq!(
            error,
            "Invalid cron schedule: '0 9 * *'. Expected 5 fields: minute hour day month weekday"
        );
        assert!(Schedule::parse("0 99 * * *", None).is_err());
        let error = Schedule::parse("0 9 * * *", Some("Mars/Olympus_Mons"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "Invalid timezone: 'Mars/Olympus_Mons'. Use IANA timezone format (e.g. 'America/New_York')."
        );
        // Names are case-sensitive, as Python's zoneinfo reads them on Linux.
        assert!(timezone("america/new_york").is_err());
        assert!(timezone("UTC").is_ok());
    }
}
