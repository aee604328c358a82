// experiments/statistics: the Student-t CDF, quantile and the incomplete beta against scipy
// (tests/golden/gen_statistics.py -> tests/fixtures/statistics.json) to 1e-10, closed forms, the
// paper's two headline p-values (spec/downstream.md §6.2), the three t-tests against scipy's
// ttest_ind / ttest_rel, the zero-spread and error cases, and the Bonferroni correction.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/statistics.h"
#include "support/errors.h"
#include "support/files.h"

namespace cxr::experiments {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const nlohmann::json& fixture() {
  static const nlohmann::json json = [] {
    const std::string path = std::string(CXR_FIXTURE_DIR) + "/statistics.json";
    const std::string text = test::read_text(path);
    EXPECT_FALSE(text.empty()) << "cannot read " << path;
    return nlohmann::json::parse(text);
  }();
  return json;
}

// |value - reference| <= tol * max(|reference|, floor): relative in the tails, and absolute (for
// floor = 1) near values of order one. The 1e-300 floor leaves out denormal tails.
::testing::AssertionResult close_to(double value, double reference, double tol,
                                    double floor = 1e-300) {
  if (std::abs(value - reference) <= tol * std::max(std::abs(reference), floor)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << value << " vs reference " << reference << " (difference "
                                       << value - reference << ", tolerance " << tol << ")";
}

TEST(StudentT, CdfMatchesScipy) {
  const auto& rows = fixture().at("t_cdf");
  ASSERT_EQ(rows.size(), 110u);
  for (const auto& row : rows) {
    const double t = row.at("t"), nu = row.at("nu");
    SCOPED_TRACE("t=" + std::to_string(t) + " nu=" + std::to_string(nu));
    EXPECT_TRUE(close_to(student_t_cdf(t, nu), row.at("cdf").get<double>(), 1e-10));
    // The upper tail by symmetry, relative to scipy's sf.
    EXPECT_TRUE(close_to(student_t_cdf(-t, nu), row.at("sf").get<double>(), 1e-10));
  }
}

TEST(StudentT, QuantileMatchesScipy) {
  const auto& rows = fixture().at("t_ppf");
  ASSERT_EQ(rows.size(), 140u);
  for (const auto& row : rows) {
    const double p = row.at("p"), nu = row.at("nu");
    SCOPED_TRACE("p=" + std::to_string(p) + " nu=" + std::to_string(nu));
    const double t = student_t_quantile(p, nu);
    EXPECT_TRUE(close_to(t, row.at("t").get<double>(), 1e-10, 1.0));
    // The exact root (mpmath): relatively, also near t = 0 where scipy's ppf loses digits.
    EXPECT_TRUE(close_to(t, row.at("t_mpmath").get<double>(), 1e-12));
    // And it inverts our CDF (on the smaller tail, relatively).
    const bool lower = p <= 0.5;
    EXPECT_TRUE(close_to(student_t_cdf(lower ? t : -t, nu), lower ? p : 1 - p, 1e-12));
  }
}

TEST(StudentT, IncompleteBetaMatchesScipy) {
  const auto& rows = fixture().at("betainc");
  ASSERT_FALSE(rows.empty());
  for (const auto& row : rows) {
    const double x = row.at("x"), a = row.at("a"), b = row.at("b");
    SCOPED_TRACE("x=" + std::to_string(x) + " a=" + std::to_string(a) + " b=" + std::to_string(b));
    EXPECT_TRUE(
        close_to(regularized_incomplete_beta(x, a, b), row.at("value").get<double>(), 1e-10));
  }
  EXPECT_EQ(regularized_incomplete_beta(0, 2, 3), 0);
  EXPECT_EQ(regularized_incomplete_beta(1, 2, 3), 1);
}

TEST(StudentT, ClosedForms) {
  // nu = 1 (Cauchy): P(T >= t) = ½ - atan(t)/pi; nu = 2: P(T >= t) = ½ (1 - t / sqrt(t² + 2))
  // (spec §6.1), and their inverses t = tan(pi (p - ½)), t = (2p - 1) / sqrt(2 p (1 - p)).
  for (double t : {-7.5, -1.0, -0.25, 0.0, 0.3, 1.0, 2.9, 12.0}) {
    SCOPED_TRACE("t=" + std::to_string(t));
    EXPECT_NEAR(student_t_cdf(-t, 1), 0.5 - std::atan(t) / std::numbers::pi, 1e-14);
    EXPECT_NEAR(student_t_cdf(-t, 2), 0.5 * (1 - t / std::sqrt(t * t + 2)), 1e-14);
  }
  for (double p : {0.001, 0.2, 0.5, 0.8, 0.995}) {
    SCOPED_TRACE("p=" + std::to_string(p));
    EXPECT_TRUE(
        close_to(student_t_quantile(p, 1), std::tan(std::numbers::pi * (p - 0.5)), 1e-13, 1));
    EXPECT_TRUE(
        close_to(student_t_quantile(p, 2), (2 * p - 1) / std::sqrt(2 * p * (1 - p)), 1e-13, 1));
  }
  // The 97.5 % points of spec §6.1, to their printed 4 decimals.
  EXPECT_NEAR(student_t_quantile(0.975, 1), 12.7062, 5e-5);
  EXPECT_NEAR(student_t_quantile(0.975, 2), 4.3027, 5e-5);
  EXPECT_EQ(student_t_cdf(kInf, 3), 1);
  EXPECT_EQ(student_t_cdf(-kInf, 3), 0);
  EXPECT_EQ(student_t_quantile(0.5, 2.7), 0);
}

// One-tailed p of a reported result: SE = CI half-width / t_{0.975, nu}, t = delta / SE.
double headline_p(double delta, double half_width, double nu) {
  const double se = half_width / student_t_quantile(0.975, nu);
  return student_t_cdf(-delta / se, nu);
}

TEST(StudentT, PaperHeadlineNumbers) {
  // spec/downstream.md §6.2, to 3 significant digits.
  EXPECT_NEAR(headline_p(0.150453, 0.051345, 2), 0.00312, 5e-6);  // classification ΔF1
  EXPECT_NEAR(headline_p(0.150453, 0.051345, 1), 0.00855, 5e-6);
  EXPECT_NEAR(headline_p(0.14575, 0.037483, 1), 0.00644, 5e-6);  // segmentation ΔDice
  EXPECT_NEAR(headline_p(0.14575, 0.037483, 2), 0.00178, 5e-6);
}

TEST(StudentT, ArgumentErrors) {
  EXPECT_ERROR_CONTAINS(student_t_cdf(1, 0), "degrees of freedom");
  EXPECT_ERROR_CONTAINS(student_t_cdf(1, -2), "degrees of freedom");
  EXPECT_ERROR_CONTAINS(student_t_cdf(1, kInf), "degrees of freedom");
  EXPECT_ERROR_CONTAINS(student_t_cdf(kNaN, 3), "NaN");
  EXPECT_ERROR_CONTAINS(student_t_quantile(0, 3), "p must be in (0, 1)");
  EXPECT_ERROR_CONTAINS(student_t_quantile(1, 3), "p must be in (0, 1)");
  EXPECT_ERROR_CONTAINS(student_t_quantile(kNaN, 3), "p must be in (0, 1)");
  EXPECT_ERROR_CONTAINS(student_t_quantile(0.5, 0), "degrees of freedom");
  EXPECT_ERROR_CONTAINS(regularized_incomplete_beta(1.5, 1, 1), "x must be in [0, 1]");
  EXPECT_ERROR_CONTAINS(regularized_incomplete_beta(0.5, 0, 1), "a and b");
  EXPECT_ERROR_CONTAINS(regularized_incomplete_beta(0.5, 1, -1), "a and b");
}

TEST(TTest, NamesRoundTrip) {
  for (TTest test : {TTest::Welch, TTest::Student, TTest::Paired}) {
    EXPECT_EQ(parse_t_test(t_test_name(test)), test);
  }
  EXPECT_STREQ(t_test_name(TTest::Welch), "welch");
  EXPECT_ERROR_CONTAINS(parse_t_test("Welch"), "welch, student, paired");
  EXPECT_ERROR_CONTAINS(parse_t_test("z"), "'z'");
}

TEST(CompareMeans, MatchesScipy) {
  const auto& rows = fixture().at("compare");
  ASSERT_EQ(rows.size(), 17u);
  for (const auto& row : rows) {
    const std::string test_name = row.at("test");
    SCOPED_TRACE(row.at("name").get<std::string>() + " " + test_name);
    const auto treated = row.at("treated").get<std::vector<double>>();
    const auto control = row.at("control").get<std::vector<double>>();
    const Comparison c = compare_means(treated, control, parse_t_test(test_name));
    EXPECT_EQ(c.n_treated, static_cast<int64_t>(treated.size()));
    EXPECT_EQ(c.n_control, static_cast<int64_t>(control.size()));
    EXPECT_TRUE(close_to(c.delta, row.at("delta").get<double>(), 1e-10, 1));
    EXPECT_TRUE(close_to(c.mean_treated - c.mean_control, c.delta, 1e-12, 1));
    EXPECT_TRUE(close_to(c.se, row.at("se").get<double>(), 1e-10));
    EXPECT_TRUE(close_to(c.df, row.at("df").get<double>(), 1e-10));
    EXPECT_TRUE(close_to(c.t, row.at("statistic").get<double>(), 1e-10));
    EXPECT_TRUE(close_to(c.p_one_sided, row.at("pvalue").get<double>(), 1e-10));
    EXPECT_TRUE(close_to(c.ci_low, row.at("ci_low").get<double>(), 1e-10, 1));
    EXPECT_TRUE(close_to(c.ci_high, row.at("ci_high").get<double>(), 1e-10, 1));
    EXPECT_EQ(c.p_bonferroni, 1);  // untouched until bonferroni()
    EXPECT_FALSE(c.significant);
  }
}

TEST(CompareMeans, ArmSummaries) {
  const Comparison c = compare_means({1, 2, 3, 4}, {0.1, 0.1, 0.1}, TTest::Welch);
  EXPECT_DOUBLE_EQ(c.mean_treated, 2.5);
  EXPECT_DOUBLE_EQ(c.sd_treated, std::sqrt(5.0 / 3.0));
  EXPECT_EQ(c.mean_control, 0.1);  // exactly, and no spurious spread
  EXPECT_EQ(c.sd_control, 0);
  EXPECT_DOUBLE_EQ(c.df, 3);  // Welch with one constant arm: n_treated - 1
  EXPECT_EQ(sample_sd({7.25}), 0);
  EXPECT_EQ(mean_of({7.25}), 7.25);
  EXPECT_ERROR_CONTAINS(mean_of({}), "empty");
  EXPECT_ERROR_CONTAINS(sample_sd({}), "empty");
}

TEST(CompareMeans, OtherConfidence) {
  const std::vector<double> treated{0.81, 0.86, 0.79}, control{0.70, 0.74, 0.69};
  const Comparison c95 = compare_means(treated, control, TTest::Student);
  const Comparison c90 = compare_means(treated, control, TTest::Student, 0.90);
  EXPECT_EQ(c90.p_one_sided, c95.p_one_sided);
  const double half = student_t_quantile(0.95, 4) * c90.se;
  EXPECT_NEAR(c90.ci_low, c90.delta - half, 1e-15);
  EXPECT_NEAR(c90.ci_high, c90.delta + half, 1e-15);
  EXPECT_GT(c90.ci_low, c95.ci_low);
}

TEST(CompareMeans, ZeroSpread) {
  for (TTest test : {TTest::Welch, TTest::Student, TTest::Paired}) {
    SCOPED_TRACE(t_test_name(test));
    const Comparison up = compare_means({0.8, 0.8}, {0.6, 0.6}, test);
    EXPECT_EQ(up.se, 0);
    EXPECT_EQ(up.t, kInf);
    EXPECT_EQ(up.p_one_sided, 0);
    EXPECT_EQ(up.ci_low, up.delta);
    EXPECT_EQ(up.ci_high, up.delta);
    EXPECT_NEAR(up.delta, 0.2, 1e-15);
    EXPECT_EQ(up.df, test == TTest::Paired ? 1 : 2);  // Welch's 0/0 df falls back to n1 + n2 - 2
    const Comparison down = compare_means({0.6, 0.6}, {0.8, 0.8}, test);
    EXPECT_EQ(down.t, -kInf);
    EXPECT_EQ(down.p_one_sided, 1);
    const Comparison same = compare_means({0.7, 0.7}, {0.7, 0.7}, test);
    EXPECT_EQ(same.t, 0);
    EXPECT_EQ(same.p_one_sided, 1);
    EXPECT_EQ(same.ci_low, 0);
    EXPECT_EQ(same.ci_high, 0);
  }
  // Paired: constant differences between varying arms.
  const Comparison paired = compare_means({0.75, 0.625}, {0.5, 0.375}, TTest::Paired);
  EXPECT_EQ(paired.delta, 0.25);
  EXPECT_EQ(paired.t, kInf);
  EXPECT_EQ(paired.p_one_sided, 0);
  EXPECT_GT(paired.sd_treated, 0);
}

TEST(CompareMeans, InputErrors) {
  EXPECT_ERROR_CONTAINS(compare_means({0.5}, {0.4, 0.3}, TTest::Welch), "treated arm");
  EXPECT_ERROR_CONTAINS(compare_means({0.5, 0.6}, {0.4}, TTest::Student), "control arm");
  EXPECT_ERROR_CONTAINS(compare_means({}, {0.4, 0.3}, TTest::Welch), "at least 2");
  EXPECT_ERROR_CONTAINS(compare_means({0.5, 0.6, 0.7}, {0.4, 0.3}, TTest::Paired), "equal size");
  EXPECT_ERROR_CONTAINS(compare_means({0.5, kNaN}, {0.4, 0.3}, TTest::Welch), "non-finite");
  EXPECT_ERROR_CONTAINS(compare_means({0.5, 0.6}, {0.4, -kInf}, TTest::Welch), "control arm");
  EXPECT_ERROR_CONTAINS(compare_means({0.5, 0.6}, {0.4, 0.3}, TTest::Welch, 1.0), "confidence");
  EXPECT_ERROR_CONTAINS(compare_means({0.5, 0.6}, {0.4, 0.3}, TTest::Welch, 0), "confidence");
}

TEST(Bonferroni, MultipliesByFamilySize) {
  std::vector<Comparison> family(4);
  const double p[] = {0.001, 0.012, 0.02, 0.4};
  for (size_t i = 0; i < family.size(); ++i) family[i].p_one_sided = p[i];
  bonferroni(family);
  EXPECT_DOUBLE_EQ(family[0].p_bonferroni, 0.004);
  EXPECT_DOUBLE_EQ(family[1].p_bonferroni, 0.048);
  EXPECT_DOUBLE_EQ(family[2].p_bonferroni, 0.08);
  EXPECT_EQ(family[3].p_bonferroni, 1);  // capped
  EXPECT_TRUE(family[0].significant);
  EXPECT_TRUE(family[1].significant);
  EXPECT_FALSE(family[2].significant);
  EXPECT_FALSE(family[3].significant);
  bonferroni(family, 0.01);
  EXPECT_TRUE(family[0].significant);
  EXPECT_FALSE(family[1].significant);
  std::vector<Comparison> empty;
  bonferroni(empty);
  EXPECT_TRUE(empty.empty());
  EXPECT_ERROR_CONTAINS(bonferroni(family, 0), "alpha");
  EXPECT_ERROR_CONTAINS(bonferroni(family, 1.5), "alpha");
}

}  // namespace
}  // namespace cxr::experiments
