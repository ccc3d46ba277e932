/* A PostgreSQL 15 database of its own with the stand-in for AGE's catalog
 * (fakeage/stub_catalog.h), for the loader's COPY path. */
#ifndef AGEC_TEST_STUB_AGE_DB_H
#define AGEC_TEST_STUB_AGE_DB_H

#include "agec/agec.h"

/* (Re)create database `dbname` on the PG test server (through `admin`, a
 * pool on another database) with the stand-in catalog; returns a pool of
 * one on it. Fails the test on error. */
agec_pool *agec_test_stub_age_pool(agec_pool *admin, const char *dbname);

#endif
