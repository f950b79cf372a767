#!/usr/bin/env python3
"""Print the benchmark's table from the raw lines scripts/bench.sh collected.

    report.py table RUNS E_OUT E_ERR E_LOG CHECKS LATENCY_MS E_BATCH_ROWS SLICE_TEXT
    report.py memory MEMORY_OUT EVENTS

Never fails because a target is missed: it prints PASS or MISS per target.
"""

import json
import math
import re
import sys

ROWS = [
    # key, description
    ("A_insert", "A   plain INSERT ... SELECT, no trigger"),
    ("A_copy", "A   plain COPY, no trigger"),
    ("A_rows", "A   plain INSERT, one row per statement"),
    ("A_enriched", "A*  plain INSERT ... SELECT of B's rows (B's ceiling)"),
    ("A_pending", "A*  same of F's rows, queue index (F's ceiling)"),
    ("B_warmup", "    (trigger, cold cache: B's warm-up)"),
    ("B_insert", "B   anomali_ts trigger, warm cache, INSERT ... SELECT"),
    ("B_copy", "B   anomali_ts trigger, warm cache, COPY"),
    ("B_lean", "    (B, exposed_fields result + is_malicious only)"),
    ("B_lz4", "    (B, the column compressed with lz4)"),
    ("C", "C   anomali_ts trigger, cold cache"),
    ("D0", "D0  PL/Python trigger, no cache"),
    ("D1", "D1  PL/Python trigger, dict cache in GD"),
    ("E", "E   CALL anomali_enrich_table, cold cache"),
    ("F_insert", "F   async step: the INSERT ... SELECT alone"),
    ("F_end", "F   async step: insert until the worker finished all"),
    ("F_rows", "F   async step: one row per INSERT"),
]


def parse_runs(path):
    """Return ({label: [run dict]}, [failed labels], [(label, messages)])."""
    runs, failed, messages = {}, [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("|")
            if parts[0] == "RUN" and len(parts) >= 11:
                label = parts[1]
                base = label.split("#")[0]
                runs.setdefault(base, []).append({
                    "label": label,
                    "events": int(parts[2]),
                    "secs": float(parts[3]),
                    "hwm_kb": int(parts[4] or 0),
                    "rss_kb": int(parts[5] or 0),
                    "anon_kb": int(parts[6] or 0),
                    "sess_req": int(parts[7]),
                    "sess_conn": int(parts[8]),
                    "sim_req": int(parts[9]),
                    "sim_conn": int(parts[10]),
                })
            elif parts[0] == "FAILED":
                failed.append(parts[1])
            elif parts[0] == "MESSAGES":
                messages.append((parts[1], "|".join(parts[2:])))
    return runs, failed, messages


def summary(runs):
    """Median run by time; requests and connections summed over all runs."""
    ordered = sorted(runs, key=lambda r: r["secs"])
    med = ordered[(len(ordered) - 1) // 2]
    events = sum(r["events"] for r in runs)
    return {
        "runs": len(runs),
        "events": med["events"],
        "secs": med["secs"],
        "eps": med["events"] / med["secs"] if med["secs"] > 0 else float("inf"),
        "spread": (ordered[0]["secs"], ordered[-1]["secs"]),
        "req_per_k": 1000.0 * sum(r["sim_req"] for r in runs) / events if events else 0,
        "conn_per_k": 1000.0 * sum(r["sim_conn"] for r in runs) / events if events else 0,
        "sess_req": sum(r["sess_req"] for r in runs),
        "sess_conn": sum(r["sess_conn"] for r in runs),
        "sim_req": sum(r["sim_req"] for r in runs),
        "sim_req_max": max(r["sim_req"] for r in runs),
        "sim_conn": sum(r["sim_conn"] for r in runs),
        "hwm_mb": max(r["hwm_kb"] for r in runs) / 1024.0,
        "anon_mb": max(r["anon_kb"] for r in runs) / 1024.0,
    }


def verdict(ok):
    return "PASS" if ok else "MISS"


def table(argv):
    runs_path, e_out, e_err, e_log, checks_path, latency_ms, e_batch_rows, slice_text = argv
    runs, failed, messages = parse_runs(runs_path)
    s = {key: summary(r) for key, r in runs.items()}

    print()
    print("anomali_ts benchmark: %s from demo/events, simulator latency %s ms per request"
          % (slice_text, latency_ms))
    print("(events/s is the median of the runs shown; requests and connections are the "
          "simulator's counts per 1,000 events; VmHWM is the peak resident size of the "
          "measuring backend, including the shared memory it touched)")
    print()
    head = "%-54s %5s %7s %8s %10s %9s %9s %9s" % (
        "scenario", "runs", "events", "seconds", "events/s", "req/1k", "conn/1k", "VmHWM MB")
    print(head)
    print("-" * len(head))
    for key, desc in ROWS:
        if key not in s:
            print("%-54s %s" % (desc, "FAILED" if key in failed else "not run"))
            continue
        r = s[key]
        print("%-54s %5d %7d %8.3f %10.0f %9.1f %9.1f %9.1f" % (
            desc, r["runs"], r["events"], r["secs"], r["eps"], r["req_per_k"],
            r["conn_per_k"], r["hwm_mb"]))
    print()

    def eps(key):
        return s[key]["eps"] if key in s else None

    def ratio(a, b):
        if eps(a) is None or eps(b) is None or eps(b) == 0:
            return None
        return eps(a) / eps(b)

    print("Ratios (events/s over events/s)")
    for name, a, b, note in (
            ("B/A", "B_insert", "A_insert", "trigger with warm cache vs plain INSERT ... SELECT"),
            ("B/A (COPY)", "B_copy", "A_copy", "trigger with warm cache vs plain COPY"),
            ("Blean/A", "B_lean", "A_insert", "B writing results only vs plain INSERT ... SELECT"),
            ("Blz4/A", "B_lz4", "A_insert", "B into an lz4-compressed column vs plain INSERT ... SELECT"),
            ("A*B/A", "A_enriched", "A_insert", "B's ceiling: storing B's rows, no trigger, vs plain"),
            ("A*F/A", "A_pending", "A_insert", "F's ceiling: storing F's rows + queue index, no trigger"),
            ("C/D1", "C", "D1", "extension, cold cache vs PL/Python with dict cache"),
            ("E/D1", "E", "D1", "bulk procedure, cold cache vs PL/Python with dict cache"),
            ("F/A", "F_insert", "A_insert", "inserts with the async step vs plain INSERT ... SELECT"),
            ("F/A (rows)", "F_rows", "A_rows", "one row per INSERT: async step vs plain"),
            ("Fend/D1", "F_end", "D1", "async, enriched end to end vs PL/Python with dict cache"),
            ("C/D0", "C", "D0", "extension, cold cache vs PL/Python without cache"),
            ("D1/D0", "D1", "D0", "PL/Python: dict cache vs none")):
        r = ratio(a, b)
        print("  %-11s %8s   %s" % (name, "n/a" if r is None else "%.2f" % r, note))
    print()

    # E's requests against the ideal: unique observables / batch size + pages
    einfo = None
    try:
        with open(e_out, encoding="utf-8") as f:
            for line in f:
                if line.startswith("EINFO|"):
                    einfo = [int(x) for x in line.strip().split("|")[1:]]
    except OSError:
        pass
    # The procedure's last progress NOTICE: rows it read, in all its batches
    rows_read = None
    try:
        with open(e_err, encoding="utf-8") as f:
            for line in f:
                m = re.search(r"anomali_ts: (\d+) rows read, (\d+) enriched", line)
                if m:
                    rows_read = int(m.group(1))
    except OSError:
        pass
    pages = 0
    e_log_entries = []
    try:
        with open(e_log, encoding="utf-8") as f:
            e_log_entries = json.load(f)
        pages = sum(1 for e in e_log_entries if "offset" in (e.get("query") or {}))
    except (OSError, ValueError):
        pass
    # Every run of E must keep to the bound: its worst run is the one shown,
    # and the pages the simulator saw over all runs are shared out per run
    e_requests = s["E"]["sim_req_max"] if "E" in s else None
    if "E" in s:
        pages = math.ceil(pages / s["E"]["runs"])
    e_bound = None
    if einfo is not None and e_requests is not None:
        unique, cached, batch_size, rows_done, table_rows = einfo
        e_ideal = math.ceil(unique / batch_size)
        e_bound = e_ideal + pages
        row_batches = math.ceil(s["E"]["events"] / max(int(e_batch_rows), 1))
        print("E's requests")
        print("  unique public observables in the table (anomali_classify): %d" % unique)
        print("  observables E looked up (cache entries after E):            %d" % cached)
        print("  anomali_ts.batch_size:                                      %d" % batch_size)
        print("  ceil(unique / batch_size):                                  %d" % e_ideal)
        print("  extra result pages followed (requests with offset=):        %d" % pages)
        print("  E's HTTP requests, most in one of its %d runs (simulator):   %d"
              % (s["E"]["runs"], e_requests))
        print("  E's requests and connections over all runs (session counters): %d, %d"
              % (s["E"]["sess_req"], s["E"]["sess_conn"]))
        print("  rows enriched by the step: %d of %d, in %d row batches"
              % (rows_done, table_rows, row_batches))
        if rows_read is not None:
            print("  rows the procedure read (its last NOTICE): %d for a table of %d rows%s"
                  % (rows_read, table_rows,
                     " -- it re-reads the row versions its own UPDATEs created"
                     if rows_read > table_rows else ""))
        print("  (each row batch may end with a part-full request: with that slack the "
              "bound would be %d)" % (e_bound + row_batches - 1))
        print()

    print("Targets")
    targets = []
    r = ratio("B_insert", "A_insert")
    targets.append(("B >= 0.5 x A (INSERT ... SELECT)", r is not None and r >= 0.5,
                    "B/A = %s" % ("n/a" if r is None else "%.2f" % r)))
    r = ratio("C", "D1")
    targets.append(("C >= 2 x D1", r is not None and r >= 2,
                    "C/D1 = %s" % ("n/a" if r is None else "%.2f" % r)))
    r = ratio("E", "D1")
    targets.append(("E >= 10 x D1", r is not None and r >= 10,
                    "E/D1 = %s" % ("n/a" if r is None else "%.2f" % r)))
    targets.append(("E's requests <= unique/batch_size + pages",
                     e_bound is not None and e_requests is not None and e_requests <= e_bound,
                     "%s requests, bound %s" % (e_requests, e_bound)))
    r = ratio("F_insert", "A_insert")
    targets.append(("F inserts >= 0.8 x A (INSERT ... SELECT)", r is not None and r >= 0.8,
                    "F/A = %s" % ("n/a" if r is None else "%.2f" % r)))
    r = ratio("F_rows", "A_rows")
    targets.append(("F inserts >= 0.8 x A (one row per INSERT)", r is not None and r >= 0.8,
                    "F/A (rows) = %s" % ("n/a" if r is None else "%.2f" % r)))
    r = ratio("F_end", "D1")
    targets.append(("F end to end >= 10 x D1", r is not None and r >= 10,
                    "Fend/D1 = %s" % ("n/a" if r is None else "%.2f" % r)))
    for name, ok, detail in targets:
        print("  %s  %-44s %s" % (verdict(ok), name, detail))
    print()

    # What storing B's and F's rows costs without their triggers bounds
    # what the triggers can reach against the same plain insert.
    print("Ceilings (the rows B and F store, inserted without any trigger)")
    for name, key, target, of in (
            ("B", "A_enriched", 0.5, "B/A"),
            ("F", "A_pending", 0.8, "F/A")):
        r = ratio(key, "A_insert")
        if r is None:
            print("  %s: n/a" % name)
            continue
        if r >= target:
            print("  %s's rows alone reach %.2f of A: %s >= %.1f stays within reach"
                  % (name, r, of, target))
        else:
            print("  %s's rows alone reach %.2f of A: %s >= %.1f is out of reach for any "
                  "trigger that stores these rows" % (name, r, of, target))
    print()

    # What the variants wrote
    checks = {}
    agree, errors, sizes = [], [], []
    try:
        with open(checks_path, encoding="utf-8") as f:
            for line in f:
                parts = line.strip().split("|")
                if parts[0] == "CHECK":
                    checks.setdefault(parts[1], []).append("%s %s" % (parts[2], parts[3]))
                elif parts[0] == "AGREE":
                    agree.append(parts[1:])
                elif parts[0] == "ERRORS":
                    errors.append(parts[1:])
                elif parts[0] == "SIZE":
                    sizes.append(parts[1:])
    except OSError:
        pass
    print("Results written on the events (global result: events)")
    for t in ("B", "B_copy", "B_lean", "B_lz4", "C", "D0", "D1", "E"):
        print("  %-7s %s" % (t, ", ".join(checks.get(t, ["(nothing)"]))))
    for pair, both, first, second in agree:
        a, b = pair.split("/")
        print("  malicious events %s: both %s, only %s %s, only %s %s"
              % (pair, both, a, first, b, second))
    for t, err, n in errors:
        print("  observable errors in %s: %s x %s" % (t, n, err))
    if sizes:
        print()
        print("Event size (bytes): jsonb before compression / as stored / share past the ~2 kB TOAST threshold")
        for t, raw, stored, pct in sizes:
            print("  %-7s %6s / %6s / %3s%%" % (t, raw, stored, pct))
    if failed:
        print()
        print("FAILED measurements: %s" % ", ".join(failed))
    if messages:
        print()
        print("Messages from the server during measurements:")
        for label, text in messages:
            print("  %s: %s" % (label, text[:500]))
    if "B_insert" in s and s["B_insert"]["sim_req"]:
        print()
        print("Note: B (warm cache) sent %d requests; a warm run should send none."
              % s["B_insert"]["sim_req"])
    if "C" in s and s["C"]["sim_req"] != s["C"]["sess_req"]:
        print("Note: C: simulator counted %d requests, the session %d."
              % (s["C"]["sim_req"], s["C"]["sess_req"]))


def memory(argv):
    out_path, events = argv
    points = []
    worker = []
    extra = {}
    with open(out_path, encoding="utf-8") as f:
        for line in f:
            parts = line.strip().split("|")
            if parts[0] == "MEMW" and len(parts) >= 6:
                worker.append(tuple(int(x) for x in parts[1:6]))
            elif parts[0] == "MEM" and len(parts) >= 6:
                points.append((parts[1], int(parts[2]), int(parts[3]), int(parts[4]),
                               float(parts[5])))
            elif parts[0] in ("MEMTIME", "MEMCACHE"):
                extra[parts[0]] = parts[1:]
    print()
    print("anomali_ts memory: %s anomali_enrich() calls in one session, warm cache" % events)
    print()
    print("%-10s %12s %12s %12s %10s" % ("point", "enrichments", "VmRSS kB", "RssAnon kB", "elapsed s"))
    if not points:
        print("no measurements (see the messages above)")
        print("MISS  backend memory flat")
        return
    t0 = points[0][4]
    for what, n, rss, anon, t in points:
        print("%-10s %12d %12d %12d %10.1f" % (what, n, rss, anon, t - t0))
    before, after = points[0], points[-1]
    growth = after[2] - before[2]
    print()
    print("VmRSS before %d kB, after %d kB: growth %d kB (%.2f MB); RssAnon growth %d kB"
          % (before[2], after[2], growth, growth / 1024.0, after[3] - before[3]))
    if "MEMTIME" in extra:
        done = after[1]
        secs = float(extra["MEMTIME"][1])
        print("%d enrichments in %.1f s: %.0f events/s" % (done, secs, done / secs if secs else 0))
    if "MEMCACHE" in extra:
        h, m, e = extra["MEMCACHE"]
        print("shared cache: %s hits, %s misses, %s entries" % (h, m, e))
    complete = after[1] >= int(events)
    print()
    print("%s  backend memory flat (VmRSS growth under 10 MB over %s enrichments)%s"
          % (verdict(complete and growth < 10 * 1024), events,
             "" if complete else " -- run incomplete: %d done" % after[1]))

    # The background worker: one process over every round
    print()
    print("anomali_ts memory: one background worker finishing queued events")
    print()
    if not worker:
        print("no measurements (see the messages above)")
        print("MISS  worker memory flat")
        return
    print("%-10s %12s %12s %12s" % ("round", "events", "VmRSS kB", "RssAnon kB"))
    for rnd, done, _pid, rss, anon in worker:
        if rnd == 1 or rnd % 5 == 0 or rnd == worker[-1][0]:
            print("%-10d %12d %12d %12d" % (rnd, done, rss, anon))
    first, last = worker[0], worker[-1]
    pids = set(w[2] for w in worker)
    anon_growth = last[4] - first[4]
    print()
    print("RssAnon after round 1 %d kB, after round %d %d kB: growth %d kB (%.2f MB); "
          "%d worker process(es)"
          % (first[4], last[0], last[4], anon_growth, anon_growth / 1024.0, len(pids)))
    print("%s  worker memory flat (RssAnon growth under 10 MB from round 1 to round %d, "
          "one process)" % (verdict(anon_growth < 10 * 1024 and len(pids) == 1), last[0]))


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("table", "memory"):
        sys.exit(__doc__)
    if sys.argv[1] == "table":
        table(sys.argv[2:])
    else:
        memory(sys.argv[2:])


if __name__ == "__main__":
    main()
