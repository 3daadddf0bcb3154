/*
 * engine/assess/internal.h -- what assess.c and assess_catalog.c share.
 *
 * assess.c holds the Findings API, the runner, printing and the server-level
 * checks (versions, settings, activity, TLS); assess_catalog.c the checks
 * that read the catalogs object by object (privileges, replica identity,
 * names, objects logical replication does not carry, extensions, collations,
 * the target's schemas).
 */
#ifndef PGSTREAM_ENGINE_ASSESS_INTERNAL_H
#define PGSTREAM_ENGINE_ASSESS_INTERNAL_H

#include "engine/assess/assess.h"

/* Per-object findings of one kind beyond this are summed up in one more. */
#define ASSESS_MAX_PER_CHECK 20

/* What every check may need, read once. */
typedef struct AssessContext
{
	PGconn	   *src;
	PGconn	   *tgt;
	const AssessOptions *opts;
	NoKeyMode	no_key_tables;
	Findings   *out;
	bool		live;			/* a publication will be created */
	int			src_version;
	int			tgt_version;
	bool		src_super;
	bool		tgt_super;
	char		src_login[132]; /* quoted for SQL */
	char		tgt_login[132];
	char		src_db[132];	/* quoted for SQL */
	char		tgt_db[132];
} AssessContext;

/* Run a query for check; on error add a warning saying the check could not
 * run, and return NULL. */
PGresult   *assess_query(AssessContext *cx, PGconn *conn, const char *check,
						 const char *sql, int nparams, const char *const *params);

/*
 * For per-object loops: true (and one summary finding added) when row i is
 * the first beyond ASSESS_MAX_PER_CHECK of total rows.
 */
bool		assess_capped(AssessContext *cx, int i, int total,
						  FindingSeverity sev, const char *check,
						  const char *fix);

/* assess_catalog.c */
void		assess_check_privileges(AssessContext *cx);
void		assess_check_publication(AssessContext *cx);
void		assess_check_identity(AssessContext *cx);
void		assess_check_names(AssessContext *cx);
void		assess_check_objects(AssessContext *cx);
void		assess_check_extensions(AssessContext *cx);
void		assess_check_collations(AssessContext *cx);
void		assess_check_target(AssessContext *cx);
void		assess_check_roles(AssessContext *cx);

#endif
