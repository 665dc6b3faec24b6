//! `9ten example-month`: a small, reproducible, signed month to try `9ten tally` on.
//!
//! Two home nodes, five artists with three tracks each, eight listeners; six subscribe (one
//! twice), one carries units in from earlier months. Among the honest receipts are one of
//! each kind settlement voids (forged, too long, equivocating, overlapping), one from the
//! month before and one exact copy. Every secret derives from a fixed label, so the example
//! is the same on every machine; its keys are public knowledge, never use them for real.
//!
//! Each home node's month is also written as reviewed and verified, in the export folder of
//! `review.md` (`months/<home node>/<month>/`), for `9ten month audit`: four operators' nodes
//! in three clusters (the two home nodes share one), daily reports, the bundle and the three
//! attestations of the nodes the directory names.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use nineten_protocol::audit::MonthRecords;
use nineten_protocol::bundle::{Bundle, Inputs};
use nineten_protocol::daily::{DailyReport, Day, DayFigures, SignedDailyReport};
use nineten_protocol::directory::Directory;
use nineten_protocol::identity::{Keypair, ListenerSecret, Secret};
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::money::MicroUsdp;
use nineten_protocol::month::Month;
use nineten_protocol::node_record::{NodeName, NodeRecord, SignedNodeRecord};
use nineten_protocol::receipt::{Receipt, SignedReceipt};
use nineten_protocol::record::Record;
use nineten_protocol::review::{Attestation, Role};
use nineten_protocol::reviewers::Reviewers;
use nineten_protocol::subscription::{PaymentRef, SignedSubscription, Subscription};
use nineten_storage::keyfile;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// The month of the example.
const MONTH: &str = "2026-10";
const ARTISTS: [&str; 5] = [
    "Ada Sine",
    "The Square Waves",
    "Pink Noise Collective",
    "Sawtooth Sisters",
    "Formant",
];
const LISTENERS: usize = 8;

fn seed(label: &str) -> [u8; 32] {
    *blake3::hash(format!("9ten example month: {label}").as_bytes()).as_bytes()
}

struct Track {
    artist: usize,
    hash: ContentHash,
    ms: u32,
}

pub(crate) fn run(out: &Path) -> Result<ExitCode> {
    let month: Month = MONTH.parse().expect("a valid month");
    let keys_dir = out.join("keys");
    fs::create_dir_all(&keys_dir)
        .with_context(|| format!("cannot create {}", keys_dir.display()))?;

    let nodes: Vec<Keypair> = ["harbour", "lighthouse"]
        .iter()
        .map(|n| Keypair::from_seed(seed(n)))
        .collect();
    let artists: Vec<Keypair> = ARTISTS
        .iter()
        .map(|a| Keypair::from_seed(seed(a)))
        .collect();
    let secrets: Vec<ListenerSecret> = (0..LISTENERS)
        .map(|i| ListenerSecret::from_bytes(seed(&format!("listener {i}"))))
        .collect();
    let listeners: Vec<Keypair> = secrets.iter().map(|s| s.month_key(month)).collect();
    for (name, node) in ["harbour", "lighthouse"].iter().zip(&nodes) {
        write_key(
            &keys_dir.join(format!("node-{name}.key")),
            Secret::Node(node.clone()),
        )?;
    }
    for (i, artist) in artists.iter().enumerate() {
        write_key(
            &keys_dir.join(format!("artist-{i}.key")),
            Secret::Artist(artist.clone()),
        )?;
    }
    for (i, secret) in secrets.iter().enumerate() {
        write_key(
            &keys_dir.join(format!("listener-{i}.key")),
            Secret::Listener(secret.clone()),
        )?;
    }

    let mut rng = StdRng::seed_from_u64(202_610);
    let tracks: Vec<Track> = (0..ARTISTS.len() * 3)
        .map(|i| Track {
            artist: i / 3,
            hash: ContentHash::of(format!("{} track {}", ARTISTS[i / 3], i % 3 + 1).as_bytes()),
            ms: rng.random_range(150_000..300_000),
        })
        .collect();
    let home = |l: usize| &nodes[usize::from(l >= 5)];

    // Honest listening: each listener has favourite artists and listens through the month,
    // one track after another, sometimes skipping after a few seconds.
    let (start, _) = month.bounds_ms();
    let mut receipts: Vec<SignedReceipt> = Vec::new();
    let mut next_seq = [0u64; LISTENERS];
    for (l, key) in listeners.iter().enumerate() {
        // Listener 5 only ever skips: no qualified listen, so its pool carries over.
        let plays = if l == 5 { 6 } else { rng.random_range(25..60) };
        let mut at = start + rng.random_range(0..86_400_000u64);
        let favourite = l % ARTISTS.len();
        for _ in 0..plays {
            let t = if rng.random_bool(0.5) {
                &tracks[favourite * 3 + rng.random_range(0..3)]
            } else {
                &tracks[rng.random_range(0..tracks.len())]
            };
            let listened = if l == 5 || rng.random_bool(0.15) {
                rng.random_range(2_000..10_000)
            } else {
                t.ms
            };
            let receipt = Receipt {
                listener: key.public(),
                seq: next_seq[l],
                track: t.hash,
                artist: artists[t.artist].public(),
                started_at_ms: at,
                listened_ms: listened,
                track_ms: t.ms,
                home_node: home(l).public(),
            };
            next_seq[l] += 1;
            receipts.push(receipt.sign(key));
            at += u64::from(listened) + rng.random_range(1_000..20 * 3_600_000u64);
        }
    }

    // What settlement must catch.
    let last = |l: usize, receipts: &[SignedReceipt]| {
        *receipts
            .iter()
            .rfind(|r| r.receipt.listener == listeners[l].public())
            .expect("listener has receipts")
    };
    let mut forged = last(1, &receipts);
    forged.receipt.seq = next_seq[1];
    forged.receipt.artist = artists[4].public(); // claims a listen for another artist
    next_seq[1] += 1;
    let too_long = Receipt {
        seq: next_seq[2],
        started_at_ms: last(2, &receipts).receipt.ended_at_ms() + 60_000,
        listened_ms: last(2, &receipts).receipt.track_ms + 60_000,
        ..last(2, &receipts).receipt
    };
    next_seq[2] += 1;
    let reused = last(4, &receipts).receipt;
    let equivocation = Receipt {
        started_at_ms: reused.ended_at_ms() + 120_000,
        ..reused
    };
    let overlap = Receipt {
        seq: next_seq[0],
        started_at_ms: last(0, &receipts).receipt.started_at_ms + 5_000,
        ..last(0, &receipts).receipt
    };
    next_seq[0] += 1;
    let september = Receipt {
        seq: next_seq[3],
        started_at_ms: start - 3_600_000,
        ..last(3, &receipts).receipt
    };
    let copy = receipts[3];
    receipts.extend([
        forged,
        too_long.sign(&listeners[2]),
        equivocation.sign(&listeners[4]),
        overlap.sign(&listeners[0]),
        september.sign(&listeners[3]),
        copy,
    ]);
    receipts.sort_by_key(|r| r.receipt.started_at_ms);

    // Listeners 0 to 5 subscribe; listener 3 pays twice (at both nodes).
    let mut subscriptions: Vec<SignedSubscription> = (0..6)
        .map(|l| subscribe(&listeners[l], month, home(l), &format!("example-tx-{l:04}")))
        .collect();
    subscriptions.push(subscribe(
        &listeners[3],
        month,
        &nodes[1],
        "example-tx-0003-again",
    ));
    // Listener 5 brought 1 USDP from earlier months; listener 7, not subscribed, 2.5 USDP.
    let carry: BTreeMap<String, u64> = [(5, 1_000_000), (7, 2_500_000)]
        .into_iter()
        .map(|(l, units)| (listeners[l].public().to_string(), units))
        .collect();

    write(
        &out.join("receipts.jsonl"),
        receipts.iter().map(SignedReceipt::to_json),
    )?;
    write(
        &out.join("subscriptions.jsonl"),
        subscriptions.iter().map(SignedSubscription::to_json),
    )?;
    let carry_json = serde_json::to_string_pretty(&carry).expect("a map serializes");
    fs::write(out.join("carry.json"), carry_json + "\n").context("cannot write carry.json")?;
    write_people(out, &nodes, &artists, &listeners)?;
    let carry_in: BTreeMap<PublicKey, MicroUsdp> = [(5, 1_000_000), (7, 2_500_000)]
        .into_iter()
        .map(|(l, units)| (listeners[l].public(), MicroUsdp(units)))
        .collect();
    let reviewed = write_reviews(out, month, &nodes, &receipts, &subscriptions, &carry_in)?;

    println!(
        "wrote the example month {MONTH} to {}: {} receipts (6 to be ignored or voided), {} subscriptions, keys in keys/",
        out.display(),
        receipts.len(),
        subscriptions.len()
    );
    println!("tally it with:");
    println!(
        "  9ten tally --month {MONTH} --receipts {0}/receipts.jsonl --subscriptions {0}/subscriptions.jsonl --carry {0}/carry.json",
        out.display()
    );
    println!("and audit each home node's reviewed month with:");
    for dir in reviewed {
        println!("  9ten month audit {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The operators' nodes of the example that are not home nodes, and their clusters; the two
/// home nodes are of cluster 1.
const REVIEWERS: [(&str, u16); 2] = [("ridge", 2), ("delta", 3)];

/// Writes each home node's month as reviewed: its receipts and subscriptions of the month,
/// its listeners' carry, daily reports, the bundle, and the attestations of the home node, its
/// cluster peer and the external node the directory names. Returns the folders.
fn write_reviews(
    out: &Path,
    month: Month,
    homes: &[Keypair],
    receipts: &[SignedReceipt],
    subscriptions: &[SignedSubscription],
    carry_in: &BTreeMap<PublicKey, MicroUsdp>,
) -> Result<Vec<PathBuf>> {
    let mut operators: Vec<(Keypair, u16, String)> = ["harbour", "lighthouse"]
        .iter()
        .zip(homes)
        .map(|(name, key)| (key.clone(), 1, (*name).to_string()))
        .collect();
    for (name, cluster) in REVIEWERS {
        let key = Keypair::from_seed(seed(name));
        write_key(
            &out.join("keys").join(format!("node-{name}.key")),
            Secret::Node(key.clone()),
        )?;
        operators.push((key, cluster, name.to_string()));
    }
    let nodes: Vec<SignedNodeRecord> = operators
        .iter()
        .map(|(key, cluster, name)| {
            Record::sign(
                NodeRecord {
                    node: key.public(),
                    seq: 1,
                    cluster: *cluster,
                    joined: month,
                    name: NodeName::new(name.clone()).expect("a short name"),
                },
                key,
            )
        })
        .collect();
    let directory = Directory::for_month(month, &nodes);
    let key_of = |who: PublicKey| {
        &operators
            .iter()
            .find(|(k, _, _)| k.public() == who)
            .expect("every reviewer is an operator of the example")
            .0
    };
    let mut folders = Vec::new();
    for home in homes {
        let h = home.public();
        let mine: Vec<SignedReceipt> = receipts
            .iter()
            .filter(|r| r.receipt.home_node == h && month.contains(r.receipt.started_at_ms))
            .copied()
            .collect();
        let mut records = MonthRecords {
            nodes: nodes.clone(),
            subscriptions: subscriptions
                .iter()
                .filter(|s| s.subscription.home_node == h)
                .cloned()
                .collect(),
            carry: carry_in
                .iter()
                .filter(|(listener, _)| {
                    mine.iter().any(|r| r.receipt.listener == **listener)
                        || subscriptions.iter().any(|s| {
                            s.subscription.listener == **listener && s.subscription.home_node == h
                        })
                })
                .map(|(k, u)| (*k, *u))
                .collect(),
            daily: daily_reports(home, &mine),
            receipts: mine,
            ..MonthRecords::default()
        };
        let (bundle, tally) = Bundle::close(
            h,
            month,
            Inputs {
                receipts: &records.receipts,
                excluded: &records.excluded,
                subscriptions: &records.subscriptions,
                carry: &records.carry,
            },
            &directory,
            0,
        )
        .context("cannot settle the example month")?;
        let bundle = Record::sign(bundle, home);
        let reviewers = Reviewers::choose(&directory, &h).context("choosing the reviewers")?;
        for (role, who) in [
            (Role::Home, h),
            (
                Role::Cluster,
                reviewers.cluster_peer(0).expect("a cluster peer"),
            ),
            (
                Role::External,
                reviewers.external(0).expect("an external node"),
            ),
        ] {
            let attestation = Attestation {
                bundle: bundle.id(),
                tally: bundle.body.tally,
                role,
                rank: 0,
                reviewer: who,
            };
            records
                .attestations
                .push(Record::sign(attestation, key_of(who)));
        }
        records.bundles.push(bundle);
        let dir = out
            .join("months")
            .join(h.to_string())
            .join(month.to_string());
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (name, text) in records.files(&tally) {
            let path = dir.join(name);
            fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        }
        folders.push(dir);
    }
    Ok(folders)
}

/// A home node's daily reports over its receipts, one per day with receipts.
fn daily_reports(home: &Keypair, receipts: &[SignedReceipt]) -> Vec<SignedDailyReport> {
    let mut days: BTreeMap<Day, Vec<SignedReceipt>> = BTreeMap::new();
    for r in receipts {
        if let Some(day) = Day::containing(r.receipt.started_at_ms) {
            days.entry(day).or_default().push(*r);
        }
    }
    days.into_iter()
        .map(|(day, receipts)| {
            let figures = DayFigures::of(&receipts);
            Record::sign(DailyReport::new(home.public(), day, &figures), home)
        })
        .collect()
}

fn subscribe(
    listener: &Keypair,
    month: Month,
    node: &Keypair,
    reference: &str,
) -> SignedSubscription {
    Subscription {
        listener: listener.public(),
        month,
        home_node: node.public(),
        payment_ref: PaymentRef::new(reference).expect("a short reference"),
    }
    .sign(node)
}

/// Writes a key file; an existing one is kept if it holds the same secret (the example's
/// secrets are fixed), so the example can be written again into the same folder.
fn write_key(path: &Path, secret: Secret) -> Result<()> {
    if path.exists() {
        let existing = keyfile::read(path)?;
        if existing.to_key_file() == secret.to_key_file() {
            return Ok(());
        }
    }
    keyfile::write(path, &secret)?;
    Ok(())
}

fn write(path: &Path, lines: impl Iterator<Item = String>) -> Result<()> {
    let mut text = String::new();
    for line in lines {
        text.push_str(&line);
        text.push('\n');
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// `people.json`: who is who, so the tally's keys can be read as names.
fn write_people(
    out: &Path,
    nodes: &[Keypair],
    artists: &[Keypair],
    listeners: &[Keypair],
) -> Result<()> {
    let named = |names: &[&str], keys: &[Keypair]| -> BTreeMap<String, String> {
        keys.iter()
            .zip(names)
            .map(|(k, n)| (k.public().to_string(), n.to_string()))
            .collect()
    };
    let listener_names: Vec<String> = (0..listeners.len())
        .map(|i| format!("listener {i}"))
        .collect();
    let listener_names: Vec<&str> = listener_names.iter().map(String::as_str).collect();
    let people = serde_json::json!({
        "nodes": named(&["Harbour", "Lighthouse"], nodes),
        "artists": named(&ARTISTS, artists),
        "listeners": named(&listener_names, listeners),
    });
    fs::write(
        out.join("people.json"),
        serde_json::to_string_pretty(&people).expect("json") + "\n",
    )
    .context("cannot write people.json")
}
