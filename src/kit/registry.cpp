// registry.cpp: families, get-or-create registration, rendering.
#include "mpg/kit/registry.hpp"

#include <mutex>
#include <stdexcept>
#include <string>

#include "kit/exposition.hpp"

namespace mpg::kit {

namespace {

using Guard = std::lock_guard<mpg::detail::Lock>;

const char* type_name(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

[[noreturn]] void invalid(std::string_view what, std::string_view name) {
  throw std::invalid_argument("kit::Registry: " + std::string(what) + ": " + std::string(name));
}

// scalar: the value of a one-line series.
std::uint64_t scalar(const Counter& c) { return c.value(); }
double scalar(const Gauge& g) { return g.value(); }
double scalar(const Sampled& s) { return s.fn(); }

// render_one: the line of a counter, gauge or sampled series; a histogram's lines below.
template <class T>
void render_one(std::string& out, const FamilyBase& f, const std::vector<std::string>& values,
                const T& series) {
  expo::append_series(out, f.name(), "", f.label_names(), values);
  expo::append_number(out, scalar(series));
  out += '\n';
}

void render_one(std::string& out, const FamilyBase& f, const std::vector<std::string>& values,
                const Histogram& h) {
  HistogramSnapshot snap = h.snapshot();
  std::string le;
  for (std::size_t b = 0; b < snap.cumulative.size(); b++) {
    le.clear();
    if (b < snap.bounds.size()) {
      expo::append_number(le, snap.bounds[b]);
    } else {
      le = "+Inf";
    }
    expo::append_series(out, f.name(), "_bucket", f.label_names(), values, "le", le);
    expo::append_number(out, snap.cumulative[b]);
    out += '\n';
  }
  expo::append_series(out, f.name(), "_sum", f.label_names(), values);
  expo::append_number(out, snap.sum);
  out += '\n';
  expo::append_series(out, f.name(), "_count", f.label_names(), values);
  expo::append_number(out, snap.count);
  out += '\n';
}

template <class T>
std::unique_ptr<T> make_series(const std::vector<double>& bounds) {
  if constexpr (std::is_same_v<T, Histogram>) {
    return std::make_unique<Histogram>(bounds);
  } else {
    return std::make_unique<T>();
  }
}

}  // namespace

FamilyBase::FamilyBase(std::string_view name, std::string_view help, MetricType type,
                       std::vector<std::string> label_names)
    : name_(name), help_(help), type_(type), label_names_(std::move(label_names)) {
  if (!expo::valid_metric_name(name_)) invalid("invalid metric name", name_);
  for (std::size_t i = 0; i < label_names_.size(); i++) {
    const std::string& l = label_names_[i];
    if (!expo::valid_label_name(l)) invalid("invalid label name", l);
    if (type_ == MetricType::kHistogram && l == "le") invalid("label le is reserved", name_);
    for (std::size_t j = 0; j < i; j++)
      if (label_names_[j] == l) invalid("label named twice", l);
  }
}

FamilyBase::~FamilyBase() = default;

void FamilyBase::render(std::string& out) const {
  out.append("# HELP ").append(name_).append(" ");
  expo::append_help_text(out, help_);
  out.append("\n# TYPE ").append(name_).append(" ").append(type_name(type_)).append("\n");
  render_series(out);
}

void FamilyBase::check_values(std::size_t n) const {
  if (n != label_names_.size()) invalid("wrong number of label values", name_);
}

template <class T>
Family<T>::Family(std::string_view name, std::string_view help, MetricType type,
                  std::vector<std::string> label_names, std::vector<double> bounds)
    : FamilyBase(name, help, type, std::move(label_names)), bounds_(std::move(bounds)) {
  if constexpr (std::is_same_v<T, Histogram>) Histogram check(bounds_);  // throws if invalid
}

template <class T>
T& Family<T>::with(std::initializer_list<std::string_view> values) {
  return with(std::vector<std::string>(values.begin(), values.end()));
}

template <class T>
T& Family<T>::with(const std::vector<std::string>& values) {
  check_values(values.size());
  Guard g(mu_);
  std::unique_ptr<T>& s = series_[values];
  if (!s) s = make_series<T>(bounds_);
  return *s;
}

template <class T>
void Family<T>::render_series(std::string& out) const {
  Guard g(mu_);
  for (const auto& [values, series] : series_) render_one(out, *this, values, *series);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;
template class Family<Sampled>;

Registry::Registry() = default;
Registry::~Registry() = default;

template <class F>
F& Registry::family(std::string_view name, std::string_view help, MetricType type,
                    std::vector<std::string> label_names, std::vector<double> bounds) {
  Guard g(mu_);
  for (const std::unique_ptr<FamilyBase>& f : families_) {
    if (f->name() != name) continue;
    auto* same = dynamic_cast<F*>(f.get());
    if (!same || f->type() != type || f->label_names() != label_names || same->bounds() != bounds)
      invalid("registered before with another type, labels or buckets", name);
    return *same;
  }
  auto f = std::make_unique<F>(name, help, type, std::move(label_names), std::move(bounds));
  F& ref = *f;
  families_.push_back(std::move(f));
  return ref;
}

Family<Counter>& Registry::counter(std::string_view name, std::string_view help,
                                   std::vector<std::string> label_names) {
  return family<Family<Counter>>(name, help, MetricType::kCounter, std::move(label_names));
}

Family<Gauge>& Registry::gauge(std::string_view name, std::string_view help,
                               std::vector<std::string> label_names) {
  return family<Family<Gauge>>(name, help, MetricType::kGauge, std::move(label_names));
}

Family<Histogram>& Registry::histogram(std::string_view name, std::string_view help,
                                       std::vector<double> bounds,
                                       std::vector<std::string> label_names) {
  return family<Family<Histogram>>(name, help, MetricType::kHistogram, std::move(label_names),
                                   std::move(bounds));
}

void Registry::sampled(std::string_view name, std::string_view help, MetricType type,
                       std::function<double()> fn, const Labels& labels) {
  std::vector<std::string> names, values;
  for (const auto& [n, v] : labels) {
    names.push_back(n);
    values.push_back(v);
  }
  Family<Sampled>& f = family<Family<Sampled>>(name, help, type, std::move(names));
  Guard g(f.mu_);  // the function is set before any render can see the series
  std::unique_ptr<Sampled>& s = f.series_[values];
  if (s) invalid("a sampled series registered twice", name);
  s = std::make_unique<Sampled>(Sampled{std::move(fn)});
}

void Registry::counter_fn(std::string_view name, std::string_view help, std::function<double()> fn,
                          const Labels& labels) {
  sampled(name, help, MetricType::kCounter, std::move(fn), labels);
}

void Registry::gauge_fn(std::string_view name, std::string_view help, std::function<double()> fn,
                        const Labels& labels) {
  sampled(name, help, MetricType::kGauge, std::move(fn), labels);
}

void Registry::render(std::string& out) const {
  Guard g(mu_);
  for (const std::unique_ptr<FamilyBase>& f : families_) f->render(out);
}

std::string Registry::render() const {
  std::string out;
  render(out);
  return out;
}

http::Handler Registry::handler() const {
  return [this](const http::Request&, http::Response& res) {
    res.status = 200;
    res.set_content_type(kContentType);
    res.body.clear();
    render(res.body);
  };
}

}  // namespace mpg::kit
