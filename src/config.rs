//! Daemon configuration.

use std::time::Duration;

use crate::{CodeBudget, Error, Subsystem};

/// What the daemon checks and how often.
///
/// ```
/// use std::time::Duration;
/// use fdir::{Config, Subsystem};
/// let config = Config::default()
///     .interval(Duration::from_secs(30))
///     .subsystems([Subsystem::MemoryMaps, Subsystem::Seccomp, Subsystem::Cgroups]);
/// assert_eq!(config.confirm, 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Time between checks. Default 30 s.
    pub interval: Duration,
    /// The subsystems checked, sorted, without duplicates. Default: the seed's
    /// three ([`Subsystem::SEED`]).
    pub subsystems: Vec<Subsystem>,
    /// How many consecutive reads must show a drift before it is declared.
    /// Default 2: a drift is re-read at once before it is declared, so a
    /// transient read glitch never reaches the handler.
    pub confirm: u32,
    /// Bytes of code each check reads (the `code` subsystem), resuming where
    /// the last check stopped. Default [`CodeBudget::DEFAULT`] (4 MiB).
    pub code_budget: CodeBudget,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            interval: Duration::from_secs(30),
            subsystems: Subsystem::SEED.to_vec(),
            confirm: 2,
            code_budget: CodeBudget::DEFAULT,
        }
    }
}

impl Config {
    /// Sets the time between checks.
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Config {
        self.interval = interval;
        self
    }

    /// Sets the subsystems checked.
    #[must_use]
    pub fn subsystems(mut self, subsystems: impl IntoIterator<Item = Subsystem>) -> Config {
        let mut v: Vec<Subsystem> = subsystems.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        self.subsystems = v;
        self
    }

    /// Sets how many consecutive reads confirm a drift (at least 1).
    #[must_use]
    pub fn confirm(mut self, reads: u32) -> Config {
        self.confirm = reads;
        self
    }

    /// Sets how many bytes of code each check reads ([`CodeBudget::UNLIMITED`]:
    /// all of it, every check).
    #[must_use]
    pub fn code_budget(mut self, budget: CodeBudget) -> Config {
        self.code_budget = budget;
        self
    }

    /// Checks the values can be used.
    pub fn validate(&self) -> Result<(), Error> {
        if self.interval.is_zero() {
            return Err(Error::Config("the interval must be longer than zero".into()));
        }
        if self.subsystems.is_empty() {
            return Err(Error::Config("no subsystems to check".into()));
        }
        if self.confirm == 0 {
            return Err(Error::Config("confirm must be at least 1 read".into()));
        }
        Ok(())
    }
}
