//! Live events rendered once per selection and shared by every subscriber who asked for the
//! same thing (docs/src/http.md, WebSocket).
//!
//! Without this, each `userEvents` subscription resolves and serialises every event on its
//! own and wakes its socket on its own: at 25,500 subscribers an event cost a third of a
//! second of CPU. Here a WebSocket operation carries a [`ShareTicket`]: its request (query
//! text, variables, operation name) and the socket's credential, its key. It still passes
//! the request gate on its own (token, limits, validation, metrics: it runs through the
//! schema like any operation), and when the resolver is reached for a document whose
//! operation is that one `userEvents` field without `after`, the subscriber joins the one
//! [`SharedStream`] for its key instead of opening a feed of its own. That stream runs the
//! request once, over a schema without the pipeline (each subscriber passed it already), and
//! hands each event's answer, serialised once, to every socket holding subscribers of the
//! key: one delivery per socket per event, which the socket writes as one `next` frame per
//! operation id, flushed once.
//!
//! What stays per subscriber: its gate pass, its place in `roster_graphql_subscribers` and
//! its count in the request metrics when it ends, its end. A socket that falls more than
//! [`MAX_BEHIND`] events behind on a stream (it does not read) is dropped from it, and each of
//! its subscriptions there ends with `SUBSCRIPTION_LAGGED`, as a subscriber falling behind
//! the store's own buffer did; the others never wait for it. When the stream itself ends
//! (the store shut down, or the stream fell behind the store), every subscriber ends with it.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::futures_util::{StreamExt, stream};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection};
use async_graphql::{Context, Request, Result, Variables};
use tokio::sync::{mpsc, oneshot};

use super::access::Access;
use super::history::EventStream;
use super::messages;
use super::metrics::SubscriberGuard;
use super::operation::chosen;
use super::schema::RosterSchema;
use super::types::UserEventObject;
use crate::app::{AppServices, EventFeed, FeedError};
use crate::domain::UserEventKind;

/// How many events a socket may have waiting on one stream before it is dropped from it:
/// the stores' own event buffer, so a shared subscriber lags when a lone one would have.
pub const MAX_BEHIND: usize = 1024;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What subscribers must have in common to share a stream: the same request, word for
/// word, and the same credential.
#[derive(PartialEq, Eq)]
pub struct ShareKey {
    query: String,
    /// The variables as JSON (their order is the map's, so equal variables give equal text).
    variables_text: String,
    variables: Variables,
    operation_name: Option<String>,
    access: Access,
}

impl Hash for ShareKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.query.hash(state);
        self.variables_text.hash(state);
        self.operation_name.hash(state);
        (self.access as u8).hash(state);
    }
}

impl ShareKey {
    /// The key of `request` sent with `access`; `None` for a request that names its query
    /// only by a persisted hash (the gate alone knows its text).
    pub fn of(request: &Request, access: Access) -> Option<Self> {
        if request.query.is_empty() {
            return None;
        }
        Some(Self {
            query: request.query.clone(),
            variables_text: serde_json::to_string(&request.variables).ok()?,
            variables: request.variables.clone(),
            operation_name: request.operation_name.clone(),
            access,
        })
    }

    fn request(&self) -> Request {
        let mut request = Request::new(self.query.clone()).variables(self.variables.clone());
        if let Some(name) = &self.operation_name {
            request = request.operation_name(name.clone());
        }
        request
    }
}

/// One WebSocket operation's way into a shared stream, put in its request's data.
pub struct ShareTicket {
    socket: Arc<SocketShares>,
    key: Arc<ShareKey>,
    /// What each of its frames holds before the payload (`{"type":"next","id":…,"payload":`).
    head: String,
    /// The operation's id, for the log.
    operation_id: String,
    /// The document's chosen operation is a subscription of exactly one field.
    single_field: AtomicBool,
    /// The ticket was used: an operation joins once.
    used: AtomicBool,
}

impl ShareTicket {
    pub fn new(socket: Arc<SocketShares>, key: ShareKey, head: String, operation_id: &str) -> Self {
        Self {
            socket,
            key: Arc::new(key),
            head,
            operation_id: super::logging::loggable(operation_id),
            single_field: AtomicBool::new(false),
            used: AtomicBool::new(false),
        }
    }
}

/// Notes whether the document a ticketed request parsed to may share: only a subscription
/// whose operation selects one field (the resolver then runs once, for that field). Called
/// by the pipeline right after the gate parsed it.
pub fn note_document(ticket: Option<&Arc<ShareTicket>>, document: &ExecutableDocument) {
    let Some(ticket) = ticket else { return };
    let single = chosen(document, ticket.key.operation_name.as_deref()).is_some_and(|chosen| {
        let items = &chosen.operation.node.selection_set.node.items;
        chosen.ty() == OperationType::Subscription
            && items.len() == 1
            && matches!(items[0].node, Selection::Field(_))
    });
    ticket.single_field.store(single, Ordering::Relaxed);
}

/// The feed a shared stream's own run reads, and why it ended.
struct RenderFeed {
    feed: Mutex<Option<EventFeed>>,
    lagged: Mutex<Option<FeedError>>,
}

/// `userEvents` without `after`, when it can share: for a shared stream's own run, the feed
/// it was started with; for a ticketed subscriber, a place on the stream of its key. `None`:
/// the resolver opens a feed of its own.
pub fn user_events(ctx: &Context<'_>, kinds: Option<&[UserEventKind]>) -> Result<Option<EventStream>> {
    if let Some(render) = ctx.data_opt::<Arc<RenderFeed>>() {
        return Ok(Some(rendered(render)));
    }
    let Some(ticket) = ctx.data_opt::<Arc<ShareTicket>>() else {
        return Ok(None);
    };
    if !ticket.single_field.load(Ordering::Relaxed) || ticket.used.swap(true, Ordering::Relaxed) {
        return Ok(None);
    }
    let hub = ctx.data::<SharedEvents>()?;
    let services = ctx.data::<AppServices>()?;
    Ok(Some(hub.join(ticket, || {
        services.watch_user_events.execute(kinds.map(<[_]>::to_vec))
    })))
}

/// A shared stream's own run: the events of its feed; a feed that falls behind ends it,
/// noting why for its subscribers.
fn rendered(render: &Arc<RenderFeed>) -> EventStream {
    let Some(feed) = lock(&render.feed).take() else {
        return Box::pin(stream::empty());
    };
    let render = Arc::clone(render);
    Box::pin(stream::unfold(Some(feed), move |feed| {
        let render = Arc::clone(&render);
        async move {
            let mut feed = feed?;
            match feed.next().await? {
                Ok(event) => Some((Ok(UserEventObject(event)), Some(feed))),
                Err(lagged) => {
                    *lock(&render.lagged) = Some(lagged);
                    None
                }
            }
        }
    }))
}

/// What a shared stream sends a socket.
pub enum Delivery {
    /// An event's answer, serialised, for every subscriber of the socket's place `slot`;
    /// `waiting` counts it until it is taken in.
    Event {
        slot: u64,
        payload: Arc<str>,
        waiting: Arc<AtomicUsize>,
    },
    /// The place ended: its subscribers end, with this error when they fell behind.
    End { slot: u64, lagged: Option<FeedError> },
}

/// The subscribers one socket has on shared streams, by their place on each.
pub struct SocketShares {
    id: u64,
    deliveries: mpsc::UnboundedSender<Delivery>,
    places: Mutex<HashMap<u64, Place>>,
}

/// A socket's place on one stream: its subscribers there, with their frame heads end to end
/// in one string. An event reads every head of the place: kept together they are a few
/// cache lines, where a separate allocation each was a cache miss per subscriber.
#[derive(Default)]
struct Place {
    heads: String,
    members: Vec<Member>,
}

struct Member {
    seq: u64,
    /// Where its head ends in `heads` (it starts where the previous member's ends).
    head_end: usize,
    end: Option<oneshot::Sender<FeedError>>,
}

impl Place {
    fn join(&mut self, seq: u64, head: &str, end: oneshot::Sender<FeedError>) {
        self.heads.push_str(head);
        self.members.push(Member {
            seq,
            head_end: self.heads.len(),
            end: Some(end),
        });
    }

    /// Each member's head, in order.
    fn heads(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.members.iter().map(move |member| {
            let head = &self.heads[start..member.head_end];
            start = member.head_end;
            head
        })
    }

    fn leave(&mut self, seq: u64) {
        let Some(at) = self.members.iter().position(|member| member.seq == seq) else {
            return;
        };
        let start = at
            .checked_sub(1)
            .map_or(0, |before| self.members[before].head_end);
        let end = self.members[at].head_end;
        self.heads.replace_range(start..end, "");
        self.members.remove(at);
        for member in &mut self.members[at..] {
            member.head_end -= end - start;
        }
    }
}

impl SocketShares {
    /// A socket's shares and the receiver of what its streams send it.
    pub fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<Delivery>) {
        static SOCKETS: AtomicU64 = AtomicU64::new(1);
        let (deliveries, received) = mpsc::unbounded_channel();
        let shares = Self {
            id: SOCKETS.fetch_add(1, Ordering::Relaxed),
            deliveries,
            places: Mutex::default(),
        };
        (Arc::new(shares), received)
    }

    /// Takes in a delivery: for an event, calls `frame` with each subscriber's frame head and
    /// the payload; for an end, ends the place's subscribers.
    pub fn receive(&self, delivery: Delivery, mut frame: impl FnMut(&str, &str)) {
        match delivery {
            Delivery::Event {
                slot,
                payload,
                waiting,
            } => {
                waiting.fetch_sub(1, Ordering::Relaxed);
                let places = lock(&self.places);
                if let Some(place) = places.get(&slot) {
                    for head in place.heads() {
                        frame(head, &payload);
                    }
                }
            }
            Delivery::End { slot, lagged } => {
                let place = lock(&self.places).remove(&slot);
                for member in place.into_iter().flat_map(|place| place.members) {
                    if let (Some(end), Some(lagged)) = (member.end, &lagged) {
                        let _ = end.send(lagged.clone());
                    }
                }
            }
        }
    }

    fn leave(&self, slot: u64, seq: u64) {
        let mut places = lock(&self.places);
        if let Some(place) = places.get_mut(&slot) {
            place.leave(seq);
            if place.members.is_empty() {
                places.remove(&slot);
            }
        }
    }
}

/// Every shared stream of the process, by key; in the schema's data.
#[derive(Clone)]
pub struct SharedEvents {
    inner: Arc<Hub>,
}

struct Hub {
    /// The schema without the pipeline that each stream runs its request on.
    render: RosterSchema,
    streams: Mutex<HashMap<Arc<ShareKey>, Arc<SharedStream>>>,
    next_id: AtomicU64,
}

/// One request run once for all its subscribers.
struct SharedStream {
    key: Arc<ShareKey>,
    /// The sockets with subscribers on it, by socket id.
    places: Mutex<HashMap<u64, Slot>>,
    renderer: Mutex<Option<tokio::task::AbortHandle>>,
}

/// A socket's place, as the stream sees it.
struct Slot {
    id: u64,
    socket: Arc<SocketShares>,
    waiting: Arc<AtomicUsize>,
    members: usize,
}

impl SharedEvents {
    /// Streams that run their requests on `render`, a schema without the pipeline.
    pub fn new(render: RosterSchema) -> Self {
        Self {
            inner: Arc::new(Hub {
                render,
                streams: Mutex::default(),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// Puts the ticket's subscriber on the stream of its key, starting the stream (with
    /// `feed`) when there is none; the answer ends when the subscriber does.
    fn join(&self, ticket: &ShareTicket, feed: impl FnOnce() -> EventFeed) -> EventStream {
        let hub = &self.inner;
        let seq = hub.next_id.fetch_add(1, Ordering::Relaxed);
        let (end, ended) = oneshot::channel();
        let (stream, slot, sharing) = {
            let mut streams = lock(&hub.streams);
            let stream = match streams.get(&ticket.key) {
                Some(stream) => Arc::clone(stream),
                None => {
                    let stream = Arc::new(SharedStream {
                        key: Arc::clone(&ticket.key),
                        places: Mutex::default(),
                        renderer: Mutex::default(),
                    });
                    let render = Arc::new(RenderFeed {
                        feed: Mutex::new(Some(feed())),
                        lagged: Mutex::default(),
                    });
                    let task = tokio::spawn(self.clone().run(Arc::clone(&stream), render));
                    *lock(&stream.renderer) = Some(task.abort_handle());
                    streams.insert(Arc::clone(&ticket.key), Arc::clone(&stream));
                    stream
                }
            };
            let mut places = lock(&stream.places);
            let place = places.entry(ticket.socket.id).or_insert_with(|| Slot {
                id: hub.next_id.fetch_add(1, Ordering::Relaxed),
                socket: Arc::clone(&ticket.socket),
                waiting: Arc::default(),
                members: 0,
            });
            place.members += 1;
            let slot = place.id;
            lock(&ticket.socket.places)
                .entry(slot)
                .or_default()
                .join(seq, &ticket.head, end);
            let sharing: usize = places.values().map(|slot| slot.members).sum();
            drop(places);
            (stream, slot, sharing)
        };
        tracing::info!(
            operation_id = %ticket.operation_id,
            subscribers = sharing,
            "websocket subscription shared"
        );
        let membership = Membership {
            hub: self.clone(),
            stream,
            socket: Arc::clone(&ticket.socket),
            slot,
            seq,
        };
        let state = (membership, SubscriberGuard::new(), ended);
        Box::pin(stream::unfold(Some(state), |state| async move {
            let (membership, open, ended) = state?;
            match ended.await {
                Ok(lagged) => {
                    drop((membership, open));
                    Some((Err(messages::feed(&lagged)), None))
                }
                Err(_) => None,
            }
        }))
    }

    /// A stream's run: each answer serialised once and delivered to every socket on it;
    /// when it ends, its subscribers end.
    async fn run(self, stream: Arc<SharedStream>, render: Arc<RenderFeed>) {
        let request = stream.key.request().data(Arc::clone(&render));
        let mut answers = self.inner.render.execute_stream(request);
        while let Some(answer) = answers.next().await {
            let Ok(payload) = serde_json::to_string(&answer) else {
                continue;
            };
            if !stream.deliver(payload.into()) && self.retire_if_empty(&stream) {
                return;
            }
        }
        let lagged = lock(&render.lagged).take();
        let places = {
            let mut streams = lock(&self.inner.streams);
            if streams
                .get(&stream.key)
                .is_some_and(|current| Arc::ptr_eq(current, &stream))
            {
                streams.remove(&stream.key);
            }
            std::mem::take(&mut *lock(&stream.places))
        };
        for slot in places.into_values() {
            let end = Delivery::End {
                slot: slot.id,
                lagged: lagged.clone(),
            };
            let _ = slot.socket.deliveries.send(end);
        }
    }

    /// Removes the stream when no socket is on it any more; whether it did.
    fn retire_if_empty(&self, stream: &Arc<SharedStream>) -> bool {
        let mut streams = lock(&self.inner.streams);
        if !lock(&stream.places).is_empty() {
            return false;
        }
        if streams
            .get(&stream.key)
            .is_some_and(|current| Arc::ptr_eq(current, stream))
        {
            streams.remove(&stream.key);
        }
        true
    }

    /// A subscriber left: its socket's place loses it, and the stream, with no place left, stops.
    fn leave(&self, stream: &Arc<SharedStream>, socket: u64, slot: u64) {
        let mut streams = lock(&self.inner.streams);
        let mut places = lock(&stream.places);
        if let Some(place) = places.get_mut(&socket).filter(|place| place.id == slot) {
            place.members -= 1;
            if place.members == 0 {
                places.remove(&socket);
            }
        }
        if places.is_empty() {
            if streams
                .get(&stream.key)
                .is_some_and(|current| Arc::ptr_eq(current, stream))
            {
                streams.remove(&stream.key);
            }
            if let Some(renderer) = lock(&stream.renderer).take() {
                renderer.abort();
            }
        }
    }
}

impl SharedStream {
    /// Hands `payload` to every socket on the stream; one that has [`MAX_BEHIND`] events
    /// waiting already, or is gone, loses its place. Whether any socket is left.
    fn deliver(&self, payload: Arc<str>) -> bool {
        let mut places = lock(&self.places);
        places.retain(|_, slot| {
            let waiting = slot.waiting.load(Ordering::Relaxed);
            if waiting >= MAX_BEHIND {
                let behind = u64::try_from(waiting).unwrap_or(u64::MAX);
                let end = Delivery::End {
                    slot: slot.id,
                    lagged: Some(FeedError::Lagged(behind)),
                };
                let _ = slot.socket.deliveries.send(end);
                false
            } else {
                slot.waiting.fetch_add(1, Ordering::Relaxed);
                let event = Delivery::Event {
                    slot: slot.id,
                    payload: Arc::clone(&payload),
                    waiting: Arc::clone(&slot.waiting),
                };
                slot.socket.deliveries.send(event).is_ok()
            }
        });
        !places.is_empty()
    }
}

/// A subscriber's place on a shared stream, given up when its answer stream is dropped.
struct Membership {
    hub: SharedEvents,
    stream: Arc<SharedStream>,
    socket: Arc<SocketShares>,
    slot: u64,
    seq: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.socket.leave(self.slot, self.seq);
        self.hub.leave(&self.stream, self.socket.id, self.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_keeps_each_members_head_through_joins_and_leaves() {
        let mut place = Place::default();
        let mut ends = Vec::new();
        for (seq, head) in [(1, "one"), (2, "second"), (3, "3"), (4, "fourth!")] {
            let (end, ended) = oneshot::channel();
            ends.push(ended);
            place.join(seq, head, end);
        }
        assert_eq!(
            place.heads().collect::<Vec<_>>(),
            ["one", "second", "3", "fourth!"]
        );
        place.leave(2);
        assert_eq!(place.heads().collect::<Vec<_>>(), ["one", "3", "fourth!"]);
        place.leave(9);
        place.leave(1);
        assert_eq!(place.heads().collect::<Vec<_>>(), ["3", "fourth!"]);
        place.leave(4);
        assert_eq!(place.heads().collect::<Vec<_>>(), ["3"]);
        assert_eq!(place.heads, "3");
        place.leave(3);
        assert!(place.members.is_empty() && place.heads.is_empty());
    }
}
