//! Time as a node reads it: [`Clock`] is the one seam through which the daemon learns the time
//! (a receipt's `started_at_ms`, the month a receipt falls in and the months served, how long
//! a listen took, the pace of a clocked sink, the cache's last-use times). [`Clock::system`]
//! reads the system clock; a [`ManualClock`] stands still until a test (or a testnet) moves
//! it, so month rollovers and listen lengths can be tested exactly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// How long a blocked [`Clock::wait_until`] sleeps between looks at its stop flag.
const SLICE: Duration = Duration::from_millis(20);

/// A source of Unix-millisecond time; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Clock(Source);

#[derive(Clone, Debug, Default)]
enum Source {
    #[default]
    System,
    Manual(Arc<Manual>),
}

#[derive(Debug)]
struct Manual {
    now: Mutex<u64>,
    moved: Condvar,
    /// The latest time a thread started waiting for (what [`ManualClock::waited_for`] sees).
    waiting: watch::Sender<u64>,
}

impl Manual {
    fn lock(&self) -> MutexGuard<'_, u64> {
        self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(Source::System)
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        match &self.0 {
            Source::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            Source::Manual(m) => *m.lock(),
        }
    }

    /// Blocks the calling thread until the clock reads `ms` or later; gives up (returning
    /// `false`) as soon as `stop` is set. Never call it from async code.
    pub fn wait_until(&self, ms: u64, stop: &AtomicBool) -> bool {
        match &self.0 {
            Source::System => loop {
                if stop.load(Ordering::Relaxed) {
                    return false;
                }
                let left = ms.saturating_sub(self.now_ms());
                if left == 0 {
                    return true;
                }
                std::thread::sleep(SLICE.min(Duration::from_millis(left)));
            },
            Source::Manual(m) => {
                let mut now = m.lock();
                if *now < ms {
                    m.waiting.send_if_modified(|w| {
                        let later = *w < ms;
                        *w = (*w).max(ms);
                        later
                    });
                }
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return false;
                    }
                    if *now >= ms {
                        return true;
                    }
                    now = m
                        .moved
                        .wait_timeout(now, SLICE)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
    }
}

/// A clock that moves only when told to: give [`ManualClock::clock`] to a node, then move it.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Manual>);

impl ManualClock {
    /// A clock standing at `now_ms` (Unix milliseconds).
    pub fn new(now_ms: u64) -> Self {
        Self(Arc::new(Manual {
            now: Mutex::new(now_ms),
            moved: Condvar::new(),
            waiting: watch::Sender::new(0),
        }))
    }

    /// The [`Clock`] that reads this one.
    pub fn clock(&self) -> Clock {
        Clock(Source::Manual(self.0.clone()))
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        *self.0.lock()
    }

    /// Moves the clock `ms` forward and wakes those waiting for it.
    pub fn advance(&self, ms: u64) {
        let mut now = self.0.lock();
        *now = now.saturating_add(ms);
        self.0.moved.notify_all();
    }

    /// Waits until some thread waits (in [`Clock::wait_until`]) for `ms` or a later time: a
    /// clocked sink does so once it has played up to `ms`.
    pub async fn waited_for(&self, ms: u64) {
        let mut waiting = self.0.waiting.subscribe();
        let _ = waiting.wait_for(|w| *w >= ms).await;
    }
}
