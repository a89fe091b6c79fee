/* test_search.c: text search over the catalogue (store/search.c, migration
 * 6): Chinese and English queries, FTS syntax in a query, the index kept in
 * step with items put, changed and deleted, the kind filter, short queries
 * answered by the scan, snippets, and the migration indexing a store's
 * existing items. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "shelf/shelf.h"
#include "store/search_int.h"

static void tmp_path(char *buf, size_t cap, const char *name)
{
    const char *dir = getenv("SHELF_TEST_TMP");
    if (!dir) dir = "/tmp";
    mkdir(dir, 0755);
    snprintf(buf, cap, "%s/search_%s", dir, name);
    const char *side[] = {"", "-wal", "-shm"};
    for (int k = 0; k < 3; k++) {
        char p[600];
        snprintf(p, sizeof p, "%s%s", buf, side[k]);
        remove(p);
    }
}

static void put(shelf_store *st, const char *id, const char *kind, const char *title, const char *text)
{
    shelf_item it = {.id = id, .kind = kind, .title = title, .text = text, .available = 1};
    assert_int_equal(shelf_store_put_item(st, &it, NULL), 0);
}

/* a store on disk with two FAQ items (Chinese, English) and two products */
static shelf_store *shop(const char *name)
{
    char path[512];
    tmp_path(path, sizeof path, name);
    shelf_store *st = NULL;
    shelf_err e = {0};
    assert_int_equal(shelf_store_open(path, SHELF_STORE_CREATE, &st, &e), 0);
    put(st, "faq-return-zh", "faq", "如何退货", "退货政策：30天内可以退货并全额退款");
    put(st, "faq-return-en", "faq", "How to return an item", "Our return policy: send it back within 30 days for a full refund.");
    put(st, "shoe-1", "product", "Red running shoes", "Light shoes for running on roads.");
    put(st, "mug-1", "product", "Tea mug", "A mug for tea (Return to sender).");
    return st;
}

/* the ids of a search, best first, joined by spaces; SHELF_E* as "error N" */
static const char *ids(shelf_store *st, const char *query, const char *kind, shelf__search_res *r)
{
    static char out[512];
    shelf__search_q q = {.query = query, .kind = kind, .limit = 10};
    int rc = shelf__store_search(st, &q, r);
    if (rc) {
        snprintf(out, sizeof out, "error %d: %s", rc, shelf_store_errmsg(st));
        return out;
    }
    out[0] = '\0';
    for (size_t k = 0; k < r->n; k++)
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", k ? " " : "", r->hit[k].id);
    return out;
}

static void test_chinese_query(void **state)
{
    (void)state;
    shelf_store *st = shop("zh.db");
    shelf__search_res r = {0};
    assert_string_equal(ids(st, "退货政策", NULL, &r), "faq-return-zh");
    assert_int_equal(r.method, SHELF__SEARCH_FTS);
    assert_string_equal(r.hit[0].kind, "faq");
    assert_string_equal(r.hit[0].title, "如何退货");
    assert_non_null(strstr(r.hit[0].snippet, "[退货政策]"));
    assert_true(r.hit[0].score > 0);
    shelf__search_res_free(&r);
    /* the title matches too: 如何退货 is 4 characters */
    assert_string_equal(ids(st, "如何退货", NULL, &r), "faq-return-zh");
    shelf__search_res_free(&r);
    /* a word of the text in the ideographic space of CJK input: either word finds it */
    assert_string_equal(ids(st, "全额退款\xe3\x80\x80不存在的词", NULL, &r), "faq-return-zh");
    shelf__search_res_free(&r);
    shelf_store_close(st);
}

static void test_english_query(void **state)
{
    (void)state;
    shelf_store *st = shop("en.db");
    shelf__search_res r = {0};
    /* words are ORed, bm25 ranks the item with both (title weighted) first; case does not matter */
    const char *got = ids(st, "RETURN policy", NULL, &r);
    assert_true(r.n == 2);
    assert_string_equal(r.hit[0].id, "faq-return-en");
    assert_string_equal(r.hit[1].id, "mug-1");
    assert_true(r.hit[0].score >= r.hit[1].score);
    (void)got;
    shelf__search_res_free(&r);
    assert_string_equal(ids(st, "running", NULL, &r), "shoe-1");
    assert_non_null(strstr(r.hit[0].snippet, "[running]"));
    shelf__search_res_free(&r);
    assert_string_equal(ids(st, "nothing-like-this", NULL, &r), "");
    assert_int_equal(r.n, 0);
    shelf__search_res_free(&r);
    shelf_store_close(st);
}

static void test_fts_syntax_is_text(void **state)
{
    (void)state;
    shelf_store *st = shop("syntax.db");
    static const char *const q[] = {
        "\"",       "\"\"\"", "ret*",     "title:return", "(return",   "return)", "-return", "return AND",
        "AND",      "OR NOT", "NEAR(a b", "^return",      "a + b",     "{title}", "*",       "'; DROP TABLE items; --",
        "\"return", "re\"turn",
    };
    for (size_t k = 0; k < sizeof q / sizeof q[0]; k++) {
        shelf__search_res r = {0};
        const char *got = ids(st, q[k], NULL, &r);
        if (!strncmp(got, "error", 5)) fail_msg("query %s: %s", q[k], got);
        shelf__search_res_free(&r);
    }
    shelf__search_res r = {0};
    /* FTS syntax inside a word is matched as text */
    assert_string_equal(ids(st, "(Return to", NULL, &r), "mug-1");
    shelf__search_res_free(&r);
    assert_string_equal(ids(st, "-return", NULL, &r), "");
    shelf__search_res_free(&r);
    /* the table is still there */
    assert_string_equal(ids(st, "mug", NULL, &r), "mug-1");
    shelf__search_res_free(&r);
    /* no word at all, or a limit out of range, is refused */
    shelf__search_q bad = {.query = "  \t ", .limit = 10};
    assert_int_equal(shelf__store_search(st, &bad, &r), SHELF_EINVAL);
    assert_non_null(strstr(shelf_store_errmsg(st), "no word"));
    bad = (shelf__search_q){.query = "mug", .limit = 0};
    assert_int_equal(shelf__store_search(st, &bad, &r), SHELF_EINVAL);
    shelf_store_close(st);
}

static void test_index_follows_items(void **state)
{
    (void)state;
    shelf_store *st = shop("follow.db");
    shelf__search_res r = {0};
    /* changed: the old words are gone, the new ones found */
    put(st, "shoe-1", "product", "Blue trail shoes", "Grippy shoes for mountain trails.");
    assert_string_equal(ids(st, "running", NULL, &r), "");
    shelf__search_res_free(&r);
    assert_string_equal(ids(st, "mountain", NULL, &r), "shoe-1");
    shelf__search_res_free(&r);
    /* deleted: not found any more, by any of its words */
    assert_int_equal(shelf_store_delete_item(st, "faq-return-zh", strlen("faq-return-zh"), NULL), 0);
    assert_string_equal(ids(st, "退货政策", NULL, &r), "");
    shelf__search_res_free(&r);
    assert_string_equal(ids(st, "退货", NULL, &r), "");
    shelf__search_res_free(&r);
    /* put again under the same id: a new item, found */
    put(st, "faq-return-zh", "faq", "退货", "新的退货政策");
    assert_string_equal(ids(st, "退货政策", NULL, &r), "faq-return-zh");
    shelf__search_res_free(&r);
    /* unavailable items are not answered */
    shelf_item off = {.id = "mug-1", .kind = "product", .title = "Tea mug", .available = 0};
    assert_int_equal(shelf_store_put_item(st, &off, NULL), 0);
    assert_string_equal(ids(st, "mug", NULL, &r), "");
    shelf__search_res_free(&r);
    /* a rolled-back change leaves the index as it was */
    assert_int_equal(shelf_store_begin(st), 0);
    put(st, "shoe-1", "product", "Sandals", "Open sandals.");
    assert_int_equal(shelf_store_rollback(st), 0);
    assert_string_equal(ids(st, "sandals", NULL, &r), "");
    shelf__search_res_free(&r);
    assert_string_equal(ids(st, "mountain", NULL, &r), "shoe-1");
    shelf__search_res_free(&r);
    shelf_store_close(st);
}

static void test_kind_filter(void **state)
{
    (void)state;
    shelf_store *st = shop("kind.db");
    shelf__search_res r = {0};
    assert_string_equal(ids(st, "return", "faq", &r), "faq-return-en");
    shelf__search_res_free(&r);
    assert_string_equal(ids(st, "return", "product", &r), "mug-1");
    shelf__search_res_free(&r);
    assert_string_equal(ids(st, "return", "campaign", &r), "");
    shelf__search_res_free(&r);
    assert_string_equal(ids(st, "退货", "product", &r), "");
    shelf__search_res_free(&r);
    shelf_store_close(st);
}

static void test_short_query_scan(void **state)
{
    (void)state;
    shelf_store *st = shop("short.db");
    shelf__search_res r = {0};
    /* two characters: below the trigram, answered by the scan; title hits count twice */
    assert_string_equal(ids(st, "退货", NULL, &r), "faq-return-zh");
    assert_int_equal(r.method, SHELF__SEARCH_SCAN);
    assert_true(r.hit[0].score == 3.0f); /* in the title (2) and the text (1) */
    assert_non_null(strstr(r.hit[0].snippet, "[退货]政策"));
    shelf__search_res_free(&r);
    /* every short word must be there */
    assert_string_equal(ids(st, "退货 30", NULL, &r), "faq-return-zh");
    shelf__search_res_free(&r);
    assert_string_equal(ids(st, "退货 ab", NULL, &r), "");
    shelf__search_res_free(&r);
    /* ASCII in any case: mug-1 (title and text: 3) before faq-return-en (its title "item": 2) */
    assert_string_equal(ids(st, "TE", NULL, &r), "mug-1 faq-return-en");
    shelf__search_res_free(&r);
    /* HTML snippets are escaped, marks are tags */
    put(st, "tag", "content", "<b>", "x < y & \"q\" ok");
    shelf__search_q q = {.query = "ok", .limit = 5, .html = 1};
    assert_int_equal(shelf__store_search(st, &q, &r), 0);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.hit[0].snippet, "x &lt; y &amp; &quot;q&quot; <mark>ok</mark>");
    assert_string_equal(r.hit[0].title, "<b>");
    shelf__search_res_free(&r);
    /* long text: the snippet is cut around the match */
    char longtext[2000] = "";
    for (int k = 0; k < 40; k++) strcat(longtext, "filler words ");
    strcat(longtext, "XQ");
    for (int k = 0; k < 40; k++) strcat(longtext, " more filler");
    put(st, "long", "content", "Long", longtext);
    assert_string_equal(ids(st, "xq", NULL, &r), "long");
    assert_true(strlen(r.hit[0].snippet) < 120);
    assert_non_null(strstr(r.hit[0].snippet, "[XQ]"));
    assert_true(!strncmp(r.hit[0].snippet, "…", strlen("…")));
    shelf__search_res_free(&r);
    shelf_store_close(st);
}

/* a store written before migration 6 gets its items indexed when opened */
static void test_migration_indexes_existing_items(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "v5.db");
    shelf_store *st = NULL;
    shelf_err e = {0};
    assert_int_equal(shelf_store_open(path, SHELF_STORE_CREATE, &st, &e), 0);
    put(st, "faq-return-zh", "faq", "如何退货", "退货政策：30天内可以退货并全额退款");
    shelf_store_close(st);
    /* back to version 5: the index and its triggers gone (and migration 7's table), as an older shelf
     * left it */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TRIGGER items_fts_insert; DROP TRIGGER items_fts_delete;"
                                  "DROP TRIGGER items_fts_update; DROP TABLE items_fts; DROP TABLE imports;"
                                  "INSERT INTO items(idx, ext_id, kind, title, text) VALUES"
                                  " (1, 'faq-ship', 'faq', 'Shipping times', 'Parcels arrive in 3 days.');"
                                  "PRAGMA user_version = 5;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(shelf_store_open(path, 0, &st, &e), 0);
    assert_int_equal(shelf_store_schema_version(st), shelf_store_schema_latest());
    shelf__search_res r = {0};
    assert_string_equal(ids(st, "退货政策", NULL, &r), "faq-return-zh");
    shelf__search_res_free(&r);
    assert_string_equal(ids(st, "parcels", NULL, &r), "faq-ship");
    shelf__search_res_free(&r);
    shelf_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chinese_query),
        cmocka_unit_test(test_english_query),
        cmocka_unit_test(test_fts_syntax_is_text),
        cmocka_unit_test(test_index_follows_items),
        cmocka_unit_test(test_kind_filter),
        cmocka_unit_test(test_short_query_scan),
        cmocka_unit_test(test_migration_indexes_existing_items),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
