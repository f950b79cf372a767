#!/usr/bin/env python3
"""Self-test of the ThreatStream API simulator.

Run with: python3 test/simulator/test_sim.py

Starts threatstream_sim.py on 127.0.0.1 with an ephemeral port and a fixture
of documentation addresses (198.51.100.0/24, 2001:db8::/32, example.*)
written to a temporary directory, then checks answers, faults and the admin
endpoints.  Needs only the Python standard library.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
SIMULATOR = HERE / "threatstream_sim.py"
# Responses recorded from the real API (test/data/api-samples/README.md)
SAMPLES = HERE.parent / "data" / "api-samples"

USER = "analyst@example.com"
KEY = "k3y-0f-the-test-5f2b9c"
OTHER_USER = "second@example.com"
OTHER_KEY = "another-key-77aa"
AUTH = {"Authorization": "apikey %s:%s" % (USER, KEY)}
API = "/api/v2/intelligence/"

MD5 = "0123456789abcdef0123456789abcdef"
SHA256 = "ab" * 32
BULK_COUNT = 1200


def make_indicator(n, value, kind, status="active", confidence=50,
                   itype="c2_ip", subtype=None, severity="high", tags=None):
    """Build one indicator in the API's v2 shape."""
    update_id = 5000000000 + n  # beyond 32 bits, as in the real service
    return {
        "source_created": None, "status": status, "itype": itype,
        "expiration_ts": "9999-12-31T00:00:00.000Z",
        "ip": value if kind == "ip" else None, "is_editable": False,
        "feed_id": 0, "update_id": update_id, "value": value,
        "is_public": True, "threat_type": itype.split("_")[0],
        "workgroups": [], "rdns": None, "confidence": confidence,
        "uuid": "00000000-0000-4000-8000-%012d" % n, "retina_confidence": -1,
        "trusted_circle_ids": None, "id": 4300000000 + n, "source": "Analyst",
        "owner_organization_id": 7, "import_session_id": None,
        "source_modified": None, "type": kind,
        "sort": [1700000000000 + n, str(4300000000 + n)], "description": None,
        "tags": tags, "threatscore": 40 + n % 50, "latitude": None,
        "modified_ts": "2024-01-02T03:04:05.678Z", "org": "", "asn": "",
        "created_ts": "2024-01-01T00:00:00.000Z", "tlp": None,
        "is_anonymous": False, "country": None,
        "source_reported_confidence": confidence, "can_add_public_tags": True,
        "longitude": None, "subtype": subtype,
        "meta": {"detail2": "fixture", "severity": severity},
        "resource_uri": "/api/v2/intelligence/%d/" % (4300000000 + n),
    }


def fixture():
    """Return the indicators every test relies on."""
    items = []
    # 198.51.100.1..20: odd active, even inactive; confidence 5 * i.
    for i in range(1, 21):
        items.append(make_indicator(i, "198.51.100.%d" % i, "ip",
                                    "active" if i % 2 else "inactive", 5 * i,
                                    "c2_ip" if i % 2 else "bot_ip",
                                    tags=[{"id": "t%d" % i, "name": "fixture"}]))
    items.append(make_indicator(30, "198.51.100.30", "ip", "falsepos", 90))
    items.append(make_indicator(31, "bad.example.com", "domain", "active", 90, "mal_domain"))
    items.append(make_indicator(32, "MiXeD.Example.Net", "domain", "active", 70, "mal_domain"))
    items.append(make_indicator(33, "http://bad.example.com/path", "url", "active", 80,
                                "phish_url"))
    items.append(make_indicator(34, MD5, "md5", "active", 60, "mal_md5", "MD5"))
    items.append(make_indicator(35, SHA256, "md5", "active", 65, "apt_md5", "SHA256",
                                severity="very-high"))
    items.append(make_indicator(36, "2001:db8::1", "ipv6", "active", 75, "mal_ipv6"))
    items.append(make_indicator(37, "phrase with spaces", "string", "active", 40, "mal_string"))
    items.append(make_indicator(38, 'say "hi"', "string", "active", 40, "mal_string"))
    for i in range(BULK_COUNT):
        items.append(make_indicator(1000 + i, "host%04d.example.org" % i, "domain",
                                    "active", 50, "bulk_domain", severity="low"))
    return items


def write_ndjson(path, items, extra_lines=()):
    """Write indicators one per line."""
    with open(path, "w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item) + "\n")
        for line in extra_lines:
            f.write(line + "\n")


def write_atomic(path, text):
    """Replace a file's content in one rename."""
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class SimProcess:
    """A simulator subprocess on an ephemeral port of 127.0.0.1."""

    def __init__(self, workdir, name, data_files, extra_args=()):
        """Start the simulator and wait (at most 15 s) for its port file."""
        self.port_file = Path(workdir) / (name + ".port")
        self.stderr_path = Path(workdir) / (name + ".stderr")
        args = [sys.executable, str(SIMULATOR), "--host", "127.0.0.1", "--port", "0",
                "--port-file", str(self.port_file),
                "--user", "%s:%s" % (USER, KEY), "--user", "%s:%s" % (OTHER_USER, OTHER_KEY)]
        for path in data_files:
            args += ["--data", str(path)]
        args += list(extra_args)
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.port_file.exists():
                self.port = int(self.port_file.read_text())
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("simulator did not start: " + self.stderr_path.read_text())

    def stop(self):
        """Send SIGTERM and return the exit code (kill after 10 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.stderr.close()
        return self.proc.returncode


def request(port, path, params=None, headers=None, method="GET", body=None,
            conn=None, timeout=10):
    """Send one request; return (status, headers dict, body bytes)."""
    if params:
        path = path + "?" + urlencode(params)
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        if own:
            conn.close()


def get_json(port, path, params=None, headers=AUTH, conn=None):
    """GET with the test credentials; return (status, parsed JSON)."""
    status, _, body = request(port, path, params, headers, conn=conn)
    return status, json.loads(body)


def values_of(document):
    """Return the set of indicator values in a response."""
    return {o.get("value") for o in document["objects"]}


class SimulatorTest(unittest.TestCase):
    """Tests against one simulator started for the whole class."""

    @classmethod
    def setUpClass(cls):
        """Write the fixture and start the simulator."""
        cls.tmp = tempfile.mkdtemp(prefix="tssim-")
        cls.items = fixture()
        cls.data = Path(cls.tmp) / "intel.ndjson"
        # One record of another shape must be skipped, not break loading.
        write_ndjson(cls.data, cls.items, ['{"domain": "v1.example.com", "state": "active"}'])
        cls.control = Path(cls.tmp) / "control.json"
        cls.log_file = Path(cls.tmp) / "requests.ndjson"
        cls.sim = SimProcess(cls.tmp, "main", [cls.data],
                             ["--control-file", str(cls.control),
                              "--log-file", str(cls.log_file)])
        cls.port = cls.sim.port

    @classmethod
    def tearDownClass(cls):
        """Stop the simulator, check it reported no bug, remove the files."""
        code = cls.sim.stop()
        stderr = cls.sim.stderr_path.read_text()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        # A traceback means the simulator hit a bug while serving.
        if code != 0 or "Traceback" in stderr:
            raise AssertionError("simulator exit %s, stderr:\n%s" % (code, stderr))

    def get(self, params=None, path=API, headers=AUTH):
        """GET an API path with credentials; return (status, JSON)."""
        return get_json(self.port, path, params, headers)

    def admin(self, name, method="GET", body=None):
        """Call an admin endpoint and return (status, JSON)."""
        status, _, data = request(self.port, "/__admin/" + name, method=method,
                                  body=None if body is None else json.dumps(body).encode(),
                                  headers={"Content-Type": "application/json"})
        return status, json.loads(data)

    def log_for(self, tag):
        """Return the logged requests carrying a tag."""
        status, entries = get_json(self.port, "/__admin/log", {"tag": tag}, {})
        self.assertEqual(status, 200)
        return entries

    # -- authentication ---------------------------------------------------------

    def test_auth_header_and_legacy_query(self):
        """Both credential forms work; bad or missing ones get 401."""
        status, doc = self.get({"value": "198.51.100.1"})
        self.assertEqual((status, values_of(doc)), (200, {"198.51.100.1"}))

        status, doc = self.get({"value": "198.51.100.1", "username": OTHER_USER,
                                "api_key": OTHER_KEY}, headers={})
        self.assertEqual((status, doc["meta"]["total_count"]), (200, 1))

        bad = [
            {"Authorization": "apikey %s:wrong" % USER},
            {"Authorization": "apikey nobody@example.com:%s" % KEY},
            {"Authorization": "Bearer %s:%s" % (USER, KEY)},
            {"Authorization": "apikey %s" % KEY},
            {},
        ]
        for headers in bad:
            status, _, body = request(self.port, API, {"limit": 1}, headers)
            self.assertEqual(status, 401, headers)
            doc = json.loads(body)
            self.assertIn("message", doc)
            self.assertIn("error", doc)
            self.assertNotIn(KEY.encode(), body)
        status, _, body = request(self.port, API, {"username": USER, "api_key": "nope"})
        self.assertEqual(status, 401)
        self.assertNotIn(b"nope", body)

    def test_auth_is_logged_without_secrets(self):
        """The log says how credentials came but never holds the key."""
        self.get({"value": "198.51.100.3"}, path="/tag=authlog/api/v2/intelligence/")
        self.get({"value": "198.51.100.3", "username": USER, "api_key": KEY},
                 path="/tag=authlog/api/v2/intelligence/", headers={})
        self.get({"value": "198.51.100.3"}, path="/tag=authlog/api/v2/intelligence/",
                 headers={})
        entries = self.log_for("authlog")
        self.assertEqual([e["auth"] for e in entries], ["header", "query", "none"])
        self.assertEqual([e["credentials_in_url"] for e in entries], [False, True, False])
        self.assertEqual([e["status"] for e in entries], [200, 200, 401])
        self.assertEqual(entries[1]["query"]["api_key"], ["REDACTED"])
        self.assertEqual(entries[1]["query"]["username"], [USER])

        _, _, whole_log = request(self.port, "/__admin/log")
        file_text = self.log_file.read_text()
        for text in (whole_log.decode(), file_text):
            self.assertNotIn(KEY, text)
            self.assertNotIn(OTHER_KEY, text)
            self.assertNotIn("apikey ", text)
        self.assertEqual(oct(self.log_file.stat().st_mode & 0o777), oct(0o644))
        keys = {"seq", "time", "method", "path", "prefix_options", "query",
                "credentials_in_url", "auth", "status", "tag", "connection_id"}
        for line in file_text.splitlines():
            self.assertLessEqual(keys, set(json.loads(line)))

    # -- filters ------------------------------------------------------------------

    def test_value_filter(self):
        """value is exact, a comma list, and case-blind only for domains and hashes."""
        status, doc = self.get({"value": "198.51.100.1,198.51.100.2,203.0.113.9"})
        self.assertEqual(values_of(doc), {"198.51.100.1", "198.51.100.2"})
        self.assertEqual(doc["meta"]["total_count"], 2)
        self.assertEqual(values_of(self.get({"value": "BAD.EXAMPLE.COM"})[1]),
                         {"bad.example.com"})
        self.assertEqual(values_of(self.get({"value": "mixed.example.net"})[1]),
                         {"MiXeD.Example.Net"})
        self.assertEqual(values_of(self.get({"value": MD5.upper()})[1]), {MD5})
        self.assertEqual(values_of(self.get({"value": SHA256.upper()})[1]), {SHA256})
        # A URL is not case-folded, and a prefix is no match.
        self.assertEqual(self.get({"value": "HTTP://BAD.EXAMPLE.COM/path"})[1]["objects"], [])
        status, doc = self.get({"value": "198.51.100.1"[:-1]})
        self.assertEqual((status, doc["objects"], doc["meta"]["total_count"]), (200, [], 0))
        self.assertEqual(values_of(self.get({"value__exact": "198.51.100.5"})[1]),
                         {"198.51.100.5"})

    def test_type_status_confidence_filters(self):
        """type, status and the confidence bounds narrow the answer."""
        self.assertEqual(self.get({"value": "2001:db8::1", "type": "ip"})[1]["objects"], [])
        self.assertEqual(values_of(self.get({"value": "2001:db8::1", "type": "ipv6"})[1]),
                         {"2001:db8::1"})
        self.assertEqual(values_of(self.get({"value": SHA256, "type": "md5"})[1]), {SHA256})
        self.assertEqual(self.get({"value": "bad.example.com", "type": "url"})[1]["objects"], [])

        four = "198.51.100.1,198.51.100.2,198.51.100.3,198.51.100.4,198.51.100.30"
        self.assertEqual(values_of(self.get({"value": four, "status": "active"})[1]),
                         {"198.51.100.1", "198.51.100.3"})
        self.assertEqual(len(self.get({"value": four, "status": "active,inactive"})[1]
                             ["objects"]), 4)
        self.assertEqual(values_of(self.get({"value": four, "status": "falsepos"})[1]),
                         {"198.51.100.30"})

        # 198.51.100.10 has confidence 50: test the bounds at 49, 50, 51.
        ten = {"value": "198.51.100.10"}
        cases = [("confidence__gte", 50, 1), ("confidence__gte", 51, 0),
                 ("confidence__gt", 49, 1), ("confidence__gt", 50, 0),
                 ("confidence__lte", 50, 1), ("confidence__lte", 49, 0),
                 ("confidence__lt", 51, 1), ("confidence__lt", 50, 0)]
        for name, bound, expected in cases:
            doc = self.get(dict(ten, **{name: bound}))[1]
            self.assertEqual(doc["meta"]["total_count"], expected, (name, bound))
        doc = self.get({"type": "ip", "confidence__gte": 80, "status": "active"})[1]
        self.assertEqual(values_of(doc), {"198.51.100.17", "198.51.100.19"})
        status, doc = self.get({"confidence__gte": "high"})
        self.assertEqual(status, 400)
        self.assertIn("message", doc)

    def test_q_expressions(self):
        """q handles OR, AND, parentheses, quotes and comparisons."""
        q = '(value="198.51.100.1" OR value=198.51.100.2 or value="bad.example.com") ' \
            'AND status="active"'
        self.assertEqual(values_of(self.get({"q": q})[1]), {"198.51.100.1", "bad.example.com"})
        # AND binds tighter than OR.
        q = "value=198.51.100.2 OR value=198.51.100.4 AND status=active"
        self.assertEqual(values_of(self.get({"q": q})[1]), {"198.51.100.2"})
        q = "(value=198.51.100.2 OR value=198.51.100.4) AND status=active"
        self.assertEqual(self.get({"q": q})[1]["objects"], [])
        q = "type=ip AND confidence>=96 and status=active"
        self.assertEqual(values_of(self.get({"q": q})[1]), set())
        q = "type=ip AND confidence>90"
        self.assertEqual(values_of(self.get({"q": q})[1]), {"198.51.100.19", "198.51.100.20"})
        q = "type=ip AND confidence<10"
        self.assertEqual(values_of(self.get({"q": q})[1]), {"198.51.100.1"})
        q = "itype=apt_md5 AND meta.severity=very-high AND subtype=SHA256"
        self.assertEqual(values_of(self.get({"q": q})[1]), {SHA256})
        q = 'value="phrase with spaces" OR value="say \\"hi\\""'
        self.assertEqual(values_of(self.get({"q": q})[1]), {"phrase with spaces", 'say "hi"'})
        q = "value=BAD.example.com AND type=domain"
        self.assertEqual(values_of(self.get({"q": q})[1]), {"bad.example.com"})
        q = " OR ".join('value="198.51.100.%d"' % i for i in range(1, 11))
        self.assertEqual(self.get({"q": q, "status": "active"})[1]["meta"]["total_count"], 5)

        malformed = ["value=", "(value=198.51.100.1", "value=198.51.100.1)",
                     'value="unterminated', "colour=red", "value 198.51.100.1",
                     "value=198.51.100.1 value=198.51.100.2", "confidence>=high",
                     "value=198.51.100.1 AND", "OR value=1", "=1", "()",
                     "(" * 100 + "value=1" + ")" * 100]
        for q in malformed:
            status, doc = self.get({"q": q})
            self.assertEqual(status, 400, q)
            self.assertIn("message", doc)

    def test_paging_follows_next(self):
        """meta.next walks every page once, keeping the option prefix."""
        prefix = "/opt/tag=paging"
        path = prefix + API
        params = {"itype": "bulk_domain", "limit": 500}
        seen = []
        pages = 0
        while path and pages < 10:
            status, doc = get_json(self.port, path, params)
            self.assertEqual(status, 200)
            self.assertEqual(doc["meta"]["total_count"], BULK_COUNT)
            self.assertEqual(doc["meta"]["offset"], 500 * pages)
            self.assertEqual(doc["meta"]["previous"] is None, pages == 0)
            seen += [o["value"] for o in doc["objects"]]
            path, params = doc["meta"]["next"], None
            if path:
                self.assertTrue(path.startswith(prefix + API + "?"), path)
                self.assertIn("itype=bulk_domain", path)
            pages += 1
        self.assertEqual(pages, 3)
        self.assertEqual(len(seen), BULK_COUNT)
        self.assertEqual(len(set(seen)), BULK_COUNT)
        self.assertEqual([e["tag"] for e in self.log_for("paging")], ["paging"] * 3)

    def test_limits(self):
        """Default limit 20; limit=0 and too-large limits mean 1000."""
        doc = self.get({"itype": "bulk_domain"})[1]
        self.assertEqual((len(doc["objects"]), doc["meta"]["limit"]), (20, 20))
        for limit in (0, 5000):
            doc = self.get({"itype": "bulk_domain", "limit": limit})[1]
            self.assertEqual(len(doc["objects"]), 1000)
            self.assertEqual(doc["meta"]["limit"], 1000)
            self.assertEqual(doc["meta"]["total_count"], BULK_COUNT)
            self.assertTrue(doc["meta"]["next"].endswith("offset=1000"))
        doc = self.get({"itype": "bulk_domain", "limit": 0, "offset": 1000})[1]
        self.assertEqual((len(doc["objects"]), doc["meta"]["next"]), (BULK_COUNT - 1000, None))
        self.assertEqual(self.get({"limit": -1})[0], 400)

    def test_order_by(self):
        """order_by sorts, descending with a minus sign."""
        doc = self.get({"type": "ip", "status": "active", "order_by": "-confidence"})[1]
        confidences = [o["confidence"] for o in doc["objects"]]
        self.assertEqual(confidences, sorted(confidences, reverse=True))
        self.assertEqual(confidences[0], 95)
        doc = self.get({"type": "ip", "order_by": "id", "limit": 3})[1]
        self.assertEqual([o["value"] for o in doc["objects"]],
                         ["198.51.100.1", "198.51.100.2", "198.51.100.3"])

    def test_paths(self):
        """Both API spellings answer; other paths and bad options do not."""
        for path in ("/api/v2/intelligence", "/api/v2/intelligence/",
                     "/a/tag=p/api/v2/intelligence"):
            self.assertEqual(self.get({"value": "198.51.100.1"}, path=path)[0], 200, path)
        for path in ("/api/v2/intel/", "/api/v1/intelligence/", "/", "/api/v2/intelligence/1/"):
            status, _, body = request(self.port, path, headers=AUTH)
            self.assertEqual(status, 404, path)
            self.assertIn("message", json.loads(body))
        for path in ("/colour=red/api/v2/intelligence/", "/latency_ms=soon/api/v2/intelligence/",
                     "/fault=explode/api/v2/intelligence/", "/tag=a,b/api/v2/intelligence/"):
            self.assertEqual(self.get(path=path)[0], 400, path)
        status, _, _ = request(self.port, API, method="POST", body=b"{}", headers=AUTH)
        self.assertEqual(status, 405)

    def test_envelope_matches_recorded_sample(self):
        """A real answer has the sample's envelope and field types."""
        sample = json.loads((SAMPLES / "mocked_ip_response.json").read_text())
        empty = json.loads((SAMPLES / "mocked_empty_response.json").read_text())
        status, doc = self.get({"value": "198.51.100.7", "limit": 1000})
        self.assertEqual(status, 200)
        self.assertEqual(set(doc), set(sample))
        for meta in (sample["meta"], empty["meta"]):
            for key, value in meta.items():
                self.assertIn(key, doc["meta"])
                self.assertIs(type(doc["meta"][key]), type(value), key)
        ours = doc["objects"][0]
        theirs = sample["objects"][0]
        fixture_obj = next(i for i in self.items if i["value"] == "198.51.100.7")
        self.assertEqual(ours, fixture_obj)
        self.assertGreater(ours["update_id"], 2 ** 32)
        compared = 0
        for field in fixture_obj:
            if field in theirs and theirs[field] is not None:
                self.assertIs(type(ours[field]), type(theirs[field]), field)
                compared += 1
        self.assertGreaterEqual(compared, 25)
        for key in ("total_count", "limit", "offset", "took"):
            self.assertIsInstance(doc["meta"][key], int)

    # -- connections --------------------------------------------------------------

    def test_keep_alive(self):
        """Many requests on one connection count as one connection, and are quick."""
        self.assertEqual(self.admin("reset", "POST")[0], 200)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            started = time.monotonic()
            for i in range(50):
                status, doc = get_json(self.port, API, {"value": "198.51.100.%d" % (i % 20 + 1)},
                                       conn=conn)
                self.assertEqual((status, doc["meta"]["total_count"]), (200, 1))
            elapsed = time.monotonic() - started
            status, stats = get_json(self.port, "/__admin/stats", headers={}, conn=conn)
        finally:
            conn.close()
        self.assertEqual(stats["connections"], 1)
        self.assertEqual(stats["requests"], 50)
        # 40 ms per request would mean headers and body left separately.
        self.assertLess(elapsed, 1.5)
        log = self.admin("log")[1]
        self.assertEqual({e["connection_id"] for e in log}, {1})
        self.assertEqual(len(log), 50)

    def test_admin_reset_and_stats(self):
        """reset clears the log and counters; stats counts tags."""
        self.admin("reset", "POST")
        for _ in range(3):
            self.get({"value": "198.51.100.1"}, path="/tag=counted/api/v2/intelligence/")
        stats = self.admin("stats")[1]
        self.assertEqual(stats["requests"], 3)
        self.assertEqual(stats["by_tag"], {"counted": 3})
        self.assertEqual(stats["connections"], 4)  # three requests and this one
        self.admin("reset", "POST")
        stats = self.admin("stats")[1]
        self.assertEqual((stats["requests"], stats["by_tag"]), (0, {}))
        self.assertEqual(self.admin("log")[1], [])
        self.assertEqual(self.admin("nothing")[0], 404)

    # -- faults ---------------------------------------------------------------------

    def fault_path(self, options):
        """Return an API path carrying fault options."""
        return "/opt/%s%s" % (options, API)

    def test_fault_status_codes(self):
        """status=CODE answers that code with a JSON error body."""
        for code in (401, 403, 404, 429, 500, 502, 503):
            status, headers, body = request(self.port, self.fault_path("status=%d" % code),
                                            {"value": "198.51.100.1"}, AUTH)
            self.assertEqual(status, code)
            doc = json.loads(body)
            self.assertTrue(doc.get("message") and doc.get("error"))
            self.assertEqual(headers.get("retry-after"), "1" if code == 429 else None)
        _, headers, _ = request(self.port, self.fault_path("status=429,retry_after=7"),
                                headers=AUTH)
        self.assertEqual(headers["retry-after"], "7")
        _, headers, _ = request(self.port, self.fault_path("status=503,retry_after=3"),
                                headers=AUTH)
        self.assertEqual(headers["retry-after"], "3")

    def test_fault_fail_first(self):
        """fail_first=N fails N requests per tag, then answers normally."""
        path = self.fault_path("tag=retry-a,status=503,fail_first=2")
        statuses = [request(self.port, path, {"value": "198.51.100.1"}, AUTH)[0]
                    for _ in range(4)]
        self.assertEqual(statuses, [503, 503, 200, 200])
        # Another tag has its own count.
        path = self.fault_path("tag=retry-b,status=429,fail_first=1")
        statuses = [request(self.port, path, headers=AUTH)[0] for _ in range(2)]
        self.assertEqual(statuses, [429, 200])
        # Without a tag the option set is the key.
        path = self.fault_path("status=500,fail_first=1,latency_ms=1")
        statuses = [request(self.port, path, headers=AUTH)[0] for _ in range(2)]
        self.assertEqual(statuses, [500, 200])
        # fail_first also applies to faults.
        path = self.fault_path("tag=retry-c,fault=notjson,fail_first=1")
        bodies = [request(self.port, path, headers=AUTH)[2] for _ in range(2)]
        self.assertEqual(bodies[0], b"this is not json")
        self.assertIn("meta", json.loads(bodies[1]))
        entries = self.log_for("retry-a")
        self.assertEqual([e["status"] for e in entries], [503, 503, 200, 200])
        self.assertEqual(entries[0]["prefix_options"]["fail_first"], "2")

    def test_fault_latency_and_tag(self):
        """latency_ms delays the answer; tag lands in the log."""
        started = time.monotonic()
        status, doc = self.get({"value": "198.51.100.1"},
                               path=self.fault_path("tag=slow,latency_ms=200"))
        self.assertGreaterEqual(time.monotonic() - started, 0.19)
        self.assertEqual(values_of(doc), {"198.51.100.1"})
        entry = self.log_for("slow")[-1]
        self.assertEqual(entry["prefix_options"], {"tag": "slow", "latency_ms": "200"})
        self.assertEqual(entry["path"], "/opt/tag=slow,latency_ms=200" + API)

    def test_fault_bodies(self):
        """notjson, html, objects_null, empty, wrong_value and bad_fields."""
        one = {"value": "198.51.100.1"}
        status, headers, body = request(self.port, self.fault_path("fault=notjson"), one, AUTH)
        self.assertEqual((status, body), (200, b"this is not json"))
        status, headers, body = request(self.port, self.fault_path("fault=html"), one, AUTH)
        self.assertEqual(status, 502)
        self.assertTrue(headers["content-type"].startswith("text/html"))
        self.assertTrue(body.startswith(b"<!DOCTYPE html>"))

        status, doc = self.get(one, path=self.fault_path("fault=objects_null"))
        self.assertEqual(status, 200)
        self.assertIsNone(doc["objects"])
        status, doc = self.get(one, path=self.fault_path("fault=empty"))
        self.assertEqual((doc["objects"], doc["meta"]["total_count"]), ([], 0))

        status, doc = self.get(one, path=self.fault_path("fault=wrong_value"))
        values = [o["value"] for o in doc["objects"]]
        self.assertEqual(len(values), 2)
        self.assertIn("198.51.100.1", values)
        self.assertEqual(len([v for v in values if v != "198.51.100.1"]), 1)
        doc = self.get({"q": 'value="bad.example.com"'},
                       path=self.fault_path("fault=wrong_value"))[1]
        self.assertNotIn("bad.example.com", [o["value"] for o in doc["objects"][1:]])

        status, doc = self.get(one, path=self.fault_path("fault=bad_fields"))
        objects = doc["objects"]
        self.assertTrue(any("value" not in o for o in objects))
        confidences = [o.get("confidence") for o in objects]
        for bad in ("high", 250, -5):
            self.assertIn(bad, confidences)
        self.assertTrue(any("status" in o and o["status"] is None for o in objects))
        self.assertTrue(all(o.get("value", "198.51.100.1") == "198.51.100.1" for o in objects))

    def test_fault_large_and_deep(self):
        """oversized pads valid JSON to size_kb; deep_nesting nests arrays."""
        one = {"value": "198.51.100.1"}
        status, _, body = request(self.port, self.fault_path("fault=oversized,size_kb=64"),
                                  one, AUTH)
        self.assertEqual(status, 200)
        self.assertLess(abs(len(body) - 64 * 1024), 64)
        self.assertEqual(values_of(json.loads(body)), {"198.51.100.1"})
        status, _, body = request(self.port, self.fault_path("fault=oversized"), one, AUTH)
        self.assertLess(abs(len(body) - 4096 * 1024), 64)
        json.loads(body)

        status, _, body = request(self.port, self.fault_path("fault=deep_nesting"), one, AUTH)
        self.assertEqual(status, 200)
        self.assertIn(b"[" * 10000 + b"]" * 10000, body)
        self.assertNotIn(b"[" * 10001, body)
        doc = json.loads(request(self.port, self.fault_path("fault=deep_nesting,depth=40"),
                                 one, AUTH)[2])
        nested = doc["objects"][-1]["nested"]
        depth = 0
        while isinstance(nested, list) and depth < 100:
            nested = nested[0] if nested else None
            depth += 1
        self.assertEqual(depth, 40)
        self.assertEqual(doc["objects"][0]["value"], "198.51.100.1")

    def test_fault_hang(self):
        """hang reads the request and never answers."""
        path = self.fault_path("tag=hung,fault=hang")
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
            s.settimeout(0.5)
            with self.assertRaises(socket.timeout):
                s.recv(1)
        entry = self.log_for("hung")[-1]
        self.assertEqual((entry["status"], entry["fault"]), (None, "hang"))

    def test_fault_close_mid_body(self):
        """close_mid_body promises more than it sends, then closes."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", self.fault_path("fault=close_mid_body") + "?value=198.51.100.1",
                         headers=AUTH)
            response = conn.getresponse()
            length = int(response.getheader("Content-Length"))
            with self.assertRaises(http.client.IncompleteRead) as caught:
                response.read()
            self.assertLess(len(caught.exception.partial), length)
        finally:
            conn.close()

    def test_fault_trickle(self):
        """trickle sends a correct answer one byte at a time."""
        started = time.monotonic()
        status, doc = self.get({"value": "198.51.100.1", "limit": 1},
                               path=self.fault_path("fault=trickle,trickle_ms=1"))
        elapsed = time.monotonic() - started
        self.assertEqual(values_of(doc), {"198.51.100.1"})
        self.assertGreater(elapsed, 0.5)  # about 1,700 bytes, a pause after each

    def test_control_file_and_admin_control(self):
        """Global options come from the control file or the admin POST; URL wins."""
        one = {"value": "198.51.100.1"}
        try:
            write_atomic(self.control, json.dumps({"status": 503, "tag": "global"}))
            self.assertEqual(self.get(one)[0], 503)
            self.assertEqual(self.log_for("global")[-1]["status"], 503)
            self.assertEqual(self.get(one, path=self.fault_path("status=200"))[0], 200)
            write_atomic(self.control, json.dumps({"fault": "notjson"}))
            self.assertEqual(request(self.port, API, one, AUTH)[2], b"this is not json")
            self.assertEqual(self.get(one, path=self.fault_path("fault=none"))[0], 200)
            write_atomic(self.control, "")
            self.assertEqual(self.get(one)[0], 200)
            write_atomic(self.control, json.dumps({"status": 500}))
            self.assertEqual(self.get(one)[0], 500)
            os.unlink(self.control)
            self.assertEqual(self.get(one)[0], 200)

            self.assertEqual(self.admin("control", "POST", {"fault": "empty"})[0], 200)
            self.assertEqual(self.admin("control")[1], {"fault": "empty"})
            self.assertEqual(self.get(one)[1]["objects"], [])
            self.assertEqual(self.admin("control", "POST", {"colour": "red"})[0], 400)
            self.assertEqual(self.admin("control", "POST", {})[0], 200)
            self.assertEqual(values_of(self.get(one)[1]), {"198.51.100.1"})
        finally:
            if self.control.exists():
                os.unlink(self.control)
            self.admin("control", "POST", {})


class LargeStoreTest(unittest.TestCase):
    """Speed with 30,000 indicators, clean SIGTERM, and TLS."""

    def test_lookups_stay_fast_and_sigterm_is_clean(self):
        """Fifty values per request stay fast with 30,000 indicators loaded."""
        tmp = tempfile.mkdtemp(prefix="tssim-big-")
        try:
            data = Path(tmp) / "big.ndjson"
            items = [{"value": "n%05d.example.com" % i, "type": "domain", "status": "active",
                      "confidence": i % 101, "id": 6000000000 + i, "itype": "mal_domain"}
                     for i in range(30000)]
            write_ndjson(data, items)
            sim = SimProcess(tmp, "big", [data])
            try:
                asked = ["N%05d.EXAMPLE.COM" % (i * 577) for i in range(50)]
                q = " OR ".join('value="%s"' % v for v in asked)
                conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
                started = time.monotonic()
                for _ in range(10):
                    status, doc = get_json(sim.port, API,
                                           {"q": "(%s) AND type=domain" % q, "limit": 1000},
                                           conn=conn)
                    self.assertEqual(doc["meta"]["total_count"], 50)
                    status, doc = get_json(sim.port, API, {"value": ",".join(asked)}, conn=conn)
                    self.assertEqual(doc["meta"]["total_count"], 50)
                elapsed = time.monotonic() - started
                conn.close()
                self.assertLess(elapsed / 20, 0.05)
            finally:
                code = sim.stop()
            self.assertEqual(code, 0)
            self.assertFalse(sim.port_file.exists())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @unittest.skipUnless(shutil.which("openssl"), "openssl command not available")
    def test_tls(self):
        """With a certificate the simulator serves HTTPS."""
        import ssl
        tmp = tempfile.mkdtemp(prefix="tssim-tls-")
        try:
            cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            made = subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                 "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                 "-keyout", str(key), "-out", str(cert)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
            if made.returncode != 0:
                self.skipTest("openssl could not make a certificate: %s" % made.stderr)
            data = Path(tmp) / "tls.ndjson"
            write_ndjson(data, [make_indicator(1, "198.51.100.1", "ip")])
            sim = SimProcess(tmp, "tls", [data], ["--tls-cert", str(cert), "--tls-key", str(key)])
            try:
                context = ssl.create_default_context(cafile=str(cert))
                conn = http.client.HTTPSConnection("127.0.0.1", sim.port, timeout=10,
                                                   context=context)
                for _ in range(3):
                    status, doc = get_json(sim.port, API, {"value": "198.51.100.1"}, conn=conn)
                    self.assertEqual((status, doc["meta"]["total_count"]), (200, 1))
                status, stats = get_json(sim.port, "/__admin/stats", headers={}, conn=conn)
                conn.close()
                self.assertEqual(stats["connections"], 1)
            finally:
                self.assertEqual(sim.stop(), 0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
