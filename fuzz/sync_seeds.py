#!/usr/bin/env python3
"""Writes seeds for the receipt-sync fuzz targets (`sync_request`, `sync_response`) in the
protocol the node speaks: `/9ten/receipt-sync/2.0.0`, CBOR (serde's externally tagged enums)
carrying negentropy v1 frames (protocol byte 0x61).

The frames are built against the fuzz targets' own item set (`nineten_fuzz::item_set`: 600
items, timestamps 1,790,000,000,000 + n * 60,000 ms, ids BLAKE3 of n as four big-endian bytes),
with real fingerprints, so that fuzzing starts from frames the node answers with deeper
rounds (matching ranges are skipped, differing ones split or listed), not only from frames it
refuses. Standard library only; BLAKE3 comes from protocol/vectors/generate.py.

    python3 fuzz/sync_seeds.py      # (re)writes fuzz/corpus/sync_{request,response}/v2-*
"""
import hashlib
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "protocol" / "vectors"))
from generate import blake3  # noqa: E402

SET_SIZE = 600
T0 = 1_790_000_000_000
ITEMS = sorted((T0 + n * 60_000, blake3(n.to_bytes(4, "big"))) for n in range(SET_SIZE))
MONTH = "2026-09"  # 1,790,000,000,000 ms is in September 2026


# --- negentropy v1 encoding ------------------------------------------------------------------
def varint(n):
    """Big-endian base-128, high bit set on every byte but the last."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def fingerprint(items):
    total = sum(int.from_bytes(i, "little") for _, i in items) % 2**256
    return hashlib.sha256(total.to_bytes(32, "little") + varint(len(items))).digest()[:16]


class Frame:
    """One message: ranges in order, each bound delta-encoded from the previous one."""

    def __init__(self):
        self.out = bytearray([0x61])
        self.last = 0

    def bound(self, timestamp, prefix=b""):
        if timestamp is None:  # infinity
            self.out += varint(0)
        else:
            self.out += varint(timestamp - self.last + 1)
            self.last = timestamp
        self.out += varint(len(prefix)) + prefix

    def skip(self, upper, prefix=b""):
        self.bound(upper, prefix)
        self.out += varint(0)

    def fingerprint(self, upper, items, prefix=b""):
        self.bound(upper, prefix)
        self.out += varint(1) + fingerprint(items)

    def ids(self, upper, ids, prefix=b""):
        self.bound(upper, prefix)
        self.out += varint(2) + varint(len(ids)) + b"".join(ids)

    def bytes(self):
        return bytes(self.out)


# --- CBOR, as much as serde needs here -------------------------------------------------------
def head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for size, code in ((1, 24), (2, 25), (4, 26), (8, 27)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | code]) + n.to_bytes(size, "big")
    raise ValueError(n)


def text(s):
    b = s.encode()
    return head(3, len(b)) + b


def byte_string(b):
    return head(2, len(b)) + b


def variant(name, payload):
    return head(5, 1) + text(name) + payload


def reconcile_request(month, frame):
    body = head(5, 2) + text("month") + text(month) + text("frame") + byte_string(frame)
    return variant("Reconcile", body)


# --- frames ----------------------------------------------------------------------------------
def frames():
    half = SET_SIZE // 2
    mid = ITEMS[half][0]
    out = {}
    # An opening frame: one fingerprint over everything (what `initiate` sends).
    f = Frame()
    f.fingerprint(None, ITEMS)
    out["whole"] = f.bytes()
    # The same set but one item: every range differs.
    f = Frame()
    f.fingerprint(None, ITEMS[1:])
    out["one_missing"] = f.bytes()
    # Two halves, the first equal, the second not: the node skips one and splits the other.
    f = Frame()
    f.fingerprint(mid, ITEMS[:half])
    f.fingerprint(None, ITEMS[half + 1 :])
    out["halves"] = f.bytes()
    # Ids listed outright, some the set has and some it lacks.
    f = Frame()
    f.ids(mid, [i for _, i in ITEMS[:20]] + [blake3(b"not in the set")])
    f.skip(None)
    out["ids"] = f.bytes()
    # Many small ranges, bounds with id prefixes between items of one timestamp.
    f = Frame()
    for k in range(0, SET_SIZE, 50):
        t, i = ITEMS[min(k + 50, SET_SIZE - 1)]
        f.fingerprint(t, ITEMS[k : k + 50], prefix=i[:4])
    f.skip(None)
    out["many"] = f.bytes()
    # An empty range list: the peer has nothing.
    f = Frame()
    f.ids(None, [])
    out["empty"] = f.bytes()
    return out


def main():
    request_dir = HERE / "corpus" / "sync_request"
    response_dir = HERE / "corpus" / "sync_response"
    for d in (request_dir, response_dir):
        for old in d.glob("v2-*"):
            old.unlink()
    for name, frame in frames().items():
        (request_dir / f"v2-reconcile-{name}").write_bytes(reconcile_request(MONTH, frame))
        (response_dir / f"v2-reconcile-{name}").write_bytes(
            variant("Reconcile", byte_string(frame))
        )
    (request_dir / "v2-reconcile-bad-month").write_bytes(
        reconcile_request("2026-13", frames()["whole"])
    )
    ids = b"".join(i for _, i in ITEMS[:8])
    (request_dir / "v2-fetch").write_bytes(variant("Fetch", byte_string(ids)))
    (response_dir / "v2-refused").write_bytes(text("Refused"))
    # Receipts as the node sends them: the binary forms of the test vectors, concatenated.
    import json

    vectors = json.loads((HERE.parent / "protocol" / "vectors" / "vectors.json").read_text())
    # The binary form: the signed message, then the signature (`SignedReceipt::to_bytes`).
    binaries = [
        bytes.fromhex(v["message"]) + bytes.fromhex(json.loads(v["json"])["sig"])
        if isinstance(v["json"], str)
        else bytes.fromhex(v["message"]) + bytes.fromhex(v["json"]["sig"])
        for v in vectors["receipts"]
    ]
    if binaries:
        (response_dir / "v2-receipts").write_bytes(
            variant("Receipts", byte_string(b"".join(binaries[:4])))
        )
    print(f"seeds written to {request_dir} and {response_dir}")


if __name__ == "__main__":
    main()
