#!/usr/bin/env python3
"""Summarise Memcheck logs of a test run and fail on errors in anomali_ts.

PostgreSQL's own code is not built for Valgrind here (no suppressions, no
USE_VALGRIND), so Memcheck reports some errors inside the server itself;
only error records whose stack passes through anomali_ts.so fail the run.

    python3 scripts/valgrind_summary.py WORK/valgrind.*.log
"""
import re
import sys


def records(text):
    """Split a Memcheck log into error records (blocks between blank lines)."""
    block = []
    for line in text.splitlines():
        body = re.sub(r"^==\d+== ?", "", line)
        if body.strip() == "":
            if block:
                yield block
            block = []
        else:
            block.append(body)
    if block:
        yield block


def main(paths):
    """Print a summary; return 1 when an error touches anomali_ts."""
    processes = 0
    total = 0
    ours = []
    for path in paths:
        processes += 1
        with open(path, errors="replace") as f:
            for rec in records(f.read()):
                head = rec[0]
                if head.startswith(("HEAP SUMMARY", "LEAK SUMMARY", "ERROR SUMMARY",
                                    "Memcheck", "Copyright", "Using Valgrind",
                                    "Command:", "Parent PID", "For lists", "For counts")):
                    continue
                if not re.match(r"(Invalid|Conditional|Use of|Syscall param|Mismatched|"
                                r"Source and destination|Argument|Jump to)", head):
                    continue
                total += 1
                if any("anomali_ts" in line for line in rec):
                    ours.append((path, rec))
    print("== valgrind: %d processes, %d Memcheck errors in all, %d in anomali_ts"
          % (processes, total, len(ours)), file=sys.stderr)
    for path, rec in ours[:20]:
        print("-- %s" % path, file=sys.stderr)
        print("\n".join(rec), file=sys.stderr)
    return 1 if ours or processes == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
