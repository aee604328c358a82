// The study's statistics (spec/downstream.md §6): Student-t CDF and quantile via the regularised
// incomplete beta function, the Welch / Student / paired one-tailed tests with their two-sided
// confidence intervals, and the Bonferroni correction.
#include "experiments/statistics.h"

#include <algorithm>  // std::min
#include <cmath>      // std::lgamma, std::log1p, std::isfinite
#include <limits>     // infinities, epsilon
#include <numbers>    // std::numbers::pi
#include <string>
#include <utility>  // std::pair

#include "tensor/error.h"  // CXR_CHECK

namespace cxr::experiments {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kEps = std::numeric_limits<double>::epsilon();

// ln Gamma(z) - ((z - ½) ln z - z + ½ ln 2pi), the remainder of Stirling's formula: for z >= 10
// its asymptotic series sum_k B_2k / (2k (2k - 1) z^(2k-1)) (DLMF 5.11.1, 8 terms, the last below
// 1e-16 there), below that from lgamma directly.
double stirling_remainder(double z) {
  if (z < 10) {
    return std::lgamma(z) - ((z - 0.5) * std::log(z) - z + 0.5 * std::log(2 * std::numbers::pi));
  }
  constexpr double kCoefficients[] = {1.0 / 12,   -1.0 / 360,      1.0 / 1260, -1.0 / 1680,
                                      1.0 / 1188, -691.0 / 360360, 1.0 / 156,  -3617.0 / 122400};
  const double inv_z2 = 1 / (z * z);
  double sum = 0, power = 1 / z;
  for (double c : kCoefficients) {
    sum += c * power;
    power *= inv_z2;
  }
  return sum;
}

// ln Gamma(z + a) - ln Gamma(z) for a > 0. For z >= 10 the two log-gammas are large and nearly
// equal, so the difference is formed from Stirling's formula as
//   (z - ½) log1p(a / z) + a ln(z + a) - a + remainder(z + a) - remainder(z),
// which keeps full relative precision (the t distribution with nu = 1e4 needs it).
double log_gamma_ratio(double z, double a) {
  if (z < 10) return std::lgamma(z + a) - std::lgamma(z);
  return (z - 0.5) * std::log1p(a / z) + a * std::log(z + a) - a + stirling_remainder(z + a) -
         stirling_remainder(z);
}

// ln B(a, b) = ln Gamma(a) + ln Gamma(b) - ln Gamma(a + b), through log_gamma_ratio of the larger.
double log_beta(double a, double b) {
  const double small = std::min(a, b), big = std::max(a, b);
  return std::lgamma(small) - log_gamma_ratio(big, small);
}

// The continued fraction of DLMF 8.17.22 for I_x(a, b), with y = 1 - x passed separately so that
// callers keep its full precision when x is near 1:
//   I_x(a, b) = x^a y^b / (a B(a, b)) * 1 / (1 + d1 / (1 + d2 / (1 + ...))),
//   d_{2m} = m (b - m) x / ((a + 2m - 1)(a + 2m)),
//   d_{2m+1} = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)).
// It converges fast for x < (a + 1) / (a + b + 2). Evaluated with the modified Lentz algorithm
// (Lentz 1976; Thompson & Barnett 1986) as 0 + 1 / (1 + d1 / (1 + d2 / ...)).
double incomplete_beta_fraction(double x, double y, double a, double b) {
  constexpr double kTiny = 1e-300;  // replaces a zero denominator, as Lentz's method prescribes
  double f = kTiny, c = kTiny, d = 0;
  bool converged = false;
  for (int j = 1; j <= 100000 && !converged; ++j) {
    double numerator = 1;  // a_1 = 1, a_{j} = d_{j-1}
    const int k = j - 1;
    if (k > 0) {
      const int m = k / 2;
      numerator = k % 2 == 0 ? m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
                             : -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
    }
    d = 1 + numerator * d;
    if (std::abs(d) < kTiny) d = kTiny;
    c = 1 + numerator / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double delta = c * d;
    f *= delta;
    converged = std::abs(delta - 1) <= kEps;
  }
  CXR_CHECK(converged, "regularized_incomplete_beta: continued fraction did not converge for x=", x,
            " a=", a, " b=", b);
  // log of the prefactor x^a y^b / (a B(a, b)). The constant is summed apart from the x-dependent
  // terms, so that its rounding stays one constant rather than a jitter in x (which would stall a
  // quantile search).
  // log x is taken as log1p(-y) when x is near 1, where y carries the digits that x has lost.
  const double log_x = x < 0.5 ? std::log(x) : std::log1p(-y);
  const double log_y = y < 0.5 ? std::log(y) : std::log1p(-x);
  const double log_norm = -log_beta(a, b) - std::log(a);
  const double log_front = (a * log_x + b * log_y) + log_norm;
  return std::exp(log_front) * f;
}

// I_x(a, b) with y = 1 - x; uses I_x(a, b) = 1 - I_y(b, a) (DLMF 8.17.4) where the fraction
// converges slowly.
double incomplete_beta(double x, double y, double a, double b) {
  if (x <= 0) return 0;
  if (y <= 0) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - incomplete_beta_fraction(y, x, b, a);
  return incomplete_beta_fraction(x, y, a, b);
}

void check_degrees(double nu, const char* op) {
  CXR_CHECK(nu > 0 && std::isfinite(nu), op, ": degrees of freedom must be finite and > 0, got ",
            nu);
}

// x = nu / (nu + t²) and y = t² / (nu + t²) = 1 - x for t >= 0, formed from t²/nu or nu/t²,
// whichever is <= 1, so that neither overflows nor cancels.
std::pair<double, double> t_beta_arguments(double t, double nu) {
  const double t2 = t * t;
  if (t2 <= nu) {
    const double s = t2 / nu;
    return {1 / (1 + s), s / (1 + s)};
  }
  const double r = nu / t2;
  return {r / (1 + r), 1 / (1 + r)};
}

// P(T > t) for t >= 0: ½ I_x(nu/2, ½) (DLMF 8.17.5 with the t density).
double upper_tail(double t, double nu) {
  const auto [x, y] = t_beta_arguments(t, nu);
  return 0.5 * incomplete_beta(x, y, nu / 2, 0.5);
}

// P(|T| < t) = 1 - 2 P(T > t) = I_y(½, nu/2) for t >= 0 (DLMF 8.17.4): relatively accurate for
// small t, where 1 - 2 upper_tail would cancel.
double central_probability(double t, double nu) {
  const auto [x, y] = t_beta_arguments(t, nu);
  return incomplete_beta(y, x, 0.5, nu / 2);
}

// The t density Gamma((nu+1)/2) / (Gamma(nu/2) sqrt(nu pi)) (1 + t²/nu)^(-(nu+1)/2).
double t_density(double t, double nu) {
  const double log_norm = log_gamma_ratio(nu / 2, 0.5) - 0.5 * std::log(nu * std::numbers::pi);
  return std::exp(log_norm - (nu + 1) / 2 * std::log1p(t * t / nu));
}

// The t >= 0 with upper_tail(t, nu) = q, q in (0, ½]: Newton's method inside a bracket that
// shrinks with every evaluation; a step that leaves the bracket is replaced by bisection
// (geometric while the bracket spans decades). In the tails (q <= ¼) it solves
// log upper_tail(t) = log q, nearly linear in the polynomial tails; nearer the centre
// central_probability(t) = 1 - 2q (exact there), which keeps the relative precision of a t near 0.
double upper_quantile(double q, double nu) {
  if (q == 0.5) return 0;
  const bool central = q > 0.25;
  const double target = central ? 1 - 2 * q : std::log(q);
  // The residual, increasing in t and zero at the quantile, and its derivative.
  const auto residual = [&](double t, double& slope) {
    const double density = t_density(t, nu);
    if (central) {
      slope = 2 * density;
      return central_probability(t, nu) - target;
    }
    const double tail = upper_tail(t, nu);  // 0 where it underflows: then no Newton step
    slope = density / tail;
    return target - std::log(tail);
  };
  double lo = 0, hi = 1, slope = 0;
  while (residual(hi, slope) < 0) {
    lo = hi;
    hi *= 16;
    if (hi > 1e150) return kInf;  // beyond it t² would overflow in t_beta_arguments
  }
  double t = hi;
  for (int iter = 0; iter < 500; ++iter) {
    const double f = residual(t, slope);
    if (f == 0) return t;
    (f < 0 ? lo : hi) = t;
    double next = t - f / slope;
    if (!(next > lo && next < hi)) {  // also a NaN step
      next = lo > 0 && hi > 4 * lo ? std::sqrt(lo * hi) : (lo + hi) / 2;
    }
    if (std::abs(next - t) <= 2 * kEps * next || hi - lo <= 2 * kEps * hi) return next;
    t = next;
  }
  CXR_FAIL("student_t_quantile: no convergence for tail probability ", q, " and ", nu,
           " degrees of freedom");
}

// Throws naming the arm when it is too short or holds a non-finite value.
void check_arm(const std::vector<double>& values, const char* arm) {
  CXR_CHECK(values.size() >= 2, "compare_means: the ", arm,
            " arm needs at least 2 values (trials), got ", values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    CXR_CHECK(std::isfinite(values[i]), "compare_means: the ", arm,
              " arm holds a non-finite value ", values[i], " at index ", i);
  }
}

}  // namespace

double regularized_incomplete_beta(double x, double a, double b) {
  CXR_CHECK(x >= 0 && x <= 1, "regularized_incomplete_beta: x must be in [0, 1], got ", x);
  CXR_CHECK(a > 0 && b > 0 && std::isfinite(a) && std::isfinite(b),
            "regularized_incomplete_beta: a and b must be finite and > 0, got a=", a, " b=", b);
  return incomplete_beta(x, 1 - x, a, b);
}

double student_t_cdf(double t, double nu) {
  check_degrees(nu, "student_t_cdf");
  CXR_CHECK(!std::isnan(t), "student_t_cdf: t is NaN");
  if (t == 0) return 0.5;
  const double tail = upper_tail(std::abs(t), nu);
  return t > 0 ? 1 - tail : tail;
}

double student_t_quantile(double p, double nu) {
  check_degrees(nu, "student_t_quantile");
  CXR_CHECK(p > 0 && p < 1, "student_t_quantile: p must be in (0, 1), got ", p);
  // 1 - p is exact for p >= ½ (Sterbenz), so the upper tail keeps all its digits.
  return p < 0.5 ? -upper_quantile(p, nu) : upper_quantile(1 - p, nu);
}

TTest parse_t_test(std::string_view name) {
  if (name == "welch") return TTest::Welch;
  if (name == "student") return TTest::Student;
  if (name == "paired") return TTest::Paired;
  CXR_FAIL("unknown t-test '", name, "': expected one of welch, student, paired");
}

const char* t_test_name(TTest test) {
  switch (test) {
    case TTest::Welch:
      return "welch";
    case TTest::Student:
      return "student";
    case TTest::Paired:
      return "paired";
  }
  CXR_FAIL("t_test_name: invalid TTest value ", static_cast<int>(test));
}

double mean_of(const std::vector<double>& v) {
  CXR_CHECK(!v.empty(), "mean_of: empty vector");
  // Shifted by v[0]: equal values give exactly v[0], and the sum of offsets loses less.
  double offsets = 0;
  for (double x : v) offsets += x - v[0];
  return v[0] + offsets / static_cast<double>(v.size());
}

double sample_sd(const std::vector<double>& v) {
  CXR_CHECK(!v.empty(), "sample_sd: empty vector");
  if (v.size() == 1) return 0;
  const double mean = mean_of(v);
  double squares = 0;
  for (double x : v) squares += (x - mean) * (x - mean);
  return std::sqrt(squares / static_cast<double>(v.size() - 1));
}

Comparison compare_means(const std::vector<double>& treated, const std::vector<double>& control,
                         TTest test, double confidence) {
  check_arm(treated, "treated");
  check_arm(control, "control");
  CXR_CHECK(confidence > 0 && confidence < 1, "compare_means: confidence must be in (0, 1), got ",
            confidence);
  Comparison c;
  c.n_treated = static_cast<int64_t>(treated.size());
  c.n_control = static_cast<int64_t>(control.size());
  c.mean_treated = mean_of(treated);
  c.mean_control = mean_of(control);
  c.sd_treated = sample_sd(treated);
  c.sd_control = sample_sd(control);
  const double n1 = static_cast<double>(c.n_treated), n2 = static_cast<double>(c.n_control);
  const double var1 = c.sd_treated * c.sd_treated, var2 = c.sd_control * c.sd_control;
  switch (test) {
    case TTest::Welch: {
      const double v1 = var1 / n1, v2 = var2 / n2;
      c.delta = c.mean_treated - c.mean_control;
      c.se = std::sqrt(v1 + v2);
      // Welch–Satterthwaite; 0/0 when neither arm varies, where the pooled df stands in.
      c.df = v1 + v2 > 0 ? (v1 + v2) * (v1 + v2) / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))
                         : n1 + n2 - 2;
      break;
    }
    case TTest::Student: {
      c.delta = c.mean_treated - c.mean_control;
      c.df = n1 + n2 - 2;
      const double pooled = ((n1 - 1) * var1 + (n2 - 1) * var2) / c.df;
      c.se = std::sqrt(pooled * (1 / n1 + 1 / n2));
      break;
    }
    case TTest::Paired: {
      CXR_CHECK(treated.size() == control.size(),
                "compare_means: the paired test needs arms of equal size, got treated ",
                treated.size(), " and control ", control.size());
      std::vector<double> differences(treated.size());
      for (size_t k = 0; k < treated.size(); ++k) differences[k] = treated[k] - control[k];
      c.delta = mean_of(differences);
      c.se = sample_sd(differences) / std::sqrt(n1);
      c.df = n1 - 1;
      break;
    }
  }
  if (c.se == 0) {
    c.t = c.delta > 0 ? kInf : c.delta < 0 ? -kInf : 0;
    c.p_one_sided = c.delta > 0 ? 0 : 1;
    c.ci_low = c.ci_high = c.delta;
    return c;
  }
  c.t = c.delta / c.se;
  c.p_one_sided = student_t_cdf(-c.t, c.df);  // P(T >= t) by symmetry, full precision in the tail
  const double half_width = student_t_quantile((1 + confidence) / 2, c.df) * c.se;
  c.ci_low = c.delta - half_width;
  c.ci_high = c.delta + half_width;
  return c;
}

void bonferroni(std::vector<Comparison>& comparisons, double alpha) {
  CXR_CHECK(alpha > 0 && alpha < 1, "bonferroni: alpha must be in (0, 1), got ", alpha);
  const double m = static_cast<double>(comparisons.size());
  for (Comparison& c : comparisons) {
    c.p_bonferroni = std::min(1.0, m * c.p_one_sided);
    c.significant = c.p_bonferroni < alpha;
  }
}

}  // namespace cxr::experiments
