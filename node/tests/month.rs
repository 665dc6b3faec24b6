//! The month's review between whole nodes on 127.0.0.1 (`review.md`, "three eyes"): operators
//! in clusters, listeners subscribed through one of them, receipts gossiped, then the clock
//! moved past the close. An honest month verifies with the three attestations of the nodes
//! the directory names, and its export passes the audit; a home node that leaves an artist
//! out, or signs a wrong digest, is disputed, the arbiter upholds, the re-issued bundle
//! verifies; an offline reviewer is replaced after the deadline; a node that is not the
//! chosen reviewer is not counted; a restart in the middle resumes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nineten_node::clock::ManualClock;
use nineten_node::config::DataDir;
use nineten_node::daemon::{Config, Node};
use nineten_node::home::Operator;
use nineten_node::net::subscribe::{Outcome as Subscribed, Policy, Request};
use nineten_node::review::earnings::Standing;
use nineten_node::review::{self, Cheat, Status};
use nineten_protocol::audit::audit;
use nineten_protocol::directory::Directory;
use nineten_protocol::identity::{Keypair, ListenerSecret};
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::month::Month;
use nineten_protocol::node_record::NodeName;
use nineten_protocol::receipt::{Receipt, SignedReceipt};
use nineten_protocol::record::Record;
use nineten_protocol::review::{Attestation, Kind, Outcome, Role};
use nineten_protocol::reviewers::Reviewers;
use nineten_protocol::schedule;
use nineten_protocol::settlement::Judgement;
use nineten_protocol::subscription::PaymentRef;

fn october() -> Month {
    "2026-10".parse().unwrap()
}

/// 2026-10-01, noon: the tests' listens (one an hour from midnight) have all started.
fn october_first_noon() -> u64 {
    october().bounds_ms().0 + 12 * 3_600_000
}

fn artist(n: u8) -> PublicKey {
    Keypair::from_seed([200 + n; 32]).public()
}

/// Operators of the given clusters (node 0 the home node under test), each with its review
/// task every 100 ms, on one manual clock; each dials every node started before it.
struct Network {
    nodes: Vec<Arc<Node>>,
    clock: ManualClock,
    dir: tempfile::TempDir,
    clusters: Vec<u16>,
}

async fn operator(
    dir: &std::path::Path,
    i: usize,
    cluster: u16,
    clock: &ManualClock,
    cheat: Option<Cheat>,
    suspects: review::Arbitration,
    peers: &[Arc<Node>],
) -> Arc<Node> {
    let mut config = Config::new(DataDir::new(Some(dir.join(format!("op{i}")))));
    config.seed = Some([i as u8 + 1; 32]);
    config.clock = clock.clock();
    config.operator = Some(Operator {
        cluster,
        name: NodeName::new(format!("operator {i}")).unwrap(),
        policy: Policy::Accept,
    });
    config.review = review::Options {
        interval: Duration::from_millis(100),
        suspects,
        cheat,
    };
    for p in peers {
        config
            .peers
            .push(p.status().await.unwrap().addrs[0].parse().unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Node::start(config.clone()).await {
            Ok(node) => return node,
            Err(e) if Instant::now() < deadline => {
                eprintln!("starting operator {i} again: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot start operator {i}: {e}"),
        }
    }
}

async fn eventually<F: std::future::Future<Output = bool>>(
    secs: u64,
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Network {
    async fn start(clusters: &[u16], cheat: Option<Cheat>) -> Self {
        Self::start_with(clusters, cheat, review::Arbitration::Auto).await
    }

    async fn start_with(
        clusters: &[u16],
        cheat: Option<Cheat>,
        suspects: review::Arbitration,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(october_first_noon());
        let mut nodes: Vec<Arc<Node>> = Vec::new();
        for (i, c) in clusters.iter().enumerate() {
            let cheat = if i == 0 { cheat } else { None };
            let node = operator(dir.path(), i, *c, &clock, cheat, suspects, &nodes).await;
            nodes.push(node);
        }
        let net = Self {
            nodes,
            clock,
            dir,
            clusters: clusters.to_vec(),
        };
        let n = clusters.len();
        for node in &net.nodes {
            eventually(20, "every node holds every node record", || async {
                node.nodes().unwrap().len() == n
            })
            .await;
        }
        net
    }

    fn home(&self) -> &Arc<Node> {
        &self.nodes[0]
    }

    fn reviewers(&self) -> Reviewers {
        let records = self.home().library().store().node_records().unwrap();
        Reviewers::choose(
            &Directory::for_month(october(), &records),
            &self.home().key(),
        )
        .unwrap()
    }

    fn by_key(&self, key: &PublicKey) -> &Arc<Node> {
        self.nodes.iter().find(|n| n.key() == *key).unwrap()
    }

    /// Subscribes `listeners` month keys through the home node (asked through the other
    /// nodes), and gossips `plays` receipts of each, alternating artists 0 and 1 (artist 1
    /// every third play), one an hour from October's first midnight; returns the receipts.
    async fn listen(&self, listeners: u8, plays: u64) -> Vec<SignedReceipt> {
        let all = self
            .play(0..listeners, plays, |l, seq| {
                (
                    ContentHash::of(&[l, seq as u8]),
                    artist(u8::from(seq % 3 == 0)),
                    seq * 3_600_000 + u64::from(l),
                )
            })
            .await;
        self.hold(all.len()).await;
        all
    }

    /// Subscribes the month keys of listener secrets `seeds` through the home node and
    /// gossips (without waiting for them to arrive) `plays` receipts of each: `what(listener, seq)` gives the track, the artist
    /// and the start (ms after October's first midnight); every listen 100 s of 200 s.
    async fn play(
        &self,
        seeds: std::ops::Range<u8>,
        plays: u64,
        what: impl Fn(u8, u64) -> (ContentHash, PublicKey, u64),
    ) -> Vec<SignedReceipt> {
        let home = self.home().key();
        let mut all = Vec::new();
        for l in seeds {
            // Each node asks for a few: a home node takes a few requests a second per peer.
            let via = &self.nodes[1 + usize::from(l) % (self.nodes.len() - 1)];
            let key = ListenerSecret::from_bytes([l + 1; 32]).month_key(october());
            let request =
                Request::new(&home, &key, october(), PaymentRef::new("tx").unwrap(), None);
            let Subscribed::Subscribed(s) = via.net().subscribe(home, request).await.unwrap()
            else {
                panic!("not subscribed")
            };
            via.library()
                .store()
                .put_subscriptions(std::slice::from_ref(&s))
                .unwrap();
            via.net().publish_subscription(s).await.unwrap();
            let mut mine = Vec::new();
            for seq in 0..plays {
                let (track, artist, at) = what(l, seq);
                let r = Receipt {
                    listener: key.public(),
                    seq,
                    track,
                    artist,
                    started_at_ms: october().bounds_ms().0 + at,
                    listened_ms: 100_000,
                    track_ms: 200_000,
                    home_node: home,
                }
                .sign(&key);
                mine.push(r);
            }
            for r in &mine {
                via.net().publish(*r).await.unwrap();
            }
            all.extend(mine);
        }
        all
    }

    /// Waits until every operator holds `want` receipts of the home node's October.
    async fn hold(&self, want: usize) {
        let home = self.home().key();
        for node in &self.nodes {
            eventually(30, "every operator holds every receipt", || async {
                node.library()
                    .store()
                    .receipts_of_home(october(), &home, u64::MAX)
                    .unwrap()
                    .len()
                    == want
            })
            .await;
        }
    }

    /// A listener's own node (not an operator), connected to the home node and node 1,
    /// once it knows every node record.
    async fn listener(&self, seed: u8) -> Arc<Node> {
        let mut config = Config::new(DataDir::new(Some(
            self.dir.path().join(format!("listener{seed}")),
        )));
        config.seed = Some([seed; 32]);
        config.clock = self.clock.clock();
        config.review.interval = Duration::from_millis(100);
        for n in [self.home(), &self.nodes[1]] {
            let addr = n.status().await.unwrap().addrs[0].parse().unwrap();
            config.peers.push(addr);
        }
        let listener = Node::start(config).await.unwrap();
        eventually(20, "the listener knows every node record", || async {
            listener.nodes().unwrap().len() == self.nodes.len()
        })
        .await;
        listener
    }

    /// Receipts of `listener`'s key of `month`, one per `(artist, ms after the month's
    /// start)`, 200 s of 200 s tracks, kept by its node and gossiped.
    async fn play_as(
        &self,
        listener: &Node,
        month: Month,
        plays: &[(u8, u64)],
    ) -> Vec<SignedReceipt> {
        let Some(nineten_protocol::identity::Secret::Listener(secret)) =
            listener.library().store().secret("listener").unwrap()
        else {
            panic!("no listener secret")
        };
        let key = secret.month_key(month);
        let home =
            nineten_node::home::home_of(listener.library().store(), &key.public(), month).unwrap();
        let mut out = Vec::new();
        for (seq, (a, at)) in plays.iter().enumerate() {
            let r = Receipt {
                listener: key.public(),
                seq: seq as u64,
                track: ContentHash([seq as u8 + 90; 32]),
                artist: artist(*a),
                started_at_ms: month.bounds_ms().0 + at,
                listened_ms: 200_000,
                track_ms: 200_000,
                home_node: home,
            }
            .sign(&key);
            listener
                .library()
                .store()
                .put_receipts(&[r], self.clock.now_ms())
                .unwrap();
            listener.net().publish(r).await.unwrap();
            out.push(r);
        }
        out
    }

    /// Stops node `i` (unless it is down already) and starts it again from its folder,
    /// connected to the others but `down`.
    async fn restart(&mut self, i: usize, running: bool, down: Option<usize>) {
        let old = self.nodes.remove(i);
        if running {
            old.shutdown().await.unwrap();
        }
        drop(old); // its store closes with the last handle
        let peers: Vec<Arc<Node>> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| Some(if *j >= i { j + 1 } else { *j }) != down)
            .map(|(_, n)| n.clone())
            .collect();
        let cheat = None; // a cheat acts on round 0 only, which exists by now
        let node = operator(
            self.dir.path(),
            i,
            self.clusters[i],
            &self.clock,
            cheat,
            review::Arbitration::Auto,
            &peers,
        )
        .await;
        self.nodes.insert(i, node);
    }

    /// Moves the clock past the close.
    fn close(&self) {
        let to = schedule::close_ms(october()) + 60_000;
        self.clock.advance(to - self.clock.now_ms());
    }

    fn status_at(&self, node: &Arc<Node>) -> Status {
        node.month_status(october())
            .unwrap()
            .into_iter()
            .find(|s| s.home == self.home().key())
            .unwrap()
    }

    async fn verified_everywhere(&self, secs: u64) {
        for node in &self.nodes {
            eventually(secs, "the month is verified on every node", || async {
                self.status_at(node).verified
            })
            .await;
        }
        // A reviewer slower than the other may dispute a round the verdict on the other's
        // dispute has already replaced: its arbiter still decides it, for the record.
        eventually(secs, "every dispute is decided", || async {
            let status = self.status_at(self.home());
            status.disputes.iter().all(|d| d.outcome.is_some())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_month_verifies_with_the_three_attestations_the_directory_names() {
    let net = Network::start(&[0, 0, 1, 2], None).await;
    let receipts = net.listen(3, 12).await;
    // Before the close nothing is issued, and the status says what it waits for.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = net.status_at(net.home());
    assert_eq!(before.round, None);
    assert!(
        before.waiting_for.contains("the close"),
        "{}",
        before.waiting_for
    );

    // Once the day ends, its daily report comes, and the operator reads its day.
    net.clock.advance(schedule::DAY_MS / 2 + 60_000);
    eventually(20, "the home node reports the 1st", || async {
        net.status_at(net.home()).daily_reports == 1
    })
    .await;
    let first: nineten_protocol::daily::Day = "2026-10-01".parse().unwrap();
    let (report, detail) = net.home().day(first).unwrap();
    assert_eq!(
        report.body.count as usize,
        receipts.len(),
        "every listen started on the 1st"
    );
    assert_eq!(
        detail.rows.iter().map(|r| r.plays).sum::<u32>() as usize,
        receipts.len()
    );
    // Node 1 is a home node too, with a day of its own: its listeners played nothing.
    eventually(20, "node 1 reports the 1st", || async {
        net.nodes[1].day(first).is_ok()
    })
    .await;
    assert_eq!(net.nodes[1].day(first).unwrap().0.body.count, 0);

    // While October is open, an artist's node estimates from the receipts it holds.
    let open = net.nodes[3].earnings(artist(0)).await.unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].standing, Standing::Open);
    assert!(open[0].units > 0 && open[0].statement.is_none());

    net.close();
    net.verified_everywhere(60).await;
    // Verified, the home node states what it owes each artist, and the statements spread.
    for node in &net.nodes {
        eventually(30, "every node holds both payout statements", || async {
            net.status_at(node).payouts == 2
        })
        .await;
    }
    let status = net.status_at(net.home());
    let rv = net.reviewers();
    assert_eq!(
        status.daily_reports, 31,
        "every day of October, gossiped to the reviewers"
    );
    assert_eq!(net.status_at(&net.nodes[1]).daily_reports, 31);
    assert_eq!(status.round, Some(0));
    assert!(status.disputes.is_empty());
    assert_eq!(
        status.home_attestation.as_ref().unwrap().node,
        net.home().key()
    );
    assert_eq!(
        status.cluster.as_ref().unwrap().node,
        rv.cluster_peer(0).unwrap()
    );
    assert_eq!(
        status.external.as_ref().unwrap().node,
        rv.external(0).unwrap()
    );
    assert_eq!(status.cluster.as_ref().unwrap().rank, 0);
    assert!(status.waiting_for.is_empty());

    // The export, read alone, verifies; it holds every receipt, and the tally pays the two
    // artists all of the three pools.
    for exporter in [net.home(), net.by_key(&rv.external(0).unwrap())] {
        let (records, tally) = exporter
            .month_export(net.home().key(), october())
            .await
            .unwrap();
        assert_eq!(records.receipts.len(), receipts.len());
        assert_eq!(records.subscriptions.len(), 3);
        assert_eq!(records.nodes.len(), 4);
        let audited = audit(&records).unwrap();
        assert!(audited.verified(), "{:#?}", audited.checks);
        assert_eq!(audited.tally, tally);
        assert_eq!(tally.artist_total(), 3 * 9_000_000);
        assert_eq!(tally.artists.len(), 2);
        assert_eq!(
            u128::from(status.paid_units),
            tally.artist_total(),
            "every unit is stated"
        );
        // Any node tells an artist what it is owed, from the statement of the verified tally.
        for (who, units) in &tally.artists {
            let owed = net.nodes[3].earnings(*who).await.unwrap();
            assert_eq!(owed.len(), 1);
            assert_eq!(owed[0].standing, Standing::Owed);
            assert_eq!(owed[0].units, units.0);
            assert!(owed[0].statement.is_some());
        }
    }

    // A node that is not the chosen reviewer signs too: it is not counted (its attestation
    // names a role and rank the directory gives another node).
    let arbiter = rv.arbiters(&rv.external(0).unwrap())[0];
    let stranger = net.by_key(&arbiter);
    let bundle = status.bundle.unwrap();
    let records =
        stranger
            .library()
            .store()
            .reviews_of(&nineten_protocol::review_record::Subject::Month(
                net.home().key(),
                october(),
            ));
    let bundles = records
        .unwrap()
        .into_iter()
        .filter(|r| matches!(r, nineten_protocol::review_record::ReviewRecord::Bundle(_)))
        .count();
    assert_eq!(bundles, 1, "the arbiter holds the bundle");
    let forged = Record::sign(
        Attestation {
            bundle,
            tally: status.tally.unwrap(),
            role: Role::External,
            rank: 0,
            reviewer: arbiter,
        },
        &Keypair::from_seed(
            [net.nodes.iter().position(|n| n.key() == arbiter).unwrap() as u8 + 1; 32],
        ),
    );
    let (mut export, _) = net
        .home()
        .month_export(net.home().key(), october())
        .await
        .unwrap();
    export
        .attestations
        .retain(|a| a.body.role != Role::External);
    export.attestations.push(forged);
    let audited = audit(&export).unwrap();
    assert!(
        !audited.verified(),
        "the arbiter's attestation counted as the external one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_home_node_that_drops_an_artist_is_caught_and_the_reissue_verifies() {
    let net = Network::start(&[0, 0, 1, 2], Some(Cheat::Omit(artist(1)))).await;
    let mut receipts = net.listen(2, 9).await;
    // A listener's own node too, which plays artist 1 twice and artist 0 once.
    let listener = net.listener(41).await;
    let subscribed = listener
        .subscribe(net.home().key(), "tx-41", false)
        .await
        .unwrap();
    assert!(matches!(subscribed, Subscribed::Subscribed(_)));
    let hour = 3_600_000;
    let mine = net
        .play_as(
            &listener,
            october(),
            &[(1, 2 * hour), (0, 3 * hour), (1, 4 * hour)],
        )
        .await;
    receipts.extend(mine);
    net.hold(receipts.len()).await;
    net.close();
    net.verified_everywhere(90).await;
    let status = net.status_at(net.home());
    assert_eq!(status.round, Some(1), "re-issued once");
    let rv = net.reviewers();
    let disputes = &status.disputes;
    assert!(!disputes.is_empty());
    for d in disputes {
        assert_eq!(d.kind, Kind::Omitted);
        assert_eq!(d.round, 0);
        assert_eq!(d.outcome, Some(Outcome::Upheld));
        assert_eq!(
            d.arbiter,
            rv.arbiters(&rv.external(0).unwrap()).first().copied()
        );
    }
    let by: Vec<PublicKey> = disputes.iter().map(|d| d.by).collect();
    assert!(by.contains(&rv.cluster_peer(0).unwrap()) || by.contains(&rv.external(0).unwrap()));
    let (records, tally) = net
        .home()
        .month_export(net.home().key(), october())
        .await
        .unwrap();
    assert_eq!(records.bundles.len(), 2);
    assert_eq!(
        records.receipts.len(),
        receipts.len(),
        "the dropped receipts are back"
    );
    assert!(tally.artists.contains_key(&artist(1)));
    let audited = audit(&records).unwrap();
    assert!(audited.verified(), "{:#?}", audited.checks);
    // The listener's own node sees, asking a reviewer, that round 0 left out its two listens
    // of artist 1, and that round 1 counts all three.
    let mine = listener.month_mine(october()).await.unwrap();
    assert_eq!(mine.rounds.len(), 2, "{mine:?}");
    assert_eq!(
        (mine.rounds[0].counted, mine.rounds[0].left_out),
        (1, 2),
        "{mine:?}"
    );
    assert_eq!(
        (mine.rounds[1].counted, mine.rounds[1].left_out),
        (3, 0),
        "{mine:?}"
    );
    assert_ne!(mine.rounds[0].checked_with, Some(net.home().key()));
    assert!(
        mine.verdict.contains("an earlier round left out 2"),
        "{}",
        mine.verdict
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_digest_is_caught_by_recomputing() {
    let net = Network::start(&[0, 0, 1, 2], Some(Cheat::AlterTally)).await;
    net.listen(2, 6).await;
    net.close();
    net.verified_everywhere(90).await;
    let status = net.status_at(net.home());
    assert_eq!(status.round, Some(1));
    assert!(
        status
            .disputes
            .iter()
            .all(|d| d.kind == Kind::Computation && d.outcome == Some(Outcome::Upheld))
    );
    let (records, _) = net
        .home()
        .month_export(net.home().key(), october())
        .await
        .unwrap();
    assert_ne!(records.bundles[0].body.tally, records.bundles[1].body.tally);
    assert!(audit(&records).unwrap().verified());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_reviewer_is_replaced_after_the_deadline_and_a_restart_resumes() {
    // Three nodes in the home node's cluster: the first-choice peer goes away.
    let mut net = Network::start(&[0, 0, 0, 1, 2], None).await;
    net.listen(2, 6).await;
    let rv = net.reviewers();
    let (peer0, peer1) = (rv.cluster_peer(0).unwrap(), rv.cluster_peer(1).unwrap());
    let gone = net.nodes.iter().position(|n| n.key() == peer0).unwrap();
    net.nodes[gone].shutdown().await.unwrap();
    net.nodes.remove(gone);
    net.close();
    // Within the deadline, the month waits for the cluster peer; the rank-1 peer keeps out.
    let home = net.home().clone();
    eventually(60, "the external node attests", || async {
        net.status_at(&home).external.is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = net.status_at(&home);
    assert!(!waiting.verified);
    assert!(waiting.cluster.is_none());
    assert!(
        waiting.waiting_for.contains("cluster peer"),
        "{}",
        waiting.waiting_for
    );

    // The home node restarts in the middle: nothing is signed twice.
    let dir = net.dir.path().to_path_buf();
    home.shutdown().await.unwrap();
    drop(home);
    net.nodes.remove(0);
    let restarted = operator(
        &dir,
        0,
        net.clusters[0],
        &net.clock,
        None,
        review::Arbitration::Auto,
        &net.nodes,
    )
    .await;
    net.nodes.insert(0, restarted);

    // After day 10 the rank-1 cluster peer is asked, and the month verifies.
    let late = schedule::review_deadline_ms(october()) + 60_000;
    net.clock.advance(late - net.clock.now_ms());
    net.verified_everywhere(60).await;
    let status = net.status_at(net.home());
    assert_eq!(status.cluster.as_ref().unwrap().node, peer1);
    assert_eq!(status.cluster.as_ref().unwrap().rank, 1);
    let (records, _) = net
        .home()
        .month_export(net.home().key(), october())
        .await
        .unwrap();
    assert_eq!(
        records.bundles.len(),
        1,
        "one bundle, not issued again on restart"
    );
    let home_attestations = records
        .attestations
        .iter()
        .filter(|a| a.body.role == Role::Home)
        .count();
    assert_eq!(home_attestations, 1);
    assert!(audit(&records).unwrap().verified());
}

/// Honest listeners, a looper (30 plays of one track in a morning) and a farm (20 new
/// listeners playing only artist 9); returns the honest receipts and the fraudulent ones.
async fn honest_a_looper_and_a_farm(net: &Network) -> (Vec<SignedReceipt>, Vec<SignedReceipt>) {
    let honest = net
        .play(0..3, 12, |l, seq| {
            (
                ContentHash::of(&[l, seq as u8]),
                artist(u8::from(seq % 3 == 0)),
                seq * 3_600_000 + u64::from(l),
            )
        })
        .await;
    let mut fraud = net
        .play(100..101, 30, |_, seq| {
            (ContentHash([42; 32]), artist(9), seq * 200_000)
        })
        .await;
    fraud.extend(
        net.play(120..140, 20, |l, seq| {
            (
                ContentHash::of(&[l, seq as u8, 9]),
                artist(9),
                seq * 200_000 + u64::from(l),
            )
        })
        .await,
    );
    net.hold(honest.len() + fraud.len()).await;
    (honest, fraud)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looper_and_a_bot_farm_are_flagged_disputed_and_excluded_by_verdict() {
    let net = Network::start(&[0, 0, 1, 2], None).await;
    let (honest, fraud) = honest_a_looper_and_a_farm(&net).await;
    net.close();
    net.verified_everywhere(90).await;
    let status = net.status_at(net.home());
    assert_eq!(status.round, Some(1));
    assert!(!status.disputes.is_empty());
    for d in &status.disputes {
        assert_eq!(d.kind, Kind::Suspect);
        assert_eq!(d.outcome, Some(Outcome::Upheld));
    }
    let (records, tally) = net
        .home()
        .month_export(net.home().key(), october())
        .await
        .unwrap();
    let excluded: std::collections::BTreeSet<ContentHash> =
        records.excluded.iter().map(|r| r.id()).collect();
    let wanted: std::collections::BTreeSet<ContentHash> = fraud.iter().map(|r| r.id()).collect();
    assert_eq!(
        excluded, wanted,
        "exactly the looper's and the farm's receipts"
    );
    assert_eq!(records.receipts.len(), honest.len());
    assert!(
        !tally.artists.contains_key(&artist(9)),
        "the farmed artist gets nothing"
    );
    assert_eq!(tally.artist_total(), 3 * 9_000_000);
    let audited = audit(&records).unwrap();
    assert!(audited.verified(), "{:#?}", audited.checks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_decides_a_suspect_dispute_as_arbiter() {
    let net = Network::start_with(&[0, 0, 1, 2], None, review::Arbitration::Manual).await;
    let (_, fraud) = honest_a_looper_and_a_farm(&net).await;
    net.close();
    let rv = net.reviewers();
    let arbiter = net
        .by_key(&rv.arbiters(&rv.external(0).unwrap())[0])
        .clone();
    eventually(60, "both reviewers dispute", || async {
        arbiter.disputes().unwrap().len() == 2
    })
    .await;
    let waiting = net.status_at(net.home());
    assert!(!waiting.verified);
    assert!(
        waiting.waiting_for.contains("verdict"),
        "{}",
        waiting.waiting_for
    );
    let disputes = arbiter.disputes().unwrap();
    let first = disputes[0].dispute.id.to_string();
    let shown = arbiter.dispute(&first[..12]).await.unwrap();
    assert_eq!(shown.evidence, Some(fraud.len()));
    assert_eq!(shown.arbiter_rank, Some(0));
    let detectors: std::collections::BTreeSet<_> =
        shown.findings.iter().map(|f| f.detector).collect();
    assert!(detectors.contains(&nineten_protocol::detectors::Detector::Loop));
    assert!(detectors.contains(&nineten_protocol::detectors::Detector::Farm));
    // Not the arbiter: refused, with the reason.
    let err = net.home().decide_dispute(&first, true).await.unwrap_err();
    assert!(err.to_string().contains("not an arbiter"), "{err}");
    assert!(arbiter.decide_dispute("abc", true).await.is_err());
    for d in &disputes {
        let decided = arbiter
            .decide_dispute(&d.dispute.id.to_string(), true)
            .await
            .unwrap();
        assert_eq!(decided.dispute.outcome, Some(Outcome::Upheld));
    }
    let again = arbiter.decide_dispute(&first, false).await.unwrap_err();
    assert!(again.to_string().contains("decided already"), "{again}");
    net.verified_everywhere(60).await;
    let (records, _) = net
        .home()
        .month_export(net.home().key(), october())
        .await
        .unwrap();
    assert_eq!(records.excluded.len(), fraud.len());
    assert!(audit(&records).unwrap().verified());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_forged_review_records_are_refused_and_counted() {
    let net = Network::start(&[0, 1, 2], None).await;
    let (liar, victim, honest_peer) = (&net.nodes[0], &net.nodes[1], &net.nodes[2]);
    let key = Keypair::from_seed([77; 32]);
    let honest = Record::sign(
        Attestation {
            bundle: ContentHash([1; 32]),
            tally: ContentHash([2; 32]),
            role: Role::Cluster,
            rank: 0,
            reviewer: key.public(),
        },
        &key,
    );
    let mut forged = honest.clone();
    forged.body.rank = 1; // the signature was over rank 0
    let topic = libp2p::gossipsub::IdentTopic::new(nineten_protocol::wire::REVIEW_TOPIC);
    let before = victim.net().stats().await.unwrap();
    for bytes in [
        b"9ten/bundle/v1\0 cut short".to_vec(),
        vec![0xff; 64],
        forged.to_bytes(),
    ] {
        liar.net().publish_raw(topic.clone(), bytes).await.unwrap();
    }
    // Three refusals take the liar below gossipsub's graylist, so the good record comes
    // from a peer with a clean record.
    honest_peer
        .net()
        .publish_raw(topic.clone(), honest.to_bytes())
        .await
        .unwrap();
    eventually(20, "the honest attestation arrives", || async {
        victim
            .library()
            .store()
            .review(&honest.id())
            .unwrap()
            .is_some()
    })
    .await;
    let after = victim.net().stats().await.unwrap();
    assert_eq!(after.reviews - before.reviews, 1);
    assert!(
        after.reviews_rejected - before.reviews_rejected >= 3,
        "{} refused",
        after.reviews_rejected - before.reviews_rejected
    );
    eventually(20, "the liar is banned", || async {
        victim.net().stats().await.unwrap().banned > before.banned
    })
    .await;
    // The forged copy shares the honest one's id only if its message matches; it does not.
    assert!(
        victim
            .library()
            .store()
            .review(&forged.id())
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standing_order_renews_and_the_carry_moves_to_the_next_month_key_and_conserves() {
    let net = Network::start(&[0, 0, 1, 2], None).await;
    net.listen(2, 6).await;
    // A listener's own node, subscribed with a standing order, that plays nothing in October:
    // its 9 USDP carry out.
    let listener = net.listener(40).await;
    let home = net.home().key();
    let subscribed = listener.subscribe(home, "standing-9", true).await.unwrap();
    assert!(
        matches!(subscribed, Subscribed::Subscribed(_)),
        "{subscribed:?}"
    );
    let november = october().next().unwrap();
    let (oct_key, nov_key) = (
        listener.listener_key(october()),
        listener.listener_key(november),
    );

    // Two days before October ends the standing order asks for November, as a renewal.
    let late = november.bounds_ms().0 - 36 * 3_600_000;
    net.clock.advance(late - net.clock.now_ms());
    eventually(20, "the standing order renews November", || async {
        nineten_node::home::home_of(listener.library().store(), &nov_key, november).unwrap() == home
    })
    .await;
    assert_eq!(
        net.home()
            .library()
            .store()
            .renewal(november, &oct_key)
            .unwrap(),
        Some(nov_key),
        "the home node alone holds the link"
    );
    assert_eq!(
        net.nodes[1]
            .library()
            .store()
            .renewal(november, &oct_key)
            .unwrap(),
        None
    );

    net.close();
    net.verified_everywhere(90).await;
    let (october_records, october_tally) = net.home().month_export(home, october()).await.unwrap();
    assert!(audit(&october_records).unwrap().verified());
    assert_eq!(october_tally.carry_out[&oct_key].0, 9_000_000);

    // November: the listener plays artist 5 three times, signed with its November key.
    let hour = 3_600_000;
    let played = net
        .play_as(
            &listener,
            november,
            &[(5, hour), (5, hour + 600_000), (5, hour + 1_200_000)],
        )
        .await;
    assert!(played.iter().all(|r| r.receipt.listener == nov_key));
    eventually(30, "the home node holds November's receipts", || async {
        net.home()
            .library()
            .store()
            .receipts_of_home(november, &home, u64::MAX)
            .unwrap()
            .len()
            == 3
    })
    .await;
    // The standing order ends: December is not asked for.
    assert!(listener.cancel_renewal().unwrap().is_some());
    let to = schedule::close_ms(november) + 60_000;
    net.clock.advance(to - net.clock.now_ms());
    for node in &net.nodes {
        eventually(90, "November is verified on every node", || async {
            node.month_status(november)
                .unwrap()
                .into_iter()
                .any(|s| s.home == home && s.verified)
        })
        .await;
    }
    let (records, tally) = net.home().month_export(home, november).await.unwrap();
    assert!(audit(&records).unwrap().verified());
    assert_eq!(
        records.carry.get(&nov_key).map(|u| u.0),
        Some(9_000_000),
        "the carry moved to the November key"
    );
    assert!(!records.carry.contains_key(&oct_key));
    let carried_in: u64 = records.carry.values().map(|u| u.0).sum();
    let carried_out: u64 = october_tally.carry_out.values().map(|u| u.0).sum();
    assert_eq!(carried_in, carried_out, "carry conserves");
    assert_eq!(
        tally.artists[&artist(5)].0,
        18_000_000,
        "pool = 9 USDP + carry"
    );
    assert_eq!(tally.carry_out[&nov_key].0, 0);
    // The listener's node checks its month: every receipt counted by the verified bundle, as
    // a reviewer answers, and its whole pool to the one artist it heard, as stated.
    eventually(30, "the payout statement reaches the listener", || async {
        listener
            .month_status(november)
            .unwrap()
            .iter()
            .any(|s| s.home == home && s.payouts == 1)
    })
    .await;
    let mine = listener.month_mine(november).await.unwrap();
    assert_eq!(mine.home, Some(home));
    assert_eq!(mine.carry_in, 9_000_000);
    assert!(mine.verified, "{}", mine.verdict);
    assert_eq!(mine.receipts.len(), 3);
    for r in &mine.receipts {
        assert_eq!(r.judgement, Judgement::Qualified);
        assert_eq!(r.in_bundle.as_deref(), Some("counted"));
    }
    assert_eq!(mine.top.len(), 1);
    assert_eq!(mine.top[0].artist, artist(5));
    assert_eq!(mine.top[0].units, 18_000_000);
    assert_eq!(mine.top[0].covered, Some(true));
    assert_ne!(
        mine.checked_with,
        Some(home),
        "asked of a reviewer, not the home node"
    );
    assert!(
        mine.verdict.starts_with("verified: every receipt counted"),
        "{}",
        mine.verdict
    );
    let october_mine = listener.month_mine(october()).await.unwrap();
    assert!(october_mine.receipts.is_empty() && october_mine.top.is_empty());
    assert_eq!(october_mine.carry_out, 9_000_000);

    let december = november.next().unwrap();
    listener.renew().await.unwrap();
    assert_eq!(
        nineten_node::home::home_of(
            listener.library().store(),
            &listener.listener_key(december),
            december
        )
        .unwrap(),
        nineten_protocol::receipt::NO_HOME_NODE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_while_a_dispute_waits_for_its_arbiter_sign_nothing_twice() {
    let mut net = Network::start(&[0, 0, 1, 2], Some(Cheat::Omit(artist(1)))).await;
    net.listen(2, 9).await;
    let rv = net.reviewers();
    let arbiter = rv.arbiters(&rv.external(0).unwrap())[0];
    let a = net.nodes.iter().position(|n| n.key() == arbiter).unwrap();
    // The arbiter is away at the close: the reviewers' disputes wait for it.
    net.nodes[a].shutdown().await.unwrap();
    net.close();
    eventually(60, "the reviewers dispute", || async {
        !net.status_at(net.home()).disputes.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let disputed = net.status_at(net.home()).disputes.len();
    // Every other node restarts in the middle of the dispute phase.
    for i in (0..net.nodes.len()).filter(|i| *i != a) {
        net.restart(i, true, Some(a)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let waiting = net.status_at(net.home());
    assert_eq!(
        waiting.round,
        Some(0),
        "nothing re-issued without a verdict"
    );
    assert_eq!(waiting.disputes.len(), disputed, "no dispute signed again");
    assert!(
        waiting.waiting_for.contains("verdict"),
        "{}",
        waiting.waiting_for
    );
    // The arbiter comes back: it decides, the home node re-issues, all three sign.
    net.restart(a, false, None).await;
    net.verified_everywhere(90).await;
    for node in &net.nodes {
        eventually(30, "the payout statements arrive", || async {
            net.status_at(node).payouts == 2
        })
        .await;
    }
    let (records, _) = net
        .home()
        .month_export(net.home().key(), october())
        .await
        .unwrap();
    assert_eq!(records.bundles.len(), 2, "round 0 and one re-issue");
    assert_eq!(records.disputes.len(), disputed);
    assert_eq!(records.verdicts.len(), disputed, "one verdict per dispute");
    let mut signed = std::collections::BTreeSet::new();
    for att in &records.attestations {
        assert!(
            signed.insert((att.body.bundle, att.body.reviewer)),
            "{} attested a bundle twice",
            att.body.reviewer
        );
    }
    assert_eq!(
        signed.len(),
        4,
        "the home node on round 0 (its reviewers disputed it), three eyes on round 1"
    );
    assert!(audit(&records).unwrap().verified());
    let statements = net
        .home()
        .library()
        .store()
        .reviews_of(&nineten_protocol::review_record::Subject::Month(
            net.home().key(),
            october(),
        ))
        .unwrap()
        .into_iter()
        .filter(|r| matches!(r, nineten_protocol::review_record::ReviewRecord::Payout(_)))
        .count();
    assert_eq!(statements, 2, "one statement per artist");
}
