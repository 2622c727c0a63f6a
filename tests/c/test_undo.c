/*
 * Undoable table checks from C: a request checked against two tables (per IP, then per
 * account) where the second denies, and the first table's charge given back, for every
 * algorithm; states written; charges that are zero (denial, cost 0), undone twice, from
 * another table, altered, NULL, misaligned; a too-small states buffer.
 */
#include "test_util.h"

#include <stddef.h>
#include <stdint.h>

static ratecore_table *new_table(const ratecore_quota *quotas, size_t n) {
    ratecore_table *table = NULL;
    REQUIRE_OK(ratecore_table_new(quotas, n, 1024, RATECORE_FULL_POLICY_DENY, &table));
    CHECK(table != NULL);
    return table;
}

static int charge_is_zero(const ratecore_table_charge *charge) {
    for (size_t i = 0; i < RATECORE_TABLE_CHARGE_WORDS; i++) {
        if (charge->words[i] != 0) {
            return 0;
        }
    }
    return 1;
}

static uint64_t remaining(const ratecore_table *t, const char *key, uint64_t now) {
    ratecore_decision d;
    REQUIRE_OK(ratecore_table_peek(t, rc_bytes(key), strlen(key), now, 0, &d));
    return d.remaining;
}

/* Per IP: 5 per minute; per account: 2 per minute. The account's third request is
 * denied, and the IP's charge for it is given back: the IP keeps 5 - 2. */
static void test_second_table_denies_first_is_undone(ratecore_quota ip_quota,
                                                     ratecore_quota account_quota) {
    ratecore_table *per_ip = new_table(&ip_quota, 1);
    ratecore_table *per_account = new_table(&account_quota, 1);
    uint64_t now = 10 * RC_SECOND;
    for (int i = 0; i < 3; i++) {
        ratecore_decision ip, account;
        ratecore_table_charge charge;
        memset(&charge, 0xab, sizeof charge);
        REQUIRE_OK(ratecore_table_check_undoable(per_ip, rc_bytes("198.51.100.7"), 12, now, 1,
                                                 NULL, 0, &ip, &charge));
        CHECK(ip.allowed);
        CHECK(!charge_is_zero(&charge));
        REQUIRE_OK(ratecore_table_check(per_account, rc_bytes("acct-1"), 6, now, 1, &account));
        if (i < 2) {
            CHECK(account.allowed);
        } else {
            CHECK(!account.allowed);
            REQUIRE_OK(ratecore_table_undo(per_ip, &charge));
            CHECK(charge_is_zero(&charge));
            /* A second undo of the (now zero) charge gives back nothing more. */
            REQUIRE_OK(ratecore_table_undo(per_ip, &charge));
        }
    }
    CHECK_EQ_U64(remaining(per_ip, "198.51.100.7", now), 3);
    CHECK_EQ_U64(remaining(per_account, "acct-1", now), 0);
    ratecore_table_free(per_ip);
    ratecore_table_free(per_account);
}

static void test_states_zero_charges_and_errors(void) {
    ratecore_quota quotas[2] = {rc_quota(RATECORE_ALGORITHM_GCRA, 5, RC_SECOND),
                                rc_quota(RATECORE_ALGORITHM_FIXED_WINDOW, 20, RC_MINUTE)};
    ratecore_table *t = new_table(quotas, 2);
    ratecore_table *other = new_table(quotas, 2);
    ratecore_decision d, states[2];
    ratecore_table_charge charge;
    uint64_t now = RC_MINUTE;

    /* States, as check_each writes them. */
    REQUIRE_OK(ratecore_table_check_undoable(t, rc_bytes("k"), 1, now, 2, states, 2, &d,
                                             &charge));
    CHECK(d.allowed && d.remaining == 3);
    CHECK_EQ_U64(states[0].remaining, 3);
    CHECK_EQ_U64(states[1].remaining, 18);

    /* Another table refuses the charge, and so does this table once a word changes. */
    ratecore_table_charge copy = charge;
    CHECK_STATUS(ratecore_table_undo(other, &copy), RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK(memcmp(&copy, &charge, sizeof copy) == 0);
    for (size_t w = 0; w < RATECORE_TABLE_CHARGE_WORDS; w++) {
        copy = charge;
        copy.words[w] ^= 1;
        CHECK_STATUS(ratecore_table_undo(t, &copy), RATECORE_STATUS_INVALID_ARGUMENT);
    }
    CHECK_EQ_U64(remaining(t, "k", now), 3);
    /* The real one gives both quotas back. */
    REQUIRE_OK(ratecore_table_undo(t, &charge));
    REQUIRE_OK(ratecore_table_peek_each(t, rc_bytes("k"), 1, now, 0, states, 2, &d));
    CHECK_EQ_U64(states[0].remaining, 5);
    CHECK_EQ_U64(states[1].remaining, 20);

    /* Cost 0 and a denial consume nothing: the charge is zero, and undoing it is OK. */
    REQUIRE_OK(ratecore_table_check_undoable(t, rc_bytes("k"), 1, now, 0, NULL, 0, &d,
                                             &charge));
    CHECK(charge_is_zero(&charge));
    REQUIRE_OK(ratecore_table_check_undoable(t, rc_bytes("k"), 1, now, 5, NULL, 0, &d,
                                             &charge));
    CHECK(d.allowed);
    REQUIRE_OK(ratecore_table_check_undoable(t, rc_bytes("k"), 1, now, 1, NULL, 0, &d,
                                             &charge));
    CHECK(!d.allowed);
    CHECK(charge_is_zero(&charge));
    REQUIRE_OK(ratecore_table_undo(t, &charge));
    REQUIRE_OK(ratecore_table_undo(other, &charge));

    /* A cost no quota can take: the error, and nothing written. */
    memset(&charge, 0xab, sizeof charge);
    CHECK_STATUS(ratecore_table_check_undoable(t, rc_bytes("k"), 1, now, 6, NULL, 0, &d, &charge),
                 RATECORE_STATUS_COST_EXCEEDS_LIMIT);
    CHECK_EQ_U64(charge.words[0], UINT64_C(0xabababababababab));

    /* Bad arguments. */
    CHECK_STATUS(ratecore_table_check_undoable(t, rc_bytes("k"), 1, now, 1, states, 1, &d,
                                               &charge),
                 RATECORE_STATUS_BUFFER_TOO_SMALL);
    CHECK_STATUS(ratecore_table_check_undoable(t, rc_bytes("k"), 1, now, 1, NULL, 0, &d, NULL),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_check_undoable(NULL, rc_bytes("k"), 1, now, 1, NULL, 0, &d,
                                               &charge),
                 RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_undo(t, NULL), RATECORE_STATUS_NULL_POINTER);
    CHECK_STATUS(ratecore_table_undo(NULL, &charge), RATECORE_STATUS_NULL_POINTER);
    /* A misaligned charge pointer. */
    uint64_t buffer[RATECORE_TABLE_CHARGE_WORDS + 1];
    memset(buffer, 0, sizeof buffer);
    ratecore_table_charge *misaligned = (ratecore_table_charge *)(void *)((char *)buffer + 1);
    CHECK_STATUS(ratecore_table_undo(t, misaligned), RATECORE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(ratecore_table_check_undoable(t, rc_bytes("k"), 1, now, 1, NULL, 0, &d,
                                               misaligned),
                 RATECORE_STATUS_INVALID_ARGUMENT);

    ratecore_table_free(t);
    ratecore_table_free(other);
}

int main(void) {
    uint32_t algorithms[] = {RATECORE_ALGORITHM_GCRA, RATECORE_ALGORITHM_FIXED_WINDOW,
                             RATECORE_ALGORITHM_SLIDING_WINDOW};
    for (size_t a = 0; a < 3; a++) {
        test_second_table_denies_first_is_undone(rc_quota(algorithms[a], 5, RC_MINUTE),
                                                 rc_quota(algorithms[a], 2, RC_MINUTE));
    }
    test_second_table_denies_first_is_undone(rc_strict(5, RC_MINUTE, 60),
                                             rc_strict(2, RC_MINUTE, 60));
    test_states_zero_charges_and_errors();
    return rc_finish("test_undo");
}
