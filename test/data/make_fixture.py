#!/usr/bin/env python3
"""Write the regression suite's indicators, one ThreatStream object per line.

Every value is in a documentation range (198.51.100.0/24, 203.0.113.0/24,
2001:db8::/32, example.com/net/org) or a well-known test hash, and each
exists to exercise one verdict rule; the comment next to each says which.
Deterministic: running it twice gives the same bytes.

    python3 test/data/make_fixture.py > indicators.ndjson
"""
import json
import sys

BASE_ID = 5_000_000_000  # ids beyond 32 bits, as the real API returns


def indicator(n, value, itype, status, confidence, severity="high",
              type_=None, subtype=None):
    """One indicator object in the API's v2 shape."""
    if type_ is None:
        type_ = itype.rsplit("_", 1)[1]
        type_ = {"ip": "ip", "ipv6": "ipv6", "domain": "domain", "md5": "md5"}.get(type_, type_)
    return {
        "id": BASE_ID + n,
        "update_id": BASE_ID * 2 + n,
        "value": value,
        "type": type_,
        "subtype": subtype,
        "itype": itype,
        "status": status,
        "confidence": confidence,
        "threatscore": confidence,
        "meta": {"severity": severity, "detail2": "regression fixture"},
        "source": "anomali_ts regression fixture",
        "tags": None,
        "tlp": None,
        "country": None,
        "org": "",
        "asn": "",
        "created_ts": "2024-01-01T00:00:00.000Z",
        "modified_ts": "2024-01-02T00:00:00.000Z",
        "expiration_ts": "9999-12-31T00:00:00.000Z",
        "resource_uri": "/api/v2/intelligence/%d/" % (BASE_ID + n),
    }


def rows():
    """The fixture, in a fixed order."""
    n = iter(range(1, 100000))
    # Verdict at the threshold: 90 malicious; 50 malicious at 50 (not at 51);
    # 49 not malicious at 50.
    yield indicator(next(n), "198.51.100.7", "c2_ip", "active", 90, "very-high")
    yield indicator(next(n), "198.51.100.8", "mal_ip", "active", 50, "medium")
    yield indicator(next(n), "198.51.100.9", "mal_ip", "active", 49, "low")
    # Inactive at 95 plus active at 20: never a positive hit at 80.
    yield indicator(next(n), "198.51.100.10", "mal_ip", "inactive", 95)
    yield indicator(next(n), "198.51.100.10", "scan_ip", "active", 20, "low")
    # False positive at 90: never counts.
    yield indicator(next(n), "198.51.100.11", "mal_ip", "falsepos", 90)
    # Two active at 90: malicious with positive_hits 2.
    yield indicator(next(n), "198.51.100.12", "c2_ip", "active", 90)
    yield indicator(next(n), "198.51.100.12", "bot_ip", "active", 90)
    # Active at 10: lacks evidence, not "benign".
    yield indicator(next(n), "198.51.100.13", "mal_ip", "active", 10, "low")
    yield indicator(next(n), "203.0.113.7", "mal_ip", "active", 80)
    yield indicator(next(n), "203.0.113.5", "bot_ip", "active", 75)
    yield indicator(next(n), "192.0.2.10", "mal_ip", "active", 70)
    yield indicator(next(n), "malicious.example.com", "mal_domain", "active", 85)
    yield indicator(next(n), "example.com", "mal_domain", "active", 60)
    yield indicator(next(n), "test.example.com", "phish_domain", "active", 65)
    yield indicator(next(n), "www.example.com", "mal_domain", "active", 55, "medium")
    # Stored upper case: matched case-insensitively.
    yield indicator(next(n), "UPPER.EXAMPLE.NET", "mal_domain", "active", 60)
    yield indicator(next(n), "2001:db8::1", "mal_ipv6", "active", 75, type_="ipv6")
    yield indicator(next(n), "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                    "mal_md5", "active", 95, subtype="SHA256")
    yield indicator(next(n), "3395856ce81f2b7382dee72602f798b642f14140",
                    "apt_md5", "active", 90, subtype="SHA1")
    yield indicator(next(n), "44d88612fea8a8f36de82e1278abb02f",
                    "mal_md5", "active", 100, subtype="MD5")
    # A URL indicator is not a domain indicator for its host.
    yield indicator(next(n), "http://clean.example.org/", "phish_url", "active", 99,
                    type_="url")
    # 1,005 inactive records, then one active: only found by following
    # meta.next past the first page of 1,000.
    for i in range(1005):
        yield indicator(next(n), "busy.example.net", "mal_domain", "inactive", 30, "low")
    yield indicator(next(n), "busy.example.net", "c2_domain", "active", 88)
    # A URL indicator filed under type ip: not an indicator for its host.
    yield indicator(next(n), "http://198.51.100.77/", "mal_ip", "active", 90, type_="ip")


def main():
    out = sys.stdout
    for row in rows():
        out.write(json.dumps(row, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
