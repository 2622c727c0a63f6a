/*
 * Sanitizer canary: a deliberate heap overflow. ffi/run-c-tests.sh builds it with the
 * same flags as the tests and requires it to FAIL with an AddressSanitizer report, which
 * proves the sanitizer is linked and active in this toolchain (not merely requested).
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    (void)argv;
    volatile int index = 7 + argc; /* 8: one past the end, unknown to the compiler */
    volatile char *buffer = malloc(8); /* volatile: the store below is not optimised away */
    if (!buffer) return 2;
    buffer[index] = 'x';
    printf("canary_asan: the overflow went unnoticed\n");
    free((char *)buffer);
    return 0;
}
