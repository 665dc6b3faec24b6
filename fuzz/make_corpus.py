#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/ (docs/fuzzing.md).

Records come from the committed test vectors (protocol/vectors/vectors.json, signed by the
project's independent Python implementation, whose bytes the Rust tests check); release
manifests are built here in the binary form of docs/records.md and signed with that same
implementation's Ed25519; audio files are made by ffmpeg; BLAKE3 comes from b3sum. The corpus
is committed: run this only to change the seeds.

    apt-get install -y ffmpeg b3sum && python3 fuzz/make_corpus.py
"""
import hashlib
import importlib.util
import json
import pathlib
import shutil
import struct
import subprocess
import tempfile

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
CORPUS = FUZZ / "corpus"

spec = importlib.util.spec_from_file_location("vectors", ROOT / "protocol/vectors/generate.py")
vectors = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vectors)
VECTORS = json.loads((ROOT / "protocol/vectors/vectors.json").read_text())


def blake3(data):
    out = subprocess.run(["b3sum", "--no-names", "-"], input=data, capture_output=True, check=True)
    return bytes.fromhex(out.stdout.decode().strip())


def u(n, size):
    return n.to_bytes(size, "big")


def seeds(target, items):
    """Writes `items` (name -> bytes or str) as the seeds of `target`."""
    folder = CORPUS / target
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, data in items.items():
        (folder / name).write_bytes(data.encode() if isinstance(data, str) else data)


# --- records ---------------------------------------------------------------------------------
def record_bytes(vector):
    return bytes.fromhex(vector["message"]) + bytes.fromhex(json.loads(vector["json"])["sig"])


receipts = [record_bytes(v) for v in VECTORS["receipts"]]
subscriptions = [record_bytes(v) for v in VECTORS["subscriptions"]]
receipt_lines = [v["json"] for v in VECTORS["receipts"]]
subscription_lines = [v["json"] for v in VECTORS["subscriptions"]]

# review.md's records: the first byte picks the record ((pick >> 1) % 6: node, daily, bundle,
# attestation, dispute, verdict) and the form (pick & 1: JSON, else binary).
REVIEW = VECTORS["review"]
review_records = {}
for kind, cases in enumerate([REVIEW["nodes"], [REVIEW["daily"]], [REVIEW["bundle"]],
                              [REVIEW["attestation"]], [REVIEW["dispute"]], [REVIEW["verdict"]]]):
    for i, case in enumerate(cases):
        review_records[f"kind{kind}-{i}.bin"] = bytes([kind << 1]) + record_bytes(case)
        review_records[f"kind{kind}-{i}.json"] = bytes([kind << 1 | 1]) + case["json"].encode()

ARTIST_SEED = vectors.seed_of("artist")
ARTIST = vectors.public_key(ARTIST_SEED)


def text(s):
    b = s.encode()
    return u(len(b), 2) + b


def manifest(artist_name, title, tracks):
    """A signed manifest: (binary form, JSON form). `tracks` holds dicts of Track's fields."""
    m = b"9ten/release/v1\x00" + ARTIST + text(artist_name) + text(title)
    m += u(1_790_812_800_000, 8) + u(len(tracks), 2)
    for t in tracks:
        m += u(t["number"], 2) + text(t["title"]) + t["hash"] + u(t["size"], 8)
        m += u(t["duration_ms"], 4) + u(t["channels"], 1) + u(t["input_sample_rate"], 4)
        m += u(t["bitrate"], 4) + t["index"]
    sig = vectors.sign(ARTIST_SEED, m)
    as_json = {"v": 1, "artist": ARTIST.hex(), "artist_name": artist_name, "title": title,
               "published_at_ms": 1_790_812_800_000,
               "tracks": [dict(t, hash=t["hash"].hex(), index=t["index"].hex()) for t in tracks],
               "sig": sig.hex()}
    return m + sig, json.dumps(as_json, indent=2, ensure_ascii=False)


def track(number, title, stream=b"", index=b""):
    return {"number": number, "title": title, "hash": blake3(stream), "size": len(stream),
            "duration_ms": 187_000, "channels": 2, "input_sample_rate": 44_100,
            "bitrate": 128_000, "index": blake3(index)}


# --- audio -----------------------------------------------------------------------------------
def ffmpeg(args, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / f"out.{suffix}"
        subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(out)], check=True)
        return out.read_bytes()


def tone(seconds, rate, channels):
    return ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}:duration={seconds}",
            "-ac", str(channels)]


def ogg_pages(stream):
    """(offset, granule) of every page."""
    pages, at = [], 0
    while at < len(stream):
        assert stream[at:at + 4] == b"OggS"
        granule = struct.unpack_from("<q", stream, at + 6)[0]
        count = stream[at + 26]
        size = 27 + count + sum(stream[at + 27:at + 27 + count])
        pages.append((at, granule))
        at += size
    return pages


def seek_index(stream):
    """9ten's seek index of an Ogg Opus stream: an entry per audio page, at its first sample."""
    pre_skip = struct.unpack_from("<H", stream, ogg_pages(stream)[0][0] + 28 + 10)[0]
    audio = ogg_pages(stream)[2:]
    entries, start = [], 0
    for offset, granule in audio:
        entries.append((start, offset))
        start = granule
    out = b"9ten/seek/v1\x00" + u(pre_skip, 2) + u(audio[-1][1], 8) + u(len(entries), 4)
    return out + b"".join(u(g, 8) + u(o, 8) for g, o in entries)


opus_mono = ffmpeg([*tone(0.3, 48000, 1), "-c:a", "libopus", "-b:a", "16k",
                    "-page_duration", "100000"], "opus")
opus_stereo = ffmpeg([*tone(0.2, 44100, 2), "-c:a", "libopus", "-b:a", "24k"], "opus")
vorbis = ffmpeg([*tone(0.1, 8000, 1), "-c:a", "libvorbis", "-q:a", "0"], "ogg")
wav_s16 = ffmpeg([*tone(0.02, 8000, 1), "-c:a", "pcm_s16le"], "wav")
wav_f32 = ffmpeg([*tone(0.01, 8000, 2), "-c:a", "pcm_f32le"], "wav")
flac = ffmpeg([*tone(0.05, 8000, 1), "-c:a", "flac"], "flac")
mp3 = ffmpeg([*tone(0.05, 8000, 1), "-c:a", "libmp3lame", "-b:a", "8k"], "mp3")


# --- CBOR, as libp2p's codec (cbor4ii's serde) writes it ---------------------------------------
def cbor_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | extra]) + n.to_bytes(size, "big")
    raise ValueError(n)


def cbor(value):
    if value is None:
        return b"\xf6"
    if isinstance(value, int):
        return cbor_head(0, value)
    if isinstance(value, bytes):
        return cbor_head(2, len(value)) + value
    if isinstance(value, str):
        return cbor_head(3, len(value.encode())) + value.encode()
    if isinstance(value, list):
        return cbor_head(4, len(value)) + b"".join(cbor(v) for v in value)
    return cbor_head(5, len(value)) + b"".join(cbor(k) + cbor(v) for k, v in value.items())


# --- receipt sync: negentropy v1 frames (protocol byte 0x61) --------------------------------------
# The fuzz crate's `item_set()`: 600 items, timestamps T0 + n * 60,000 ms, ids BLAKE3 of n as four
# big-endian bytes. Frames built against it, with real fingerprints, make the node answer with
# deeper rounds (matching ranges skipped, differing ones split or listed), not only refusals.
T0 = 1_790_000_000_000
ITEMS = [(T0 + n * 60_000, blake3(u(n, 4))) for n in range(600)]
SYNC_MONTH = "2026-09"  # T0 is in September 2026


def varint(n):
    """Negentropy's varint: big-endian base-128, high bit set on every byte but the last."""
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
    """One message: ranges in order, each upper bound delta-encoded from the previous one."""

    def __init__(self):
        self.out = bytearray([0x61])
        self.last = 0

    def _bound(self, timestamp, prefix):
        if timestamp is None:  # infinity
            self.out += varint(0)
        else:
            self.out += varint(timestamp - self.last + 1)
            self.last = timestamp
        self.out += varint(len(prefix)) + prefix

    def skip(self, upper, prefix=b""):
        self._bound(upper, prefix)
        self.out += varint(0)
        return self

    def fingerprint(self, upper, items, prefix=b""):
        self._bound(upper, prefix)
        self.out += varint(1) + fingerprint(items)
        return self

    def ids(self, upper, ids, prefix=b""):
        self._bound(upper, prefix)
        self.out += varint(2) + varint(len(ids)) + b"".join(ids)
        return self


def sync_frames():
    half = len(ITEMS) // 2
    many = Frame()
    for k in range(0, len(ITEMS), 50):
        t, i = ITEMS[min(k + 50, len(ITEMS) - 1)]
        many.fingerprint(t, ITEMS[k:k + 50], prefix=i[:4])
    return {
        # What `initiate` sends: one fingerprint over everything.
        "whole": Frame().fingerprint(None, ITEMS),
        # The set but one item: the range differs.
        "one_missing": Frame().fingerprint(None, ITEMS[1:]),
        # Two halves, the first equal: one skipped, the other split.
        "halves": Frame().fingerprint(ITEMS[half][0], ITEMS[:half])
        .fingerprint(None, ITEMS[half + 1:]),
        # Ids listed outright, one the set lacks.
        "ids": Frame().ids(ITEMS[half][0], [i for _, i in ITEMS[:20]] + [blake3(b"not in it")])
        .skip(None),
        # Twelve ranges, bounds with id prefixes.
        "many": many.skip(None),
        # Nothing on the other side.
        "empty": Frame().ids(None, []),
    }


# --- subscribe: the fuzz target's home node (seed 9 * 32) and asking listener (seed 5 * 32) ----
def subscribe_seeds():
    """A request as a listener signs it, and each kind of answer; the first byte picks which."""
    home_seed, listener_seed = bytes([9]) * 32, bytes([5]) * 32
    home, listener = vectors.public_key(home_seed), vectors.public_key(listener_seed)
    month, ref = struct.pack(">HB", 2026, 10), b"tx"
    proof = vectors.sign(listener_seed, b"9ten/subscribe-request/v1\0" + home + listener + month + ref)
    request = {"listener": listener.hex(), "month": "2026-10", "payment_ref": ref.decode(),
               "proof": proof.hex()}
    subscription = (b"9ten/subscription/v1\0" + listener + month + home
                    + struct.pack(">QH", 10_000_000, len(ref)) + ref)
    signed = subscription + vectors.sign(home_seed, subscription)
    return {
        "request": b"\x00" + cbor(request),
        "subscribed": b"\x01" + cbor({"Subscribed": signed}),
        "pending": b"\x01" + cbor("Pending"),
        "rejected": b"\x01" + cbor({"Rejected": "payment not found"}),
        "refused": b"\x01" + cbor("Refused"),
    }


def main():
    seeds("receipt_bin", {f"receipt{i}": r for i, r in enumerate(receipts)})
    seeds("receipt_json", {f"receipt{i}.json": r for i, r in enumerate(receipt_lines)})
    seeds("subscription_bin", {f"subscription{i}": s for i, s in enumerate(subscriptions)})
    seeds("subscription_json",
          {f"subscription{i}.json": s for i, s in enumerate(subscription_lines)})
    seeds("review_records", review_records)

    one_bin, one_json = manifest("Nó Signal", "Loopback", [track(1, "Hello")])
    two_bin, two_json = manifest("A", "Two", [track(1, "Wörld"), track(3, "")])
    seeds("manifest_bin", {"one_track": one_bin, "two_tracks": two_bin})
    seeds("manifest_json", {"one_track.json": one_json, "two_tracks.json": two_json})

    listener = json.loads(receipt_lines[0])["listener"]
    seeds("jsonl", {
        "receipts.jsonl": "\n".join(receipt_lines[:2]) + "\n\n" + receipt_lines[2] + "\n",
        "subscriptions.jsonl": "\n".join(subscription_lines) + "\n",
        "carry.json": json.dumps({listener: 5, "ab" * 32: 18446744073709551615}),
    })
    seeds("keys", {
        **{f"{kind}.key": json.dumps({"v": 1, "kind": kind, "secret": vectors.seed_of(kind).hex()},
                                     separators=(",", ":")) + "\n"
           for kind in ("node", "artist", "listener")},
        "public_key": ARTIST.hex(),
        "signature": json.loads(receipt_lines[0])["sig"],
    })
    seeds("month", {"2026-10": "2026-10", "1970-01": "1970-01", "9999-12": "9999-12",
                    "ms_2026_10": u(1_790_812_800_000, 8)})

    seeds("seek_index", {"mono": seek_index(opus_mono), "stereo": seek_index(opus_stereo)})
    seeds("ogg_read", {"mono.opus": opus_mono, "stereo.opus": opus_stereo, "vorbis.ogg": vorbis})
    seeds("ogg_roundtrip", {
        "three_packets": bytes([0, 0x38, 0x01, 0x80, 0xbb, 0, 0, 40]) + bytes([200, 0, 1] * 3),
        "lacing_edges": bytes([1, 0x38, 0x01, 0x44, 0xac, 0, 0, 0])
        + b"".join(u(n, 2)[::-1] + b"\x07" for n in (254, 255, 509, 510, 1275)),
        "two_pages": bytes([1, 0, 0, 0, 0, 0, 0, 255]) + bytes([9, 0, 2] * 60),
    })
    # The first byte picks the extension in import::EXTENSIONS: wav, flac, mp3, ogg, oga.
    seeds("decode", {"s16.wav": b"\x00" + wav_s16, "f32.wav": b"\x00" + wav_f32,
                     "mono.flac": b"\x01" + flac, "mono.mp3": b"\x02" + mp3,
                     "vorbis.ogg": b"\x03" + vorbis})

    index = seek_index(opus_mono)
    upload_bin, _ = manifest("A", "Upload", [track(1, "Tone", opus_mono, index)])
    upload = u(len(upload_bin), 4) + upload_bin
    upload += u(len(opus_mono), 8) + opus_mono + u(len(index), 8) + index
    seeds("control_upload", {"one_track": upload})
    seeds("control_json", {
        "play_null.json": '{"track":"ab12","from_ms":1500,"sink":"null"}',
        "play_wav.json": '{"track":"ab12","sink":{"wav":"/tmp/out.wav"}}',
        "play_clocked.json": '{"track":"ab12","from_ms":0,"sink":{"clocked":{"speed":20}}}',
        "control_file.json": '{"addr":"127.0.0.1:4711","token":"' + "0f" * 32 + '"}',
    })

    frames = {name: bytes(f.out) for name, f in sync_frames().items()}
    seeds("sync_request", {
        **{f"reconcile_{name}": cbor({"Reconcile": {"month": SYNC_MONTH, "frame": frame}})
           for name, frame in frames.items()},
        "reconcile_bad_month": cbor({"Reconcile": {"month": "2026-13", "frame": frames["whole"]}}),
        "fetch": cbor({"Fetch": b"".join(i for _, i in ITEMS[:8])}),
    })
    seeds("sync_response", {
        **{f"reconcile_{name}": cbor({"Reconcile": frame}) for name, frame in frames.items()},
        "receipts": cbor({"Receipts": b"".join(receipts[:4])}),
        "refused": cbor("Refused"),
    })
    seeds("gossip", {"manifest": b"\x00" + one_bin, "receipt": b"\x01" + receipts[0]})
    seeds("subscribe", subscribe_seeds())


if __name__ == "__main__":
    main()
