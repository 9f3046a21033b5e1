//! One replica's copy of the `users` table, kept current change by change.
//!
//! Changes arrive from two places: the notification stream (every committed change, in
//! commit order, whoever made it) and this replica's own commits, applied as soon as they
//! commit so that a client reads its own write at once. The same change can therefore
//! arrive twice, and an own commit can overtake an older change still in the stream. Three
//! rules make every order come out right, with each user's event published exactly once:
//!
//! - a row is replaced only by a higher `revision` (the database sets it on every write,
//!   and writes to one row are serialised by its lock, so higher means later);
//! - a row this replica deleted leaves a tombstone until the stream passes its own
//!   notification, so an older change still in flight cannot bring it back;
//! - after a full read, notifications of transactions that read already saw are skipped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::rows::{RowChange, StoredRow, XidSnapshot};
use crate::domain::user_set::Position;
use crate::domain::{User, UserEvent, UserEventKind, UserId, UserSet, UserSnapshot, events};

/// How many of the stream's recent transactions are remembered, to recognise an own commit
/// whose notification arrived before the commit itself was handed over.
const RECENT: usize = 4096;

/// Counts that a full table scan can be compared with: the number of rows and the sum of
/// their revisions (any insert, update or delete moves one of them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub rows: i64,
    pub revisions: i128,
}

/// The replica's users and the bookkeeping that orders changes to them.
///
/// The users live in a persistent [`UserSet`] (by position, the table's `position`
/// column), so applying a row costs O(log n) and publishing a snapshot O(1); each row's
/// revision is kept beside it by position.
#[derive(Default)]
pub struct Replica {
    users: UserSet,
    revisions: HashMap<Position, i64>,
    tombstones: HashMap<UserId, (i64, u64)>,
    /// Own transactions applied ahead of their notification.
    ahead: HashSet<u64>,
    recent: VecDeque<u64>,
    recent_set: HashSet<u64>,
    /// What the last full read saw.
    horizon: Option<XidSnapshot>,
    totals: Totals,
    /// While a consistency check runs: each applied change's transaction and effect.
    journal: Option<Vec<(u64, Totals)>>,
    /// Moves on every change, so the owner knows when there is something to publish.
    version: u64,
}

impl Replica {
    /// Replaces everything with `rows`, read under `snapshot`. Returns the events that
    /// turn the previous contents into the new ones, when `announce` asks for them.
    pub fn reset(
        &mut self,
        rows: Vec<StoredRow>,
        snapshot: XidSnapshot,
        at: DateTime<Utc>,
        announce: bool,
    ) -> Vec<UserEvent> {
        let before = self.snapshot();
        let version = self.version + 1;
        *self = Self {
            version,
            ..Self::default()
        };
        self.revisions.reserve(rows.len());
        let mut users = Vec::with_capacity(rows.len());
        for row in rows {
            self.totals.rows += 1;
            self.totals.revisions += i128::from(row.revision);
            self.revisions.insert(row.position, row.revision);
            users.push((row.position, row.user));
        }
        self.users = UserSet::at_positions(users);
        self.horizon = Some(snapshot);
        // Comparing costs O(users): only worth it when someone listens.
        if announce {
            events::diff(&before, &self.snapshot(), at)
        } else {
            Vec::new()
        }
    }

    /// Whether a notification from transaction `tx` can still change anything.
    pub fn wants(&self, tx: u64) -> bool {
        !self.horizon.as_ref().is_some_and(|seen| seen.sees(tx)) && !self.ahead.contains(&tx)
    }

    /// Applies the changes a notification of transaction `tx` carries.
    pub fn apply_notified(&mut self, tx: u64, changes: Vec<RowChange>, at: DateTime<Utc>) -> Vec<UserEvent> {
        if self.horizon.as_ref().is_some_and(|seen| seen.sees(tx)) {
            return Vec::new();
        }
        if self.recent_set.insert(tx) {
            self.recent.push_back(tx);
            if self.recent.len() > RECENT
                && let Some(old) = self.recent.pop_front()
            {
                self.recent_set.remove(&old);
            }
        }
        if self.ahead.remove(&tx) {
            // Every change committed before this one has arrived by now, so nothing older
            // can bring back what this transaction deleted. (Its further notifications,
            // if any, change nothing: their revisions are already held.)
            self.tombstones.retain(|_, (_, by)| *by != tx);
            return Vec::new();
        }
        self.apply_all(tx, changes, at)
    }

    /// Applies a transaction this replica just committed, ahead of its notification.
    pub fn apply_own_commit(
        &mut self,
        tx: u64,
        changes: Vec<RowChange>,
        at: DateTime<Utc>,
    ) -> Vec<UserEvent> {
        if self.recent_set.contains(&tx) || self.horizon.as_ref().is_some_and(|seen| seen.sees(tx)) {
            return Vec::new();
        }
        self.ahead.insert(tx);
        for change in &changes {
            if let RowChange::Delete { id, revision } = change {
                self.tombstones.insert(id.clone(), (*revision, tx));
            }
        }
        self.apply_all(tx, changes, at)
    }

    fn apply_all(&mut self, tx: u64, changes: Vec<RowChange>, at: DateTime<Utc>) -> Vec<UserEvent> {
        let mut events = Vec::new();
        for change in changes {
            let (effect, event) = self.apply(change, at);
            if effect != Totals::default() {
                self.version += 1;
                self.totals.rows += effect.rows;
                self.totals.revisions += effect.revisions;
                if let Some(journal) = &mut self.journal {
                    journal.push((tx, effect));
                }
            }
            events.extend(event);
        }
        events
    }

    /// The position and revision of the row with `id`, if the replica holds it.
    fn held(&self, id: &UserId) -> Option<(Position, i64)> {
        let position = self.users.entry(id)?.position();
        Some((
            position,
            self.revisions.get(&position).copied().unwrap_or_default(),
        ))
    }

    fn apply(&mut self, change: RowChange, at: DateTime<Utc>) -> (Totals, Option<UserEvent>) {
        let event = |kind, user: &Arc<User>| UserEvent {
            kind,
            user: Arc::clone(user),
            at,
            revision: 0,
        };
        match change {
            RowChange::Upsert(row) => {
                let id = row.user.id();
                let buried = self
                    .tombstones
                    .get(id)
                    .is_some_and(|(revision, _)| *revision >= row.revision);
                let held = self.held(id);
                if buried || held.is_some_and(|(_, revision)| revision >= row.revision) {
                    return (Totals::default(), None);
                }
                // A row moved by hand (its position changed) leaves its old place first.
                let before = match held {
                    Some((position, _)) if position != row.position => {
                        self.revisions.remove(&position);
                        self.users.take(position)
                    }
                    _ => None,
                };
                let before = before.or(self.users.put(row.position, Arc::clone(&row.user)));
                self.revisions.insert(row.position, row.revision);
                let effect = Totals {
                    rows: i64::from(held.is_none()),
                    revisions: i128::from(row.revision)
                        - held.map_or(0, |(_, revision)| i128::from(revision)),
                };
                let kind = match before {
                    None => Some(UserEventKind::Created),
                    Some(before) if *before == *row.user => None,
                    Some(_) => Some(UserEventKind::Updated),
                };
                (effect, kind.map(|kind| event(kind, &row.user)))
            }
            RowChange::Delete { id, revision } => {
                let Some((position, held)) = self.held(&id).filter(|(_, held)| *held <= revision) else {
                    return (Totals::default(), None);
                };
                self.revisions.remove(&position);
                let effect = Totals {
                    rows: -1,
                    revisions: -i128::from(held),
                };
                let gone = self.users.take(position);
                (effect, gone.map(|user| event(UserEventKind::Deleted, &user)))
            }
        }
    }

    /// Whether the users' indexes are built (a full read leaves them to be built).
    pub fn is_indexed(&self) -> bool {
        self.users.is_indexed()
    }

    /// The users as they are now (to index elsewhere: the copy is O(1)).
    pub fn users(&self) -> &UserSet {
        &self.users
    }

    /// Takes `indexed`, the same users with their indexes built, in place of the set.
    pub fn set_indexed(&mut self, indexed: UserSet) {
        debug_assert_eq!(indexed.len(), self.users.len());
        self.users = indexed;
        self.version += 1;
    }

    /// The users in list order, marked with the replica's version: O(1), sharing the set.
    pub fn snapshot(&self) -> UserSnapshot {
        self.users.snapshot().at_revision(self.version)
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// A number that changes whenever the contents do.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Starts recording applied changes, for [`Replica::totals_as_of`].
    pub fn start_journal(&mut self) {
        self.journal = Some(Vec::new());
    }

    /// The totals as they were for a reader with `snapshot`, taken after
    /// [`Replica::start_journal`], once every change it saw has arrived: the current totals
    /// without the changes of transactions it did not see. `None` when a full read
    /// replaced the journal meanwhile.
    pub fn totals_as_of(&mut self, snapshot: &XidSnapshot) -> Option<Totals> {
        let journal = self.journal.take()?;
        let mut totals = self.totals;
        for (tx, effect) in journal {
            if !snapshot.sees(tx) {
                totals.rows -= effect.rows;
                totals.revisions -= effect.revisions;
            }
        }
        Some(totals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, name: &str, position: i64, revision: i64) -> RowChange {
        RowChange::Upsert(StoredRow {
            user: Arc::new(User::restore(
                UserId::new(id),
                name.into(),
                format!("{id}@x.com"),
                None,
                None,
            )),
            position,
            revision,
        })
    }

    fn delete(id: &str, revision: i64) -> RowChange {
        RowChange::Delete {
            id: UserId::new(id),
            revision,
        }
    }

    fn kinds(events: &[UserEvent]) -> Vec<(UserEventKind, String)> {
        events
            .iter()
            .map(|e| (e.kind, e.user.name().to_owned()))
            .collect()
    }

    fn names(replica: &Replica) -> Vec<String> {
        replica.snapshot().users().map(|u| u.name().to_owned()).collect()
    }

    #[test]
    fn an_own_commit_is_announced_once_whichever_copy_arrives_first() {
        let now = Utc::now();
        let mut replica = Replica::default();
        let first = replica.apply_own_commit(7, vec![row("a", "Ann", 1, 10)], now);
        assert_eq!(kinds(&first), [(UserEventKind::Created, "Ann".into())]);
        assert!(
            replica
                .apply_notified(7, vec![row("a", "Ann", 1, 10)], now)
                .is_empty()
        );

        let streamed = replica.apply_notified(8, vec![row("b", "Bob", 2, 11)], now);
        assert_eq!(kinds(&streamed), [(UserEventKind::Created, "Bob".into())]);
        assert!(
            replica
                .apply_own_commit(8, vec![row("b", "Bob", 2, 11)], now)
                .is_empty()
        );
        assert_eq!(names(&replica), ["Ann", "Bob"]);
    }

    #[test]
    fn an_older_change_still_in_the_stream_does_not_undo_a_newer_own_commit() {
        let now = Utc::now();
        let mut replica = Replica::default();
        replica.apply_notified(1, vec![row("a", "Ann", 1, 10)], now);
        replica.apply_own_commit(3, vec![row("a", "Ann 3", 1, 12)], now);
        assert!(
            replica
                .apply_notified(2, vec![row("a", "Ann 2", 1, 11)], now)
                .is_empty()
        );
        assert_eq!(names(&replica), ["Ann 3"]);

        replica.apply_own_commit(5, vec![delete("a", 12)], now);
        assert!(
            replica
                .apply_notified(4, vec![row("a", "Ann 4", 1, 12)], now)
                .is_empty(),
            "the tombstone keeps a deleted user deleted"
        );
        assert!(names(&replica).is_empty());
        replica.apply_notified(5, vec![delete("a", 12)], now);
        let again = replica.apply_notified(6, vec![row("a", "Ann again", 9, 20)], now);
        assert_eq!(kinds(&again), [(UserEventKind::Created, "Ann again".into())]);
    }

    #[test]
    fn updates_deletes_and_unchanged_rows_give_the_right_events() {
        let now = Utc::now();
        let mut replica = Replica::default();
        replica.apply_notified(1, vec![row("a", "Ann", 2, 1), row("b", "Bob", 1, 2)], now);
        assert_eq!(names(&replica), ["Bob", "Ann"], "listed by position");
        let renamed = replica.apply_notified(2, vec![row("a", "Anna", 2, 3)], now);
        assert_eq!(kinds(&renamed), [(UserEventKind::Updated, "Anna".into())]);
        assert!(
            replica
                .apply_notified(3, vec![row("a", "Anna", 2, 4)], now)
                .is_empty(),
            "a write that changed no field the API shows is not an event"
        );
        let gone = replica.apply_notified(4, vec![delete("b", 2)], now);
        assert_eq!(kinds(&gone), [(UserEventKind::Deleted, "Bob".into())]);
        assert!(replica.apply_notified(5, vec![delete("b", 2)], now).is_empty());
    }

    #[test]
    fn a_full_read_skips_notifications_it_already_saw_and_reports_the_difference() {
        let now = Utc::now();
        let mut replica = Replica::default();
        replica.apply_notified(1, vec![row("a", "Ann", 1, 1), row("b", "Bob", 2, 2)], now);
        let events = replica.reset(
            vec![stored("a", "Ann", 1, 1), stored("c", "Cy", 3, 5)],
            XidSnapshot::parse("10:12:11").unwrap(),
            now,
            true,
        );
        assert_eq!(
            kinds(&events),
            [
                (UserEventKind::Created, "Cy".into()),
                (UserEventKind::Deleted, "Bob".into())
            ]
        );
        assert!(
            replica
                .apply_notified(9, vec![row("c", "Cy", 3, 5)], now)
                .is_empty()
        );
        assert!(!replica.wants(9));
        assert!(replica.wants(11), "transaction 11 was still running");
        let late = replica.apply_notified(11, vec![row("d", "Di", 4, 6)], now);
        assert_eq!(kinds(&late), [(UserEventKind::Created, "Di".into())]);
    }

    #[test]
    fn totals_as_of_a_snapshot_leave_out_what_it_did_not_see() {
        let now = Utc::now();
        let mut replica = Replica::default();
        replica.apply_notified(1, vec![row("a", "Ann", 1, 3)], now);
        replica.start_journal();
        replica.apply_notified(2, vec![row("b", "Bob", 2, 4)], now);
        replica.apply_own_commit(5, vec![row("a", "Ann", 1, 9)], now);
        let seen = XidSnapshot::parse("3:6:5").unwrap();
        assert_eq!(
            replica.totals_as_of(&seen),
            Some(Totals {
                rows: 2,
                revisions: 7
            })
        );
        assert_eq!(replica.totals_as_of(&seen), None, "the journal is used once");
    }

    fn stored(id: &str, name: &str, position: i64, revision: i64) -> StoredRow {
        match row(id, name, position, revision) {
            RowChange::Upsert(row) => row,
            RowChange::Delete { .. } => unreachable!(),
        }
    }
}
