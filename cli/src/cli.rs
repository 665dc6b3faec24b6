//! The command line, as clap sees it. Values are checked here as far as their types allow
//! (months, hex keys); the commands in `cmd` do the rest.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use nineten_protocol::key::{ContentHash, PublicKey};
use nineten_protocol::month::Month;

/// 9ten: music streaming with no central server, where every listen is a signed receipt and
/// each subscriber's 10 USDP a month goes 1 to its home node and 9 to its top 9 artists.
#[derive(Parser, Debug)]
#[command(name = "9ten", version, propagate_version = true, max_term_width = 100)]
#[command(after_help = "Start here:
  9ten testnet
  9ten node run --peer /ip4/127.0.0.1/tcp/4001/p2p/12D3Koo…
  9ten example-month --out example-month
  9ten tally --month 2026-10 --receipts example-month/receipts.jsonl \\
      --subscriptions example-month/subscriptions.jsonl --carry example-month/carry.json

Logs go to stderr; set NINETEN_LOG=debug for more.")]
pub(crate) struct Cli {
    /// The node's data folder [default: $XDG_DATA_HOME/9ten, i.e. ~/.local/share/9ten].
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Create and inspect key files (node, artist and listener secrets).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Sign and verify listen receipts.
    #[command(subcommand)]
    Receipt(ReceiptCommand),
    /// Subscriptions: list them, decide the requests waiting for this home node, or sign one
    /// offline.
    #[command(subcommand)]
    Subscription(SubscriptionCommand),
    /// Ask a home node (through the running node) to subscribe this listener for the month;
    /// the home node's payment policy decides.
    Subscribe {
        /// The home node's key (see `9ten nodes`).
        #[arg(long, value_name = "NODE")]
        home: PublicKey,
        /// The wallet's or payment gateway's transaction id of the fee paid (with
        /// `--auto-renew`, the standing payment order's reference).
        #[arg(long, value_name = "REF")]
        payment_ref: String,
        /// Renew each month through the same home node, moving the carry, until
        /// `9ten subscription cancel`.
        #[arg(long)]
        auto_renew: bool,
    },
    /// List the home nodes this node knows of (the directory of node records).
    Nodes,
    /// Settle a month offline: verify every receipt and subscription and compute who is paid
    /// what, exactly as settlement.md says. For operators and auditors.
    Tally(TallyArgs),
    /// Months under review: their status, a home node's month exported, an export audited.
    #[command(subcommand)]
    Month(MonthCommand),
    /// An artist's earnings: per month and home node, the units owed by payout statements
    /// from verified tallies, or estimated while a month is open or under review, and why.
    Earnings {
        /// The artist's public key (64 hex), or its key file (kind artist).
        #[arg(long, value_name = "KEY")]
        artist_key: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A home node's daily reports, as its operator reads them.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Disputes of the months under review: list them, show one with its evidence and the
    /// detectors' findings, decide a suspect one as its arbiter.
    #[command(subcommand)]
    Dispute(DisputeCommand),
    /// Import an artist's audio files (WAV, FLAC, MP3, Ogg Vorbis) as a release: encode each
    /// to Ogg Opus on all cores, sign the release manifest, store everything in the node.
    Import(ImportArgs),
    /// Run a node, or ask the running one how it is or to stop.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Announce a stored release to the network: the node provides every track in the DHT
    /// and gossips the signed manifest to every node's catalog.
    Publish {
        /// The release id (or a unique prefix of at least 4 hex characters).
        release: String,
    },
    /// List the releases this node knows of (its own and those gossiped to it).
    Catalog,
    /// Search the catalog: releases and tracks whose artist, title or track title contain
    /// every word.
    Search {
        /// The words to look for (case ignored).
        #[arg(required = true)]
        words: Vec<String>,
    },
    /// Play a track (RELEASE/NUMBER, or its hash or the first characters of it): from this
    /// node's library, or streamed from the peers that hold it. The listen's receipt is signed
    /// when it ends and pays the artist of the release played.
    Play(PlayArgs),
    /// Stop what the running node plays (its listen ends and gets its receipt).
    Stop,
    /// Move playback on the running node to another point (the listen so far ends).
    Seek {
        /// Seconds into the track.
        seconds: f64,
    },
    /// A listener's receipts (by month key), found through the DHT, as JSON lines: what a
    /// reviewer checks.
    Receipts {
        /// The listener's key for the month.
        listener: PublicKey,
    },
    /// Write a track's Ogg Opus stream to a file any player opens.
    Export {
        /// The track's hash (or a unique prefix of at least 4 hex characters).
        track: String,
        /// The file to write (.opus).
        file: PathBuf,
    },
    /// Run a whole network on this machine: real nodes on 127.0.0.1 (each with its own stores
    /// in a temporary folder), artists publishing generated music, listeners playing it; then
    /// report time to first audio, who served the bytes, and how far the receipts spread.
    Testnet(TestnetArgs),
    /// Write a small signed example month (nodes, artists, listeners, some void receipts) to
    /// a folder, ready for `9ten tally`.
    ExampleMonth {
        /// The folder to write to (created if missing; its example files are replaced).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Args, Debug)]
pub(crate) struct TestnetArgs {
    /// Nodes in the network.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(2..=1000))]
    pub(crate) nodes: u16,
    /// Plays in total, spread over the listeners' nodes.
    #[arg(long, default_value_t = 40)]
    pub(crate) plays: usize,
    /// How many nodes are artists' (they import and publish generated music).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) artists: u16,
    /// Seed of every choice (identities, music, who plays what) [default: random, printed].
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Also write the report to DIR/report.json.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum NodeCommand {
    /// Run this node until Ctrl-C (or `9ten node stop`): serve its releases and cache, take
    /// part in the DHT and gossip, and answer the other commands.
    Run(NodeRunArgs),
    /// Show the running node's identity, addresses and holdings.
    Status,
    /// Stop the running node.
    Stop,
}

#[derive(Args, Debug)]
pub(crate) struct NodeRunArgs {
    /// libp2p listen address [default: /ip4/127.0.0.1/tcp/0, or the config file's].
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) listen: Option<String>,
    /// iroh (QUIC) socket address [default: 127.0.0.1:0, or the config file's].
    #[arg(long, value_name = "IP:PORT")]
    pub(crate) iroh: Option<std::net::SocketAddr>,
    /// A peer to connect to, `/ip4/…/tcp/…/p2p/<peer id>` (as `9ten node status` prints);
    /// repeat for more. Added to the config file's peers.
    #[arg(long = "peer", value_name = "MULTIADDR")]
    pub(crate) peers: Vec<String>,
    /// Most megabytes of streamed tracks to keep in the cache.
    #[arg(long, value_name = "MB")]
    pub(crate) cache_mb: Option<u64>,
    /// Port of the control API on 127.0.0.1 [default: any free port].
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub(crate) control_port: u16,
    /// Run as a home node: take subscriptions and publish this node's record.
    #[arg(long, requires_all = ["cluster", "name"])]
    pub(crate) operator: bool,
    /// The operator's cluster (a region or a group of operators).
    #[arg(long, value_name = "N", requires = "operator")]
    pub(crate) cluster: Option<u16>,
    /// The operator's display name (1 to 64 bytes).
    #[arg(long, value_name = "NAME", requires = "operator")]
    pub(crate) name: Option<String>,
    /// How subscription requests are taken: `manual` (each waits for `9ten subscription
    /// approve`) or `accept` (signed at once: testnets, or a gateway that checked the payment).
    #[arg(long, value_enum, default_value_t = PolicyArg::Manual, requires = "operator")]
    pub(crate) policy: PolicyArg,
}

/// A home node's payment policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PolicyArg {
    /// Each request waits for the operator.
    Manual,
    /// Every well-formed request is signed at once.
    Accept,
}

#[derive(Subcommand, Debug)]
pub(crate) enum KeyCommand {
    /// Create a new random secret in a new file (mode 0600; never overwrites).
    New {
        /// The file to create.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// What the key is for.
        #[arg(long, value_enum, default_value_t = KeyKind::Node)]
        kind: KeyKind,
    },
    /// Show a key file's public key. For a listener secret, the key of one month.
    Show {
        /// The key file.
        file: PathBuf,
        /// For a listener secret: the month whose key to show (default: this month, UTC).
        #[arg(long, value_name = "YYYY-MM")]
        month: Option<Month>,
    },
}

/// What a new key is for.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// A node's identity (also its libp2p PeerId and iroh EndpointId); signs subscriptions.
    Node,
    /// An artist's key; signs release manifests.
    Artist,
    /// A listener's long-term secret; each month's receipts are signed with a key derived
    /// from it for that month alone.
    Listener,
}

#[derive(Subcommand, Debug)]
pub(crate) enum ReceiptCommand {
    /// Sign one receipt with a listener secret and print it as a JSON line.
    Sign(ReceiptSignArgs),
    /// Check every line of a receipts file (JSON lines): format and signature. Reports each
    /// bad line; exits 1 if there is one.
    Verify {
        /// The receipts file.
        file: PathBuf,
    },
}

#[derive(Args, Debug)]
pub(crate) struct ReceiptSignArgs {
    /// The listener's key file (kind listener); the month key is derived from the start time.
    #[arg(long, value_name = "FILE")]
    pub(crate) key: PathBuf,
    /// The listener's sequence number for this receipt (a new one for every receipt).
    #[arg(long)]
    pub(crate) seq: u64,
    /// The track's content hash (64 hex).
    #[arg(long, value_name = "HASH")]
    pub(crate) track: ContentHash,
    /// The artist's public key (64 hex).
    #[arg(long, value_name = "KEY")]
    pub(crate) artist: PublicKey,
    /// Start of the listen: Unix time in milliseconds, UTC.
    #[arg(long, value_name = "MS")]
    pub(crate) started_at_ms: u64,
    /// How long was listened, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub(crate) listened_ms: u32,
    /// The track's length in milliseconds.
    #[arg(long, value_name = "MS")]
    pub(crate) track_ms: u32,
    /// The listener's home node's public key (64 hex).
    #[arg(long, value_name = "KEY")]
    pub(crate) home_node: PublicKey,
}

#[derive(Subcommand, Debug)]
pub(crate) enum SubscriptionCommand {
    /// This listener's subscriptions and, on a home node, those it signed and the requests
    /// waiting for its operator.
    List,
    /// Sign a pending request (on the running home node) and gossip the subscription.
    Approve {
        /// The request's id (or the start of it), as `list` shows.
        id: String,
    },
    /// Turn a pending request down.
    Reject {
        /// The request's id (or the start of it), as `list` shows.
        id: String,
    },
    /// End this listener's standing order (`subscribe --auto-renew`): no more renewals; the
    /// subscriptions already signed stand.
    Cancel,
    /// Sign a subscription with the home node's key and print it as a JSON line.
    Sign {
        /// The home node's key file (kind node).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The listener's key for that month (see `9ten key show --month`).
        #[arg(long, value_name = "KEY")]
        listener: PublicKey,
        /// The month paid for.
        #[arg(long, value_name = "YYYY-MM")]
        month: Month,
        /// The wallet's or payment gateway's transaction id.
        #[arg(long, value_name = "REF")]
        payment_ref: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum DisputeCommand {
    /// Every dispute of the months under review, with its verdict.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One dispute: what it objects to, the receipts in question, what this node's
    /// detectors find among them, and whether this node is its arbiter.
    Show {
        /// The dispute's id (at least 8 hex digits).
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Decide a suspect dispute this node arbitrates: exclude every receipt in question, or
    /// keep them all. The verdict is signed, stored and gossiped; the home node re-issues.
    Decide {
        /// The dispute's id (at least 8 hex digits).
        id: String,
        /// Exclude the receipts in question.
        #[arg(long, conflicts_with = "keep", required_unless_present = "keep")]
        exclude: bool,
        /// Keep them: the bundle stands.
        #[arg(long)]
        keep: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ReportCommand {
    /// The running home node's report of a UTC day and its detailed day (per listener
    /// pseudonym, per track), which only this node can open.
    Day {
        /// The day (YYYY-MM-DD).
        day: nineten_protocol::daily::Day,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum MonthCommand {
    /// Per home node of the month's directory, through the running node: the bundle round,
    /// who attested, the disputes and verdicts, whether the tally is verified, and what the
    /// month waits for and why.
    Status {
        /// The month (YYYY-MM).
        month: Month,
        /// Only this home node (its key).
        #[arg(long, value_name = "NODE")]
        home: Option<nineten_protocol::key::PublicKey>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write a home node's month, from the running node, as the folder of review.md ("What
    /// an auditor can check alone"), which `9ten month audit` checks offline.
    Export {
        /// The month (YYYY-MM).
        month: Month,
        /// The home node (its key).
        #[arg(long, value_name = "NODE")]
        home: nineten_protocol::key::PublicKey,
        /// The folder to write (created; files in it are replaced).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// This listener's month, through the running node: its receipts and how each was
    /// judged, its top 9 and the exact units each artist gets from it, and, once verified,
    /// which receipts the verified bundle counts (asked of a reviewer) and whether each
    /// artist's payout statement covers its share.
    Mine {
        /// The month (YYYY-MM).
        month: Month,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Check a home node's exported month alone, offline: every signature, every root, the
    /// tally digest and the choice of reviewers, and whether the tally is verified (three
    /// attestations by the nodes the directory names). Exits 0 only when it is.
    Audit {
        /// The export folder (nodes.jsonl, receipts.jsonl, ..., tally.json; review.md).
        dir: PathBuf,
        /// Print exactly one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub(crate) struct TallyArgs {
    /// The month to settle.
    #[arg(long, value_name = "YYYY-MM")]
    pub(crate) month: Month,
    /// Receipts, one JSON object per line.
    #[arg(long, value_name = "FILE")]
    pub(crate) receipts: PathBuf,
    /// Subscriptions, one JSON object per line.
    #[arg(long, value_name = "FILE")]
    pub(crate) subscriptions: PathBuf,
    /// Carry-in: a JSON object {listener_hex: micro-USDP}.
    #[arg(long, value_name = "FILE")]
    pub(crate) carry: Option<PathBuf>,
    /// Print exactly one JSON object instead of tables.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args, Debug)]
pub(crate) struct ImportArgs {
    /// Audio files, or folders whose .wav, .flac, .mp3 and .ogg files are imported.
    #[arg(required = true, value_name = "FILES|DIR")]
    pub(crate) files: Vec<PathBuf>,
    /// The artist's key file (kind artist): signs the release.
    #[arg(long, value_name = "FILE")]
    pub(crate) artist_key: PathBuf,
    /// The release's title.
    #[arg(long, value_name = "TITLE")]
    pub(crate) release: String,
    /// The artist's name [default: the files' ARTIST tag].
    #[arg(long, value_name = "NAME")]
    pub(crate) artist_name: Option<String>,
    /// Opus bitrate in kbit/s (VBR).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(6..=510))]
    pub(crate) bitrate: u32,
}

#[derive(Args, Debug)]
pub(crate) struct PlayArgs {
    /// RELEASE/NUMBER (a release id or its start, a track number), or the track's hash (or a
    /// unique prefix of at least 4 hex characters). A hash that releases of different artists
    /// list needs RELEASE/NUMBER: the error lists the choices.
    pub(crate) track: String,
    /// Start this many seconds into the track.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    pub(crate) from: f64,
    /// Write the audio to a WAV file instead of playing it.
    #[arg(long, value_name = "FILE.wav", conflicts_with = "sink")]
    pub(crate) out: Option<PathBuf>,
    /// Where the audio goes.
    #[arg(long, value_enum, default_value_t = SinkKind::Device)]
    pub(crate) sink: SinkKind,
}

/// Where played audio goes.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SinkKind {
    /// The default sound device.
    Device,
    /// Nowhere, as fast as it decodes (machines without sound, tests); the receipt signs only
    /// the time the listen took, not the audio decoded.
    Null,
    /// Nowhere, at the pace of real time: a listener simulated without sound.
    Paced,
}
