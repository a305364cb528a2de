/* fuzz_payment.c - the payment service's request bodies, headers and ids.
 *
 * Feeds: an HTTP/1-style request (services/common/fuzz/exchange.h) through
 * the service's own route table (main.c, included here) and handlers, with
 * PostgreSQL and Redis replaced by recorders that answer "down" and the
 * static admin token added when the request has no Authorization header
 * (it opens the internal endpoints without Redis). What matters: a charge
 * (POST /api/payments with its Idempotency-Key), a refund
 * (POST /api/payments/{id}/refund), a void (POST /api/payments/void) and
 * the ids of the reads.
 *
 * Asserts, against a reference reading of each request written here from
 * the README (field set, types, bounds, the order id, currency and card
 * shapes with the Luhn sum, the key's 1-128 printable ASCII characters):
 *   - soundness: whatever reaches PostgreSQL came from a request the
 *     reference accepts, and the statement parameters are exactly its
 *     fields (the key, or the order id without one; a keyed fingerprint of
 *     64 hex digits; only the card's last four digits);
 *   - completeness: a clean request whose body the reference accepts does
 *     reach PostgreSQL;
 *   - a card number never comes back in a response nor reaches PostgreSQL;
 *   - every exchange's response promises (exchange.h); a request answered
 *     without asking the database is a 4xx, one that asked is a 503.
 */
#define _GNU_SOURCE /* memmem; before any system header */
#define main        payment_service_main
#include "../main.c"
#undef main

#include "reference.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static router_t *router;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_exchange_setup("payment", payment_statements, payment_statement_count);
    payment_metrics_register();
    payment_config = (payment_config_t){.processor_latency_ms = 20,
                                        .processor_jitter_ms = 10,
                                        .processor_timeout_ms = 2000,
                                        .recovery_margin_ms = 5000,
                                        .idempotency_ttl_hours = 24};
    router = fuzz_exchange_router(routes, sizeof(routes) / sizeof(routes[0]));
    return 0;
}

/* --- the reference reading --------------------------------------------------- */

/* ISO/IEC 7812's check digit: the digits from the right, every second one
 * doubled and its digits added (a table of those sums here). */
static bool reference_card(const char *s)
{
    static const int doubled[10] = {0, 2, 4, 6, 8, 1, 3, 5, 7, 9};
    size_t len = strlen(s);
    if (len < 12 || len > 19)
        return false;
    int sum = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[len - 1 - i];
        if (c < '0' || c > '9')
            return false;
        sum += i % 2 == 1 ? doubled[c - '0'] : c - '0';
    }
    return sum % 10 == 0;
}

static bool is_hex64(const char *s)
{
    return s != NULL && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* The Idempotency-Key: *key its text (NULL when absent), FUZZ_UNSURE when
 * the request has more than one. */
static fuzz_verdict_t reference_key(const fuzz_exchange_t *ex, char **key)
{
    const char *value;
    size_t len;
    *key = NULL;
    size_t count = fuzz_exchange_header(ex, "idempotency-key", &value, &len);
    if (count == 0)
        return FUZZ_VALID;
    if (count > 1)
        return FUZZ_UNSURE;
    if (len < 1 || len > 128)
        return FUZZ_INVALID;
    for (size_t i = 0; i < len; i++)
        if (value[i] < 0x20 || value[i] > 0x7e)
            return FUZZ_INVALID;
    *key = fuzz_cstring(value, len);
    return FUZZ_VALID;
}

typedef struct charge_terms {
    const char *order_id, *currency, *method, *card;
    char amount[24];
} charge_terms_t;

static fuzz_verdict_t reference_charge(const json_t *body, charge_terms_t *t)
{
    static const char *const fields[] = {"order_id", "amount_cents", "currency", "method", "card", NULL};
    memset(t, 0, sizeof(*t));
    if (!json_is_object(body) || !fuzz_only_keys(body, fields))
        return FUZZ_INVALID;
    fuzz_verdict_t v = fuzz_string_field(body, "order_id", true, 1, 64, false, &t->order_id);
    if (t->order_id != NULL && !fuzz_valid_order_id(t->order_id))
        v = FUZZ_INVALID;
    v = fuzz_both(v, fuzz_int_field(body, "amount_cents", true, 1, 100000000, t->amount));
    v = fuzz_both(v, fuzz_string_field(body, "currency", true, 3, 3, false, &t->currency));
    if (t->currency != NULL && strspn(t->currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3)
        v = FUZZ_INVALID;
    v = fuzz_both(v, fuzz_string_field(body, "method", true, 1, 16, false, &t->method));
    v = fuzz_both(v, fuzz_string_field(body, "card", false, 0, 64, false, &t->card));
    if (t->method == NULL)
        return FUZZ_INVALID;
    if (strcmp(t->method, "card") == 0)
        return t->card != NULL && reference_card(t->card) ? v : FUZZ_INVALID;
    if (strcmp(t->method, "wallet") == 0)
        return t->card == NULL ? v : FUZZ_INVALID;
    return FUZZ_INVALID;
}

/* --- the checks ---------------------------------------------------------------- */

static bool contains(const char *haystack, size_t len, const char *needle)
{
    return haystack != NULL && memmem(haystack, len, needle, strlen(needle)) != NULL;
}

/* A card number of the body, when it is one, is in no response and no
 * statement parameter (unless the request put it elsewhere too). */
static void check_card_kept(const fuzz_exchange_t *ex, const json_t *body)
{
    const char *card = json_string_value(json_object_get(body, "card"));
    if (card == NULL || !reference_card(card))
        return;
    json_t *others = json_deep_copy(body);
    json_object_del(others, "card");
    char *rest = json_dumps(others, JSON_COMPACT);
    json_decref(others);
    bool elsewhere =
        contains(rest, rest != NULL ? strlen(rest) : 0, card) || contains(ex->target, ex->target_len, card);
    for (size_t i = 0; i < ex->header_count; i++)
        elsewhere |= contains(ex->headers[i].value, ex->headers[i].value_len, card);
    free(rest);
    if (elsewhere)
        return;
    FUZZ_CHECK(!contains(ex->response, ex->response_len, card), "the card number came back: %s",
               fuzz_show(ex->response, ex->response_len));
    for (size_t c = 0; c < ex->call_count; c++)
        for (size_t i = 0; i < ex->calls[c].arg_count; i++)
            FUZZ_CHECK(!contains(ex->calls[c].args[i], ex->calls[c].arg_lens[i], card),
                       "the card number reached %s parameter %zu", ex->calls[c].name, i + 1);
}

static void check_charge(const fuzz_exchange_t *ex)
{
    const fuzz_backend_call_t *call = fuzz_exchange_call(ex, "charge_begin");
    bool clean = fuzz_exchange_is_clean(ex, "POST", "/api/payments", true);
    json_t *body = fuzz_body_of(ex);
    charge_terms_t t;
    char *key;
    fuzz_verdict_t key_verdict = reference_key(ex, &key);
    fuzz_verdict_t verdict = fuzz_both(reference_charge(body, &t), key_verdict);
    if (call != NULL) {
        FUZZ_CHECK(verdict != FUZZ_INVALID, "a charge began for a request the reference refuses: '%s'",
                   fuzz_show(ex->body, ex->body_len));
        bool card = strcmp(t.method, "card") == 0;
        const char *last4 = card ? t.card + strlen(t.card) - 4 : NULL;
        const char *want[] = {
            key != NULL ? key : t.order_id, call->args[1], t.order_id, t.amount, t.currency, t.method, last4};
        if (key_verdict == FUZZ_UNSURE)
            want[0] = call->args[0];
        fuzz_check_params(call, want, 7);
        FUZZ_CHECK(is_hex64(call->args[1]), "the fingerprint '%s' is not 64 hex digits",
                   call->args[1] != NULL ? call->args[1] : "NULL");
    } else if (clean && verdict == FUZZ_VALID) {
        FUZZ_CHECK(false, "a charge refused (%d: %s) for a request the reference accepts: '%s'", ex->status,
                   fuzz_show(ex->response, ex->response_len), fuzz_show(ex->body, ex->body_len));
    }
    check_card_kept(ex, body);
    free(key);
    json_decref(body);
}

static void check_refund(const fuzz_exchange_t *ex)
{
    const fuzz_backend_call_t *call = fuzz_exchange_call(ex, "refund_create");
    size_t id_len = 0;
    const char *id = fuzz_segment_after(ex, "/api/payments/", "/refund", &id_len);
    fuzz_verdict_t verdict = id != NULL && fuzz_valid_uuid(id, id_len) ? FUZZ_VALID : FUZZ_INVALID;
    char amount[24] = "";
    json_t *body = NULL;
    if (ex->body != NULL && ex->body_len > 0) {
        static const char *const fields[] = {"amount_cents", NULL};
        body = fuzz_body_of(ex);
        if (!json_is_object(body) || !fuzz_only_keys(body, fields))
            verdict = FUZZ_INVALID;
        verdict = fuzz_both(verdict, fuzz_int_field(body, "amount_cents", false, 1, 100000000, amount));
    }
    char *key;
    fuzz_verdict_t key_verdict = reference_key(ex, &key);
    verdict = fuzz_both(verdict, key_verdict);
    if (call != NULL) {
        FUZZ_CHECK(verdict != FUZZ_INVALID, "a refund ran for a request the reference refuses: '%s' '%s'",
                   fuzz_show(ex->path, ex->path_len), fuzz_show(ex->body, ex->body_len));
        char *path_id = fuzz_cstring(id, id_len);
        const char *want[] = {path_id, amount[0] != '\0' ? amount : NULL, key, key != NULL ? call->args[3] : NULL,
                              call->args[4]};
        if (key_verdict == FUZZ_UNSURE) {
            want[2] = call->args[2];
            want[3] = call->args[3];
        }
        fuzz_check_params(call, want, 5);
        FUZZ_CHECK(want[2] == NULL || is_hex64(call->args[3]), "a keyed refund's fingerprint is not 64 hex digits");
        FUZZ_CHECK(fuzz_is_traceparent(call->args[4]), "refund_create's traceparent is not one");
        free(path_id);
    } else if (verdict == FUZZ_VALID && fuzz_exchange_is_clean(ex, "POST", ex->path, true)) {
        FUZZ_CHECK(false, "a refund refused (%d: %s) for a request the reference accepts: '%s'", ex->status,
                   fuzz_show(ex->response, ex->response_len), fuzz_show(ex->body, ex->body_len));
    }
    free(key);
    json_decref(body);
}

static void check_void(const fuzz_exchange_t *ex)
{
    static const char *const fields[] = {"order_id", NULL};
    const fuzz_backend_call_t *call = fuzz_exchange_call(ex, "void_create");
    json_t *body = fuzz_body_of(ex);
    const char *order_id = NULL;
    fuzz_verdict_t verdict = json_is_object(body) && fuzz_only_keys(body, fields)
                                 ? fuzz_string_field(body, "order_id", true, 1, 64, false, &order_id)
                                 : FUZZ_INVALID;
    if (order_id == NULL || !fuzz_valid_order_id(order_id))
        verdict = FUZZ_INVALID;
    if (call != NULL) {
        FUZZ_CHECK(verdict == FUZZ_VALID, "a void ran for a body the reference refuses: '%s'",
                   fuzz_show(ex->body, ex->body_len));
        fuzz_check_params(call, (const char *[]){order_id}, 1);
    } else if (verdict == FUZZ_VALID && fuzz_exchange_is_clean(ex, "POST", "/api/payments/void", true)) {
        FUZZ_CHECK(false, "a void refused (%d: %s) for the body '%s'", ex->status,
                   fuzz_show(ex->response, ex->response_len), fuzz_show(ex->body, ex->body_len));
    }
    json_decref(body);
}

static void check_reads(const fuzz_exchange_t *ex)
{
    const fuzz_backend_call_t *get = fuzz_exchange_call(ex, "payment_get");
    size_t id_len = 0;
    const char *id = fuzz_segment_after(ex, "/api/payments/", "", &id_len);
    bool valid = id != NULL && fuzz_valid_uuid(id, id_len);
    if (get != NULL)
        FUZZ_CHECK(valid && get->arg_count == 1 && get->arg_lens[0] == id_len && memcmp(get->args[0], id, id_len) == 0,
                   "payment_get ran with '%s' for the path '%s'",
                   get->args[0] ? fuzz_show(get->args[0], get->arg_lens[0]) : "NULL",
                   fuzz_show(ex->path, ex->path_len));
    else if (valid && fuzz_exchange_is_clean(ex, "GET", ex->path, false))
        FUZZ_CHECK(false, "a read refused (%d) for the id '%s'", ex->status, fuzz_show(id, id_len));

    const fuzz_backend_call_t *list = fuzz_exchange_call(ex, "payment_list");
    if (list != NULL)
        FUZZ_CHECK(list->arg_count == 1 && list->args[0] != NULL && strlen(list->args[0]) == list->arg_lens[0] &&
                       fuzz_valid_order_id(list->args[0]),
                   "payment_list ran with the order id '%s'",
                   list->args[0] ? fuzz_show(list->args[0], list->arg_lens[0]) : "NULL");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_exchange_t ex;
    if (!fuzz_exchange_parse((const char *)data, size, &ex))
        return 0;
    ex.add_admin_token = true;
    fuzz_exchange_run(router, &ex);

    check_charge(&ex);
    check_refund(&ex);
    check_void(&ex);
    check_reads(&ex);
    fuzz_check_database_down_status(&ex);
    fuzz_exchange_clear(&ex);
    return 0;
}
