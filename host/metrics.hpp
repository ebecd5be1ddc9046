// Prometheus metrics: the registry behind GET /metrics, shared by the host and the plugins.
//
// A family has one name, one kind (counter, gauge, histogram) and fixed label names; each
// combination of label values is a series, created on first lookup and kept until the process
// exits, so a caller looks a series up once (a lock and a hash) and then updates it with one
// relaxed atomic operation, from any thread, with no lock: the design of the Prometheus client
// libraries (client_golang's "children"). A histogram keeps one counter per bucket (cumulated
// when scraped) and its sum as the bits of a double. A series past max_series_per_family goes to
// a sink that is exported nowhere, so a label fed from request data cannot exhaust memory.
//
// expose() writes the text exposition format 0.0.4, which promtool accepts: names and label
// names are lowercase snake case, a counter's name ends in _total and nothing else's does, help
// text is required. Sampled families are the host's own: values computed at scrape time (open
// connections, queue depth), not through the ABI.
//
// aq_metric and aq_metric_series, the ABI's opaque types, are completed here: a family and a
// series are what a plugin holds.
#pragma once

#include "aqueduct/abi.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct aq_metric {};
struct aq_metric_series {};

namespace aqd::metrics {

enum class kind { counter, gauge, histogram };

// A definition the registry refuses: `what()` says which rule it breaks.
struct metric_error : std::invalid_argument {
    enum reason_t { invalid, exists } reason;
    metric_error(reason_t r, const std::string& what) : std::invalid_argument(what), reason(r) {}
};

class series : public aq_metric_series {
public:
    explicit series(kind k) noexcept : kind_(k) {}
    // Families own their series as unique_ptr<series>: a histogram's bucket array is freed only
    // through this (LeakSanitizer found it missing).
    virtual ~series() = default;
    series(const series&) = delete;
    series& operator=(const series&) = delete;
    kind type() const noexcept { return kind_; }

private:
    const kind kind_;
};

class counter_series final : public series {
public:
    counter_series() noexcept : series(kind::counter) {}
    void add(std::uint64_t n) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

class gauge_series final : public series {
public:
    gauge_series() noexcept : series(kind::gauge) {}
    void set(std::int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
    void add(std::int64_t d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
    std::int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> value_{0};
};

class histogram_series final : public series {
public:
    explicit histogram_series(std::span<const double> bounds);
    void observe(double v) noexcept;

    struct snapshot {
        std::vector<std::uint64_t> cumulative;  // per bound, then +Inf (= the count)
        double sum = 0;
    };
    snapshot read() const;

private:
    std::span<const double> bounds_;  // the family's; outlives the series
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket (not cumulative), +Inf last
    std::atomic<std::uint64_t> sum_bits_{0};  // a double
};

// A value the host computes when /metrics is scraped.
using sampler = std::function<double()>;

class family : public aq_metric {
public:
    family(kind k, std::string name, std::string help, std::vector<std::string> labels, std::vector<double> buckets);
    // A family without labels whose one value is `fn()` when scraped.
    family(kind k, std::string name, std::string help, sampler fn);

    kind type() const noexcept { return kind_; }
    const std::string& name() const noexcept { return name_; }
    std::size_t label_count() const noexcept { return labels_.size(); }

    // The series for these label values (in the order of the label names), created at first
    // use. nullptr when the count differs or a value is not valid UTF-8 or over 256 bytes.
    // Takes the family's lock. Thread: any.
    series* at(std::span<const std::string_view> values);
    series* at(std::initializer_list<std::string_view> values) { return at(std::span(values.begin(), values.size())); }

    // Typed lookups for the host's own families (whose kind and labels it knows).
    counter_series& counter(std::initializer_list<std::string_view> values);
    gauge_series& gauge(std::initializer_list<std::string_view> values);
    histogram_series& histogram(std::initializer_list<std::string_view> values);

    void write(std::string& out) const;

private:
    std::unique_ptr<series> make_series() const;

    const kind kind_;
    const std::string name_, help_;
    const std::vector<std::string> labels_;
    const std::vector<double> buckets_;
    const sampler sample_;

    mutable std::mutex mutex_;
    // Keyed by the label values joined with 0xff, a byte valid UTF-8 never holds.
    std::unordered_map<std::string, std::unique_ptr<series>> series_;
    std::unique_ptr<series> overflow_;  // past max_series_per_family: counted nowhere
};

class registry {
public:
    static constexpr std::size_t max_series_per_family = 10000;
    static constexpr std::size_t max_labels = 8;
    static constexpr std::size_t max_buckets = 64;
    static constexpr std::size_t max_name_bytes = 128;

    // Throws metric_error. Thread: any (the host at startup, plugins during init).
    family& add(kind k, std::string_view name, std::string_view help, std::vector<std::string> labels = {},
                std::vector<double> buckets = {});
    // A counter or gauge without labels whose value is `fn()` at scrape time.
    void add_sampled(kind k, std::string_view name, std::string_view help, sampler fn);

    // The text exposition format 0.0.4. Thread: any.
    std::string expose() const;

    // The Content-Type of expose()'s text.
    static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

private:
    // Checks the name and help against the rules; throws metric_error. Under mutex_.
    void check_new(kind k, std::string_view name, std::string_view help) const;

    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<family>> families_;  // in registration order: the host's first
};

// Default buckets for request and job durations, in seconds.
std::vector<double> duration_buckets();

}  // namespace aqd::metrics
