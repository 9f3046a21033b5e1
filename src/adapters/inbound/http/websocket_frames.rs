//! What the frames a WebSocket client sends say about it, read from the connection's bytes
//! as they arrive (the WebSocket library only shows whole messages, so a frame trickled a
//! byte a second, a message cut into a million empty fragments or a flood of empty pings
//! are invisible above it).
//!
//! The server's connection feeds every byte read after the upgrade to [`FrameWatch::observe`],
//! which follows the frame headers (RFC 6455 §5.2) without keeping any payload, and records:
//! - since when a message (or a frame) has been unfinished, for the message deadline;
//! - how many frames in a row made no progress: control frames and fragments of fewer than
//!   [`MIN_PROGRESS_BYTES`] that do not end their message. More than [`MAX_IDLE_FRAMES`]
//!   between two of the server's pings breaks the rule (each ping resets the count, since it
//!   asks for one pong).
//!
//! Bytes a client sends before the upgrade's answer (which RFC 6455 forbids) are not seen,
//! so such a client's frames may be misread; only its own socket can suffer for it.

use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::Notify;

/// Frames in a row without progress that break the rule.
pub const MAX_IDLE_FRAMES: u32 = 100;
/// The least payload a fragment that does not end its message must carry to count as
/// progress.
pub const MIN_PROGRESS_BYTES: u64 = 64;

/// The frames of one socket, as seen by the connection and checked by the session.
#[derive(Default)]
pub struct FrameWatch {
    frames: Mutex<Frames>,
    /// Woken once when the idle-frame rule is broken.
    broken: Notify,
}

#[derive(Default)]
struct Frames {
    /// The header bytes of the frame being read, while it is incomplete.
    header: [u8; 14],
    header_len: usize,
    /// Payload bytes still to come of the current frame.
    remaining: u64,
    /// The current frame's opcode, FIN bit and payload length.
    opcode: u8,
    fin: bool,
    len: u64,
    /// A data message has begun and its last fragment has not arrived.
    in_message: bool,
    /// When the unfinished message (or frame) began.
    unfinished_since: Option<Instant>,
    idle_frames: u32,
    broken: bool,
}

impl FrameWatch {
    /// Follows `bytes`, the next ones read from the client.
    pub fn observe(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut frames = self
            .frames
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let was_broken = frames.broken;
        frames.observe(bytes, now);
        if frames.broken && !was_broken {
            self.broken.notify_one();
        }
    }

    /// Notes that the server sent a ping: one more control frame (its pong) is expected.
    pub fn pinged(&self) {
        self.frames
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .idle_frames = 0;
    }

    /// Since when a message has been arriving without arriving whole, if one is.
    pub fn unfinished_since(&self) -> Option<Instant> {
        self.frames
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .unfinished_since
    }

    /// Completes once the client has sent more than [`MAX_IDLE_FRAMES`] frames without
    /// progress.
    pub async fn broken(&self) {
        self.broken.notified().await;
    }
}

impl Frames {
    fn observe(&mut self, mut bytes: &[u8], now: Instant) {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let take = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                self.remaining -= take as u64;
                bytes = &bytes[take..];
                if self.remaining == 0 {
                    self.frame_done();
                }
                continue;
            }
            if self.header_len == 0 {
                self.unfinished_since.get_or_insert(now);
            }
            self.header[self.header_len] = bytes[0];
            self.header_len += 1;
            bytes = &bytes[1..];
            if header_len(&self.header[..self.header_len]) == Some(self.header_len) {
                self.start_frame();
            }
        }
    }

    /// The header is complete: note the frame, and end it at once if it has no payload.
    fn start_frame(&mut self) {
        let header = &self.header[..self.header_len];
        self.fin = header[0] & 0x80 != 0;
        self.opcode = header[0] & 0x0F;
        self.len = match header[1] & 0x7F {
            126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
            127 => u64::from_be_bytes(header[2..10].try_into().unwrap_or_default()),
            len => u64::from(len),
        };
        self.header_len = 0;
        self.remaining = self.len;
        if self.remaining == 0 {
            self.frame_done();
        }
    }

    fn frame_done(&mut self) {
        let data = self.opcode < 0x8;
        if data && self.fin {
            self.in_message = false;
            self.idle_frames = 0;
        } else if data {
            self.in_message = true;
            if self.len >= MIN_PROGRESS_BYTES {
                self.idle_frames = 0;
            } else {
                self.idle_frames += 1;
            }
        } else {
            self.idle_frames += 1;
        }
        if !self.in_message {
            self.unfinished_since = None;
        }
        if self.idle_frames > MAX_IDLE_FRAMES {
            self.broken = true;
        }
    }
}

/// The length of a frame header that begins with `start`, once its first two bytes say.
fn header_len(start: &[u8]) -> Option<usize> {
    let second = *start.get(1)?;
    let extended = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    Some(2 + extended + mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![first];
        match payload.len() {
            len if len < 126 => bytes.push(0x80 | len as u8),
            len => {
                bytes.push(0x80 | 126);
                bytes.extend_from_slice(&(len as u16).to_be_bytes());
            }
        }
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn whole_messages_leave_nothing_unfinished_whatever_the_chunks() {
        let watch = FrameWatch::default();
        let mut bytes = frame(0x81, br#"{"type":"connection_init"}"#);
        bytes.extend(frame(0x01, &[b' '; 300]));
        bytes.extend(frame(0x80, b"}"));
        for chunk in bytes.chunks(3) {
            watch.observe(chunk);
        }
        assert_eq!(watch.unfinished_since(), None);
        watch.observe(&frame(0x81, b"{}")[..3]);
        assert!(watch.unfinished_since().is_some(), "a frame half read");
    }

    #[test]
    fn a_fragmented_message_is_unfinished_until_its_last_fragment() {
        let watch = FrameWatch::default();
        watch.observe(&frame(0x01, b"{"));
        let since = watch.unfinished_since().expect("begun");
        watch.observe(&frame(0x89, b""));
        watch.observe(&frame(0x00, b" "));
        assert_eq!(
            watch.unfinished_since(),
            Some(since),
            "a ping between fragments ends nothing"
        );
        watch.observe(&frame(0x80, b"}"));
        assert_eq!(watch.unfinished_since(), None);
    }

    #[test]
    fn frames_without_progress_break_the_rule_and_pings_reset_the_count() {
        let watch = FrameWatch::default();
        for _ in 0..MAX_IDLE_FRAMES {
            watch.observe(&frame(0x8A, b""));
        }
        watch.pinged();
        watch.observe(&frame(0x01, b"{"));
        for _ in 0..MAX_IDLE_FRAMES - 1 {
            watch.observe(&frame(0x00, b""));
        }
        assert!(!watch.frames.lock().unwrap().broken);
        watch.observe(&frame(0x00, &[b' '; 64]));
        watch.observe(&frame(0x00, b""));
        assert!(
            !watch.frames.lock().unwrap().broken,
            "a real fragment is progress"
        );
        for _ in 0..MAX_IDLE_FRAMES {
            watch.observe(&frame(0x00, b""));
        }
        assert!(watch.frames.lock().unwrap().broken);
    }
}
