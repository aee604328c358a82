// The study report (study_report.h).
#include "experiments/study_report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "data/csv.h"
#include "experiments/plot.h"
#include "experiments/run_log.h"
#include "experiments/study.h"
#include "tensor/error.h"
#include "tensor/file_io.h"

namespace cxr::experiments {

namespace fs = std::filesystem;

namespace {

std::string fmt(double v, int digits = 4) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}
std::string fmt_signed(double v, int digits = 4) {
  return (v >= 0 ? "+" : "") + fmt(v, digits);
}
// P values keep their significant digits however small.
std::string fmt_p(double p) {
  char buf[64];
  std::snprintf(buf, sizeof buf, p < 1e-4 ? "%.2e" : "%.4f", p);
  return buf;
}
// Full precision for the CSV files: the same double when read back.
std::string num(double v) {
  return format_number(v, 17);
}

// "welch" -> "Welch" for prose.
std::string test_title(TTest test) {
  std::string name = t_test_name(test);
  name[0] = char(std::toupper(static_cast<unsigned char>(name[0])));
  return name;
}

std::string multiplier_label(int64_t m) {
  return m == 0 ? "real only" : std::to_string(m) + "x";
}

// Every result of the run that its config expects, in grid order.
std::vector<CellResult> read_results(const StudyConfig& s, const fs::path& run_dir,
                                     std::vector<std::string>* missing) {
  std::vector<CellResult> out;
  for (const StudyTask& t : s.tasks)
    for (double f : s.fractions)
      for (int64_t m : s.multipliers)
        for (uint64_t seed : s.seeds) {
          const CellKey k{t.name, f, m, seed};
          std::string problem;
          auto r =
              read_cell_result((run_dir / "results" / (k.id() + ".json")).string(), k, &problem);
          if (r)
            out.push_back(std::move(*r));
          else
            missing->push_back(k.id() + (problem.empty() ? "" : " (corrupt: " + problem + ")"));
        }
  return out;
}

// The per-trial table.
std::string results_csv(const std::vector<CellResult>& results) {
  std::string out =
      "task,kind,dataset,model,fraction,multiplier,seed,metric,value,metric_key,other_metrics,"
      "train_real,train_synthetic,test_images,generator,generator_sha256,study_config_sha256,"
      "cell_config_sha256,seconds\n";
  for (const CellResult& r : results) {
    const nlohmann::json& p = r.provenance;
    // The other scalar test metrics, "name=value" joined by ';'.
    std::string others;
    for (const auto& [key, value] : r.test.items())
      if (value.is_number() && key != p.value("metric_key", ""))
        others += (others.empty() ? "" : ";") + key + "=" + num(value.get<double>());
    const std::vector<std::string> fields = {r.cell.task,
                                             p.value("kind", ""),
                                             p.value("dataset", ""),
                                             p.value("model", ""),
                                             num(r.cell.fraction),
                                             std::to_string(r.cell.multiplier),
                                             std::to_string(r.cell.seed),
                                             p.value("metric", ""),
                                             num(r.metric),
                                             p.value("metric_key", ""),
                                             others,
                                             p.value("train_real", nlohmann::json(0)).dump(),
                                             p.value("train_synthetic", nlohmann::json(0)).dump(),
                                             p.value("test_images", nlohmann::json(0)).dump(),
                                             p.value("generator", ""),
                                             p.value("generator_sha256", ""),
                                             p.value("study_config_sha256", ""),
                                             p.value("cell_config_sha256", ""),
                                             fmt(p.value("seconds", 0.0), 1)};
    for (size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + data::csv_escape(fields[i]);
    out += "\n";
  }
  return out;
}

std::string summary_csv(const StudyConfig& s, const std::vector<TaskSummary>& summaries) {
  std::string out =
      "task,metric,fraction,multiplier,n,mean,sd,test,delta,ci_level,ci_low,ci_high,t,df,"
      "p_one_sided,family_size,p_bonferroni,significant\n";
  for (size_t i = 0; i < s.tasks.size(); ++i)
    for (const TaskSummary::Arm& a : summaries[i].arms) {
      out += s.tasks[i].name + "," + s.tasks[i].metric + "," + num(a.fraction) + "," +
             std::to_string(a.multiplier) + "," + std::to_string(a.values.size()) + "," +
             (a.values.empty() ? "," : num(mean_of(a.values)) + "," + num(sample_sd(a.values))) +
             ",";
      if (a.vs_real) {
        const Comparison& c = *a.vs_real;
        out += std::string(t_test_name(s.test)) + "," + num(c.delta) + "," + num(s.confidence) +
               "," + num(c.ci_low) + "," + num(c.ci_high) + "," + num(c.t) + "," + num(c.df) + "," +
               num(c.p_one_sided) + "," + std::to_string(summaries[i].family) + "," +
               num(c.p_bonferroni) + "," + (c.significant ? "true" : "false");
      } else {
        out += ",,,,,,,,,,";
      }
      out += "\n";
    }
  return out;
}

// One table model, rendered as Markdown and as HTML: rows fractions, columns multipliers.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

Table task_table(const StudyConfig& s, const TaskSummary& sum) {
  Table t;
  t.header.push_back("real data");
  for (int64_t m : s.multipliers) t.header.push_back(multiplier_label(m));
  for (double f : s.fractions) {
    std::vector<std::string> row = {fraction_label(f) + "%"};
    for (int64_t m : s.multipliers) {
      const auto it = std::find_if(sum.arms.begin(), sum.arms.end(), [&](const auto& a) {
        return a.fraction == f && a.multiplier == m;
      });
      std::string cell = "missing";
      if (it != sum.arms.end() && !it->values.empty()) {
        cell = fmt(mean_of(it->values)) + " ± " + fmt(sample_sd(it->values)) +
               " (n=" + std::to_string(it->values.size()) + ")";
        if (it->vs_real) {
          const Comparison& c = *it->vs_real;
          cell += "; Δ " + fmt_signed(c.delta) + " [" + fmt(c.ci_low) + ", " + fmt(c.ci_high) +
                  "], P " + fmt_p(c.p_one_sided) + (c.significant ? " *" : "");
        }
      }
      row.push_back(cell);
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

std::string markdown(const Table& t) {
  auto line = [](const std::vector<std::string>& cells) {
    std::string s = "|";
    for (const auto& c : cells) s += " " + c + " |";
    return s + "\n";
  };
  std::string out = line(t.header) + "|";
  for (size_t i = 0; i < t.header.size(); ++i) out += "---|";
  out += "\n";
  for (const auto& r : t.rows) out += line(r);
  return out;
}

std::string html_table(const Table& t) {
  std::string out = "<table>\n<tr>";
  for (const auto& h : t.header) out += "<th>" + xml_escape(h) + "</th>";
  out += "</tr>\n";
  for (const auto& r : t.rows) {
    out += "<tr>";
    for (const auto& c : r) out += "<td>" + xml_escape(c) + "</td>";
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

// RFC 4648 base64, for the PNG data URIs of report.html.
std::string base64(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 |
                       uint8_t(bytes[i + 2]);
    for (int k = 3; k >= 0; --k) out += kAlphabet[(v >> (6 * k)) & 63];
  }
  if (i < bytes.size()) {
    const bool two = i + 1 < bytes.size();
    const uint32_t v =
        uint32_t(uint8_t(bytes[i])) << 16 | (two ? uint32_t(uint8_t(bytes[i + 1])) << 8 : 0);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += two ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string headline(const StudyConfig& s, const StudyTask& t, const TaskSummary& sum) {
  if (sum.best < 0) return "No comparison yet (each arm needs 2 finished trials).";
  const TaskSummary::Arm& best = sum.arms[size_t(sum.best)];
  const Comparison& c = *best.vs_real;
  return "Largest mean difference from real-only training: " + metric_display_name(t) + " " +
         fmt_signed(c.delta) + " with " + multiplier_label(best.multiplier) +
         " synthetic data at " + fraction_label(best.fraction) + "% real data (" +
         fmt(100 * s.confidence, 0) + "% CI " + fmt(c.ci_low) + " to " + fmt(c.ci_high) +
         "; one-tailed " + test_title(s.test) + " t = " + fmt(c.t, 3) + ", df = " + fmt(c.df, 2) +
         ", P = " + fmt_p(c.p_one_sided) + "; Bonferroni over " + std::to_string(sum.family) +
         " comparisons: P = " + fmt_p(c.p_bonferroni) +
         (c.significant ? ", significant" : ", not significant") + " at " + fmt(s.alpha, 2) + ").";
}

LinePlot task_plot(const StudyConfig& s, const StudyTask& t, const TaskSummary& sum) {
  LinePlot p;
  p.title = t.name + ": test " + metric_display_name(t) + " vs synthetic data";
  p.x_label = "synthetic images per real image";
  p.y_label = "test " + metric_display_name(t) + " (mean +/- sd)";
  for (int64_t m : s.multipliers) p.categories.push_back(m == 0 ? "0" : std::to_string(m) + "x");
  for (double f : s.fractions) {
    Series series;
    series.name = fraction_label(f) + "% real";
    for (int64_t m : s.multipliers) {
      const auto it = std::find_if(sum.arms.begin(), sum.arms.end(), [&](const auto& a) {
        return a.fraction == f && a.multiplier == m;
      });
      const bool has = it != sum.arms.end() && !it->values.empty();
      series.y.push_back(has ? mean_of(it->values) : NAN);
      series.err.push_back(has ? sample_sd(it->values) : 0.0);
    }
    p.series.push_back(std::move(series));
  }
  // The metrics live in [0, 1]: show that whole range unless an error bar leaves it.
  bool inside = true;
  for (const Series& series : p.series)
    for (size_t i = 0; i < series.y.size(); ++i)
      if (!std::isnan(series.y[i]))
        inside &= series.y[i] - series.err[i] >= 0 && series.y[i] + series.err[i] <= 1;
  if (inside) {
    p.y_min = 0;
    p.y_max = 1;
  }
  return p;
}

}  // namespace

TaskSummary summarize_task(const StudyConfig& s, const StudyTask& t,
                           const std::vector<CellResult>& results) {
  TaskSummary sum;
  for (double f : s.fractions)
    for (int64_t m : s.multipliers) {
      TaskSummary::Arm a;
      a.fraction = f;
      a.multiplier = m;
      for (uint64_t seed : s.seeds)
        for (const CellResult& r : results)
          if (r.cell == CellKey{t.name, f, m, seed}) {
            a.values.push_back(r.metric);
            a.seeds.push_back(seed);
          }
      sum.arms.push_back(std::move(a));
    }
  // Each synthetic arm against the real-only arm of its fraction.
  std::vector<Comparison> family;
  std::vector<size_t> compared;
  for (size_t ai = 0; ai < sum.arms.size(); ++ai) {
    const TaskSummary::Arm& a = sum.arms[ai];
    if (a.multiplier == 0) continue;
    const TaskSummary::Arm& real = *std::find_if(sum.arms.begin(), sum.arms.end(), [&](auto& x) {
      return x.fraction == a.fraction && x.multiplier == 0;
    });
    std::vector<double> treated = a.values, control = real.values;
    if (s.test == TTest::Paired) {  // trial k of each arm: the same seed
      treated.clear();
      control.clear();
      for (size_t i = 0; i < a.seeds.size(); ++i)
        for (size_t j = 0; j < real.seeds.size(); ++j)
          if (a.seeds[i] == real.seeds[j]) {
            treated.push_back(a.values[i]);
            control.push_back(real.values[j]);
          }
    }
    if (treated.size() < 2 || control.size() < 2) continue;
    family.push_back(compare_means(treated, control, s.test, s.confidence));
    compared.push_back(ai);
  }
  bonferroni(family, s.alpha);
  sum.family = int64_t(family.size());
  for (size_t i = 0; i < family.size(); ++i) {
    sum.arms[compared[i]].vs_real = family[i];
    if (sum.best < 0 || family[i].delta > sum.arms[size_t(sum.best)].vs_real->delta)
      sum.best = int64_t(compared[i]);
  }
  return sum;
}

std::string write_study_report(const std::string& run_dir_str) {
  const fs::path run_dir = fs::absolute(run_dir_str);
  const StudyConfig s = load_run_config(run_dir.string());
  std::vector<std::string> missing;
  const std::vector<CellResult> results = read_results(s, run_dir, &missing);
  std::vector<TaskSummary> summaries;
  for (const StudyTask& t : s.tasks) summaries.push_back(summarize_task(s, t, results));

  write_file_atomic((run_dir / "results.csv").string(), results_csv(results), "results.csv");
  const std::string summary = summary_csv(s, summaries);
  write_file_atomic((run_dir / "summary.csv").string(), summary, "summary.csv");

  const fs::path report = run_dir / "report";
  fs::create_directories(report);
  std::string text = "\nstudy " + s.name + ": " + std::to_string(results.size()) + " trials";
  if (!missing.empty()) text += ", " + std::to_string(missing.size()) + " missing";
  text += " (" + test_title(s.test) + " t-test, one-tailed; * = significant after " +
          "Bonferroni at " + fmt(s.alpha, 2) + ")\n";
  std::string html =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>SynthCXR study " +
      xml_escape(s.name) +
      "</title>\n<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 "
      "1em}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px "
      "8px;font-size:90%}th{background:#eee}img,svg{max-width:100%}</style></head><body>\n<h1>"
      "Study " +
      xml_escape(s.name) + "</h1>\n<p>" + std::to_string(results.size()) +
      " trials. Each cell: mean ± sd of the test metric over trials; Δ: the mean improvement "
      "over real-only training at the same real-data fraction, with its " +
      fmt(100 * s.confidence, 0) + "% confidence interval and one-tailed " + test_title(s.test) +
      " t-test P; * marks significance after Bonferroni correction over "
      "the task's comparisons at α = " +
      fmt(s.alpha, 2) + ".</p>\n";

  for (size_t i = 0; i < s.tasks.size(); ++i) {
    const StudyTask& t = s.tasks[i];
    const Table table = task_table(s, summaries[i]);
    const std::string line = headline(s, t, summaries[i]);
    const std::string md = "# " + t.name + " — test " + metric_display_name(t) + " (" +
                           metric_json_key(t) + ")\n\n" + markdown(table) + "\n" + line + "\n";
    write_file_atomic((report / (t.name + ".md")).string(), md, "report");
    const LinePlot plot = task_plot(s, t, summaries[i]);
    const std::string svg = render_svg(plot);
    write_file_atomic((report / (t.name + ".svg")).string(), svg, "report");
    write_plot_png((report / (t.name + ".png")).string(), plot);
    text +=
        "\n" + t.name + " (test " + metric_display_name(t) + ")\n" + markdown(table) + line + "\n";
    html += "<h2>" + xml_escape(t.name) + " — test " + xml_escape(metric_display_name(t)) +
            "</h2>\n" + html_table(table) + "<p>" + xml_escape(line) + "</p>\n" + svg + "\n";
    const fs::path sheet = report / (t.name + "_samples.png");
    if (fs::exists(sheet))
      html += "<h3>Real (top) and synthetic images</h3>\n<img alt=\"samples of " +
              xml_escape(t.name) + "\" src=\"data:image/png;base64," +
              base64(read_file(sheet.string(), "report")) + "\">\n";
  }
  if (!missing.empty()) {
    html += "<h2>Missing cells</h2>\n<ul>\n";
    for (const auto& m : missing) html += "<li>" + xml_escape(m) + "</li>\n";
    html += "</ul>\n";
  }
  html += "<h2>Every trial</h2>\n<details><summary>results.csv</summary><pre>" +
          xml_escape(results_csv(results)) + "</pre></details>\n" +
          "<details><summary>summary.csv</summary><pre>" + xml_escape(summary) +
          "</pre></details>\n</body></html>\n";
  write_file_atomic((report / "report.html").string(), html, "report.html");
  write_file_atomic((report / "trials.csv").string(), results_csv(results), "trials.csv");
  text += "report: " + (report / "report.html").string() + "\n";
  return text;
}

}  // namespace cxr::experiments
