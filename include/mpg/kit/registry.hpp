// registry.hpp: named metric families with labels, rendered in Prometheus's text exposition
// format 0.0.4 for /metrics.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mpg/detail/lock.hpp"
#include "mpg/http/handler.hpp"
#include "mpg/kit/metrics.hpp"

namespace mpg::kit {

enum class MetricType : std::uint8_t { kCounter, kGauge, kHistogram };

// Labels: name = value pairs of one callback series.
using Labels = std::vector<std::pair<std::string, std::string>>;

// FamilyBase: one metric name with its help text, type, label names and series; owned by its
// Registry, which renders it. Thread-safe.
class FamilyBase {
 public:
  virtual ~FamilyBase();
  const std::string& name() const { return name_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // render: appends "# HELP", "# TYPE" and one line per series (three kinds for histograms).
  void render(std::string& out) const;

 protected:
  FamilyBase(std::string_view name, std::string_view help, MetricType type,
             std::vector<std::string> label_names);
  // render_series: appends every series' lines, in the order of their label values.
  virtual void render_series(std::string& out) const = 0;
  void check_values(std::size_t n) const;  // throws unless n == label_names().size()

  std::string name_;
  std::string help_;
  MetricType type_;
  std::vector<std::string> label_names_;
  mutable mpg::detail::Lock mu_;  // guards each subclass's series list
};

// Family: the series of one metric, one per combination of label values, created on first use
// and never removed (so references stay valid for the registry's life). with() takes a lock and
// a map lookup: resolve a series once and keep the reference on a hot path.
template <class T>
class Family final : public FamilyBase {
 public:
  Family(std::string_view name, std::string_view help, MetricType type,
         std::vector<std::string> label_names, std::vector<double> bounds = {});
  // with: the series with these label values (as many as label_names(), in that order).
  T& with(std::initializer_list<std::string_view> values);
  T& with(const std::vector<std::string>& values);
  T& with() { return with(std::vector<std::string>{}); }  // the one series of an unlabeled family
  const std::vector<double>& bounds() const { return bounds_; }  // Histogram only

 private:
  friend class Registry;  // adds Sampled series with their function under mu_
  void render_series(std::string& out) const override;
  std::map<std::vector<std::string>, std::unique_ptr<T>> series_;  // guarded by mu_
  std::vector<double> bounds_;
};

// Sampled: a series whose value a function computes at scrape time (an object's own counters,
// open connections); what Registry::counter_fn and gauge_fn make.
struct Sampled {
  std::function<double()> fn;
};

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;
extern template class Family<Sampled>;

// Registry: every metric family of a process (or of one server), rendered on each scrape.
// Registration is get-or-create: asking again for a name with the same type and label names
// returns the same family (so two objects may share one), anything else throws
// std::invalid_argument, as do invalid metric or label names. Thread-safe: families may be
// added while another thread renders. Families live as long as the registry.
class Registry {
 public:
  // kContentType: the text exposition format's media type.
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Family<Counter>& counter(std::string_view name, std::string_view help,
                           std::vector<std::string> label_names = {});
  Family<Gauge>& gauge(std::string_view name, std::string_view help,
                       std::vector<std::string> label_names = {});
  // histogram: `bounds` as Histogram's; label "le" is reserved for the buckets.
  Family<Histogram>& histogram(std::string_view name, std::string_view help,
                               std::vector<double> bounds,
                               std::vector<std::string> label_names = {});
  // counter_fn, gauge_fn: a series computed by `fn` at each scrape; several calls with one name
  // (and the same label names, in order) add series to one family. `fn` runs on the scraping
  // thread under the family's lock: it must be quick and must not touch this registry.
  void counter_fn(std::string_view name, std::string_view help, std::function<double()> fn,
                  const Labels& labels = {});
  void gauge_fn(std::string_view name, std::string_view help, std::function<double()> fn,
                const Labels& labels = {});

  // render: appends every family, in registration order.
  void render(std::string& out) const;
  std::string render() const;
  // handler: serves render() as 200 with kContentType; the registry must outlive it.
  http::Handler handler() const;

 private:
  template <class F>
  F& family(std::string_view name, std::string_view help, MetricType type,
            std::vector<std::string> label_names, std::vector<double> bounds = {});
  void sampled(std::string_view name, std::string_view help, MetricType type,
               std::function<double()> fn, const Labels& labels);

  mutable mpg::detail::Lock mu_;  // guards families_
  std::vector<std::unique_ptr<FamilyBase>> families_;
};

}  // namespace mpg::kit
