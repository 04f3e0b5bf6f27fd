#!/usr/bin/env python3
"""Generate an Auth0 user export (NDJSON) and the matching password-hash export.

    gen.py N USERS_OUT HASHES_OUT [--seed S]

Users look like an Auth0 bulk export job's JSON output. The hash file looks like the
export Auth0 support sends ([HASHFMT] in docs/auth0-api.md §4), in shuffled order:
  - 88% of hash lines carry the user's own id (`_id.$oid` = the 24 hex of `auth0|...`),
  - 10% carry an `alt_id` that differs from the user's id, so they only match by e-mail
    (their e-mail is written in another case to exercise case-insensitive matching),
  - 2% of users have no hash line at all.
Of the lines with an e-mail, 5% have no root `email` and carry it only in
`identifiers`. Bcrypt hashes are fake but well-formed: `$2b$10$` + 53 characters.
Deterministic for a given N and seed.
"""
import argparse
import json
import random

ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
FIRST = ["Ada", "Alan", "Grace", "Linus", "Barbara", "Donald", "Edsger", "Frances", "Ken", "Radia",
         "Tim", "Margaret", "John", "Sophie", "Yukihiro", "Guido", "Anders", "Bjarne", "Hedy", "Niklaus"]
LAST = ["Lovelace", "Turing", "Hopper", "Torvalds", "Liskov", "Knuth", "Dijkstra", "Allen",
        "Thompson", "Perlman", "Berners-Lee", "Hamilton", "McCarthy", "Wilson", "Matsumoto",
        "van Rossum", "Hejlsberg", "Stroustrup", "Lamarr", "Wirth"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "corp.example.io"]
PLANS = ["free", "starter", "pro", "enterprise"]
CONNECTION = "Username-Password-Authentication"


def iso(ts):
    # ts: seconds since 2019-01-01; cheap ISO-8601 without datetime overhead per call.
    days, rem = divmod(int(ts), 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    y, d = 2019 + days // 365, days % 365
    mo, dd = d // 31 + 1, d % 31 % 28 + 1
    return f"{y:04d}-{mo:02d}-{dd:02d}T{h:02d}:{m:02d}:{s:02d}.{int(ts * 1000) % 1000:03d}Z"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int)
    ap.add_argument("users_out")
    ap.add_argument("hashes_out")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    hash_lines = []
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    with open(a.users_out, "w", encoding="utf-8") as out:
        for i in range(a.n):
            oid = f"{rnd.getrandbits(96):024x}"
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            local = f"{first}.{last}.{i}".replace(" ", "").lower()
            email = f"{local}@{rnd.choice(DOMAINS)}"
            created = rnd.uniform(0, 4 * 365 * 86400)
            updated = created + rnd.uniform(0, 86400 * 30)
            verified = rnd.random() < 0.8
            user = {
                "user_id": f"auth0|{oid}",
                "email": email,
                "email_verified": verified,
                "name": f"{first} {last}",
                "nickname": local.split(".")[0],
                "given_name": first,
                "family_name": last,
                "picture": f"https://s.gravatar.com/avatar/{rnd.getrandbits(128):032x}?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2F{first[:2].lower()}.png",
                "created_at": iso(created),
                "updated_at": iso(updated),
                "last_login": iso(updated),
                "logins_count": rnd.randint(0, 500),
                "identities": [{"connection": CONNECTION, "provider": "auth0",
                                "user_id": oid, "isSocial": False}],
                "user_metadata": {"plan": rnd.choice(PLANS), "newsletter": rnd.random() < 0.3,
                                  "locale": rnd.choice(["en", "fr", "de", "ja"])},
                "app_metadata": {"customer_id": f"cus_{rnd.getrandbits(48):012x}",
                                 "roles": ["user"] if i % 10 else ["user", "admin"]},
            }
            out.write(dumps(user))
            out.write("\n")
            r = rnd.random()
            if r < 0.02:
                continue  # no hash for this user
            h = "$2b$10$" + "".join(rnd.choices(ALPHABET, k=53))
            line = {"_id": {"$oid": oid if r >= 0.12 else f"{rnd.getrandbits(96):024x}"},
                    "email_verified": verified}
            hash_email = email.upper() if r < 0.12 else email
            if rnd.random() >= 0.05:
                line["email"] = hash_email
            line["passwordHash"] = h
            line["password_set_date"] = {"$date": iso(created)}
            line["tenant"] = "bench"
            line["connection"] = CONNECTION
            line["_tmp_is_unique"] = True
            line["identifiers"] = [{"type": "email", "value": hash_email, "verified": verified}]
            if r < 0.12:
                line["alt_id"] = f"legacy-{i}"
            hash_lines.append(dumps(line))
    rnd.shuffle(hash_lines)
    with open(a.hashes_out, "w", encoding="utf-8") as out:
        for line in hash_lines:
            out.write(line)
            out.write("\n")


if __name__ == "__main__":
    main()
