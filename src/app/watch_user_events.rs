//! WatchUserEvents: a live feed of user changes, optionally only some kinds.

use std::sync::Arc;

use tokio::sync::broadcast::{Receiver, error::RecvError};

use crate::domain::{UserEvent, UserEventKind};
use crate::ports::UserRepository;

/// Why a feed ended early.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The subscriber did not keep up; writers never wait for it, so it is dropped.
    #[error("subscriber fell {0} events behind")]
    Lagged(u64),
}

/// One subscriber's feed.
pub struct EventFeed {
    events: Receiver<UserEvent>,
    kinds: Option<Vec<UserEventKind>>,
}

impl EventFeed {
    /// The next event of a wanted kind; `None` when the store shuts down. After a
    /// [`FeedError`], the feed is over.
    pub async fn next(&mut self) -> Option<Result<UserEvent, FeedError>> {
        loop {
            match self.events.recv().await {
                Ok(event)
                    if self
                        .kinds
                        .as_ref()
                        .is_none_or(|kinds| kinds.contains(&event.kind)) =>
                {
                    return Some(Ok(event));
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => return Some(Err(FeedError::Lagged(missed))),
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

#[derive(Clone)]
pub struct WatchUserEvents {
    repo: Arc<dyn UserRepository>,
}

impl WatchUserEvents {
    pub fn new(repo: Arc<dyn UserRepository>) -> Self {
        Self { repo }
    }

    /// Starts a feed of events from now on; `kinds` (when given and not empty) keeps only those.
    pub fn execute(&self, kinds: Option<Vec<UserEventKind>>) -> EventFeed {
        EventFeed {
            events: self.repo.subscribe(),
            kinds: kinds.filter(|kinds| !kinds.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use tokio::sync::broadcast;

    use super::*;
    use crate::domain::{User, UserId};
    use crate::ports::MockUserRepository;

    fn event(kind: UserEventKind) -> UserEvent {
        UserEvent {
            kind,
            user: Arc::new(User::restore(
                UserId::new("a"),
                "A".into(),
                "a@x".into(),
                None,
                None,
            )),
            at: Utc::now(),
            revision: 0,
        }
    }

    #[tokio::test]
    async fn a_feed_keeps_the_wanted_kinds_and_reports_falling_behind() {
        let (sender, _) = broadcast::channel(2);
        let for_mock = sender.clone();
        let mut repo = MockUserRepository::new();
        repo.expect_subscribe().returning(move || for_mock.subscribe());
        let watch = WatchUserEvents::new(Arc::new(repo));
        let mut deletions = watch.execute(Some(vec![UserEventKind::Deleted]));
        sender.send(event(UserEventKind::Created)).unwrap();
        sender.send(event(UserEventKind::Deleted)).unwrap();
        assert_eq!(
            deletions.next().await.unwrap().unwrap().kind,
            UserEventKind::Deleted
        );

        let mut slow = watch.execute(None);
        for _ in 0..5 {
            sender.send(event(UserEventKind::Updated)).unwrap();
        }
        assert_eq!(slow.next().await.unwrap(), Err(FeedError::Lagged(3)));
    }
}
