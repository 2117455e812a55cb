// Metric primitives and the Prometheus text exposition format (0.0.4).
//
// Kiln keeps its own small module instead of prometheus-cpp. Debian ships
// prometheus-cpp only as shared libraries built against the shared
// libstdc++, and Kiln links libstdc++ statically so that every `kiln run`
// loads no C++ library (docs/architecture.md). Linked in, prometheus-cpp-core
// brings libprometheus-cpp-core, libstdc++ and libgcc_s back as load-time
// libraries: `kiln version` took 0.42-0.44 ms more CPU (0.68-0.76 against
// 1.10-1.18 ms) and 0.5-0.9 ms more time (perf stat -r 500, three
// alternating rounds), `kiln run -- /bin/true` 0.8-1.3 ms more CPU (-r 200,
// two rounds), where 0.2 ms was the most acceptable; and Kiln's static
// libstdc++ would pass std::string and std::map across to a second, shared
// one. Nothing Kiln exports
// needs more than what follows: atomic counters, gauges and fixed-bucket
// histograms, grouped in families whose label values are declared up front.
//
// Label values are never taken from a request: a family's series are
// declared by the code (an enum's names, the registered tools), and
// recording goes to a series already declared. That keeps the number of
// series bounded and no attacker-chosen text in the output.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace kiln::metrics {

// Monotonic; relaxed atomics: a scrape needs each value, not an order.
class Counter {
public:
    void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

class Gauge {
public:
    void inc() noexcept { value_.fetch_add(1, std::memory_order_relaxed); }
    void dec() noexcept { value_.fetch_sub(1, std::memory_order_relaxed); }
    void set(std::int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
    std::int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> value_{0};
};

// Holds a gauge up for its lifetime: an active session, run or stream.
class GaugeHold {
public:
    explicit GaugeHold(Gauge& g) noexcept : gauge_(&g) { gauge_->inc(); }
    ~GaugeHold() { gauge_->dec(); }
    GaugeHold(const GaugeHold&) = delete;
    GaugeHold& operator=(const GaugeHold&) = delete;

private:
    Gauge* gauge_;
};

// Observations in fixed buckets (upper bounds, increasing; +Inf implied).
class Histogram {
public:
    explicit Histogram(std::span<const double> upper_bounds);
    void observe(double value) noexcept;

    struct Snapshot {
        std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf
        double sum = 0;
    };
    Snapshot snapshot() const;
    std::span<const double> bounds() const { return bounds_; }
    std::uint64_t count() const;

private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // not cumulative; the last is +Inf
    std::atomic<double> sum_{0};
};

enum class Type { Counter, Gauge, Histogram };

class FamilyBase {
public:
    virtual ~FamilyBase() = default;
    // Appends # HELP, # TYPE and one line per sample.
    virtual void render(std::string& out) const = 0;
};

// One metric name with its series, one per declared tuple of label values.
// Declaring checks names (a mistake in Kiln's code: std::logic_error);
// series live as long as the family and never move.
template <class M>
class Family final : public FamilyBase {
public:
    Family(std::string name, std::string help, std::vector<std::string> label_names,
           std::vector<double> bounds = {});
    // The series of these label values, made the first time. The values
    // come from Kiln's own closed sets, never from a request.
    M& declare(const std::vector<std::string>& label_values);
    void render(std::string& out) const override;

private:
    struct Series {
        std::vector<std::string> values;
        M metric;
        Series(std::vector<std::string> v, std::span<const double> bounds);
    };
    std::string name_, help_;
    std::vector<std::string> label_names_;
    std::vector<double> bounds_;
    mutable std::mutex mutex_;  // guards the list; the metrics are atomic
    std::deque<Series> series_;
};

class Registry {
public:
    // Families render in the order they were added.
    template <class M>
    Family<M>& add(std::string name, std::string help, std::vector<std::string> label_names = {},
                   std::vector<double> bounds = {}) {
        auto family = std::make_unique<Family<M>>(std::move(name), std::move(help), std::move(label_names),
                                                  std::move(bounds));
        Family<M>& ref = *family;
        std::lock_guard lock(mutex_);
        families_.push_back(std::move(family));
        return ref;
    }
    // The whole text exposition (Content-Type: text/plain; version=0.0.4).
    std::string render() const;

private:
    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<FamilyBase>> families_;
};

inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

// Exposition helpers, public for the tests: a label value with \, " and
// newline escaped; a sample value as Prometheus writes it (+Inf, NaN).
std::string escape_label_value(const std::string& value);
std::string format_value(double value);

}  // namespace kiln::metrics
