//! What one subsystem of a snapshot holds ([`Observation`]): its canonical
//! records and their digest, or why it could not be read, or why the target
//! does not have it. Below the snapshot and the observer, which both speak it.

use serde::{Deserialize, Serialize};

use crate::{Digest, canon};

/// The state of one subsystem in a snapshot.
///
/// In JSON, `"status"` is `"observed"`, `"unobservable"` or `"not-applicable"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Observation {
    /// Read and canonicalized.
    Observed {
        /// SHA-256 of the canonical records.
        digest: Digest,
        /// The canonical records, kept so drift can be explained later, on
        /// another machine if need be.
        records: canon::Records,
    },
    /// Could not be read; not drift, but reported.
    Unobservable {
        /// Why, naming the file.
        reason: String,
    },
    /// The target does not have this structure: no security module labels
    /// processes on this node (`lsm`), or the subsystem is of the other scope
    /// (`kernel` of a process). A state, not a failure: never drift while it
    /// lasts, reported as such.
    NotApplicable {
        /// Why.
        reason: String,
    },
}

/// Read field by field into typed slots, the variant chosen by `status` at
/// the end: the derived form of an internally tagged enum buffers every
/// value first and decodes it twice, a third of the time to load a baseline
/// of many processes. Unknown fields are skipped, as the derived form does;
/// a field the variant needs is required, and a known field must be
/// well-formed wherever it stands.
impl Observation {
    /// The digest of the canonical records, if observed.
    pub fn digest(&self) -> Option<Digest> {
        match self {
            Observation::Observed { digest, .. } => Some(*digest),
            Observation::Unobservable { .. } | Observation::NotApplicable { .. } => None,
        }
    }
}

impl<'de> Deserialize<'de> for Observation {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "kebab-case")]
        enum Field {
            Status,
            Digest,
            Records,
            Reason,
            #[serde(other)]
            Other,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "kebab-case")]
        enum Status {
            Observed,
            Unobservable,
            NotApplicable,
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Observation;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an observation (a map with \"status\", or a digest)")
            }

            /// Version 2 of the baseline file writes an observed subsystem
            /// as its digest alone (`payload.rs` fills in the records).
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Observation, E> {
                let digest = v.parse::<crate::Digest>().map_err(|_| E::custom("a digest is 64 hex digits"))?;
                Ok(Observation::Observed { digest, records: canon::Records::default() })
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Observation, A::Error> {
                use serde::de::Error as _;
                let mut status = None;
                let mut digest = None;
                let mut records = None;
                let mut reason = None;
                while let Some(key) = map.next_key::<Field>()? {
                    match key {
                        Field::Status if status.is_some() => return Err(A::Error::duplicate_field("status")),
                        Field::Status => status = Some(map.next_value::<Status>()?),
                        Field::Digest if digest.is_some() => return Err(A::Error::duplicate_field("digest")),
                        Field::Digest => digest = Some(map.next_value::<crate::Digest>()?),
                        Field::Records if records.is_some() => return Err(A::Error::duplicate_field("records")),
                        Field::Records => records = Some(map.next_value::<canon::Records>()?),
                        Field::Reason if reason.is_some() => return Err(A::Error::duplicate_field("reason")),
                        Field::Reason => reason = Some(map.next_value::<String>()?),
                        Field::Other => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                match status.ok_or_else(|| A::Error::missing_field("status"))? {
                    Status::Observed => Ok(Observation::Observed {
                        digest: digest.ok_or_else(|| A::Error::missing_field("digest"))?,
                        // Version 2 of the baseline file names records by
                        // digest (`payload.rs` fills them in); version 1
                        // checks them against the digest, so absent records
                        // pass only where the form is the empty one.
                        records: records.unwrap_or_default(),
                    }),
                    Status::Unobservable => Ok(Observation::Unobservable {
                        reason: reason.ok_or_else(|| A::Error::missing_field("reason"))?,
                    }),
                    Status::NotApplicable => Ok(Observation::NotApplicable {
                        reason: reason.ok_or_else(|| A::Error::missing_field("reason"))?,
                    }),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}
