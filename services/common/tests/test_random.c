/* Tests for random.c: values in range, no repeats, per-thread streams. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>
#include <pthread.h>

#include "random.h"

#define DRAWS 100000

static void test_unit_values_lie_in_zero_to_one(void **state)
{
    (void)state;
    int buckets[10] = {0};
    for (int i = 0; i < DRAWS; i++) {
        double x = random_unit();
        assert_true(x >= 0 && x < 1);
        buckets[(int)(x * 10)]++;
    }
    for (int i = 0; i < 10; i++) /* about DRAWS / 10 each; far looser than chance needs */
        assert_true(buckets[i] > DRAWS / 20 && buckets[i] < DRAWS / 5);
}

static int compare(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_64_bit_values_do_not_repeat_and_use_every_bit(void **state)
{
    (void)state;
    uint64_t *values = malloc(DRAWS * sizeof(*values));
    assert_non_null(values);
    uint64_t ones = 0, zeros = 0;
    for (int i = 0; i < DRAWS; i++) {
        values[i] = random_u64();
        ones |= values[i];
        zeros |= ~values[i];
    }
    assert_true(ones == UINT64_MAX && zeros == UINT64_MAX);
    qsort(values, DRAWS, sizeof(*values), compare);
    for (int i = 1; i < DRAWS; i++)
        assert_true(values[i] != values[i - 1]);
    free(values);
}

static void *draw(void *arg)
{
    *(uint64_t *)arg = random_u64();
    return NULL;
}

static void test_threads_have_their_own_streams(void **state)
{
    (void)state;
    uint64_t first[8];
    pthread_t threads[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, draw, &first[i]), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < 8; i++) /* each seeded apart: no two start alike */
        for (int j = i + 1; j < 8; j++)
            assert_true(first[i] != first[j]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unit_values_lie_in_zero_to_one),
        cmocka_unit_test(test_64_bit_values_do_not_repeat_and_use_every_bit),
        cmocka_unit_test(test_threads_have_their_own_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
