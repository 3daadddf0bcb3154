#!/usr/bin/env python3
"""tests/mutate/run.py -- `make mutate`: the suite must fail when the engine is wrong.

Each mutant below is one small, named change of the kind this project must
never ship (a lost boundary transaction, a confirmed position the target
cannot give back, a missing ONLY, ...).  For each, in a scratch copy of the
tree: apply the change (the original text must occur exactly once, so a
refactor that moves it fails here loudly instead of silently testing
nothing), rebuild the ASan test build, run the suites that must catch it,
and count it caught only if one of them fails.  Exits 1 if any mutant
survives, 2 on a setup error.

    tests/mutate/run.py                  every mutant
    tests/mutate/run.py NAME [NAME ...]  just these
    MUTATE_KEEP=1                        keep the scratch copy
    MUTATE_SKIP_BASELINE=1               skip checking that the suites pass unmutated

A check is "unit:SUITE" (tests/unit, seconds) or "integration:SUITE"
(real clusters, minutes).  The cheapest check comes first: a mutant is
caught as soon as one check fails.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

MUTANTS = [
    {
        "name": "restart-skip-boundary",
        "why": "a transaction committed exactly at the restart position is lost",
        "file": "engine/stream/stream.c",
        "from": "return commit_lsn < applied_lsn;",
        "to": "return commit_lsn <= applied_lsn;",
        "checks": ["unit:replication", "integration:stream"],
    },
    {
        "name": "spool-confirms-mid-transaction-flush",
        "why": "issue 13 item 1: --spool confirms a commit recovery cuts off",
        "file": "engine/stream/stream.c",
        "from": "\tif (r->boundary_commit_end > r->sh->durable)\n\t\tr->sh->durable = r->boundary_commit_end;",
        "to": "\tif (r->last_commit_end > r->sh->durable)\n\t\tr->sh->durable = r->last_commit_end;",
        "checks": ["integration:stream_faults"],
    },
    {
        "name": "stale-idle-flag",
        "why": "issue 13 item 2: an idle status confirms a received, unapplied transaction",
        "file": "protocol/replication.c",
        "from": "\tfeedback_note_received(f, lsn);\n\tf->idle = false;\n",
        "to": "\tfeedback_note_received(f, lsn);\n",
        "checks": ["unit:replication", "integration:stream_faults"],
    },
    {
        "name": "segment-starts-mid-transaction",
        "why": "issue 13 item 4: a spool segment begins inside a transaction and wedges restarts",
        "file": "storage/walspool.c",
        "from": "\t\ts->last_clean && !s->open_continues;",
        "to": "\t\t!s->open_continues;",
        "checks": ["unit:walspool", "integration:stream_faults"],
    },
    {
        "name": "confirm-received-not-durable",
        "why": "the source is told a position the target cannot give back",
        "file": "engine/stream/stream.c",
        "from": "feedback_note_durable(&r->rc->feedback, sh->durable);",
        "to": "feedback_note_durable(&r->rc->feedback, r->rc->feedback.received);",
        "checks": ["integration:stream_faults", "integration:stream"],
    },
    {
        "name": "writer-no-only",
        "why": "issue 13 items 3 and 5: TRUNCATE/UPDATE/DELETE of a parent reach its children",
        "file": "apply/sqlbuild.c",
        "from": "\tif (!r->partitioned)\n\t\tsqlstr_add(s, \"ONLY \");\n",
        "to": "",
        "checks": ["unit:writer_sql", "integration:apply_inherit"],
    },
    {
        "name": "restart-reads-position-before-old-sessions-end",
        "why": "issue 13: an old apply session's COMMIT lands after the position was read",
        "file": "engine/sync.c",
        "from": "if (!writer_end_earlier_sessions(run->tgt, err) || !state_load(run->tgt, &run->st, err) ||",
        "to": "if (!state_load(run->tgt, &run->st, err) ||",
        "checks": ["integration:apply_inherit"],
    },
    {
        "name": "resume-copies-into-an-old-definition",
        "why": "a table changed between runs fails the copy on every run",
        "file": "engine/sync.c",
        "from": "\tif (!fullload_check_target_tables(fo, run->tgt, err))\n\t\treturn abandon_slot(run);",
        "to": "\tif (false && !fullload_check_target_tables(fo, run->tgt, err))\n\t\treturn abandon_slot(run);",
        "checks": ["integration:resume"],
    },
    {
        "name": "copy-without-table-locks",
        "why": "a TRUNCATE commits under the copy's snapshot, which then sees the table empty",
        "file": "engine/fullload.c",
        "from": "if (s->lock_sql != NULL && !pgconn_exec(s->conns[i], s->lock_sql, err))",
        "to": "if (false && !pgconn_exec(s->conns[i], s->lock_sql, err))",
        "checks": ["integration:resume"],
    },
    {
        "name": "no-rewrite-check-after-relock",
        "why": "a table rewritten while the copy held no lock is copied empty",
        "file": "engine/fullload.c",
        "from": "\tif (PQntuples(res) == 1)\n\t{\n\t\tsnprintf(rewritten, rewritten_size, \"table %s was rewritten",
        "to": "\tif (false)\n\t{\n\t\tsnprintf(rewritten, rewritten_size, \"table %s was rewritten",
        "checks": ["integration:resume"],
    },
    {
        "name": "two-syncs-at-once",
        "why": "issue 14 item 4: a second sync re-snapshots under the first one's copy",
        "file": "engine/sync.c",
        "from": "\"SELECT pg_catalog.pg_advisory_lock(\" RUN_LOCK_KEY \") IS NULL\"",
        "to": "\"SELECT false\"",
        "checks": ["integration:operator"],
    },
    {
        "name": "cutover-ignores-count-mismatch",
        "why": "cutover reports success although source and target differ",
        "file": "engine/cutover.c",
        "from": "\t\t\tr->counts_match = false;\n",
        "to": "\n",
        "checks": ["integration:cutover"],
    },
    {
        "name": "cutover-undoes-a-freeze-it-did-not-make",
        "why": "issue 13 item 6: cutover run again un-freezes the old source",
        "file": "engine/cutover.c",
        "from": "\t\treturn sync_error_context(err, \"could not read the source database's settings\");\n\tif (v[0] == 't')",
        "to": "\t\treturn sync_error_context(err, \"could not read the source database's settings\");\n\tif (false)",
        "checks": ["integration:cutover"],
    },
    {
        "name": "dead-cutover-barrier-ends-sync",
        "why": "issue 14 item 3: a barrier whose cutover died ends the migration, later writes lost",
        "file": "engine/state.h",
        "from": "\"SELECT CASE WHEN \" STATE_ARMING_CUTOVER_RUNNING_SQL \\\n\t\" THEN coalesce(cutover_token, '') ELSE '' END FROM {state}.migration\"",
        "to": "\"SELECT coalesce(cutover_token, '') FROM {state}.migration\"",
        "checks": ["integration:cutover"],
    },    {
        "name": "dead-cutover-position-barrier-ends-sync",
        "why": "issue 15 item 2: on a source < 14, a position barrier honoured under a new cutover's lock though a killed one armed it",
        "file": "engine/state.h",
        "from": "\" AND l.pid = cutover_pid AND l.granted)\"",
        "to": "\" AND l.granted)\"",
        "checks": ["integration:oldsource"],
    },
    {
        "name": "spool-removed-with-writes-after-the-barrier",
        "why": "--spool: writes after the cutover barrier, confirmed from the spool, are deleted with it",
        "file": "engine/stream/stream.c",
        "from": "\tif (writes == 0)\n\t\treturn true;",
        "to": "\tif (writes == 0 || first != 1)\n\t\treturn true;",
        "checks": ["integration:spool_mode"],
    },
]

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def log(msg):
    print(f"mutate: {msg}", flush=True)


def copy_tree(dst):
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.split(b"\0")
    for f in files:
        if not f:
            continue
        rel = f.decode()
        src = os.path.join(ROOT, rel)
        if not os.path.isfile(src):
            continue  # deleted in the work tree
        os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dst, rel))


def build(tree):
    r = subprocess.run(["make", "-s", "MODE=san", "-j2", "build/san/pgstream",
                        "build/san/run_unit", "build/san/run_integration"],
                       cwd=tree, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
    return r.returncode == 0


def run_check(tree, check):
    kind, suite = check.split(":", 1)
    env = dict(os.environ, CK_RUN_SUITE=suite, CK_VERBOSITY="minimal")
    if kind == "unit":
        argv = [os.path.join(tree, "build/san/run_unit")]
    elif kind == "integration":
        env["PGSTREAM_BIN"] = os.path.join(tree, "build/san/pgstream")
        argv = [os.path.join(tree, "build/san/run_integration")]
    else:
        raise SystemExit(f"mutate: unknown check kind in {check!r}")
    t0 = time.monotonic()
    r = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True)
    tail = (r.stdout + r.stderr).strip().splitlines()[-1:] or [""]
    return r.returncode == 0, time.monotonic() - t0, tail[0]


def main(argv):
    wanted = set(argv[1:])
    unknown = wanted - {m["name"] for m in MUTANTS}
    if unknown:
        log(f"unknown mutant(s): {', '.join(sorted(unknown))}")
        return 2
    mutants = [m for m in MUTANTS if not wanted or m["name"] in wanted]
    tree = tempfile.mkdtemp(prefix="pgstream-mutate-")
    log(f"scratch copy in {tree}")
    try:
        copy_tree(tree)
        if not build(tree):
            log("the unmutated tree does not build")
            return 2
        for m in mutants:
            path = os.path.join(tree, m["file"])
            if open(path).read().count(m["from"]) != 1:
                log(f"{m['name']}: the text to mutate is not in {m['file']} exactly once; "
                    "update tests/mutate/run.py")
                return 2
        if not os.environ.get("MUTATE_SKIP_BASELINE"):
            for check in sorted({c for m in mutants for c in m["checks"]}):
                ok, secs, tail = run_check(tree, check)
                log(f"baseline {check}: {'passes' if ok else 'FAILS'} ({secs:.0f} s)")
                if not ok:
                    log(f"baseline {check} fails unmutated ({tail}); fix that first")
                    return 2
        survived = []
        for m in mutants:
            path = os.path.join(tree, m["file"])
            original = open(path).read()
            with open(path, "w") as f:
                f.write(original.replace(m["from"], m["to"], 1))
            try:
                if not build(tree):
                    log(f"{m['name']}: the mutant does not build; fix its definition")
                    return 2
                caught_by = None
                for check in m["checks"]:
                    ok, secs, tail = run_check(tree, check)
                    if not ok:
                        caught_by = f"{check} in {secs:.0f} s ({tail})"
                        break
                if caught_by:
                    log(f"{m['name']}: caught by {caught_by}")
                else:
                    log(f"{m['name']}: SURVIVED ({m['why']})")
                    survived.append(m["name"])
            finally:
                with open(path, "w") as f:
                    f.write(original)
                os.utime(path)  # make rebuilds the restored file
        log(f"{len(mutants) - len(survived)} of {len(mutants)} mutants caught")
        if survived:
            log("survived: " + ", ".join(survived))
            return 1
        return 0
    finally:
        if os.environ.get("MUTATE_KEEP"):
            log(f"kept {tree}")
        else:
            shutil.rmtree(tree, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
