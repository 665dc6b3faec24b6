//! Property tests: settlement's invariants hold on random months, whatever the order, copies
//! and forgeries in the input; extra copies of a record, re-signed or corrupted, never change
//! a tally.

use std::collections::{BTreeMap, BTreeSet};

use nineten_protocol::identity::Keypair;
use nineten_protocol::key::PublicKey;
use nineten_protocol::money::MicroUsdp;
use nineten_protocol::receipt::{Receipt, SignedReceipt};
use nineten_protocol::signature::{verify_all, verify_any, verify_record};
use nineten_protocol::subscription::SignedSubscription;
use proptest::prelude::*;

use crate::util::*;

#[derive(Debug, Clone)]
struct World {
    receipts: Vec<(usize, u64, u8, u64, u32, u32, bool)>,
    subscriptions: Vec<(usize, u8, u8, bool)>,
    carry: Vec<(usize, u64)>,
}

const LISTENERS: usize = 5;

fn world() -> impl Strategy<Value = World> {
    let receipt = (
        0..LISTENERS,
        0..12u64,      // seq: collisions make equivocations
        0..12u8,       // artist
        0..4_000u64,   // start, seconds into the month: overlaps happen
        0..250_000u32, // listened_ms
        prop_oneof![1 => Just(0u32), 20 => 1..240_000u32], // track_ms
        proptest::bool::weighted(0.1), // forged signature
    );
    let subscription = (0..LISTENERS, 0..3u8, 0..3u8, proptest::bool::weighted(0.15));
    let carry = (
        0..LISTENERS,
        prop_oneof![Just(0u64), 0..20_000_000u64, Just(1u64 << 60)],
    );
    (
        proptest::collection::vec(receipt, 0..120),
        proptest::collection::vec(subscription, 0..8),
        proptest::collection::vec(carry, 0..4),
    )
        .prop_map(|(receipts, subscriptions, carry)| World {
            receipts,
            subscriptions,
            carry,
        })
}

struct Built {
    listeners: Vec<Keypair>,
    receipts: Vec<SignedReceipt>,
    subscriptions: Vec<SignedSubscription>,
    carry: Vec<(PublicKey, u64)>,
    subscribers: BTreeSet<PublicKey>,
}

fn build(w: &World) -> Built {
    let listeners: Vec<Keypair> = (0..LISTENERS as u8).map(listener).collect();
    let receipts = w
        .receipts
        .iter()
        .map(|&(l, seq, a, at, listened_ms, track_ms, forged)| {
            let who = &listeners[l];
            let r = Receipt {
                listened_ms,
                track_ms,
                ..listen(who, seq, artist(a), at)
            };
            let mut s = signed(who, r);
            if forged {
                s.sig.0[7] ^= 0x10;
            }
            s
        })
        .collect();
    let mut subscribers = BTreeSet::new();
    let subscriptions = w
        .subscriptions
        .iter()
        .map(|&(l, n, reference, forged)| {
            let mut s = subscribe(&listeners[l], &node(n), &format!("tx{reference}"));
            if forged {
                s.sig.0[40] ^= 1;
            } else {
                subscribers.insert(listeners[l].public());
            }
            s
        })
        .collect();
    let mut carry: BTreeMap<PublicKey, u64> = BTreeMap::new();
    for &(l, units) in &w.carry {
        carry.insert(listeners[l].public(), units);
    }
    Built {
        listeners,
        receipts,
        subscriptions,
        carry: carry.into_iter().collect(),
        subscribers,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn money_is_conserved(w in world()) {
        let b = build(&w);
        let t = tally(&b.receipts, &b.subscriptions, &b.carry);
        let carry_in: BTreeMap<_, _> = b.carry.iter().copied().collect();
        let n = b.subscribers.len() as u128;
        let pools: u128 = b.subscribers.iter()
            .map(|l| 9_000_000 + u128::from(carry_in.get(l).copied().unwrap_or(0)))
            .sum();
        let carried: u128 = b.subscribers.iter().map(|l| u128::from(t.carry_out[l].0)).sum();
        prop_assert_eq!(t.artist_total() + carried, pools);
        let operators: u128 = t.operators.values().map(|u| u128::from(u.0)).sum();
        prop_assert_eq!(operators, 1_000_000 * n);
        prop_assert_eq!(operators + 9_000_000 * n, 10_000_000 * n);
        prop_assert_eq!(t.stats.subscribers as u128, n);
        // Listeners who did not pay keep exactly their carry.
        for (l, units) in &carry_in {
            if !b.subscribers.contains(l) {
                prop_assert_eq!(t.carry_out[l].0, *units);
            }
        }
        prop_assert_eq!(t.stats.receipts, t.stats.kept + t.void.total());
        prop_assert!(t.stats.qualified <= t.stats.kept);
    }

    #[test]
    fn each_receipts_judgement_adds_up_to_the_tallys_counts(w in world()) {
        use nineten_protocol::settlement::{Judgement, Rule, judge_each};
        let b = build(&w);
        let t = tally(&b.receipts, &b.subscriptions, &b.carry);
        let each = judge_each(t.month, &b.receipts);
        let count = |j: Judgement| each.iter().filter(|(_, x)| *x == j).count() as u64;
        prop_assert_eq!(each.len() as u64, t.stats.receipts);
        prop_assert_eq!(count(Judgement::Void(Rule::Signature)), t.void.signature);
        prop_assert_eq!(count(Judgement::Void(Rule::Length)), t.void.length);
        prop_assert_eq!(count(Judgement::Void(Rule::Equivocation)), t.void.equivocation);
        prop_assert_eq!(count(Judgement::Void(Rule::Overlap)), t.void.overlap);
        prop_assert_eq!(count(Judgement::Qualified), t.stats.qualified);
        prop_assert_eq!(count(Judgement::Kept) + t.stats.qualified, t.stats.kept);
    }

    #[test]
    fn settling_verified_receipts_without_verifying_again_gives_the_same_tally(w in world()) {
        use nineten_protocol::settlement::{Input, settle, settle_verified};
        let b = build(&w);
        let good: Vec<SignedReceipt> =
            b.receipts.iter().filter(|r| verify_record(*r)).copied().collect();
        let carry: BTreeMap<PublicKey, MicroUsdp> =
            b.carry.iter().map(|(k, u)| (*k, MicroUsdp(*u))).collect();
        let input = Input {
            month: month(),
            receipts: &good,
            subscriptions: &b.subscriptions,
            carry_in: &carry,
        };
        let (checked, trusted) = (settle(input), settle_verified(input));
        prop_assert_eq!(checked.is_ok(), trusted.is_ok());
        if let (Ok(checked), Ok(trusted)) = (checked, trusted) {
            prop_assert_eq!(checked.digest(), trusted.digest());
            prop_assert_eq!(checked.stats, trusted.stats);
        }
    }

    #[test]
    fn order_and_copies_do_not_matter(w in world(), rotate in 0usize..1000) {
        let b = build(&w);
        let t = tally(&b.receipts, &b.subscriptions, &b.carry);
        let mut receipts = b.receipts.clone();
        receipts.extend(b.receipts.iter().step_by(3).copied());
        if !receipts.is_empty() {
            let k = rotate % receipts.len();
            receipts.rotate_left(k);
        }
        receipts.reverse();
        let mut subscriptions = b.subscriptions.clone();
        subscriptions.extend(b.subscriptions.iter().take(2).cloned());
        subscriptions.reverse();
        let again = tally(&receipts, &subscriptions, &b.carry);
        prop_assert_eq!(again.digest(), t.digest());
        prop_assert_eq!(&again.flags, &t.flags);
        prop_assert_eq!(again.stats.receipts, t.stats.receipts);
    }

    #[test]
    fn extra_copies_never_change_a_tally(
        w in world(),
        extra in proptest::collection::vec(
            (any::<prop::sample::Index>(), any::<bool>(), 0..1000u64, 128..256usize),
            0..40,
        ),
    ) {
        let b = build(&w);
        let t = tally(&b.receipts, &b.subscriptions, &b.carry);
        let (mut receipts, mut subscriptions) = (b.receipts.clone(), b.subscriptions.clone());
        for (i, resign, nonce, bit) in extra {
            // A copy of a receipt: re-signed by its listener (of a receipt that verifies, as a
            // listener signs only its own receipts), or with a flipped bit in R. The forgeries
            // of `build` flip bits elsewhere, so a flip never repairs one.
            if !b.receipts.is_empty() {
                let r = &b.receipts[i.index(b.receipts.len())];
                if resign && verify_record(r) {
                    let who = b.listeners.iter().find(|k| k.public() == r.receipt.listener);
                    receipts.push(resigned(who.unwrap(), r, nonce));
                } else {
                    receipts.push(corrupted(r, bit));
                }
            }
            if !b.subscriptions.is_empty() {
                let s = &b.subscriptions[i.index(b.subscriptions.len())];
                let mut copy = s.clone();
                if resign && verify_record(s) {
                    let home = (0..3).map(node).find(|n| n.public() == s.subscription.home_node);
                    copy.sig = sign_with_nonce(&home.unwrap(), &s.subscription.message(), nonce);
                } else {
                    copy.sig.0[bit / 8] ^= 1 << (bit % 8);
                }
                subscriptions.push(copy);
            }
        }
        receipts.reverse();
        subscriptions.reverse();
        prop_assert_eq!(tally(&receipts, &subscriptions, &b.carry), t);
    }

    #[test]
    fn verify_any_is_any_single_verdict(
        w in world(),
        groups in proptest::collection::vec(
            proptest::collection::vec((any::<bool>(), 0..1000u64, 0..512usize), 0..4),
            0..30,
        ),
    ) {
        let b = build(&w);
        prop_assume!(!b.receipts.is_empty());
        let groups: Vec<Vec<SignedReceipt>> = groups
            .iter()
            .enumerate()
            .map(|(g, copies)| {
                let r = &b.receipts[g % b.receipts.len()];
                let who = b.listeners.iter().find(|k| k.public() == r.receipt.listener).unwrap();
                copies
                    .iter()
                    .map(|&(good, nonce, bit)| {
                        if good { resigned(who, r, nonce) } else { corrupted(r, bit) }
                    })
                    .collect()
            })
            .collect();
        let slices: Vec<&[SignedReceipt]> = groups.iter().map(Vec::as_slice).collect();
        let single: Vec<bool> =
            groups.iter().map(|copies| copies.iter().any(verify_record)).collect();
        prop_assert_eq!(verify_any(&slices), single);
    }

    #[test]
    fn batch_verification_equals_single(w in world()) {
        let b = build(&w);
        let single: Vec<bool> = b.receipts.iter().map(verify_record).collect();
        prop_assert_eq!(verify_all(&b.receipts), single);
    }
}
