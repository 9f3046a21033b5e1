//! The log's background writer: each thread appends its lines to a buffer of its own, and
//! one writer thread collects every buffer about once a millisecond and writes what they
//! hold to stderr in one write, in the order the lines were written.
//!
//! A line costs its writer a copy into a buffer it alone uses (the lock is never contended
//! but by the collection) and a counter; no allocation and no hand-over per line. Handing
//! each line over a channel as its own allocation, freed on the writer thread, was about
//! half of what a read's request line cost (callgrind, cached reads: 3,500 of 8,600
//! instructions).
//!
//! Memory is bounded: a thread's buffer holds at most the `limit` given at start between
//! two collections; lines past it are dropped and counted ([`LineBuffers::dropped`]) rather
//! than waiting for stderr, so a slow stderr never slows a request. An idle writer sleeps
//! until the next line, so an idle service does not wake each millisecond.

use std::cell::RefCell;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Before each line in a buffer: its sequence number (8 bytes) and length (4 bytes).
const HEADER: usize = 12;

/// One thread's lines since the last collection.
type Buffer = Arc<Mutex<Vec<u8>>>;

/// The writer side: a [`MakeWriter`] for the fmt layer. Clones share the buffers.
#[derive(Clone)]
pub struct LineBuffers {
    shared: Arc<Shared>,
}

struct Shared {
    /// Every thread's buffer that has written a line.
    buffers: Mutex<Vec<Buffer>>,
    /// Numbers lines across threads, so the writer puts them back in order.
    next_line: AtomicU64,
    dropped: AtomicU64,
    /// The most bytes a thread's buffer holds between collections.
    limit: usize,
    /// The writer thread is asleep (or about to be) and wants waking by the next line.
    writer_asleep: AtomicBool,
    writer: OnceLock<Thread>,
    closing: AtomicBool,
}

thread_local! {
    /// This thread's buffer in each live set of buffers (one, but for tests).
    static MINE: RefCell<Vec<(Weak<Shared>, Buffer)>> = const { RefCell::new(Vec::new()) };
}

/// Stops the writer thread when dropped, once it has written every line still buffered.
pub struct LineBuffersGuard {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl Drop for LineBuffersGuard {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        if let Some(writer) = self.writer.take() {
            writer.thread().unpark();
            let _ = writer.join();
        }
    }
}

impl LineBuffers {
    /// Starts the writer thread, writing to `out` every `rest` at most, with at most
    /// `limit` bytes buffered per thread.
    pub fn start<W: Write + Send + 'static>(
        out: W,
        limit: usize,
        rest: Duration,
    ) -> io::Result<(LineBuffers, LineBuffersGuard)> {
        let shared = Arc::new(Shared {
            buffers: Mutex::new(Vec::new()),
            next_line: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            limit,
            writer_asleep: AtomicBool::new(false),
            writer: OnceLock::new(),
            closing: AtomicBool::new(false),
        });
        let theirs = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("roster-log".into())
            .spawn(move || write_lines(&theirs, out, rest))?;
        let _ = shared.writer.set(writer.thread().clone());
        let guard = LineBuffersGuard {
            shared: Arc::clone(&shared),
            writer: Some(writer),
        };
        Ok((LineBuffers { shared }, guard))
    }

    /// Lines dropped so far because their thread's buffer was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Appends one line to this thread's buffer, or counts it dropped.
    fn append(&self, line: &[u8]) {
        let shared = &self.shared;
        let Ok(length) = u32::try_from(line.len()) else {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let appended = MINE.try_with(|mine| {
            let buffer = own_buffer(&mut mine.borrow_mut(), shared);
            let mut lines = buffer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if lines.len() + HEADER + line.len() > shared.limit {
                return false;
            }
            let number = shared.next_line.fetch_add(1, Ordering::Relaxed);
            lines.extend_from_slice(&number.to_le_bytes());
            lines.extend_from_slice(&length.to_le_bytes());
            lines.extend_from_slice(line);
            true
        });
        match appended {
            Ok(true) => {}
            Ok(false) => {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            // A thread logging while it ends, after its buffer is gone: straight out.
            Err(_) => {
                let _ = io::stderr().write_all(line);
                return;
            }
        }
        if shared.writer_asleep.load(Ordering::SeqCst)
            && shared.writer_asleep.swap(false, Ordering::SeqCst)
            && let Some(writer) = shared.writer.get()
        {
            writer.unpark();
        }
    }
}

/// This thread's buffer in `shared`, registered on its first line.
fn own_buffer(mine: &mut Vec<(Weak<Shared>, Buffer)>, shared: &Arc<Shared>) -> Buffer {
    if let Some((_, buffer)) = mine
        .iter()
        .find(|(owner, _)| std::ptr::eq(owner.as_ptr(), Arc::as_ptr(shared)))
    {
        return Arc::clone(buffer);
    }
    mine.retain(|(owner, _)| owner.strong_count() > 0);
    let buffer: Buffer = Arc::new(Mutex::new(Vec::new()));
    lock(&shared.buffers).push(Arc::clone(&buffer));
    mine.push((Arc::downgrade(shared), Arc::clone(&buffer)));
    buffer
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The writer thread: collects and writes, rests, and sleeps while nothing comes.
fn write_lines<W: Write>(shared: &Shared, mut out: W, rest: Duration) {
    let mut collected: Vec<Vec<u8>> = Vec::new();
    let (mut held, mut text) = (Vec::new(), Vec::new());
    loop {
        let closing = shared.closing.load(Ordering::SeqCst);
        if collect(shared, &mut collected, &mut held, &mut text, closing) {
            if !text.is_empty() {
                let _ = out.write_all(&text).and_then(|()| out.flush());
            }
        } else if closing {
            return;
        } else {
            shared.writer_asleep.store(true, Ordering::SeqCst);
            // A line appended before the flag was up did not wake us: look once more.
            if !anything_buffered(shared) && !shared.closing.load(Ordering::SeqCst) {
                std::thread::park();
            }
            shared.writer_asleep.store(false, Ordering::SeqCst);
            continue;
        }
        if !closing {
            std::thread::sleep(rest);
        }
    }
}

fn anything_buffered(shared: &Shared) -> bool {
    lock(&shared.buffers)
        .iter()
        .any(|buffer| !lock(buffer).is_empty())
}

/// Takes every thread's lines into `collected` (swapping in emptied buffers, so their
/// room is reused) and puts them in `text` in the order they were written. Buffers of
/// threads that have ended are let go once empty.
///
/// Buffers are swapped one after another, so a line numbered after the collection began
/// may be taken from one buffer while an earlier-numbered one is still being written to
/// another, already swapped. Only lines numbered before the collection began are written
/// (each of those was appended, under its buffer's lock, before its buffer was swapped);
/// the rest wait in `held` for the next collection, unless `everything` (the end).
/// Tells whether there was any line.
fn collect(
    shared: &Shared,
    collected: &mut Vec<Vec<u8>>,
    held: &mut Vec<u8>,
    text: &mut Vec<u8>,
    everything: bool,
) -> bool {
    text.clear();
    let before = if everything {
        u64::MAX
    } else {
        shared.next_line.load(Ordering::SeqCst)
    };
    let buffers: Vec<Buffer> = {
        let mut buffers = lock(&shared.buffers);
        // Held only here and by nobody else: its thread has ended.
        buffers.retain(|buffer| Arc::strong_count(buffer) > 1 || !lock(buffer).is_empty());
        buffers.clone()
    };
    collected.resize_with(buffers.len() + 1, Vec::new);
    // The lines held back last time come first, as one more buffer.
    std::mem::swap(&mut collected[0], held);
    held.clear();
    for (buffer, mine) in buffers.iter().zip(collected[1..].iter_mut()) {
        mine.clear();
        std::mem::swap(&mut *lock(buffer), mine);
    }
    let mut lines: Vec<(u64, usize, usize)> = Vec::new();
    for (index, mine) in collected.iter().enumerate() {
        let mut at = 0;
        while at + HEADER <= mine.len() {
            let number = u64::from_le_bytes(mine[at..at + 8].try_into().unwrap_or_default());
            let length = u32::from_le_bytes(mine[at + 8..at + HEADER].try_into().unwrap_or_default());
            let end = (at + HEADER + length as usize).min(mine.len());
            lines.push((number, index, at));
            at = end;
        }
    }
    lines.sort_unstable_by_key(|&(number, ..)| number);
    for &(number, index, at) in &lines {
        let mine = &collected[index];
        let length = u32::from_le_bytes(mine[at + 8..at + HEADER].try_into().unwrap_or_default());
        let end = (at + HEADER + length as usize).min(mine.len());
        if number < before {
            text.extend_from_slice(&mine[at + HEADER..end]);
        } else {
            held.extend_from_slice(&mine[at..end]);
        }
    }
    !lines.is_empty()
}

/// What the fmt layer writes one line through.
pub struct LineWriter<'a> {
    buffers: &'a LineBuffers,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.buffers.append(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LineBuffers {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter { buffers: self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What reached "stderr".
    #[derive(Clone, Default)]
    struct Written(Arc<Mutex<Vec<u8>>>);

    impl Write for Written {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            lock(&self.0).extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn line(buffers: &LineBuffers, text: &str) {
        buffers.make_writer().write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn lines_from_many_threads_come_out_whole_and_in_the_order_they_were_written() {
        let written = Written::default();
        let (buffers, guard) =
            LineBuffers::start(written.clone(), 1 << 20, Duration::from_millis(1)).unwrap();
        // Each thread writes its lines in turn with the others, through a shared counter,
        // so the order they were written in is known.
        let turn = Arc::new(Mutex::new(0_usize));
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let (buffers, turn) = (buffers.clone(), Arc::clone(&turn));
                std::thread::spawn(move || {
                    let mut mine = 0;
                    while mine < 500 {
                        let mut at = lock(&turn);
                        if *at % 4 == thread {
                            line(&buffers, &format!("line {} from {thread}\n", *at));
                            *at += 1;
                            mine += 1;
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let text = String::from_utf8(lock(&written.0).clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2_000);
        for (n, line) in lines.iter().enumerate() {
            assert_eq!(*line, format!("line {n} from {}", n % 4));
        }
        assert_eq!(buffers.dropped(), 0);
    }

    #[test]
    fn a_full_buffer_drops_and_counts_lines_instead_of_growing() {
        // Nothing can be written out: the writer is stuck behind a lock held here.
        let written = Written::default();
        let held = lock(&written.0);
        let (buffers, guard) = LineBuffers::start(written.clone(), 1_000, Duration::from_millis(1)).unwrap();
        // 100 lines of 100 bytes, each with its 12-byte header: at most 8 fit in 1,000
        // bytes, and the writer may take one batch before it blocks on the lock.
        for _ in 0..100 {
            line(&buffers, &format!("{:99}\n", "x"));
        }
        let dropped = buffers.dropped();
        assert!((100 - 16..=100 - 8).contains(&dropped), "{dropped} dropped");
        drop(held);
        drop(guard);
        let kept = lock(&written.0).len() / 100;
        assert_eq!(kept as u64 + dropped, 100);
    }

    #[test]
    fn an_idle_writer_wakes_for_the_next_line() {
        let written = Written::default();
        let (buffers, guard) =
            LineBuffers::start(written.clone(), 1 << 20, Duration::from_millis(1)).unwrap();
        line(&buffers, "first\n");
        // Wait (bounded) for the writer to write it and go back to sleep.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !buffers.shared.writer_asleep.load(Ordering::SeqCst) {
            assert!(std::time::Instant::now() < deadline, "the writer never slept");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(&*lock(&written.0), b"first\n");
        line(&buffers, "second\n");
        while lock(&written.0).len() < 13 {
            assert!(std::time::Instant::now() < deadline, "the second line never came");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(&*lock(&written.0), b"first\nsecond\n");
        drop(guard);
    }

    #[test]
    fn the_buffers_of_threads_that_ended_are_let_go() {
        let (buffers, guard) = LineBuffers::start(io::sink(), 1 << 20, Duration::from_millis(1)).unwrap();
        for _ in 0..20 {
            let buffers = buffers.clone();
            std::thread::spawn(move || line(&buffers, "from a short thread\n"))
                .join()
                .unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        line(&buffers, "from this thread\n");
        // Each collection lets go of the ended threads' emptied buffers.
        while lock(&buffers.shared.buffers).len() > 1 {
            assert!(std::time::Instant::now() < deadline, "the buffers were kept");
            line(&buffers, "again\n");
            std::thread::sleep(Duration::from_millis(2));
        }
        drop(guard);
    }
}
