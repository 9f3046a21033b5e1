//! Live events' `next` frames, laid end to end in one buffer and written in one go.
//!
//! A shared event reaches a socket once for all its subscriptions on it, and each of them
//! needs a frame of its own: its head (`{"type":"next","id":…,"payload":`), the event's
//! payload, a closing brace. Handing those to the WebSocket library one message at a time
//! made each frame a fresh string, a second copy into the library's buffer and a trip
//! through its sink: per subscriber, most of what an event cost at 25,500 subscribers. Here
//! each frame is its header (formatted by tungstenite) and its three parts copied once into
//! the batch's buffer, which is written straight to the connection after whatever the
//! library has pending, so the two never interleave.

use async_graphql::futures_util::SinkExt;
use async_graphql::futures_util::stream::SplitSink;
use tokio::io::AsyncWriteExt;
use tungstenite::Message;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Data, OpCode};

use super::websocket_upgrade::{Connection, Socket};

/// A header for a whole (unfragmented), unmasked text frame: what a server sends.
fn text_header() -> FrameHeader {
    FrameHeader {
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    }
}

/// The frames of one batch of shared events.
#[derive(Default)]
pub struct EventFrames {
    bytes: Vec<u8>,
}

impl EventFrames {
    /// Adds the frame of one subscription: `head`, `payload`, `}`.
    pub fn push(&mut self, head: &str, payload: &str) {
        let length = head.len() + payload.len() + 1;
        self.bytes.reserve(length + 10);
        // Writing into a Vec cannot fail.
        let _ = text_header().format(length as u64, &mut self.bytes);
        self.bytes.extend_from_slice(head.as_bytes());
        self.bytes.extend_from_slice(payload.as_bytes());
        self.bytes.push(b'}');
    }

    /// Writes the frames after everything the socket has pending; whether they all went.
    pub async fn write(self, sink: &mut SplitSink<Socket, Message>, connection: &mut Connection) -> bool {
        if self.bytes.is_empty() {
            return true;
        }
        // What the library holds (a message, a pong it owes) must go first, whole.
        if sink.flush().await.is_err() {
            return false;
        }
        connection.write_all(&self.bytes).await.is_ok() && connection.flush().await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// The frames in `bytes` as tungstenite reads them: (whole, text, unmasked, payload).
    fn read_frames(bytes: &[u8]) -> Vec<(bool, bool, bool, String)> {
        let mut cursor = Cursor::new(bytes);
        let mut frames = Vec::new();
        while (cursor.position() as usize) < bytes.len() {
            let (header, length) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            let start = cursor.position() as usize;
            let end = start + usize::try_from(length).unwrap();
            frames.push((
                header.is_final,
                header.opcode == OpCode::Data(Data::Text),
                header.mask.is_none(),
                String::from_utf8(bytes[start..end].to_vec()).unwrap(),
            ));
            cursor.set_position(end as u64);
        }
        frames
    }

    #[test]
    fn frames_lie_end_to_end_each_a_whole_unmasked_text_frame() {
        let mut frames = EventFrames::default();
        // Short, 16-bit and 64-bit lengths: the three header sizes.
        let long = format!("\"{}\"", "x".repeat(300));
        let longest = format!("\"{}\"", "é".repeat(40_000));
        frames.push(r#"{"type":"next","id":"a","payload":"#, "1");
        frames.push(r#"{"type":"next","id":"b","payload":"#, &long);
        frames.push(r#"{"type":"next","id":"c","payload":"#, &longest);
        let read = read_frames(&frames.bytes);
        assert_eq!(read.len(), 3);
        assert!(
            read.iter()
                .all(|(whole, text, unmasked, _)| *whole && *text && *unmasked)
        );
        assert_eq!(read[0].3, r#"{"type":"next","id":"a","payload":1}"#);
        let second: serde_json::Value = serde_json::from_str(&read[1].3).unwrap();
        assert_eq!(second["payload"].as_str().unwrap().len(), 300);
        let third: serde_json::Value = serde_json::from_str(&read[2].3).unwrap();
        assert_eq!(third["id"], "c");
        assert_eq!(third["payload"].as_str().unwrap().chars().count(), 40_000);
    }
}
