/* processor.c - a simulated card processor, on the loop.
 *
 * A real processor is a remote party that takes a while to answer and
 * sometimes never does. This one answers after PAYMENT_PROCESSOR_LATENCY_MS
 * plus or minus a uniform PAYMENT_PROCESSOR_JITTER_MS, on a loop timer (the
 * loop serves other requests meanwhile); the service waits for it at most
 * PAYMENT_PROCESSOR_TIMEOUT_MS, after which the charge has failed.
 *
 * What it answers depends on the card. Test cards (any other number that
 * passes the Luhn check is approved, and so is every wallet payment):
 *
 *   4242424242424242   approved
 *   4000000000009995   declined: insufficient_funds
 *   4000000000000119   never answers: processor_timeout after the timeout
 *   4000000000005126   declined above 10000 cents ($100.00): amount_limit_exceeded
 *
 * The fault payment.failure_rate (0-1) declines that share of the charges
 * it would otherwise approve, as card_declined.
 */
#include <string.h>

#include "log.h"
#include "payment.h"
#include "random.h"

#define CARD_APPROVED           "4242424242424242"
#define CARD_INSUFFICIENT_FUNDS "4000000000009995"
#define CARD_NEVER_ANSWERS      "4000000000000119"
#define CARD_AMOUNT_LIMIT       "4000000000005126"
#define AMOUNT_LIMIT_CENTS      10000

/* One charge waiting for its answer. */
typedef struct processor_call {
    context_t *c;
    loop_timer_t timer;
    processor_result_t result;
    uint64_t started_ns;
    processor_done_fn done;
    void *data;
} processor_call_t;

static const char *const verdict_names[] = {"approved", "declined", "timeout"};

/* What the processor will say about this card and amount. */
static processor_result_t decide(const context_t *c, const char *card, long long amount_cents)
{
    if (card != NULL && strcmp(card, CARD_NEVER_ANSWERS) == 0)
        return (processor_result_t){PROCESSOR_TIMEOUT, "processor_timeout"};
    if (card != NULL && strcmp(card, CARD_INSUFFICIENT_FUNDS) == 0)
        return (processor_result_t){PROCESSOR_DECLINED, "insufficient_funds"};
    if (card != NULL && strcmp(card, CARD_AMOUNT_LIMIT) == 0 && amount_cents > AMOUNT_LIMIT_CENTS)
        return (processor_result_t){PROCESSOR_DECLINED, "amount_limit_exceeded"};
    double failure_rate = context_fault(c, "failure_rate");
    if (failure_rate > 0 && random_unit() < failure_rate)
        return (processor_result_t){PROCESSOR_DECLINED, "card_declined"};
    return (processor_result_t){PROCESSOR_APPROVED, NULL};
}

/* The mean latency plus a uniform jitter, never below zero. */
static uint64_t latency_ms(void)
{
    double jitter = ((random_unit() * 2) - 1) * (double)payment_config.processor_jitter_ms;
    double latency = (double)payment_config.processor_latency_ms + jitter;
    return latency > 0 ? (uint64_t)latency : 0;
}

static void on_answer(loop_timer_t *timer)
{
    processor_call_t *call = timer->data;
    double seconds = (double)(loop_now_ns() - call->started_ns) / 1e9;
    payment_observe_processor(verdict_names[call->result.verdict], seconds);
    if (call->result.verdict == PROCESSOR_TIMEOUT)
        context_warn(call->c, "payment processor timed out",
                     LOG_INT("timeout_ms", payment_config.processor_timeout_ms));
    call->done(call->data, &call->result);
    context_release(call->c);
}

void processor_charge(context_t *c, const char *card, long long amount_cents, processor_done_fn done, void *data)
{
    processor_call_t *call = context_alloc(c, sizeof(*call));
    call->c = context_hold(c);
    call->result = decide(c, card, amount_cents);
    call->started_ns = loop_now_ns();
    call->done = done;
    call->data = data;
    uint64_t delay = latency_ms();
    if (call->result.verdict == PROCESSOR_TIMEOUT || delay >= payment_config.processor_timeout_ms) {
        /* no answer in time: what the service sees is the timeout */
        call->result = (processor_result_t){PROCESSOR_TIMEOUT, "processor_timeout"};
        delay = payment_config.processor_timeout_ms;
    }
    loop_timer_start(&call->timer, delay, on_answer, call);
}
