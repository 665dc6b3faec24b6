#!/usr/bin/env python3
"""Writes 9ten's test vectors from an independent implementation of the spec.

This is a second implementation, in plain Python (standard library only), of the signed
messages of records.md and review.md, the listener month keys, the signature rule (ZIP-215
plus the small-order key check), settlement, roots, the directory and the choice of
reviewers. It writes the JSON files beside it; the Rust tests check that the
Rust implementation produces and judges every vector exactly as this one does.

    python3 protocol/vectors/generate.py          # rewrite the vectors
    python3 protocol/vectors/generate.py --check  # fail if the committed vectors differ
"""
import calendar
import hashlib
import hmac
import json
import pathlib
import sys

# --- Ed25519 arithmetic (RFC 8032 section 5.1, extended coordinates) -------------------------
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def inv(x):
    return pow(x, P - 2, P)


def add(p1, p2):
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * t1 * t2 * D % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def mul(s, pt):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = add(q, pt)
        pt = add(pt, pt)
        s >>= 1
    return q


def is_identity(pt):
    x, y, z, _ = pt
    return x % P == 0 and (y - z) % P == 0


def encode(pt):
    x, y, z, _ = pt
    zi = inv(z)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def decode(b):
    """Decodes like curve25519-dalek (ZIP-215): y may be non-canonical (>= p), x may be -0."""
    n = int.from_bytes(b, "little")
    sign, y = n >> 255, (n & ((1 << 255) - 1)) % P
    x2 = (y * y - 1) * inv(D * y * y + 1) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = (P - x) % P
    return (x, y, 1, x * y % P)


BASE = decode((4 * inv(5) % P).to_bytes(32, "little"))


def sha512_int(*parts):
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little")


def secret_scalar(seed):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]


def public_key(seed):
    return encode(mul(secret_scalar(seed)[0], BASE))


def sign(seed, msg):
    a, prefix = secret_scalar(seed)
    big_a = encode(mul(a, BASE))
    r = sha512_int(prefix, msg) % L
    big_r = encode(mul(r, BASE))
    k = sha512_int(big_r, big_a, msg) % L
    return big_r + ((r + k * a) % L).to_bytes(32, "little")


def verify(key, msg, sig, refuse_small_order=True):
    """The 9ten rule: ZIP-215, and keys of small order are refused."""
    big_a, big_r = decode(key), decode(sig[:32])
    s = int.from_bytes(sig[32:], "little")
    if big_a is None or big_r is None or s >= L:
        return False
    if refuse_small_order and is_identity(mul(8, big_a)):
        return False
    k = sha512_int(sig[:32], key, msg) % L
    neg = lambda pt: ((P - pt[0]) % P, pt[1], pt[2], (P - pt[3]) % P)
    check = add(add(mul(s, BASE), neg(mul(k, big_a))), neg(big_r))
    return is_identity(mul(8, check))


def verify_cofactorless(key, msg, sig):
    """Plain RFC 8032 [S]B = R + [k]A, to show which vectors separate the two rules."""
    big_a, big_r = decode(key), decode(sig[:32])
    s = int.from_bytes(sig[32:], "little")
    if big_a is None or big_r is None or s >= L:
        return False
    k = sha512_int(sig[:32], key, msg) % L
    return encode(mul(s, BASE)) == encode(add(big_r, mul(k, big_a)))


def torsion_of_order_8():
    for y in range(2, 1000):
        pt = decode(y.to_bytes(32, "little"))
        if pt is None:
            continue
        t = mul(L, pt)
        if not is_identity(mul(4, t)):
            return t
    raise RuntimeError("no point of order 8 found")


# --- BLAKE3 (the BLAKE3 paper, hash mode only) --------------------------------------------------
B3_IV = [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB,
         0x5BE0CD19]
B3_PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8]
CHUNK_START, CHUNK_END, PARENT, ROOT = 1, 2, 4, 8
M32 = 0xFFFFFFFF


def b3_compress(cv, block, counter, block_len, flags):
    """The compression function: 16 output words."""
    m = [int.from_bytes(block[4 * i:4 * i + 4], "little") for i in range(16)]
    s = list(cv) + B3_IV[:4] + [counter & M32, counter >> 32, block_len, flags]

    def g(a, b, c, d, x, y):
        s[a] = (s[a] + s[b] + x) & M32
        s[d] = ((s[d] ^ s[a]) >> 16 | (s[d] ^ s[a]) << 16) & M32
        s[c] = (s[c] + s[d]) & M32
        s[b] = ((s[b] ^ s[c]) >> 12 | (s[b] ^ s[c]) << 20) & M32
        s[a] = (s[a] + s[b] + y) & M32
        s[d] = ((s[d] ^ s[a]) >> 8 | (s[d] ^ s[a]) << 24) & M32
        s[c] = (s[c] + s[d]) & M32
        s[b] = ((s[b] ^ s[c]) >> 7 | (s[b] ^ s[c]) << 25) & M32

    for round_ in range(7):
        g(0, 4, 8, 12, m[0], m[1])
        g(1, 5, 9, 13, m[2], m[3])
        g(2, 6, 10, 14, m[4], m[5])
        g(3, 7, 11, 15, m[6], m[7])
        g(0, 5, 10, 15, m[8], m[9])
        g(1, 6, 11, 12, m[10], m[11])
        g(2, 7, 8, 13, m[12], m[13])
        g(3, 4, 9, 14, m[14], m[15])
        if round_ < 6:
            m = [m[i] for i in B3_PERMUTATION]
    return [s[i] ^ s[i + 8] for i in range(8)] + [s[i + 8] ^ cv[i] for i in range(8)]


def b3_chunk(chunk, counter):
    """A chunk's last compression, not yet run: (cv, block, counter, block_len, flags)."""
    blocks = [chunk[i:i + 64] for i in range(0, len(chunk), 64)] or [b""]
    cv = B3_IV
    for i, block in enumerate(blocks):
        flags = (CHUNK_START if i == 0 else 0) | (CHUNK_END if i == len(blocks) - 1 else 0)
        node = (cv, block.ljust(64, b"\0"), counter, len(block), flags)
        if i == len(blocks) - 1:
            return node
        cv = b3_compress(*node)[:8]


def b3_tree(chunks, first):
    """The node over `chunks` (numbered from `first`), not yet run."""
    if len(chunks) == 1:
        return b3_chunk(chunks[0], first)
    left = 1 << ((len(chunks) - 1).bit_length() - 1)  # largest power of two below the count
    cvs = [b3_compress(*b3_tree(part, start))[:8]
           for part, start in ((chunks[:left], first), (chunks[left:], first + left))]
    block = b"".join(w.to_bytes(4, "little") for w in cvs[0] + cvs[1])
    return (B3_IV, block, 0, 64, PARENT)


def blake3(data):
    """BLAKE3 with the default 32-byte output."""
    chunks = [data[i:i + 1024] for i in range(0, len(data), 1024)] or [b""]
    cv, block, counter, block_len, flags = b3_tree(chunks, 0)
    out = b3_compress(cv, block, counter, block_len, flags | ROOT)[:8]
    return b"".join(w.to_bytes(4, "little") for w in out)


assert blake3(b"").hex() == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


# --- Records (records.md) ---------------------------------------------------------------------
def u(n, size):
    return n.to_bytes(size, "big")


def receipt_message(r):
    return (b"9ten/receipt/v1\x00" + bytes.fromhex(r["listener"]) + u(r["seq"], 8)
            + bytes.fromhex(r["track"]) + bytes.fromhex(r["artist"]) + u(r["started_at_ms"], 8)
            + u(r["listened_ms"], 4) + u(r["track_ms"], 4) + bytes.fromhex(r["home_node"]))


def subscription_message(s):
    year, month = (int(x) for x in s["month"].split("-"))
    ref = s["payment_ref"].encode()
    return (b"9ten/subscription/v1\x00" + bytes.fromhex(s["listener"]) + u(year, 2) + u(month, 1)
            + bytes.fromhex(s["home_node"]) + u(s["amount"], 8) + u(len(ref), 2) + ref)


def month_seed(secret, year, month):
    """HKDF-SHA256 (RFC 5869) with salt "9ten", info "9ten/listener-month/v1" || year || month."""
    prk = hmac.new(b"9ten", secret, hashlib.sha256).digest()
    info = b"9ten/listener-month/v1" + u(year, 2) + u(month, 1)
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


# --- Settlement (settlement.md) ---------------------------------------------------------------
def month_bounds(year, month):
    """First millisecond of the month and of the next one, UTC."""
    nxt = (year + 1, 1) if month == 12 else (year, month + 1)
    return tuple(calendar.timegm((y, m, 1, 0, 0, 0)) * 1000 for y, m in [(year, month), nxt])


def verify_receipt(r):
    return verify(bytes.fromhex(r["listener"]), receipt_message(r), bytes.fromhex(r["sig"]))


def verify_subscription(s):
    return verify(bytes.fromhex(s["home_node"]), subscription_message(s), bytes.fromhex(s["sig"]))


def one_per_message(records, message, verifies):
    """records.md: records with the same signed message are one record, valid when at least one
    of its signatures verifies. Gives (record, valid) per distinct message."""
    out = {}
    for rec in records:
        msg = message(rec)
        first, valid = out.get(msg, (rec, False))
        out[msg] = (first, valid or verifies(rec))
    return list(out.values())


def settle(month, receipts, subscriptions, carry_in):
    """settlement.md, from scratch: gives the tally's lists, void counts, flags and the number
    of distinct receipts of the month."""
    year, mon = (int(x) for x in month.split("-"))
    start, end = month_bounds(year, mon)
    of_month = [r for r in receipts if start <= r["started_at_ms"] < end]
    records = one_per_message(of_month, receipt_message, verify_receipt)
    void = {"signature": 0, "length": 0, "equivocation": 0, "overlap": 0}
    flags, tops = [], {}
    for listener in {r["listener"] for r, _ in records}:
        standing = []
        for r, valid in records:
            if r["listener"] != listener:
                continue
            if not valid:
                void["signature"] += 1
            elif r["track_ms"] == 0 or r["listened_ms"] > r["track_ms"] + 2000:
                void["length"] += 1
            else:
                standing.append(r)
        kept = []
        for seq in {r["seq"] for r in standing}:
            same = [r for r in standing if r["seq"] == seq]
            if len(same) == 1:
                kept += same
            else:
                void["equivocation"] += len(same)
                flags.append({"kind": "equivocation", "listener": listener, "seq": seq,
                              "copies": len(same)})
        kept.sort(key=lambda r: (r["started_at_ms"], r["seq"]))
        last_end, plays = None, {}
        for r in kept:
            if last_end is not None and r["started_at_ms"] < last_end - 1000:
                void["overlap"] += 1
                flags.append({"kind": "overlap", "listener": listener, "seq": r["seq"]})
                continue
            last_end = r["started_at_ms"] + r["listened_ms"]
            if r["listened_ms"] >= min(30000, r["track_ms"] // 2):
                p = plays.setdefault(r["artist"], [0, 0])
                p[0] += 1
                p[1] += r["listened_ms"]
        ranked = sorted(plays.items(), key=lambda a: (-a[1][0], -a[1][1], bytes.fromhex(a[0])))
        tops[listener] = [(artist, p[0]) for artist, p in ranked[:9]]
    flags.sort(key=lambda f: (f["kind"] != "equivocation", bytes.fromhex(f["listener"]),
                              f["seq"], f.get("copies", 0)))

    counting = {}
    subs = [s for s in subscriptions if s["month"] == month]
    for s, valid in one_per_message(subs, subscription_message, verify_subscription):
        rank = (bytes.fromhex(s["home_node"]), s["payment_ref"].encode())
        if valid and (s["listener"] not in counting or rank < counting[s["listener"]]):
            counting[s["listener"]] = rank

    artists, operators, carry_out = {}, {}, {}
    for listener, (home, _) in counting.items():
        operators[hx(home)] = operators.get(hx(home), 0) + 1_000_000
        pool = 9_000_000 + carry_in.get(listener, 0)
        top = tops.get(listener, [])
        if not top:
            carry_out[listener] = pool
            continue
        w = sum(p for _, p in top)
        shares = [[artist, pool * p // w, pool * p % w] for artist, p in top]
        left = pool - sum(s[1] for s in shares)
        for i in sorted(range(len(shares)), key=lambda i: (-shares[i][2], i))[:left]:
            shares[i][1] += 1
        for artist, units, _ in shares:
            artists[artist] = artists.get(artist, 0) + units
        carry_out[listener] = 0
    for listener, units in carry_in.items():
        carry_out.setdefault(listener, units)

    canonical = b"9ten/tally/v1\x00" + u(year, 2) + u(mon, 1)
    for entries in (artists, operators, carry_out):
        canonical += u(len(entries), 4)
        for key in sorted(entries, key=bytes.fromhex):
            canonical += bytes.fromhex(key) + u(entries[key], 8)
    for rule in ("signature", "length", "equivocation", "overlap"):
        canonical += u(void[rule], 8)
    return {"distinct_receipts": len(records), "void": void, "flags": flags,
            "artists": dict(sorted(artists.items())), "operators": dict(sorted(operators.items())),
            "carry_out": dict(sorted(carry_out.items())), "canonical": hx(canonical),
            "digest": hx(blake3(canonical))}


def sign_with_nonce(seed, msg, label):
    """A second valid signature of msg: RFC 8032 with another nonce (as a randomised signer
    makes), here derived from label."""
    a, _ = secret_scalar(seed)
    r = sha512_int(label.encode(), msg) % L
    big_r = encode(mul(r, BASE))
    k = sha512_int(big_r, public_key(seed), msg) % L
    return big_r + ((r + k * a) % L).to_bytes(32, "little")


def broken(sig, how):
    """A copy whose signature fails: R changed, or S + l (not canonical)."""
    if how == "R":
        return bytes([sig[0] ^ 1]) + sig[1:]
    s = int.from_bytes(sig[32:], "little")
    return sig[:32] + (s + L).to_bytes(32, "little")


def settlement_cases():
    month = "2026-10"
    start, _ = month_bounds(2026, 10)
    node_seeds = [seed_of("home node"), seed_of("home node 2")]
    nodes = [hx(public_key(s)) for s in node_seeds]
    listener_seeds = [month_seed(seed_of(f"listener {i}"), 2026, 10) for i in range(3)]
    listeners = [hx(public_key(s)) for s in listener_seeds]
    artists = [hx(public_key(seed_of(f"artist {i}"))) for i in range(12)]

    def receipt(who, seq, artist, at_s, listened=180000, track_ms=180000, sig="honest"):
        """A copy of listener who's receipt; sig is honest, second, R or S (broken)."""
        r = {"v": 1, "listener": listeners[who], "seq": seq,
             "track": hx(hashlib.sha256(b"track of %d" % artist).digest()),
             "artist": artists[artist], "started_at_ms": start + at_s * 1000,
             "listened_ms": listened, "track_ms": track_ms, "home_node": nodes[0]}
        msg = receipt_message(r)
        good = sign(listener_seeds[who], msg)
        r["sig"] = hx({"honest": good, "second": sign_with_nonce(listener_seeds[who], msg, "2")}
                      .get(sig) or broken(good, sig))
        return r

    def subscription(who, node, ref, sig="honest"):
        s = {"v": 1, "listener": listeners[who], "month": month, "home_node": nodes[node],
             "amount": 10000000, "payment_ref": ref}
        msg = subscription_message(s)
        good = sign(node_seeds[node], msg)
        s["sig"] = hx({"honest": good, "second": sign_with_nonce(node_seeds[node], msg, "2")}
                      .get(sig) or broken(good, sig))
        return s

    sub0 = subscription(0, 0, "tx-0")
    cases = [
        ("two valid signatures of one message",
         "one receipt: no equivocation, one play (the pool splits evenly with the other listen)",
         [receipt(0, 1, 1, 0), receipt(0, 1, 1, 0, sig="second"), receipt(0, 2, 2, 600)],
         [sub0], {}),
        ("a good copy and a broken copy",
         "the receipt counts as its good copy: nothing void",
         [receipt(0, 1, 1, 0, sig="R"), receipt(0, 1, 1, 0), receipt(0, 2, 2, 600)],
         [sub0], {}),
        ("only broken copies",
         "one receipt, void once under signature",
         [receipt(0, 1, 1, 0, sig="R"), receipt(0, 1, 1, 0, sig="S"), receipt(0, 2, 2, 600)],
         [sub0], {}),
        ("different messages with the same seq",
         "equivocation: both messages void (2, though one has two copies), flagged once",
         [receipt(0, 5, 1, 0), receipt(0, 5, 2, 0), receipt(0, 5, 2, 0, sig="second"),
          receipt(0, 6, 3, 600)],
         [sub0], {}),
        ("copies of subscriptions",
         "listener 0: one subscription in three copies (two valid, one broken), counted once;"
         " listener 1: only broken copies, not subscribed",
         [receipt(0, 1, 1, 0), receipt(1, 1, 2, 0)],
         [sub0, subscription(0, 0, "tx-0", sig="second"), subscription(0, 0, "tx-0", sig="R"),
          subscription(1, 1, "tx-1", sig="R"), subscription(1, 1, "tx-1", sig="S")],
         {listeners[1]: 5}),
    ]
    # A fuller month: a top 9 out of 11 artists, every void rule, receipts outside the month,
    # two home nodes, carry in, a listener without a subscription, and a superseded one.
    month_receipts = [receipt(0, i, i % 11, 200 * i, listened=150000 + 1000 * (i % 4))
                      for i in range(14)]
    month_receipts += [
        receipt(0, 20, 0, -1),                              # before the month: ignored
        receipt(0, 21, 1, 31 * 86400),                      # next month: ignored
        receipt(1, 1, 0, 0), receipt(1, 2, 1, 100),        # seq 2 overlaps seq 1
        receipt(1, 3, 2, 400, listened=200001, track_ms=198000),  # too long
        receipt(1, 4, 3, 600, listened=29999, track_ms=600000),   # kept, not qualified
        receipt(1, 5, 4, 900, sig="S"),
        receipt(1, 6, 4, 1200), receipt(1, 6, 5, 1200),     # equivocation
        receipt(2, 1, 6, 0),                                # not subscribed
    ]
    cases.append((
        "a month", "every rule at once; checks the canonical tally encoding byte for byte",
        month_receipts,
        [sub0, subscription(0, 1, "tx-0"), subscription(1, 1, "tx-1")],
        {listeners[0]: 7, listeners[1]: 3, listeners[2]: 1000},
    ))

    out = []
    for name, why, receipts, subscriptions, carry_in in cases:
        line = lambda rec: json.dumps(rec, separators=(",", ":"), ensure_ascii=False)
        out.append({"name": name, "why": why, "month": month,
                    "receipts": [line(r) for r in receipts],
                    "receipt_ids": [hx(blake3(receipt_message(r))) for r in receipts],
                    "subscriptions": [line(s) for s in subscriptions],
                    "subscription_ids": [hx(blake3(subscription_message(s)))
                                         for s in subscriptions],
                    "carry_in": carry_in,
                    "expected": settle(month, receipts, subscriptions, carry_in)})
    return out


# --- Review (review.md) -----------------------------------------------------------------------
def root(ids):
    ids = sorted(set(ids))
    return blake3(u(len(ids), 4) + b"".join(ids))


def ym(text):
    year, month = (int(x) for x in text.split("-")[:2])
    return u(year, 2) + u(month, 1)


def node_message(n):
    name = n["name"].encode()
    return (b"9ten/node/v1\x00" + bytes.fromhex(n["node"]) + u(n["seq"], 8) + u(n["cluster"], 2)
            + ym(n["joined"]) + u(len(name), 2) + name)


def daily_message(d):
    day = int(d["day"].split("-")[2])
    return (b"9ten/daily/v1\x00" + bytes.fromhex(d["home"]) + ym(d["day"]) + u(day, 1)
            + u(d["count"], 4) + bytes.fromhex(d["receipts"]) + bytes.fromhex(d["artists"]))


def day_artists(receipts):
    """The daily report's artists field over these receipts (raw counts)."""
    figures = {}
    for r in receipts:
        f = figures.setdefault(r["artist"], [0, 0, 0, set()])
        f[0] += 1
        f[1] += r["listened_ms"] >= min(30000, r["track_ms"] // 2)
        f[2] += r["listened_ms"]
        f[3].add(r["listener"])
    out = u(len(figures), 4)
    for artist in sorted(figures, key=bytes.fromhex):
        plays, qualified, ms, listeners = figures[artist]
        out += bytes.fromhex(artist) + u(plays, 4) + u(qualified, 4) + u(ms, 8) + u(len(listeners), 4)
    return blake3(out)


def carry_digest(carry):
    out = u(len(carry), 4)
    for listener in sorted(carry, key=bytes.fromhex):
        out += bytes.fromhex(listener) + u(carry[listener], 8)
    return blake3(out)


def bundle_message(b):
    out = b"9ten/bundle/v1\x00" + bytes.fromhex(b["home"]) + ym(b["month"])
    for field in ("receipts", "subscriptions", "carry", "excluded", "directory", "tally"):
        out += bytes.fromhex(b[field])
    return out + u(b["round"], 1)


ROLES = {"home": 0, "cluster": 1, "external": 2}
KINDS = {"omitted": 0, "suspect": 1, "computation": 2, "carry": 3}
OUTCOMES = {"upheld": 0, "rejected": 1, "partly": 2}


def attestation_message(a):
    return (b"9ten/attestation/v1\x00" + bytes.fromhex(a["bundle"]) + bytes.fromhex(a["tally"])
            + u(ROLES[a["role"]], 1) + u(a["rank"], 1) + bytes.fromhex(a["reviewer"]))


def dispute_message(d):
    return (b"9ten/dispute/v1\x00" + bytes.fromhex(d["bundle"]) + u(KINDS[d["kind"]], 1)
            + bytes.fromhex(d["evidence"]) + bytes.fromhex(d["claimed"]) + bytes.fromhex(d["by"]))


def verdict_message(v):
    return (b"9ten/verdict/v1\x00" + bytes.fromhex(v["dispute"]) + u(OUTCOMES[v["outcome"]], 1)
            + bytes.fromhex(v["excluded"]) + bytes.fromhex(v["added"]) + u(v["rank"], 1)
            + bytes.fromhex(v["arbiter"]))


def review_point(home, month):
    return blake3(b"9ten/review/v1\x00" + bytes.fromhex(home) + ym(month))


def directory(records, month):
    """Per node its highest-seq valid record joined by the month; equivocators left out."""
    by_seq, equivocated = {}, set()
    for n in records:
        if not verify(bytes.fromhex(n["node"]), node_message(n), bytes.fromhex(n["sig"])):
            continue
        key = (n["node"], n["seq"])
        if key in by_seq and node_message(by_seq[key]) != node_message(n):
            equivocated.add(n["node"])
        by_seq.setdefault(key, n)
    best = {}
    for (node, seq), n in sorted(by_seq.items()):
        if node not in equivocated and n["joined"] <= month:
            best[node] = n
    return best


def reviewers(records, home, month):
    d = directory(records, month)
    x = int.from_bytes(review_point(home, month), "big")
    near = sorted((n for n in d if n != home), key=lambda n: int(n, 16) ^ x)
    cluster = d[home]["cluster"]
    peers = [n for n in near if d[n]["cluster"] == cluster]
    externals = [n for n in near if d[n]["cluster"] != cluster]
    ext = externals[0]
    others = [n for n in externals if n != ext]
    arbiters = ([n for n in others if d[n]["cluster"] != d[ext]["cluster"]]
                + [n for n in others if d[n]["cluster"] == d[ext]["cluster"]])
    ids = [blake3(node_message(n)) for n in d.values()]
    return {"directory": [d[n] for n in sorted(d)], "directory_root": hx(root(ids)),
            "cluster_peers": peers, "externals": externals, "arbiters_for_first_external": arbiters}


def signed_json(record, message, seed):
    record["sig"] = hx(sign(seed, message(record)))
    msg = message(record)
    return {"message": hx(msg), "id": hx(blake3(msg)),
            "json": json.dumps(record, separators=(",", ":"), ensure_ascii=False)}


def review_cases():
    month = "2026-10"
    seeds = [seed_of(f"operator {i}") for i in range(9)]
    keys = [hx(public_key(s)) for s in seeds]
    clusters = [0, 0, 0, 1, 1, 1, 2, 2, 3]
    nodes = []
    for i, (seed, key) in enumerate(zip(seeds, keys)):
        n = {"v": 1, "node": key, "seq": 1, "cluster": clusters[i], "joined": month,
             "name": ["Nordlys", "Ålesund", "harbour-1", "ridge", "delta", "tide", "fjell",
                      "kai", "søndre"][i]}
        n["sig"] = hx(sign(seed, node_message(n)))
        nodes.append(n)
    # Left out: a node that joins in November, one that signed two records with one seq, and
    # a record with a broken signature.
    late = dict(nodes[0], node=hx(public_key(seed_of("late"))), joined="2026-11", name="late")
    late["sig"] = hx(sign(seed_of("late"), node_message(late)))
    twice = [dict(nodes[0], node=hx(public_key(seed_of("twice"))), name=name)
             for name in ("twice", "twice again")]
    for t in twice:
        t["sig"] = hx(sign(seed_of("twice"), node_message(t)))
    forged = dict(nodes[0], node=hx(public_key(seed_of("forged"))), name="forged")
    forged["sig"] = hx(broken(sign(seed_of("forged"), node_message(forged)), "S"))
    home = keys[0]
    directory_case = {"month": month, "home": home,
                      "records": [json.dumps(n, separators=(",", ":"), ensure_ascii=False)
                                  for n in nodes + [late] + twice + [forged]]}
    picked = reviewers(nodes + [late] + twice + [forged], home, month)
    directory_case.update({k: v for k, v in picked.items() if k != "directory"})
    directory_case["in_directory"] = [n["node"] for n in picked["directory"]]

    node_cases = [signed_json(dict(n), node_message, seeds[i]) for i, n in enumerate(nodes[:3])]

    listener_seed = month_seed(seed_of("listener 0"), 2026, 10)
    listener = hx(public_key(listener_seed))
    start, _ = month_bounds(2026, 10)
    receipts = []
    for seq, (artist, listened, track_ms) in enumerate(
            [(1, 180000, 180000), (1, 29999, 180000), (2, 10000, 20000), (2, 9999, 20000)]):
        r = {"v": 1, "listener": listener, "seq": seq,
             "track": hx(hashlib.sha256(b"review track %d" % artist).digest()),
             "artist": hx(public_key(seed_of(f"artist {artist}"))),
             "started_at_ms": start + 4 * 86400000 + seq * 600000, "listened_ms": listened,
             "track_ms": track_ms, "home_node": home}
        r["sig"] = hx(sign(listener_seed, receipt_message(r)))
        receipts.append(r)
    ids = [blake3(receipt_message(r)) for r in receipts]
    daily = {"v": 1, "home": home, "day": "2026-10-05", "count": len(receipts),
             "receipts": hx(root(ids)), "artists": hx(day_artists(receipts))}
    daily_case = signed_json(daily, daily_message, seeds[0])
    daily_case["receipts"] = [json.dumps(r, separators=(",", ":")) for r in receipts]

    sub = {"v": 1, "listener": listener, "month": month, "home_node": home,
           "amount": 10000000, "payment_ref": "tx-review"}
    sub["sig"] = hx(sign(seeds[0], subscription_message(sub)))
    carry = {listener: 1234}
    tally = settle(month, receipts, [sub], carry)
    bundle = {"v": 1, "home": home, "month": month, "receipts": hx(root(ids)),
              "subscriptions": hx(root([blake3(subscription_message(sub))])),
              "carry": hx(carry_digest(carry)), "excluded": hx(root([])),
              "directory": picked["directory_root"], "tally": tally["digest"], "round": 0}
    bundle_case = signed_json(bundle, bundle_message, seeds[0])
    bundle_case.update({"receipts": daily_case["receipts"],
                        "subscriptions": [json.dumps(sub, separators=(",", ":"))],
                        "carry": carry})
    bundle_id = bundle_case["id"]
    ext = picked["externals"][0]
    attestation = {"v": 1, "bundle": bundle_id, "tally": tally["digest"], "role": "external",
                   "rank": 0, "reviewer": ext}
    dispute = {"v": 1, "bundle": bundle_id, "kind": "suspect", "evidence": hx(root(ids[:1])),
               "claimed": hx(blake3(b"another tally")), "by": ext}
    dispute_case = signed_json(dispute, dispute_message, seeds[keys.index(ext)])
    arbiter = picked["arbiters_for_first_external"][0]
    verdict = {"v": 1, "dispute": dispute_case["id"], "outcome": "partly",
               "excluded": hx(root(ids[:1])), "added": hx(root([])), "rank": 0, "arbiter": arbiter}
    roots = [{"ids": [hx(i) for i in sample], "root": hx(root(sample))}
             for sample in ([], ids[:1], ids, ids[::-1] + ids[:2])]
    return {"roots": roots, "directory": directory_case, "nodes": node_cases, "daily": daily_case,
            "bundle": bundle_case,
            "attestation": signed_json(attestation, attestation_message, seeds[keys.index(ext)]),
            "dispute": dispute_case,
            "verdict": signed_json(verdict, verdict_message, seeds[keys.index(arbiter)])}


def seed_of(label):
    return hashlib.sha256(label.encode()).digest()


def hx(b):
    return b.hex()


def build():
    listener_secret = seed_of("listener secret")
    node_seed, artist_seed = seed_of("home node"), seed_of("artist")
    node, artist = public_key(node_seed), public_key(artist_seed)

    month_keys = []
    for year, month in [(2026, 10), (2026, 11), (1970, 1), (9999, 12)]:
        seed = month_seed(listener_secret, year, month)
        month_keys.append({"secret": hx(listener_secret), "month": f"{year:04}-{month:02}",
                           "seed": hx(seed), "public": hx(public_key(seed))})

    oct_seed = month_seed(listener_secret, 2026, 10)
    receipts = []
    for seq, (listened, track_ms) in enumerate([(183000, 200000), (0, 1), (4294967295, 4294967295)]):
        r = {"v": 1, "listener": hx(public_key(oct_seed)), "seq": [7, 0, 2**64 - 1][seq],
             "track": hx(hashlib.sha256(b"track %d" % seq).digest()), "artist": hx(artist),
             "started_at_ms": 1790812800000 + seq, "listened_ms": listened,
             "track_ms": track_ms, "home_node": hx(node)}
        msg = receipt_message(r)
        r["sig"] = hx(sign(oct_seed, msg))
        receipts.append({"seed": hx(oct_seed), "message": hx(msg), "id": hx(blake3(msg)),
                         "json": json.dumps(r, separators=(",", ":"), ensure_ascii=False)})

    subscriptions = []
    for ref in ["tx-0001", "", "paiement №7 ✓"]:
        s = {"v": 1, "listener": hx(public_key(oct_seed)), "month": "2026-10",
             "home_node": hx(node), "amount": 10000000, "payment_ref": ref}
        msg = subscription_message(s)
        s["sig"] = hx(sign(node_seed, msg))
        subscriptions.append({"seed": hx(node_seed), "message": hx(msg), "id": hx(blake3(msg)),
                              "json": json.dumps(s, separators=(",", ":"), ensure_ascii=False)})

    blake3_cases = []
    for n in [0, 1, 64, 65, 1024, 1025, 2048, 2049, 3073, 8193]:
        data = bytes(i % 251 for i in range(n))
        blake3_cases.append({"input_len": n, "hash": hx(blake3(data))})

    return {"month_keys": month_keys, "blake3": blake3_cases, "receipts": receipts,
            "subscriptions": subscriptions, "signatures": signature_cases(),
            "settlement": settlement_cases(), "review": review_cases()}


def signature_cases():
    msg = b"9ten signature rule"
    seed = seed_of("signer")
    a, _ = secret_scalar(seed)
    key = public_key(seed)
    t8 = torsion_of_order_8()
    ident = (0, 1, 1, 0)
    cases = []

    def case(name, key, msg, sig, why):
        cases.append({"name": name, "key": hx(key), "message": hx(msg), "sig": hx(sig),
                      "valid": verify(key, msg, sig),
                      "valid_zip215": verify(key, msg, sig, refuse_small_order=False),
                      "valid_cofactorless": verify_cofactorless(key, msg, sig), "why": why})

    def craft(a_scalar, key_bytes, r, r_bytes, m):
        k = sha512_int(r_bytes, key_bytes, m) % L
        return r_bytes + ((r + k * a_scalar) % L).to_bytes(32, "little")

    honest = sign(seed, msg)
    case("honest", key, msg, honest, "an RFC 8032 signature")
    case("wrong message", key, msg + b"!", honest, "the message was changed")
    s = int.from_bytes(honest[32:], "little")
    case("S not canonical", key, msg, honest[:32] + (s + L).to_bytes(32, "little"),
         "S + l encodes the same scalar but S must be below l")
    flipped = bytearray(honest)
    flipped[0] ^= 1
    case("R changed", key, msg, bytes(flipped), "R no longer matches")

    # Small-order keys: anyone can sign for them; ZIP-215 alone would accept these.
    identity_key = encode(ident)
    case("key is the identity", identity_key, msg, encode(ident) + bytes(32),
         "small-order key: R = identity, S = 0 satisfies the cofactored equation")
    t8_key = encode(t8)
    case("key of order 8", t8_key, msg, encode(t8) + bytes(32),
         "small-order key with a small-order R and S = 0")

    # Mixed-order key A = aB + T: valid under the cofactored rule, usually not cofactorless.
    mixed = add(mul(a, BASE), t8)
    mixed_key = encode(mixed)
    # Pick r so that k is not a multiple of 8: then the cofactorless check fails.
    r = next(r for r in range(1, 100)
             if sha512_int(encode(mul(r, BASE)), mixed_key, msg) % L % 8 != 0)
    case("key with a torsion component", mixed_key, msg,
         craft(a, mixed_key, r, encode(mul(r, BASE)), msg),
         "A = aB + T8 is not of small order; [8] removes the torsion")

    # R with a torsion component: R = rB + T.
    r_t = encode(add(mul(r, BASE), t8))
    case("R with a torsion component", key, msg, craft(a, key, r, r_t, msg),
         "[8]R drops T8: valid under ZIP-215, invalid cofactorless")

    # R as a non-canonical encoding (y = p + 1 encodes the identity).
    noncanon_identity = (P + 1).to_bytes(32, "little")
    case("R non-canonical", key, msg, craft(a, key, 0, noncanon_identity, msg),
         "R encoded with y >= p decodes under ZIP-215")

    # A non-canonical encoding of a key that is not of small order, if any y < 19 gives one.
    for y in range(19):
        for sign_bit in (0, 1):
            enc = (y + P) | (sign_bit << 255)
            if enc >= 2**256:
                continue
            b = enc.to_bytes(32, "little")
            pt = decode(b)
            if pt is None or is_identity(mul(8, pt)):
                continue
            # We know no discrete log for this point: use a small-order R and S = 0, which the
            # equation accepts only if [8][k]A = 0: it must fail, and decoding must not panic.
            case(f"key non-canonical y={y}", b, msg, encode(ident) + bytes(32),
                 "A decodes (non-canonical y allowed) but S = 0 does not sign for it")
            break
        else:
            continue
        break

    not_on_curve = next(y.to_bytes(32, "little") for y in range(2, 100)
                        if decode(y.to_bytes(32, "little")) is None)
    case("key not on the curve", not_on_curve, msg, honest, "A does not decode")
    case("R not on the curve", key, msg, not_on_curve + honest[32:], "R does not decode")
    return cases


def main():
    out = pathlib.Path(__file__).with_name("vectors.json")
    text = json.dumps(build(), indent=1, ensure_ascii=False) + "\n"
    if "--check" in sys.argv:
        if out.read_text() != text:
            sys.exit(f"{out} differs from what generate.py writes")
        print(f"{out.name}: up to date")
    else:
        out.write_text(text)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
