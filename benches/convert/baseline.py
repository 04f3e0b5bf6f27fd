#!/usr/bin/env python3
"""The straightforward script a user would write to convert an Auth0 export plus its
password-hash export into Authgear import records (NDJSON).

    baseline.py USERS HASHES OUT

Loads the whole hash file into two dicts (by user id and by lower-cased e-mail), then
streams the users, joins by id first and e-mail second, and writes one Authgear
import record per line.
"""
import json
import sys


def main():
    users_path, hashes_path, out_path = sys.argv[1:4]
    by_id, by_email = {}, {}
    with open(hashes_path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            h = json.loads(line)
            uid = "auth0|" + (h["alt_id"] if h.get("alt_id") else h["_id"]["$oid"])
            email = h.get("email")
            if not email:
                email = next((i.get("value") for i in h.get("identifiers", [])
                              if i.get("type") == "email"), None)
            by_id.setdefault(uid, h["passwordHash"])
            if email:
                by_email.setdefault(email.lower(), h["passwordHash"])
    stats = {"users": 0, "by_id": 0, "by_email": 0, "unmatched": 0}
    with open(users_path, encoding="utf-8") as f, open(out_path, "w", encoding="utf-8") as out:
        for line in f:
            if not line.strip():
                continue
            u = json.loads(line)
            stats["users"] += 1
            rec = {}
            if u.get("email"):
                rec["email"] = u["email"].lower()
            if "email_verified" in u:
                rec["email_verified"] = u["email_verified"]
            for k in ("name", "nickname", "given_name", "family_name", "picture"):
                if u.get(k):
                    rec[k] = u[k]
            h = by_id.get(u.get("user_id"))
            if h is not None:
                stats["by_id"] += 1
            elif u.get("email"):
                h = by_email.get(u["email"].lower())
                if h is not None:
                    stats["by_email"] += 1
            if h is None:
                stats["unmatched"] += 1
            else:
                rec["password"] = {"type": "bcrypt", "password_hash": h}
            out.write(json.dumps(rec, separators=(",", ":"), ensure_ascii=False))
            out.write("\n")
    print(json.dumps(stats), file=sys.stderr)


if __name__ == "__main__":
    main()
