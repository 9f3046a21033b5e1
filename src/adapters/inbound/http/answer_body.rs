//! An answer on its way to the client (docs/src/http.md, Answers within a memory budget).
//!
//! Its JSON is written in chunks of [`CHUNK_BYTES`], never into one buffer grown by doubling
//! (which holds up to twice the answer and copies it at every step), and bounded: past the
//! answer's bound the writing stops. The body then hands hyper one chunk at a time, only
//! when hyper has room for it, so a client that reads slowly holds the chunks not yet sent
//! and nothing more; and it holds the answer's [`Reservation`] of the answer budget, given
//! back as the chunks go out and in full when the body is dropped: written, or the
//! connection cut (by the client, or by the server's write deadline).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Bytes, HttpBody};
use hyper::body::{Frame, SizeHint};
use serde::Serialize;

use crate::adapters::inbound::graphql::Reservation;

/// The size of each chunk of an answer's JSON.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// JSON text written in chunks, at most `limit` bytes of it.
pub struct Chunks {
    done: VecDeque<Bytes>,
    current: Vec<u8>,
    len: u64,
    limit: u64,
}

/// The JSON text would be longer than its limit.
#[derive(Debug)]
pub struct OverLimit;

impl Chunks {
    /// `value` as JSON, or [`OverLimit`] once it passes `limit` bytes.
    pub fn of(value: &impl Serialize, limit: u64) -> Result<Self, OverLimit> {
        let mut chunks = Self {
            done: VecDeque::new(),
            current: Vec::new(),
            len: 0,
            limit,
        };
        serde_json::to_writer(&mut chunks, value).map_err(|_| OverLimit)?;
        chunks.finish();
        Ok(chunks)
    }

    /// Bytes written.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The whole text in one piece (a copy: for short answers).
    pub fn to_bytes(&self) -> Bytes {
        let mut whole = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        for chunk in &self.done {
            whole.extend_from_slice(chunk);
        }
        whole.extend_from_slice(&self.current);
        Bytes::from(whole)
    }

    /// Adds `chunks` after these (their limit is not checked again).
    pub fn append(&mut self, chunks: Chunks) {
        self.len += chunks.len;
        self.done.extend(chunks.done);
    }

    /// Adds a short text such as `[` or `,`.
    pub fn push_static(&mut self, text: &'static [u8]) {
        self.len += text.len() as u64;
        self.done.push_back(Bytes::from_static(text));
    }

    /// An empty text, to append to.
    pub fn empty() -> Self {
        Self {
            done: VecDeque::new(),
            current: Vec::new(),
            len: 0,
            limit: u64::MAX,
        }
    }

    fn finish(&mut self) {
        if !self.current.is_empty() {
            let last = std::mem::take(&mut self.current);
            self.done.push_back(Bytes::from(last));
        }
    }
}

impl io::Write for Chunks {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let written = data.len();
        if self.len.saturating_add(written as u64) > self.limit {
            return Err(io::Error::other("the answer is over its limit"));
        }
        self.len += written as u64;
        while !data.is_empty() {
            if self.current.len() >= CHUNK_BYTES {
                let full = std::mem::replace(&mut self.current, Vec::with_capacity(CHUNK_BYTES));
                self.done.push_back(Bytes::from(full));
            }
            let room = CHUNK_BYTES - self.current.len();
            let (now, later) = data.split_at(room.min(data.len()));
            self.current.extend_from_slice(now);
            data = later;
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A response body of chunks, holding the answers' reservations until they are written.
pub struct AnswerBody {
    chunks: VecDeque<Bytes>,
    remaining: u64,
    reservations: Vec<Reservation>,
}

impl AnswerBody {
    /// The body of `chunks`, holding `reservations` (each already no larger than its answer).
    pub fn new(chunks: Chunks, reservations: Vec<Reservation>) -> Self {
        Self {
            remaining: chunks.len,
            chunks: chunks.done,
            reservations,
        }
    }
}

impl HttpBody for AnswerBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        match this.chunks.pop_front() {
            Some(chunk) => {
                this.remaining = this.remaining.saturating_sub(chunk.len() as u64);
                // One answer gives back what has gone to hyper (which writes it before it
                // asks for more); a batch's answers go back together at the end.
                if let [reservation] = this.reservations.as_mut_slice() {
                    reservation.shrink_to(this.remaining);
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            None => {
                this.reservations.clear();
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_cut_into_chunks_and_stops_at_its_limit() {
        let value = serde_json::json!({ "a": "x".repeat(200_000) });
        let chunks = Chunks::of(&value, u64::MAX).unwrap();
        let text = serde_json::to_vec(&value).unwrap();
        assert_eq!(chunks.len(), text.len() as u64);
        assert_eq!(chunks.done.len(), text.len().div_ceil(CHUNK_BYTES));
        let joined: Vec<u8> = chunks.done.iter().flat_map(|chunk| chunk.to_vec()).collect();
        assert_eq!(joined, text);
        assert!(Chunks::of(&value, 100_000).is_err());
    }
}
