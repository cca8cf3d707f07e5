#!/usr/bin/env python3
"""Checks a keten audit bundle with nothing of keten: Python's standard library and the
`cryptography` package. Usage: verify_bundle.py BUNDLE.json LOG.pub"""
import base64, hashlib, json, struct, sys, uuid
from cryptography.hazmat.primitives.serialization import (
    Encoding, PublicFormat, load_pem_public_key)

def sha256(b): return hashlib.sha256(b).digest()
def node(left, right): return sha256(b"\x01" + left + right)
def u64(n): return struct.pack(">Q", n)
def var(b): return u64(len(b)) + b

def leaf_bytes(e):
    return (b"\x01" + u64(e["position"]) + var(e["stream"].encode())
            + u64(e["version"]) + uuid.UUID(e["id"]).bytes + var(e["type"].encode())
            + u64(e["committed_at"]) + var(base64.b64decode(e["metadata"]))
            + var(base64.b64decode(e["payload"])))

def verify_inclusion(leaf, index, size, proof, root):  # RFC 9162 §2.1.3.2
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root

def verify_checkpoint(note, key):  # raises if the signature does not hold
    body, _, line = note.partition("\n\n")
    body += "\n"
    origin, size, root, time = body.splitlines()
    prefix = "\u2014 " + origin + " "
    assert line.startswith(prefix) and line.endswith("\n"), "malformed signature line"
    sig = base64.b64decode(line[len(prefix):-1])
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert sig[:4] == sha256(origin.encode() + b"\n\x01" + raw)[:4], "signed by another key"
    key.verify(sig[4:], body.encode())
    return int(size), base64.b64decode(root)

bundle = json.load(open(sys.argv[1]))
key = load_pem_public_key(open(sys.argv[2], "rb").read())
assert (bundle["format"], bundle["version"]) == ("keten-audit-bundle", 1)
size, root = verify_checkpoint(bundle["checkpoint"], key)
failures, prev = 0, None
for i, e in enumerate(bundle["events"]):
    leaf = sha256(b"\x00" + leaf_bytes(e))
    proof = [bytes.fromhex(h) for h in e["inclusion_proof"]]
    for check, holds in [
        ("inclusion", verify_inclusion(leaf, e["position"], size, proof, root)),
        ("stream", e["stream"] == bundle["stream"]),
        ("order", prev is None or e["position"] > prev["position"]),
        ("versions", e["version"] == (0 if prev is None else prev["version"] + 1)),
    ]:
        if not holds:
            failures += 1
            print(f"FAILS {check}: event #{i} (position {e['position']})")
    prev = e
print(f"{len(bundle['events'])} events under tree size {size}:",
      "the bundle holds" if failures == 0 else "the bundle does NOT hold")
sys.exit(1 if failures else 0)
