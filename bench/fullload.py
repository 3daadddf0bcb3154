#!/usr/bin/env python3
"""bench/fullload.py -- offline full load: pgstream against the alternatives.

Source: pgbench -i -s 20*BENCH_SCALE.  Contenders, each into a fresh empty
target database, the order rotated every round, BENCH_FULLLOAD_REPS rounds (default
7); the median of each contender's total wall time is reported:

  pgstream      pgstream sync --no-follow --jobs 2 (under /usr/bin/time -v)
  pg_dump       pg_dump -Fd -j 2, then pg_restore -j 2 (total of both)
  raw           bench/rawcopy.py: psql COPY TO STDOUT | psql COPY FROM STDIN pipes
  raw_fifo      bench/rawcopy.py --fifo-dir: server to server through FIFOs, no
                client in between (local clusters only)
The physical limit is whichever of raw and raw_fifo has the lower median.
  pgcopydb      pgcopydb clone --table-jobs 2 --index-jobs 2 (if installed)

Every target is checked afterwards (row count per table, number of indexes
and constraints) against the source; a run that fails the check has no time.
Writes fullload.json into the results directory.
"""

import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawcopy  # noqa: E402
from benchlib import (pgstream_exe, SCALE, TIME_BIN, Servers, Session, log, median, now,  # noqa: E402
                      parse_time_v, pg, psql, recreate_db, drop_db, drop_slot_and_pub,
                      results_dir, rotate, compare, run, write_json, loadavg, machine_info)

JOBS = int(os.environ.get("BENCH_JOBS", "2"))
SRC_DB = "bench_fl_src"
TGT_DB = "bench_fl_tgt"

COUNT_SQL = """
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp)' ORDER BY 1"""

SHAPE_SQL = """
SELECT (SELECT count(*) FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'information_schema')),
       (SELECT count(*) FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND co.contype IN ('p','u','f','x'))"""


def fingerprint(conninfo):
    """Row count per table plus index/constraint counts."""
    tables = psql(conninfo, COUNT_SQL).splitlines()
    q = " UNION ALL ".join("SELECT '%s', count(*) FROM %s" % (t, t) for t in tables)
    counts = dict(l.split("|") for l in psql(conninfo, q).splitlines()) if tables else {}
    idx, cons = psql(conninfo, SHAPE_SQL).split("|")
    return {"rows": counts, "indexes": int(idx), "constraints": int(cons)}


class PhasePoller(threading.Thread):
    """Note when pgstream.migration.phase first shows each value (0.25 s)."""

    def __init__(self, conninfo):
        super().__init__(daemon=True)
        self.conninfo = conninfo
        self.seen = {}          # phase -> wall-clock time first seen
        self.stop = threading.Event()

    def run(self):
        s = Session(self.conninfo)
        try:
            while not self.stop.is_set():
                v = s.value("SELECT phase FROM pgstream.migration")
                if v and v not in self.seen:
                    self.seen[v] = time.time()
                self.stop.wait(0.25)
        finally:
            s.close()


LOG_RE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{3}) (\w+)\s+(.*)$")
LOG_MARKS = (("slot", "created slot"), ("copy", "copying data with"),
             ("index", "building "), ("done", "done: "))


def parse_pgstream_log(text):
    """Wall-clock time of pgstream's phase log lines (local time, ms)."""
    marks = {}
    for line in text.splitlines():
        m = LOG_RE.match(line)
        if not m:
            continue
        t = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000
        for key, prefix in LOG_MARKS:
            if m.group(4).startswith(prefix) and key not in marks:
                marks[key] = t
    return marks


def pgstream_phases(t_start, t_end, marks, seen):
    """startup (to the slot), schema, copy, index, final (FKs, sequences,
    ANALYZE, row counts, clean-up), exit.  index/final split by the poller."""
    pts = [("startup_s", t_start, marks.get("slot")),
           ("schema_s", marks.get("slot"), marks.get("copy")),
           ("copy_s", marks.get("copy"), marks.get("index")),
           ("index_s", marks.get("index"), seen.get("final")),
           ("final_s", seen.get("final"), marks.get("done")),
           ("exit_s", marks.get("done"), t_end)]
    return {k: round(b - a, 3) if a is not None and b is not None else None for k, a, b in pts}


def run_pgstream(srv, src, tgt, work):
    timef = os.path.join(work, "time.txt")
    argv = [pgstream_exe(), "sync", "--no-follow", "--jobs", str(JOBS), "--source", src,
            "--target", tgt, "--slot", "bench_fl", "--spool-dir", os.path.join(work, "spool")]
    if TIME_BIN:
        argv = [TIME_BIN, "-v", "-o", timef] + argv
    poller = PhasePoller(tgt)
    poller.start()
    t_start, t0 = time.time(), now()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    total, t_end = now() - t0, time.time()
    poller.stop.set()
    poller.join()
    with open(os.path.join(work, "pgstream-fullload.log"), "a") as f:
        f.write(p.stderr + "\n")
    if p.returncode != 0:
        raise RuntimeError("pgstream exited %d: %s" % (p.returncode, p.stderr[-1500:]))
    res = {"total_s": total}
    res.update(parse_time_v(timef))
    res["phases"] = pgstream_phases(t_start, t_end, parse_pgstream_log(p.stderr), poller.seen)
    res["log"] = [l for l in p.stderr.splitlines() if " INFO " in l][-12:]
    return res


def run_pg_dump(srv, src, tgt, work):
    d = os.path.join(work, "dump")
    shutil.rmtree(d, ignore_errors=True)
    t0 = now()
    run([pg("pg_dump"), "-Fd", "-j", str(JOBS), "-f", d, "-d", src])
    t1 = now()
    run([pg("pg_restore"), "-j", str(JOBS), "-d", tgt, d])
    t2 = now()
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    shutil.rmtree(d, ignore_errors=True)
    return {"total_s": t2 - t0, "phases": {"dump_s": t1 - t0, "restore_s": t2 - t1},
            "dump_bytes": size}


def run_raw(srv, src, tgt, work, fifo=False):
    r = rawcopy.load(src, tgt, jobs=JOBS, split_mb=64, max_parts=4,
                     fmt=os.environ.get("BENCH_RAW_FORMAT", "text"), out=None,
                     fifo_dir=srv.scratch("fifo") if fifo else None)
    return {"total_s": r["total_s"], "phases": {k: r[k] for k in ("schema_s", "copy_s", "index_s")},
            "copy_tasks": r["copy_tasks"]}


def run_raw_fifo(srv, src, tgt, work):
    return run_raw(srv, src, tgt, work, fifo=True)


def uri(srv, db):
    """pgcopydb 0.10 wants URIs."""
    s = srv
    if hasattr(s, "sockdir"):
        return "postgres:///%s?host=%s&port=%d&user=postgres" % (db, s.sockdir, s.port)
    return s.conninfo(db)


def run_pgcopydb(srv, src, tgt, work):
    d = os.path.join(work, "pgcopydb")
    shutil.rmtree(d, ignore_errors=True)
    env = dict(os.environ, PATH=os.path.dirname(pg("pg_dump")) + ":" + os.environ["PATH"])
    timef = os.path.join(work, "time-pgcopydb.txt")
    argv = ["pgcopydb", "clone", "--source", uri(srv.source, SRC_DB),
            "--target", uri(srv.target, TGT_DB), "--dir", d, "--table-jobs", str(JOBS),
            "--index-jobs", str(JOBS), "--split-tables-larger-than", "64MB"]
    if TIME_BIN:
        argv = [TIME_BIN, "-v", "-o", timef] + argv
    t0 = now()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    total = now() - t0
    with open(os.path.join(work, "pgcopydb.log"), "a") as f:
        f.write(p.stderr + "\n")
    shutil.rmtree(d, ignore_errors=True)
    if p.returncode != 0:
        raise RuntimeError("pgcopydb exited %d: %s" % (p.returncode, p.stderr[-1500:]))
    res = {"total_s": total}
    res.update(parse_time_v(timef))
    return res


CONTENDERS = {
    "pgstream": ("pgstream sync --no-follow --jobs %d" % JOBS, run_pgstream),
    "pg_dump": ("pg_dump -Fd -j %d + pg_restore -j %d" % (JOBS, JOBS), run_pg_dump),
    "raw": ("psql COPY TO STDOUT | psql COPY FROM STDIN pipes + index builds, %d at a time" % JOBS, run_raw),
    "raw_fifo": ("server COPY TO fifo -> server COPY FROM fifo (no client in between) + index builds, "
                 "%d at a time" % JOBS, run_raw_fifo),
    "pgcopydb": ("pgcopydb clone --table-jobs %d --index-jobs %d" % (JOBS, JOBS), run_pgcopydb),
}


def main():
    out = results_dir()
    scale = max(1, int(round(20 * SCALE)))
    nrep = int(os.environ.get("BENCH_FULLLOAD_REPS", "7"))
    names = [n for n in os.environ.get("BENCH_FULLLOAD", "pgstream,pg_dump,raw,raw_fifo,pgcopydb").split(",")]
    if "pgcopydb" in names and not shutil.which("pgcopydb"):
        log("pgcopydb not installed: skipped (apt-get install pgcopydb)")
        names.remove("pgcopydb")
    result = {"benchmark": "fullload", "pgbench_scale": scale, "jobs": JOBS, "reps": nrep,
              "machine": machine_info(), "contenders": {}, "runs": []}
    with Servers("fullload") as srv:
        if srv.external and "raw_fifo" in names:
            log("raw_fifo needs both servers on this machine: skipped")
            names.remove("raw_fifo")
        src = srv.source.conninfo(SRC_DB)
        tgt = srv.target.conninfo(TGT_DB)
        log("loading the source: pgbench -i -s %d" % scale)
        recreate_db(srv.source, SRC_DB)
        run([pg("pgbench"), "-i", "-q", "-s", str(scale), "-d", src])
        psql(src, "VACUUM ANALYZE")
        result["source_bytes"] = int(psql(src, "SELECT pg_database_size(current_database())"))
        want = fingerprint(src)
        result["source_fingerprint"] = want
        work = srv.scratch("fullload")
        for rnd in range(nrep):
            for name in rotate(names, rnd):
                recreate_db(srv.target, TGT_DB)
                psql(srv.source.admin(), "CHECKPOINT", check=False)
                psql(srv.target.admin(), "CHECKPOINT", check=False)
                la = loadavg()
                log("round %d/%d: %s" % (rnd + 1, nrep, name))
                entry = {"round": rnd, "contender": name, "loadavg": la}
                try:
                    entry.update(CONTENDERS[name][1](srv, src, tgt, work))
                    got = fingerprint(tgt)
                    entry["verified"] = got == want
                    if not entry["verified"]:
                        entry["verify_error"] = {"want": want, "got": got}
                        log("  %s: TARGET DIFFERS from the source: %s" % (name, got))
                except Exception as e:  # a broken run never counts as fast
                    entry["error"] = str(e)[-2000:]
                    entry["verified"] = False
                    log("  %s failed: %s" % (name, str(e)[-500:]))
                if entry.get("verified"):
                    log("  %s: %.2f s" % (name, entry["total_s"]))
                else:
                    entry["total_s_unverified"] = entry.pop("total_s", None)
                result["runs"].append(entry)
                drop_slot_and_pub(srv.source.conninfo(SRC_DB), slot="bench_fl")
                write_json(os.path.join(out, "fullload.json"), result)
        drop_db(srv.target, TGT_DB)
        drop_db(srv.source, SRC_DB)
    for name in names:
        runs = [r for r in result["runs"] if r["contender"] == name]
        ok = [r for r in runs if r.get("verified")]
        c = {"label": CONTENDERS[name][0], "runs": len(runs), "verified_runs": len(ok),
             "total_s": [round(r["total_s"], 3) for r in ok],
             "median_total_s": median([r["total_s"] for r in ok])}
        if name == "pgstream" and ok:
            c["median_max_rss_kb"] = median([r.get("max_rss_kb") for r in ok])
            c["median_cpu_s"] = median([r.get("user_s", 0) + r.get("sys_s", 0) for r in ok])
            phases = {}
            for r in ok:
                for k, v in r.get("phases", {}).items():
                    if v is not None:
                        phases.setdefault(k, []).append(v)
            order = ["startup_s", "schema_s", "copy_s", "index_s", "final_s", "exit_s"]
            c["median_phases"] = {k: median(phases[k]) for k in order if k in phases}
        elif ok and ok[0].get("phases"):
            c["median_phases"] = {k: median([r["phases"].get(k) for r in ok])
                                  for k in ok[0]["phases"]}
        result["contenders"][name] = c
    ratios = {}
    runs = result["runs"]
    for other in ("pg_dump", "raw", "raw_fifo", "pgcopydb"):
        if other in names:
            ratios["pgstream/" + other] = compare(runs, "pgstream", other, "total_s")
    # the physical limit: the faster of the two raw methods, round by round
    # the physical limit: whichever raw method has the lower median
    lim = [(result["contenders"][n]["median_total_s"], n) for n in ("raw", "raw_fifo")
           if n in names and result["contenders"][n]["median_total_s"]]
    if lim:
        result["physical_limit"] = {"contender": min(lim)[1], "median_total_s": min(lim)[0]}
        ratios["pgstream/physical limit"] = compare(runs, "pgstream", min(lim)[1], "total_s")
        if "pg_dump" in names:  # is goal (a) reachable at all here?
            ratios["physical limit/pg_dump"] = compare(runs, min(lim)[1], "pg_dump", "total_s")
    result["ratios"] = ratios
    result["goals"] = {"pgstream/pg_dump": 0.6, "pgstream/physical limit": 1.15}
    write_json(os.path.join(out, "fullload.json"), result)
    for k, v in ratios.items():
        if v["ratio"] is not None:
            log("%s = %.3f (per round %s; ratio of medians %.3f, of best runs %.3f)"
                % (k, v["ratio"], v["per_round"], v["of_medians"], v["of_bests"]))


if __name__ == "__main__":
    main()
