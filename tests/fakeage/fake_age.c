/*
 * A stand-in for Apache AGE's age.so, for issue 11 item 5: a PostgreSQL 15
 * server that has "AGE installed" in its $libdir, so the tests can show they
 * do not depend on whether the machine has AGE. LOAD 'age' succeeds and does
 * nothing (no hooks, no functions). Built without PostgreSQL's server headers:
 * the magic block below is PostgreSQL 15's Pg_magic_struct (fmgr.h) for a
 * 64-bit build with the default FUNC_MAX_ARGS, INDEX_MAX_KEYS and NAMEDATALEN;
 * pg15-with-fake-age checks that the server really loads it.
 */
typedef struct {
    int len;
    int version;
    int funcmaxargs;
    int indexmaxkeys;
    int namedatalen;
    int float8byval;
    char abi_extra[32];
} fake_pg_magic_struct;

const fake_pg_magic_struct *Pg_magic_func(void);

const fake_pg_magic_struct *Pg_magic_func(void)
{
    static const fake_pg_magic_struct magic = {
        sizeof(fake_pg_magic_struct), 1500, 100, 32, 64, 1, "PostgreSQL"
    };
    return &magic;
}
