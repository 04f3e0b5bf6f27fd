#!/usr/bin/env python3
"""Generate the two exports `verify` compares: an Auth0 user export (the source) and the
Authgear user export of the same users after a migration (the target).

    gen.py N SOURCE_OUT TARGET_OUT

The target is what `migrate --from auth0 --to authgear --custom-attribute
user_metadata.plan=plan` leaves: e-mails and usernames lower-cased, `blocked` as
`disabled`, `user_metadata.plan` as the custom attribute `plan`, Authgear's own ids, in
another order than the source (a fixed permutation). Known differences are planted:
every 100,000th user (i % 100000 == 7) is renamed at the target and every 250,000th
(i % 250000 == 3) is missing there; 1,000 target users have no source user (extra).
Deterministic for a given N.
"""
import json
import random
import sys

FIRST = ["Ada", "Alan", "Grace", "Linus", "Barbara", "Donald", "Edsger", "Frances", "Ken", "Radia",
         "Tim", "Margaret", "John", "Sophie", "Yukihiro", "Guido", "Anders", "Bjarne", "Hedy", "Niklaus"]
LAST = ["Lovelace", "Turing", "Hopper", "Torvalds", "Liskov", "Knuth", "Dijkstra", "Allen",
        "Thompson", "Perlman", "Berners-Lee", "Hamilton", "McCarthy", "Wilson", "Matsumoto",
        "van Rossum", "Hejlsberg", "Stroustrup", "Lamarr", "Wirth"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "corp.example.io"]
PLANS = ["free", "starter", "pro", "enterprise"]
CONNECTION = "Username-Password-Authentication"


def user(i):
    """The fields of user i, from i alone (so both files can be written in any order)."""
    h = (i * 2654435761) & 0xFFFFFFFF
    first, last = FIRST[h % 20], LAST[(h >> 5) % 20]
    local = f"{first}.{last}.{i}".replace(" ", "").lower()
    return {
        "oid": f"{(i * 0x9E3779B97F4A7C15) & ((1 << 96) - 1):024x}",
        "sub": f"{h:08x}-{i & 0xFFFF:04x}-4{(i >> 16) & 0xFFF:03x}-8000-{i:012x}",
        "email": f"{local.capitalize() if h % 7 == 0 else local}@{DOMAINS[(h >> 10) % 4]}",
        "verified": h % 10 < 8,
        "username": f"{first}{i}" if h % 3 == 0 else None,
        "first": first, "last": last, "nick": local.split(".")[0],
        "blocked": h % 50 == 0,
        "plan": PLANS[(h >> 12) % 4],
    }


def auth0_line(i):
    u = user(i)
    line = {
        "user_id": f"auth0|{u['oid']}", "email": u["email"], "email_verified": u["verified"],
        "name": f"{u['first']} {u['last']}", "nickname": u["nick"],
        "given_name": u["first"], "family_name": u["last"],
        "picture": f"https://s.gravatar.com/avatar/{u['oid']}.png",
        "created_at": "2024-03-01T10:00:00.000Z", "updated_at": "2024-03-02T10:00:00.000Z",
        "last_login": "2024-03-02T10:00:00.000Z", "logins_count": i % 500,
        "identities": [{"connection": CONNECTION, "provider": "auth0", "user_id": u["oid"], "isSocial": False}],
        "user_metadata": {"plan": u["plan"]},
    }
    if u["username"]:
        line["username"] = u["username"]
    if u["blocked"]:
        line["blocked"] = True
    return line


def authgear_line(i, renamed=False):
    u = user(i)
    email = u["email"].lower()
    line = {
        "sub": u["sub"], "email": email, "email_verified": u["verified"],
        "phone_number_verified": False,
        "name": f"{u['first']} {u['last']}" + (" (renamed)" if renamed else ""),
        "given_name": u["first"], "family_name": u["last"], "nickname": u["nick"],
        "picture": f"https://s.gravatar.com/avatar/{u['oid']}.png",
        "address": {}, "custom_attributes": {"plan": u["plan"]},
        "created_at": "2024-06-01T10:00:00Z", "disabled": u["blocked"], "is_anonymized": False,
        "identities": [{"type": "login_id", "login_id": {"key": "email", "type": "email",
                                                          "value": email, "original_value": email}}],
        "mfa": {}, "biometric_count": 0, "passkey_count": 0,
    }
    if u["username"]:
        line["preferred_username"] = u["username"].lower()
    return line


def main():
    n, source_out, target_out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    with open(source_out, "w", encoding="utf-8") as out:
        for i in range(n):
            out.write(dumps(auth0_line(i)) + "\n")
    order = list(range(n + 1000))
    random.Random(7).shuffle(order)
    with open(target_out, "w", encoding="utf-8") as out:
        for i in order:
            if i < n and i % 250000 == 3:
                continue
            out.write(dumps(authgear_line(i, renamed=i % 100000 == 7)) + "\n")


if __name__ == "__main__":
    main()
