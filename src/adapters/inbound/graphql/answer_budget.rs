//! The answer budget (docs/src/http.md, Answers within a memory budget): a bound on the bytes
//! of answers the process holds at once, being built or waiting to be written.
//!
//! An answer's size is known before it runs, roughly: the cost measure (`cost`) counts the
//! values it can hold, and each value costs about [`BYTES_PER_VALUE`] while the answer is a
//! tree of values and then JSON text. Before execution the gate reserves that estimate from
//! one weighted semaphore per process (one permit a KiB; an answer's first [`FREE_BYTES`]
//! take none, so small answers never touch it). Past the budget an operation waits, parked,
//! for at most the queue timeout, then is refused `OVERLOADED`; one whose estimate alone is
//! over the whole budget is refused `ANSWER_TOO_LARGE` at once.
//!
//! The estimate assumes texts of ordinary length. While resolving, a text longer than
//! [`INLINE_TEXT_BYTES`] (a user's id, name or email: see `types`) charges what it has beyond
//! that, twice (the tree holds it, then the JSON text), to the answer's [`AnswerTicket`]; an
//! answer that outgrows what it holds reserves more without waiting, up to its bound
//! ([`answer_bound`]: four times its estimate, at least 1 MiB, at most the budget). Past the
//! bound it is stopped `ANSWER_TOO_LARGE`; when the budget has no room, `OVERLOADED`.
//!
//! The transport keeps the reservation ([`Reservation`]) until the answer is written: over
//! HTTP the response body holds it and gives it back as its bytes go out, or all at once when
//! the connection drops.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::{Context, Error, ServerError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::errors::ErrorCode;

/// What one value of an answer costs in memory, in bytes, from its tree of values to its
/// JSON text. Measured at 100,000 seeded users: `allUsers { id name email createdAt
/// updatedAt }` (600,000 values) peaked about 90 MB above the idle process.
pub const BYTES_PER_VALUE: u64 = 160;
/// The part of an answer that takes nothing from the budget: an answer estimated below it
/// never waits.
pub const FREE_BYTES: u64 = 64 * 1024;
/// How long a text may be before its bytes are charged on top of the estimate.
pub const INLINE_TEXT_BYTES: usize = 48;
/// The least an answer may grow to, whatever its estimate (within the budget).
pub const MIN_ANSWER_BOUND: u64 = 1024 * 1024;
/// How many times its estimate an answer may grow to.
pub const GROWTH: u64 = 4;
/// The budget when no flag sets it, in MiB.
pub const DEFAULT_MAX_ANSWER_MIB: u32 = 256;
/// How long an operation waits for room when no flag sets it.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// The `Retry-After` of an `OVERLOADED` answer over HTTP, in seconds.
pub const RETRY_AFTER_SECONDS: u64 = 2;

/// Bytes per permit.
const UNIT: u64 = 1024;
/// The least an answer grows its reservation by at once, so long texts take the lock rarely.
const GROW_STEP: u64 = 64 * 1024;

const IN_USE: &str = "roster_answer_memory_reserved_bytes";
const WAITING: &str = "roster_answer_memory_waiting";

/// The budget's size and how long an operation may wait for room in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerBudgetSettings {
    pub max_bytes: u64,
    pub queue_timeout: Duration,
}

impl Default for AnswerBudgetSettings {
    fn default() -> Self {
        Self {
            max_bytes: u64::from(DEFAULT_MAX_ANSWER_MIB) * 1024 * 1024,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
        }
    }
}

/// The permits of every answer, one a KiB, shared by the whole process.
#[derive(Clone)]
pub struct AnswerBudget {
    permits: Arc<Semaphore>,
    total: u64,
    settings: AnswerBudgetSettings,
}

/// The permits `bytes` of answer take: none for its first [`FREE_BYTES`], then one per KiB
/// begun.
pub fn permits_for(bytes: u64) -> u64 {
    bytes.saturating_sub(FREE_BYTES).div_ceil(UNIT)
}

/// The bytes an answer of `cost` values is expected to take.
pub fn estimate(cost: u64) -> u64 {
    cost.saturating_mul(BYTES_PER_VALUE)
}

/// How large an answer estimated at `estimate` bytes may grow in a budget of `max_bytes`.
pub fn answer_bound(estimate: u64, max_bytes: u64) -> u64 {
    estimate
        .saturating_mul(GROWTH)
        .max(MIN_ANSWER_BOUND)
        .min(max_bytes)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

impl AnswerBudget {
    /// A budget of `settings.max_bytes` (whole KiB, at least one).
    pub fn new(settings: AnswerBudgetSettings) -> Self {
        let total = (settings.max_bytes / UNIT).clamp(1, Semaphore::MAX_PERMITS as u64);
        metrics::describe_gauge!(
            IN_USE,
            "Bytes of answers reserved from the answer budget right now (being built or written)."
        );
        metrics::describe_gauge!(WAITING, "Operations waiting for room in the answer budget.");
        Self {
            permits: Arc::new(Semaphore::new(total as usize)),
            total,
            settings,
        }
    }

    /// Bytes reserved right now.
    pub fn reserved_bytes(&self) -> u64 {
        self.total.saturating_sub(self.permits.available_permits() as u64) * UNIT
    }

    fn publish(&self) {
        metrics::gauge!(IN_USE).set(self.reserved_bytes() as f64);
    }

    /// Refuses at once an operation whose answer could never fit.
    ///
    /// # Errors
    /// `ANSWER_TOO_LARGE` when the estimate for `cost` values is over the whole budget.
    pub fn admit(&self, cost: u64) -> Result<(), ServerError> {
        let estimate = estimate(cost);
        if estimate > self.settings.max_bytes {
            return Err(ErrorCode::AnswerTooLarge.server_error(format!(
                "The answer could hold {cost} values, about {} in memory; answers may hold at most \
                 {} at once (--max-answer-memory-mib). Use limit, first or fewer aliases.",
                mib(estimate),
                mib(self.settings.max_bytes)
            )));
        }
        Ok(())
    }

    /// Reserves the estimate of an answer of `cost` values for `ticket`, waiting (parked) for
    /// at most the queue timeout or `deadline`, whichever is shorter.
    ///
    /// # Errors
    /// `OVERLOADED` when no room came in time.
    pub async fn reserve(
        &self,
        ticket: &AnswerTicket,
        cost: u64,
        deadline: Duration,
    ) -> Result<(), ServerError> {
        let estimate = estimate(cost);
        let bound = answer_bound(estimate, self.settings.max_bytes);
        let need = permits_for(estimate).min(self.total);
        let permit = if need == 0 {
            None
        } else {
            let wait = self.settings.queue_timeout.min(deadline);
            let count = u32::try_from(need).unwrap_or(u32::MAX);
            let acquired = match Arc::clone(&self.permits).try_acquire_many_owned(count) {
                Ok(permit) => Ok(permit),
                Err(_) => {
                    metrics::gauge!(WAITING).increment(1.0);
                    let waited =
                        tokio::time::timeout(wait, Arc::clone(&self.permits).acquire_many_owned(count)).await;
                    metrics::gauge!(WAITING).decrement(1.0);
                    match waited {
                        Ok(Ok(permit)) => Ok(permit),
                        _ => Err(wait),
                    }
                }
            };
            match acquired {
                Ok(permit) => Some(permit),
                Err(waited) => {
                    return Err(ErrorCode::Overloaded.server_error(format!(
                        "Answers already fill the memory they may use (--max-answer-memory-mib, {}); \
                         this one (about {}) waited {} s for room. Try again shortly, or ask for less.",
                        mib(self.settings.max_bytes),
                        mib(estimate),
                        waited.as_secs_f64()
                    )));
                }
            }
        };
        ticket.start(self.clone(), estimate, bound, permit);
        self.publish();
        Ok(())
    }
}

/// What one operation's answer holds of the budget and has been charged: put in the request's
/// data by the transport (or the gate), filled by the gate, charged by the resolvers.
#[derive(Default)]
pub struct AnswerTicket {
    /// Bytes charged: the estimate, then what long texts add.
    used: AtomicU64,
    /// Up to where `used` may go with what is held; 0 until reserved.
    covered: AtomicU64,
    /// The most `used` may reach.
    bound: AtomicU64,
    /// Once refused, every further charge fails at once.
    refused: AtomicBool,
    held: Mutex<Option<Reservation>>,
}

impl AnswerTicket {
    fn start(&self, budget: AnswerBudget, estimate: u64, bound: u64, permit: Option<OwnedSemaphorePermit>) {
        let permits = permit.as_ref().map_or(0, |permit| permit.num_permits() as u64);
        self.used.store(estimate, Ordering::Relaxed);
        self.bound.store(bound, Ordering::Relaxed);
        self.covered.store(FREE_BYTES + permits * UNIT, Ordering::Relaxed);
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(Reservation { permit, budget });
    }

    /// The most bytes the answer may take, once reserved.
    pub fn bound(&self) -> Option<u64> {
        match self.bound.load(Ordering::Relaxed) {
            0 => None,
            bound => Some(bound),
        }
    }

    /// Charges `bytes` more to the answer, reserving more room when what it holds is used up.
    ///
    /// # Errors
    /// `ANSWER_TOO_LARGE` past the answer's bound; `OVERLOADED` when the budget has no room.
    pub fn charge(&self, bytes: u64) -> Result<(), Error> {
        let bound = self.bound.load(Ordering::Relaxed);
        if self.refused.load(Ordering::Relaxed) {
            return Err(too_large(self.used.load(Ordering::Relaxed), bound));
        }
        let used = self
            .used
            .fetch_add(bytes, Ordering::Relaxed)
            .saturating_add(bytes);
        if used <= self.covered.load(Ordering::Relaxed) || bound == 0 {
            return Ok(());
        }
        if used > bound {
            self.refused.store(true, Ordering::Relaxed);
            return Err(too_large(used, bound));
        }
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let Some(reservation) = held.as_mut() else {
            return Ok(());
        };
        if used <= self.covered.load(Ordering::Relaxed) {
            return Ok(());
        }
        let want = permits_for(used.saturating_add(GROW_STEP).min(bound));
        let more = want.saturating_sub(reservation.permits());
        let more = u32::try_from(more).unwrap_or(u32::MAX);
        match Arc::clone(&reservation.budget.permits).try_acquire_many_owned(more) {
            Ok(extra) => {
                match &mut reservation.permit {
                    Some(permit) => permit.merge(extra),
                    None => reservation.permit = Some(extra),
                }
                self.covered.store(FREE_BYTES + want * UNIT, Ordering::Relaxed);
                reservation.budget.publish();
                Ok(())
            }
            Err(_) => {
                self.refused.store(true, Ordering::Relaxed);
                Err(ErrorCode::Overloaded.error(format!(
                    "The answer grew past its estimate and the memory answers may use is taken \
                     (--max-answer-memory-mib, {}). Try again shortly, or ask for less.",
                    mib(reservation.budget.settings.max_bytes)
                )))
            }
        }
    }

    /// Whether the answer reserved anything: it is big enough to be worth moving off the
    /// runtime's workers.
    pub fn is_big(&self) -> bool {
        self.covered.load(Ordering::Relaxed) > FREE_BYTES
    }

    /// Hands the reservation to whoever writes the answer; the ticket charges nothing more.
    pub fn take(&self) -> Option<Reservation> {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

fn too_large(used: u64, bound: u64) -> Error {
    ErrorCode::AnswerTooLarge.error(format!(
        "The answer grew to more than {} (its values' texts are longer than the estimate \
         allows); one answer may take at most {}, four times its estimate and at most \
         --max-answer-memory-mib. Ask for fewer users or fields.",
        mib(used),
        mib(bound)
    ))
}

/// An answer's text, charged to the request's answer when longer than
/// [`INLINE_TEXT_BYTES`] (ordinary texts cost nothing but the length check).
///
/// # Errors
/// As [`AnswerTicket::charge`].
pub fn charge_text<'a>(ctx: &Context<'_>, text: &'a str) -> Result<&'a str, Error> {
    if text.len() > INLINE_TEXT_BYTES
        && let Some(ticket) = ctx.data_opt::<Arc<AnswerTicket>>()
    {
        let beyond = (text.len() - INLINE_TEXT_BYTES) as u64;
        ticket.charge(beyond.saturating_mul(2))?;
    }
    Ok(text)
}

/// Runs `work` (an operation's execution) where it cannot hold up the runtime: when `big`,
/// on a multi-threaded runtime, its thread hands its other tasks to another worker for the
/// time (a big answer is one long poll of hundreds of milliseconds, and two of them would
/// otherwise leave `/health` waiting behind them).
pub async fn off_the_workers<F: Future>(big: bool, work: F) -> F::Output {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if big && Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        tokio::task::block_in_place(|| Handle::current().block_on(work))
    } else {
        work.await
    }
}

/// Part of the budget held for one answer: given back when dropped, or in part as the answer
/// shrinks (its tree dropped once serialised, its bytes written).
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
    budget: AnswerBudget,
}

impl Reservation {
    fn permits(&self) -> u64 {
        self.permit
            .as_ref()
            .map_or(0, |permit| permit.num_permits() as u64)
    }

    /// Gives back all but what `bytes` of answer take.
    pub fn shrink_to(&mut self, bytes: u64) {
        let keep = permits_for(bytes);
        let Some(permit) = self.permit.as_mut() else {
            return;
        };
        let held = permit.num_permits() as u64;
        if keep >= held {
            return;
        }
        if keep == 0 {
            self.permit = None;
        } else {
            drop(permit.split((held - keep) as usize));
        }
        self.budget.publish();
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.permit.take().is_some() {
            self.budget.publish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(mib: u64) -> AnswerBudget {
        AnswerBudget::new(AnswerBudgetSettings {
            max_bytes: mib * 1024 * 1024,
            queue_timeout: Duration::from_millis(50),
        })
    }

    #[test]
    fn small_answers_take_no_permits_and_the_rest_whole_kib() {
        assert_eq!(permits_for(0), 0);
        assert_eq!(permits_for(FREE_BYTES), 0);
        assert_eq!(permits_for(FREE_BYTES + 1), 1);
        assert_eq!(permits_for(FREE_BYTES + 1024), 1);
        assert_eq!(permits_for(FREE_BYTES + 1025), 2);
        assert_eq!(estimate(600_000), 600_000 * BYTES_PER_VALUE);
        assert_eq!(estimate(u64::MAX), u64::MAX);
    }

    #[test]
    fn an_answer_may_grow_four_times_at_least_a_mebibyte_and_never_past_the_budget() {
        assert_eq!(answer_bound(100, 1 << 30), MIN_ANSWER_BOUND);
        assert_eq!(answer_bound(10 << 20, 1 << 30), 40 << 20);
        assert_eq!(answer_bound(10 << 20, 16 << 20), 16 << 20);
        assert_eq!(answer_bound(u64::MAX, 16 << 20), 16 << 20);
    }

    #[tokio::test]
    async fn reservations_past_the_budget_wait_then_are_refused_and_dropping_gives_back() {
        let budget = budget(8);
        // 40,000 values: about 6.1 MiB of an 8 MiB budget.
        let first = AnswerTicket::default();
        budget
            .reserve(&first, 40_000, Duration::from_secs(5))
            .await
            .unwrap();
        let reserved = budget.reserved_bytes();
        assert_eq!(reserved, permits_for(estimate(40_000)) * UNIT);
        let second = AnswerTicket::default();
        let refused = budget
            .reserve(&second, 40_000, Duration::from_secs(5))
            .await
            .unwrap_err();
        let code = refused
            .extensions
            .as_ref()
            .and_then(|ext| ext.get("code").cloned());
        assert_eq!(code, Some(async_graphql::Value::from("OVERLOADED")));
        // A small answer never waits.
        budget
            .reserve(&AnswerTicket::default(), 10, Duration::from_secs(5))
            .await
            .unwrap();
        let mut taken = first.take().unwrap();
        taken.shrink_to(FREE_BYTES + 10 * 1024);
        assert_eq!(budget.reserved_bytes(), 10 * 1024);
        drop(taken);
        assert_eq!(budget.reserved_bytes(), 0);
        budget
            .reserve(&second, 40_000, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(budget.admit(50_000).is_ok());
        assert!(budget.admit(60_000_000).is_err());
    }

    #[tokio::test]
    async fn long_texts_grow_the_reservation_up_to_the_bound_then_stop_the_answer() {
        let budget = budget(64);
        let ticket = AnswerTicket::default();
        budget.reserve(&ticket, 4, Duration::from_secs(5)).await.unwrap();
        assert_eq!(budget.reserved_bytes(), 0);
        ticket.charge(200 * 1024).unwrap();
        assert!(budget.reserved_bytes() >= 200 * 1024 - FREE_BYTES);
        let refused = ticket.charge(2 * 1024 * 1024).unwrap_err();
        assert!(refused.message.contains("at most 1.0 MiB"), "{}", refused.message);
        assert!(ticket.charge(1).is_err(), "a refused answer stays refused");
        drop(ticket.take());
        assert_eq!(budget.reserved_bytes(), 0);
    }
}
