/*
 * tests/support/compare.h -- compare two databases after a migration: the
 * schema, as a sorted list of catalog facts, and the data, table by table and
 * sequence by sequence.
 *
 *   if (compare_schemas(&source, "src", &target, "tgt") != 0)  ... differs
 *   if (compare_data(&source, "src", &target, "tgt", &n) != 0)  ... differs
 *
 * Schema facts are one line each, built from the catalogs with names only
 * (never OIDs or owners, so a migration by another login compares equal):
 * schemas, relations (kind, persistence, replica identity, row security,
 * partition key),
 * columns in order (type, NOT NULL, identity, generated, default, collation,
 * storage), partitions and attached index partitions with their bounds,
 * indexes (definition and validity), constraints (definition, validated,
 * local/inherited), non-internal triggers (definition and enabled state),
 * sequences (parameters and OWNED BY), enums, domains, range types,
 * extensions, views and materialized views (and whether populated), row
 * security policies, rules, extended statistics,
 * functions (a digest of their definition; an aggregate's parts), comments,
 * and by identity (pg_identify_object) with what defines them: operators,
 * casts, operator classes and families and their members, text search
 * configurations, dictionaries, parsers and templates, collations,
 * conversions, foreign-data wrappers, servers, user mappings and foreign
 * tables' options, access methods, transforms, languages, event triggers,
 * base and shell types.  Not compared: publications and subscriptions
 * (pgstream leaves them out by design), privileges and owners.  Objects that
 * belong to an extension and schema "pgstream" (the migration's own state)
 * are left out.
 *
 * Data: every table, partitioned table and materialized view of the first
 * database must have the same row count and the same digest (md5 of the
 * rows as text ordered by the row as text, so duplicates count; a row is
 * made of its columns in name order) in the second; every sequence the
 * same last_value and is_called.  A populated materialized view of the
 * second must hold what its query returns on the first (pg_dump, and so
 * pgstream, refreshes it: a stale one arrives fresh).
 *
 * What pg_dump cannot reproduce, and is therefore compared loosely: the
 * columns of an inheritance child (not a partition) by name, not position
 * (pg_dump puts the inherited ones first); the name of a foreign key a
 * partition inherits (the server names it when the partition is attached);
 * shell operators (named as an operator's commutator or negator but never
 * defined: no function) are not compared, pg_dump does not dump them.
 * Comments on large objects and subscriptions are left out: pgstream
 * migrates neither (assess warns about large objects; subscriptions are
 * the source's own).
 *
 * Both read with fixed DateStyle, IntervalStyle, extra_float_digits,
 * bytea_output, TimeZone and lc_monetary, so that databases with different
 * settings (ALTER DATABASE SET) compare equal when their contents are.
 *
 * Both functions print each difference on stderr ("source: ... / target:
 * ...") and return how many they found, or -1 if a query failed.
 */
#ifndef PGSTREAM_TESTS_SUPPORT_COMPARE_H
#define PGSTREAM_TESTS_SUPPORT_COMPARE_H

#include "tests/support/cluster.h"

/* The schema facts of dbname, one per line, sorted bytewise; malloc'd, NULL
 * on error (printed). */
char *compare_schema_facts(const Cluster *c, const char *dbname);

/* Number of schema facts that differ (each printed), or -1 on error. */
int compare_schemas(const Cluster *a, const char *dba, const Cluster *b,
                    const char *dbb);

/*
 * Number of tables and sequences whose contents differ (each printed), or -1
 * on error.  *ntables (may be NULL) receives the number of tables compared,
 * so that a test can tell "equal" from "nothing was compared".
 */
int compare_data(const Cluster *a, const char *dba, const Cluster *b,
                 const char *dbb, int *ntables);

/*
 * compare_schemas() and compare_data() that accept, as expected, what exists
 * only in the first database (the source) and belongs to an object pgstream
 * named as left out.  left_out: one "type identity" a line, as pgstream's
 * "not migrated: <type> <identity>: ..." warnings and pg_identify_object()
 * name them (e.g. "table public.city", "function public.f(integer)").  A
 * fact belongs to its object and, for the parts of a relation (columns,
 * indexes, constraints, triggers, rules, policies, statistics), to the
 * relation.  *nexpected (may be NULL) receives how many were accepted so.
 * Nothing only in the second database is ever expected.
 */
int compare_schemas_except(const Cluster *a, const char *dba, const Cluster *b,
                           const char *dbb, const char *left_out,
                           int *nexpected);
int compare_data_except(const Cluster *a, const char *dba, const Cluster *b,
                        const char *dbb, const char *left_out, int *ntables,
                        int *nexpected);

#endif /* PGSTREAM_TESTS_SUPPORT_COMPARE_H */
