//! Serde forms of times: RFC 3339 for calendar times, integers for durations.

/// `SystemTime` as an RFC 3339 string with nanoseconds, UTC.
pub mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    /// The last second RFC 3339 can write (9999-12-31T23:59:59Z).
    const LAST: u64 = 253_402_300_799;

    /// Serializes as RFC 3339; a time before 1970 or after 9999 (which the
    /// format cannot hold: a corrupted one) is an error, not a panic.
    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) if d.as_secs() <= LAST => s.collect_str(&humantime::format_rfc3339_nanos(*t)),
            _ => Err(serde::ser::Error::custom("a time outside the years 1970 to 9999")),
        }
    }

    /// Parses RFC 3339.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

/// `Duration` as whole milliseconds.
pub mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as milliseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Parses milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// `Duration` as whole microseconds.
pub mod micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as microseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    /// Parses microseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_micros)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    #[derive(serde::Serialize)]
    struct At(#[serde(with = "super::rfc3339")] SystemTime);

    #[test]
    fn a_time_rfc_3339_cannot_hold_is_an_error_not_a_panic() {
        let epoch = SystemTime::UNIX_EPOCH;
        assert_eq!(serde_json::to_string(&At(epoch)).unwrap(), "\"1970-01-01T00:00:00.000000000Z\"");
        let last = epoch + Duration::from_secs(253_402_300_799);
        assert_eq!(serde_json::to_string(&At(last)).unwrap(), "\"9999-12-31T23:59:59.000000000Z\"");
        assert!(serde_json::to_string(&At(last + Duration::from_secs(1))).is_err());
        assert!(serde_json::to_string(&At(epoch + Duration::from_secs(1 << 62))).is_err());
        assert!(serde_json::to_string(&At(epoch - Duration::from_secs(1))).is_err());
    }
}
