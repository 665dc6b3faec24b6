//! The month's schedule (`review.md`, "Schedule"), in Unix milliseconds UTC, and which rank of
//! reviewer or arbiter is due at a given time. Pure: the node reads its `Clock` and asks.
//!
//! "By day 10" is read as "before day 11 begins": a deadline is the end of the day it names.
//! A chosen node that has not signed by its deadline is replaced by the next rank, and each
//! further day without a signature asks the next one again (`docs/month.md`).

use crate::month::Month;

/// A day, in milliseconds.
pub const DAY_MS: u64 = 86_400_000;

/// The start of day `day` (1-based) of `month`.
fn day_start(month: Month, day: u8) -> u64 {
    month.bounds_ms().0 + u64::from(day - 1) * DAY_MS
}

/// The month after `month` (the last month stays itself: nothing closes after 9999-12).
fn after(month: Month) -> Month {
    month.next().unwrap_or(month)
}

/// Months back a node takes and keeps review records of: a month under review is at most a
/// few months old, and an audit or an artist's earnings read what the node kept.
pub const KEPT_MONTHS: usize = 13;

/// When the operator's share of a subscription of `month` may be released: the 1st of it.
pub fn operator_share_ms(month: Month) -> u64 {
    month.bounds_ms().0
}

/// The close of `month`: day 2 of the next month, 00:00. Receipts received later are kept
/// but do not count.
pub fn close_ms(month: Month) -> u64 {
    day_start(after(month), 2)
}

/// The end of day 10 of the next month: reviewers sign or dispute before it.
pub fn review_deadline_ms(month: Month) -> u64 {
    day_start(after(month), 11)
}

/// The end of day 20 of the next month: verdicts come before it.
pub fn arbitration_deadline_ms(month: Month) -> u64 {
    day_start(after(month), 21)
}

/// The end of day 25 of the next month: artists are paid before it, from a verified tally.
pub fn payout_deadline_ms(month: Month) -> u64 {
    day_start(after(month), 26)
}

/// The highest rank asked by `now`, given the deadline of rank 0: 0 until the deadline, then
/// one more each day.
fn rank_due(deadline_ms: u64, now_ms: u64) -> u8 {
    match now_ms.checked_sub(deadline_ms) {
        None => 0,
        Some(late) => u8::try_from(1 + late / DAY_MS).unwrap_or(u8::MAX),
    }
}

/// The highest reviewer rank asked to review `month` by `now_ms`.
pub fn reviewer_rank_due(month: Month, now_ms: u64) -> u8 {
    rank_due(review_deadline_ms(month), now_ms)
}

/// The highest arbiter rank asked to decide a dispute of `month` by `now_ms`.
pub fn arbiter_rank_due(month: Month, now_ms: u64) -> u8 {
    rank_due(arbitration_deadline_ms(month), now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steps_fall_on_the_days_review_md_names() {
        let october: Month = "2026-10".parse().unwrap();
        let november = october.next().unwrap().bounds_ms().0;
        assert_eq!(operator_share_ms(october), october.bounds_ms().0);
        assert_eq!(close_ms(october), november + DAY_MS);
        assert_eq!(review_deadline_ms(october), november + 10 * DAY_MS);
        assert_eq!(arbitration_deadline_ms(october), november + 20 * DAY_MS);
        assert_eq!(payout_deadline_ms(october), november + 25 * DAY_MS);
        let deadline = review_deadline_ms(october);
        assert_eq!(reviewer_rank_due(october, deadline - 1), 0);
        assert_eq!(reviewer_rank_due(october, deadline), 1);
        assert_eq!(reviewer_rank_due(october, deadline + DAY_MS), 2);
        assert_eq!(reviewer_rank_due(october, u64::MAX), u8::MAX);
        let december: Month = "2026-12".parse().unwrap();
        assert_eq!(
            close_ms(december),
            "2027-01".parse::<Month>().unwrap().bounds_ms().0 + DAY_MS
        );
    }
}
