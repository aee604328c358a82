// The study's statistics (spec/downstream.md §6): the Student-t distribution (CDF and quantile for
// fractional degrees of freedom, through the regularised incomplete beta function), the one-tailed
// two-sample tests that compare the trials trained with synthetic data ("treated", augmented) with
// the real-only trials ("control") — Welch, Student (pooled) and paired — with the two-sided
// confidence interval of the difference, and the Bonferroni correction over a family of
// comparisons.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace cxr::experiments {

// Student's t distribution with nu > 0 degrees of freedom (finite; fractional for Welch).
// P(T <= t); t = -inf gives 0, +inf gives 1. Throws cxr::Error for NaN t or nu not in (0, inf).
// Accurate to ~1e-14 for nu <= 100 (absolute near the centre, relative in either tail, as
// cdf(-t) = 1 - cdf(t)); the continued fraction loses ~nu * 5e-17 for large nu (5e-13 at 1e4).
// For |t| < 1e150 (beyond it t² overflows and the tail is taken as 0).
double student_t_cdf(double t, double nu);
// The t with student_t_cdf(t, nu) = p, for p in (0, 1) (otherwise cxr::Error, as for nu <= 0);
// ±inf when |t| would exceed 1e150 (only for nu well below 1 and extreme p).
double student_t_quantile(double p, double nu);
// The regularised incomplete beta function I_x(a, b) = B(x; a, b) / B(a, b) for x in [0, 1] and
// a, b > 0 (otherwise cxr::Error), by the continued fraction of DLMF 8.17.22.
double regularized_incomplete_beta(double x, double a, double b);

enum class TTest { Welch, Student, Paired };
// "welch" | "student" | "paired"; anything else throws cxr::Error listing them.
TTest parse_t_test(std::string_view name);
const char* t_test_name(TTest test);

// One comparison of the per-trial metrics of two arms: H0 mean_treated == mean_control against the
// one-sided H1 mean_treated > mean_control.
struct Comparison {
  int64_t n_treated = 0, n_control = 0;
  double mean_treated = 0, mean_control = 0, sd_treated = 0, sd_control = 0;  // sd with n-1
  double delta = 0;  // mean_treated - mean_control (for Paired: the mean of the differences, equal)
  double se = 0, df = 0, t = 0;
  double p_one_sided = 1;          // P(T >= t) under H0 (H1: treated > control)
  double ci_low = 0, ci_high = 0;  // two-sided `confidence` interval of delta: delta -/+ q*se
  double p_bonferroni = 1;         // min(1, m * p_one_sided), filled by bonferroni()
  bool significant = false;        // p_bonferroni < alpha, filled by bonferroni()
};

// treated/control: the per-trial metrics (Paired: trial k of each arm paired). §6.1:
//   Welch:   se = sqrt(s1²/n1 + s2²/n2), df = Welch–Satterthwaite; when both variances are 0 the
//            formula is 0/0 and df = n1 + n2 - 2 is used instead.
//   Student: pooled variance, se = s_p sqrt(1/n1 + 1/n2), df = n1 + n2 - 2.
//   Paired:  d_k = treated_k - control_k, se = sd(d) / sqrt(n), df = n - 1.
// t = delta / se, p_one_sided = P(T_df >= t), CI = delta -/+ t_{(1+confidence)/2, df} se.
// se == 0 (no spread at all): t = +inf and p = 0 when delta > 0; t = -inf and p = 1 when
// delta < 0; t = 0 and p = 1 (no evidence; scipy gives NaN) when delta == 0; CI = [delta, delta].
// Throws cxr::Error naming the arm when it has fewer than 2 values or a non-finite value, for
// Paired with unequal sizes, and for confidence outside (0, 1).
Comparison compare_means(const std::vector<double>& treated, const std::vector<double>& control,
                         TTest test, double confidence = 0.95);
// Fills p_bonferroni and significant for a family of m = comparisons.size() comparisons; alpha in
// (0, 1), otherwise cxr::Error.
void bonferroni(std::vector<Comparison>& comparisons, double alpha = 0.05);

// The mean and the sample standard deviation (n-1 denominator; 0 for n == 1) of a non-empty vector
// (cxr::Error when empty). Values that are all equal give exactly that value and exactly 0.
double mean_of(const std::vector<double>& v);
double sample_sd(const std::vector<double>& v);

}  // namespace cxr::experiments
