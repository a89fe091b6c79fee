/* schema.c: the store's numbered migrations. Migration N takes a file from
 * user_version N-1 to N; never edit a released migration, append a new one. */
#include "store_int.h"

static const char *const migrations[] = {
    /* 1: the tables of DESIGN.md */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;"
    "CREATE TABLE users("
    "  idx INTEGER PRIMARY KEY,"          /* dense index, 0-based */
    "  ext_id TEXT NOT NULL UNIQUE,"      /* the shop's id */
    "  attributes TEXT,"                  /* JSON object */
    "  created INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE items("
    "  idx INTEGER PRIMARY KEY,"
    "  ext_id TEXT NOT NULL UNIQUE,"
    "  kind TEXT NOT NULL DEFAULT 'product',"
    "  title TEXT, text TEXT, category TEXT, brand TEXT, price REAL,"
    "  available INTEGER NOT NULL DEFAULT 1,"
    "  attributes TEXT,"                  /* JSON object */
    "  created INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE event_types("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, weight REAL NOT NULL);"
    "INSERT INTO event_types(id, name, weight) VALUES"
    "  (0,'view',1),(1,'click',1),(2,'cart',3),(3,'purchase',5),(4,'rating',1),"
    "  (5,'like',2),(6,'dislike',-2),(7,'share',2),(8,'impression',0),(9,'return',-3);"
    "CREATE TABLE events("
    "  id INTEGER PRIMARY KEY,"           /* insertion order: ties in ts keep it */
    "  user INTEGER NOT NULL, item INTEGER NOT NULL, type INTEGER NOT NULL,"
    "  value REAL NOT NULL DEFAULT 0,"
    "  ts INTEGER NOT NULL DEFAULT 0,"    /* unix seconds */
    "  rec_id TEXT,"                      /* the served slate it answers */
    "  context TEXT);"                    /* JSON object */
    "CREATE INDEX events_rec_id ON events(rec_id) WHERE rec_id IS NOT NULL;"
    "CREATE TABLE attrs(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE item_attrs(item INTEGER NOT NULL, attr INTEGER NOT NULL,"
    "  PRIMARY KEY(item, attr)) WITHOUT ROWID;"
    "CREATE TABLE served("
    "  rec_id TEXT PRIMARY KEY, user INTEGER, ts INTEGER NOT NULL,"
    "  strategy TEXT, variant TEXT,"
    "  items TEXT NOT NULL,"              /* JSON array of dense item indices */
    "  scores TEXT, propensities TEXT,"   /* JSON arrays, same length */
    "  context TEXT);",
    /* 2: API keys (keys.c): only the key's SHA-256 is kept, never its text */
    "CREATE TABLE api_keys("
    "  id INTEGER PRIMARY KEY,"
    "  prefix TEXT NOT NULL,"             /* the key's first 12 characters */
    "  hash BLOB NOT NULL UNIQUE,"        /* SHA-256 of the key text */
    "  scope TEXT NOT NULL,"              /* read|write|admin */
    "  name TEXT,"
    "  created INTEGER NOT NULL,"         /* unix seconds */
    "  revoked INTEGER NOT NULL DEFAULT 0);",
};

int shelf__store_latest(void) { return (int)(sizeof migrations / sizeof migrations[0]); }

const char *shelf__store_migration(int version)
{
    if (version < 1 || version > shelf__store_latest()) return NULL;
    return migrations[version - 1];
}
