//! End-to-end tests of the `9ten` binary: real files, real processes, exit codes and messages.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod audio;
mod node;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

pub(crate) fn nineten(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_9ten"))
        .args(args)
        .output()
        .expect("the 9ten binary runs")
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub(crate) fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn example(dir: &Path) {
    let o = nineten(&["example-month", "--out", path(dir)]);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn tally_json(dir: &Path, receipts: &Path) -> Output {
    nineten(&[
        "tally",
        "--month",
        "2026-10",
        "--receipts",
        path(receipts),
        "--subscriptions",
        path(&dir.join("subscriptions.jsonl")),
        "--carry",
        path(&dir.join("carry.json")),
        "--json",
    ])
}

#[test]
fn key_new_writes_a_private_file_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("me.key");
    let o = nineten(&["key", "new", "--out", path(&file), "--kind", "listener"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let o = nineten(&["key", "show", path(&file), "--month", "2026-10"]);
    assert!(
        stdout(&o).contains("month key for 2026-10: "),
        "{}",
        stdout(&o)
    );
    let o = nineten(&["key", "new", "--out", path(&file)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("me.key"), "{}", stderr(&o));
}

#[test]
fn signed_records_verify_and_tampering_is_reported_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let (lk, nk) = (dir.path().join("l.key"), dir.path().join("n.key"));
    assert!(
        nineten(&["key", "new", "--out", path(&lk), "--kind", "listener"])
            .status
            .success()
    );
    assert!(
        nineten(&["key", "new", "--out", path(&nk), "--kind", "node"])
            .status
            .success()
    );
    let node_key = stdout(&nineten(&["key", "show", path(&nk)]))
        .lines()
        .find_map(|l| l.strip_prefix("public key: ").map(str::to_string))
        .unwrap();
    let mut lines = Vec::new();
    for seq in 0..3 {
        let o = nineten(&[
            "receipt",
            "sign",
            "--key",
            path(&lk),
            "--seq",
            &seq.to_string(),
            "--track",
            &"ab".repeat(32),
            "--artist",
            &"cd".repeat(32),
            "--started-at-ms",
            &(1_790_812_800_000u64 + seq * 600_000).to_string(),
            "--listened-ms",
            "180000",
            "--track-ms",
            "200000",
            "--home-node",
            &node_key,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        lines.push(stdout(&o).trim().to_string());
    }
    let file = dir.path().join("r.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let o = nineten(&["receipt", "verify", path(&file)]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("3 receipts, 3 good, 0 bad"));

    // Line 2: listened_ms changed after signing. Line 3: seq is not a number.
    lines[1] = lines[1].replace("\"listened_ms\":180000", "\"listened_ms\":190000");
    lines[2] = lines[2].replace("\"seq\":2", "\"seq\":\"2\"");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let o = nineten(&["receipt", "verify", path(&file)]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("r.jsonl:2: signature does not verify"),
        "{out}"
    );
    assert!(out.contains("r.jsonl:3: field `seq`"), "{out}");
    assert!(out.contains("3 receipts, 1 good, 2 bad"), "{out}");

    // A subscription signed by the node verifies in a tally.
    let listener = stdout(&nineten(&["key", "show", path(&lk), "--month", "2026-10"]))
        .lines()
        .find_map(|l| {
            l.strip_prefix("month key for 2026-10: ")
                .map(str::to_string)
        })
        .unwrap();
    let o = nineten(&[
        "subscription",
        "sign",
        "--key",
        path(&nk),
        "--listener",
        &listener,
        "--month",
        "2026-10",
        "--payment-ref",
        "tx-1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(dir.path().join("subscriptions.jsonl"), stdout(&o)).unwrap();
    std::fs::write(&file, lines[0].clone() + "\n").unwrap();
    std::fs::write(dir.path().join("carry.json"), "{}").unwrap();
    let o = tally_json(dir.path(), &file);
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json["artists"]["cd".repeat(32)], 9_000_000);
    assert_eq!(json["operators"][&node_key], 1_000_000);
}

#[test]
fn tally_json_has_exactly_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    example(dir.path());
    let o = tally_json(dir.path(), &dir.path().join("receipts.jsonl"));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.trim().lines().count(), 1, "exactly one JSON object");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "month",
        "artists",
        "operators",
        "carry_out",
        "void",
        "digest",
    ];
    expected.sort();
    let mut keys = keys;
    keys.sort();
    assert_eq!(keys, expected);
    assert_eq!(json["month"], "2026-10");
    // The example plants one receipt of each void kind (two for equivocation).
    assert_eq!(
        json["void"],
        serde_json::json!({"signature": 1, "length": 1, "equivocation": 2, "overlap": 1})
    );
    // Six subscribers: 6 USDP to operators, 54 USDP of pools plus 1 USDP carried in.
    let sum = |v: &serde_json::Value| {
        v.as_object()
            .unwrap()
            .values()
            .map(|u| u.as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum(&json["operators"]), 6_000_000);
    assert_eq!(
        sum(&json["artists"]) + sum(&json["carry_out"]),
        54_000_000 + 1_000_000 + 2_500_000
    );
    assert_eq!(json["digest"].as_str().unwrap().len(), 64);

    // The same month, written again, gives the same digest.
    example(dir.path());
    let again = tally_json(dir.path(), &dir.path().join("receipts.jsonl"));
    assert_eq!(stdout(&again), out);

    // The readable form shows the totals.
    let o = nineten(&[
        "tally",
        "--month",
        "2026-10",
        "--receipts",
        path(&dir.path().join("receipts.jsonl")),
        "--subscriptions",
        path(&dir.path().join("subscriptions.jsonl")),
    ]);
    assert!(stdout(&o).contains("TOTAL"), "{}", stdout(&o));
    assert!(stdout(&o).contains("100.00%"));
}

#[test]
fn malformed_input_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    example(dir.path());
    let receipts = std::fs::read_to_string(dir.path().join("receipts.jsonl")).unwrap();
    let mut lines: Vec<String> = receipts.lines().map(str::to_string).collect();
    lines[4] = lines[4].replacen("\"track_ms\":", "\"track_ms\":-", 1);
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let o = tally_json(dir.path(), &bad);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("bad.jsonl:5: field `track_ms`"), "{err}");
    assert!(stdout(&o).is_empty());

    std::fs::write(dir.path().join("carry.json"), "{\"zz\": 1}").unwrap();
    let o = tally_json(dir.path(), &dir.path().join("receipts.jsonl"));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("carry.json: field `zz`"),
        "{}",
        stderr(&o)
    );

    let o = nineten(&[
        "tally",
        "--month",
        "2026-13",
        "--receipts",
        "x",
        "--subscriptions",
        "y",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("2026-13"), "{}", stderr(&o));
}

/// Each home node's month of the example is written as reviewed; `month audit` verifies it,
/// its `tally.json` is what `9ten tally` computes from the same files, and an export in which
/// one number was changed, or the external attestation is dropped, is not verified (exit 1,
/// the failing checks named).
#[test]
fn the_example_months_pass_the_audit_and_a_tampered_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    example(dir.path());
    let months: Vec<_> = std::fs::read_dir(dir.path().join("months"))
        .unwrap()
        .map(|e| e.unwrap().path().join("2026-10"))
        .collect();
    assert_eq!(months.len(), 2, "one folder per home node");
    for m in &months {
        let o = nineten(&["month", "audit", path(m), "--json"]);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(report["verified"], true);
        assert_eq!(report["checks"].as_array().unwrap().len(), 13);
        let o = tally_json(m, &m.join("receipts.jsonl"));
        assert!(o.status.success(), "{}", stderr(&o));
        let written = std::fs::read_to_string(m.join("tally.json")).unwrap();
        assert_eq!(stdout(&o).trim(), written.trim());
    }

    // One receipt claims a second more listening.
    let m = &months[0];
    let receipts = std::fs::read_to_string(m.join("receipts.jsonl")).unwrap();
    let first = receipts.lines().next().unwrap();
    let listened: u64 = serde_json::from_str::<serde_json::Value>(first).unwrap()["listened_ms"]
        .as_u64()
        .unwrap();
    let changed = first.replace(
        &format!("\"listened_ms\":{listened}"),
        &format!("\"listened_ms\":{}", listened + 1000),
    );
    std::fs::write(
        m.join("receipts.jsonl"),
        receipts.replacen(first, &changed, 1),
    )
    .unwrap();
    let o = nineten(&["month", "audit", path(m)]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("FAIL  receipts"), "{out}");
    assert!(out.contains("NOT verified"), "{out}");
    std::fs::write(m.join("receipts.jsonl"), receipts).unwrap();

    // Without the external node's attestation.
    let attestations = std::fs::read_to_string(m.join("attestations.jsonl")).unwrap();
    let kept: String = attestations
        .lines()
        .filter(|l| !l.contains("\"role\":\"external\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(m.join("attestations.jsonl"), kept).unwrap();
    let o = nineten(&["month", "audit", path(m)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("FAIL  external attestation"),
        "{}",
        stdout(&o)
    );

    // A missing file is an error that names it.
    std::fs::remove_file(m.join("bundles.jsonl")).unwrap();
    let o = nineten(&["month", "audit", path(m)]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("bundles.jsonl"), "{}", stderr(&o));
}
