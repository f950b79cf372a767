#!/usr/bin/env python3
"""Write the benchmark's event slice as a COPY text file (id <TAB> jsonb).

    make_events.py N DNS.ndjson.gz SSL.ndjson.gz OUT

The slice is the first ceil(N/2) events of the Zeek DNS log and the first
floor(N/2) events of the Zeek SSL log, interleaved one by one (dns, ssl,
dns, ssl, ...), so every measurement sees the same real mix in the same
order.  Only the standard library is used; nothing is fetched.
"""

import gzip
import itertools
import json
import sys


def first(path, n):
    """Return the first n lines of a gzipped NDJSON file, re-serialised."""
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in itertools.islice(f, n):
            line = line.strip()
            if line:
                # Parse and dump again: this validates the line and yields
                # one line of JSON without raw tabs or newlines.
                out.append(json.dumps(json.loads(line), separators=(",", ":")))
    return out


def main():
    """Build the slice and write it in COPY text format."""
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    n = int(sys.argv[1])
    if n < 2:
        sys.exit("make_events.py: N must be at least 2")
    dns = first(sys.argv[2], (n + 1) // 2)
    ssl = first(sys.argv[3], n // 2)
    mixed = []
    for a, b in itertools.zip_longest(dns, ssl):
        if a is not None:
            mixed.append(a)
        if b is not None:
            mixed.append(b)
    with open(sys.argv[4], "w", encoding="utf-8") as f:
        for i, line in enumerate(mixed, 1):
            # COPY text format: the backslash is the only character of a
            # one-line JSON document that needs escaping.
            f.write("%d\t%s\n" % (i, line.replace("\\", "\\\\")))
    print("%d events (%d dns, %d ssl)" % (len(mixed), len(dns), len(ssl)))


if __name__ == "__main__":
    main()
