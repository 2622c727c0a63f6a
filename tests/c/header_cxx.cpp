// The header compiles as C++ (g++ -std=c++17 -Wall -Wextra -Wpedantic -Werror), with
// C linkage for every function, and works: linked against the static library and run.
#include "ratecore.h"
#include "ratecore.h"

#include <cstdio>
#include <cstring>
#include <type_traits>

static_assert(sizeof(ratecore_quota) == 32, "ratecore_quota layout");
static_assert(sizeof(ratecore_decision) == 40, "ratecore_decision layout");
static_assert(std::is_same<std::underlying_type<ratecore_status>::type, uint32_t>::value,
              "ratecore_status is a uint32_t enum in C++");
static_assert(RATECORE_STATUS_OK == 0, "OK is 0");
static_assert(std::is_standard_layout<ratecore_quota>::value, "plain data");
static_assert(std::is_trivially_copyable<ratecore_decision>::value, "plain data");

int main() {
    ratecore_quota quota{};
    quota.limit = 2;
    quota.period_ns = 1000000000;
    quota.algorithm = RATECORE_ALGORITHM_GCRA;
    ratecore_limiter *limiter = nullptr;
    if (ratecore_limiter_new(&quota, 1, &limiter) != RATECORE_STATUS_OK) return 1;
    ratecore_decision decision{};
    int admitted = 0;
    for (int i = 0; i < 5; i++) {
        if (ratecore_limiter_check(limiter, 1000000000, 1, &decision) != RATECORE_STATUS_OK) return 1;
        admitted += decision.allowed;
    }
    ratecore_limiter_free(limiter);
    ratecore_status status = ratecore_limiter_new(nullptr, 1, &limiter);
    if (admitted != 2 || status != RATECORE_STATUS_NULL_POINTER) return 1;
    if (std::strcmp(ratecore_version(), RATECORE_VERSION) != 0) return 1;
    std::printf("header_cxx: C++ sees the C API (%s)\n", ratecore_status_message(status));
    return 0;
}
