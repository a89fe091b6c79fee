/* check_int.h: the checks every value and text takes on its way in (HTTP
 * bodies and paths, every importer): a float field from a double, a text
 * (id or string field) from bytes, and every string of a JSON tree. Each
 * returns what is wrong as text without the place, which the caller knows
 * (file:line:field, or the JSON path of a request). */
#ifndef SHELF_CORE_CHECK_INT_H
#define SHELF_CORE_CHECK_INT_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* A float field (an event's value) from a parsed double: 0 and *out when v
 * is finite and |v| <= FLT_MAX, else SHELF_ERANGE and why ("not a finite
 * number" or "1e+308 is beyond the range of a float (+-3.40282e+38)"): a cast
 * would store Inf. Values below the smallest float round to 0 (not refused). */
int shelf__check_float(double v, float *out, char *why, size_t cap);

/* Faults of a text, first one found */
enum { SHELF__TEXT_OK = 0, SHELF__TEXT_NUL = 1, SHELF__TEXT_UTF8 = 2 };

/* Checks that s[0..len) is valid UTF-8 (strict, by utf8proc: no overlongs,
 * surrogates or code points past U+10FFFF) and holds no NUL byte. Returns
 * SHELF__TEXT_OK, or the fault with *bad the 0-based offset of its byte.
 * Runs of ASCII are skipped 8 bytes at a time; utf8proc only sees the rest. */
int shelf__check_text(const char *s, size_t len, size_t *bad);

/* The same with the fault as text into why ("NUL byte at byte offset 2",
 * "invalid UTF-8 at byte offset 5 (0xff)"): 0 or SHELF_EFORMAT. */
int shelf__check_text_why(const char *s, size_t len, char *why, size_t cap);

/* The same for text from a URL, where C0 80 is the mark of %00 (below):
 * "NUL character (%00) at byte offset 2". */
int shelf__check_url_text_why(const char *s, size_t len, char *why, size_t cap);

/* Decodes the %XX escapes of s in place (others stay as they are) and
 * returns the new length. %00 becomes C0 80, the mark shelf__check_url_text_why
 * names, so that a NUL never cuts the text short ("ab%00cd" is not "ab").
 * The server's URL decoding (MHD_OPTION_UNESCAPE_CALLBACK). */
size_t shelf__url_unescape(char *s);

/* cJSON ends a string at the escape \u0000 ("ab\u0000cd" is read as "ab").
 * Rewrites each \u0000 escape of the JSON text t[0..*len) into the two bytes
 * C0 80 (an overlong NUL, which no valid UTF-8 holds) in place, so that the
 * string keeps the mark and shelf__check_json refuses it with its place.
 * Returns how many it rewrote; when any, *len is the new (shorter) length and
 * t[*len] is NUL. Text without a backslash costs one memchr. */
size_t shelf__json_mark_nul(char *t, size_t *len);

/* Checks every string value and member name of the tree j (after
 * shelf__json_mark_nul on its text) with shelf__check_text. 0 when all are
 * sound; else SHELF_EFORMAT with path the JSON path below j of the first bad
 * one (".user", ".tags[2]", "" for j itself; a bad member name is reported at
 * its object with why starting "member name: ") and why the fault, C0 80
 * named "NUL character (\u0000)". Both are cut to their capacity. */
int shelf__check_json(const cJSON *j, char *path, size_t pcap, char *why, size_t wcap);

#endif
