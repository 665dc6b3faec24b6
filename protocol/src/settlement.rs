//! Settlement: a month of receipts and subscriptions, plus each listener's carry, to a
//! [`Tally`], exactly as `settlement.md` says. Pure and deterministic: the same inputs, in any
//! order and with any copies, give the same tally on every machine.
//!
//! Steps: keep the month's receipts; sort them (so each listener's receipts are contiguous and
//! their signatures batch well, and copies of one signed message are neighbours); make each
//! signed message one receipt, valid when any of its copies verifies (batched, on all cores);
//! judge each listener's receipts against rules 2 to 4 and rank its artists, in parallel; pick
//! each listener's counting subscription (copies of one subscription are one, likewise); split
//! the pools.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::ops::Range;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::key::{ContentHash, PublicKey};
use crate::money::{ARTIST_POOL, MicroUsdp, OPERATOR_SHARE};
use crate::month::Month;
use crate::receipt::{Receipt, SignedReceipt};
use crate::signature::verify_any;
use crate::subscription::{SignedSubscription, Subscription};
use crate::tally::{Flag, Stats, Tally, VoidCounts};

/// Listens needed before the `listened_ms` of a receipt makes it a qualified listen.
const QUALIFY_MS: u32 = 30_000;
/// Slack allowed past the track's end (rule 2).
const LENGTH_SLACK_MS: u64 = 2_000;
/// Overlap allowed between consecutive listens (rule 4).
const OVERLAP_SLACK_MS: u64 = 1_000;
/// Artists in a subscriber's top list.
pub const TOP: usize = 9;

/// What settlement reads.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The month to settle.
    pub month: Month,
    /// Receipts, in any order, possibly with copies and receipts of other months.
    pub receipts: &'a [SignedReceipt],
    /// Subscriptions, in any order, possibly of other months.
    pub subscriptions: &'a [SignedSubscription],
    /// Each listener's carry from earlier months, keyed by its key for this month.
    pub carry_in: &'a BTreeMap<PublicKey, MicroUsdp>,
}

/// Why a month cannot be settled.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SettlementError {
    /// An amount would not fit in 64 bits: the carry-in is absurd.
    #[error("amounts overflow 64 bits (listener or artist {0}): check the carry-in")]
    Overflow(PublicKey),
}

/// One artist in a listener's ranking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Played {
    artist: PublicKey,
    plays: u64,
    ms: u64,
}

/// The rule that voids a receipt (`settlement.md`, "Which listens count").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// 1: no valid signature.
    Signature,
    /// 2: `track_ms` is 0, or more was listened than the track lasts.
    Length,
    /// 3: another receipt of the listener has the same seq.
    Equivocation,
    /// 4: it overlaps the listen before it.
    Overlap,
}

/// How settlement judges one receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Judgement {
    /// Void, by this rule.
    Void(Rule),
    /// Kept, but listened to less than `min(30 s, half the track)`: not a qualified listen.
    Kept,
    /// A qualified listen: it ranks the artist.
    Qualified,
}

/// What one listener's receipts amount to.
#[derive(Debug)]
struct Judged {
    listener: PublicKey,
    /// Each receipt's judgement, in the order given.
    each: Vec<Judgement>,
    void: VoidCounts,
    flags: Vec<Flag>,
    kept: u64,
    qualified: u64,
    /// The top artists by the ranking of `settlement.md`, at most [`TOP`].
    top: Vec<Played>,
}

/// Which signatures settlement checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Receipts {
    /// Every receipt's (rule 1).
    Verify,
    /// None: the caller verified each receipt given already.
    Verified,
}

/// Settles a month.
pub fn settle(input: Input<'_>) -> Result<Tally, SettlementError> {
    settle_receipts(input, Receipts::Verify)
}

/// Settles a month whose receipts the caller has verified already, each one (a node's store
/// holds only receipts it verified when it took them): the same tally as [`settle`] without
/// verifying them again. Subscriptions are still verified. Given a receipt whose signature
/// does not verify, the tally is wrong: use [`settle`] for anything not checked.
pub fn settle_verified(input: Input<'_>) -> Result<Tally, SettlementError> {
    settle_receipts(input, Receipts::Verified)
}

fn settle_receipts(input: Input<'_>, receipts_are: Receipts) -> Result<Tally, SettlementError> {
    let month = input.month;
    let mut receipts: Vec<&SignedReceipt> = input
        .receipts
        .iter()
        .filter(|r| month.contains(r.receipt.started_at_ms))
        .collect();
    let outside_month = input.receipts.len() - receipts.len();
    // Sorting by value orders by listener, then seq, then the rest of the signed message, then
    // the signature: copies of one message become neighbours, and so do a listener's receipts.
    receipts.par_sort_unstable();
    receipts.dedup();
    let copies: Vec<&[&SignedReceipt]> = receipts.chunk_by(|a, b| a.receipt == b.receipt).collect();
    let valid = match receipts_are {
        Receipts::Verify => verify_any(&copies),
        Receipts::Verified => vec![true; copies.len()],
    };
    // One entry per signed message, with its rule-1 verdict, still sorted by listener and seq.
    let distinct: Vec<(&Receipt, bool)> = copies
        .iter()
        .zip(valid)
        .map(|(copies, ok)| (&copies[0].receipt, ok))
        .collect();
    let judged: Vec<Judged> = listener_ranges(&distinct)
        .into_par_iter()
        .map(|range| judge(&distinct[range]))
        .collect();

    let mut stats = Stats {
        outside_month: outside_month as u64,
        receipts: distinct.len() as u64,
        ..Stats::default()
    };
    let mut void = VoidCounts::default();
    let mut flags = Vec::new();
    for j in &judged {
        void.add(&j.void);
        flags.extend_from_slice(&j.flags);
        stats.kept += j.kept;
        stats.qualified += j.qualified;
    }
    flags.sort_unstable();

    let subscribers = counting_subscriptions(month, input.subscriptions, &mut stats);
    stats.subscribers = subscribers.len() as u64;

    let mut operators: BTreeMap<PublicKey, MicroUsdp> = BTreeMap::new();
    let mut artists: HashMap<PublicKey, u128> = HashMap::new();
    let mut carry_out = BTreeMap::new();
    for (listener, home_node) in &subscribers {
        let income = &mut operators.entry(*home_node).or_default().0;
        *income = income
            .checked_add(OPERATOR_SHARE.0)
            .ok_or(SettlementError::Overflow(*home_node))?;
        let carry = input.carry_in.get(listener).copied().unwrap_or_default();
        let pool = u128::from(ARTIST_POOL.0) + u128::from(carry.0);
        let top = judged
            .binary_search_by(|j| j.listener.cmp(listener))
            .map(|i| judged[i].top.as_slice())
            .unwrap_or_default();
        let left = if top.is_empty() {
            pool
        } else {
            for (artist, share) in split(pool, top) {
                *artists.entry(artist).or_default() += share;
            }
            0
        };
        let left = u64::try_from(left).map_err(|_| SettlementError::Overflow(*listener))?;
        carry_out.insert(*listener, MicroUsdp(left));
    }
    for (listener, carry) in input.carry_in {
        carry_out.entry(*listener).or_insert(*carry);
    }
    let artists = artists
        .into_iter()
        .map(|(artist, units)| {
            u64::try_from(units)
                .map(|u| (artist, MicroUsdp(u)))
                .map_err(|_| SettlementError::Overflow(artist))
        })
        .collect::<Result<_, _>>()?;

    Ok(Tally {
        month,
        artists,
        operators,
        carry_out,
        void,
        flags,
        stats,
    })
}

/// Each receipt of `month` among `receipts` (one listener's, or several) as [`settle`]
/// judges it, by the same rules in the same order, with its id; copies of one signed message
/// are one receipt.
pub fn judge_each(month: Month, receipts: &[SignedReceipt]) -> Vec<(ContentHash, Judgement)> {
    let mut receipts: Vec<&SignedReceipt> = receipts
        .iter()
        .filter(|r| month.contains(r.receipt.started_at_ms))
        .collect();
    receipts.sort_unstable();
    receipts.dedup();
    let copies: Vec<&[&SignedReceipt]> = receipts.chunk_by(|a, b| a.receipt == b.receipt).collect();
    let valid = verify_any(&copies);
    let distinct: Vec<(&Receipt, bool)> = copies
        .iter()
        .zip(valid)
        .map(|(copies, ok)| (&copies[0].receipt, ok))
        .collect();
    let mut out = Vec::with_capacity(distinct.len());
    for range in listener_ranges(&distinct) {
        let judged = judge(&distinct[range.clone()]);
        for (c, j) in copies[range].iter().zip(judged.each) {
            out.push((c[0].id(), j));
        }
    }
    out
}

/// The index ranges of each listener's receipts in a slice sorted by listener.
fn listener_ranges(receipts: &[(&Receipt, bool)]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    for i in 1..=receipts.len() {
        if i == receipts.len() || receipts[i].0.listener != receipts[start].0.listener {
            ranges.push(start..i);
            start = i;
        }
    }
    ranges
}

/// Applies rules 2 to 4 to one listener's distinct receipts (one per signed message, sorted
/// by seq, then bytes), each with whether one of its signatures is valid (rule 1), and ranks
/// the artists of its qualified listens.
fn judge(receipts: &[(&Receipt, bool)]) -> Judged {
    let listener = receipts[0].0.listener;
    let mut void = VoidCounts::default();
    let mut flags = Vec::new();

    let mut each = vec![Judgement::Kept; receipts.len()];
    let mut standing: Vec<(usize, &Receipt)> = Vec::with_capacity(receipts.len());
    for (i, &(r, ok)) in receipts.iter().enumerate() {
        if !ok {
            void.signature += 1;
            each[i] = Judgement::Void(Rule::Signature);
        } else if r.track_ms == 0
            || u64::from(r.listened_ms) > u64::from(r.track_ms) + LENGTH_SLACK_MS
        {
            void.length += 1;
            each[i] = Judgement::Void(Rule::Length);
        } else {
            standing.push((i, r));
        }
    }

    // Rule 3: `standing` is sorted by seq, so receipts sharing one are neighbours; they are
    // distinct signed messages, so two of them with one seq are an equivocation.
    let mut kept: Vec<(usize, &Receipt)> = Vec::with_capacity(standing.len());
    for run in standing.chunk_by(|a, b| a.1.seq == b.1.seq) {
        if let [only] = run {
            kept.push(*only);
        } else {
            void.equivocation += run.len() as u64;
            for (i, _) in run {
                each[*i] = Judgement::Void(Rule::Equivocation);
            }
            flags.push(Flag::Equivocation {
                listener,
                seq: run[0].1.seq,
                copies: run.len() as u64,
            });
        }
    }

    // Rule 4, then qualification of what is kept.
    kept.sort_unstable_by_key(|(_, r)| (r.started_at_ms, r.seq));
    let mut played: HashMap<PublicKey, Played> = HashMap::new();
    let mut last_end: Option<u64> = None;
    let (mut n_kept, mut qualified) = (0, 0);
    for (i, r) in kept {
        if last_end.is_some_and(|end| r.started_at_ms.saturating_add(OVERLAP_SLACK_MS) < end) {
            void.overlap += 1;
            each[i] = Judgement::Void(Rule::Overlap);
            flags.push(Flag::Overlap {
                listener,
                seq: r.seq,
            });
            continue;
        }
        last_end = Some(r.ended_at_ms());
        n_kept += 1;
        if r.listened_ms >= QUALIFY_MS.min(r.track_ms / 2) {
            qualified += 1;
            each[i] = Judgement::Qualified;
            let p = played.entry(r.artist).or_insert(Played {
                artist: r.artist,
                plays: 0,
                ms: 0,
            });
            p.plays += 1;
            p.ms += u64::from(r.listened_ms);
        }
    }

    let mut top: Vec<Played> = played.into_values().collect();
    top.sort_unstable_by(|a, b| {
        b.plays
            .cmp(&a.plays)
            .then(b.ms.cmp(&a.ms))
            .then(a.artist.cmp(&b.artist))
    });
    top.truncate(TOP);
    Judged {
        listener,
        each,
        void,
        flags,
        kept: n_kept,
        qualified,
        top,
    }
}

/// Splits `pool` over the ranked `top` by plays, largest-remainder with ties to the better
/// rank, so the shares add up to `pool` exactly.
fn split(pool: u128, top: &[Played]) -> Vec<(PublicKey, u128)> {
    let w: u128 = top.iter().map(|p| u128::from(p.plays)).sum();
    let mut shares: Vec<(PublicKey, u128, u128)> = top
        .iter()
        .map(|p| {
            let product = pool * u128::from(p.plays);
            (p.artist, product / w, product % w)
        })
        .collect();
    let given: u128 = shares.iter().map(|s| s.1).sum();
    let left = usize::try_from(pool - given).expect("fewer units left than artists");
    // Rank order is the index; a stable sort by remainder keeps better ranks first on ties.
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| shares[b].2.cmp(&shares[a].2));
    for &i in order.iter().take(left) {
        shares[i].1 += 1;
    }
    shares.into_iter().map(|(a, units, _)| (a, units)).collect()
}

/// Each subscribed listener of `month` and the home node of its counting subscription: of the
/// valid ones (copies of one signed message are one subscription, valid when any copy
/// verifies), the smallest (`home_node`, `payment_ref`) bytes.
fn counting_subscriptions(
    month: Month,
    subscriptions: &[SignedSubscription],
    stats: &mut Stats,
) -> BTreeMap<PublicKey, PublicKey> {
    let mut of_month: Vec<&SignedSubscription> = subscriptions
        .iter()
        .filter(|s| s.subscription.month == month)
        .collect();
    // Group by signer so the batch combines each node's terms, and copies of one message
    // become neighbours; drop identical copies.
    of_month.sort_unstable_by(|a, b| {
        (&a.subscription.home_node, a).cmp(&(&b.subscription.home_node, b))
    });
    of_month.dedup();
    let copies: Vec<&[&SignedSubscription]> = of_month
        .chunk_by(|a, b| a.subscription == b.subscription)
        .collect();
    let valid = verify_any(&copies);
    let mut counting: BTreeMap<PublicKey, &Subscription> = BTreeMap::new();
    for (copies, ok) in copies.iter().zip(valid) {
        let s = &copies[0].subscription;
        if !ok {
            stats.subscriptions_invalid += 1;
            continue;
        }
        let rank = |s: &Subscription| (s.home_node, s.payment_ref.as_str().as_bytes().to_vec());
        match counting.get(&s.listener) {
            Some(current) if rank(current) <= rank(s) => stats.subscriptions_superseded += 1,
            Some(_) => {
                stats.subscriptions_superseded += 1;
                counting.insert(s.listener, s);
            }
            None => {
                counting.insert(s.listener, s);
            }
        }
    }
    counting
        .into_iter()
        .map(|(listener, s)| (listener, s.home_node))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn played(n: u8, plays: u64) -> Played {
        Played {
            artist: PublicKey([n; 32]),
            plays,
            ms: 0,
        }
    }

    #[test]
    fn split_gives_leftovers_to_largest_remainders_then_rank() {
        // 9_000_000 over plays 1,1,1: 3_000_000 each, nothing left.
        let s = split(9_000_000, &[played(1, 1), played(2, 1), played(3, 1)]);
        assert!(s.iter().all(|x| x.1 == 3_000_000));
        // 10 over 3 equal: remainders tie, so the best-ranked gets the one left over.
        let s = split(10, &[played(1, 1), played(2, 1), played(3, 1)]);
        assert_eq!(s.iter().map(|x| x.1).collect::<Vec<_>>(), vec![4, 3, 3]);
        // 10 over plays 3,2,2 (W=7): 30/7=4 r2, 20/7=2 r6, 20/7=2 r6; 2 left go to ranks 2,3.
        let s = split(10, &[played(1, 3), played(2, 2), played(3, 2)]);
        assert_eq!(s.iter().map(|x| x.1).collect::<Vec<_>>(), vec![4, 3, 3]);
    }
}
