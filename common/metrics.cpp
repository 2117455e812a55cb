#include "common/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cctype>
#include <cmath>
#include <functional>
#include <stdexcept>

namespace kiln::metrics {
namespace {

bool valid_name(const std::string& name, bool colon_allowed) {
    auto first = [&](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || (colon_allowed && c == ':'); };
    auto rest = [&](char c) { return first(c) || std::isdigit(static_cast<unsigned char>(c)); };
    return !name.empty() && first(name.front()) && std::all_of(name.begin() + 1, name.end(), rest);
}

// HELP text escapes only \ and newline (the format's rule for it).
std::string escape_help(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

bool strictly_increasing(std::span<const double> bounds) {
    return std::adjacent_find(bounds.begin(), bounds.end(), std::greater_equal<>()) == bounds.end();
}

constexpr const char* type_name(Type t) {
    switch (t) {
        case Type::Counter: return "counter";
        case Type::Gauge: return "gauge";
        case Type::Histogram: return "histogram";
    }
    return "untyped";
}

template <class M> constexpr Type type_of();
template <> constexpr Type type_of<Counter>() { return Type::Counter; }
template <> constexpr Type type_of<Gauge>() { return Type::Gauge; }
template <> constexpr Type type_of<Histogram>() { return Type::Histogram; }

// {a="x",b="y"}, with an extra label (a histogram's le) when given.
std::string label_set(const std::vector<std::string>& names, const std::vector<std::string>& values,
                      const char* extra_name = nullptr, const std::string& extra_value = {}) {
    if (names.empty() && !extra_name) return {};
    std::string out = "{";
    for (std::size_t i = 0; i < names.size(); ++i)
        out += (i ? "," : "") + names[i] + "=\"" + escape_label_value(values[i]) + "\"";
    if (extra_name) out += std::string(names.empty() ? "" : ",") + extra_name + "=\"" + extra_value + "\"";
    return out + "}";
}

void render_sample(std::string& out, const std::string& name, const std::string& labels, const std::string& value) {
    out += name;
    out += labels;
    out += ' ';
    out += value;
    out += '\n';
}

void render_series(std::string& out, const std::string& name, const std::vector<std::string>& label_names,
                   const std::vector<std::string>& values, const Counter& c) {
    render_sample(out, name, label_set(label_names, values), std::to_string(c.value()));
}

void render_series(std::string& out, const std::string& name, const std::vector<std::string>& label_names,
                   const std::vector<std::string>& values, const Gauge& g) {
    render_sample(out, name, label_set(label_names, values), std::to_string(g.value()));
}

// _bucket lines are cumulative and _count equals the +Inf bucket, both from
// one snapshot, so a scrape racing an observation is still consistent.
void render_series(std::string& out, const std::string& name, const std::vector<std::string>& label_names,
                   const std::vector<std::string>& values, const Histogram& h) {
    Histogram::Snapshot s = h.snapshot();
    auto bounds = h.bounds();
    for (std::size_t i = 0; i < bounds.size(); ++i)
        render_sample(out, name + "_bucket", label_set(label_names, values, "le", format_value(bounds[i])),
                      std::to_string(s.cumulative[i]));
    render_sample(out, name + "_bucket", label_set(label_names, values, "le", "+Inf"), std::to_string(s.cumulative.back()));
    render_sample(out, name + "_sum", label_set(label_names, values), format_value(s.sum));
    render_sample(out, name + "_count", label_set(label_names, values), std::to_string(s.cumulative.back()));
}

}  // namespace

std::string escape_label_value(const std::string& value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string format_value(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    return ec == std::errc() ? std::string(buf, end) : "NaN";
}

Histogram::Histogram(std::span<const double> upper_bounds)
    : bounds_(upper_bounds.begin(), upper_bounds.end()),
      buckets_(new std::atomic<std::uint64_t>[upper_bounds.size() + 1]) {
    if (!strictly_increasing(bounds_)) throw std::logic_error("histogram bounds must increase strictly");
    for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double value) noexcept {
    std::size_t i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot s;
    std::uint64_t running = 0;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
        running += buckets_[i].load(std::memory_order_relaxed);
        s.cumulative.push_back(running);
    }
    s.sum = sum_.load(std::memory_order_relaxed);
    return s;
}

std::uint64_t Histogram::count() const { return snapshot().cumulative.back(); }

// Counter and Gauge series are default-constructed; a Histogram's needs its
// bounds, so each type gets the constructor it can use.
template <>
Family<Counter>::Series::Series(std::vector<std::string> v, std::span<const double>) : values(std::move(v)) {}
template <>
Family<Gauge>::Series::Series(std::vector<std::string> v, std::span<const double>) : values(std::move(v)) {}
template <>
Family<Histogram>::Series::Series(std::vector<std::string> v, std::span<const double> bounds)
    : values(std::move(v)), metric(bounds) {}

template <class M>
Family<M>::Family(std::string name, std::string help, std::vector<std::string> label_names, std::vector<double> bounds)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)), bounds_(std::move(bounds)) {
    if (!valid_name(name_, true)) throw std::logic_error("metric name '" + name_ + "' is not valid");
    for (const auto& l : label_names_)
        if (!valid_name(l, false) || l.rfind("__", 0) == 0 || (type_of<M>() == Type::Histogram && l == "le"))
            throw std::logic_error("metric " + name_ + ": label name '" + l + "' is not valid");
    if (type_of<M>() == Type::Histogram && (bounds_.empty() || !strictly_increasing(bounds_)))
        throw std::logic_error("histogram " + name_ + ": bucket bounds must be given and increase strictly");
}

template <class M>
M& Family<M>::declare(const std::vector<std::string>& label_values) {
    if (label_values.size() != label_names_.size())
        throw std::logic_error("metric " + name_ + ": " + std::to_string(label_values.size()) + " label values for " +
                               std::to_string(label_names_.size()) + " labels");
    std::lock_guard lock(mutex_);
    for (auto& s : series_)
        if (s.values == label_values) return s.metric;
    return series_.emplace_back(label_values, bounds_).metric;
}

template <class M>
void Family<M>::render(std::string& out) const {
    out += "# HELP " + name_ + " " + escape_help(help_) + "\n";
    out += "# TYPE " + name_ + " " + type_name(type_of<M>()) + "\n";
    std::lock_guard lock(mutex_);
    for (const auto& s : series_) render_series(out, name_, label_names_, s.values, s.metric);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

std::string Registry::render() const {
    std::string out;
    std::lock_guard lock(mutex_);
    for (const auto& f : families_) f->render(out);
    return out;
}

}  // namespace kiln::metrics
