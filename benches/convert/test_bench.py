#!/usr/bin/env python3
"""Checks gen.py and baseline.py: `python3 benches/convert/test_bench.py`."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
N = 5000


class BenchScripts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.users, cls.hashes, cls.out = (os.path.join(d, f) for f in ("u.ndjson", "h.ndjson", "o.ndjson"))
        subprocess.run([sys.executable, os.path.join(HERE, "gen.py"), str(N), cls.users, cls.hashes], check=True)
        r = subprocess.run([sys.executable, os.path.join(HERE, "baseline.py"), cls.users, cls.hashes, cls.out],
                           check=True, capture_output=True, text=True)
        cls.stats = json.loads(r.stderr.strip().splitlines()[-1])
        with open(cls.users) as f:
            cls.u = [json.loads(l) for l in f]
        with open(cls.hashes) as f:
            cls.h = [json.loads(l) for l in f]
        with open(cls.out) as f:
            cls.o = [json.loads(l) for l in f]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_users_look_like_an_auth0_export(self):
        self.assertEqual(len(self.u), N)
        ids = set()
        for u in self.u:
            self.assertRegex(u["user_id"], r"^auth0\|[0-9a-f]{24}$")
            ids.add(u["user_id"])
            self.assertEqual(u["identities"][0]["user_id"], u["user_id"][6:])
            self.assertEqual(u["identities"][0]["provider"], "auth0")
            self.assertIs(u["identities"][0]["isSocial"], False)
            for k in ("email", "email_verified", "name", "nickname", "given_name", "family_name", "picture",
                      "created_at", "updated_at", "logins_count", "user_metadata", "app_metadata"):
                self.assertIn(k, u)
        self.assertEqual(len(ids), N, "user ids are unique")

    def test_hashes_are_well_formed_and_split_as_documented(self):
        by_oid = {u["user_id"][6:]: u for u in self.u}
        own = alt = 0
        for h in self.h:
            self.assertRegex(h["passwordHash"], r"^\$2b\$10\$[./A-Za-z0-9]{53}$")
            self.assertRegex(h["_id"]["$oid"], r"^[0-9a-f]{24}$")
            if "alt_id" in h:
                alt += 1
                self.assertNotIn(h["_id"]["$oid"], by_oid)
            else:
                own += 1
                self.assertIn(h["_id"]["$oid"], by_oid)
        self.assertAlmostEqual(alt / N, 0.10, delta=0.02)
        self.assertAlmostEqual((N - len(self.h)) / N, 0.02, delta=0.01)
        # Shuffled: not in user order.
        order = [by_oid.get(h["_id"]["$oid"]) for h in self.h[:50]]
        self.assertNotEqual([u["user_id"] for u in order if u], [u["user_id"] for u in self.u[:50]])

    def test_baseline_joins_by_id_then_email(self):
        # An independent join, by e-mail identifier only for alt_id lines.
        expected = {}
        for h in self.h:
            if "alt_id" in h:
                email = next(i["value"] for i in h["identifiers"] if i["type"] == "email").lower()
                expected[("email", email)] = h["passwordHash"]
            else:
                expected[("id", "auth0|" + h["_id"]["$oid"])] = h["passwordHash"]
        self.assertEqual(len(self.o), N)
        matched = 0
        for u, o in zip(self.u, self.o):
            want = expected.get(("id", u["user_id"])) or expected.get(("email", u["email"].lower()))
            got = o.get("password", {}).get("password_hash")
            self.assertEqual(got, want, u["user_id"])
            if want:
                matched += 1
                self.assertEqual(o["password"]["type"], "bcrypt")
            self.assertEqual(o["email"], u["email"].lower())
            self.assertEqual(o["name"], u["name"])
            self.assertNotIn("user_metadata", o)
        self.assertEqual(self.stats["users"], N)
        self.assertEqual(self.stats["by_id"] + self.stats["by_email"], matched)
        self.assertEqual(self.stats["unmatched"], N - matched)
        self.assertAlmostEqual(self.stats["by_email"] / N, 0.10, delta=0.02)


if __name__ == "__main__":
    unittest.main()
