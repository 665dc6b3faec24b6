#!/usr/bin/env python3
"""Writes 9ten's test vectors from an independent implementation of the spec.

This is a second implementation, in plain Python (standard library only), of the signed
messages of records.md, the listener month keys and the signature rule (ZIP-215 plus the
small-order key check). It writes the JSON files beside it; the Rust tests check that the
Rust implementation produces and judges every vector exactly as this one does.

    python3 protocol/vectors/generate.py          # rewrite the vectors
    python3 protocol/vectors/generate.py --check  # fail if the committed vectors differ
"""
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
        receipts.append({"seed": hx(oct_seed), "message": hx(msg),
                         "json": json.dumps(r, separators=(",", ":"), ensure_ascii=False)})

    subscriptions = []
    for ref in ["tx-0001", "", "paiement №7 ✓"]:
        s = {"v": 1, "listener": hx(public_key(oct_seed)), "month": "2026-10",
             "home_node": hx(node), "amount": 10000000, "payment_ref": ref}
        msg = subscription_message(s)
        s["sig"] = hx(sign(node_seed, msg))
        subscriptions.append({"seed": hx(node_seed), "message": hx(msg),
                              "json": json.dumps(s, separators=(",", ":"), ensure_ascii=False)})

    return {"month_keys": month_keys, "receipts": receipts, "subscriptions": subscriptions,
            "signatures": signature_cases()}


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
