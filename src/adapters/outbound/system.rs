//! The real clock and id source.

use chrono::{DateTime, SubsecRound, Utc};

use crate::domain::UserId;
use crate::ports::{Clock, IdGenerator};

/// The system's UTC clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Now, to the microsecond: the precision the file and the API carry, so a timestamp a
    /// client read compares equal to the one held in memory.
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// Random UUID v4 ids.
#[derive(Clone, Copy, Debug, Default)]
pub struct UuidV4Generator;

impl IdGenerator for UuidV4Generator {
    fn next_id(&self) -> UserId {
        UserId::new(uuid::Uuid::new_v4().to_string())
    }
}
