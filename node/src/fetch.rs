//! Streaming one blob from several providers at once, every byte verified.
//!
//! The blob is cut into [`SEGMENT`]-sized byte ranges. Each provider gets three workers, each of
//! which asks the provider for one run of consecutive segments at a time (an iroh-blobs range
//! request, checked against the BLAKE3 tree before the store keeps a byte), so faster
//! providers take more. A run starts at one segment (the first bytes come soonest) and doubles
//! while requests come back quickly, up to 4 MiB, so long transfers are not bound by round
//! trips.
//! Segments are fetched in the order the reader needs them: from the read position, no further
//! ahead than [`Options::window`]; a seek moves the position and the order with it. When nothing
//! is left to hand out, an idle worker repeats a segment that another provider has been slow
//! to deliver (whichever arrives first counts).
//!
//! A provider that sends data failing verification is marked corrupt (and avoided by later
//! fetches, see [`crate::transfer::Transfer`]) and dropped from this fetch; one that stalls for
//! [`Options::stall`] or whose connection fails is asked again after a pause, a few times
//! ([`RETRIES`]), since under load the only provider is often merely slow. Its segments go
//! back in the queue for the others meanwhile. A provider that is the only one serving gets
//! more patience: each retry waits twice as long for bytes (2, 4, 8 and 16 s by default) and
//! to connect, and after a stall it keeps its connection. A provider swamped by a crowd of new
//! listeners is slow for all of them; dropping them all after the same short wait, each to
//! reconnect, only adds to its load. The [`FetchReader`] blocks until the bytes it is asked for
//! are verified: nothing unverified ever reaches the decoder.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use iroh::EndpointId;
use iroh_blobs::Hash;
use iroh_blobs::api::remote::GetProgressItem;
use iroh_blobs::get::Stats;
use iroh_blobs::get::fsm::DecodeError;
use iroh_blobs::protocol::{ChunkRanges, ChunkRangesExt, GetRequest};
use tokio::sync::watch;
use tracing::debug;

use crate::library::StreamReader;
use crate::transfer::{CONNECT_TIMEOUT, Transfer};

/// Bytes of a segment: the unit of scheduling.
pub const SEGMENT: u64 = 64 * 1024;
/// Most segments in one request (4 MiB).
const MAX_RUN: usize = 64;
/// Requests in flight to one provider at a time, so that one transfer overlaps with the
/// store writing out the last.
const PIPELINE: usize = 3;
/// A request answered faster than this lets the next one ask for twice as much.
const FAST: Duration = Duration::from_millis(40);
/// A request slower than this halves the next one.
const SLOW: Duration = Duration::from_millis(400);
/// Times in a row a provider that stalled or failed (not one that sent corrupt data) is tried
/// again, after [`RETRY_AFTER`], doubling: a busy provider is often the only one there is.
/// An attempt that delivered something does not count: the provider is slow, not gone.
const RETRIES: u32 = 3;
/// The first pause before a retry.
const RETRY_AFTER: Duration = Duration::from_millis(250);
/// A provider serving a fetch alone whose connection stays up is waited for (its stalls do
/// not count towards [`RETRIES`]: a crowd that found only it makes it slow, not gone), but
/// not for ever: it is given up after this long without a byte.
const ALONE_GIVE_UP: Duration = Duration::from_secs(120);

/// How a fetch behaves.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// How far ahead of the read position to fetch, in bytes (segments before the position
    /// are filled in once everything after it is in).
    pub window: u64,
    /// A request that delivers nothing for this long counts as a stall: its segments are
    /// asked of another provider (a provider serving alone gets twice as long at each retry).
    pub stall: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            window: 16 * SEGMENT,
            stall: Duration::from_secs(2),
        }
    }
}

/// What became of a provider in one fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still serving, or served until the blob was complete.
    Serving,
    /// Sent data that failed verification.
    Corrupt,
    /// Delivered nothing for [`Options::stall`] while asked for bytes.
    Stalled,
    /// Could not be reached, lost the connection, or lacks the blob.
    Failed(String),
}

/// One provider's part in a fetch.
#[derive(Clone, Debug)]
pub struct Served {
    /// The provider.
    pub id: EndpointId,
    /// Verified payload bytes it delivered (repeated segments included).
    pub bytes: u64,
    /// Segments it delivered.
    pub segments: u32,
    /// How it ended.
    pub outcome: Outcome,
}

/// A fetch's account.
#[derive(Clone, Debug)]
pub struct Report {
    /// Every provider tried.
    pub providers: Vec<Served>,
    /// Times the reader, reading straight on, had to wait for bytes not yet verified.
    pub underruns: u32,
    /// Whether every byte of the blob is in the store.
    pub complete: bool,
}

/// Why a fetch could not go on.
#[derive(Clone, Debug, thiserror::Error)]
#[error("no provider could deliver {blob}: {reason}")]
pub struct FetchError {
    /// The blob.
    pub blob: String,
    /// What the providers did.
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Segment {
    Missing,
    InFlight { since: Instant, repeated: bool },
    Done,
}

#[derive(Debug)]
struct State {
    segments: Vec<Segment>,
    /// The segment the reader is at.
    position: usize,
    /// Where the reader's last read ended (waits there are underruns).
    read_end: Option<u64>,
    providers: Vec<Provider>,
    underruns: u32,
    closed: bool,
}

/// A provider in a fetch.
#[derive(Debug)]
struct Provider {
    served: Served,
    /// Attempts so far: a failing worker moves it on, and so stops its siblings.
    attempt: u32,
    /// Being asked, or waiting to be asked again.
    active: bool,
}

impl State {
    fn done(&self) -> bool {
        self.segments.iter().all(|s| *s == Segment::Done)
    }

    /// Whether provider `index` is the only one serving (no other is in the fetch and not
    /// failing).
    fn alone(&self, index: usize) -> bool {
        !self
            .providers
            .iter()
            .enumerate()
            .any(|(i, p)| i != index && p.active && p.served.outcome == Outcome::Serving)
    }

    fn failure(&self) -> Option<String> {
        let any_left = self.providers.iter().any(|p| p.active);
        (!any_left && !self.done()).then(|| {
            if self.providers.is_empty() {
                return "no providers were found".to_string();
            }
            self.providers
                .iter()
                .map(|p| format!("{}: {:?}", p.served.id.fmt_short(), p.served.outcome))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// The next segments for a worker whose segments take about `typical` each: at most
    /// `most` consecutive ones, starting with the one needed first.
    fn pick(&mut self, window: usize, typical: Duration, most: usize) -> Option<Range<usize>> {
        let n = self.segments.len();
        let ahead = self.position..(self.position + window).min(n);
        let missing = |s: &Segment| *s == Segment::Missing;
        let rest_done = self.segments[self.position.min(n)..]
            .iter()
            .all(|s| *s == Segment::Done);
        // The read position first, then the last segment (it proves the blob's size, which
        // the store needs before it reads anything back), then on through the window, then
        // (everything from the position on being in) what a seek skipped.
        let fresh = (self.position < n && missing(&self.segments[self.position]))
            .then_some((self.position, ahead.end))
            .or_else(|| missing(&self.segments[n - 1]).then_some((n - 1, n)))
            .or_else(|| {
                ahead
                    .clone()
                    .find(|&i| missing(&self.segments[i]))
                    .map(|i| (i, ahead.end))
            })
            .or_else(|| {
                rest_done
                    .then(|| (0..self.position).find(|&i| missing(&self.segments[i])))
                    .flatten()
                    .map(|i| (i, self.position))
            });
        let now = Instant::now();
        if let Some((start, limit)) = fresh {
            let mut end = start + 1;
            while end < limit && end - start < most && missing(&self.segments[end]) {
                end += 1;
            }
            for s in &mut self.segments[start..end] {
                *s = Segment::InFlight {
                    since: now,
                    repeated: false,
                };
            }
            return Some(start..end);
        }
        // Nothing left to hand out: repeat a segment another provider is slow with.
        let slow = (typical * 3).max(Duration::from_millis(20));
        let repeat = ahead.clone().find(|&i| {
            matches!(self.segments[i], Segment::InFlight { since, repeated: false }
                if since.elapsed() > slow)
        })?;
        self.segments[repeat] = Segment::InFlight {
            since: now,
            repeated: true,
        };
        Some(repeat..repeat + 1)
    }
}

struct Shared {
    hash: Hash,
    size: u64,
    options: Options,
    state: Mutex<State>,
    /// Wakes a blocked reader.
    arrived: Condvar,
    /// Wakes idle workers: the position moved, a segment came back, or the fetch closed.
    changed: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(&self) {
        self.changed.send_modify(|g| *g += 1);
        self.arrived.notify_all();
    }

    fn window(&self) -> usize {
        self.options.window.div_ceil(SEGMENT).max(1) as usize
    }

    fn range(&self, segment: usize) -> std::ops::Range<u64> {
        let start = segment as u64 * SEGMENT;
        start..(start + SEGMENT).min(self.size)
    }
}

/// A fetch under way; dropping it stops the workers (what is verified stays in the store).
/// While it lives, the blob is safe from the store's garbage collection; to keep it longer,
/// tag it (the cache does).
pub struct Fetch {
    shared: Arc<Shared>,
    transfer: Transfer,
    _protected: Option<iroh_blobs::api::TempTag>,
}

impl std::fmt::Debug for Fetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fetch({})", self.shared.hash)
    }
}

impl Drop for Fetch {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake();
    }
}

impl Fetch {
    /// Starts fetching `blob` (`size` bytes, as its manifest says) from `providers`, skipping
    /// what the store already holds. Must be called within the runtime.
    pub async fn start(
        transfer: &Transfer,
        blob: Hash,
        size: u64,
        providers: Vec<iroh::EndpointAddr>,
        options: Options,
    ) -> Self {
        let count = size.div_ceil(SEGMENT).max(1) as usize;
        let held = transfer.held(blob).await;
        let segments = (0..count)
            .map(|i| {
                let start = i as u64 * SEGMENT;
                let range = ChunkRanges::bytes(start..(start + SEGMENT).min(size));
                if held.is_superset(&range) {
                    Segment::Done
                } else {
                    Segment::Missing
                }
            })
            .collect();
        let shared = Arc::new(Shared {
            hash: blob,
            size,
            options,
            state: Mutex::new(State {
                segments,
                position: 0,
                read_end: None,
                providers: Vec::new(),
                underruns: 0,
                closed: false,
            }),
            arrived: Condvar::new(),
            changed: watch::channel(0).0,
        });
        let protected = transfer.store().tags().temp_tag(blob).await;
        if let Err(e) = &protected {
            debug!(%blob, "could not protect a blob being fetched: {e}");
        }
        let fetch = Self {
            shared,
            transfer: transfer.clone(),
            _protected: protected.ok(),
        };
        for p in providers {
            fetch.add_provider(p);
        }
        fetch
    }

    /// Adds a provider (ignored if it is already in this fetch).
    pub fn add_provider(&self, addr: iroh::EndpointAddr) {
        let index = {
            let mut state = self.shared.lock();
            if state.providers.iter().any(|p| p.served.id == addr.id) {
                return;
            }
            state.providers.push(Provider {
                served: Served {
                    id: addr.id,
                    bytes: 0,
                    segments: 0,
                    outcome: Outcome::Serving,
                },
                attempt: 0,
                active: true,
            });
            state.providers.len() - 1
        };
        tokio::spawn(provider(
            self.shared.clone(),
            self.transfer.clone(),
            addr,
            index,
        ));
    }

    /// A blocking reader of the blob that waits for verified bytes; for the decoder's thread.
    pub fn reader(&self, store: StreamReader) -> FetchReader {
        FetchReader {
            shared: self.shared.clone(),
            store,
            pos: 0,
            store_pos: None,
        }
    }

    /// Waits until the whole blob is in the store (as far as the window lets the fetch go),
    /// or until no provider is left.
    pub async fn finished(&self) -> Result<Report, FetchError> {
        let mut changed = self.shared.changed.subscribe();
        loop {
            {
                let state = self.shared.lock();
                if state.done() {
                    return Ok(self.report_of(&state));
                }
                if let Some(reason) = state.failure() {
                    return Err(FetchError {
                        blob: self.shared.hash.to_string(),
                        reason,
                    });
                }
            }
            if changed.changed().await.is_err() {
                return Ok(self.report());
            }
        }
    }

    /// The account so far.
    pub fn report(&self) -> Report {
        self.report_of(&self.shared.lock())
    }

    fn report_of(&self, state: &State) -> Report {
        Report {
            providers: state.providers.iter().map(|p| p.served.clone()).collect(),
            underruns: state.underruns,
            complete: state.done(),
        }
    }
}

/// One provider's part in a fetch: [`PIPELINE`] workers asking it at once; when one fails,
/// the others stop, and the provider is asked again later unless it sent corrupt data or
/// has failed [`RETRIES`] times in a row without delivering anything.
async fn provider(shared: Arc<Shared>, transfer: Transfer, addr: iroh::EndpointAddr, index: usize) {
    let id = addr.id;
    // Attempts that delivered nothing, in a row; and failed attempts in all (at most
    // RETRIES), which set the patience of the next.
    let (mut failures, mut failed) = (0, 0);
    let mut delivered = Instant::now();
    for attempt in 0.. {
        let before = shared.lock().providers[index].served.bytes;
        let workers =
            (0..PIPELINE).map(|_| serve(&shared, &transfer, addr.clone(), index, attempt, failed));
        futures::future::join_all(workers).await;
        let (outcome, progressed) = {
            let state = shared.lock();
            let p = &state.providers[index];
            if p.attempt == attempt || state.closed || state.done() {
                // No worker failed (the blob is in, or the fetch was dropped), or one did
                // but nothing is left to ask for.
                break;
            }
            (p.served.outcome.clone(), p.served.bytes > before)
        };
        failed = (failed + 1).min(RETRIES);
        let waited_for = match outcome {
            Outcome::Corrupt => {
                transfer.forget_connection(id);
                transfer.mark_corrupt(id);
                break;
            }
            // Alone, it is slow rather than gone (QUIC closes a silent connection): keep the
            // connection, and wait for it.
            Outcome::Stalled if shared.lock().alone(index) => true,
            _ => {
                transfer.forget_connection(id);
                false
            }
        };
        if progressed {
            (failures, delivered) = (0, Instant::now());
        } else if !waited_for {
            failures += 1;
        }
        debug!(provider = %id.fmt_short(), blob = %shared.hash, ?outcome, attempt, failures, "provider dropped");
        if failures > RETRIES || delivered.elapsed() > ALONE_GIVE_UP {
            break;
        }
        tokio::time::sleep(RETRY_AFTER * 2u32.pow(failures.saturating_sub(1))).await;
    }
    shared.lock().providers[index].active = false;
    shared.wake();
}

/// One worker of attempt `attempt` at a provider, after `failed` attempts that failed (at most
/// [`RETRIES`]): asks it for one run of segments at a time until nothing is left, the
/// fetch closes, or the attempt ends (this worker or a sibling failed, and recorded how).
async fn serve(
    shared: &Shared,
    transfer: &Transfer,
    addr: iroh::EndpointAddr,
    index: usize,
    attempt: u32,
    failed: u32,
) {
    let mut changed = shared.changed.subscribe();
    // Alone, a provider gets more patience after each attempt that failed.
    let patience = |base: Duration| {
        if shared.lock().alone(index) {
            base * 2u32.pow(failed)
        } else {
            base
        }
    };
    let conn = match transfer.connection(addr, patience(CONNECT_TIMEOUT)).await {
        Ok(c) => c,
        Err(e) => return fail(shared, index, attempt, Outcome::Failed(e.to_string())),
    };
    let mut typical = Duration::ZERO;
    // Segments per request: one to start with (the first bytes come soonest), doubling while
    // requests come back quickly, so long runs are not bound by round trips.
    let mut most = 1;
    loop {
        let picked = {
            let mut state = shared.lock();
            // Done, cancelled, or a sibling found the provider failing: stop asking it.
            if state.closed || state.done() || state.providers[index].attempt != attempt {
                return;
            }
            state.pick(shared.window(), typical, most)
        };
        let Some(segments) = picked else {
            // Wait for the position to move or a segment to come back; look again now and then
            // for slow segments to repeat.
            let _ = tokio::time::timeout(Duration::from_millis(25), changed.changed()).await;
            continue;
        };
        let range = shared.range(segments.start).start..shared.range(segments.end - 1).end;
        let request = GetRequest::blob_ranges(shared.hash, ChunkRanges::bytes(range));
        let started = Instant::now();
        let result = get(transfer, &conn, request, patience(shared.options.stall)).await;
        let outcome = match result {
            Ok(stats) => {
                let count = segments.len();
                let took = started.elapsed();
                let each = took / count as u32;
                typical = if typical.is_zero() {
                    each
                } else {
                    (typical * 3 + each) / 4
                };
                most = if took < FAST {
                    (most * 2).min(MAX_RUN)
                } else if took > SLOW {
                    (most / 2).max(1)
                } else {
                    most
                };
                transfer.record_speed(addr_id(&conn), each);
                let mut state = shared.lock();
                for s in &mut state.segments[segments] {
                    *s = Segment::Done;
                }
                let p = &mut state.providers[index];
                p.served.bytes += stats.payload_bytes_read;
                p.served.segments += count as u32;
                if p.attempt == attempt {
                    // Serving again after a failure.
                    p.served.outcome = Outcome::Serving;
                }
                drop(state);
                shared.wake();
                continue;
            }
            Err(outcome) => outcome,
        };
        let mut state = shared.lock();
        for s in &mut state.segments[segments] {
            if let Segment::InFlight { .. } = s {
                *s = Segment::Missing;
            }
        }
        drop(state);
        return fail(shared, index, attempt, outcome);
    }
}

/// Records how attempt `attempt` at provider `index` failed, unless a sibling worker did
/// first; moving the attempt on stops the siblings.
fn fail(shared: &Shared, index: usize, attempt: u32, outcome: Outcome) {
    let mut state = shared.lock();
    let p = &mut state.providers[index];
    if p.attempt == attempt {
        p.attempt += 1;
        p.served.outcome = outcome;
    }
    drop(state);
    shared.wake();
}

/// Runs one range request. A provider that delivers nothing for `stall` has stalled; one
/// that keeps sending has not, however long the run it was asked for takes.
async fn get(
    transfer: &Transfer,
    conn: &iroh::endpoint::Connection,
    request: GetRequest,
    stall: Duration,
) -> Result<Stats, Outcome> {
    let progress = transfer
        .store()
        .remote()
        .execute_get(conn.clone(), request)
        .stream();
    let mut progress = std::pin::pin!(progress);
    loop {
        match tokio::time::timeout(stall, progress.next()).await {
            Err(_) => return Err(Outcome::Stalled),
            Ok(Some(GetProgressItem::Progress(_))) => {}
            Ok(Some(GetProgressItem::Done(stats))) => return Ok(stats),
            Ok(Some(GetProgressItem::Error(e))) => return Err(classify(&e)),
            Ok(None) => {
                return Err(Outcome::Failed(
                    "the request ended without a result".to_string(),
                ));
            }
        }
    }
}

fn addr_id(conn: &iroh::endpoint::Connection) -> EndpointId {
    conn.remote_id()
}

/// Data that fails verification is corruption; anything else is a failure of this provider.
pub(crate) fn classify(e: &iroh_blobs::get::GetError) -> Outcome {
    use iroh_blobs::get::GetError;
    match e {
        GetError::Decode {
            source: DecodeError::ParentHashMismatch { .. } | DecodeError::LeafHashMismatch { .. },
            ..
        } => Outcome::Corrupt,
        e => Outcome::Failed(e.to_string()),
    }
}

/// Reads a fetched blob with blocking calls, waiting for each byte to be verified.
pub struct FetchReader {
    shared: Arc<Shared>,
    store: StreamReader,
    pos: u64,
    /// Where the store reader stands, if known.
    store_pos: Option<u64>,
}

impl std::fmt::Debug for FetchReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FetchReader({} at {})", self.shared.hash, self.pos)
    }
}

impl Read for FetchReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self.shared.size;
        if self.pos >= size || buf.is_empty() {
            return Ok(0);
        }
        let segment = (self.pos / SEGMENT) as usize;
        let available = {
            let mut state = self.shared.lock();
            if state.position != segment {
                state.position = segment;
                self.shared.changed.send_modify(|g| *g += 1);
            }
            let straight_on = state.read_end == Some(self.pos);
            let mut waited = false;
            while state.segments[segment] != Segment::Done {
                if let Some(reason) = state.failure() {
                    return Err(std::io::Error::other(FetchError {
                        blob: self.shared.hash.to_string(),
                        reason,
                    }));
                }
                if state.closed {
                    return Err(std::io::Error::other("the fetch was stopped"));
                }
                if straight_on && !waited {
                    state.underruns += 1;
                    waited = true;
                }
                state = self
                    .shared
                    .arrived
                    .wait_timeout(state, Duration::from_millis(100))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            let mut end = segment;
            while end < state.segments.len() && state.segments[end] == Segment::Done {
                end += 1;
            }
            (end as u64 * SEGMENT).min(size) - self.pos
        };
        let want = buf.len().min(available as usize);
        if self.store_pos != Some(self.pos) {
            self.store.seek(SeekFrom::Start(self.pos))?;
        }
        let n = self.store.read(&mut buf[..want])?;
        self.pos += n as u64;
        self.store_pos = Some(self.pos);
        self.shared.lock().read_end = Some(self.pos);
        Ok(n)
    }
}

impl Seek for FetchReader {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let size = self.shared.size as i128;
        let target = match pos {
            SeekFrom::Start(p) => i128::from(p),
            SeekFrom::End(d) => size + i128::from(d),
            SeekFrom::Current(d) => i128::from(self.pos) + i128::from(d),
        };
        if target < 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start of the track",
            ));
        }
        self.pos = target as u64;
        Ok(self.pos)
    }
}

/// Per-provider speed, kept across fetches.
#[derive(Debug, Default)]
pub(crate) struct Scores {
    /// Providers caught sending bad data, and when.
    corrupt: HashMap<EndpointId, Instant>,
    /// A moving average of each provider's time per segment.
    speed: HashMap<EndpointId, Duration>,
}

/// How long a provider caught sending bad data is avoided.
pub const CORRUPT_BAN: Duration = Duration::from_secs(3600);

impl Scores {
    pub(crate) fn mark_corrupt(&mut self, id: EndpointId) {
        self.corrupt.insert(id, Instant::now());
    }

    pub(crate) fn is_corrupt(&self, id: &EndpointId) -> bool {
        self.corrupt
            .get(id)
            .is_some_and(|at| at.elapsed() < CORRUPT_BAN)
    }

    pub(crate) fn record(&mut self, id: EndpointId, took: Duration) {
        let s = self.speed.entry(id).or_insert(took);
        *s = (*s * 3 + took) / 4;
    }

    /// Providers worth asking, fastest known first, unknown ones after them.
    pub(crate) fn rank(&self, mut providers: Vec<iroh::EndpointAddr>) -> Vec<iroh::EndpointAddr> {
        providers.retain(|p| !self.is_corrupt(&p.id));
        providers.sort_by_key(|p| self.speed.get(&p.id).copied().unwrap_or(Duration::MAX));
        providers
    }
}
