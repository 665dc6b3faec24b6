//! A small testnet, run for real: every play heard, every receipt everywhere, and listeners'
//! caches serving part of the bytes.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::Mutex;

use nineten_testnet::{Options, Phase, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_network_plays_and_spreads_receipts() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        nodes: 5,
        artists: 1,
        tracks_per_artist: 3,
        track_seconds: (16.0, 24.0),
        plays: 16,
        seed: 3,
    };
    let phases = Mutex::new(Vec::new());
    let report = run(
        &options,
        dir.path(),
        &|p| phases.lock().unwrap().push(p),
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(report.nodes, 5);
    assert_eq!(report.plays, 16);
    assert_eq!(report.failed_plays, 0, "{report:?}");
    assert_eq!(report.tracks, 3);
    assert_eq!(report.receipts.signed, 16, "one receipt per listen");
    assert_eq!(report.receipts.held_by_all_nodes, 16, "{report:?}");
    assert!(report.ttfa_ms.p50 > 0.0 && report.ttfa_ms.p95 >= report.ttfa_ms.p50);
    assert!(
        report.bytes.artist_nodes > 0,
        "the artist served the first copies"
    );
    assert!(
        report.bytes.other_peers > 0,
        "listeners' caches served the later plays: {report:?}"
    );
    let phases = phases.into_inner().unwrap();
    assert_eq!(phases.first(), Some(&Phase::Started(1)));
    assert!(phases.contains(&Phase::Played(16)));
    assert_eq!(phases.last(), Some(&Phase::ReceiptsSettled));
    // The run is the same for the same seed: same music, same tracks.
    assert_eq!(report.seed, 3);
}

#[tokio::test]
async fn impossible_options_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        nodes: 2,
        artists: 2,
        ..Options::default()
    };
    let err = run(&options, dir.path(), &|_| {}, std::future::pending())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("artists"), "{err}");
}
