/*
 * Sanitizer canary: a deliberate signed overflow. ffi/run-c-tests.sh builds it with the
 * same flags as the tests and requires it to FAIL with an UndefinedBehaviorSanitizer
 * report, which proves UBSan is linked and halts on error.
 */
#include <limits.h>
#include <stdio.h>

int main(int argc, char **argv) {
    (void)argv;
    volatile int big = INT_MAX - 1 + argc; /* INT_MAX, unknown to the compiler */
    int sum = big + 1;
    printf("canary_ubsan: the overflow went unnoticed (%d)\n", sum);
    return 0;
}
