//! Detectors of fraud over a home node's month of receipts (`docs/detectors.md` says what
//! each looks at, its threshold, why, and what honest listening could trip it). Pure and
//! deterministic: a reviewer runs them to raise a suspect dispute, and the arbiter runs them
//! again on the evidence, so both see the same figures. A finding never changes a tally by
//! itself; only a verdict excludes receipts.
//!
//! The rules' own checks (equivocation, overlap) are in settlement, which voids those
//! receipts; the detectors look at receipts the rules keep.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::daily::Day;
use crate::key::{ContentHash, PublicKey};
use crate::manifest::SignedManifest;
use crate::receipt::SignedReceipt;

/// Listening in one UTC day above which one listener is not a person: 20 hours.
pub const LONG_DAY_MS: u64 = 20 * 3_600_000;
/// Plays of one track by one listener in one day that make a loop.
pub const LOOP_PLAYS: u32 = 25;
/// An artist's day is a burst when its plays are this many times its trailing mean ...
pub const BURST_FACTOR: u64 = 10;
/// ... and at least this many.
pub const BURST_MIN_PLAYS: u64 = 100;
/// Days of trailing baseline a burst is measured against (a day needs them all before it).
pub const BURST_BASELINE_DAYS: usize = 7;
/// A listener is devoted to one artist when this share (per mille) of its plays, and at
/// least [`DEVOTED_MIN_PLAYS`], go to it ...
pub const DEVOTED_PER_MILLE: u64 = 900;
/// ... out of at least this many plays.
pub const DEVOTED_MIN_PLAYS: u32 = 20;
/// This many devoted listeners of one artist at one home node make a farm.
pub const FARM_LISTENERS: usize = 20;
/// A listen may start this long before its release's signed publication time (clocks
/// drift) before it is one the listener's node could not have fetched: one hour.
pub const PUBLISH_SLACK_MS: u64 = 3_600_000;
/// A listen may last this much longer than the track the release says it is (the length
/// rule's slack) before it is one no node could have played.
pub const PLAY_SLACK_MS: u64 = 2_000;

/// What a release says of a track: when it was published and how long it lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackFacts {
    /// The release's signed publication time.
    pub published_at_ms: u64,
    /// The track's duration.
    pub duration_ms: u32,
}

/// The tracks of the releases a node holds, by content hash.
pub type Tracks = BTreeMap<ContentHash, TrackFacts>;

/// The tracks of `manifests` (valid ones, as the catalog keeps them); a track in several
/// releases keeps its earliest publication.
pub fn tracks_of(manifests: &[SignedManifest]) -> Tracks {
    let mut out = Tracks::new();
    for m in manifests {
        for t in &m.manifest.tracks {
            let facts = TrackFacts {
                published_at_ms: m.manifest.published_at_ms,
                duration_ms: t.duration_ms,
            };
            out.entry(t.hash)
                .and_modify(|f| {
                    if facts.published_at_ms < f.published_at_ms {
                        *f = facts;
                    }
                })
                .or_insert(facts);
        }
    }
    out
}

/// What a detector looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Detector {
    /// More listening in a day than a person can do.
    LongDay,
    /// One track looped by one listener in a day.
    Loop,
    /// An artist's plays bursting against its own trailing baseline.
    Burst,
    /// Many listeners of one home node each devoted to one artist.
    Farm,
    /// One content hash claimed by several artists.
    ContestedTrack,
    /// Listens the listener's node could not have fetched (before the release was
    /// published) or played (longer than the track lasts).
    Impossible,
}

/// One finding, with its evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The detector.
    pub detector: Detector,
    /// What it is about: a listener, an artist or a track, as hex, and the day where one
    /// applies.
    pub subject: String,
    /// The figure measured.
    pub figure: u64,
    /// The threshold it passed.
    pub threshold: u64,
    /// `figure` per mille of `threshold` (1000 is at the threshold).
    pub score: u64,
    /// The receipts in question.
    pub receipts: Vec<ContentHash>,
}

impl Finding {
    fn new(
        detector: Detector,
        subject: String,
        figure: u64,
        threshold: u64,
        receipts: impl IntoIterator<Item = ContentHash>,
    ) -> Self {
        let mut receipts: Vec<ContentHash> = receipts.into_iter().collect();
        receipts.sort_unstable();
        receipts.dedup();
        Self {
            detector,
            subject,
            figure,
            threshold,
            score: figure.saturating_mul(1000) / threshold.max(1),
            receipts,
        }
    }
}

/// Runs every detector over `receipts` (a home node's month, as its bundle uses them), with
/// the `tracks` of the releases known (a track not among them is not judged impossible);
/// findings in a fixed order.
pub fn detect(receipts: &[SignedReceipt], tracks: &Tracks) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut impossible: BTreeMap<PublicKey, Vec<ContentHash>> = BTreeMap::new();
    for r in receipts {
        let x = &r.receipt;
        let Some(t) = tracks.get(&x.track) else {
            continue;
        };
        let early = x.started_at_ms.saturating_add(PUBLISH_SLACK_MS) < t.published_at_ms;
        let long = u64::from(x.listened_ms) > u64::from(t.duration_ms) + PLAY_SLACK_MS;
        if early || long {
            impossible.entry(x.listener).or_default().push(r.id());
        }
    }
    let day_of = |r: &SignedReceipt| Day::containing(r.receipt.started_at_ms);
    // Per listener and day, and per listener, track and day.
    let mut days: BTreeMap<(PublicKey, Day), (u64, Vec<ContentHash>)> = BTreeMap::new();
    let mut loops: BTreeMap<(PublicKey, ContentHash, Day), Vec<ContentHash>> = BTreeMap::new();
    let mut artist_days: BTreeMap<PublicKey, BTreeMap<Day, Vec<ContentHash>>> = BTreeMap::new();
    let mut per_listener: BTreeMap<PublicKey, BTreeMap<PublicKey, Vec<ContentHash>>> =
        BTreeMap::new();
    let mut claims: BTreeMap<ContentHash, BTreeMap<PublicKey, Vec<ContentHash>>> = BTreeMap::new();
    for r in receipts {
        let Some(day) = day_of(r) else { continue };
        let (id, x) = (r.id(), &r.receipt);
        let d = days.entry((x.listener, day)).or_default();
        d.0 += u64::from(x.listened_ms);
        d.1.push(id);
        loops
            .entry((x.listener, x.track, day))
            .or_default()
            .push(id);
        artist_days
            .entry(x.artist)
            .or_default()
            .entry(day)
            .or_default()
            .push(id);
        per_listener
            .entry(x.listener)
            .or_default()
            .entry(x.artist)
            .or_default()
            .push(id);
        claims
            .entry(x.track)
            .or_default()
            .entry(x.artist)
            .or_default()
            .push(id);
    }
    for ((listener, day), (ms, ids)) in days {
        if ms > LONG_DAY_MS {
            out.push(Finding::new(
                Detector::LongDay,
                format!("listener {listener} on {day}"),
                ms,
                LONG_DAY_MS,
                ids,
            ));
        }
    }
    for ((listener, track, day), ids) in loops {
        if ids.len() >= LOOP_PLAYS as usize {
            out.push(Finding::new(
                Detector::Loop,
                format!("listener {listener}, track {track} on {day}"),
                ids.len() as u64,
                u64::from(LOOP_PLAYS),
                ids,
            ));
        }
    }
    for (artist, by_day) in &artist_days {
        let all: Vec<(&Day, &Vec<ContentHash>)> = by_day.iter().collect();
        for (day, ids) in &all {
            // The trailing days of the same month, counted zero where it had no plays.
            let trailing: Vec<u64> = (1..=BURST_BASELINE_DAYS)
                .map(|back| {
                    previous_day(**day, back)
                        .and_then(|d| by_day.get(&d))
                        .map_or(0, |v| v.len() as u64)
                })
                .collect();
            if previous_day(**day, BURST_BASELINE_DAYS).is_none() {
                continue;
            }
            let mean = (trailing.iter().sum::<u64>() / BURST_BASELINE_DAYS as u64).max(1);
            let plays = ids.len() as u64;
            let threshold = (mean * BURST_FACTOR).max(BURST_MIN_PLAYS);
            if plays >= threshold {
                out.push(Finding::new(
                    Detector::Burst,
                    format!("artist {artist} on {day}"),
                    plays,
                    threshold,
                    ids.iter().copied(),
                ));
            }
        }
    }
    let mut devoted: BTreeMap<PublicKey, Vec<(PublicKey, &Vec<ContentHash>)>> = BTreeMap::new();
    for (listener, artists) in &per_listener {
        let total: usize = artists.values().map(Vec::len).sum();
        if let Some((artist, ids)) = artists.iter().max_by_key(|(_, ids)| ids.len())
            && total >= DEVOTED_MIN_PLAYS as usize
            && (ids.len() as u64) * 1000 >= DEVOTED_PER_MILLE * total as u64
        {
            devoted.entry(*artist).or_default().push((*listener, ids));
        }
    }
    for (artist, listeners) in devoted {
        if listeners.len() >= FARM_LISTENERS {
            out.push(Finding::new(
                Detector::Farm,
                format!("artist {artist}"),
                listeners.len() as u64,
                FARM_LISTENERS as u64,
                listeners.iter().flat_map(|(_, ids)| ids.iter().copied()),
            ));
        }
    }
    for (track, artists) in claims {
        if artists.len() > 1 {
            out.push(Finding::new(
                Detector::ContestedTrack,
                format!("track {track}"),
                artists.len() as u64,
                1,
                artists.values().flatten().copied(),
            ));
        }
    }
    for (listener, ids) in impossible {
        out.push(Finding::new(
            Detector::Impossible,
            format!("listener {listener}"),
            ids.len() as u64,
            1,
            ids,
        ));
    }
    out
}

/// The receipts any finding names.
pub fn flagged(findings: &[Finding]) -> BTreeSet<ContentHash> {
    findings
        .iter()
        .flat_map(|f| f.receipts.iter().copied())
        .collect()
}

/// The day `back` days before `day` in the same month, if there is one.
fn previous_day(day: Day, back: usize) -> Option<Day> {
    let d = usize::from(day.day()).checked_sub(back)?;
    Day::new(day.month(), u8::try_from(d).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::ListenerSecret;
    use crate::month::Month;
    use crate::receipt::Receipt;

    fn october() -> Month {
        "2026-10".parse().unwrap()
    }

    fn play(listener: u8, seq: u64, track: u8, artist: u8, at_ms: u64) -> SignedReceipt {
        let key = ListenerSecret::from_bytes([listener; 32]).month_key(october());
        Receipt {
            listener: key.public(),
            seq,
            track: ContentHash([track; 32]),
            artist: PublicKey([artist; 32]),
            started_at_ms: october().bounds_ms().0 + at_ms,
            listened_ms: 180_000,
            track_ms: 180_000,
            home_node: PublicKey([9; 32]),
        }
        .sign(&key)
    }

    #[test]
    fn honest_listening_trips_nothing() {
        // 10 listeners, 3 hours a day over 10 artists and many tracks, for 30 days.
        let mut all = Vec::new();
        for l in 0..10u8 {
            for day in 0..30u64 {
                for i in 0..60u64 {
                    let seq = day * 60 + i;
                    let t = (seq * 7 + u64::from(l)) % 200;
                    let at = day * 86_400_000 + 8 * 3_600_000 + i * 180_000;
                    all.push(play(l + 1, seq, t as u8, (t % 10) as u8, at));
                }
            }
        }
        assert_eq!(detect(&all, &Tracks::new()), vec![]);
    }

    #[test]
    fn a_looper_a_long_day_a_farm_and_a_contested_track_are_found() {
        let mut all = Vec::new();
        // Listener 1 loops track 5 of artist 1 all day: 400 plays of 3 minutes = 20 h.
        for i in 0..401u64 {
            all.push(play(1, i, 5, 1, i * 180_000));
        }
        // 20 listeners each play artist 2 only, 25 times a day on the 3rd.
        for l in 0..20u8 {
            for i in 0..25u64 {
                all.push(play(
                    50 + l,
                    i,
                    100 + (i % 5) as u8,
                    2,
                    2 * 86_400_000 + i * 200_000,
                ));
            }
        }
        // Track 7 listed under two artists.
        all.push(play(90, 0, 7, 3, 5 * 86_400_000));
        all.push(play(91, 0, 7, 4, 5 * 86_400_000));
        let found = detect(&all, &Tracks::new());
        let kinds: BTreeSet<Detector> = found.iter().map(|f| f.detector).collect();
        assert!(kinds.contains(&Detector::Loop));
        assert!(kinds.contains(&Detector::LongDay));
        assert!(kinds.contains(&Detector::Farm));
        assert!(kinds.contains(&Detector::ContestedTrack));
        let farm = found.iter().find(|f| f.detector == Detector::Farm).unwrap();
        assert_eq!(farm.figure, 20);
        assert_eq!(farm.receipts.len(), 500);
        assert_eq!(farm.score, 1000);
        let contested = found
            .iter()
            .find(|f| f.detector == Detector::ContestedTrack)
            .unwrap();
        assert_eq!(contested.receipts.len(), 2);
        // The loop covers the looper's plays on the 1st and the 2nd.
        assert_eq!(
            found
                .iter()
                .filter(|f| f.detector == Detector::Loop)
                .map(|f| f.receipts.len())
                .sum::<usize>(),
            401
        );
    }

    #[test]
    fn a_burst_is_measured_against_the_artists_own_week() {
        let mut all = Vec::new();
        let mut seq = 0;
        // Artist 1: 5 plays a day for a week, then 200 on the 9th, from many listeners.
        for day in 0..8u64 {
            for i in 0..5u64 {
                all.push(play(1, seq, i as u8, 1, day * 86_400_000 + i * 200_000));
                seq += 1;
            }
        }
        for i in 0..200u64 {
            all.push(play(
                10 + (i % 100) as u8,
                1000 + i,
                (i % 50) as u8,
                1,
                8 * 86_400_000 + (i / 100) * 200_000,
            ));
        }
        let found = detect(&all, &Tracks::new());
        let burst: Vec<_> = found
            .iter()
            .filter(|f| f.detector == Detector::Burst)
            .collect();
        assert_eq!(burst.len(), 1);
        assert_eq!(burst[0].figure, 200);
        assert_eq!(burst[0].threshold, 100);
        assert!(burst[0].subject.ends_with("2026-10-09"));
    }

    #[test]
    fn listens_before_the_release_or_longer_than_the_track_are_impossible() {
        let published = october().bounds_ms().0 + 10 * 86_400_000;
        let tracks = Tracks::from([(
            ContentHash([5; 32]),
            TrackFacts {
                published_at_ms: published,
                duration_ms: 180_000,
            },
        )]);
        let day = |d: u64| d * 86_400_000;
        let early = play(1, 0, 5, 1, day(8));
        let within_slack = play(1, 1, 5, 1, day(10) - 1_800_000);
        let fine = play(2, 0, 5, 1, day(11));
        let mut long = play(3, 0, 5, 1, day(12));
        long.receipt.listened_ms = 240_000;
        long.receipt.track_ms = 240_000; // the receipt lies about the track's length
        let unknown = play(4, 0, 6, 1, day(1)); // a track of no release known here
        let all = [early, within_slack, fine, long, unknown];
        let found = detect(&all, &tracks);
        let impossible: Vec<&Finding> = found
            .iter()
            .filter(|f| f.detector == Detector::Impossible)
            .collect();
        assert_eq!(impossible.len(), 2, "{found:?}");
        assert_eq!(flagged(&found), BTreeSet::from([early.id(), long.id()]));
    }
}
