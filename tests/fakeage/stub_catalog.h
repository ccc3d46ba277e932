/*
 * A stand-in for AGE's catalog, in a PostgreSQL 15 database of its own:
 * what the loader touches, label tables of AGE's shape, agtype as a domain
 * over text (JSON texts only) and graphid over bigint. Enough to run the
 * loader's COPY path end to end (AGE itself is not on this machine): used
 * by it_load_copy_pg and bench_load_copy. Several statements: send it with
 * the simple protocol.
 */
#ifndef AGEC_STUB_CATALOG_H
#define AGEC_STUB_CATALOG_H

static const char AGEC_STUB_AGE_SQL[] =
    "CREATE SCHEMA ag_catalog;"
    "CREATE DOMAIN ag_catalog.graphid AS bigint;"
    "CREATE DOMAIN ag_catalog.agtype AS text;"
    "CREATE TABLE ag_catalog.ag_graph (graphid serial PRIMARY KEY, name name UNIQUE);"
    "CREATE TABLE ag_catalog.ag_label (name name, graph int, id int, kind \"char\", seq_name "
    "name);"
    "CREATE FUNCTION ag_catalog.create_graph(g name) RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO ag_catalog.ag_graph (name) VALUES (g); EXECUTE format('CREATE SCHEMA %I', g); "
    "END $$;"
    "CREATE FUNCTION ag_catalog.stub_label(g name, l name, k \"char\") RETURNS void LANGUAGE "
    "plpgsql AS $$ DECLARE gid int; lid int; seq text; BEGIN "
    "SELECT graphid INTO gid FROM ag_catalog.ag_graph WHERE name = g; "
    "SELECT coalesce(max(id), 2) + 1 INTO lid FROM ag_catalog.ag_label WHERE graph = gid; "
    "INSERT INTO ag_catalog.ag_label VALUES (l, gid, lid, k, l || '_id_seq'); "
    "seq := format('%I.%I', g, l || '_id_seq'); EXECUTE 'CREATE SEQUENCE ' || seq; "
    "EXECUTE format('CREATE TABLE %I.%I (id ag_catalog.graphid NOT NULL DEFAULT (%s::bigint << "
    "48) | nextval(%L) %s, properties ag_catalog.agtype NOT NULL CHECK (length(properties) < "
    "500))', g, l, lid, seq, CASE k WHEN 'e' THEN ', start_id ag_catalog.graphid NOT NULL, "
    "end_id ag_catalog.graphid NOT NULL' ELSE '' END); END $$;"
    "CREATE FUNCTION ag_catalog.create_vlabel(g name, l name) RETURNS void LANGUAGE sql AS $$ "
    "SELECT ag_catalog.stub_label(g, l, 'v') $$;"
    "CREATE FUNCTION ag_catalog.create_elabel(g name, l name) RETURNS void LANGUAGE sql AS $$ "
    "SELECT ag_catalog.stub_label(g, l, 'e') $$;"
    "CREATE FUNCTION ag_catalog.agtype_access_operator(VARIADIC a ag_catalog.agtype[]) RETURNS "
    "ag_catalog.agtype LANGUAGE sql IMMUTABLE AS $$ SELECT ((a[1])::jsonb -> ((a[2])::jsonb #>> "
    "'{}'))::text $$;";

#endif
