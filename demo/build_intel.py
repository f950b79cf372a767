#!/usr/bin/env python3
"""Build the demo indicator set for anomali_ts.

Reads public threat lists and the two Zeek sample logs, and writes
ThreatStream v2-shaped indicator objects, one JSON object per line, to
demo/intel/indicators.ndjson, plus demo/intel/expected-traffic-hits.json,
the verdict a demo report must show for each observable drawn from the
sample traffic.

The output depends only on the input files: every choice that is not
copied from a source record is taken from a SHA-256 hash of a fixed seed,
the purpose of the choice, the source and the value (see H below), and no
date is read from the clock.  Running the script twice gives byte-identical
files.  The rules are written down in demo/intel/README.md.

Python 3 standard library only.

    python3 demo/build_intel.py [--sources DIR] [--events DIR] [--out DIR]
"""

import argparse
import collections
import datetime
import gzip
import hashlib
import ipaddress
import json
import os
import re
import sys

SEED = "anomali_ts-demo-v1"

# Reference date of the whole set: the time the newest real list
# (URLhaus, via urlhaus-filter) was updated.  Used instead of "now".
AS_OF = datetime.datetime(2025, 7, 19, 12, 11, 28, tzinfo=datetime.timezone.utc)
NEVER = "9999-12-31T00:00:00.000Z"
UTC = datetime.timezone.utc

# One entry per input list.  conf is the confidence range (inclusive) for
# lists that carry no confidence of their own; window is the span in which
# created_ts is placed when the list carries no first-seen date.
SOURCES = {
    "feodo": {
        "name": "abuse.ch Feodo Tracker via firehol",
        "conf": (60, 100),
        "window": (datetime.datetime(2015, 1, 1, tzinfo=UTC),
                   datetime.datetime(2015, 10, 23, 13, 45, 29, tzinfo=UTC)),
    },
    "urlhaus": {
        "name": "abuse.ch URLhaus via urlhaus-filter",
        "conf": (25, 100),
        "window": (AS_OF - datetime.timedelta(days=365), AS_OF),
    },
    "malwarebazaar": {
        "name": "abuse.ch MalwareBazaar via elastic/integrations tests",
        "conf": (70, 100),
    },
    "threatfox": {
        "name": "abuse.ch ThreatFox via elastic/integrations tests",
    },
    "demo": {
        "name": "anomali_ts demo (synthetic)",
        # Before the first event of the capture (2018-03-24T17:15:20Z).
        "window": (datetime.datetime(2018, 1, 1, tzinfo=UTC),
                   datetime.datetime(2018, 3, 24, 17, 0, 0, tzinfo=UTC)),
    },
}

SEVERITIES = ["low", "medium", "high", "very-high"]
SEVERITY_WEIGHT = {"low": 25, "medium": 50, "high": 75, "very-high": 100}
TLPS = [None, "white", "green", "amber"]

# Observables drawn from the sample traffic, with invented verdicts so that
# every verdict path shows up in a demo report.  Each entry: value, type,
# subtype, why it is here, and its indicators as
# (itype, status, confidence, severity).  README.md explains each choice.
TRAFFIC_SET = [
    # Malicious at threshold 50: at least one active indicator >= 50.
    ("cortanaupdate.stream", "domain", None,
     "name imitating a Microsoft service on a non-Microsoft TLD (TLS SNI only)",
     [("c2_domain", "active", 95, "very-high")]),
    ("198.199.95.203", "ip", None,
     "the hosting address cortanaupdate.stream was reached at; active + inactive pair",
     [("c2_ip", "active", 90, "high"), ("scan_ip", "inactive", 70, "medium")]),
    ("snozberry.oompa.loompa", "domain", None,
     "competition-internal (fictional) zone; frequent in DNS queries",
     [("mal_domain", "active", 85, "high")]),
    ("store.oompa.loompa", "domain", None,
     "competition-internal zone; two active indicators (2 positive hits)",
     [("phish_domain", "active", 75, "high"), ("mal_domain", "active", 60, "medium")]),
    ("sweettarts.oompa.loompa", "domain", None,
     "competition-internal zone; active + inactive pair",
     [("mal_domain", "active", 65, "medium"), ("c2_domain", "inactive", 95, "very-high")]),
    ("titan.oompa.loompa", "domain", None,
     "competition-internal zone; confidence 100",
     [("mal_domain", "active", 100, "very-high")]),
    ("goldenticket.oompa.loompa", "domain", None,
     "competition-internal zone; rare (tens of events)",
     [("c2_domain", "active", 70, "high")]),
    ("wpad.wrccdc.black", "domain", None,
     "WPAD look-up; confidence exactly 50 (malicious at threshold 50, not at 51)",
     [("mal_domain", "active", 50, "medium")]),
    ("52.6.20.193", "ip", None,
     "cloud address seen both in DNS answers and as a TLS server",
     [("bot_ip", "active", 80, "high")]),
    ("28a10972f3c9523536708ef3cc8c32a70bcadc03d21a43a806c28fb14588c916", "md5", "SHA256",
     "certificate SHA-256 of one internal TLS server (11th most frequent)",
     [("mal_md5", "active", 90, "high")]),
    # Active but below threshold 50: not malicious.
    ("videosearch.ubuntu.com", "domain", None,
     "most frequent domain outside the competition's own names; low confidence",
     [("mal_domain", "active", 30, "low")]),
    ("172.217.11.78", "ip", None,
     "second most frequent public IPv4; low confidence",
     [("mal_ip", "active", 20, "low")]),
    ("cdn.whatismyipaddress.com", "domain", None,
     "public-IP lookup service, typical of low-confidence feeds",
     [("mal_domain", "active", 45, "medium")]),
    ("2607:f8b0:4007:802::200e", "ipv6", None,
     "second most frequent public IPv6; low confidence",
     [("mal_ipv6", "active", 15, "low")]),
    ("b2dafbcdbc75210672f137f27ce882ccb799887631655d4f11191d5a678e44fe", "md5", "SHA256",
     "most frequent certificate SHA-256; confidence 49 (threshold - 1)",
     [("mal_md5", "active", 49, "medium")]),
    # Inactive only: not malicious.
    ("pastebin.com", "domain", None,
     "paste site; expired indicator",
     [("mal_domain", "inactive", 90, "high")]),
    ("151.101.196.133", "ip", None,
     "shared CDN address (5th most frequent public IPv4); expired indicator",
     [("mal_ip", "inactive", 80, "medium")]),
    ("8b64b08097c05ac62a28d278d7627b7f230b78d8da722154d0efb54013623592", "md5", "SHA256",
     "second most frequent certificate SHA-256; expired indicator",
     [("mal_md5", "inactive", 85, "high")]),
    # False positives: not malicious.
    ("ise.wrccdc.org", "domain", None,
     "most frequent domain (competition scoring service); marked false positive",
     [("mal_domain", "falsepos", 90, "high")]),
    ("134.71.3.16", "ip", None,
     "most frequent public IPv4 (address of ise.wrccdc.org); marked false positive",
     [("scan_ip", "falsepos", 95, "medium")]),
    ("2620:df:8000:1601:0:1:3:16", "ipv6", None,
     "most frequent public IPv6 (AAAA of ise.wrccdc.org); marked false positive",
     [("mal_ipv6", "falsepos", 80, "medium")]),
    # Two indicators, neither a positive hit: not malicious.
    ("arena1.wrccdc.cpp.edu", "domain", None,
     "inactive at 95 + active at 20: high confidence alone is not enough",
     [("mal_domain", "inactive", 95, "high"), ("mal_domain", "active", 20, "low")]),
]

THRESHOLD = 50

# Fields a demo enrichment step reads on each log (ioc_fields).
DNS_FIELDS = ["id.orig_h", "id.resp_h", "query", "answers"]
SSL_FIELDS = ["id.orig_h", "id.resp_h", "server_name", "cert_chain_fps"]

IPV4_RE = re.compile(r"^(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
                     r"(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$")
HEX_RE = re.compile(r"^(?:[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64})$")
# Host name as the product reads it: two or more labels of 1..63 letters,
# digits, hyphens or underscores, a top-level label that is not all digits.
HOST_RE = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9_-]{1,63}\.)+(?![0-9]+$)[a-z0-9_-]{1,63}$")
HASH_SUBTYPE = {32: "MD5", 40: "SHA1", 64: "SHA256"}


def H(*parts):
    """Deterministic integer for one choice: SHA-256 of seed|parts."""
    text = "|".join((SEED,) + tuple(str(p) for p in parts))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest(), "big")


def iso(ts):
    """ThreatStream timestamp: ISO 8601, milliseconds, Z."""
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ts.microsecond // 1000)


def parse_source_time(text):
    """Read the first-seen formats used by abuse.ch records."""
    text = text.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S UTC", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            pass
    raise ValueError("unknown time format: %r" % text)


def classify(raw):
    """Classify one event value the way the product does; (type, value) or None."""
    if not isinstance(raw, str):
        return None
    s = raw.strip()
    if IPV4_RE.match(s):
        return ("ip", s)
    if ":" in s:
        try:
            return ("ipv6", ipaddress.IPv6Address(s).compressed)
        except ValueError:
            return None
    low = s.lower()
    if HEX_RE.match(low):
        return ("md5", low)
    if low.endswith("."):
        low = low[:-1]
    if HOST_RE.match(low):
        return ("domain", low)
    return None


def is_public(kind, value):
    """True unless an address is private, reserved or otherwise not global."""
    if kind not in ("ip", "ipv6"):
        return True
    addr = ipaddress.ip_address(value)
    return addr.is_global and not addr.is_multicast


def read_list(path):
    """Non-comment, non-blank lines of a plain list file."""
    with open(path, encoding="utf-8") as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]


def read_ndjson(path):
    """One JSON object per line (gzip when the name ends in .gz)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(ln) for ln in f if ln.strip()]


def tag_list(names):
    """ThreatStream tags from names: short ids derived from the name."""
    out = []
    seen = set()
    for name in names:
        if not name or name.lower() in seen:
            continue
        seen.add(name.lower())
        n = H("tag", name) % (36 ** 3)
        tid = ""
        for _ in range(3):
            tid = "0123456789abcdefghijklmnopqrstuvwxyz"[n % 36] + tid
            n //= 36
        out.append({"id": tid, "name": name})
    return out or None


class Builder:
    """Collects indicators and hands out unique ids."""

    def __init__(self):
        self.items = []
        self.ids = set()
        self.update_ids = set()

    def unique(self, used, n):
        """First free integer at or after n."""
        while n in used:
            n += 1
        used.add(n)
        return n

    def dates(self, src, value, status, created=None):
        """created, modified and expiration timestamps for one indicator."""
        if created is None:
            start, end = SOURCES[src]["window"]
            span = int((end - start).total_seconds())
            created = start + datetime.timedelta(
                seconds=H("created", src, value) % span,
                milliseconds=H("created_ms", src, value) % 1000)
            end_mod = end
        else:
            end_mod = created + datetime.timedelta(days=30)   # source first_seen kept exact
        room = max(1, int((end_mod - created).total_seconds()))
        modified = created + datetime.timedelta(
            seconds=H("modified", src, value) % room,
            milliseconds=H("modified_ms", src, value) % 1000)
        if status == "active":
            if H("expires", src, value) % 3 == 0:
                expiration = NEVER
            else:
                days = 30 + H("expiry_days", src, value) % 700
                expiration = iso(max(modified, AS_OF) + datetime.timedelta(days=days))
        elif status == "inactive":
            back = min(1 + H("expired_before", src, value) % 3600,
                       int((modified - created).total_seconds()))
            expiration = iso(modified - datetime.timedelta(seconds=back))
        else:
            if H("expires", src, value) % 2 == 0:
                expiration = NEVER
            else:
                expiration = iso(created + datetime.timedelta(days=90))
        return created, modified, expiration

    def add(self, src, value, kind, subtype, itype, status, confidence,
            severity=None, tags=None, created=None, key=""):
        """Append one indicator; unset choices follow the documented rules."""
        salt = value + key
        if severity is None:
            level = H("severity", src, salt) % 4
            if itype.startswith(("c2_", "apt_")):
                level = min(level + 1, 3)
            severity = SEVERITIES[level]
        created, modified, expiration = self.dates(src, salt, status, created)
        ind_id = self.unique(self.ids, 2 ** 32 + H("id", src, salt, itype) % 10 ** 10)
        # update_id grows with modified_ts, as ThreatStream's change counter does.
        update_id = self.unique(self.update_ids, 2 ** 33 + int(modified.timestamp()))
        obj = collections.OrderedDict()
        obj["id"] = ind_id
        obj["update_id"] = update_id
        obj["value"] = value
        obj["type"] = kind
        obj["subtype"] = subtype
        obj["itype"] = itype
        obj["status"] = status
        obj["confidence"] = confidence
        obj["threatscore"] = confidence * SEVERITY_WEIGHT[severity] // 100
        obj["meta"] = {"severity": severity}
        obj["source"] = SOURCES[src]["name"]
        obj["tags"] = tags
        obj["tlp"] = TLPS[H("tlp", src, salt) % 4]
        obj["created_ts"] = iso(created)
        obj["modified_ts"] = iso(modified)
        obj["expiration_ts"] = expiration
        obj["resource_uri"] = "/api/v2/intelligence/%d/" % ind_id
        obj["country"] = None
        obj["org"] = ""
        obj["asn"] = ""
        self.items.append((src, obj))


def status_for(src, value):
    """85 % active, 10 % inactive, 5 % falsepos, by hash."""
    r = H("status", src, value) % 100
    if r < 85:
        return "active"
    if r < 95:
        return "inactive"
    return "falsepos"


def confidence_for(src, value):
    """Confidence in the source's range, by hash."""
    lo, hi = SOURCES[src]["conf"]
    return lo + H("confidence", src, value) % (hi - lo + 1)


def build_lists(b, intel):
    """Indicators from the public lists."""
    for ip in read_list(os.path.join(intel, "feodo-ips.txt")):
        b.add("feodo", ip, "ip", None, "c2_ip", status_for("feodo", ip),
              confidence_for("feodo", ip), tags=tag_list(["Feodo"]))

    for ip in read_list(os.path.join(intel, "urlhaus-ips.txt")):
        if H("keep", "urlhaus", ip) % 5 == 0:
            continue        # one in five left out to keep the file near 10 MB
        itype = "bot_ip" if H("itype", "urlhaus", ip) % 4 == 0 else "mal_ip"
        tags = tag_list(["urlhaus"]) if H("tags", "urlhaus", ip) % 4 == 0 else None
        b.add("urlhaus", ip, "ip", None, itype, status_for("urlhaus", ip),
              confidence_for("urlhaus", ip), tags=tags)

    for host in read_list(os.path.join(intel, "urlhaus-domains.txt")):
        host = host.lower().rstrip(".")
        itype = "phish_domain" if H("itype", "urlhaus", host) % 5 == 0 else "mal_domain"
        tags = tag_list(["urlhaus"]) if H("tags", "urlhaus", host) % 4 == 0 else None
        b.add("urlhaus", host, "domain", None, itype, status_for("urlhaus", host),
              confidence_for("urlhaus", host), tags=tags)

    for rec in read_ndjson(os.path.join(intel, "malwarebazaar-hashes.ndjson")):
        names = list(rec.get("tags") or [])
        if rec.get("signature"):
            names.append(rec["signature"])
        itype = "apt_md5" if "apt" in [t.lower() for t in names] else "mal_md5"
        created = parse_source_time(rec["first_seen"])
        for field in ("md5_hash", "sha1_hash", "sha256_hash"):
            h = rec[field].lower()
            b.add("malwarebazaar", h, "md5", HASH_SUBTYPE[len(h)], itype,
                  status_for("malwarebazaar", h), confidence_for("malwarebazaar", h),
                  tags=tag_list(names), created=created)

    seen = set()
    for rec in read_ndjson(os.path.join(intel, "threatfox.ndjson")):
        kind = rec["ioc_type"]
        if kind not in ("domain", "md5_hash", "sha1_hash", "sha256_hash"):
            continue        # ip:port (mostly test addresses) and url: see README
        value = rec["ioc"].strip().lower()
        if kind == "domain":
            value = value.rstrip(".")
        key = (str(rec["id"]), value)
        if key in seen or rec.get("confidence_level") is None:
            continue        # repeated record in the source file
        seen.add(key)
        names = list(rec.get("tags") or []) + [rec.get("malware_printable")]
        created = parse_source_time(rec["first_seen"])
        if kind == "domain":
            b.add("threatfox", value, "domain", None, "c2_domain",
                  status_for("threatfox", value), rec["confidence_level"],
                  tags=tag_list(names), created=created)
        else:
            b.add("threatfox", value, "md5", HASH_SUBTYPE[len(value)], "mal_md5",
                  status_for("threatfox", value), rec["confidence_level"],
                  tags=tag_list(names), created=created)


def build_traffic(b):
    """Indicators for the observables drawn from the sample traffic."""
    for value, kind, subtype, _why, indicators in TRAFFIC_SET:
        for n, (itype, status, conf, sev) in enumerate(indicators):
            b.add("demo", value, kind, subtype, itype, status, conf, severity=sev,
                  tags=tag_list(["anomali_ts-demo"]), key="#%d" % n)


def event_observables(event, fields):
    """Map (type, value) -> set of fields, for the configured fields of one event."""
    out = collections.defaultdict(set)
    for field in fields:
        raw = event.get(field)
        for item in (raw if isinstance(raw, list) else [raw]):
            obs = classify(item)
            if obs:
                out[obs].add(field)
    return out


def verdict(indicators, threshold=THRESHOLD):
    """Positive hits (active, confidence >= threshold) and the verdict."""
    hits = sum(1 for i in indicators
               if i["status"] == "active" and i["confidence"] >= threshold)
    return hits, ("malicious" if hits >= 1 else "not_malicious")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sources", default=os.path.join(here, "intel", "sources"),
                    help="directory with the input IOC lists (default: demo/intel/sources)")
    ap.add_argument("--events", default=os.path.join(here, "events"),
                    help="directory with zeek-dns.ndjson.gz and zeek-ssl.ndjson.gz")
    ap.add_argument("--out", default=os.path.join(here, "intel"),
                    help="output directory (default: demo/intel)")
    args = ap.parse_args()

    b = Builder()
    build_lists(b, args.sources)
    build_traffic(b)

    by_value = collections.defaultdict(list)
    for _src, obj in b.items:
        by_value[(obj["type"], obj["value"])].append(obj)

    logs = {
        "dns": (read_ndjson(os.path.join(args.events, "zeek-dns.ndjson.gz")), DNS_FIELDS),
        "ssl": (read_ndjson(os.path.join(args.events, "zeek-ssl.ndjson.gz")), SSL_FIELDS),
    }

    # Per observable: events that contain it; per log: events that touch a
    # malicious observable.  Observables in non-public ranges are skipped by
    # the product, so they never match.
    traffic_keys = {(kind, value) for value, kind, _s, _w, _i in TRAFFIC_SET}
    per_obs = collections.defaultdict(lambda: {"dns": 0, "ssl": 0})
    per_field = collections.defaultdict(collections.Counter)
    listed_seen = collections.Counter()
    event_counts = {}
    for name, (events, fields) in logs.items():
        mal = touched = 0
        for ev in events:
            obs = {o: f for o, f in event_observables(ev, fields).items()
                   if is_public(*o)}
            matched = sorted(o for o in obs if o in by_value)
            for o in matched:
                if o in traffic_keys:
                    per_obs[o][name] += 1
                    for field in obs[o]:
                        per_field[o]["%s:%s" % (name, field)] += 1
                else:
                    listed_seen[o] += 1
            if matched:
                touched += 1
            if any(verdict(by_value[o])[1] == "malicious" for o in matched):
                mal += 1
        event_counts[name] = {"events": len(events), "with_indicator": touched,
                              "malicious": mal}

    expected = []
    for value, kind, subtype, why, _ind in TRAFFIC_SET:
        key = (kind, value)
        if not is_public(kind, value):
            sys.exit("traffic observable %s is not public" % value)
        if per_obs[key]["dns"] + per_obs[key]["ssl"] == 0:
            sys.exit("traffic observable %s does not occur in the events" % value)
        hits, result = verdict(by_value[key])
        expected.append(collections.OrderedDict([
            ("value", value),
            ("type", kind),
            ("subtype", subtype),
            ("expected_verdict_at_threshold_50", result),
            ("positive_hits_at_threshold_50", hits),
            ("indicators", [collections.OrderedDict(
                [("itype", i["itype"]), ("status", i["status"]),
                 ("confidence", i["confidence"])]) for i in by_value[key]]),
            ("dns_events", per_obs[key]["dns"]),
            ("ssl_events", per_obs[key]["ssl"]),
            ("events_by_field", collections.OrderedDict(sorted(per_field[key].items()))),
            ("why", why),
        ]))
    if listed_seen:
        sys.exit("list indicators occur in the traffic: %s" % sorted(listed_seen))

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "indicators.ndjson"), "w",
              encoding="utf-8", newline="\n") as f:
        for _src, obj in b.items:
            f.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=True) + "\n")
    with open(os.path.join(args.out, "expected-traffic-hits.json"), "w",
              encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(expected, indent=2, ensure_ascii=True) + "\n")

    # Summary on stdout.
    objs = [o for _s, o in b.items]
    print("indicators: %d" % len(objs))
    for label, keyf in (("source", lambda o: o["source"]),
                        ("type", lambda o: o["type"] + ("/" + o["subtype"] if o["subtype"] else "")),
                        ("status", lambda o: o["status"]),
                        ("itype", lambda o: o["itype"]),
                        ("severity", lambda o: o["meta"]["severity"])):
        c = collections.Counter(keyf(o) for o in objs)
        print("by %s: %s" % (label, ", ".join("%s %d" % kv for kv in sorted(c.items()))))
    c = collections.Counter((o["type"], o["status"]) for o in objs)
    print("type x status: %s" % ", ".join("%s/%s %d" % (k[0], k[1], v) for k, v in sorted(c.items())))
    conf_lt50 = sum(1 for o in objs if o["confidence"] < THRESHOLD)
    pos = sum(1 for o in objs if o["status"] == "active" and o["confidence"] >= THRESHOLD)
    print("confidence < 50: %d; positive hits at 50 (active and >= 50): %d" % (conf_lt50, pos))
    for name, cnt in event_counts.items():
        print("%s events: %d, touching an indicator: %d, touching a malicious observable: %d"
              % (name, cnt["events"], cnt["with_indicator"], cnt["malicious"]))
    print("traffic-drawn observables:")
    for e in expected:
        print("  %-66s %-6s %-13s hits=%d dns=%d ssl=%d" % (
            e["value"], e["type"], e["expected_verdict_at_threshold_50"],
            e["positive_hits_at_threshold_50"], e["dns_events"], e["ssl_events"]))


if __name__ == "__main__":
    main()
