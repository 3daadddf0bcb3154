/*
 * apply/relmap.c -- remote relation cache (open addressing on relid).
 */
#include "apply/relmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
relmap_init(RelMap *map)
{
	memset(map, 0, sizeof(*map));
}

static void
relation_free(RemoteRelation *r)
{
	if (r == NULL)
		return;
	for (int i = 0; i < r->natts; i++)
		free(r->columns[i].name);
	free(r->columns);
	free(r->nspname);
	free(r->relname);
	free(r->display_name);
	free(r);
}

void
relmap_term(RelMap *map)
{
	for (size_t i = 0; i < map->nslots; i++)
		relation_free(map->slots[i]);
	free(map->slots);
	memset(map, 0, sizeof(*map));
}

static size_t
slot_of(const RelMap *map, Oid relid)
{
	size_t		mask = map->nslots - 1;
	size_t		i = ((size_t) relid * 2654435761u) & mask;

	while (map->slots[i] != NULL && map->slots[i]->relid != relid)
		i = (i + 1) & mask;
	return i;
}

const RemoteRelation *
relmap_get(const RelMap *map, Oid relid)
{
	if (map->nslots == 0)
		return NULL;
	return map->slots[slot_of(map, relid)];
}

static bool
grow(RelMap *map)
{
	size_t		n = map->nslots ? map->nslots * 2 : 64;
	RelMap		bigger = {calloc(n, sizeof(RemoteRelation *)), n, map->count,
	map->next_version};

	if (bigger.slots == NULL)
		return false;
	for (size_t i = 0; i < map->nslots; i++)
		if (map->slots[i] != NULL)
			bigger.slots[slot_of(&bigger, map->slots[i]->relid)] = map->slots[i];
	free(map->slots);
	*map = bigger;
	return true;
}

static char *
dup_view(ByteView v)
{
	char	   *s = malloc(v.len + 1);

	if (s != NULL)
	{
		memcpy(s, v.ptr, v.len);
		s[v.len] = '\0';
	}
	return s;
}

static RemoteRelation *
relation_copy(const PgoutputRelation *rel)
{
	RemoteRelation *r = calloc(1, sizeof(*r));
	size_t		dlen;
	bool		ok;

	if (r == NULL)
		return NULL;
	r->relid = rel->relid;
	r->replident = rel->replident;
	r->nspname = rel->nspname.len ? dup_view(rel->nspname) : strdup("pg_catalog");
	r->relname = dup_view(rel->relname);
	r->columns = calloc(rel->natts ? rel->natts : 1, sizeof(RemoteColumn));
	ok = r->nspname && r->relname && r->columns;
	for (int i = 0; ok && i < rel->natts; i++)
	{
		r->columns[i].name = dup_view(rel->columns[i].name);
		r->columns[i].type_oid = rel->columns[i].type_oid;
		r->columns[i].typmod = rel->columns[i].typmod;
		r->columns[i].is_key = (rel->columns[i].flags & PGOUTPUT_COLUMN_FLAG_KEY) != 0;
		r->natts = i + 1;
		ok = r->columns[i].name != NULL;
	}
	if (ok)
	{
		dlen = strlen(r->nspname) + strlen(r->relname) + 2;
		r->display_name = malloc(dlen);
		ok = r->display_name != NULL;
		if (ok)
			snprintf(r->display_name, dlen, "%s.%s", r->nspname, r->relname);
	}
	if (!ok)
	{
		relation_free(r);
		return NULL;
	}
	return r;
}

const RemoteRelation *
relmap_update(RelMap *map, const PgoutputRelation *rel, SyncError *err)
{
	RemoteRelation *copy;
	size_t		i;

	if ((map->count + 1) * 2 > map->nslots && !grow(map))
	{
		sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		return NULL;
	}
	copy = relation_copy(rel);
	if (copy == NULL)
	{
		sync_error_set(err, SYNC_ERR_NOMEM, "out of memory");
		return NULL;
	}
	copy->version = ++map->next_version;
	i = slot_of(map, rel->relid);
	if (map->slots[i] == NULL)
		map->count++;
	relation_free(map->slots[i]);
	map->slots[i] = copy;
	return copy;
}
