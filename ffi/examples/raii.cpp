// raii: ratecore from C++17 with RAII wrappers.
//
// Handles live in std::unique_ptr with deleters calling the matching _free function, so
// they are released on every path, exceptions included; statuses other than OK become
// ratecore::error exceptions carrying the status and its message. Shown: a composite
// limiter, a keyed table shared by four std::threads (exact admissions), a table in a
// caller-provided region with a second handle attached to it, and a rejected quota.
//
// Build: make -C ffi/examples (needs the static library: cargo build --release -p ratecore-ffi).
#include "ratecore.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace ratecore {

constexpr std::uint64_t second = 1'000'000'000;

// A failed call: the status and ratecore's message for it.
class error : public std::runtime_error {
  public:
    explicit error(ratecore_status status, const char *call)
        : std::runtime_error(std::string(call) + ": " + ratecore_status_message(status)),
          status_(status) {}
    ratecore_status status() const noexcept { return status_; }

  private:
    ratecore_status status_;
};

inline void check(ratecore_status status, const char *call) {
    if (status != RATECORE_STATUS_OK) throw error(status, call);
}

struct limiter_deleter {
    void operator()(ratecore_limiter *limiter) const noexcept { ratecore_limiter_free(limiter); }
};
struct table_deleter {
    void operator()(ratecore_table *table) const noexcept { ratecore_table_free(table); }
};
using limiter_ptr = std::unique_ptr<ratecore_limiter, limiter_deleter>;
using table_ptr = std::unique_ptr<ratecore_table, table_deleter>;

inline ratecore_quota quota(std::uint32_t algorithm, std::uint64_t limit, std::uint64_t period_ns,
                            std::uint32_t sub_windows = 0) {
    ratecore_quota q{};
    q.algorithm = algorithm;
    q.limit = limit;
    q.period_ns = period_ns;
    q.sub_windows = sub_windows;
    return q;
}

// A single-key limiter: one quota, or several that must all admit. Thread-safe for
// check/peek; movable, not copyable (unique_ptr).
class limiter {
  public:
    limiter(std::initializer_list<ratecore_quota> quotas) {
        std::vector<ratecore_quota> list(quotas);
        ratecore_limiter *raw = nullptr;
        check(ratecore_limiter_new(list.data(), list.size(), &raw), "ratecore_limiter_new");
        handle_.reset(raw);
    }
    ratecore_decision check_request(std::uint64_t now_ns, std::uint64_t cost = 1) const {
        ratecore_decision d{};
        check(ratecore_limiter_check(handle_.get(), now_ns, cost, &d), "ratecore_limiter_check");
        return d;
    }
    ratecore_decision peek(std::uint64_t now_ns, std::uint64_t cost = 1) const {
        ratecore_decision d{};
        check(ratecore_limiter_peek(handle_.get(), now_ns, cost, &d), "ratecore_limiter_peek");
        return d;
    }

  private:
    limiter_ptr handle_;
};

// Memory for a region: RATECORE_REGION_ALIGN-aligned, freed by its unique_ptr. (In a real
// multi-process server this would be an mmap(MAP_SHARED) mapping.)
struct aligned_deleter {
    void operator()(unsigned char *p) const noexcept {
        ::operator delete[](p, std::align_val_t{RATECORE_REGION_ALIGN});
    }
};
using region_ptr = std::unique_ptr<unsigned char[], aligned_deleter>;

// A keyed table, in memory it owns or in a region the caller keeps alive longer.
class table {
  public:
    static table owned(std::initializer_list<ratecore_quota> quotas, std::uint64_t capacity,
                       std::uint32_t policy = RATECORE_FULL_POLICY_EVICT_CLOSEST_TO_REST) {
        std::vector<ratecore_quota> list(quotas);
        ratecore_table *raw = nullptr;
        check(ratecore_table_new(list.data(), list.size(), capacity, policy, &raw), "ratecore_table_new");
        return table(raw);
    }
    static std::size_t region_size(std::initializer_list<ratecore_quota> quotas, std::uint64_t capacity,
                                   std::uint32_t policy = RATECORE_FULL_POLICY_EVICT_CLOSEST_TO_REST) {
        std::vector<ratecore_quota> list(quotas);
        std::size_t size = 0;
        check(ratecore_table_region_size(list.data(), list.size(), capacity, policy, &size),
              "ratecore_table_region_size");
        return size;
    }
    // The region must outlive the table (and every table attached to it).
    static table init_region(unsigned char *region, std::size_t len,
                             std::initializer_list<ratecore_quota> quotas, std::uint64_t capacity,
                             std::uint32_t policy = RATECORE_FULL_POLICY_EVICT_CLOSEST_TO_REST) {
        std::vector<ratecore_quota> list(quotas);
        ratecore_table *raw = nullptr;
        check(ratecore_table_init_region(region, len, list.data(), list.size(), capacity, policy, &raw),
              "ratecore_table_init_region");
        return table(raw);
    }
    static table attach_region(unsigned char *region, std::size_t len) {
        ratecore_table *raw = nullptr;
        check(ratecore_table_attach_region(region, len, &raw), "ratecore_table_attach_region");
        return table(raw);
    }

    ratecore_decision check_request(std::string_view key, std::uint64_t now_ns,
                                    std::uint64_t cost = 1) const {
        ratecore_decision d{};
        check(ratecore_table_check(handle_.get(), reinterpret_cast<const std::uint8_t *>(key.data()),
                                   key.size(), now_ns, cost, &d),
              "ratecore_table_check");
        return d;
    }
    ratecore_table_stats stats() const {
        ratecore_table_stats s{};
        check(ratecore_table_get_stats(handle_.get(), &s), "ratecore_table_get_stats");
        return s;
    }

  private:
    explicit table(ratecore_table *raw) : handle_(raw) {}
    table_ptr handle_;
};

} // namespace ratecore

static int failures = 0;
static void expect(bool ok, const char *what) {
    if (!ok) {
        std::fprintf(stderr, "raii: FAILED: %s\n", what);
        failures++;
    }
}

int main() {
    using namespace ratecore;
    std::printf("ratecore %s from C++\n", ratecore_version());

    // A composite: 3 per second AND 5 per minute.
    {
        limiter api{quota(RATECORE_ALGORITHM_GCRA, 3, second),
                    quota(RATECORE_ALGORITHM_SLIDING_WINDOW_STRICT, 5, 60 * second, 6)};
        int admitted = 0;
        for (int i = 0; i < 10; i++) admitted += api.check_request(second).allowed;
        expect(admitted == 3, "3 per second");
        for (int i = 0; i < 10; i++) admitted += api.check_request(2 * second).allowed;
        expect(admitted == 5, "5 per minute");
        ratecore_decision d = api.peek(2 * second);
        std::printf("composite: %d admitted, next retry in %.3f s\n", admitted,
                    static_cast<double>(d.retry_after_ns) / second);
    } // freed here

    // One table, four threads, exact per-key admissions.
    {
        table per_user = table::owned({quota(RATECORE_ALGORITHM_FIXED_WINDOW, 100, 3600 * second)}, 1000);
        std::atomic<int> admitted{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; t++) {
            threads.emplace_back([&] {
                for (int i = 0; i < 100; i++) admitted += per_user.check_request("user:7", second).allowed;
            });
        }
        for (auto &thread : threads) thread.join();
        expect(admitted == 100, "100 per hour across 4 threads");
        std::printf("table: 4 threads, %d of 400 admitted, %llu keys\n", admitted.load(),
                    static_cast<unsigned long long>(per_user.stats().new_keys));
    }

    // A table in a region, and a second handle attached to the same region.
    {
        auto quotas = {quota(RATECORE_ALGORITHM_GCRA, 2, second)};
        std::size_t size = table::region_size(quotas, 64);
        region_ptr region(new (std::align_val_t{RATECORE_REGION_ALIGN}) unsigned char[size]);
        table first = table::init_region(region.get(), size, quotas, 64);
        table second_handle = table::attach_region(region.get(), size);
        bool a = first.check_request("k", second).allowed;
        bool b = second_handle.check_request("k", second).allowed;
        bool c = first.check_request("k", second).allowed;
        expect(a && b && !c, "two handles share one region");
        std::printf("region: %zu bytes, two handles, 2 of 3 admitted\n", size);
    } // handles freed before the region (declaration order), as required

    // Errors become exceptions; nothing leaks on the way out.
    try {
        limiter broken{quota(RATECORE_ALGORITHM_GCRA, 0, second)};
        expect(false, "a zero limit is rejected");
    } catch (const error &e) {
        expect(e.status() == RATECORE_STATUS_ZERO_LIMIT, "ZERO_LIMIT");
        std::printf("rejected as expected: %s\n", e.what());
    }

    return failures == 0 ? 0 : 1;
}
