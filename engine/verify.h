/*
 * engine/verify.h -- prove that a migration arrived: every schema object of
 * the source present on the target (by identity), and every table's rows
 * identical (row count and an order-independent digest).
 *
 * Used by "pgstream verify" (engine/cmd/verify.c) on a finished migration,
 * and by "pgstream cutover --verify" (data only) while the source is frozen.
 *
 * Schema.  Both sides list their user objects as (type, identity,
 * definition, privileges) with pg_identify_object() over the catalogs that
 * hold them, leaving out the system schemas, members of extensions (and
 * what hangs off them), and pgstream's state schema.  The sorted lists are
 * merged (verify_compare_objects): an object only on the source is missing,
 * one only on the target is extra, one on both with another definition
 * differs.  Differences pgstream makes on purpose (publications,
 * subscriptions, event triggers, default privileges; owners and grants)
 * are named with their reason and do not fail the run.
 *
 * Data.  Each table (ordinary tables, partitions, materialized views; rows
 * of an inheritance parent read with ONLY) is digested with the same
 * statement on both sides (verify_digest_sql): for each row, md5 of the
 * record of its columns as text (float8 and real in binary, whose form
 * does not change between majors), the columns sorted by name so that the
 * physical column order does not matter; the 128 bits are added up as two
 * sums modulo 2^64, which depend neither on row order nor on how the rows
 * are cut into chunks, and count duplicate rows.  Tables larger than the
 * chunk threshold with a primary key are cut into key ranges taken from
 * the source; all chunks of all tables are shared by --jobs workers, each
 * with one session per side, all reading the same exported snapshot in
 * REPEATABLE READ.
 */
#ifndef PGSTREAM_ENGINE_VERIFY_H
#define PGSTREAM_ENGINE_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/error.h"

/* ---- pure pieces (unit-tested) ---- */

/* One schema object as listed by either side; strings borrowed. */
typedef struct VerifyObject
{
	const char *type;			/* pg_identify_object's type: "table column" */
	const char *identity;		/* ... and identity: "public.t.a" */
	const char *definition;		/* "" when not compared */
	const char *privileges;		/* owner and ACL; "" when not compared */
} VerifyObject;

typedef enum VerifyDiffKind
{
	VERIFY_DIFF_MISSING,		/* on the source, not on the target */
	VERIFY_DIFF_EXTRA,			/* on the target, not on the source */
	VERIFY_DIFF_DEFINITION,		/* on both, defined differently */
	VERIFY_DIFF_PRIVILEGES		/* on both, other owner or grants */
} VerifyDiffKind;

typedef enum VerifyVerdict
{
	VERIFY_FAIL,				/* a difference: the run fails */
	VERIFY_EXPECTED,			/* pgstream does this on purpose */
	VERIFY_NOTE					/* worth saying, not a failure */
} VerifyVerdict;

typedef struct VerifyDiff
{
	VerifyDiffKind kind;
	VerifyVerdict verdict;
	const VerifyObject *source; /* NULL when extra */
	const VerifyObject *target; /* NULL when missing */
	const char *reason;			/* static text for EXPECTED and NOTE, else NULL */
} VerifyDiff;

/* "missing", "extra", "definition", "privileges". */
const char *verify_diff_kind_name(VerifyDiffKind kind);

/* "fail", "expected", "note". */
const char *verify_verdict_name(VerifyVerdict verdict);

/* Sort objects by (type, identity), byte-wise. */
void		verify_sort_objects(VerifyObject *objs, size_t n);

/*
 * Why an object of this type may be on one side only (pgstream leaves it
 * out on purpose), or NULL when it must be on both.
 */
const char *verify_expected_reason(const char *type);

/*
 * Merge two lists sorted by verify_sort_objects into *out (malloc'd, the
 * caller frees; pointers into src and tgt).  definitions_are_notes: the
 * servers are of different majors, which may print the same definition
 * differently, so such differences are notes.  False only when out of
 * memory.
 */
bool		verify_compare_objects(const VerifyObject *src, size_t nsrc,
								   const VerifyObject *tgt, size_t ntgt,
								   bool definitions_are_notes,
								   VerifyDiff **out, size_t *nout);

/*
 * The digest statement of one table or chunk (malloc'd, NULL when out of
 * memory): one row of count, sum1, sum2 (sums as decimal text, 0 to
 * 2^64-1).  relation is the quoted qualified name; columns are the raw
 * column names in any order (sorted and quoted here), types their
 * format_type text (NULL: all read as text; "double precision" and "real"
 * are read in binary, whose form does not change between majors); where is
 * NULL or a condition (the key range of a chunk, with $n parameters).
 */
char	   *verify_digest_sql(const char *relation, const char *const *columns,
							  const char *const *types, int ncolumns,
							  const char *where);

/*
 * The key-range condition of chunk `chunk` of `nchunks` over key columns
 * keys (raw names) of types types (format_type text): chunk 0 is
 * "key <= $1", the last "key > $1", others "key > $1 AND key <= $(k+1)"
 * where k is the number of key columns; NULL when nchunks is 1.  Malloc'd.
 * *nparams receives the number of parameters it uses.
 */
char	   *verify_chunk_where(const char *const *keys, const char *const *types,
							   int nkeys, int chunk, int nchunks, int *nparams);

/* A digest: row count and two sums modulo 2^64. */
typedef struct VerifyDigest
{
	int64_t		rows;
	uint64_t	sum[2];
} VerifyDigest;

/* a += b (the sums modulo 2^64): chunks add up to their table. */
void		verify_digest_add(VerifyDigest *a, const VerifyDigest *b);

bool		verify_digest_equal(const VerifyDigest *a, const VerifyDigest *b);

/* ---- a run ---- */

typedef struct VerifyOptions
{
	const char *source;			/* conninfo */
	const char *target;
	bool		schema;
	bool		data;
	int			jobs;			/* sessions per side for the data */
	int64_t		chunk_rows;		/* tables estimated above this are chunked */
	bool		quiet;			/* no progress on stderr */
	const char *command;		/* application_name: "pgstream verify" */
} VerifyOptions;

typedef enum VerifyTableStatus
{
	VERIFY_TABLE_MATCH,
	VERIFY_TABLE_DIFFERENT,		/* counts or digests differ */
	VERIFY_TABLE_MISSING,		/* not on the target */
	VERIFY_TABLE_ERROR			/* a digest failed on one side (message) */
} VerifyTableStatus;

typedef struct VerifyTable
{
	char	   *name;			/* owned: schema.table, quoted as needed */
	VerifyTableStatus status;
	VerifyDigest source;
	VerifyDigest target;
	int			nchunks;
	int			chunks_differing;	/* chunks whose digests differ */
	char	   *error;			/* owned, or NULL */
} VerifyTable;

typedef struct VerifyReport
{
	int			source_major;
	int			target_major;
	bool		schema_checked;
	bool		data_checked;
	/* schema */
	void	   *schema_results; /* owned: the PGresults the objects point into */
	VerifyObject *source_objects;	/* owned arrays */
	size_t		nsource_objects;
	VerifyObject *target_objects;
	size_t		ntarget_objects;
	VerifyDiff *diffs;			/* owned */
	size_t		ndiffs;
	bool		state_schema_on_target;
	/* data */
	VerifyTable *tables;		/* owned */
	int			ntables;
	double		data_seconds;
} VerifyReport;

/*
 * Run the checks o asks for.  False (err filled) when it could not check:
 * a connection or catalog query failed.  True when it checked; then
 * verify_report_ok() says whether everything matched.
 */
bool		verify_run(const VerifyOptions *o, VerifyReport *r, SyncError *err);

/* Every difference is expected or a note, and every table matches. */
bool		verify_report_ok(const VerifyReport *r);

/* Failing schema differences and tables that do not match. */
size_t		verify_schema_failures(const VerifyReport *r);
int			verify_table_failures(const VerifyReport *r);

const char *verify_table_status_name(VerifyTableStatus status);

void		verify_report_term(VerifyReport *r);

/*
 * One line on a table that does not match ("row counts differ: 100 on the
 * source, 99 on the target"), without its name; into buf, returned.
 */
char	   *verify_table_describe(const VerifyTable *t, char *buf, size_t size);

/*
 * cutover --verify: digest every table on both sides (the data half of
 * verify_run, --jobs 2).  Each table that differs is logged; false with err
 * naming them, or saying why the digests could not be made.  *ntables
 * receives the number of tables found identical.
 */
bool		verify_cutover_data(const char *source, const char *target, int *ntables,
								SyncError *err);

#endif
