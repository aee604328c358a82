"""Golden values for experiments/statistics.cpp (tests/experiments/test_statistics.cpp).

Run by hand from the repository root (needs numpy, scipy and mpmath):
    python3 tests/golden/gen_statistics.py
It writes tests/fixtures/statistics.json:
    t_cdf     nu, t, cdf = scipy.stats.t.cdf(t, nu), sf = scipy.stats.t.sf(t, nu)
    t_ppf     nu, p, t = scipy.stats.t.ppf(p, nu), t_mpmath = the root of the CDF at 40 digits
              (scipy's ppf is only absolutely accurate near p = ½: at p = 0.5 -/+ 1e-7 it is off by
              ~1e-10 relative, so the test checks t_mpmath relatively and t absolutely there)
    betainc   x, a, b, value = scipy.special.betainc(a, b, x)
    compare   one-tailed (alternative='greater') tests of treated against control:
              scipy.stats.ttest_ind(equal_var=False) ("welch"), ttest_ind(equal_var=True)
              ("student"), ttest_rel ("paired"): statistic, pvalue, df, and the two-sided 95 %
              interval of the mean difference. scipy's confidence_interval() of a one-sided test is
              one-sided, so the interval comes from the same test run with alternative='two-sided'
              (its confidence_interval(0.95)); the script checks that it equals
              delta -/+ t.ppf(0.975, df) * se with se = delta / statistic.
Every distribution value is checked against mpmath at 40 digits before it is written, so the fixture
is known to be correct to ~1e-13 relative (the C++ test demands 1e-10). Floats are written by json
(repr), which round-trips doubles exactly.
"""
import json
import math
import os

import mpmath
import numpy as np
import scipy
import scipy.special
import scipy.stats

mpmath.mp.dps = 40

NUS = [1, 1.3, 2, 2.7, 3, 5, 10, 30, 100, 1e4]
TS = [-40, -5, -2.3, -1, -0.1, 0, 0.1, 1, 2.3, 5, 40]
PS = [1e-10, 1e-4, 0.01, 0.025, 0.05, 0.3, 0.4999999, 0.5, 0.5000001, 0.7, 0.95, 0.975, 0.99,
      1 - 1e-4]  # 0.5 -/+ 1e-7: a quantile near 0, checked relatively
BETAS = [  # (x, a, b): small and large parameters, x near 0 and 1
    (0.5, 0.5, 0.5), (0.3, 2.0, 3.0), (0.9, 5.0, 0.5), (1e-8, 0.5, 5000.0), (1e-3, 0.5, 5000.0),
    (0.999, 0.5, 5000.0), (1e-12, 3.0, 0.5), (1 - 1e-9, 0.5, 2.0), (0.2, 50.0, 60.0),
    (0.75, 1.0, 1.0), (0.01, 0.65, 0.5), (0.99, 15.0, 0.5)]


def mp_t_cdf(t, nu):
    """P(T <= t) = ½ I_{nu/(nu+t²)}(nu/2, ½) for t < 0 (DLMF 8.17.5), reflected for t > 0."""
    t, nu = mpmath.mpf(t), mpmath.mpf(nu)
    if t == 0:
        return mpmath.mpf(0.5)
    tail = mpmath.betainc(nu / 2, 0.5, 0, nu / (nu + t * t), regularized=True) / 2
    return tail if t < 0 else 1 - tail


def check(value, exact, what, rel=1e-13, floor=1e-300):
    exact = float(exact)
    assert abs(value - exact) <= rel * abs(exact) + floor, f"{what}: scipy {value!r} mpmath {exact!r}"


def t_values():
    cdf_rows, ppf_rows = [], []
    for nu in NUS:
        for t in TS:
            cdf = float(scipy.stats.t.cdf(t, nu))
            sf = float(scipy.stats.t.sf(t, nu))
            check(cdf, mp_t_cdf(t, nu), f"cdf({t}, {nu})")
            check(sf, mp_t_cdf(-t, nu), f"sf({t}, {nu})")  # symmetry keeps the tail exact
            cdf_rows.append({"nu": nu, "t": t, "cdf": cdf, "sf": sf})
        for p in PS:
            t = float(scipy.stats.t.ppf(p, nu))
            # The exact quantile solves cdf(t) = p: check through the CDF's derivative.
            exact = mpmath.findroot(lambda x: mp_t_cdf(x, nu) - p, t)
            check(t, exact, f"ppf({p}, {nu})", floor=1e-15)
            ppf_rows.append({"nu": nu, "p": p, "t": t, "t_mpmath": float(exact)})
    return cdf_rows, ppf_rows


def beta_values():
    rows = []
    for x, a, b in BETAS:
        value = float(scipy.special.betainc(a, b, x))
        check(value, mpmath.betainc(a, b, 0, x, regularized=True), f"betainc({x}, {a}, {b})")
        rows.append({"x": x, "a": a, "b": b, "value": value})
    return rows


def one_test(name, test, treated, control):
    treated, control = np.asarray(treated), np.asarray(control)
    if test == "paired":
        run = lambda alt: scipy.stats.ttest_rel(treated, control, alternative=alt)
        delta = float(np.mean(treated - control))
    else:
        run = lambda alt: scipy.stats.ttest_ind(treated, control, equal_var=(test == "student"),
                                                alternative=alt)
        delta = float(np.mean(treated) - np.mean(control))
    one = run("greater")
    two = run("two-sided").confidence_interval(0.95)
    statistic, df = float(one.statistic), float(one.df)
    se = delta / statistic
    half = float(scipy.stats.t.ppf(0.975, df)) * se
    assert abs(two.low - (delta - half)) < 1e-12 and abs(two.high - (delta + half)) < 1e-12, name
    return {"name": name, "test": test, "treated": treated.tolist(), "control": control.tolist(),
            "delta": delta, "se": se, "statistic": statistic, "pvalue": float(one.pvalue), "df": df,
            "ci_low": float(two.low), "ci_high": float(two.high)}


def compare_values():
    rng = np.random.default_rng(20261126)
    arm = lambda n, centre: np.round(rng.uniform(centre - 0.08, centre + 0.08, n), 6)
    cases = {  # name: (treated, control)
        "n2": (arm(2, 0.80), arm(2, 0.65)),
        "n3": (arm(3, 0.72), arm(3, 0.70)),
        "n5": (arm(5, 0.60), arm(5, 0.66)),  # treated worse: negative t, p > ½
        "n2_control_constant": (arm(2, 0.80), [0.5, 0.5]),
        "n3_treated_constant": ([0.75, 0.75, 0.75], arm(3, 0.70)),
        "n3_vs_5": (arm(3, 0.74), arm(5, 0.70)),
    }
    rows = []
    for name, (treated, control) in cases.items():
        for test in ("welch", "student", "paired"):
            if test == "paired" and len(treated) != len(control):
                continue
            rows.append(one_test(name, test, treated, control))
    return rows


def main():
    cdf_rows, ppf_rows = t_values()
    fixture = {"scipy_version": scipy.__version__, "t_cdf": cdf_rows, "t_ppf": ppf_rows,
               "betainc": beta_values(), "compare": compare_values()}
    path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "statistics.json")
    with open(path, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.normpath(path)}: {len(cdf_rows)} cdf, {len(ppf_rows)} ppf, "
          f"{len(fixture['betainc'])} betainc, {len(fixture['compare'])} comparisons")


if __name__ == "__main__":
    main()
