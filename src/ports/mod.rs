//! The application's needs from the outside world, as traits.
//!
//! Ports depend only on the domain. Adapters implement them; use cases receive them as
//! `Arc<dyn ...>` so tests can swap in mockall mocks and a second storage adapter can be
//! added without touching the application.

pub mod clock;
pub mod repository;

pub use clock::{Clock, IdGenerator};
pub use repository::{
    ChangeJournal, NoJournal, RepositoryError, StorageHealth, UserRepository, change_source,
    with_change_source,
};

#[cfg(test)]
pub use clock::{MockClock, MockIdGenerator};
#[cfg(test)]
pub use repository::MockChangeJournal;
#[cfg(test)]
pub use repository::MockUserRepository;
