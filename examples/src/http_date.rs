//! The value of HTTP's `Date` header (RFC 9110 §5.6.7, the IMF-fixdate form,
//! e.g. `Sun, 06 Nov 1994 08:49:37 GMT`), which an origin server with a
//! clock must send with every 2xx, 3xx and 4xx response.
//!
//! [`DateCache`] formats it at most once a second: a server answering many
//! requests a second reads the clock once per response and formats only
//! when the second changed.

use std::cell::{Cell, RefCell};
use std::time::{SystemTime, UNIX_EPOCH};

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The IMF-fixdate of `secs` seconds after the Unix epoch (UTC).
pub fn http_date(secs: u64) -> String {
    let days = secs / 86_400;
    let in_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        // 1970-01-01 was a Thursday.
        WEEKDAYS[(days % 7) as usize],
        MONTHS[month as usize - 1],
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60,
    )
}

/// (year, month 1–12, day 1–31) of a day counted from 1970-01-01, in the
/// proleptic Gregorian calendar: the count is shifted to start on
/// 0000-03-01, so a leap day is the last day of its 400-year era's year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // 0 = March
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The current `Date` value, formatted again only when the second changes.
#[derive(Debug, Default)]
pub struct DateCache {
    second: Cell<Option<u64>>,
    value: RefCell<String>,
}

impl DateCache {
    /// Appends the current date to `out`.
    pub fn write_now(&self, out: &mut Vec<u8>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.second.get() != Some(now) {
            *self.value.borrow_mut() = http_date(now);
            self.second.set(Some(now));
        }
        out.extend_from_slice(self.value.borrow().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_known_to_the_rfcs_and_the_calendars_edges() {
        // RFC 9110's example.
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // A leap day, the day after, a century leap year's, a year's end.
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(951_868_800), "Wed, 01 Mar 2000 00:00:00 GMT");
        assert_eq!(http_date(1_709_164_800), "Thu, 29 Feb 2024 00:00:00 GMT");
        assert_eq!(http_date(1_767_225_599), "Wed, 31 Dec 2025 23:59:59 GMT");
        // 2100 is not a leap year: 28 February is followed by 1 March.
        assert_eq!(http_date(4_107_456_000), "Sun, 28 Feb 2100 00:00:00 GMT");
        assert_eq!(http_date(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
    }

    #[test]
    fn the_cache_writes_a_well_formed_current_date() {
        let cache = DateCache::default();
        let mut out = Vec::new();
        cache.write_now(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.len(), 29, "{text}");
        assert!(text.ends_with(" GMT"), "{text}");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        // Formatted from this second or the one before it.
        assert!(
            text == http_date(now) || text == http_date(now - 1),
            "{text}"
        );
    }
}
