//! Shared fixtures for use-case tests: a fixed clock, sequential ids, and a mock
//! repository that applies changes to an in-memory [`UserSet`] so rules run for real.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};

use crate::domain::user::stored_users;
use crate::domain::{UserId, UserSet};
use crate::ports::{MockClock, MockIdGenerator, MockUserRepository, UserRepository};

pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap()
}

pub fn fixed_clock() -> Arc<MockClock> {
    let mut clock = MockClock::new();
    clock.expect_now().returning(start);
    Arc::new(clock)
}

pub fn sequential_ids() -> Arc<MockIdGenerator> {
    let counter = Mutex::new(0);
    let mut ids = MockIdGenerator::new();
    ids.expect_next_id().returning(move || {
        let mut n = counter.lock().unwrap();
        *n += 1;
        UserId::new(format!("id-{n}"))
    });
    Arc::new(ids)
}

/// A mock repository over a shared in-memory set of `(id, name, email)` users.
pub fn in_memory_repo(users: &[(&str, &str, &str)]) -> (Arc<dyn UserRepository>, Arc<Mutex<UserSet>>) {
    let mut set = UserSet::new(stored_users(users));
    set.index();
    let set = Arc::new(Mutex::new(set));
    let mut repo = MockUserRepository::new();
    let for_apply = Arc::clone(&set);
    repo.expect_apply()
        .returning(move |change| Ok(for_apply.lock().unwrap().apply(change)));
    let for_snapshot = Arc::clone(&set);
    repo.expect_snapshot()
        .returning(move || Ok(Arc::new(for_snapshot.lock().unwrap().snapshot())));
    (Arc::new(repo), set)
}
