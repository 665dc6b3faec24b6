//! One test per rule and tie-break of `settlement.md`, on small hand-built months, and of the
//! rule of `records.md` that copies of one signed message are one record.

use nineten_protocol::key::Signature;
use nineten_protocol::signature::verify_record;
use nineten_protocol::tally::Flag;

use crate::util::*;

#[test]
fn fee_splits_between_operator_and_top_artist() {
    let l = listener(1);
    let t = tally(
        &[signed(&l, listen(&l, 1, artist(1), 0))],
        &[subscribe(&l, &node(0), "tx")],
        &[],
    );
    assert_eq!(units(&t, artist(1)), 9_000_000);
    assert_eq!(t.operators[&node(0).public()].0, 1_000_000);
    assert_eq!(t.carry_out[&l.public()].0, 0);
    assert_eq!(t.stats.qualified, 1);
}

#[test]
fn receipts_outside_the_month_are_ignored() {
    let l = listener(1);
    let mut before = listen(&l, 1, artist(1), 0);
    before.started_at_ms = START - 1;
    let first = listen(&l, 2, artist(2), 0); // exactly the first millisecond: counts
    let mut after = listen(&l, 3, artist(3), 0);
    after.started_at_ms = START + 31 * 86_400_000; // 2026-11-01T00:00Z: next month
    let t = tally(
        &[signed(&l, before), signed(&l, first), signed(&l, after)],
        &[subscribe(&l, &node(0), "tx")],
        &[],
    );
    assert_eq!(t.stats.outside_month, 2);
    assert_eq!(t.artists.len(), 1);
    assert_eq!(units(&t, artist(2)), 9_000_000);
}

#[test]
fn identical_copies_count_once() {
    let l = listener(1);
    let r = signed(&l, listen(&l, 1, artist(1), 0));
    let other = signed(&l, listen(&l, 2, artist(2), 600));
    let t = tally(&[r, r, r, other], &[subscribe(&l, &node(0), "tx")], &[]);
    assert_eq!(t.stats.receipts, 2);
    assert_eq!(t.void.total(), 0);
    // One play each, so an even split: no copy counted twice.
    assert_eq!(units(&t, artist(1)), 4_500_000);
    assert_eq!(units(&t, artist(2)), 4_500_000);
}

#[test]
fn copies_with_different_valid_signatures_are_one_receipt() {
    let l = listener(1);
    let r = signed(&l, listen(&l, 1, artist(1), 0));
    let again = resigned(&l, &r, 1);
    assert_ne!(again.sig, r.sig);
    assert!(verify_record(&again) && verify_record(&r));
    assert_eq!(again.id(), r.id(), "the id leaves the signature out");
    let other = signed(&l, listen(&l, 2, artist(2), 600));
    let t = tally(
        &[r, again, resigned(&l, &r, 2), other],
        &[subscribe(&l, &node(0), "tx")],
        &[],
    );
    assert_eq!(t.stats.receipts, 2);
    assert_eq!(t.void.total(), 0, "copies are no equivocation");
    assert!(t.flags.is_empty());
    // One play each: counting the copies as plays would give artist 1 three quarters.
    assert_eq!(units(&t, artist(1)), 4_500_000);
    assert_eq!(units(&t, artist(2)), 4_500_000);
}

#[test]
fn a_good_copy_beside_broken_ones_counts_as_the_good_one() {
    let l = listener(1);
    let r = signed(&l, listen(&l, 1, artist(1), 0));
    let other = signed(&l, listen(&l, 2, artist(2), 600));
    let subs = [subscribe(&l, &node(0), "tx")];
    // Broken copies before and after the good one in the sorted order: a flipped bit in R
    // (low bytes) or in S.
    for broken in [corrupted(&r, 3), corrupted(&r, 300), corrupted(&r, 511)] {
        assert!(!verify_record(&broken));
        for receipts in [[broken, r, other], [r, broken, other], [other, broken, r]] {
            let t = tally(&receipts, &subs, &[]);
            assert_eq!(t.void.total(), 0, "{broken:?}");
            assert_eq!(t.stats.receipts, 2);
            assert_eq!(units(&t, artist(1)), 4_500_000);
        }
    }
}

#[test]
fn a_receipt_with_only_broken_copies_is_void_once() {
    let l = listener(1);
    let r = signed(&l, listen(&l, 1, artist(1), 0));
    let other = signed(&l, listen(&l, 2, artist(2), 600));
    let t = tally(
        &[
            corrupted(&r, 3),
            corrupted(&r, 300),
            corrupted(&r, 510),
            other,
        ],
        &[subscribe(&l, &node(0), "tx")],
        &[],
    );
    assert_eq!(t.stats.receipts, 2);
    assert_eq!(t.void.signature, 1);
    assert_eq!(t.void.total(), 1);
    assert_eq!(units(&t, artist(2)), 9_000_000);
}

#[test]
fn equivocation_counts_messages_not_copies() {
    let l = listener(1);
    let a = signed(&l, listen(&l, 5, artist(1), 0));
    let b = signed(&l, listen(&l, 5, artist(2), 0));
    let unrelated = signed(&l, listen(&l, 6, artist(3), 600));
    let t = tally(
        &[a, resigned(&l, &a, 9), corrupted(&a, 100), b, unrelated],
        &[subscribe(&l, &node(0), "tx")],
        &[],
    );
    assert_eq!(t.void.equivocation, 2);
    assert_eq!(t.void.total(), 2);
    assert_eq!(
        t.flags,
        vec![Flag::Equivocation {
            listener: l.public(),
            seq: 5,
            copies: 2
        }]
    );
    assert_eq!(units(&t, artist(3)), 9_000_000);
}

#[test]
fn copies_of_one_subscription_are_one_subscription() {
    let (l, m) = (listener(1), listener(2));
    let s = subscribe(&l, &node(1), "tx");
    let mut again = s.clone();
    again.sig = sign_with_nonce(&node(1), &s.subscription.message(), 4);
    assert!(verify_record(&again) && again.sig != s.sig);
    assert_eq!(again.id(), s.id());
    let mut broken = s.clone();
    broken.sig.0[20] ^= 1;
    // `m` has only broken copies of its subscription: not subscribed.
    let mut m_broken = subscribe(&m, &node(1), "tx-m");
    m_broken.sig.0[20] ^= 1;
    let mut m_broken_too = m_broken.clone();
    m_broken_too.sig.0[63] ^= 0x80;
    let t = tally(
        &[signed(&l, listen(&l, 1, artist(1), 0))],
        &[broken, s.clone(), again, s, m_broken, m_broken_too],
        &[(m.public(), 5)],
    );
    assert_eq!(t.stats.subscribers, 1);
    assert_eq!(
        t.operators[&node(1).public()].0,
        1_000_000,
        "one fee, not two"
    );
    assert_eq!(units(&t, artist(1)), 9_000_000, "one pool");
    assert_eq!(t.stats.subscriptions_superseded, 0);
    assert_eq!(
        t.stats.subscriptions_invalid, 1,
        "m's copies are one invalid subscription"
    );
    assert_eq!(
        t.carry_out[&m.public()].0,
        5,
        "m is not subscribed and keeps its carry"
    );
}

#[test]
fn rule_1_bad_signatures_are_void() {
    let l = listener(1);
    let mut forged = signed(&l, listen(&l, 1, artist(1), 0));
    forged.sig.0[40] ^= 1;
    let mut other_key = signed(&listener(2), listen(&l, 2, artist(1), 600));
    other_key.receipt.listener = l.public(); // signed by someone else
    other_key.sig = signed(&listener(2), other_key.receipt).sig;
    let good = signed(&l, listen(&l, 3, artist(2), 1200));
    let t = tally(
        &[forged, other_key, good],
        &[subscribe(&l, &node(0), "tx")],
        &[],
    );
    assert_eq!(t.void.signature, 2);
    assert_eq!(units(&t, artist(1)), 0);
    assert_eq!(units(&t, artist(2)), 9_000_000);
}

#[test]
fn rule_1_small_order_listener_key_is_void() {
    // The identity point as key, R = identity, S = 0: the cofactored equation holds for any
    // message, so anyone could "sign". 9ten refuses such keys.
    let mut r = listen(&listener(1), 1, artist(1), 0);
    let mut identity = [0u8; 32];
    identity[0] = 1;
    r.listener = nineten_protocol::key::PublicKey(identity);
    let mut sig = [0u8; 64];
    sig[0] = 1;
    let receipt = nineten_protocol::receipt::SignedReceipt {
        receipt: r,
        sig: Signature(sig),
    };
    let t = tally(&[receipt], &[], &[]);
    assert_eq!(t.void.signature, 1);
}

#[test]
fn rule_2_length_bounds() {
    let l = listener(1);
    let mut zero = listen(&l, 1, artist(1), 0);
    zero.track_ms = 0;
    zero.listened_ms = 0;
    let mut at_limit = listen(&l, 2, artist(2), 1000);
    at_limit.listened_ms = at_limit.track_ms + 2_000; // allowed
    let mut over = listen(&l, 3, artist(3), 2000);
    over.listened_ms = over.track_ms + 2_001;
    // Bad signature and bad length: counted under rule 1, the first that voids it.
    let mut both = signed(&l, listen(&l, 4, artist(4), 3000));
    both.receipt.track_ms = 0;
    let t = tally(
        &[
            signed(&l, zero),
            signed(&l, at_limit),
            signed(&l, over),
            both,
        ],
        &[subscribe(&l, &node(0), "tx")],
        &[],
    );
    assert_eq!(t.void.length, 2);
    assert_eq!(t.void.signature, 1);
    assert_eq!(units(&t, artist(2)), 9_000_000);
}

#[test]
fn rule_3_equivocation_voids_every_copy() {
    let l = listener(1);
    let a = listen(&l, 5, artist(1), 0);
    let mut b = a;
    b.artist = artist(2);
    let mut c = a;
    c.started_at_ms += 3_600_000;
    let unrelated = listen(&l, 6, artist(3), 7200);
    let t = tally(
        &[
            signed(&l, a),
            signed(&l, b),
            signed(&l, c),
            signed(&l, unrelated),
        ],
        &[subscribe(&l, &node(0), "tx")],
        &[],
    );
    assert_eq!(t.void.equivocation, 3);
    assert_eq!(
        t.flags,
        vec![Flag::Equivocation {
            listener: l.public(),
            seq: 5,
            copies: 3
        }]
    );
    assert_eq!(units(&t, artist(3)), 9_000_000);
}

#[test]
fn rule_3_counts_only_receipts_standing_after_rules_1_and_2() {
    let l = listener(1);
    let a = listen(&l, 5, artist(1), 0);
    let mut b = signed(&l, listen(&l, 5, artist(2), 0));
    b.sig.0[0] ^= 1; // void by rule 1: leaves `a` alone with seq 5
    let mut c = listen(&l, 5, artist(3), 0);
    c.listened_ms = c.track_ms + 5_000; // void by rule 2
    let t = tally(
        &[signed(&l, a), b, signed(&l, c)],
        &[subscribe(&l, &node(0), "tx")],
        &[],
    );
    assert_eq!(
        (t.void.signature, t.void.length, t.void.equivocation),
        (1, 1, 0)
    );
    assert_eq!(units(&t, artist(1)), 9_000_000);
}

#[test]
fn rule_4_overlap_boundary_is_one_second() {
    let l = listener(1);
    // First listen: 0 s to 180 s. A start at 179 s is exactly end - 1000: kept.
    let first = listen(&l, 1, artist(1), 0);
    let edge = listen(&l, 2, artist(2), 179);
    // Next kept ends at 359 s; a start at 357.999 s is earlier than 358 s: void.
    let mut early = listen(&l, 3, artist(3), 0);
    early.started_at_ms = START + 357_999;
    // The void receipt does not move the end: 358 s is kept (end of seq 2 is 359 s).
    let mut late = listen(&l, 4, artist(4), 358);
    late.listened_ms = 60_000;
    let t = tally(
        &[
            signed(&l, first),
            signed(&l, edge),
            signed(&l, early),
            signed(&l, late),
        ],
        &[subscribe(&l, &node(0), "tx")],
        &[],
    );
    assert_eq!(t.void.overlap, 1);
    assert_eq!(
        t.flags,
        vec![Flag::Overlap {
            listener: l.public(),
            seq: 3
        }]
    );
    assert_eq!(t.artists.len(), 3);
    assert_eq!(units(&t, artist(3)), 0);
}

#[test]
fn rule_4_same_start_orders_by_seq() {
    let l = listener(1);
    // Same start: seq 1 comes first and is kept, seq 2 overlaps it.
    let t = tally(
        &[
            signed(&l, listen(&l, 2, artist(2), 0)),
            signed(&l, listen(&l, 1, artist(1), 0)),
        ],
        &[subscribe(&l, &node(0), "tx")],
        &[],
    );
    assert_eq!(t.void.overlap, 1);
    assert_eq!(units(&t, artist(1)), 9_000_000);
}

#[test]
fn rule_4_is_per_listener() {
    let (a, b) = (listener(1), listener(2));
    let t = tally(
        &[
            signed(&a, listen(&a, 1, artist(1), 0)),
            signed(&b, listen(&b, 1, artist(1), 0)),
        ],
        &[],
        &[],
    );
    assert_eq!(t.void.total(), 0);
    assert_eq!(t.stats.kept, 2);
}

#[test]
fn qualified_listen_threshold() {
    let l = listener(1);
    // Short track (40 s): needs 20 s. Long track: needs 30 s.
    let mut short_ok = listen(&l, 1, artist(1), 0);
    (short_ok.track_ms, short_ok.listened_ms) = (40_000, 20_000);
    let mut short_no = listen(&l, 2, artist(2), 100);
    (short_no.track_ms, short_no.listened_ms) = (40_000, 19_999);
    let mut long_ok = listen(&l, 3, artist(3), 200);
    (long_ok.track_ms, long_ok.listened_ms) = (600_000, 30_000);
    let mut long_no = listen(&l, 4, artist(4), 300);
    (long_no.track_ms, long_no.listened_ms) = (600_000, 29_999);
    // Odd length: 39_999 / 2 = 19_999 (integer division).
    let mut odd = listen(&l, 5, artist(5), 400);
    (odd.track_ms, odd.listened_ms) = (39_999, 19_999);
    let t = tally(
        &[short_ok, short_no, long_ok, long_no, odd].map(|r| signed(&l, r)),
        &[subscribe(&l, &node(0), "tx")],
        &[],
    );
    assert_eq!(t.stats.qualified, 3);
    assert_eq!(t.void.total(), 0);
    assert_eq!(units(&t, artist(1)), 3_000_000);
    assert_eq!(units(&t, artist(2)), 0);
    assert_eq!(units(&t, artist(4)), 0);
    assert_eq!(units(&t, artist(5)), 3_000_000);
}

#[test]
fn top_nine_ranks_by_plays_then_ms_then_key() {
    let l = listener(1);
    let mut receipts = Vec::new();
    let mut seq = 0;
    let mut at = 0;
    let mut play = |artist_n: u8, listened_ms: u32| {
        seq += 1;
        let mut r = listen(&l, seq, artist(artist_n), at);
        r.listened_ms = listened_ms;
        at += 200;
        receipts.push(signed(&l, r));
    };
    // Artists 1..=8: two plays each. Artists 9, 10, 11: one play each; 9 has the most ms,
    // 10 and 11 tie on ms and are split by key bytes.
    for n in 1..=8 {
        play(n, 100_000);
        play(n, 100_000);
    }
    play(9, 150_000);
    play(10, 100_000);
    play(11, 100_000);
    let t = tally(&receipts, &[subscribe(&l, &node(0), "tx")], &[]);
    assert_eq!(t.artists.len(), 9);
    assert!(!t.artists.contains_key(&artist(10)) && !t.artists.contains_key(&artist(11)));
    // W = 8*2 + 1 = 17 plays. Two plays: 18_000_000 / 17 = 1_058_823 r 9; artist 9:
    // 9_000_000 / 17 = 529_411 r 13. 5 units left: artist 9 (r 13) first, then the four
    // best-ranked two-play artists (equal plays and ms: smallest keys).
    assert_eq!(units(&t, artist(9)), 529_412);
    let mut two_plays: Vec<_> = (1..=8).map(artist).collect();
    two_plays.sort();
    let got: Vec<u64> = two_plays.iter().map(|k| units(&t, *k)).collect();
    assert_eq!(got, [[1_058_824; 4], [1_058_823; 4]].concat());
    assert_eq!(t.artist_total(), 9_000_000);
}

#[test]
fn ms_breaks_a_tie_in_plays_for_the_ninth_place() {
    let l = listener(1);
    let mut receipts = Vec::new();
    for n in 1..=10u8 {
        let mut r = listen(&l, u64::from(n), artist(n), u64::from(n) * 200);
        r.listened_ms = 100_000 + u32::from(n); // artist 1 has the least ms
        receipts.push(signed(&l, r));
    }
    let t = tally(&receipts, &[subscribe(&l, &node(0), "tx")], &[]);
    assert!(!t.artists.contains_key(&artist(1)));
    assert_eq!(t.artists.len(), 9);
    // 9_000_000 / 9 = 1_000_000 each, nothing left over.
    assert!(t.artists.values().all(|u| u.0 == 1_000_000));
}

#[test]
fn key_bytes_break_a_full_tie() {
    let l = listener(1);
    let mut receipts = Vec::new();
    for n in 1..=10u8 {
        receipts.push(signed(
            &l,
            listen(&l, u64::from(n), artist(n), u64::from(n) * 200),
        ));
    }
    let t = tally(&receipts, &[subscribe(&l, &node(0), "tx")], &[]);
    let mut keys: Vec<_> = (1..=10).map(artist).collect();
    keys.sort();
    assert!(
        !t.artists.contains_key(&keys[9]),
        "the largest key drops out"
    );
}

#[test]
fn leftover_units_go_to_largest_remainders_then_better_rank() {
    let l = listener(1);
    // Seven artists with one play each: 9_000_000 = 7 * 1_285_714 + 2. All remainders tie,
    // so the two best-ranked (equal plays and ms: smallest keys) get one unit more.
    let mut receipts = Vec::new();
    for n in 1..=7u8 {
        receipts.push(signed(
            &l,
            listen(&l, u64::from(n), artist(n), u64::from(n) * 200),
        ));
    }
    let t = tally(&receipts, &[subscribe(&l, &node(0), "tx")], &[]);
    let mut keys: Vec<_> = (1..=7).map(artist).collect();
    keys.sort();
    let got: Vec<u64> = keys.iter().map(|k| units(&t, *k)).collect();
    assert_eq!(
        got,
        vec![
            1_285_715, 1_285_715, 1_285_714, 1_285_714, 1_285_714, 1_285_714, 1_285_714
        ]
    );
    assert_eq!(got.iter().sum::<u64>(), 9_000_000);
}

#[test]
fn larger_remainder_beats_better_rank() {
    let l = listener(1);
    // Plays 3, 2, 2 with pool 9_000_003 (carry 3): W = 7.
    // 27_000_009 / 7 = 3_857_144 r 1; 18_000_006 / 7 = 2_571_429 r 3 (twice). 1 unit left:
    // the remainder 3 beats 1, and of the two with remainder 3 the better rank (more ms) wins.
    let mut receipts = Vec::new();
    let mut seq = 0;
    for (n, plays, ms) in [(1u8, 3, 100_000u32), (2, 2, 100_001), (3, 2, 100_000)] {
        for _ in 0..plays {
            seq += 1;
            let mut r = listen(&l, seq, artist(n), seq * 200);
            r.listened_ms = ms;
            receipts.push(signed(&l, r));
        }
    }
    let t = tally(
        &receipts,
        &[subscribe(&l, &node(0), "tx")],
        &[(l.public(), 3)],
    );
    assert_eq!(units(&t, artist(1)), 3_857_144);
    assert_eq!(units(&t, artist(2)), 2_571_430);
    assert_eq!(units(&t, artist(3)), 2_571_429);
}

#[test]
fn carry_rules() {
    let (paid_silent, paid_active, unpaid) = (listener(1), listener(2), listener(3));
    let t = tally(
        &[
            signed(&paid_active, listen(&paid_active, 1, artist(1), 0)),
            signed(&unpaid, listen(&unpaid, 1, artist(2), 0)),
        ],
        &[
            subscribe(&paid_silent, &node(0), "a"),
            subscribe(&paid_active, &node(0), "b"),
        ],
        &[
            (paid_silent.public(), 5),
            (paid_active.public(), 7),
            (unpaid.public(), 11),
        ],
    );
    // No qualified listen: the whole pool carries over, carry-in included.
    assert_eq!(t.carry_out[&paid_silent.public()].0, 9_000_005);
    // Paid out: the pool includes the carry-in and nothing carries.
    assert_eq!(t.carry_out[&paid_active.public()].0, 0);
    assert_eq!(units(&t, artist(1)), 9_000_007);
    // Not subscribed: keeps its carry; its listens move no money.
    assert_eq!(t.carry_out[&unpaid.public()].0, 11);
    assert_eq!(units(&t, artist(2)), 0);
    assert_eq!(t.operators[&node(0).public()].0, 2_000_000);
}

#[test]
fn smallest_home_node_then_payment_ref_counts() {
    let l = listener(1);
    let (n1, n2) = (node(1), node(2));
    let (small, large) = if n1.public() < n2.public() {
        (n1, n2)
    } else {
        (n2, n1)
    };
    let subs = [
        subscribe(&l, &large, "a"),
        subscribe(&l, &small, "b"),
        subscribe(&l, &small, "ab"),
    ];
    let t = tally(&[signed(&l, listen(&l, 1, artist(1), 0))], &subs, &[]);
    assert_eq!(t.operators.len(), 1);
    assert_eq!(t.operators[&small.public()].0, 1_000_000);
    assert_eq!(t.stats.subscriptions_superseded, 2);
    assert_eq!(units(&t, artist(1)), 9_000_000, "one pool, not three");
}

#[test]
fn invalid_or_other_month_subscriptions_do_not_count() {
    let l = listener(1);
    let mut forged = subscribe(&l, &node(1), "a");
    forged.sig.0[3] ^= 1;
    let mut other = subscribe(&l, &node(1), "b").subscription;
    other.month = "2026-11".parse().unwrap();
    let other = other.sign(&node(1));
    let t = tally(
        &[signed(&l, listen(&l, 1, artist(1), 0))],
        &[forged, other],
        &[],
    );
    assert!(t.operators.is_empty());
    assert!(t.artists.is_empty());
    assert_eq!(t.stats.subscriptions_invalid, 1);
}

#[test]
fn operator_income_counts_subscribers_per_node() {
    let subs: Vec<_> = (1..=5u8)
        .map(|n| subscribe(&listener(n), &node(n % 2), &format!("tx{n}")))
        .collect();
    let t = tally(&[], &subs, &[]);
    assert_eq!(t.operators[&node(1).public()].0, 3_000_000);
    assert_eq!(t.operators[&node(0).public()].0, 2_000_000);
    assert_eq!(t.carry_out.len(), 5);
    assert!(t.carry_out.values().all(|u| u.0 == 9_000_000));
}

#[test]
fn digest_is_order_independent_and_changes_with_content() {
    let l = listener(1);
    let receipts = vec![
        signed(&l, listen(&l, 1, artist(1), 0)),
        signed(&l, listen(&l, 2, artist(2), 300)),
    ];
    let subs = [subscribe(&l, &node(0), "tx")];
    let t = tally(&receipts, &subs, &[]);
    let reversed: Vec<_> = receipts.iter().rev().copied().collect();
    assert_eq!(tally(&reversed, &subs, &[]).digest(), t.digest());
    assert_ne!(tally(&receipts[..1], &subs, &[]).digest(), t.digest());
    let json: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
    assert_eq!(json["digest"], t.digest().to_string());
    assert_eq!(json["month"], "2026-10");
    assert_eq!(json["void"]["overlap"], 0);
    assert_eq!(json["artists"][artist(1).to_string()], 4_500_000);
}
