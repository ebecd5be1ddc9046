#include "metrics.hpp"

#include "log.hpp"
#include "utf8.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace aqd::metrics {

namespace {

constexpr std::size_t max_label_value_bytes = 256;
constexpr char key_separator = '\xff';

bool snake_case(std::string_view s) {
    if (s.empty() || (s.front() >= '0' && s.front() <= '9')) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

bool ends_with(std::string_view s, std::string_view suffix) { return s.size() >= suffix.size() && s.ends_with(suffix); }

const char* type_name(kind k) {
    switch (k) {
    case kind::counter: return "counter";
    case kind::gauge: return "gauge";
    case kind::histogram: return "histogram";
    }
    return "untyped";
}

// A float as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it, which is what client_golang
// (and the Python client, on purpose) put in `le` labels and values: the shortest digits that
// read back, in exponent form when the exponent is below -4 or at least 6 ("1e+06",
// "1.048576e+06", "0.005"). Equal bucket bounds then give equal `le` labels across exporters.
void append_number(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
        return;
    }
    if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
        return;
    }
    char buf[40];
    const auto sci = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    const std::string_view text(buf, static_cast<std::size_t>(sci.ptr - buf));
    // The exponent from the view itself: buf holds no terminating NUL, so atoi would read on into
    // whatever an earlier call left there (a flaky "1.23456e+05" for 123456).
    std::string_view digits = text.substr(text.find('e') + 1);
    if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
    int exponent = 0;
    std::from_chars(digits.data(), digits.data() + digits.size(), exponent);
    if (exponent < -4 || exponent >= 6) {
        out += text;
        return;
    }
    const auto fixed = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    out.append(buf, fixed.ptr);
}

void append_integer(std::string& out, auto v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// HELP text escapes backslash and line feed; label values also the double quote.
void append_escaped(std::string& out, std::string_view text, bool quote) {
    for (const char c : text) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (quote && c == '"') out += "\\\"";
        else out += c;
    }
}

// {a="x",b="y"} with an extra label (a histogram's le) when `extra_name` is set.
void append_labels(std::string& out, const std::vector<std::string>& names, const std::vector<std::string_view>& values,
                   std::string_view extra_name = {}, std::string_view extra_value = {}) {
    if (names.empty() && extra_name.empty()) return;
    out += '{';
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i) out += ',';
        out += names[i];
        out += "=\"";
        append_escaped(out, values[i], true);
        out += '"';
    }
    if (!extra_name.empty()) {
        if (!names.empty()) out += ',';
        out += extra_name;
        out += "=\"";
        out += extra_value;
        out += '"';
    }
    out += '}';
}

std::vector<std::string_view> split_key(std::string_view key, std::size_t n) {
    std::vector<std::string_view> out;
    out.reserve(n);
    if (n == 0) return out;
    for (;;) {
        const auto at = key.find(key_separator);
        out.push_back(key.substr(0, at));
        if (at == std::string_view::npos) break;
        key.remove_prefix(at + 1);
    }
    return out;
}

}  // namespace

std::vector<double> duration_buckets() {
    return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
}

// ---- series ------------------------------------------------------------------------------------

histogram_series::histogram_series(std::span<const double> bounds)
    : series(kind::histogram), bounds_(bounds), counts_(new std::atomic<std::uint64_t>[bounds.size() + 1]) {
    for (std::size_t i = 0; i <= bounds.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void histogram_series::observe(double v) noexcept {
    if (std::isnan(v)) return;
    // The first bound >= v: Prometheus buckets are "less than or equal".
    const auto at = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    counts_[at].fetch_add(1, std::memory_order_relaxed);
    std::uint64_t old = sum_bits_.load(std::memory_order_relaxed);
    while (!sum_bits_.compare_exchange_weak(old, std::bit_cast<std::uint64_t>(std::bit_cast<double>(old) + v),
                                            std::memory_order_relaxed)) {
    }
}

histogram_series::snapshot histogram_series::read() const {
    snapshot s;
    s.cumulative.resize(bounds_.size() + 1);
    std::uint64_t running = 0;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
        running += counts_[i].load(std::memory_order_relaxed);
        s.cumulative[i] = running;
    }
    s.sum = std::bit_cast<double>(sum_bits_.load(std::memory_order_relaxed));
    return s;
}

// ---- family ------------------------------------------------------------------------------------

family::family(kind k, std::string name, std::string help, std::vector<std::string> labels, std::vector<double> buckets)
    : kind_(k), name_(std::move(name)), help_(std::move(help)), labels_(std::move(labels)), buckets_(std::move(buckets)) {
    // A family without labels has its one series from the start, so it is exported as 0.
    if (labels_.empty()) series_.emplace(std::string(), make_series());
}

family::family(kind k, std::string name, std::string help, sampler fn)
    : kind_(k), name_(std::move(name)), help_(std::move(help)), sample_(std::move(fn)) {}

std::unique_ptr<series> family::make_series() const {
    switch (kind_) {
    case kind::counter: return std::make_unique<counter_series>();
    case kind::gauge: return std::make_unique<gauge_series>();
    case kind::histogram: return std::make_unique<histogram_series>(buckets_);
    }
    return nullptr;
}

series* family::at(std::span<const std::string_view> values) {
    if (sample_ || values.size() != labels_.size()) return nullptr;
    // A thread's key buffer keeps its capacity: a lookup of an existing series allocates nothing.
    thread_local std::string key;
    key.clear();
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (values[i].size() > max_label_value_bytes || !valid_utf8(values[i])) return nullptr;
        if (i) key += key_separator;
        key += values[i];
    }
    std::lock_guard lock(mutex_);
    if (auto it = series_.find(key); it != series_.end()) return it->second.get();
    if (series_.size() >= registry::max_series_per_family) {
        if (!overflow_) {
            overflow_ = make_series();
            log::warn("metrics", name_ + " has " + std::to_string(registry::max_series_per_family) +
                                     " series; further label values are counted nowhere");
        }
        return overflow_.get();
    }
    return series_.emplace(key, make_series()).first->second.get();
}

counter_series& family::counter(std::initializer_list<std::string_view> values) {
    series* s = kind_ == kind::counter ? at(values) : nullptr;
    if (!s) throw std::logic_error("metric " + name_ + ": not a counter with these labels");
    return static_cast<counter_series&>(*s);
}

gauge_series& family::gauge(std::initializer_list<std::string_view> values) {
    series* s = kind_ == kind::gauge ? at(values) : nullptr;
    if (!s) throw std::logic_error("metric " + name_ + ": not a gauge with these labels");
    return static_cast<gauge_series&>(*s);
}

histogram_series& family::histogram(std::initializer_list<std::string_view> values) {
    series* s = kind_ == kind::histogram ? at(values) : nullptr;
    if (!s) throw std::logic_error("metric " + name_ + ": not a histogram with these labels");
    return static_cast<histogram_series&>(*s);
}

void family::write(std::string& out) const {
    out += "# HELP ";
    out += name_;
    out += ' ';
    append_escaped(out, help_, false);
    out += "\n# TYPE ";
    out += name_;
    out += ' ';
    out += type_name(kind_);
    out += '\n';
    if (sample_) {
        out += name_;
        out += ' ';
        append_number(out, sample_());
        out += '\n';
        return;
    }

    // Series in the order of their label values, so that two scrapes line up.
    std::vector<std::pair<std::string_view, const series*>> sorted;
    std::lock_guard lock(mutex_);
    sorted.reserve(series_.size());
    for (const auto& [key, s] : series_) sorted.emplace_back(key, s.get());
    std::sort(sorted.begin(), sorted.end());
    for (const auto& [key, s] : sorted) {
        const std::vector<std::string_view> values = split_key(key, labels_.size());
        switch (kind_) {
        case kind::counter:
        case kind::gauge:
            out += name_;
            append_labels(out, labels_, values);
            out += ' ';
            if (kind_ == kind::counter)
                append_integer(out, static_cast<const counter_series*>(s)->value());
            else
                append_integer(out, static_cast<const gauge_series*>(s)->value());
            out += '\n';
            break;
        case kind::histogram: {
            const auto snap = static_cast<const histogram_series*>(s)->read();
            for (std::size_t i = 0; i <= buckets_.size(); ++i) {
                std::string le;
                if (i < buckets_.size())
                    append_number(le, buckets_[i]);
                else
                    le = "+Inf";
                out += name_;
                out += "_bucket";
                append_labels(out, labels_, values, "le", le);
                out += ' ';
                append_integer(out, snap.cumulative[i]);
                out += '\n';
            }
            out += name_;
            out += "_sum";
            append_labels(out, labels_, values);
            out += ' ';
            append_number(out, snap.sum);
            out += '\n';
            out += name_;
            out += "_count";
            append_labels(out, labels_, values);
            out += ' ';
            append_integer(out, snap.cumulative.back());
            out += '\n';
            break;
        }
        }
    }
}

// ---- registry ----------------------------------------------------------------------------------

void registry::check_new(kind k, std::string_view name, std::string_view help) const {
    const std::string n(name);
    const auto invalid = [&](const std::string& why) { return metric_error(metric_error::invalid, "metric " + n + ": " + why); };
    if (name.size() > max_name_bytes || !snake_case(name))
        throw invalid("the name must be lowercase snake case ([a-z_][a-z0-9_]*, at most " +
                      std::to_string(max_name_bytes) + " bytes)");
    if (k == kind::counter && !ends_with(name, "_total")) throw invalid("a counter's name ends in _total");
    if (k != kind::counter && ends_with(name, "_total")) throw invalid("only a counter's name ends in _total");
    for (std::string_view reserved : {"_bucket", "_count", "_sum"})
        if (ends_with(name, reserved)) throw invalid("a name may not end in " + std::string(reserved) + " (histograms use it)");
    if (help.empty() || !valid_utf8(help)) throw invalid("help text is required (valid UTF-8)");
    for (const auto& f : families_)
        if (f->name() == name) throw metric_error(metric_error::exists, "metric " + n + " is already registered");
}

family& registry::add(kind k, std::string_view name, std::string_view help, std::vector<std::string> labels,
                      std::vector<double> buckets) {
    std::lock_guard lock(mutex_);
    check_new(k, name, help);
    const auto invalid = [&](const std::string& why) {
        return metric_error(metric_error::invalid, "metric " + std::string(name) + ": " + why);
    };
    if (labels.size() > max_labels) throw invalid("at most " + std::to_string(max_labels) + " labels");
    for (std::size_t i = 0; i < labels.size(); ++i) {
        const std::string& l = labels[i];
        if (l.size() > max_name_bytes || !snake_case(l) || l.starts_with("__"))
            throw invalid("label \"" + l + "\": lowercase snake case, not starting with __");
        if (k == kind::histogram && l == "le") throw invalid("a histogram may not have a label named le");
        if (std::find(labels.begin(), labels.begin() + static_cast<std::ptrdiff_t>(i), l) !=
            labels.begin() + static_cast<std::ptrdiff_t>(i))
            throw invalid("label \"" + l + "\" twice");
    }
    if (k == kind::histogram) {
        if (!buckets.empty() && std::isinf(buckets.back()) && buckets.back() > 0) buckets.pop_back();  // implied
        if (buckets.empty() || buckets.size() > max_buckets)
            throw invalid("a histogram needs 1 to " + std::to_string(max_buckets) + " bucket bounds");
        for (std::size_t i = 0; i < buckets.size(); ++i) {
            if (!std::isfinite(buckets[i])) throw invalid("bucket bounds must be finite");
            if (i && !(buckets[i] > buckets[i - 1])) throw invalid("bucket bounds must increase strictly");
        }
    } else if (!buckets.empty()) {
        throw invalid("only a histogram has buckets");
    }
    families_.push_back(std::make_unique<family>(k, std::string(name), std::string(help), std::move(labels), std::move(buckets)));
    return *families_.back();
}

void registry::add_sampled(kind k, std::string_view name, std::string_view help, sampler fn) {
    if (k == kind::histogram) throw std::logic_error("a sampled metric is a counter or a gauge");
    std::lock_guard lock(mutex_);
    check_new(k, name, help);
    families_.push_back(std::make_unique<family>(k, std::string(name), std::string(help), std::move(fn)));
}

std::string registry::expose() const {
    std::string out;
    std::lock_guard lock(mutex_);
    for (const auto& f : families_) f->write(out);
    return out;
}

}  // namespace aqd::metrics
