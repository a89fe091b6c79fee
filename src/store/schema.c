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
    /* 3: the served log keeps whole slates (shelf/slate.h): the slate's row
     * gains its placement, model and source, and each shown item becomes a
     * row of served_items. The v2 rows move over: their JSON arrays become
     * item rows (score 0 and propensity 1 where none was kept; a row whose
     * items are not valid JSON keeps its header, without items), their strategy
     * (which ranker served it: "model", "pop") becomes the source of the
     * slate and of its items, scenario and model stay "". The JSON columns
     * are gone; context (never written by the server) is kept. A slate's
     * items are keyed by its row id, in the order slates are written, so
     * that logging appends instead of inserting by a random rec_id. */
    "CREATE TABLE served_v3("
    "  id INTEGER PRIMARY KEY,"                /* order of logging */
    "  rec_id TEXT NOT NULL UNIQUE, user INTEGER," /* user NULL: anonymous */
    "  ts INTEGER NOT NULL,"                   /* unix seconds */
    "  scenario TEXT NOT NULL DEFAULT '', variant TEXT NOT NULL DEFAULT '',"
    "  model TEXT NOT NULL DEFAULT '', model_version TEXT NOT NULL DEFAULT '',"
    "  source TEXT NOT NULL DEFAULT '',"
    "  n_skipped INTEGER NOT NULL DEFAULT 0," /* request items unknown to the catalogue */
    "  context TEXT);"
    "CREATE TABLE served_items("
    "  slate INTEGER NOT NULL, position INTEGER NOT NULL," /* served.id; 0: first */
    "  item INTEGER NOT NULL, score REAL NOT NULL DEFAULT 0, propensity REAL NOT NULL DEFAULT 1,"
    "  source TEXT NOT NULL DEFAULT '',"
    "  reason_item INTEGER,"                  /* NULL: no reason */
    "  reason_weight REAL NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '',"
    "  PRIMARY KEY(slate, position)) WITHOUT ROWID;"
    "INSERT INTO served_v3(rec_id, user, ts, variant, source, context)"
    "  SELECT rec_id, user, ts, coalesce(variant, ''), coalesce(strategy, ''), context FROM served;"
    "INSERT INTO served_items(slate, position, item, score, propensity, source)"
    "  SELECT v.id, j.key, j.value,"
    "    coalesce(CASE WHEN json_valid(s.scores) THEN json_extract(s.scores, '$[' || j.key || ']') END, 0),"
    "    coalesce(CASE WHEN json_valid(s.propensities) THEN json_extract(s.propensities, '$[' || j.key || ']')"
    "      END, 1), coalesce(s.strategy, '')"
    "  FROM served s JOIN served_v3 v ON v.rec_id = s.rec_id,"
    "    json_each(CASE WHEN json_valid(s.items) THEN s.items ELSE '[]' END) j"
    "  WHERE j.type = 'integer';"
    "DROP TABLE served;"
    "ALTER TABLE served_v3 RENAME TO served;"
    "CREATE INDEX served_ts ON served(ts, rec_id);"   /* shelf_store_served_foreach(since) */
    "CREATE INDEX served_user ON served(user) WHERE user IS NOT NULL;", /* forgetting a user */
    /* 4: scenarios (placements): named JSON documents (docs/scenarios.md),
     * checked by the ranking room before they are stored */
    "CREATE TABLE scenarios("
    "  name TEXT PRIMARY KEY,"
    "  doc TEXT NOT NULL,"                /* the JSON document as given */
    "  updated INTEGER NOT NULL"          /* unix seconds */
    ") WITHOUT ROWID;",
    /* 5: deletions, so that `shelf audit deletion ID` and the server can tell
     * where a deleted shopper's or item's data still lives (bundles trained
     * before it): the id only as its SHA-256, the index it had, when */
    "CREATE TABLE deletions("
    "  kind TEXT NOT NULL,"               /* user, item */
    "  id_hash BLOB NOT NULL,"            /* SHA-256 of the id's bytes */
    "  idx INTEGER NOT NULL,"
    "  ts REAL NOT NULL);"                /* unix seconds, to the microsecond */
    "CREATE INDEX deletions_hash ON deletions(id_hash);"
    "CREATE INDEX deletions_ts ON deletions(ts);",
    /* 6: text search (store/search.c, docs/search.md): the items' title and
     * text in an FTS5 index with the trigram tokenizer (any language,
     * Chinese too, without word splitting). The index reads its text from
     * items (external content; rowid = idx), and the triggers keep it in
     * step: a deleted item (its tombstone has no title or text) leaves it.
     * The items already stored are indexed by the rebuild. */
    "CREATE VIRTUAL TABLE items_fts USING fts5(title, text, content='items', content_rowid='idx',"
    "  tokenize='trigram');"
    "CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN"
    "  INSERT INTO items_fts(rowid, title, text) VALUES(new.idx, new.title, new.text);"
    "END;"
    "CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN"
    "  INSERT INTO items_fts(items_fts, rowid, title, text) VALUES('delete', old.idx, old.title, old.text);"
    "END;"
    "CREATE TRIGGER items_fts_update AFTER UPDATE OF idx, title, text ON items"
    "  WHEN old.idx IS NOT new.idx OR old.title IS NOT new.title OR old.text IS NOT new.text BEGIN"
    "  INSERT INTO items_fts(items_fts, rowid, title, text) VALUES('delete', old.idx, old.title, old.text);"
    "  INSERT INTO items_fts(rowid, title, text) VALUES(new.idx, new.title, new.text);"
    "END;"
    "INSERT INTO items_fts(items_fts) VALUES('rebuild');",
    /* 7: the files imported (store/imports.c), so that importing one again
     * stores nothing twice (shelf_import_opts.allow_duplicates) */
    "CREATE TABLE imports("
    "  sha256 BLOB PRIMARY KEY,"          /* SHA-256 of the file's bytes as read */
    "  path TEXT NOT NULL,"               /* as it was given */
    "  bytes INTEGER NOT NULL,"
    "  events INTEGER NOT NULL,"          /* events it stored */
    "  ts REAL NOT NULL"                  /* unix seconds */
    ") WITHOUT ROWID;",
};

int shelf__store_latest(void) { return (int)(sizeof migrations / sizeof migrations[0]); }

const char *shelf__store_migration(int version)
{
    if (version < 1 || version > shelf__store_latest()) return NULL;
    return migrations[version - 1];
}
