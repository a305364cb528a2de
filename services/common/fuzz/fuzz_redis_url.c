/* fuzz_redis_url.c - REDIS_URL parsing (redis_parse_url in redis.h).
 *
 * Feeds, from one input:
 *   1. the input (to its first NUL) as a URL;
 *   2. the input as a source of choices: a user name and a password of any
 *      bytes but NUL (with '@', ':', '%' and non-ASCII), a host (a name, an
 *      IPv4 address, or an IPv6 address in brackets), an optional port and
 *      database. The target writes the URL itself, percent-encoding what
 *      RFC 3986 requires and, at random, other characters too (upper- or
 *      lower-case hex), leaving '@' in the password raw at random.
 *
 * Asserts:
 *   - round trip: the URL built in 2 parses, and to exactly the user name,
 *     password, host (IPv6 without brackets), port (default 6379) and
 *     database (default 0) it was built from;
 *   - whatever URL parses has a host of 1-255 bytes without control bytes,
 *     a port in 1..65535, a database in 0..15, and writing that target back
 *     as a URL (canonical encoding) parses to the same target.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fuzz_support.h"
#include "redis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct choices {
    const uint8_t *p, *end;
} choices_t;

static unsigned pick(choices_t *c, unsigned n)
{
    unsigned v = c->p < c->end ? *c->p++ : 0;
    return n > 0 ? v % n : 0;
}

static bool unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
           ch == '_' || ch == '~';
}

static bool sub_delim(unsigned char ch)
{
    return ch != '\0' && strchr("!$&'()*+,;=", ch) != NULL;
}

/* Appends `len` bytes percent-encoded where needed; `raw_ok` says which
 * other characters may stay raw, and `c` (may be NULL: never) picks. */
static size_t append_encoded(char *out, size_t n, const char *s, size_t len, const char *raw_ok, choices_t *c)
{
    static const char upper[] = "0123456789ABCDEF", lower[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        bool may_be_raw = unreserved(ch) || sub_delim(ch) || (ch != '\0' && strchr(raw_ok, ch) != NULL);
        if (may_be_raw && (c == NULL || pick(c, 4) != 0)) {
            out[n++] = (char)ch;
        } else {
            const char *hex = c != NULL && pick(c, 2) ? lower : upper;
            out[n++] = '%';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    return n;
}

/* Writes `target` as a URL; `c` NULL gives the canonical spelling. */
static void format_url(const redis_target_t *target, bool with_userinfo, bool with_colon, bool with_port, bool with_db,
                       choices_t *c, char *out)
{
    size_t n = (size_t)sprintf(out, "redis://");
    if (with_userinfo) {
        n = append_encoded(out, n, target->username, strlen(target->username), c != NULL ? "@" : "", c);
        if (with_colon) {
            out[n++] = ':';
            n = append_encoded(out, n, target->password, strlen(target->password), c != NULL ? "@:" : ":", c);
        }
        out[n++] = '@';
    }
    if (strchr(target->host, ':') != NULL)
        n += (size_t)sprintf(out + n, "[%s]", target->host);
    else
        n = append_encoded(out, n, target->host, strlen(target->host), "", NULL);
    if (with_port)
        n += (size_t)sprintf(out + n, ":%s%d", c != NULL && pick(c, 8) == 0 ? "00" : "", target->port);
    if (with_db)
        n += (size_t)sprintf(out + n, "/%d", target->database);
    else if (c != NULL && pick(c, 4) == 0)
        out[n++] = '/';
    out[n] = '\0';
}

static bool same_target(const redis_target_t *a, const redis_target_t *b)
{
    return strcmp(a->host, b->host) == 0 && a->port == b->port && strcmp(a->username, b->username) == 0 &&
           strcmp(a->password, b->password) == 0 && a->database == b->database;
}

static const char *describe(const redis_target_t *t)
{
    static char text[1024];
    snprintf(text, sizeof(text), "user '%s' password '%s' host '%s' port %d db %d", t->username, t->password, t->host,
             t->port, t->database);
    return text;
}

static void random_bytes(choices_t *c, char *out, size_t max)
{
    size_t len = pick(c, (unsigned)max);
    static const char interesting[] = "@:%/?#[] !$&'()*+,;=~";
    for (size_t i = 0; i < len; i++) {
        unsigned kind = pick(c, 4);
        char ch = kind == 0   ? interesting[pick(c, sizeof(interesting) - 1)]
                  : kind == 1 ? (char)(1 + pick(c, 255))
                              : (char)('a' + pick(c, 26));
        out[i] = ch;
    }
    out[len] = '\0';
}

static void check_round_trip(const uint8_t *data, size_t size)
{
    choices_t c = {data, data + size};
    redis_target_t want;
    memset(&want, 0, sizeof(want));
    bool with_userinfo = pick(&c, 2), with_colon = pick(&c, 2);
    if (with_userinfo) {
        random_bytes(&c, want.username, 24);
        if (with_colon)
            random_bytes(&c, want.password, 40);
    }
    switch (pick(&c, 3)) {
    case 0: {
        static const char name[] = "abcdefghijklmnopqrstuvwxyz0123456789.-";
        size_t len = 1 + pick(&c, 30);
        for (size_t i = 0; i < len; i++)
            want.host[i] = name[pick(&c, sizeof(name) - 1)];
        break;
    }
    case 1: {
        unsigned char v4[4] = {(unsigned char)pick(&c, 256), (unsigned char)pick(&c, 256), (unsigned char)pick(&c, 256),
                               (unsigned char)pick(&c, 256)};
        inet_ntop(AF_INET, v4, want.host, sizeof(want.host));
        break;
    }
    default: {
        unsigned char v6[16];
        for (int i = 0; i < 16; i++)
            v6[i] = pick(&c, 3) == 0 ? (unsigned char)pick(&c, 256) : 0;
        inet_ntop(AF_INET6, v6, want.host, sizeof(want.host));
        break;
    }
    }
    bool with_port = pick(&c, 2), with_db = pick(&c, 2);
    want.port = with_port ? (int)(1 + (pick(&c, 256) << 8 | pick(&c, 256)) % 65535) : 6379;
    want.database = with_db ? (int)pick(&c, 16) : 0;

    char url[2048];
    format_url(&want, with_userinfo, with_colon, with_port, with_db, &c, url);
    redis_target_t got;
    char error[256] = "";
    int status = redis_parse_url(url, &got, error, sizeof(error));
    FUZZ_CHECK(status == 0, "redis_parse_url refused '%s' (%s), built from %s", fuzz_show(url, strlen(url)), error,
               describe(&want));
    FUZZ_CHECK(same_target(&got, &want), "'%s' parsed as %s", fuzz_show(url, strlen(url)), describe(&got));
}

static void check_any_url(const uint8_t *data, size_t size)
{
    char *url = fuzz_cstring((const char *)data, size);
    redis_target_t got;
    char error[256] = "";
    if (redis_parse_url(url, &got, error, sizeof(error)) != 0) {
        FUZZ_CHECK(error[0] != '\0', "refused without a reason");
        free(url);
        return;
    }
    size_t host_len = strnlen(got.host, sizeof(got.host));
    FUZZ_CHECK(host_len > 0 && host_len < sizeof(got.host) && !fuzz_has_control(got.host, host_len),
               "'%s' gives the host '%s'", fuzz_show(url, strlen(url)), fuzz_show(got.host, host_len));
    FUZZ_CHECK(got.port >= 1 && got.port <= 65535 && got.database >= 0 && got.database <= 15,
               "'%s' gives port %d db %d", fuzz_show(url, strlen(url)), got.port, got.database);
    FUZZ_CHECK(strnlen(got.username, sizeof(got.username)) < sizeof(got.username) &&
                   strnlen(got.password, sizeof(got.password)) < sizeof(got.password),
               "user name or password not NUL-terminated");

    char again[2048];
    format_url(&got, got.username[0] != '\0' || got.password[0] != '\0', got.password[0] != '\0', true, true, NULL,
               again);
    redis_target_t reread;
    FUZZ_CHECK(redis_parse_url(again, &reread, error, sizeof(error)) == 0 && same_target(&reread, &got),
               "'%s' parses to %s, but its canonical spelling '%s' does not read back the same (%s)",
               fuzz_show(url, strlen(url)), describe(&got), fuzz_show(again, strlen(again)), error);
    free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_any_url(data, size);
    check_round_trip(data, size);
    return 0;
}
