//! A command's outgoing status: line-split streams and other update keys, batched into `update`
//! messages like buildbot-worker's BufferManager (flush when `buffer_size` would be exceeded,
//! after `buffer_timeout`, and when the command ends). Consecutive pieces of the same stream are
//! merged into one entry.

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use taskotron_common::protocol::{Op, UpdateItem};

use crate::agent::lines::{LineSplitter, OutputSettings};
use crate::agent::peer::Peer;

/// Which output stream a piece of text belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
    Header,
    Log(String),
}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub struct Output {
    peer: Peer,
    command_id: String,
    settings: OutputSettings,
    splitters: HashMap<Stream, LineSplitter>,
    buffer: Vec<UpdateItem>,
    size: usize,
    oldest: Option<Instant>,
}

impl Output {
    pub fn new(peer: Peer, command_id: String, settings: OutputSettings) -> Output {
        Output {
            peer,
            command_id,
            settings,
            splitters: HashMap::new(),
            buffer: Vec::new(),
            size: 0,
            oldest: None,
        }
    }

    /// Adds text of one stream (any size, partial lines allowed).
    pub fn text(&mut self, stream: Stream, text: &str) {
        let settings = &self.settings;
        let splitter = self
            .splitters
            .entry(stream.clone())
            .or_insert_with(|| LineSplitter::new(settings.clone()));
        if let Some(chunk) = splitter.push(text, now()) {
            self.add(wrap(stream, chunk));
        }
    }

    pub fn header(&mut self, text: &str) {
        self.text(Stream::Header, text);
    }

    /// Adds a non-stream key (`rc`, `elapsed`, `files`, ...).
    pub fn item(&mut self, item: UpdateItem) {
        self.add(item);
    }

    /// Finishes the pending partial line of every stream (at process exit).
    pub fn end_lines(&mut self) {
        let mut done: Vec<_> = self
            .splitters
            .iter_mut()
            .filter_map(|(s, sp)| sp.flush().map(|c| (s.clone(), c)))
            .collect();
        // Deterministic order: stdout, stderr, header, logs.
        done.sort_by_key(|(s, _)| match s {
            Stream::Stdout => (0, String::new()),
            Stream::Stderr => (1, String::new()),
            Stream::Header => (2, String::new()),
            Stream::Log(n) => (3, n.clone()),
        });
        for (s, c) in done {
            self.add(wrap(s, c));
        }
    }

    fn add(&mut self, item: UpdateItem) {
        let size = item.buffered_size();
        if self.size + size > self.settings.buffer_size && !self.buffer.is_empty() {
            self.flush();
        }
        self.size += size;
        self.oldest.get_or_insert_with(Instant::now);
        if let Some(last) = self.buffer.last_mut() {
            match last.try_merge(item) {
                Ok(()) => return,
                Err(item) => self.buffer.push(item),
            }
        } else {
            self.buffer.push(item);
        }
        if self.size >= self.settings.buffer_size {
            self.flush();
        }
    }

    /// How long until buffered output must be sent (None: nothing buffered).
    pub fn due_in(&self) -> Option<std::time::Duration> {
        self.oldest
            .map(|t| self.settings.buffer_timeout.saturating_sub(t.elapsed()))
    }

    /// Sends buffered output if it is older than `buffer_timeout`.
    pub fn flush_if_due(&mut self) {
        if self.due_in().is_some_and(|d| d.is_zero()) {
            self.flush();
        }
    }

    /// Sends everything buffered as one `update`.
    pub fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let args = std::mem::take(&mut self.buffer);
        self.size = 0;
        self.oldest = None;
        let _ = self.peer.notify(Op::Update {
            command_id: self.command_id.clone(),
            args,
        });
    }

    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    pub fn command_id(&self) -> &str {
        &self.command_id
    }
}

fn wrap(stream: Stream, chunk: taskotron_common::protocol::LogChunk) -> UpdateItem {
    match stream {
        Stream::Stdout => UpdateItem::Stdout(chunk),
        Stream::Stderr => UpdateItem::Stderr(chunk),
        Stream::Header => UpdateItem::Header(chunk),
        Stream::Log(name) => UpdateItem::Log(name, chunk),
    }
}
