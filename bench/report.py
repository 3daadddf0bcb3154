#!/usr/bin/env python3
"""bench/report.py RESULTS_DIR -- report.md, results.json and PNG charts
from fullload.json, apply.json and lag.csv in RESULTS_DIR (any may be
missing).  Charts need gnuplot; without it the report says so.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import median  # noqa: E402


def load(d, name):
    try:
        with open(os.path.join(d, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fmt(v, nd=2):
    if v is None:
        return "–"
    if isinstance(v, float):
        return ("%%.%df" % nd) % v
    return str(v)


def mb(v):
    return "–" if v is None else "%.2f" % (v / 1e6)


def ratio_cells(c):
    """paired median | ratio of medians | ratio of best runs | per round"""
    if not c or c.get("ratio") is None:
        return "– | – | – | –"
    return "%.2f | %s | %s | %s" % (c["ratio"], fmt(c.get("of_medians")), fmt(c.get("of_bests")),
                                    ", ".join("%.2f" % x for x in c.get("per_round", [])))


def goal_met(c, target):
    if not c or c.get("ratio") is None:
        return None
    v = c["ratio"]
    return v <= target[1] if target[0] == "≤" else v >= target[1]


def gnuplot(d, script):
    if not shutil.which("gnuplot"):
        return False
    path = os.path.join(d, "charts.gp")
    with open(path, "a") as f:
        f.write(script + "\n")
    r = subprocess.run(["gnuplot"], input=script, text=True, cwd=d,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.stderr.write("gnuplot: %s\n" % r.stderr)
    return r.returncode == 0


def chart_fullload(d, fl):
    rows = []
    for name, c in fl["contenders"].items():
        if c.get("total_s"):
            rows.append((name, c["median_total_s"], min(c["total_s"]), max(c["total_s"])))
    if not rows:
        return None
    with open(os.path.join(d, "fullload.dat"), "w") as f:
        for i, (n, m, lo, hi) in enumerate(rows):
            f.write('%d "%s" %.3f %.3f %.3f\n' % (i, n, m, lo, hi))
    ok = gnuplot(d, """
set terminal pngcairo size 800,480 font "sans,10" noenhanced
set output "fullload.png"
set title "Full load of pgbench -i -s %d (%.0f MB): wall time, median of %d (bars: min-max)"
set ylabel "seconds"
set yrange [0:*]
set style fill solid 0.6 border -1
set boxwidth 0.6
set grid ytics
unset key
plot "fullload.dat" using 1:3:xtic(2) with boxes lc rgb "#4477aa", \\
     "" using 1:3:4:5 with yerrorbars lc rgb "black" pt 0, \\
     "" using 1:($3):(sprintf("%%.1f s", $3)) with labels offset 0,1
""" % (fl["pgbench_scale"], fl.get("source_bytes", 0) / 1e6, fl["reps"]))
    return "fullload.png" if ok else None


def chart_apply(d, ap):
    s = ap.get("insert_summary") or {}
    rows = [(n, c["median_rows_per_s"], min(c["rows_per_s"]), max(c["rows_per_s"]))
            for n, c in s.items() if c.get("rows_per_s")]
    if not rows:
        return None
    with open(os.path.join(d, "apply.dat"), "w") as f:
        for i, (n, m, lo, hi) in enumerate(rows):
            f.write('%d "%s" %.1f %.1f %.1f\n' % (i, n, m, lo, hi))
    ok = gnuplot(d, """
set terminal pngcairo size 800,480 font "sans,10" noenhanced
set output "apply.png"
set title "Apply rate, %d rows in %d-row transactions (median of %d, bars: min-max)"
set ylabel "rows per second"
set yrange [0:*]
set style fill solid 0.6 border -1
set boxwidth 0.6
set grid ytics
unset key
plot "apply.dat" using 1:3:xtic(2) with boxes lc rgb "#228833", \\
     "" using 1:3:4:5 with yerrorbars lc rgb "black" pt 0, \\
     "" using 1:($3):(sprintf("%%.0f", $3)) with labels offset 0,1
""" % (ap["rows"], ap["txn_rows"], ap["reps"]))
    return "apply.png" if ok else None


def chart_lag(d, ap):
    path = os.path.join(d, "lag.csv")
    if not os.path.exists(path):
        return None
    rows = list(csv.DictReader(open(path)))
    runs = {}
    for r in rows:
        runs.setdefault((r["contender"], int(r["round"])), []).append(r)
    # per contender: the round with the median peak lag (ties: first)
    chosen = {}
    for name in ("pgstream", "native"):
        cand = [(max(int(x["lag_bytes"] or 0) for x in v), k) for k, v in runs.items() if k[0] == name]
        if cand:
            cand.sort()
            chosen[name] = cand[(len(cand) - 1) // 2][1]
    if not chosen:
        return None
    plots = []
    colors = {"pgstream": "#4477aa", "native": "#ee6677"}
    for name, key in chosen.items():
        fn = "lag-%s.dat" % name
        with open(os.path.join(d, fn), "w") as f:
            for x in runs[key]:
                f.write("%s %s %s %s\n" % (x["t"], int(x["lag_bytes"] or 0) / 1e6, x["rows_behind"],
                                            int(x["slot_lag_bytes"] or 0) / 1e6))
        plots.append('"%s" using 1:2 with lines lw 2 lc rgb "%s" title "%s (round %d)"'
                     % (fn, colors[name], name, key[1] + 1))
    ok2 = gnuplot(d, """
set terminal pngcairo size 900,480 font "sans,10" noenhanced
set output "slot-lag.png"
set title "Slot lag as the source sees it: pg_current_wal_lsn() - confirmed_flush_lsn (WAL the slot holds)"
set xlabel "seconds since pgbench start"
set ylabel "MB"
set yrange [0:*]
set grid
set key top left
plot %s
""" % ", ".join(p.replace("using 1:2", "using 1:4") for p in plots))
    ok = gnuplot(d, """
set terminal pngcairo size 900,480 font "sans,10" noenhanced
set output "lag.png"
set title "Apply lag during pgbench -c 4 -T %d (scale %d), then drain; source WAL position - applied LSN"
set xlabel "seconds since pgbench start"
set ylabel "lag (MB of source WAL)"
set yrange [0:*]
set grid
set arrow from %d, graph 0 to %d, graph 1 nohead dt 2 lc rgb "gray"
set key top left
plot %s
""" % (ap["pgbench_seconds"], ap["pgbench_scale"], ap["pgbench_seconds"], ap["pgbench_seconds"],
       ", ".join(plots)))
    return [f for f, good in (("lag.png", ok), ("slot-lag.png", ok2)) if good]


def main():
    d = sys.argv[1]
    fl, ap = load(d, "fullload.json"), load(d, "apply.json")
    if os.path.exists(os.path.join(d, "charts.gp")):
        os.remove(os.path.join(d, "charts.gp"))
    machine = (fl or ap or {}).get("machine", {})
    out = ["# pgstream benchmarks — %s" % os.path.basename(os.path.abspath(d)), ""]
    out.append("Machine: %s × %s, %s; load average at start %s (a shared machine: the "
               "contenders are interleaved, see below)."
               % (machine.get("nproc"), machine.get("cpu"), machine.get("postgres"),
                  " ".join(machine.get("loadavg_start", []))))
    out.append("pgstream: commit %s%s, binary sha256 %s… built %s."
               % (machine.get("pgstream_commit"),
                  " (engine/apply/protocol had uncommitted changes)" if machine.get("pgstream_tree_dirty") else "",
                  machine.get("pgstream_sha256"), machine.get("pgstream_built")))
    out.append("")
    res = {"generated": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine, "goals": {}}
    goals = []
    if fl:
        r = fl["ratios"]
        goals.append(("full load: pgstream / (pg_dump -Fd -j 2 + pg_restore -j 2)", r.get("pgstream/pg_dump"), ("≤", 0.6)))
        goals.append(("full load: pgstream / physical limit (%s: the raw method with the lower median)"
                      % (fl.get("physical_limit") or {}).get("contender", "raw"),
                      r.get("pgstream/physical limit"), ("≤", 1.15)))
    if ap:
        r = ap.get("ratios", {})
        goals.append(("insert stream: pgstream apply rate / native", r.get("insert apply rate pgstream/native"), ("≥", 2)))
        goals.append(("pgbench: pgstream peak lag / native", r.get("peak lag pgstream/native"), ("≤", 1)))
        goals.append(("pgbench: pgstream drain time / native", r.get("drain time pgstream/native"), ("≤", 1)))
        goals.append(("10 ms RTT: pgstream rate / its no-latency rate", r.get("10 ms RTT rate / direct rate"), ("≥", 0.7)))
    out += ["## Goals", "",
            "Ratio = median of the per-round ratios (the contenders of one round ran back to back, so "
            "background load on this shared machine cancels best there). Also shown: the ratio of the "
            "medians, the ratio of each side's best run (background load only ever slows a run, so the "
            "best runs are the least disturbed) and every round's ratio.", "",
            "| goal | ratio | ratio of medians | ratio of best runs | per round | target | |",
            "|---|---|---|---|---|---|---|"]
    for name, c, target in goals:
        met = goal_met(c, target)
        out.append("| %s | %s | %s %g | %s |" % (name, ratio_cells(c), target[0], target[1],
                                                 "not measured" if met is None else "**met**" if met else "missed"))
        res["goals"][name] = {"ratio": c.get("ratio") if c else None,
                              "ratio_of_medians": c.get("of_medians") if c else None,
                              "per_round": c.get("per_round") if c else None,
                              "ratio_of_best_runs": c.get("of_bests") if c else None,
                              "target": "%s %g" % target, "met": met}
    out.append("")

    if fl:
        res["fullload"] = {k: fl[k] for k in ("pgbench_scale", "jobs", "reps", "source_bytes", "contenders", "ratios")}
        out += ["## Full load", "",
                "Source: `pgbench -i -s %d` (%.0f MB database). Each contender loads a fresh empty target "
                "database, %d at a time; %d rounds, order rotated each round; every target is checked "
                "(row counts, indexes, constraints) against the source. Times are wall-clock medians."
                % (fl["pgbench_scale"], fl.get("source_bytes", 0) / 1e6, fl["jobs"], fl["reps"]), "",
                "| contender | median s | runs (s) | pgstream / this | phases (median s) |", "|---|---|---|---|---|"]
        for name, c in fl["contenders"].items():
            ph = c.get("median_phases") or {}
            ratio = (fl["ratios"].get("pgstream/" + name) or {}).get("ratio") if name != "pgstream" else None
            out.append("| %s<br>`%s` | %s | %s | %s | %s |" % (
                name, c["label"].replace("|", "\\|"), fmt(c.get("median_total_s")),
                ", ".join("%.2f" % x for x in c.get("total_s", [])) + (
                    "" if c["verified_runs"] == c["runs"] else " (%d of %d runs failed)" % (c["runs"] - c["verified_runs"], c["runs"])),
                fmt(ratio), ", ".join("%s %s" % (k.replace("_s", ""), fmt(v)) for k, v in ph.items())))
        p = fl["contenders"].get("pgstream", {})
        out += ["", "pgstream peak RSS %s MB, CPU (user+sys) %s s per run (medians)."
                % (fmt((p.get("median_max_rss_kb") or 0) / 1024, 1), fmt(p.get("median_cpu_s"))), "",
                "| ratio | paired median | ratio of medians | ratio of best runs | per round |", "|---|---|---|---|---|"]
        out += ["| %s | %s |" % (k, ratio_cells(v)) for k, v in fl["ratios"].items()]
        out.append("")
        img = chart_fullload(d, fl)
        if img:
            out += ["![full load](%s)" % img, ""]

    if ap:
        res["apply"] = {k: ap.get(k) for k in ("rows", "txn_rows", "reps", "lag_reps", "pgbench_seconds",
                                                 "pgbench_scale", "delay_ms_each_way", "rtt_ms",
                                                 "insert_summary", "lag_summary", "ratios")}
        s = ap.get("insert_summary") or {}
        if s:
            out += ["## Apply: insert stream", "",
                    "%d rows inserted on the source in %d-row transactions while no apply runs (the slots keep "
                    "the WAL), then each contender applies them alone; time from starting it (`ALTER "
                    "SUBSCRIPTION ENABLE` / starting `pgstream sync` again) until the target has the last row. "
                    "%d rounds, order rotated." % (ap["rows"], ap["txn_rows"], ap["reps"]), "",
                    "| contender | median rows/s | median apply s | after first rows, rows/s | first rows after s | CPU µs/row | CPU s: source / target / pgstream | runs (rows/s) |",
                    "|---|---|---|---|---|---|---|---|"]
            for name, c in s.items():
                cpu = c.get("median_cpu_s") or {}
                out.append("| %s | %.0f | %s | %s | %s | %s | %s | %s |" % (
                    name, c["median_rows_per_s"], fmt(c["median_apply_s"]),
                    fmt(c.get("median_steady_rows_per_s"), 0), fmt(c.get("median_first_rows_s")),
                    fmt(c.get("median_cpu_us_per_row"), 1),
                    " / ".join(fmt(cpu.get(k), 1) for k in ("source", "target", "pgstream")) if cpu else "–",
                    ", ".join(str(x) for x in c["rows_per_s"])))
            out += ["", "CPU: seconds used while applying by the source cluster (walsender decoding), "
                    "the target cluster (native's apply worker / pgstream's backends) and the pgstream "
                    "process; µs/row is their sum per row (medians)."]
            rtt = ap.get("rtt_ms") or {}
            px = s.get("pgstream_proxy10", {})
            out += ["", "Latency: `delayproxy.py` between pgstream and the target, %g ms each way. "
                    "Round trip of `SELECT 1` as a client sees it: direct TCP %s ms, proxy 0 ms %s ms, "
                    "proxy %g ms %s ms. Proxy CPU during a run: %s s (it is not the bottleneck when this "
                    "is well below the run time)." % (
                        ap["delay_ms_each_way"], fmt(rtt.get("direct_tcp")), fmt(rtt.get("proxy0")),
                        ap["delay_ms_each_way"], fmt(rtt.get("proxy10")), fmt(px.get("median_proxy_cpu_s"))),
                    ""]
            img = chart_apply(d, ap)
            if img:
                out += ["![apply rate](%s)" % img, ""]
        lg = ap.get("lag_summary") or {}
        if lg:
            out += ["## Apply: pgbench lag", "",
                    "Fresh `pgbench -i -s %d` source and empty target per run; full sync until streaming, then "
                    "`pgbench -c 4 -T %d -n` on the source, sampled every second. Lag = source "
                    "`pg_current_wal_lsn()` − the applied LSN the target recorded with the data "
                    "(pgstream.migration.applied_lsn / pg_replication_origin_status.remote_lsn). Drain = pgbench "
                    "exit until the target has every pgbench transaction (polled every 50 ms). Apply CPU = CPU of the "
                    "target cluster plus the pgstream process from pgbench start to drained, per pgbench "
                    "transaction. Slot lag = `pg_current_wal_lsn() - confirmed_flush_lsn`, i.e. what the "
                    "source's monitoring sees and how much WAL the slot holds back. %d rounds, order alternated."
                    % (ap["pgbench_scale"], ap["pgbench_seconds"], ap["lag_reps"]), "",
                    "| contender | pgbench tps | peak lag MB | p95 lag MB | mean lag MB | peak txns behind | peak lag s | drain s | peak slot lag MB (feedback) | apply CPU ms/txn | runs: peak MB / drain s |",
                    "|---|---|---|---|---|---|---|---|---|---|---|"]
            for name, c in lg.items():
                out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    name, fmt(c.get("pgbench_tps"), 0), mb(c.get("peak_lag_bytes")), mb(c.get("p95_lag_bytes")),
                    mb(c.get("mean_lag_bytes")),
                    fmt(c.get("peak_rows_behind"), 0), fmt(c.get("peak_lag_seconds")), fmt(c.get("drain_s")),
                    mb(c.get("peak_slot_lag_bytes")), fmt(c.get("apply_cpu_ms_per_txn")),
                    "; ".join("%s / %s" % (mb(a), fmt(b)) for a, b in zip(c["peak_lag_bytes_all"], c["drain_s_all"]))))
            out.append("")
            for img in chart_lag(d, ap) or []:
                out += ["![%s](%s)" % (img[:-4], img), ""]
            out += ["Time series: `lag.csv`.", ""]
        if ap.get("ratios"):
            out += ["### Apply ratios", "", "| ratio | paired median | ratio of medians | ratio of best runs | per round |", "|---|---|---|---|---|"]
            out += ["| %s | %s |" % (k, ratio_cells(v)) for k, v in ap["ratios"].items()]
            out.append("")
    if not shutil.which("gnuplot"):
        out += ["(no charts: gnuplot is not installed)", ""]
    with open(os.path.join(d, "report.md"), "w") as f:
        f.write("\n".join(out))
    with open(os.path.join(d, "results.json"), "w") as f:
        json.dump(res, f, indent=2)
    print("\n".join(out[:30]))


if __name__ == "__main__":
    main()
