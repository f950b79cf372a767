#!/usr/bin/env python3
"""Local simulator of the ThreatStream intelligence API, for tests only.

It answers GET /api/v2/intelligence[/] from indicators loaded from NDJSON
files (one indicator per line, in the API's own v2 shape), with the same
response envelope as the real service, and it can misbehave on request so
that the client's error handling can be tested without reaching the internet.

Usage:

    python3 threatstream_sim.py --host 127.0.0.1 --port 0 \\
        --port-file /tmp/sim.port --data intel.ndjson [--data more.ndjson] \\
        --user analyst@example.com:KEY [--user ...] \\
        [--control-file /tmp/sim.control.json] [--log-file /tmp/sim.log] \\
        [--tls-cert cert.pem --tls-key key.pem] [--verbose]

With --port 0 the kernel chooses a free port; the port actually used is
written to --port-file (atomically) once the server listens.  SIGTERM and
SIGINT stop the server cleanly.

Authentication: "Authorization: apikey USER:KEY", or the legacy query
parameters username=USER&api_key=KEY.  Anything else is answered with 401.

Supported query parameters: value, value__exact, type, status, itype,
meta.severity (each a comma list), confidence__gt/__gte/__lt/__lte, limit,
offset, order_by (comma list of fields, "-" for descending) and q, a filter
expression such as (value="198.51.100.7" OR value=example.com) AND
status=active.  Values match exactly, except that domains and hashes (type
md5) match case-insensitively.

Faults are chosen per request by options written into the URL path before
/api/v2/intelligence, for example

    /opt/tag=retry1,status=503,fail_first=2/api/v2/intelligence/?value=...

(path segments without "=" are ignored; options in one segment are separated
by ","), or for every request by a JSON object with the same option names in
--control-file (re-read whenever it changes) or POSTed to /__admin/control.
Options in the URL override the global ones.  Option names:

    tag=NAME          label recorded in the request log and the statistics
    latency_ms=N      wait N ms before answering
    status=CODE       answer CODE (e.g. 401, 403, 404, 429, 500, 502, 503)
                      with a JSON error body; status=200 means no override
    retry_after=N     Retry-After value sent with 429/503 (default 1 for 429)
    fail_first=N      apply status/fault only to the first N requests with
                      this tag (or this exact option set), then answer normally
    fault=KIND        none, notjson, html, objects_null, oversized, hang,
                      close_mid_body, trickle, wrong_value, bad_fields,
                      deep_nesting, empty, long_next (a meta.next link of
                      70,000 bytes on the same origin), number_next (a
                      meta.next that is the number 12)
    size_kb=N         body size for fault=oversized (default 4096)
    trickle_ms=N      delay between bytes for fault=trickle (default 500)
    depth=N           nesting depth for fault=deep_nesting (default 10000)

Admin endpoints (no authentication, JSON):

    GET  /__admin/log        request log (optional ?since=SEQ&tag=NAME)
    GET  /__admin/stats      {"requests", "connections", "by_tag", "by_status"}
    GET  /__admin/control    the global fault options in force
    POST /__admin/control    replace the global fault options (JSON object)
    POST /__admin/reset      clear the log, the counters and fail_first counts

The request log never contains an API key or the Authorization header.
"""

import argparse
import hmac
import json
import os
import select
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
from collections import deque
from datetime import datetime, timezone
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000

# Every wait the simulator does on purpose (latency, hang, trickle) ends
# after this many seconds at most, so that no test can leave it stuck.
MAX_WAIT_S = 600

# Largest request body read (admin POSTs); bigger bodies are refused.
MAX_REQUEST_BODY = 1024 * 1024

# The in-memory log keeps the newest entries only, so that a long soak test
# cannot grow the simulator without bound; --log-file keeps everything.
MAX_LOG_ENTRIES = 100000

# Deepest parenthesis nesting accepted in q; the parser is recursive.
MAX_Q_DEPTH = 64

API_SEGMENTS = ["api", "v2", "intelligence"]

FAULT_KINDS = {
    "none", "notjson", "html", "objects_null", "oversized", "hang",
    "close_mid_body", "trickle", "wrong_value", "bad_fields",
    "deep_nesting", "empty", "long_next", "number_next",
}

# Integer options: (minimum, maximum, default).
INT_OPTIONS = {
    "latency_ms": (0, MAX_WAIT_S * 1000, 0),
    "retry_after": (0, 86400, None),
    "fail_first": (0, 10 ** 9, None),
    "size_kb": (1, 256 * 1024, 4096),
    "trickle_ms": (0, 60000, 500),
    "depth": (1, 1000000, 10000),
}
OPTION_NAMES = set(INT_OPTIONS) | {"tag", "status", "fault"}

# Query parameters whose values must never reach the log.
SECRET_PARAMS = {"api_key", "apikey", "key", "password", "secret", "token"}

# Indicator types whose values compare case-insensitively.
CASELESS_TYPES = {"domain", "md5"}

# Fields the q expression may name, and how each one compares.
Q_FIELDS = {
    "value": "value",
    "type": "text",
    "status": "text",
    "itype": "text",
    "subtype": "text",
    "meta.severity": "text",
    "confidence": "int",
}

ERROR_TEXT = {
    400: ("Bad request", "bad_request"),
    401: ("Unauthorized: the username or API key is not valid", "unauthorized"),
    403: ("Forbidden: insufficient permissions", "forbidden"),
    404: ("Not found", "not_found"),
    405: ("Method not allowed", "method_not_allowed"),
    413: ("Request body too large", "too_large"),
    429: ("Too many requests, slow down", "rate_limited"),
    500: ("Internal server error", "server_error"),
    502: ("Bad gateway", "bad_gateway"),
    503: ("Service temporarily unavailable", "unavailable"),
}


class OptionError(ValueError):
    """A simulator option in the URL, control file or admin POST is invalid."""


class QueryError(ValueError):
    """A query parameter or q expression cannot be understood."""


# ---------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------

def parse_prefix(segments):
    """Return the options written in the path segments before the API path."""
    options = {}
    for segment in segments:
        # Segments without "=" are free text (e.g. "opt") so a URL can carry
        # a readable marker before the options.
        if "=" not in segment:
            continue
        for part in segment.split(","):
            name, sep, value = part.partition("=")
            if not sep:
                raise OptionError("option without a value: %r" % unquote(part))
            options[unquote(name)] = unquote(value)
    return options


def validate_options(raw):
    """Check fault options and return them with typed values."""
    if not isinstance(raw, dict):
        raise OptionError("options must be a JSON object")
    typed = {}
    for name, value in raw.items():
        if name not in OPTION_NAMES:
            raise OptionError("unknown simulator option %r" % name)
        if value is None:
            continue
        text = str(value).strip()
        if name in INT_OPTIONS:
            low, high, _ = INT_OPTIONS[name]
            try:
                number = int(text)
            except ValueError:
                raise OptionError("%s must be an integer" % name) from None
            if not low <= number <= high:
                raise OptionError("%s must be in %d..%d" % (name, low, high))
            typed[name] = number
        elif name == "status":
            try:
                code = int(text)
            except ValueError:
                raise OptionError("status must be an HTTP status code") from None
            if code != 200 and not 400 <= code <= 599:
                raise OptionError("status must be 200 or 400..599")
            typed[name] = code
        elif name == "fault":
            if text not in FAULT_KINDS:
                raise OptionError("unknown fault %r" % text)
            typed[name] = text
        else:
            if len(text) > 200:
                raise OptionError("tag is too long")
            typed[name] = text
    return typed


def option_default(options, name):
    """Return an integer option, or its default when it is not set."""
    return options.get(name, INT_OPTIONS[name][2])


# ---------------------------------------------------------------------------
# Indicator store and query evaluation
# ---------------------------------------------------------------------------

def lower_or_none(value):
    """Lower-case a string field; anything that is not a string becomes None."""
    return value.lower() if isinstance(value, str) else None


class Row:
    """The fields of one indicator that filters look at, precomputed."""

    __slots__ = ("index", "value", "value_lower", "type", "status", "itype",
                 "subtype", "severity", "confidence")

    def __init__(self, index, obj):
        """Extract the filterable fields of obj, tolerating missing ones."""
        self.index = index
        self.value = obj.get("value")
        self.value_lower = self.value.lower()
        self.type = lower_or_none(obj.get("type"))
        self.status = lower_or_none(obj.get("status"))
        self.itype = lower_or_none(obj.get("itype"))
        self.subtype = lower_or_none(obj.get("subtype"))
        meta = obj.get("meta")
        self.severity = lower_or_none(meta.get("severity")) if isinstance(meta, dict) else None
        confidence = obj.get("confidence")
        # bool is an int subclass in Python; a true/false confidence is junk.
        ok = isinstance(confidence, int) and not isinstance(confidence, bool)
        self.confidence = confidence if ok else None

    def value_matches(self, asked):
        """Tell whether this indicator's value is the asked observable."""
        if self.type in CASELESS_TYPES:
            return self.value_lower == asked.lower()
        return self.value == asked

    def field(self, name):
        """Return the comparable value of a q field."""
        if name == "value":
            return self.value
        if name == "meta.severity":
            return self.severity
        return getattr(self, name)


class IndicatorStore:
    """Indicators in load order, indexed by lower-cased value."""

    def __init__(self):
        """Create an empty store."""
        self.objects = []
        self.rows = []
        self.by_value = {}
        self.skipped = 0

    def load(self, path):
        """Append the indicators of one NDJSON file."""
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as e:
                    raise SystemExit("%s:%d: invalid JSON: %s" % (path, lineno, e))
                # Records of another shape (v1 exports, feeds) have no string
                # "value" and could never be matched; skip rather than fail.
                if not isinstance(obj, dict) or not isinstance(obj.get("value"), str):
                    self.skipped += 1
                    continue
                self.add(obj)

    def add(self, obj):
        """Add one indicator object."""
        row = Row(len(self.objects), obj)
        self.objects.append(obj)
        self.rows.append(row)
        self.by_value.setdefault(row.value_lower, []).append(row.index)

    def lookup(self, asked):
        """Return the indices of indicators whose value is asked."""
        return [i for i in self.by_value.get(asked.lower(), ())
                if self.rows[i].value_matches(asked)]


def tokenize_q(text):
    """Split a q expression into (kind, text) tokens."""
    tokens = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "()":
            tokens.append((c, c))
            i += 1
        elif c in "<>=":
            if c in "<>" and i + 1 < n and text[i + 1] == "=":
                tokens.append(("op", c + "="))
                i += 2
            else:
                tokens.append(("op", c))
                i += 1
        elif c == '"':
            out = []
            i += 1
            while True:
                if i >= n:
                    raise QueryError("unterminated quoted value in q")
                c = text[i]
                if c == "\\" and i + 1 < n:
                    out.append(text[i + 1])
                    i += 2
                elif c == '"':
                    i += 1
                    break
                else:
                    out.append(c)
                    i += 1
            tokens.append(("string", "".join(out)))
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in '()<>="':
                i += 1
            tokens.append(("word", text[start:i]))
    return tokens


class QParser:
    """Recursive-descent parser for q: OR of ANDs of comparisons."""

    def __init__(self, text):
        """Tokenize text for parsing."""
        self.tokens = tokenize_q(text)
        self.pos = 0

    def parse(self):
        """Parse the whole expression and return its tree."""
        if not self.tokens:
            return None
        tree = self.parse_or(0)
        if self.pos != len(self.tokens):
            raise QueryError("unexpected %r in q" % self.tokens[self.pos][1])
        return tree

    def peek_keyword(self, keyword):
        """Tell whether the next token is the (case-insensitive) keyword."""
        if self.pos >= len(self.tokens):
            return False
        kind, text = self.tokens[self.pos]
        return kind == "word" and text.upper() == keyword

    def parse_or(self, depth):
        """Parse terms joined by OR."""
        children = [self.parse_and(depth)]
        while self.peek_keyword("OR"):
            self.pos += 1
            children.append(self.parse_and(depth))
        return children[0] if len(children) == 1 else ("or", children)

    def parse_and(self, depth):
        """Parse factors joined by AND."""
        children = [self.parse_factor(depth)]
        while self.peek_keyword("AND"):
            self.pos += 1
            children.append(self.parse_factor(depth))
        return children[0] if len(children) == 1 else ("and", children)

    def parse_factor(self, depth):
        """Parse a parenthesised expression or one comparison."""
        if self.pos >= len(self.tokens):
            raise QueryError("q ends where a comparison was expected")
        kind, text = self.tokens[self.pos]
        if kind == "(":
            if depth >= MAX_Q_DEPTH:
                raise QueryError("q is nested too deeply")
            self.pos += 1
            tree = self.parse_or(depth + 1)
            if self.pos >= len(self.tokens) or self.tokens[self.pos][0] != ")":
                raise QueryError("missing ) in q")
            self.pos += 1
            return tree
        return self.parse_comparison()

    def parse_comparison(self):
        """Parse FIELD OP VALUE."""
        if self.pos + 3 > len(self.tokens):
            raise QueryError("incomplete comparison in q")
        (fkind, field), (okind, op), (vkind, value) = self.tokens[self.pos:self.pos + 3]
        if fkind != "word":
            raise QueryError("field name expected in q, got %r" % field)
        field = field.lower()
        if field not in Q_FIELDS:
            raise QueryError("unknown field %r in q" % field)
        if okind != "op":
            raise QueryError("operator expected after %s in q" % field)
        if vkind not in ("word", "string"):
            raise QueryError("value expected after %s%s in q" % (field, op))
        self.pos += 3
        if Q_FIELDS[field] == "int":
            try:
                value = int(value)
            except ValueError:
                raise QueryError("%s needs an integer in q" % field) from None
        elif Q_FIELDS[field] == "text":
            value = value.lower()
        return ("cmp", field, op, value)


COMPARE = {
    "=": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def q_eval(tree, row):
    """Evaluate a parsed q tree against one row."""
    kind = tree[0]
    if kind == "or":
        return any(q_eval(child, row) for child in tree[1])
    if kind == "and":
        return all(q_eval(child, row) for child in tree[1])
    _, field, op, value = tree
    if field == "value" and op == "=":
        return row.value_matches(value)
    actual = row.field(field)
    if actual is None:
        return False
    return COMPARE[op](actual, value)


def q_candidates(tree, store):
    """Return the set of row indices that can match tree, or None for all.

    Only value=X comparisons narrow the set, through the value index; this
    keeps a q of fifty ORed values fast however many indicators are loaded.
    """
    kind = tree[0]
    if kind == "cmp":
        if tree[1] == "value" and tree[2] == "=":
            return set(store.lookup(tree[3]))
        return None
    sets = [q_candidates(child, store) for child in tree[1]]
    if kind == "or":
        if any(s is None for s in sets):
            return None
        return set().union(*sets)
    narrowing = [s for s in sets if s is not None]
    if not narrowing:
        return None
    return set.intersection(*narrowing)


def q_values(tree, out):
    """Collect the values asked for with value=X in a q tree."""
    if tree is None:
        return out
    if tree[0] == "cmp":
        if tree[1] == "value" and tree[2] == "=":
            out.append(tree[3])
    else:
        for child in tree[1]:
            q_values(child, out)
    return out


def comma_list(params, name, lower=False):
    """Return the comma-separated values of a parameter, or None if absent."""
    if name not in params:
        return None
    items = [v.strip() for v in params[name].split(",") if v.strip()]
    return [v.lower() for v in items] if lower else items


def int_param(params, name):
    """Return an integer parameter, or None if absent."""
    if name not in params:
        return None
    try:
        return int(params[name])
    except ValueError:
        raise QueryError("%s must be an integer" % name) from None


def sort_key(value):
    """Order numbers before strings before anything else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value, "")
    if isinstance(value, str):
        return (1, 0, value)
    return (2, 0, json.dumps(value, sort_keys=True))


def dotted_get(obj, path):
    """Return obj[a][b] for path "a.b", or None when any step is missing."""
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def order_indices(store, indices, order_by):
    """Sort row indices by a comma list of fields, missing values last."""
    for spec in reversed([s.strip() for s in order_by.split(",") if s.strip()]):
        descending = spec.startswith("-")
        field = spec.lstrip("+-")
        if not field:
            raise QueryError("empty field in order_by")
        present = [i for i in indices if dotted_get(store.objects[i], field) is not None]
        missing = [i for i in indices if dotted_get(store.objects[i], field) is None]
        present.sort(key=lambda i: sort_key(dotted_get(store.objects[i], field)),
                     reverse=descending)
        indices = present + missing
    return indices


def search(store, params):
    """Run a query; return (matching indices, limit, offset, asked values)."""
    values = comma_list(params, "value")
    exact = comma_list(params, "value__exact")
    if exact is not None:
        values = (values or []) + exact
    types = comma_list(params, "type", lower=True)
    statuses = comma_list(params, "status", lower=True)
    itypes = comma_list(params, "itype", lower=True)
    severities = comma_list(params, "meta.severity", lower=True)
    bounds = []
    for suffix, op in (("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<=")):
        bound = int_param(params, "confidence__" + suffix)
        if bound is not None:
            bounds.append((COMPARE[op], bound))

    limit = int_param(params, "limit")
    offset = int_param(params, "offset") or 0
    if limit is None:
        limit = DEFAULT_LIMIT
    if limit < 0 or offset < 0:
        raise QueryError("limit and offset must not be negative")
    # The API treats limit=0 as "as many as allowed" and caps larger values.
    if limit == 0 or limit > MAX_LIMIT:
        limit = MAX_LIMIT

    tree = QParser(params["q"]).parse() if "q" in params else None

    # Narrow the candidates through the value index before scanning.
    candidates = None
    if values is not None:
        candidates = set()
        for asked in values:
            candidates.update(store.lookup(asked))
    if tree is not None:
        from_q = q_candidates(tree, store)
        if from_q is not None:
            candidates = from_q if candidates is None else candidates & from_q
    indices = range(len(store.rows)) if candidates is None else sorted(candidates)

    matched = []
    for i in indices:
        row = store.rows[i]
        if types is not None and row.type not in types:
            continue
        if statuses is not None and row.status not in statuses:
            continue
        if itypes is not None and row.itype not in itypes:
            continue
        if severities is not None and row.severity not in severities:
            continue
        if bounds and (row.confidence is None
                       or not all(cmp(row.confidence, b) for cmp, b in bounds)):
            continue
        if tree is not None and not q_eval(tree, row):
            continue
        matched.append(i)

    if "order_by" in params:
        matched = order_indices(store, matched, params["order_by"])
    asked = (values or []) + q_values(tree, [])
    return matched, limit, offset, asked


# ---------------------------------------------------------------------------
# Response bodies
# ---------------------------------------------------------------------------

def page_link(prefix, pairs, offset):
    """Build the relative link to another page of the same query."""
    # Credentials are left out: the simulator never echoes a key, and a
    # client following the link sends its Authorization header anyway.
    kept = [(k, v) for k, v in pairs
            if k != "offset" and k.lower() not in SECRET_PARAMS and k != "username"]
    kept.append(("offset", str(offset)))
    return "%s/api/v2/intelligence/?%s" % (prefix, urlencode(kept))


def envelope(objects, total, limit, offset, prefix, pairs, took_ms):
    """Return the response document with the API's meta block."""
    next_link = None
    if offset + limit < total:
        next_link = page_link(prefix, pairs, offset + limit)
    previous_link = None
    if offset > 0:
        previous_link = page_link(prefix, pairs, max(offset - limit, 0))
    return {
        "meta": {
            "total_count": total,
            "limit": limit,
            "offset": offset,
            "next": next_link,
            "previous": previous_link,
            "took": took_ms,
        },
        "objects": objects,
    }


def error_body(code, detail=None):
    """Return a JSON error body with message and error, as the API does."""
    if code in ERROR_TEXT:
        message, error = ERROR_TEXT[code]
    else:
        try:
            message = HTTPStatus(code).phrase
        except ValueError:
            message = "Error"
        error = "http_%d" % code
    if detail:
        message = "%s: %s" % (message, detail)
    return json.dumps({"message": message, "error": error}).encode()


def html_error_page():
    """Return the kind of HTML page a reverse proxy sends for 502."""
    return (b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
            b"<body><h1>Bad Gateway</h1>\n<p>The upstream intelligence service "
            b"did not answer the proxy.</p></body></html>\n")


def wrong_value_object(template, asked, next_id):
    """Return an indicator whose value is none of the asked values."""
    asked_lower = {a.lower() for a in asked}
    obj = dict(template) if template else {}
    kind = obj.get("type") or "ip"
    choices = {"ip": "203.0.113.254", "ipv6": "2001:db8::dead",
               "domain": "not-asked.example.org", "md5": "f" * 32,
               "url": "http://not-asked.example.org/"}
    value = choices.get(kind, "not-asked.example.org")
    while value.lower() in asked_lower:
        value = "x" + value
    obj.update({"value": value, "type": kind, "status": "active",
                "confidence": 100, "id": next_id,
                "resource_uri": "/api/v2/intelligence/%d/" % next_id})
    return obj


def bad_field_objects(asked):
    """Return indicators with missing or out-of-range fields."""
    value = asked[0] if asked else "198.51.100.250"
    base = {"type": "ip", "itype": "mal_ip", "status": "active",
            "confidence": 90, "threatscore": 80, "meta": {"severity": "high"},
            "tags": None, "source": "simulator"}
    no_value = dict(base, id=9000000001)
    as_text = dict(base, value=value, confidence="high", id=9000000002)
    too_high = dict(base, value=value, confidence=250, id=9000000003)
    too_low = dict(base, value=value, confidence=-5, id=9000000004)
    null_status = dict(base, value=value, status=None, id=9000000005)
    return [no_value, as_text, too_high, too_low, null_status]


# ---------------------------------------------------------------------------
# Shared server state
# ---------------------------------------------------------------------------

class Simulator:
    """State shared by all connections: data, users, options, log, counters."""

    def __init__(self, store, users, control_file=None, log_file=None, verbose=False):
        """Set up the state; log_file is opened for appending if given."""
        self.store = store
        self.users = users
        self.control_file = control_file
        self.verbose = verbose
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.log = deque(maxlen=MAX_LOG_ENTRIES)
        self.seq = 0
        self.requests = 0
        self.connections = 0
        self.by_tag = {}
        self.by_status = {}
        self.fail_counts = {}
        self.global_options = {}
        self.control_signature = None
        self.control_warned = None
        self.log_stream = None
        if log_file:
            existed = os.path.exists(log_file)
            fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            # The umask may have removed bits; a server process running as
            # another user must be able to read this file.
            if not existed:
                os.fchmod(fd, 0o644)
            self.log_stream = os.fdopen(fd, "a", encoding="utf-8")

    def check_credentials(self, user, key):
        """Tell whether user:key is a configured account."""
        expected = self.users.get(user)
        # Compare against a dummy for unknown users so timing tells nothing.
        ok = hmac.compare_digest(key.encode(), (expected or "\0").encode())
        return expected is not None and ok

    def new_connection(self):
        """Count an accepted connection and return its id."""
        with self.lock:
            self.connections += 1
            return self.connections

    def current_options(self):
        """Return the global fault options, re-reading the control file if changed."""
        if self.control_file:
            self._refresh_control_file()
        with self.lock:
            return dict(self.global_options)

    def _refresh_control_file(self):
        """Load the control file when its inode, size or mtime changed."""
        try:
            st = os.stat(self.control_file)
            signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            signature = None
        with self.lock:
            if signature == self.control_signature:
                return
            if signature is None or signature[1] == 0:
                self.global_options = {}
                self.control_signature = signature
                return
            try:
                with open(self.control_file, encoding="utf-8") as f:
                    text = f.read()
                options = json.loads(text) if text.strip() else {}
                validate_options(options)
            except (OSError, ValueError) as e:
                # Probably caught half-written; keep the previous options and
                # look again on the next request.
                if self.control_warned != signature:
                    print("threatstream_sim: ignoring control file: %s" % e,
                          file=sys.stderr)
                    self.control_warned = signature
                return
            self.global_options = options
            self.control_signature = signature

    def set_options(self, options):
        """Replace the global fault options (admin POST)."""
        validate_options(options)
        with self.lock:
            self.global_options = dict(options)

    def fault_applies(self, options):
        """Count a request against fail_first and tell whether faults apply."""
        limit = options.get("fail_first")
        if limit is None:
            return True
        key = options.get("tag")
        if key is None:
            key = json.dumps(options, sort_keys=True)
        with self.lock:
            self.fail_counts[key] = self.fail_counts.get(key, 0) + 1
            return self.fail_counts[key] <= limit

    def record(self, entry):
        """Append a finished request to the log and the counters."""
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.requests += 1
            tag = entry.get("tag")
            if tag is not None:
                self.by_tag[tag] = self.by_tag.get(tag, 0) + 1
            status = str(entry.get("status"))
            self.by_status[status] = self.by_status.get(status, 0) + 1
            self.log.append(entry)
            if self.log_stream:
                self.log_stream.write(json.dumps(entry) + "\n")
                self.log_stream.flush()
        if self.verbose:
            print("threatstream_sim: %s %s -> %s" % (entry["method"], entry["path"],
                                                      entry["status"]), file=sys.stderr)

    def reset(self):
        """Clear the log, the counters and the fail_first counts."""
        with self.lock:
            self.log.clear()
            self.requests = 0
            self.connections = 0
            self.by_tag = {}
            self.by_status = {}
            self.fail_counts = {}

    def stats(self):
        """Return the counters as a JSON-ready dict."""
        with self.lock:
            return {"requests": self.requests, "connections": self.connections,
                    "by_tag": dict(self.by_tag), "by_status": dict(self.by_status)}

    def log_entries(self, since=0, tag=None):
        """Return the logged requests after seq since, optionally for one tag."""
        with self.lock:
            return [e for e in self.log
                    if e["seq"] > since and (tag is None or e.get("tag") == tag)]


def redact_pairs(pairs):
    """Return the query as {name: [values]} with secret values replaced."""
    out = {}
    for name, value in pairs:
        if name.lower() in SECRET_PARAMS:
            value = "REDACTED"
        out.setdefault(name, []).append(value)
    return out


def redact_options(options):
    """Return prefix options with any secret-looking value replaced."""
    return {name: "REDACTED" if name.lower() in SECRET_PARAMS else value
            for name, value in options.items()}


def utc_now():
    """Return the current time as ISO 8601 with milliseconds and Z."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    """One connection; serves keep-alive requests until the client stops."""

    protocol_version = "HTTP/1.1"
    server_version = "ThreatStreamSimulator/1.0"
    sys_version = ""
    # Idle keep-alive connections are dropped after this many seconds.
    timeout = MAX_WAIT_S

    def setup(self):
        """Count the connection and turn off Nagle's algorithm."""
        super().setup()
        # Without TCP_NODELAY a small response waits for the client's delayed
        # ACK, which costs about 40 ms per keep-alive request.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.sim = self.server.sim
        self.connection_id = self.sim.new_connection()

    def handle(self):
        """Serve requests, treating a vanished client as a normal end."""
        try:
            super().handle()
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError):
            pass

    def log_message(self, format, *args):
        """Stay quiet; the request log is the record."""

    # -- response writing ---------------------------------------------------

    def response_bytes(self, status, body, content_type="application/json",
                       headers=(), content_length=None):
        """Build a complete response (status line, headers, body) as bytes."""
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = ["HTTP/1.1 %d %s" % (status, reason),
                 "Server: %s" % self.server_version,
                 "Date: %s" % formatdate(usegmt=True),
                 "Content-Type: %s" % content_type,
                 "Content-Length: %d" % (len(body) if content_length is None
                                         else content_length)]
        lines.extend("%s: %s" % h for h in headers)
        lines.append("Connection: %s" % ("close" if self.close_connection else "keep-alive"))
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if self.command == "HEAD":
            return head
        return head + body

    def send_bytes(self, status, body, content_type="application/json", headers=()):
        """Send a whole response with one sendall, so it leaves in one go."""
        self.connection.sendall(self.response_bytes(status, body, content_type, headers))

    def send_json(self, status, document, headers=()):
        """Send a JSON document."""
        self.send_bytes(status, json.dumps(document).encode(), headers=headers)

    def send_error(self, code, message=None, explain=None):
        """Answer protocol errors with a JSON body and close the connection."""
        self.close_connection = True
        self.send_bytes(code, error_body(code, message))

    def read_body(self):
        """Read the request body, if any; None means it was refused."""
        if self.headers.get("Transfer-Encoding"):
            self.send_error(411, "send Content-Length")
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return None
        if length < 0 or length > MAX_REQUEST_BODY:
            self.send_error(413)
            return None
        return self.rfile.read(length) if length else b""

    # -- methods --------------------------------------------------------------

    def do_GET(self):
        """Route a GET to the API or the admin endpoints."""
        self.dispatch("GET")

    def do_POST(self):
        """Route a POST; only admin endpoints accept it."""
        self.dispatch("POST")

    def do_HEAD(self):
        """Refuse HEAD (headers only, as HTTP requires)."""
        self.dispatch("HEAD")

    def do_PUT(self):
        """Refuse PUT."""
        self.dispatch("PUT")

    def do_DELETE(self):
        """Refuse DELETE."""
        self.dispatch("DELETE")

    def do_PATCH(self):
        """Refuse PATCH."""
        self.dispatch("PATCH")

    def dispatch(self, method):
        """Read the body, then serve the request; report simulator bugs as 500."""
        body = self.read_body()
        if body is None:
            return
        split = urlsplit(self.path)
        try:
            if split.path.startswith("/__admin/"):
                self.serve_admin(method, split.path, split.query, body)
            else:
                self.serve_api(method, split.path, split.query)
        except (ConnectionError, TimeoutError, ssl.SSLError):
            self.close_connection = True
        except Exception:
            traceback.print_exc()
            self.close_connection = True
            try:
                self.send_bytes(500, error_body(500, "simulator bug"))
            except OSError:
                pass

    # -- admin ------------------------------------------------------------------

    def serve_admin(self, method, path, query, body):
        """Serve /__admin/log, stats, control and reset."""
        name = path[len("/__admin/"):].rstrip("/")
        params = dict(parse_qsl(query, keep_blank_values=True))
        if name == "log" and method == "GET":
            try:
                since = int(params.get("since", 0))
            except ValueError:
                self.send_bytes(400, error_body(400, "since must be an integer"))
                return
            self.send_json(200, self.sim.log_entries(since, params.get("tag")))
        elif name == "stats" and method == "GET":
            self.send_json(200, self.sim.stats())
        elif name == "reset" and method == "POST":
            self.sim.reset()
            self.send_json(200, {"ok": True})
        elif name == "control" and method == "GET":
            self.send_json(200, self.sim.current_options())
        elif name == "control" and method == "POST":
            try:
                options = json.loads(body.decode("utf-8") or "{}")
                self.sim.set_options(options)
            except (ValueError, OptionError) as e:
                self.send_bytes(400, error_body(400, str(e)))
                return
            self.send_json(200, {"ok": True, "options": options})
        elif name in ("log", "stats", "reset", "control"):
            self.send_bytes(405, error_body(405))
        else:
            self.send_bytes(404, error_body(404))

    # -- API ---------------------------------------------------------------------

    def split_api_path(self, path):
        """Return (raw prefix, prefix segments) for an API path, else None."""
        trimmed = path[:-1] if path.endswith("/") else path
        segments = trimmed.split("/")[1:]
        if segments[-3:] != API_SEGMENTS:
            return None
        prefix_segments = segments[:-3]
        prefix = "/" + "/".join(prefix_segments) if prefix_segments else ""
        return prefix, prefix_segments

    def authenticate(self, params):
        """Return (method presented, accepted) for this request's credentials."""
        header = self.headers.get("Authorization")
        if header is not None:
            scheme, _, credentials = header.strip().partition(" ")
            user, sep, key = credentials.strip().rpartition(":")
            ok = scheme.lower() == "apikey" and bool(sep) and \
                self.sim.check_credentials(user, key)
            return "header", ok
        if "api_key" in params or "username" in params:
            return "query", self.sim.check_credentials(params.get("username", ""),
                                                       params.get("api_key", ""))
        return "none", False

    def serve_api(self, method, path, query):
        """Serve one intelligence request, applying any fault options."""
        started = time.monotonic()
        pairs = parse_qsl(query, keep_blank_values=True)
        params = dict(pairs)
        auth_method, auth_ok = self.authenticate(params)
        entry = {"seq": None, "time": utc_now(), "method": method, "path": path,
                 "prefix_options": {}, "query": redact_pairs(pairs),
                 "credentials_in_url": "api_key" in params or "username" in params,
                 "auth": auth_method, "status": None, "tag": None,
                 "connection_id": self.connection_id, "fault": None}

        def finish(status, body, content_type="application/json", headers=()):
            entry["status"] = status
            self.sim.record(entry)
            self.send_bytes(status, body, content_type, headers)

        parts = self.split_api_path(path)
        if parts is None:
            finish(404, error_body(404))
            return
        prefix, prefix_segments = parts
        url_options = {}
        try:
            url_options = parse_prefix(prefix_segments)
            entry["prefix_options"] = redact_options(url_options)
            merged = self.sim.current_options()
            merged.update(url_options)
            options = validate_options(merged)
        except OptionError as e:
            entry["tag"] = url_options.get("tag")
            finish(400, error_body(400, str(e)))
            return
        entry["tag"] = options.get("tag")
        if method != "GET":
            finish(405, error_body(405))
            return

        if options.get("latency_ms"):
            self.sim.stopping.wait(options["latency_ms"] / 1000.0)

        applies = self.sim.fault_applies(options)
        fault = options.get("fault", "none") if applies else "none"
        status = options.get("status", 200) if applies else 200

        # Faults that stand for trouble in front of the service (network,
        # proxy, rate limiter) come before authentication, as they would.
        if fault == "hang":
            entry["fault"] = "hang"
            self.sim.record(entry)
            self.hold_open()
            return
        if status != 200:
            entry["fault"] = "status=%d" % status
            headers = []
            retry_after = options.get("retry_after")
            if status == 429 and retry_after is None:
                retry_after = 1
            if retry_after is not None and status in (429, 503):
                headers.append(("Retry-After", str(retry_after)))
            finish(status, error_body(status), headers=headers)
            return
        if fault == "notjson":
            entry["fault"] = fault
            finish(200, b"this is not json")
            return
        if fault == "html":
            entry["fault"] = fault
            finish(502, html_error_page(), "text/html; charset=utf-8")
            return

        if not auth_ok:
            finish(401, error_body(401))
            return
        try:
            matched, limit, offset, asked = search(self.sim.store, params)
        except QueryError as e:
            finish(400, error_body(400, str(e)))
            return

        store = self.sim.store
        total = len(matched)
        objects = [store.objects[i] for i in matched[offset:offset + limit]]
        if fault == "empty":
            objects, total = [], 0
        elif fault == "wrong_value":
            template = objects[0] if objects else None
            objects = objects + [wrong_value_object(template, asked, 9100000000 + total)]
            total += 1
        elif fault == "bad_fields":
            objects = bad_field_objects(asked)
            total = len(objects)
        took = int((time.monotonic() - started) * 1000)
        document = envelope(objects, total, limit, offset, prefix, pairs, took)
        if fault == "objects_null":
            document["objects"] = None
        if fault == "number_next":
            document["meta"]["next"] = 12
        if fault == "long_next":
            document["meta"]["next"] = (page_link(prefix, pairs, offset + limit) +
                                        "&pad=" + "x" * 70000)
        if fault != "none":
            entry["fault"] = fault

        if fault == "deep_nesting":
            body = self.deep_body(document, options)
        elif fault == "oversized":
            body = self.oversized_body(document, options)
        else:
            body = json.dumps(document).encode()

        entry["status"] = 200
        self.sim.record(entry)
        if fault == "trickle":
            self.trickle(self.response_bytes(200, body),
                         option_default(options, "trickle_ms"))
        elif fault == "close_mid_body":
            # Promise the whole body, deliver half of it, then hang up.
            self.close_connection = True
            data = self.response_bytes(200, body)
            self.connection.sendall(data[:len(data) - len(body) + len(body) // 2])
        else:
            self.connection.sendall(self.response_bytes(200, body))

    # -- fault helpers ---------------------------------------------------------

    def deep_body(self, document, options):
        """Return a valid JSON body whose object holds deeply nested arrays."""
        depth = option_default(options, "depth")
        document["objects"] = (document["objects"] or []) + [{"value": "__NESTED__"}]
        text = json.dumps(document)
        nested = "[" * depth + "]" * depth
        return text.replace('"__NESTED__"', '"nested", "nested": ' + nested, 1).encode()

    def oversized_body(self, document, options):
        """Return the real answer padded to about size_kb kilobytes."""
        target = option_default(options, "size_kb") * 1024
        base = len(json.dumps(document).encode())
        document["padding"] = "x" * max(target - base - len(', "padding": ""'), 0)
        return json.dumps(document).encode()

    def hold_open(self):
        """Keep the connection open without answering until the client leaves."""
        self.close_connection = True
        deadline = time.monotonic() + MAX_WAIT_S
        while not self.sim.stopping.is_set() and time.monotonic() < deadline:
            try:
                readable, _, _ = select.select([self.connection], [], [], 0.5)
                # Anything the client sends is read and dropped; an empty read
                # means it closed its end.
                if readable and not self.connection.recv(65536):
                    return
            except (OSError, ValueError):
                return

    def trickle(self, data, interval_ms):
        """Send data one byte at a time with a pause between bytes."""
        deadline = time.monotonic() + MAX_WAIT_S
        for i in range(len(data)):
            self.connection.sendall(data[i:i + 1])
            if i + 1 < len(data) and (self.sim.stopping.wait(interval_ms / 1000.0)
                                      or time.monotonic() > deadline):
                self.close_connection = True
                return


class Server(ThreadingHTTPServer):
    """Threaded HTTP server holding the simulator state."""

    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        """Print unexpected errors, but not clients that went away."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError)):
            traceback.print_exc()


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def parse_user(text):
    """Split USER:KEY from the command line."""
    user, sep, key = text.rpartition(":")
    if not sep or not user or not key:
        raise argparse.ArgumentTypeError("expected USER:KEY")
    return user, key


def write_port_file(path, port):
    """Write the port through a temporary file and rename, so readers never see half."""
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


def main(argv=None):
    """Parse arguments, load data and serve until SIGTERM or SIGINT."""
    ap = argparse.ArgumentParser(description="Local ThreatStream API simulator (tests only).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--port-file", help="write the listening port here")
    ap.add_argument("--data", action="append", default=[], help="NDJSON indicators")
    ap.add_argument("--user", action="append", type=parse_user, required=True,
                    help="USER:KEY accepted as credentials (repeatable)")
    ap.add_argument("--control-file", help="JSON object of global fault options")
    ap.add_argument("--log-file", help="append each request as one JSON line")
    ap.add_argument("--tls-cert", help="PEM certificate; serves HTTPS with --tls-key")
    ap.add_argument("--tls-key", help="PEM private key")
    ap.add_argument("--verbose", action="store_true", help="one stderr line per request")
    args = ap.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")

    store = IndicatorStore()
    for path in args.data:
        try:
            store.load(path)
        except OSError as e:
            raise SystemExit("threatstream_sim: cannot read %s: %s" % (path, e.strerror))
    if store.skipped:
        print("threatstream_sim: skipped %d records without a string value"
              % store.skipped, file=sys.stderr)

    if ":" in args.host:
        Server.address_family = socket.AF_INET6
    server = Server((args.host, args.port), Handler)
    server.sim = Simulator(store, dict(args.user), args.control_file,
                           args.log_file, args.verbose)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        # The handshake happens in the connection's thread, so a slow or
        # broken client cannot stall the accept loop.
        server.socket = context.wrap_socket(server.socket, server_side=True,
                                            do_handshake_on_connect=False)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    # serve_forever runs in a thread because shutdown() must be called from
    # another thread than the one serving.
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                               daemon=True)
    serving.start()
    port = server.server_address[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    if args.verbose:
        print("threatstream_sim: listening on %s:%d with %d indicators"
              % (args.host, port, len(store.objects)), file=sys.stderr)

    while not stop.wait(1.0):
        pass
    server.sim.stopping.set()
    server.shutdown()
    server.server_close()
    if args.port_file:
        # Remove the port file only if it is still ours, so that a harness
        # never reads the port of a simulator that has gone.
        try:
            with open(args.port_file) as f:
                if f.read().strip() == str(port):
                    os.unlink(args.port_file)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
