"""bench/benchlib.py -- shared helpers for the pgstream benchmarks.

Standard library only.  Servers are either clusters this module starts
itself (initdb + pg_ctl in a temporary directory, as the "postgres" OS user
when run as root, unix socket in that directory plus a free 127.0.0.1 port)
or external servers given as libpq keyword conninfo strings (BENCH_SOURCE,
BENCH_TARGET); the benchmarks only create and drop databases named bench_*.
"""

import glob
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PGSTREAM_SRC = os.environ.get("PGSTREAM_BIN", os.path.join(ROOT, "bin", "pgstream"))
_pgstream_copy = None


def pgstream_exe():
    """A private copy of bin/pgstream, taken on first use, so that a rebuild
    during the benchmark does not change the binary under test."""
    global _pgstream_copy
    if _pgstream_copy is None:
        if not os.access(PGSTREAM_SRC, os.X_OK):
            sys.exit("%s not found: run make first" % PGSTREAM_SRC)
        d = tempfile.mkdtemp(prefix="pgstream-bench-bin-")
        _pgstream_copy = os.path.join(d, "pgstream")
        shutil.copy2(PGSTREAM_SRC, _pgstream_copy)
        import atexit
        atexit.register(shutil.rmtree, d, True)
    return _pgstream_copy


def pgstream_has_option(opt):
    p = subprocess.run([pgstream_exe(), "sync", "--help"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    return opt in p.stdout


def _pgbin():
    env = os.environ.get("PGSTREAM_PG_BINDIR")
    if env:
        return env
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(d.split("/")[-2]))
    if not dirs:
        sys.exit("no PostgreSQL binaries found (set PGSTREAM_PG_BINDIR)")
    return dirs[-1]


PGBIN = _pgbin()
IS_ROOT = os.geteuid() == 0
SCALE = float(os.environ.get("BENCH_SCALE", "1"))

# Same settings for every cluster and every contender.
SERVER_SETTINGS = {
    "shared_buffers": "256MB",
    "wal_level": "logical",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "max_wal_size": "2GB",
    "fsync": "on",
    "synchronous_commit": "on",
}


def pg(name):
    return os.path.join(PGBIN, name)


_t0 = time.monotonic()


def log(msg):
    sys.stderr.write("[bench %7.1fs] %s\n" % (time.monotonic() - _t0, msg))
    sys.stderr.flush()


def now():
    return time.monotonic()


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def as_pg(argv):
    """Run a server-side program as the postgres OS user when we are root."""
    return ["runuser", "-u", "postgres", "--"] + argv if IS_ROOT else argv


def free_port():
    for _ in range(200):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if 1024 < port < 60000:
            return port
    raise RuntimeError("no free port")


def conninfo_with(base, **kw):
    """Append keywords to a libpq keyword/value conninfo (later ones win)."""
    parts = [base] if base else []
    for k, v in kw.items():
        v = str(v)
        if v == "" or re.search(r"[\s'\\]", v):
            v = "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
        parts.append("%s=%s" % (k, v))
    return " ".join(parts)


def run(argv, check=True, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, **kw)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv[:3]), p.returncode,
                                                   p.stderr.strip()[-2000:]))
    return p


def psql(conninfo, sql, check=True):
    """Run SQL with psql; returns stdout (unaligned, tuples only)."""
    p = run([pg("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-d", conninfo, "-c", sql], check=check)
    return p.stdout.strip()


def psql_file(conninfo, path):
    return run([pg("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo,
                "-f", path])


class Session:
    """A persistent psql session for cheap polling (no connect per query)."""

    def __init__(self, conninfo):
        self.p = subprocess.Popen(
            [pg("psql"), "-X", "-q", "-A", "-t", "-F", "|", "-d", conninfo],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, bufsize=1)
        self.n = 0

    def query(self, sql):
        """One query, one result row; returns a list of column strings."""
        self.n += 1
        marker = "@@bench-%d@@" % self.n
        self.p.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo " + marker + "\n")
        self.p.stdin.flush()
        rows = []
        while True:
            line = self.p.stdout.readline()
            if line == "":
                raise RuntimeError("psql session ended")
            line = line.rstrip("\n")
            if line == marker:
                break
            if line:
                rows.append(line)
        return rows[0].split("|") if rows else None

    def value(self, sql):
        r = self.query(sql)
        return None if r is None else r[0]

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=5)
        except Exception:
            self.p.kill()


def proc_stat(pid):
    """Fields of /proc/PID/stat after the command name, as ints where they
    are numbers (index 1 = ppid, 11 = utime, 12 = stime, 13/14 = cutime/cstime)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return [int(x) if x.lstrip("-").isdigit() else x for x in rest]


def process_cpu_seconds(pid):
    f = proc_stat(pid)
    return None if f is None else (f[11] + f[12]) / os.sysconf("SC_CLK_TCK")


def lsn_int(text):
    if not text:
        return None
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


class Cluster:
    """A PostgreSQL cluster of our own in a temporary directory."""

    def __init__(self, workdir, name, extra=None):
        self.name = name
        self.dir = os.path.join(workdir, name)
        self.sockdir = workdir
        self.port = free_port()
        self.extra = extra or {}
        self.logfile = os.path.join(workdir, name + ".log")

    def start(self):
        run(as_pg([pg("initdb"), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8",
                   "--locale=C", "-D", self.dir]))
        settings = dict(SERVER_SETTINGS)
        settings.update(self.extra)
        settings.update({"port": str(self.port), "listen_addresses": "'127.0.0.1'",
                         "unix_socket_directories": "'%s'" % self.sockdir})
        with open(os.path.join(self.dir, "postgresql.conf"), "a") as f:
            for k, v in settings.items():
                f.write("%s = %s\n" % (k, v))
        run(as_pg([pg("pg_ctl"), "-D", self.dir, "-l", self.logfile, "-w", "-t", "120",
                   "start"]))
        return self

    def pid(self):
        try:
            with open(os.path.join(self.dir, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        pid = self.pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGQUIT)  # immediate shutdown of our postmaster
        except ProcessLookupError:
            return
        for _ in range(300):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    def admin(self):
        return self.conninfo("postgres")

    def conninfo(self, db):
        return conninfo_with("", host=self.sockdir, port=self.port, user="postgres",
                             dbname=db)

    def tcp_conninfo(self, db, port=None):
        return conninfo_with("", host="127.0.0.1", port=port or self.port, user="postgres",
                             dbname=db)

    def tcp_endpoint(self):
        return ("127.0.0.1", self.port)

    def cpu_seconds(self):
        """CPU used by this cluster so far: the postmaster, its live children
        and (through cutime/cstime) every child that has exited."""
        pm = self.pid()
        if pm is None:
            return None
        total = 0
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            f = proc_stat(int(name))
            if f is None:
                continue
            if int(name) == pm:
                total += f[11] + f[12] + f[13] + f[14]
            elif f[1] == pm:
                total += f[11] + f[12]
        return total / os.sysconf("SC_CLK_TCK")

    def describe(self):
        return "local cluster (%s, port %d)" % (PGBIN, self.port)


class External:
    """A server given by a libpq keyword conninfo (its maintenance database)."""

    def __init__(self, base, name):
        self.base = base
        self.name = name

    def start(self):
        psql(self.admin(), "SELECT 1")
        return self

    def stop(self):
        pass

    def admin(self):
        return self.base

    def conninfo(self, db):
        return conninfo_with(self.base, dbname=db)

    def tcp_conninfo(self, db, port=None):
        if port is None:
            return self.conninfo(db)
        return conninfo_with(self.base, dbname=db, host="127.0.0.1", port=port)

    def cpu_seconds(self):
        return None

    def tcp_endpoint(self):
        """BENCH_<NAME>_HOSTPORT=host:port, for the delaying proxy."""
        hp = os.environ.get("BENCH_%s_HOSTPORT" % self.name.upper())
        if not hp:
            return None
        host, port = hp.rsplit(":", 1)
        return (host, int(port))

    def describe(self):
        return "external server"


class Servers:
    """Source and target, own clusters or BENCH_SOURCE/BENCH_TARGET."""

    def __init__(self, tag):
        self.work = tempfile.mkdtemp(prefix="pgstream-bench-%s-" % tag)
        os.chmod(self.work, 0o755)
        if IS_ROOT:
            shutil.chown(self.work, "postgres")
        src, tgt = os.environ.get("BENCH_SOURCE"), os.environ.get("BENCH_TARGET")
        if src and tgt:
            self.source, self.target = External(src, "source"), External(tgt, "target")
        else:
            self.source, self.target = Cluster(self.work, "src"), Cluster(self.work, "tgt")
        self.external = bool(src and tgt)

    def __enter__(self):
        try:
            self.source.start()
            self.target.start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self):
        for s in (self.source, self.target):
            try:
                s.stop()
            except Exception as e:  # keep cleaning up
                log("stopping %s: %s" % (s.name, e))
        shutil.rmtree(self.work, ignore_errors=True)

    def __exit__(self, *exc):
        self.close()

    def scratch(self, name):
        """A directory in the work area, writable by us and by postgres."""
        d = os.path.join(self.work, name)
        os.makedirs(d, exist_ok=True)
        return d


def recreate_db(server, db):
    psql(server.admin(), "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
    psql(server.admin(), "CREATE DATABASE %s" % db)


def drop_db(server, db):
    psql(server.admin(), "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db, check=False)


def drop_slot_and_pub(conninfo, slot=None, pub=None):
    if pub:
        psql(conninfo, "DROP PUBLICATION IF EXISTS %s" % pub, check=False)
    if slot:
        psql(conninfo, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
             " WHERE slot_name = '%s' AND NOT active" % slot, check=False)


def machine_info():
    info = {"nproc": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            info["cpu"] = m.group(1) if m else None
        info["loadavg_start"] = open("/proc/loadavg").read().split()[:3]
        with open("/proc/meminfo") as f:
            info["mem_kb"] = int(f.readline().split()[1])
    except OSError:
        pass
    info["postgres"] = run([pg("postgres"), "--version"]).stdout.strip()
    import hashlib
    with open(pgstream_exe(), "rb") as f:
        info["pgstream_sha256"] = hashlib.sha256(f.read()).hexdigest()[:16]
    info["pgstream_built"] = time.strftime("%Y-%m-%d %H:%M:%S",
                                           time.localtime(os.path.getmtime(PGSTREAM_SRC)))
    src_root = os.path.dirname(os.path.dirname(os.path.abspath(PGSTREAM_SRC)))
    info["pgstream_source"] = src_root
    try:
        info["pgstream_commit"] = run(["git", "-C", src_root, "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = run(["git", "-C", src_root, "status", "--porcelain", "--untracked-files=no",
                     "--", "engine", "apply", "protocol"]).stdout.strip()
        info["pgstream_tree_dirty"] = bool(dirty)
    except Exception:
        pass
    return info


def loadavg():
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except OSError:
        return None


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
    os.replace(tmp, path)


def results_dir():
    d = os.environ.get("BENCH_RESULTS")
    if not d:
        d = os.path.join(ROOT, "results", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(d, exist_ok=True)
    return d


def reps(default):
    return int(os.environ.get("BENCH_REPS", default))


def rotate(items, i):
    """Round i's order: rotate so every contender goes first in some round."""
    k = i % len(items)
    return items[k:] + items[:k]


def kill_tree(proc, sig=signal.SIGTERM, wait=30):
    """Stop a Popen we started (its own process group) by its pid."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return proc.wait()


def parse_time_v(path):
    """Max RSS (kB) and elapsed seconds from a GNU time -v output file."""
    out = {}
    try:
        text = open(path).read()
    except OSError:
        return out
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        out["max_rss_kb"] = int(m.group(1))
    m = re.search(r"User time \(seconds\): ([\d.]+)", text)
    if m:
        out["user_s"] = float(m.group(1))
    m = re.search(r"System time \(seconds\): ([\d.]+)", text)
    if m:
        out["sys_s"] = float(m.group(1))
    return out


TIME_BIN = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None


def round_values(runs, names, key):
    """round -> the smallest `key` among verified runs of `names` in it."""
    out = {}
    for r in runs:
        if r["contender"] in names and r.get("verified") and r.get(key) is not None:
            out[r["round"]] = min(out.get(r["round"], r[key]), r[key])
    return out


def compare(runs, a, b, key, higher_is_better=False):
    """Ratio a/b of `key`: the median of the per-round ratios (runs of one
    round are close in time, so background load cancels best there), the
    per-round ratios, and the ratio of the medians.  a and b are contender
    names or tuples of names (then the fastest of them in each round).
    of_bests compares the best run of each (noise on a shared machine only
    ever slows a run down, so the best run is the least disturbed one)."""
    a = (a,) if isinstance(a, str) else tuple(a)
    b = (b,) if isinstance(b, str) else tuple(b)
    va, vb = round_values(runs, a, key), round_values(runs, b, key)
    per = [va[r] / vb[r] for r in sorted(va) if r in vb and vb[r]]
    ma, mb = median(list(va.values())), median(list(vb.values()))
    best = max if higher_is_better else min
    ba = best(va.values()) if va else None
    bb = best(vb.values()) if vb else None
    return {"ratio": median(per) if per else None, "per_round": [round(x, 3) for x in per],
            "of_medians": (ma / mb) if ma is not None and mb else None,
            "of_bests": (ba / bb) if ba is not None and bb else None}
