//! Two `9ten node run` processes on 127.0.0.1 and the commands that talk to them: import and
//! publish on one, search and stream on the other, the receipt found by a reviewer, a wrong
//! token refused, both stopped cleanly.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::audio::tone;
use crate::{nineten, path, stderr, stdout};

struct Running {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_node(dir: &Path, peers: &[String]) -> Running {
    let mut args = vec![
        "--data-dir".to_string(),
        path(dir).to_string(),
        "node".into(),
        "run".into(),
    ];
    for p in peers {
        args.extend(["--peer".to_string(), p.clone()]);
    }
    let child = Command::new(env!("CARGO_BIN_EXE_9ten"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.join("control.json").exists() {
        assert!(Instant::now() < deadline, "the node did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Running {
        child,
        dir: dir.to_path_buf(),
    }
}

fn status_field(dir: &Path, field: &str) -> String {
    let o = nineten(&["--data-dir", path(dir), "node", "status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .find_map(|l| l.strip_prefix(field).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {field} in {}", stdout(&o)))
}

#[test]
fn two_nodes_publish_search_stream_and_review() {
    let dir = tempfile::tempdir().unwrap();
    let (artist_dir, fan_dir) = (dir.path().join("artist"), dir.path().join("fan"));
    let artist = run_node(&artist_dir, &[]);
    let control = std::fs::metadata(artist_dir.join("control.json")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&control.permissions()) & 0o777,
        0o600,
        "only the user reads the token"
    );
    let artist_addr = status_field(&artist_dir, "libp2p");
    let fan = run_node(&fan_dir, &[artist_addr]);

    // Import and publish on the artist's running node.
    let music = dir.path().join("music");
    std::fs::create_dir(&music).unwrap();
    tone(&music, "01 hum.wav", 220.0, 2.0);
    let key = dir.path().join("artist.key");
    let o = nineten(&["key", "new", "--kind", "artist", "--out", path(&key)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = nineten(&[
        "--data-dir",
        path(&artist_dir),
        "import",
        path(&music),
        "--artist-key",
        path(&key),
        "--release",
        "Low Hum",
        "--artist-name",
        "Drone Choir",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let release = stdout(&o)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    let track = stdout(&o)
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let o = nineten(&["--data-dir", path(&artist_dir), "publish", &release[..12]]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Low Hum by Drone Choir"),
        "{}",
        stdout(&o)
    );

    // The fan's node hears of it and streams it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = nineten(&["--data-dir", path(&fan_dir), "search", "drone", "hum"]);
        if o.status.success() {
            assert!(stdout(&o).contains(&track), "{}", stdout(&o));
            break;
        }
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            Instant::now() < deadline,
            "the release never reached the fan"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = nineten(&[
        "--data-dir",
        path(&fan_dir),
        "play",
        &track[..8],
        "--sink",
        "paced",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("streamed from 1 peer"),
        "{}",
        stderr(&o)
    );
    let receipt: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(receipt["track"], track.as_str());
    // Paced at real time: the receipt signs the time the listen took, at most the track.
    let listened = receipt["listened_ms"].as_u64().unwrap();
    assert!((1900..=2000).contains(&listened), "{listened}");

    // A reviewer asking the artist's node finds the fan's receipt.
    let listener = receipt["listener"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = nineten(&["--data-dir", path(&artist_dir), "receipts", listener]);
        if o.status.success() {
            let found: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
            assert_eq!(found, receipt);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the receipt was never found: {}",
            stderr(&o)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Neither node is a home node: the month's status lists none, and an export names what
    // is missing.
    let o = nineten(&["--data-dir", path(&fan_dir), "month", "status", "2026-10"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("no home node"), "{}", stdout(&o));
    let nobody = "00".repeat(32);
    let o = nineten(&[
        "--data-dir",
        path(&fan_dir),
        "month",
        "export",
        "2026-10",
        "--home",
        &nobody,
        "--out",
        path(&dir.path().join("export")),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("holds no bundle"), "{}", stderr(&o));
    let o = nineten(&["--data-dir", path(&fan_dir), "month", "status", "2026-13"]);
    assert!(!o.status.success());
    // A listener with no home node: its month counts for nothing, and says so.
    let o = nineten(&["--data-dir", path(&fan_dir), "month", "mine", "2026-10"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("count for nothing"), "{}", stdout(&o));
    // An artist's earnings: a key that is neither hex nor a file is named.
    let o = nineten(&[
        "--data-dir",
        path(&fan_dir),
        "earnings",
        "--artist-key",
        "zz",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("neither a public key"),
        "{}",
        stderr(&o)
    );
    let o = nineten(&[
        "--data-dir",
        path(&fan_dir),
        "earnings",
        "--artist-key",
        &nobody,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("no month"), "{}", stdout(&o));
    // No standing order to cancel.
    let o = nineten(&["--data-dir", path(&fan_dir), "subscription", "cancel"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no standing order"), "{}", stderr(&o));

    // Without the token, the control API refuses.
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fan_dir.join("control.json")).unwrap()).unwrap();
    let mut conn = std::net::TcpStream::connect(file["addr"].as_str().unwrap()).unwrap();
    conn.write_all(b"POST /v1/shutdown HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer 00\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    for node in [fan, artist] {
        let o = nineten(&["--data-dir", path(&node.dir), "node", "stop"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let mut node = node;
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = node.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "the node did not stop");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success());
        assert!(
            !node.dir.join("control.json").exists(),
            "control.json removed"
        );
    }
    let o = nineten(&["--data-dir", path(&fan_dir), "stop"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no node is running"), "{}", stderr(&o));
}

#[test]
fn ctrl_c_stops_a_testnet_and_removes_its_folder() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_9ten"))
        .args(["testnet", "--nodes", "6", "--plays", "2000", "--seed", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut err, &mut first).unwrap();
    let folder = first.rsplit("data in ").next().unwrap().trim().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Wait until the run is under way (nodes have folders), then press Ctrl-C.
    while std::fs::read_dir(&folder).map_or(0, |d| d.count()) < 6 {
        assert!(
            Instant::now() < deadline,
            "the testnet never started in {folder}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the testnet did not stop on Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    assert!(!Path::new(&folder).exists(), "{folder} is removed");
}
