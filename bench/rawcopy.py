#!/usr/bin/env python3
"""bench/rawcopy.py -- the "physical limit" of a full load on this machine.

No bookkeeping, no snapshot, no verification: the pre-data schema from
pg_dump, then one `psql -c "COPY ... TO STDOUT" | psql -c "COPY ... FROM
STDIN"` pipe per table or per CTID range of a large table (the bytes go
from one psql to the other through a kernel pipe), JOBS pipes at a time,
largest first; then the post-data statements (primary keys, indexes,
constraints) JOBS at a time, largest table first.

    rawcopy.py SOURCE_CONNINFO TARGET_CONNINFO [--jobs N] [--split-mb MB]
               [--max-parts N] [--format text|binary] [--fifo-dir DIR]

With --fifo-dir the bytes do not pass through any client: the source
server's COPY ... TO 'fifo' feeds the target server's COPY ... FROM 'fifo'
(both servers on this machine, superuser) -- the stricter limit.

Prints one JSON object with the phase times.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import pg, psql  # noqa: E402

TABLES_SQL = """
SELECT format('%I.%I', n.nspname, c.relname), pg_relation_size(c.oid),
       pg_relation_size(c.oid) / current_setting('block_size')::int
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence = 'p'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp)'
ORDER BY 2 DESC"""


def plan(source, split_bytes, max_parts):
    tasks = []
    for line in psql(source, TABLES_SQL).splitlines():
        name, size, pages = line.split("|")
        size, pages = int(size), int(pages)
        n = 1
        if split_bytes > 0 and size > split_bytes and pages > 1:
            n = min(max_parts, -(-size // split_bytes), pages)
        if n == 1:
            tasks.append((size, name, None))
            continue
        per = -(-pages // n)
        for i in range(n):
            lo, hi = per * i, per * (i + 1)
            cond = "ctid >= '(%d,0)'" % lo if i > 0 else "true"
            if i < n - 1:
                cond += " AND ctid < '(%d,0)'" % hi
            tasks.append((size // n, name, cond))
    tasks.sort(key=lambda t: -t[0])
    return tasks


def copy_task(source, target, name, cond, fmt):
    opt = " (FORMAT binary)" if fmt == "binary" else ""
    out_sql = ("COPY (SELECT * FROM %s WHERE %s) TO STDOUT%s" % (name, cond, opt)
               if cond else "COPY %s TO STDOUT%s" % (name, opt))
    a = subprocess.Popen([pg("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", source,
                          "-c", out_sql], stdout=subprocess.PIPE)
    b = subprocess.Popen([pg("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target,
                          "-c", "COPY %s FROM STDIN%s" % (name, opt)],
                         stdin=a.stdout, stdout=subprocess.DEVNULL)
    a.stdout.close()
    ra, rb = a.wait(), b.wait()
    if ra or rb:
        raise RuntimeError("copy of %s (%s) failed: %d/%d" % (name, cond, ra, rb))


def copy_task_fifo(source, target, name, cond, fmt, fifo):
    """Server to server: the source backend writes COPY output into a FIFO
    that the target backend reads with COPY FROM a file -- no client relays
    the bytes.  Needs both servers on this machine and superuser."""
    opt = " (FORMAT binary)" if fmt == "binary" else ""
    lit = "'" + fifo.replace("'", "''") + "'"
    out_sql = ("COPY (SELECT * FROM %s WHERE %s) TO %s%s" % (name, cond, lit, opt)
               if cond else "COPY %s TO %s%s" % (name, lit, opt))
    os.mkfifo(fifo, 0o600)
    os.chmod(fifo, 0o666)
    try:
        b = subprocess.Popen([pg("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target,
                              "-c", "COPY %s FROM %s%s" % (name, lit, opt)], stdout=subprocess.DEVNULL)
        a = subprocess.Popen([pg("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", source,
                              "-c", out_sql], stdout=subprocess.DEVNULL)
        procs = [a, b]
        while any(p.poll() is None for p in procs):
            if any(p.returncode for p in procs if p.returncode is not None):
                # one side failed: open the FIFO so that the other one ends
                for flags in (os.O_RDONLY | os.O_NONBLOCK, os.O_WRONLY | os.O_NONBLOCK):
                    try:
                        os.close(os.open(fifo, flags))
                    except OSError:
                        pass
            time.sleep(0.01)
        if a.returncode or b.returncode:
            raise RuntimeError("copy of %s (%s) failed: %d/%d" % (name, cond, a.returncode, b.returncode))
    finally:
        os.unlink(fifo)


def split_statements(sql):
    """pg_dump post-data output -> list of statements (no comments/SETs)."""
    stmts, cur = [], []
    for line in sql.splitlines():
        if not cur and (line.startswith("--") or not line.strip()):
            continue
        cur.append(line)
        if line.rstrip().endswith(";"):
            stmt = "\n".join(cur)
            cur = []
            if re.match(r"\s*(SET|SELECT pg_catalog.set_config)", stmt):
                continue
            stmts.append(stmt)
    return stmts


def stmt_weight(stmt, sizes):
    m = re.match(r"\s*CREATE (?:UNIQUE )?INDEX \S+ ON (?:ONLY )?(\S+)", stmt) or re.match(
        r"\s*ALTER TABLE (?:ONLY )?(\S+)", stmt)
    return sizes.get(m.group(1).replace('"', ""), 0) if m else 0


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("target")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--split-mb", type=int, default=64)
    ap.add_argument("--max-parts", type=int, default=4)
    ap.add_argument("--format", choices=["text", "binary"], default="text")
    ap.add_argument("--fifo-dir", help="server-to-server through FIFOs made here (both servers "
                    "local, superuser; the directory must be reachable by the server user)")
    a = ap.parse_args(argv)
    return load(a.source, a.target, a.jobs, a.split_mb, a.max_parts, a.format, fifo_dir=a.fifo_dir)


def load(source, target, jobs=2, split_mb=64, max_parts=4, fmt="text", out=sys.stdout,
         fifo_dir=None):
    t0 = time.monotonic()
    pre = subprocess.Popen([pg("pg_dump"), "-s", "--section=pre-data", "-d", source],
                           stdout=subprocess.PIPE)
    post = subprocess.Popen([pg("pg_dump"), "-s", "--section=post-data", "-d", source],
                            stdout=subprocess.PIPE, text=True)
    r = subprocess.run([pg("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target],
                       stdin=pre.stdout, stdout=subprocess.DEVNULL)
    pre.stdout.close()
    if pre.wait() or r.returncode:
        raise RuntimeError("pre-data schema failed")
    post_sql = post.communicate()[0]
    if post.returncode:
        raise RuntimeError("pg_dump post-data failed")
    t_schema = time.monotonic()
    tasks = plan(source, split_mb * 1024 * 1024, max_parts)
    with ThreadPoolExecutor(jobs) as ex:
        if fifo_dir:
            futs = [ex.submit(copy_task_fifo, source, target, name, cond, fmt,
                              os.path.join(fifo_dir, "rawcopy-%d-%d" % (os.getpid(), i)))
                    for i, (_, name, cond) in enumerate(tasks)]
        else:
            futs = [ex.submit(copy_task, source, target, name, cond, fmt) for _, name, cond in tasks]
        for f in futs:
            f.result()
    t_copy = time.monotonic()
    sizes = {}
    for size, name, _cond in tasks:
        sizes[name] = sizes.get(name, 0) + size
        sizes[name.split(".", 1)[1]] = sizes[name]
    stmts = sorted(split_statements(post_sql), key=lambda s: -stmt_weight(s, sizes))
    # indexes and key constraints first, then what may depend on them
    later = [s for s in stmts if re.search(r"FOREIGN KEY|CREATE (CONSTRAINT )?TRIGGER|"
                                           r"CREATE RULE|CREATE POLICY", s)]
    for batch in ([s for s in stmts if s not in later], later):
        with ThreadPoolExecutor(jobs) as ex:
            for f in [ex.submit(psql, target, s) for s in batch]:
                f.result()
    t_end = time.monotonic()
    res = {"schema_s": t_schema - t0, "copy_s": t_copy - t_schema, "index_s": t_end - t_copy,
           "total_s": t_end - t0, "copy_tasks": len(tasks), "post_data_statements": len(stmts),
           "jobs": jobs, "format": fmt, "via": "fifo" if fifo_dir else "psql"}
    if out is not None:
        out.write(json.dumps(res) + "\n")
    return res


if __name__ == "__main__":
    main()
