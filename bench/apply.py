#!/usr/bin/env python3
"""bench/apply.py -- live apply: pgstream sync against native logical
replication (CREATE SUBSCRIPTION), on the same pair of servers.

Part 1, insert stream (BENCH_REPS rounds, default 5).  Each round: a fresh
source database with one empty table; every contender gets its own target
database and its own slot on the source and is brought to streaming, then
stopped (the slot keeps the WAL):

  native            CREATE SUBSCRIPTION ... WITH (copy_data = false, enabled = false)
  pgstream          pgstream sync, run until phase "streaming", then SIGTERM
  pgstream_proxy0   the same, its target connections through delayproxy.py, 0 ms
  pgstream_proxy10  the same through delayproxy.py with 5 ms each way (10 ms RTT)

Then 1M*BENCH_SCALE rows are inserted on the source in 20 000-row
transactions while nobody applies.  Then, one contender at a time (order
rotated each round), apply is started (ALTER SUBSCRIPTION ENABLE / pgstream
sync again) and timed until the target's max(id) is the last id (polled
every 50 ms); the target is then checked (count, sums) against the source.
Apply rate = rows / that time.  This measures apply alone, not generation.

Part 2, pgbench (BENCH_LAG_REPS rounds, default 3): for each contender in
turn a fresh source with pgbench -i -s 10*BENCH_SCALE and a fresh target,
full sync (subscription with copy_data / pgstream sync) until streaming,
then pgbench -c 4 -T 60*BENCH_SCALE -n on the source.  Lag is sampled
every second from pgbench start until the target has every pgbench
transaction (pgbench_history count equal to the source's), as
  lag_bytes    = pg_current_wal_lsn() on the source - applied LSN on the target
                 (pgstream.migration.applied_lsn / pg_replication_origin_status
                 .remote_lsn: both the end LSN of the last applied source commit,
                 recorded by the apply transaction itself)
  rows_behind  = pgbench transactions committed on the source, not yet on the target
  lag_seconds  = now() - max(pgbench_history.mtime) on the target (while pgbench runs)
  slot_lag_bytes = pg_current_wal_lsn() - confirmed_flush_lsn of the slot (feedback)
  walsender_behind_bytes = pg_current_wal_lsn() - sent_lsn of the slot's walsender
                 (how far the source's decoding is behind its WAL: the part of
                 the lag no applier can remove, except by leaving it CPU)
Drain time = pgbench exit to the target having all of pgbench's transactions.
Also per run: CPU of the slot's walsender per pgbench transaction and the time
it spent runnable but waiting for a CPU (schedstat run_delay), local clusters
only.  BENCH_LAG_SAMPLE_S (default 1) sets the sampling interval.

Writes apply.json and lag.csv into the results directory.
"""

import csv
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (pgstream_exe, pgstream_has_option, SCALE, Servers, Session, drop_db, drop_slot_and_pub,  # noqa: E402
                      kill_tree, log, lsn_int, machine_info, median, now, pg, psql,
                      recreate_db, results_dir, rotate, run, write_json, loadavg, compare,
                      process_cpu_seconds)

ROWS = int(os.environ.get("BENCH_ROWS", int(1_000_000 * SCALE)))
TXN_ROWS = 20_000
PGB_SECONDS = int(os.environ.get("BENCH_PGBENCH_SECONDS", int(round(60 * SCALE))))
PGB_SCALE = max(1, int(round(10 * SCALE)))
DELAY_MS = float(os.environ.get("BENCH_DELAY_MS", "5"))
WAIT_TIMEOUT = float(os.environ.get("BENCH_APPLY_TIMEOUT", "900"))
# Lag sampling interval while pgbench runs; the peak is the highest sample,
# so a finer interval finds higher peaks for both contenders.
LAG_SAMPLE_S = float(os.environ.get("BENCH_LAG_SAMPLE_S", "1.0"))
# How the appliers reach the servers.  "tcp" (default): the replication
# stream (both contenders) and pgstream's target sessions go over loopback
# TCP, as any real migration's do; "unix": Unix-domain sockets.
LINK = os.environ.get("BENCH_LINK", "tcp")
if LINK not in ("tcp", "unix"):
    sys.exit("BENCH_LINK must be tcp or unix")


def link_conninfo(server, db):
    return server.tcp_conninfo(db) if LINK == "tcp" else server.conninfo(db)

SRC1, SRC2 = "bench_ap_src", "bench_lag_src"
TABLE_SQL = ("CREATE TABLE bench_ins (id bigint PRIMARY KEY, k int NOT NULL, v text NOT NULL,"
             " ts timestamptz NOT NULL DEFAULT now())")
CHECK_SQL = "SELECT count(*), coalesce(sum(id), 0), coalesce(sum(k), 0), coalesce(sum(length(v)), 0) FROM bench_ins"
PGB_CHECK_SQL = ("SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM"
                 " pgbench_tellers), (SELECT sum(bbalance) FROM pgbench_branches),"
                 " (SELECT count(*) FROM pgbench_history)")


# ------------------------------------------------------------------------
# contenders
# ------------------------------------------------------------------------

class Proxy:
    def __init__(self, endpoint, delay_ms, logpath):
        self.delay_ms = delay_ms
        self.p = subprocess.Popen(
            [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "delayproxy.py"),
             "--listen", "127.0.0.1:0", "--connect", "%s:%d" % endpoint, "--delay-ms", str(delay_ms)],
            stdout=subprocess.PIPE, stderr=open(logpath, "a"), text=True, start_new_session=True)
        self.port = int(self.p.stdout.readline().split()[1])

    def cpu_seconds(self):
        return process_cpu_seconds(self.p.pid)

    def stop(self):
        kill_tree(self.p)


class Pgstream:
    """pgstream sync (following) for one target database."""

    def __init__(self, srv, name, src, tgt_db, slot, workdir, proxy=None):
        self.srv, self.name, self.src, self.slot = srv, name, src, slot
        self.tgt_db = tgt_db
        self.direct = srv.target.conninfo(tgt_db)       # for our own polling
        self.via = (srv.target.tcp_conninfo(tgt_db, proxy.port) if proxy
                    else link_conninfo(srv.target, tgt_db))
        self.proxy = proxy
        self.spool = os.path.join(workdir, "spool-" + slot)
        self.logpath = os.path.join(workdir, "pgstream-%s.log" % name)
        self.p = None
        self.max_rss_kb = None
        self.extra = []

    def start(self):
        log_f = open(self.logpath, "a")
        self.p = subprocess.Popen(
            [pgstream_exe(), "sync", "--source", self.src, "--target", self.via, "--slot", self.slot,
             "--publication", self.slot, "--spool-dir", self.spool, "--quiet"] + self.extra,
            stdout=log_f, stderr=log_f, start_new_session=True)

    def wait_streaming(self, timeout=600):
        s = Session(self.direct)
        try:
            t0 = now()
            while now() - t0 < timeout:
                if self.p.poll() is not None:
                    raise RuntimeError("pgstream sync exited %d (see %s)" % (self.p.returncode, self.logpath))
                if s.value("SELECT phase FROM pgstream.migration") == "streaming":
                    return now() - t0
                time.sleep(0.2)
            raise RuntimeError("pgstream did not reach streaming in %d s" % timeout)
        finally:
            s.close()

    def stop(self):
        if self.p is None:
            return
        try:
            for line in open("/proc/%d/status" % self.p.pid):
                if line.startswith("VmHWM:"):
                    self.max_rss_kb = int(line.split()[1])
        except OSError:
            pass
        kill_tree(self.p, signal.SIGTERM, wait=60)
        self.p = None

    def applied_sql(self):
        return "SELECT applied_lsn::text FROM pgstream.migration"

    def teardown(self):
        self.stop()
        drop_slot_and_pub(self.src, slot=self.slot, pub=self.slot)
        drop_slot_and_pub(self.src, pub=self.slot + "_insert_only")


class Native:
    """CREATE SUBSCRIPTION on the target; apply worker settings are defaults."""

    def __init__(self, srv, name, src, src_from_target, tgt_db, slot):
        self.srv, self.name, self.src, self.slot = srv, name, src, slot
        self.src_from_target = src_from_target
        self.tgt_db = tgt_db
        self.direct = srv.target.conninfo(tgt_db)

    def create(self, tables, copy_data, enabled):
        psql(self.src, "CREATE PUBLICATION %s FOR TABLE %s" % (self.slot, ", ".join(tables)))
        lit = "'" + self.src_from_target.replace("'", "''") + "'"
        psql(self.direct, "CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION %s WITH (copy_data = %s,"
             " enabled = %s, slot_name = '%s')" % (self.slot, lit, self.slot, copy_data, enabled, self.slot))

    def start(self):
        psql(self.direct, "ALTER SUBSCRIPTION %s ENABLE" % self.slot)

    def wait_streaming(self, timeout=600):
        t0 = now()
        s = Session(self.direct)
        try:
            while now() - t0 < timeout:
                r = s.query("SELECT (SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'),"
                            " (SELECT count(*) FROM pg_stat_subscription WHERE subname = '%s'"
                            " AND relid IS NULL AND pid IS NOT NULL)" % self.slot)
                if r and r[0] == "0" and r[1] == "1":
                    return now() - t0
                time.sleep(0.2)
            raise RuntimeError("subscription did not reach streaming in %d s" % timeout)
        finally:
            s.close()

    def stop(self):
        psql(self.direct, "ALTER SUBSCRIPTION %s DISABLE" % self.slot, check=False)
        for _ in range(300):  # the worker exits asynchronously
            if psql(self.direct, "SELECT count(*) FROM pg_stat_subscription WHERE subname = '%s'"
                    " AND pid IS NOT NULL" % self.slot, check=False) in ("0", ""):
                break
            time.sleep(0.1)

    def applied_sql(self):
        return ("SELECT remote_lsn::text FROM pg_replication_origin_status"
                " WHERE external_id = (SELECT 'pg_' || oid FROM pg_subscription WHERE subname = '%s')"
                % self.slot)

    def teardown(self):
        psql(self.direct, "DROP SUBSCRIPTION IF EXISTS %s" % self.slot, check=False)
        drop_slot_and_pub(self.src, slot=self.slot, pub=self.slot)


def cpu_split(srv, src0, tgt0, c):
    """CPU seconds since (src0, tgt0): source cluster (walsender decoding),
    target cluster (apply worker or pgstream's backends), pgstream itself."""
    src1, tgt1 = srv.source.cpu_seconds(), srv.target.cpu_seconds()
    if src1 is None or tgt1 is None:
        return None
    ps = process_cpu_seconds(c.p.pid) if isinstance(c, Pgstream) and c.p else None
    out = {"source": round(src1 - src0, 2), "target": round(tgt1 - tgt0, 2),
           "pgstream": round(ps or 0.0, 2)}
    out["apply_total"] = round(out["source"] + out["target"] + out["pgstream"], 2)
    return out


# ------------------------------------------------------------------------
# part 1: insert stream
# ------------------------------------------------------------------------

INSERT_CONTENDERS = ["native", "pgstream", "pgstream_proxy0", "pgstream_proxy10"]


def make_contender(srv, name, src_db, work, proxies):
    src = link_conninfo(srv.source, src_db)
    tgt_db = "bench_t_" + name
    slot = "bench_" + name
    if name == "native":
        from_tgt = os.environ.get("BENCH_SOURCE_FROM_TARGET")
        from_tgt = (from_tgt + " dbname=" + src_db) if from_tgt else src
        return Native(srv, name, src, from_tgt, tgt_db, slot)
    return Pgstream(srv, name, src, tgt_db, slot, work, proxies.get(name))


def run_delay_s(pid):
    """Seconds the process spent runnable but waiting for a CPU (schedstat)."""
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def rtt_ms(conninfo, n=50):
    s = Session(conninfo)
    try:
        s.value("SELECT 1")
        t0 = now()
        for _ in range(n):
            s.value("SELECT 1")
        return (now() - t0) / n * 1000
    finally:
        s.close()


def insert_round(srv, rnd, nrep, names, work, proxies, out_runs):
    src = srv.source.conninfo(SRC1)
    recreate_db(srv.source, SRC1)
    psql(src, TABLE_SQL)
    cs = {n: make_contender(srv, n, SRC1, work, proxies) for n in names}
    try:
        for name in names:  # set up every contender, bring it to streaming, stop it
            c = cs[name]
            recreate_db(srv.target, c.tgt_db)
            if isinstance(c, Native):
                psql(c.direct, TABLE_SQL)
                c.create(["bench_ins"], "false", "false")
            else:
                c.start()
                c.wait_streaming()
                c.stop()
        ntx = max(1, ROWS // TXN_ROWS)
        log("round %d/%d: generating %d rows in %d transactions (no apply running)"
            % (rnd + 1, nrep, ntx * TXN_ROWS, ntx))
        psql(srv.source.admin(), "CHECKPOINT", check=False)
        lsn0 = psql(src, "SELECT pg_current_wal_lsn()")
        s = Session(src)
        t0 = now()
        for i in range(ntx):
            s.value("INSERT INTO bench_ins (id, k, v) SELECT g, g %% 1000, md5(g::text)"
                    " FROM generate_series(%d, %d) g" % (i * TXN_ROWS + 1, (i + 1) * TXN_ROWS))
        gen_s = now() - t0
        s.close()
        lsn1 = psql(src, "SELECT pg_current_wal_lsn()")
        last_id = ntx * TXN_ROWS
        want = psql(src, CHECK_SQL)
        wal_bytes = lsn_int(lsn1) - lsn_int(lsn0)
        log("  generated in %.1f s, %.0f MB of WAL" % (gen_s, wal_bytes / 1e6))
        for name in rotate(names, rnd):
            c = cs[name]
            psql(srv.target.admin(), "CHECKPOINT", check=False)
            entry = {"round": rnd, "contender": name, "rows": last_id, "generate_s": gen_s,
                     "wal_bytes": wal_bytes, "loadavg": loadavg()}
            poll = Session(c.direct)
            proxy = getattr(c, "proxy", None)
            cpu0 = proxy.cpu_seconds() if proxy else None
            cpu_src0, cpu_tgt0 = srv.source.cpu_seconds(), srv.target.cpu_seconds()
            try:
                t0 = now()
                c.start()
                first = None
                while True:
                    v = int(poll.value("SELECT coalesce(max(id), 0) FROM bench_ins") or 0)
                    t = now() - t0
                    if v > 0 and first is None:
                        first = (t, v)
                    if v >= last_id:
                        break
                    if t > WAIT_TIMEOUT:
                        raise RuntimeError("not caught up after %d s (max id %d)" % (t, v))
                    if isinstance(c, Pgstream) and c.p.poll() is not None:
                        raise RuntimeError("pgstream exited %d" % c.p.returncode)
                    time.sleep(0.05)
                entry["apply_s"] = t
                entry["rows_per_s"] = last_id / t
                entry["first_rows_s"] = first[0]
                if first[0] < t:  # rate after the first rows showed up (no start-up)
                    entry["steady_rows_per_s"] = (last_id - first[1]) / (t - first[0])
                if proxy:
                    entry["proxy_cpu_s"] = proxy.cpu_seconds() - cpu0
                # while everything still runs (an exited process's CPU shows up
                # in its parent only once reaped)
                entry["cpu_s"] = cpu_split(srv, cpu_src0, cpu_tgt0, c)
                c.stop()
                if isinstance(c, Pgstream):
                    entry["max_rss_kb"] = c.max_rss_kb
                if entry["cpu_s"]:
                    entry["cpu_us_per_row"] = entry["cpu_s"]["apply_total"] / last_id * 1e6
                got = psql(c.direct, CHECK_SQL)
                entry["verified"] = got == want
                if not entry["verified"]:
                    entry["verify_error"] = {"want": want, "got": got}
                log("  %-17s %6.2f s  %8.0f rows/s%s" % (name, t, entry["rows_per_s"],
                                                          "" if entry["verified"] else "  TARGET DIFFERS"))
            except Exception as e:
                entry["error"] = str(e)[-2000:]
                entry["verified"] = False
                log("  %s failed: %s" % (name, e))
                c.stop()
            finally:
                poll.close()
            out_runs.append(entry)
    finally:
        for c in cs.values():
            try:
                c.teardown()
            except Exception as e:
                log("teardown %s: %s" % (c.name, e))
            drop_db(srv.target, c.tgt_db)
        drop_db(srv.source, SRC1)


# ------------------------------------------------------------------------
# part 2: pgbench lag
# ------------------------------------------------------------------------

def lag_run(srv, rnd, name, work, csv_rows):
    src = srv.source.conninfo(SRC2)
    recreate_db(srv.source, SRC2)
    run([pg("pgbench"), "-i", "-q", "-s", str(PGB_SCALE), "-d", src])
    psql(src, "VACUUM ANALYZE")
    c = make_contender(srv, name, SRC2, work, {})
    recreate_db(srv.target, c.tgt_db)
    entry = {"round": rnd, "contender": name, "pgbench_seconds": PGB_SECONDS,
             "pgbench_scale": PGB_SCALE, "loadavg": loadavg()}
    try:
        t0 = now()
        if isinstance(c, Native):
            dump = subprocess.Popen([pg("pg_dump"), "-s", "-d", src], stdout=subprocess.PIPE)
            run([pg("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", c.direct], stdin=dump.stdout)
            dump.wait()
            c.create(["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"],
                     "true", "true")
        else:
            # pgbench_history has no key; pgbench only inserts into it
            if pgstream_has_option("--no-key-tables"):
                c.extra = ["--no-key-tables=insert-only"]
            c.start()
        c.wait_streaming()
        entry["initial_sync_s"] = now() - t0
        psql(srv.source.admin(), "CHECKPOINT", check=False)
        psql(srv.target.admin(), "CHECKPOINT", check=False)
        ssrc, stgt = Session(src), Session(c.direct)
        ws_pid = int(ssrc.value("SELECT coalesce(active_pid, 0) FROM pg_replication_slots"
                                " WHERE slot_name = '%s'" % c.slot) or 0)
        src_q = ("SELECT pg_current_wal_lsn()::text, (SELECT count(*) FROM pgbench_history),"
                 " (SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint FROM pg_replication_slots"
                 " WHERE slot_name = '%s'),"
                 " (SELECT (pg_current_wal_lsn() - sent_lsn)::bigint FROM pg_stat_replication"
                 " WHERE pid = %d)" % (c.slot, ws_pid))
        tgt_q = ("SELECT (%s), (SELECT count(*) FROM pgbench_history),"
                 " extract(epoch FROM clock_timestamp() - (SELECT max(mtime) FROM pgbench_history))"
                 % c.applied_sql())
        if isinstance(c, Pgstream):
            tgt_q += ", (SELECT lag_bytes FROM pgstream.migration)"
        samples = []

        def sample(phase):
            t = now() - t_start
            # target first: the lag is then never under-stated
            r = stgt.query(tgt_q)
            s_lsn, s_rows, s_slot, s_behind = ssrc.query(src_q)
            a_lsn, t_rows, lag_s = r[0], r[1], r[2]
            row = {"round": rnd, "contender": name, "t": round(t, 3), "phase": phase,
                   "source_lsn": s_lsn, "applied_lsn": a_lsn,
                   "lag_bytes": (lsn_int(s_lsn) - lsn_int(a_lsn)) if lsn_int(a_lsn) else None,
                   "slot_lag_bytes": int(s_slot) if s_slot else None,
                   "walsender_behind_bytes": int(s_behind) if s_behind else None,
                   "rows_behind": int(s_rows) - int(t_rows),
                   "lag_seconds": round(float(lag_s), 3) if lag_s and phase == "pgbench" else None,
                   "pgstream_lag_bytes": (int(float(r[3])) if len(r) > 3 and r[3] else None)}
            samples.append(row)
            return row

        cpu_tgt0 = srv.target.cpu_seconds()
        ws0 = (process_cpu_seconds(ws_pid), run_delay_s(ws_pid)) if ws_pid else (None, None)
        cpu_ps0 = process_cpu_seconds(c.p.pid) if isinstance(c, Pgstream) else 0.0
        t_start = now()
        pgb_out = os.path.join(work, "pgbench-%s-%d.txt" % (name, rnd))
        with open(pgb_out, "w") as f:
            pgb = subprocess.Popen([pg("pgbench"), "-c", "4", "-T", str(PGB_SECONDS), "-n", "-d", src],
                                   stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        next_t = t_start
        while True:
            sample("pgbench")
            next_t += LAG_SAMPLE_S
            try:
                pgb.wait(timeout=max(0.0, next_t - now()))
                break
            except subprocess.TimeoutExpired:
                if now() - t_start > PGB_SECONDS + 120:
                    kill_tree(pgb)
                    raise RuntimeError("pgbench did not finish (see %s)" % pgb_out)
        t_end = now() - t_start
        ws1 = (process_cpu_seconds(ws_pid), run_delay_s(ws_pid)) if ws_pid else (None, None)
        out = open(pgb_out).read()
        entry["pgbench_exit"] = pgb.returncode
        for line in out.splitlines():
            if line.startswith("tps = "):
                entry["pgbench_tps"] = float(line.split()[2])
            if "number of transactions actually processed" in line:
                entry["pgbench_transactions"] = int(line.split(":")[1].split("/")[0])
        entry["source_history_rows"] = int(ssrc.value("SELECT count(*) FROM pgbench_history"))
        final_lsn = ssrc.value("SELECT pg_current_wal_lsn()")
        entry["source_wal_bytes"] = lsn_int(final_lsn) - lsn_int(samples[0]["source_lsn"])
        drained = None
        while now() - t_start - t_end < WAIT_TIMEOUT:
            row = sample("drain")  # the source count stays at final_rows now
            if row["rows_behind"] <= 0:
                drained = row["t"] - t_end
                break
            time.sleep(0.05)
        ssrc.close()
        stgt.close()
        if cpu_tgt0 is not None:
            ps = (process_cpu_seconds(c.p.pid) - cpu_ps0) if isinstance(c, Pgstream) else 0.0
            entry["apply_cpu_s"] = round(srv.target.cpu_seconds() - cpu_tgt0 + ps, 2)
            entry["pgstream_cpu_s"] = round(ps, 2)
            if entry.get("pgbench_transactions"):
                entry["apply_cpu_ms_per_txn"] = entry["apply_cpu_s"] / entry["pgbench_transactions"] * 1000
        if ws0[0] is not None and ws1[0] is not None and entry.get("pgbench_transactions"):
            ntx = entry["pgbench_transactions"]
            entry["walsender_cpu_us_per_txn"] = round((ws1[0] - ws0[0]) / ntx * 1e6, 1)
            if ws0[1] is not None and ws1[1] is not None:
                entry["walsender_run_delay_us_per_txn"] = round((ws1[1] - ws0[1]) / ntx * 1e6, 1)
        behind = sorted(s["walsender_behind_bytes"] for s in samples
                        if s["phase"] == "pgbench" and s["walsender_behind_bytes"] is not None)
        if behind:
            entry["p95_walsender_behind_bytes"] = behind[min(len(behind) - 1, int(0.95 * len(behind)))]
            entry["peak_walsender_behind_bytes"] = behind[-1]
        entry["pgbench_end_s"] = t_end
        entry["drain_s"] = drained
        during = [s for s in samples if s["lag_bytes"] is not None]
        entry["peak_lag_bytes"] = max((s["lag_bytes"] for s in during), default=None)
        entry["peak_rows_behind"] = max((s["rows_behind"] for s in samples), default=None)
        entry["peak_lag_seconds"] = max((s["lag_seconds"] for s in samples if s["lag_seconds"] is not None),
                                        default=None)
        entry["peak_slot_lag_bytes"] = max((s["slot_lag_bytes"] for s in samples
                                            if s["slot_lag_bytes"] is not None), default=None)
        lags = sorted(s["lag_bytes"] for s in during if s["phase"] == "pgbench")
        entry["p95_lag_bytes"] = lags[min(len(lags) - 1, int(0.95 * len(lags)))] if lags else None
        entry["mean_lag_bytes"] = (sum(s["lag_bytes"] for s in during if s["phase"] == "pgbench") /
                                   max(1, len([s for s in during if s["phase"] == "pgbench"])))
        c.stop()
        if isinstance(c, Pgstream):
            entry["max_rss_kb"] = c.max_rss_kb
        want, got = psql(src, PGB_CHECK_SQL), psql(c.direct, PGB_CHECK_SQL)
        entry["verified"] = drained is not None and want == got
        if want != got:
            entry["verify_error"] = {"want": want, "got": got}
        csv_rows.extend(samples)
        log("  %-9s tps %6.0f  peak lag %6.1f MB (%5d txns, %5.1f s)  drain %s s%s" % (
            name, entry.get("pgbench_tps", 0), (entry["peak_lag_bytes"] or 0) / 1e6,
            entry["peak_rows_behind"] or 0, entry["peak_lag_seconds"] or 0,
            "%.2f" % drained if drained is not None else "n/a",
            "" if entry["verified"] else "  NOT VERIFIED"))
        if "p95_walsender_behind_bytes" in entry:
            log("            walsender behind the WAL: p95 %.0f KB, peak %.0f KB; walsender CPU %s us,"
                " waiting for a CPU %s us per pgbench txn" % (
                    entry["p95_walsender_behind_bytes"] / 1e3, entry["peak_walsender_behind_bytes"] / 1e3,
                    entry.get("walsender_cpu_us_per_txn"), entry.get("walsender_run_delay_us_per_txn")))
    except Exception as e:
        entry["error"] = str(e)[-2000:]
        entry["verified"] = False
        log("  %s failed: %s" % (name, e))
    finally:
        try:
            c.teardown()
        except Exception as e:
            log("teardown %s: %s" % (name, e))
        drop_db(srv.target, c.tgt_db)
        drop_db(srv.source, SRC2)
    return entry


# ------------------------------------------------------------------------

def summarize(result):
    ins = result["insert_runs"]
    summary = {}
    for name in INSERT_CONTENDERS:
        ok = [r for r in ins if r["contender"] == name and r.get("verified")]
        if ok:
            summary[name] = {"runs": len(ok),
                             "rows_per_s": [round(r["rows_per_s"]) for r in ok],
                             "median_rows_per_s": median([r["rows_per_s"] for r in ok]),
                             "median_apply_s": median([r["apply_s"] for r in ok]),
                             "median_steady_rows_per_s": median([r.get("steady_rows_per_s") for r in ok]),
                             "median_first_rows_s": median([r.get("first_rows_s") for r in ok]),
                             "median_cpu_us_per_row": median([r.get("cpu_us_per_row") for r in ok])}
            cpus = [r["cpu_s"] for r in ok if r.get("cpu_s")]
            if cpus:
                summary[name]["median_cpu_s"] = {k: median([x[k] for x in cpus]) for k in cpus[0]}
            if name.startswith("pgstream"):
                summary[name]["median_max_rss_kb"] = median([r.get("max_rss_kb") for r in ok])
            if "proxy" in name:
                summary[name]["median_proxy_cpu_s"] = median([r.get("proxy_cpu_s") for r in ok])
    result["insert_summary"] = summary
    lag = {}
    for name in ("pgstream", "native"):
        ok = [r for r in result["lag_runs"] if r["contender"] == name and r.get("verified")]
        if ok:
            lag[name] = {k: median([r.get(k) for r in ok]) for k in
                         ("peak_lag_bytes", "p95_lag_bytes", "mean_lag_bytes", "peak_rows_behind",
                          "peak_lag_seconds", "drain_s", "pgbench_tps", "peak_slot_lag_bytes",
                          "initial_sync_s", "apply_cpu_s", "apply_cpu_ms_per_txn", "pgstream_cpu_s",
                          "p95_walsender_behind_bytes", "peak_walsender_behind_bytes",
                          "walsender_cpu_us_per_txn", "walsender_run_delay_us_per_txn")}
            lag[name]["runs"] = len(ok)
            lag[name]["drain_s_all"] = [r["drain_s"] for r in ok]
            lag[name]["peak_lag_bytes_all"] = [r["peak_lag_bytes"] for r in ok]
    result["lag_summary"] = lag

    ratios = {}
    for a, b, key, label in (
            ("pgstream", "native", "rows_per_s", "insert apply rate pgstream/native"),
            ("pgstream_proxy10", "pgstream", "rows_per_s", "10 ms RTT rate / direct rate"),
            ("pgstream_proxy10", "pgstream", "steady_rows_per_s",
             "10 ms RTT rate / direct rate, after the first rows"),
            ("pgstream_proxy10", "pgstream_proxy0", "rows_per_s", "10 ms RTT rate / 0 ms proxy rate"),
            ("pgstream_proxy0", "pgstream", "rows_per_s", "0 ms proxy rate / direct rate"),
            ("pgstream", "native", "cpu_us_per_row", "insert apply CPU per row pgstream/native")):
        c = compare(ins, a, b, key, higher_is_better=key != "cpu_us_per_row")
        if c["ratio"] is not None:
            ratios[label] = c
    for key, label in (("peak_lag_bytes", "peak lag pgstream/native"),
                       ("drain_s", "drain time pgstream/native"),
                       ("p95_lag_bytes", "p95 lag pgstream/native"),
                       ("mean_lag_bytes", "mean lag pgstream/native"),
                       ("peak_rows_behind", "peak transactions behind pgstream/native"),
                       ("pgbench_tps", "pgbench tps with pgstream/with native"),
                       ("apply_cpu_ms_per_txn", "apply CPU per pgbench transaction pgstream/native")):
        c = compare(result["lag_runs"], "pgstream", "native", key, higher_is_better=key == "pgbench_tps")
        if c["ratio"] is not None:
            ratios[label] = c
    result["ratios"] = ratios
    result["goals"] = {"insert apply rate pgstream/native": ">= 2",
                       "peak lag pgstream/native": "<= 1", "drain time pgstream/native": "<= 1",
                       "10 ms RTT rate / direct rate": ">= 0.7"}


def main():
    out = results_dir()
    nrep = int(os.environ.get("BENCH_REPS", "5"))
    nlag = int(os.environ.get("BENCH_LAG_REPS", "3"))
    parts = os.environ.get("BENCH_APPLY_PARTS", "insert,lag").split(",")
    result = {"benchmark": "apply", "rows": ROWS, "txn_rows": TXN_ROWS, "pgbench_seconds": PGB_SECONDS,
              "pgbench_scale": PGB_SCALE, "delay_ms_each_way": DELAY_MS, "reps": nrep,
              "lag_reps": nlag, "machine": machine_info(), "insert_runs": [], "lag_runs": []}
    csv_rows = []
    with Servers("apply") as srv:
        work = srv.scratch("apply")
        proxies = {}
        try:
            names = list(INSERT_CONTENDERS)
            ep = srv.target.tcp_endpoint()
            if ep is None:
                names = [n for n in names if "proxy" not in n]
                log("no TCP endpoint for the target (BENCH_TARGET_HOSTPORT): latency runs skipped")
            else:
                proxies["pgstream_proxy0"] = Proxy(ep, 0, os.path.join(work, "proxy.log"))
                proxies["pgstream_proxy10"] = Proxy(ep, DELAY_MS, os.path.join(work, "proxy.log"))
                # round trips as the client sees them, on an idle target
                result["rtt_ms"] = {
                    "direct_tcp": rtt_ms(srv.target.tcp_conninfo("postgres")),
                    "proxy0": rtt_ms(srv.target.tcp_conninfo("postgres", proxies["pgstream_proxy0"].port)),
                    "proxy10": rtt_ms(srv.target.tcp_conninfo("postgres", proxies["pgstream_proxy10"].port))}
                log("round trip SELECT 1: %s" % ", ".join("%s %.2f ms" % kv for kv in result["rtt_ms"].items()))
            if "insert" in parts:
                for rnd in range(nrep):
                    insert_round(srv, rnd, nrep, names, work, proxies, result["insert_runs"])
                    summarize(result)
                    write_json(os.path.join(out, "apply.json"), result)
            if "lag" in parts:
                for rnd in range(nlag):
                    for name in rotate(["pgstream", "native"], rnd):
                        log("lag round %d/%d: %s, pgbench -c 4 -T %d on scale %d"
                            % (rnd + 1, nlag, name, PGB_SECONDS, PGB_SCALE))
                        result["lag_runs"].append(lag_run(srv, rnd, name, work, csv_rows))
                        summarize(result)
                        write_json(os.path.join(out, "apply.json"), result)
        finally:
            for p in proxies.values():
                p.stop()
            for f in os.listdir(work):
                if f.endswith(".log"):
                    try:
                        os.replace(os.path.join(work, f), os.path.join(out, "apply-" + f))
                    except OSError:
                        pass
    if csv_rows:
        cols = ["round", "contender", "t", "phase", "lag_bytes", "rows_behind", "lag_seconds",
                "slot_lag_bytes", "walsender_behind_bytes", "pgstream_lag_bytes", "source_lsn",
                "applied_lsn"]
        with open(os.path.join(out, "lag.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            w.writerows(csv_rows)
    summarize(result)
    write_json(os.path.join(out, "apply.json"), result)
    for k, v in result["ratios"].items():
        log("%s = %.3f (per round %s; ratio of medians %s)" % (
            k, v["ratio"], v["per_round"], "%.3f" % v["of_medians"] if v["of_medians"] else "-"))


if __name__ == "__main__":
    main()
