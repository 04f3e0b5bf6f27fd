#!/usr/bin/env python3
"""The straightforward script a user would write to verify a migration: load the
Authgear export into a dict by lower-cased e-mail, stream the Auth0 export, and compare
what the migration carries, field by field.

    baseline.py SOURCE TARGET

Prints each difference as `user, field: expected X, got Y`, then the summary.
"""
import json
import sys

STRINGS = ["name", "given_name", "family_name", "nickname", "picture", "phone_number"]


def main():
    source_path, target_path = sys.argv[1:3]
    by_email = {}
    with open(target_path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                t = json.loads(line)
                if t.get("email"):
                    by_email[t["email"].lower()] = t
    target = len(by_email)
    s = {"source": 0, "target": target, "matched": 0, "missing": 0, "different": 0}
    paired = set()
    with open(source_path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            u = json.loads(line)
            s["source"] += 1
            email = (u.get("email") or "").lower()
            t = by_email.get(email)
            if t is None:
                s["missing"] += 1
                print(f"{u.get('email')}: missing at the target")
                continue
            paired.add(email)
            want = {k: u.get(k) for k in STRINGS}
            want["email"] = email
            want["preferred_username"] = (u.get("username") or "").lower() or None
            want["email_verified"] = bool(u.get("email_verified"))
            want["disabled"] = bool(u.get("blocked"))
            plan = (u.get("user_metadata") or {}).get("plan")
            want["custom_attributes"] = {"plan": plan} if plan is not None else None
            got = {k: t.get(k) for k in want}
            got["email_verified"] = bool(t.get("email_verified"))
            got["disabled"] = bool(t.get("disabled"))
            got["custom_attributes"] = t.get("custom_attributes") or None
            diffs = [k for k in want if want[k] != got[k]]
            if diffs:
                s["different"] += 1
                for k in diffs:
                    print(f"{u.get('email')}, {k}: expected {json.dumps(want[k])}, got {json.dumps(got[k])}")
            else:
                s["matched"] += 1
    s["extra"] = target - len(paired)
    print(json.dumps(s), file=sys.stderr)


if __name__ == "__main__":
    main()
