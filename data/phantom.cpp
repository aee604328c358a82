// Procedural chest-X-ray phantoms (see phantom.h and docs/phantoms.md). Everything is computed in
// normalised coordinates x, y in [0, 1] (x to the image right = patient left, y downwards) so the
// same (seed, index) gives the same picture at any size. Intensities are built as an attenuation
// sum (air dark, soft tissue grey, bone bright), then mapped, blurred and given noise.
#include "data/phantom.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <vector>

#include "data/rng.h"
#include "tensor/creation.h"
#include "tensor/error.h"

namespace cxr::data {

const char* finding_name(Finding f) {
  switch (f) {
    case Finding::Pneumothorax:
      return "pneumothorax";
    case Finding::Effusion:
      return "effusion";
    case Finding::Cardiomegaly:
      return "cardiomegaly";
    case Finding::Consolidation:
      return "consolidation";
    case Finding::Atelectasis:
      return "atelectasis";
    case Finding::Edema:
      return "edema";
  }
  return "?";
}

void check_phantom_options(const PhantomOptions& o) {
  CXR_CHECK(o.size >= 32 && o.size <= 8192, "phantom: size must be in [32, 8192], got ", o.size);
  for (int f = 0; f < kNumFindings; ++f)
    CXR_CHECK(o.prevalence[size_t(f)] >= 0.0 && o.prevalence[size_t(f)] <= 1.0,
              "phantom: prevalence of ", finding_name(Finding(f)), " must be in [0, 1], got ",
              o.prevalence[size_t(f)]);
  CXR_CHECK(o.noise >= 0.0 && o.noise <= 0.5, "phantom: noise must be in [0, 0.5], got ", o.noise);
  CXR_CHECK(o.anatomy_jitter >= 0.0 && o.anatomy_jitter <= 3.0,
            "phantom: anatomy_jitter must be in [0, 3], got ", o.anatomy_jitter);
}

namespace {

constexpr double kPi = 3.141592653589793;

double clamp01(double v) {
  return std::min(1.0, std::max(0.0, v));
}
// 1 inside, 0 outside, linear over a band of half-width e around r = 1.
double soft_in(double r, double e) {
  return clamp01((1.0 + e - r) / (2.0 * e));
}

struct Ellipse {
  double cx, cy, ax, ay;
  double r(double x, double y) const {
    const double dx = (x - cx) / ax, dy = (y - cy) / ay;
    return std::sqrt(dx * dx + dy * dy);
  }
};

struct Anatomy {
  Ellipse body;
  Ellipse lung[2];  // 0 = patient right (image left), 1 = patient left (image right)
  double dome_top[2];
  double dome_drop;
  Ellipse heart;
  double rib_y0, rib_step, rib_curve;
  double clav_y;
  double exposure, gamma;
};

Anatomy draw_anatomy(Rng& r, double j) {
  Anatomy a{};
  auto n = [&](double s) { return j * s * std::clamp(r.normal(), -2.5, 2.5); };
  a.body = {0.5 + n(0.008), 0.60 + n(0.01), 0.45 + n(0.015), 0.56 + n(0.015)};
  const double spread = 0.175 + n(0.01), lcy = 0.44 + n(0.012);
  const double lax = 0.135 + n(0.01), lay = 0.30 + n(0.015);
  a.lung[0] = {0.5 - spread + n(0.004), lcy, lax + n(0.004), lay + n(0.006)};
  a.lung[1] = {0.5 + spread + n(0.004), lcy + 0.01, lax + n(0.004), lay + n(0.006)};
  a.dome_top[0] = 0.63 + n(0.012);  // the right hemidiaphragm sits higher
  a.dome_top[1] = 0.655 + n(0.012);
  a.dome_drop = 0.11 + n(0.01);
  a.heart = {0.535 + n(0.008), 0.575 + n(0.01), 0.12 + n(0.007), 0.125 + n(0.006)};
  a.rib_y0 = 0.16 + n(0.01);
  a.rib_step = 0.062 + n(0.003);
  a.rib_curve = 0.16 + n(0.015);
  a.clav_y = 0.15 + n(0.008);
  a.exposure = 1.0 + n(0.06);
  a.gamma = 1.0 + n(0.07);
  return a;
}

// Height of the diaphragm under lung `s` at x: highest at the middle of the hemithorax, dropping
// towards the costophrenic angle and the cardiophrenic side.
double dome_y(const Anatomy& a, int s, double x) {
  const double t = (x - a.lung[s].cx) / a.lung[s].ax;
  return a.dome_top[s] + a.dome_drop * t * t;
}

struct Segment {
  double x0, y0, x1, y1, w, amp;
};

// Branching vessel tree of one lung from its hilum outwards (a seeded random walk).
void grow_vessels(Rng& r, const Ellipse& lung, int side, std::vector<Segment>& out) {
  const double hx = lung.cx + (side == 0 ? 0.55 : -0.55) * lung.ax, hy = lung.cy + 0.06;
  struct Tip {
    double x, y, angle, w, amp;
    int depth;
  };
  std::vector<Tip> stack;
  const int trunks = 7;
  for (int k = 0; k < trunks; ++k) {
    // Directions fanning away from the mediastinum (image y points down).
    double ang = kPi * (0.55 + 0.95 * (k + r.uniform(0.2, 0.8)) / trunks);
    if (side == 1) ang = kPi - ang;
    stack.push_back({hx, hy, ang, 0.0065, 1.0, 0});
  }
  while (!stack.empty()) {
    Tip t = stack.back();
    stack.pop_back();
    for (int step = 0; step < 40; ++step) {
      const double len = 0.018 + 0.01 * r.uniform();
      const double nx = t.x + len * std::cos(t.angle), ny = t.y + len * std::sin(t.angle);
      if (lung.r(nx, ny) > 1.02 || t.w < 0.0011) break;
      out.push_back({t.x, t.y, nx, ny, t.w, t.amp});
      t.x = nx;
      t.y = ny;
      t.angle += 0.22 * r.normal();
      t.w *= 0.88;
      t.amp *= 0.93;
      if (t.depth < 3 && r.bernoulli(0.28))
        stack.push_back({t.x, t.y, t.angle + (r.bernoulli(0.5) ? 0.55 : -0.55), t.w * 0.8,
                         t.amp * 0.85, t.depth + 1});
    }
  }
}

// Draws segments into `map` (max of Gaussian line profiles).
void rasterise(const std::vector<Segment>& segs, int64_t S, std::vector<float>& map) {
  const double inv = 1.0 / double(S);
  for (const Segment& g : segs) {
    const double w = std::max(g.w, 0.7 * inv), reach = 3.0 * w;
    const int64_t i0 = std::max<int64_t>(0, int64_t((std::min(g.x0, g.x1) - reach) * S));
    const int64_t i1 = std::min<int64_t>(S - 1, int64_t((std::max(g.x0, g.x1) + reach) * S));
    const int64_t j0 = std::max<int64_t>(0, int64_t((std::min(g.y0, g.y1) - reach) * S));
    const int64_t j1 = std::min<int64_t>(S - 1, int64_t((std::max(g.y0, g.y1) + reach) * S));
    const double dx = g.x1 - g.x0, dy = g.y1 - g.y0, l2 = std::max(dx * dx + dy * dy, 1e-12);
    for (int64_t j = j0; j <= j1; ++j)
      for (int64_t i = i0; i <= i1; ++i) {
        const double x = (double(i) + 0.5) * inv, y = (double(j) + 0.5) * inv;
        const double t = std::clamp(((x - g.x0) * dx + (y - g.y0) * dy) / l2, 0.0, 1.0);
        const double ex = x - g.x0 - t * dx, ey = y - g.y0 - t * dy;
        const double v = g.amp * std::exp(-(ex * ex + ey * ey) / (2.0 * w * w));
        float& m = map[size_t(j * S + i)];
        m = std::max(m, float(v));
      }
  }
}

const char* side_name(int s) {
  return s == 0 ? "right" : "left";
}
const char* size_name(double severity) {
  return severity < 0.34 ? "small" : (severity < 0.67 ? "moderate" : "large");
}

}  // namespace

PhantomSample make_phantom(const PhantomOptions& options, uint64_t seed, int64_t index) {
  check_phantom_options(options);
  Generator g(mix_seed(seed, uint64_t(index) * 2 + 1));
  Rng r(g);
  std::array<bool, kNumFindings> f{};
  for (int k = 0; k < kNumFindings; ++k) f[size_t(k)] = r.bernoulli(options.prevalence[size_t(k)]);
  return make_phantom_with(options, seed, index, f);
}

PhantomSample make_phantom_with(const PhantomOptions& options, uint64_t seed, int64_t index,
                                const std::array<bool, kNumFindings>& findings) {
  check_phantom_options(options);
  CXR_CHECK(index >= 0, "phantom: index must be >= 0, got ", index);
  const int64_t S = options.size;
  const size_t N = size_t(S * S);
  const double inv = 1.0 / double(S);
  Generator g(mix_seed(seed, uint64_t(index) * 2));
  Rng r(g);
  Anatomy a = draw_anatomy(r, options.anatomy_jitter);

  PhantomSample out;
  out.labels = findings;
  out.side.fill(-1);
  auto has = [&](Finding fd) { return findings[size_t(fd)]; };
  std::vector<std::string> captions;

  // Finding parameters (all drawn, used or not, so one finding does not shift another's draws).
  const int ptx_side = int(r.below(2));
  const double ptx_sev = r.uniform();
  const double ptx_c = 0.93 - 0.38 * ptx_sev;  // collapse factor of the lung
  const int eff_side = int(r.below(2));
  const double eff_sev = r.uniform();
  const double eff_h = 0.04 + 0.16 * eff_sev;
  const double cm_scale = r.uniform(1.35, 1.65);
  const int con_side = int(r.below(2));
  const bool con_lower = r.bernoulli(0.6);
  double con_x[6], con_y[6], con_s[6];
  for (int k = 0; k < 6; ++k) {
    con_x[k] = r.normal(0, 0.035);
    con_y[k] = r.normal(0, 0.03);
    con_s[k] = r.uniform(0.02, 0.04);
  }
  const int atl_side = int(r.below(2));
  const double atl_len = r.uniform(0.12, 0.2), atl_th = r.uniform(0.014, 0.028);
  const double atl_tilt = r.uniform(-0.25, 0.25), atl_h = r.uniform(0.04, 0.09);
  const double ede_amp = r.uniform(0.10, 0.16);

  if (has(Finding::Cardiomegaly)) {
    a.heart.ax *= cm_scale;
    a.heart.ay *= 1.0 + 0.3 * (cm_scale - 1.0);
    a.heart.cx += 0.02 * (cm_scale - 1.0);
    out.side[size_t(Finding::Cardiomegaly)] = 2;
    captions.push_back("cardiomegaly");
  }
  if (has(Finding::Atelectasis)) a.dome_top[atl_side] -= 0.025;  // volume loss lifts the dome

  // Vessels (before findings hide them).
  std::vector<Segment> segs;
  for (int s = 0; s < 2; ++s) grow_vessels(r, a.lung[s], s, segs);
  std::vector<float> vessels(N, 0.f);
  rasterise(segs, S, vessels);

  // Consolidation centre and atelectasis band geometry.
  const Ellipse& cl = a.lung[con_side];
  const double con_cx = cl.cx + (con_side == 0 ? -0.2 : 0.2) * cl.ax;
  const double con_cy = con_lower ? a.dome_top[con_side] - 0.09 : cl.cy - 0.12;
  const Ellipse& al = a.lung[atl_side];
  const double atl_cx = al.cx, atl_cy = a.dome_top[atl_side] - atl_h;

  std::vector<float> img(N);
  std::vector<uint8_t> m_lung(N), m_heart(N);
  std::array<std::vector<uint8_t>, kNumFindings> m;
  for (auto& v : m) v.assign(N, 0);

  for (int64_t j = 0; j < S; ++j) {
    const double y = (double(j) + 0.5) * inv;
    for (int64_t i = 0; i < S; ++i) {
      const double x = (double(i) + 0.5) * inv;
      const size_t p = size_t(j * S + i);
      const double e = 1.2 * inv;  // edge half-width (about one pixel)
      double att = 0.0;
      // Body, neck and shoulders.
      const double body = soft_in(a.body.r(x, y), e / a.body.ax);
      const double neck = clamp01((0.075 - std::abs(x - 0.5)) / (2 * e)) * (y < 0.2 ? 1.0 : 0.0);
      const double tissue = std::max(body, neck);
      att += 0.55 * tissue;
      // Abdomen below the domes is a bit denser.
      const int near = x < 0.5 ? 0 : 1;
      if (y > dome_y(a, near, x)) att += 0.06 * body;
      // Lungs (soft), with pneumothorax collapse.
      double lung_air = 0.0, marks = 0.0;
      for (int s = 0; s < 2; ++s) {
        const Ellipse& L = a.lung[s];
        const double dome = dome_y(a, s, x);
        const double in = soft_in(L.r(x, y), e / L.ax) * clamp01((dome - y) / (2 * e) + 0.5);
        if (in <= 0.0) continue;
        if (in > 0.5) m_lung[p] = 1;
        double visible = in;
        if (has(Finding::Pneumothorax) && s == ptx_side) {
          // The collapsed lung: the field scaled by ptx_c about a low medial point.
          const double px0 = L.cx + (s == 0 ? 0.5 : -0.5) * L.ax, py0 = dome;
          const double cx = px0 + (x - px0) / ptx_c, cy = py0 + (y - py0) / ptx_c;
          const double rc = L.r(cx, cy);
          const double inc = soft_in(rc, e / (L.ax * ptx_c));
          visible = in * inc;
          const double gap = in * (1.0 - inc);
          if (gap > 0.5) m[size_t(Finding::Pneumothorax)][p] = 1;
          att -= 0.05 * gap;  // no lung tissue: darker than the lung
          // Visceral pleural line: a thin bright curve on the collapsed edge.
          const double d = (rc - 1.0) * L.ax * ptx_c;
          att += 0.10 * in * std::exp(-d * d / (2.0 * 0.0025 * 0.0025));
        }
        if (has(Finding::Effusion) && s == eff_side) {
          const double lat = clamp01(0.5 + (s == 0 ? -1.0 : 1.0) * (x - L.cx) / (2 * L.ax));
          const double top = dome - eff_h * (0.4 + 1.0 * lat);  // meniscus rises laterally
          const double fl = clamp01((y - top) / (2 * e) + 0.5) * in;
          if (fl > 0.5) m[size_t(Finding::Effusion)][p] = 1;
          att += 0.36 * fl;
          visible *= 1.0 - fl;
        }
        lung_air = std::max(lung_air, in);
        marks = std::max(marks, visible);
      }
      // Heart.
      const double h = soft_in(a.heart.r(x, y), e / a.heart.ax) *
                       (y > a.heart.cy - 0.75 * a.heart.ay ? 1.0 : 0.0);
      if (h > 0.5) m_heart[p] = 1;
      att += 0.12 * h;
      if (has(Finding::Cardiomegaly) && h > 0.5) m[size_t(Finding::Cardiomegaly)][p] = 1;
      att -= 0.38 * lung_air * (1.0 - 0.7 * h);
      att += 0.13 * vessels[p] * marks;
      // Mediastinum and spine.
      const double med_w = 0.055 + 0.04 * clamp01((y - 0.1) / 0.5);
      if (y > 0.04 && y < a.heart.cy)
        att += 0.16 * clamp01((med_w - std::abs(x - 0.505)) / (2 * e));
      att += 0.07 * clamp01((0.03 - std::abs(x - 0.5)) / (2 * e)) * tissue;
      // Ribs: posterior arcs within the thorax, and clavicles.
      const double t = std::abs(x - 0.5) / 0.38;
      if (t < 1.05 && body > 0.5) {
        double rib = 0.0;
        for (int k = 0; k < 10; ++k) {
          const double ry = a.rib_y0 + k * a.rib_step - 0.03 * t + a.rib_curve * t * t;
          const double d = std::abs(y - ry) / (0.011 + 0.002 * k);
          rib = std::max(rib, clamp01(1.0 - d * d) * (0.6 + 0.4 * clamp01(d * 1.5)));
        }
        att += 0.10 * rib * clamp01((1.05 - t) * 8);
        const double cy = a.clav_y + 0.05 * (t - 0.5) * (t - 0.5) - 0.02 * t;
        if (t > 0.08 && t < 0.75) att += 0.14 * clamp01(1.0 - std::pow((y - cy) / 0.013, 2.0));
      }
      // Consolidation: clustered fluffy opacity inside one lung.
      if (has(Finding::Consolidation)) {
        double c = 0.0;
        for (int k = 0; k < 6; ++k) {
          const double dx = x - con_cx - con_x[k], dy = y - con_cy - con_y[k];
          c += std::exp(-(dx * dx + dy * dy) / (2 * con_s[k] * con_s[k]));
        }
        const double in = a.lung[con_side].r(x, y) < 1.0 && y < dome_y(a, con_side, x) ? 1.0 : 0.0;
        const double op = clamp01((c - 0.35) / 0.5) * in;
        if (op > 0.3) m[size_t(Finding::Consolidation)][p] = 1;
        att += 0.22 * op;
      }
      // Atelectasis: a plate-like band above the raised dome.
      if (has(Finding::Atelectasis)) {
        const double ux = x - atl_cx, uy = y - atl_cy;
        const double along = ux * std::cos(atl_tilt) + uy * std::sin(atl_tilt);
        const double across = -ux * std::sin(atl_tilt) + uy * std::cos(atl_tilt);
        const double in = a.lung[atl_side].r(x, y) < 1.0 && y < dome_y(a, atl_side, x) ? 1.0 : 0.0;
        const double band = clamp01(1.0 - std::abs(across) / atl_th) *
                            clamp01((atl_len * 0.5 - std::abs(along)) / 0.01) * in;
        if (band > 0.25) m[size_t(Finding::Atelectasis)][p] = 1;
        att += 0.24 * std::min(1.0, band * 1.6);
      }
      // Edema: perihilar ("bat wing") haze in both lungs.
      if (has(Finding::Edema) && lung_air > 0.0) {
        double hz = 0.0;
        for (int s = 0; s < 2; ++s) {
          const Ellipse& L = a.lung[s];
          const double hx = L.cx + (s == 0 ? 0.45 : -0.45) * L.ax, hy = L.cy + 0.05;
          const double dx = (x - hx) / (1.1 * L.ax), dy = (y - hy) / (0.55 * L.ay);
          hz = std::max(hz, std::exp(-(dx * dx + dy * dy)));
        }
        hz *= lung_air;
        if (hz > 0.45) m[size_t(Finding::Edema)][p] = 1;
        att += ede_amp * hz;
      }
      img[p] = float(att);
    }
  }
  // Kerley B lines at the lateral bases with edema: short horizontal lines.
  if (has(Finding::Edema)) {
    std::vector<Segment> kb;
    for (int s = 0; s < 2; ++s)
      for (int k = 0; k < 4; ++k) {
        const Ellipse& L = a.lung[s];
        const double xe =
            L.cx + (s == 0 ? -0.95 : 0.95) * L.ax * std::sqrt(std::max(0.0, 1.0 - 0.5 * 0.5));
        const double yk = dome_y(a, s, xe) - 0.02 - 0.018 * k;
        kb.push_back({xe, yk, xe + (s == 0 ? 0.035 : -0.035), yk, 0.0018, 0.06});
      }
    std::vector<float> km(N, 0.f);
    rasterise(kb, S, km);
    for (size_t p = 0; p < N; ++p) img[p] += km[p];
    out.side[size_t(Finding::Edema)] = 2;
    captions.push_back("pulmonary edema");
  }

  // Blur with a [1 2 1]/4 separable kernel, about once per 256 pixels of side (same look at any
  // size).
  std::vector<float> tmp(N);
  const int passes = int(std::max<int64_t>(1, S / 256));
  for (int it = 0; it < passes; ++it) {
    for (int64_t j = 0; j < S; ++j)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t il = std::max<int64_t>(0, i - 1), ir = std::min(S - 1, i + 1);
        tmp[size_t(j * S + i)] = 0.25f * img[size_t(j * S + il)] + 0.5f * img[size_t(j * S + i)] +
                                 0.25f * img[size_t(j * S + ir)];
      }
    for (int64_t j = 0; j < S; ++j)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t ju = std::max<int64_t>(0, j - 1), jd = std::min(S - 1, j + 1);
        img[size_t(j * S + i)] = 0.25f * tmp[size_t(ju * S + i)] + 0.5f * tmp[size_t(j * S + i)] +
                                 0.25f * tmp[size_t(jd * S + i)];
      }
  }
  // Exposure, gamma and noise.
  Tensor image = raw::empty({S, S}, kFloat32);
  float* dst = image.data<float>();
  for (size_t p = 0; p < N; ++p) {
    const double v = clamp01(0.04 + 0.95 * a.exposure * double(img[p]));
    dst[p] = float(clamp01(std::pow(v, a.gamma) + options.noise * r.normal()));
  }
  out.image = image;
  auto to_tensor = [&](const std::vector<uint8_t>& v) {
    Tensor t = raw::empty({S, S}, kUInt8);
    std::copy(v.begin(), v.end(), t.data<uint8_t>());
    return t;
  };
  out.lungs = to_tensor(m_lung);
  out.heart = to_tensor(m_heart);
  for (int k = 0; k < kNumFindings; ++k) out.masks[size_t(k)] = to_tensor(m[size_t(k)]);

  // Captions in a fixed order.
  std::vector<std::string> c;
  if (has(Finding::Pneumothorax)) {
    out.side[size_t(Finding::Pneumothorax)] = ptx_side;
    c.push_back(std::string(size_name(ptx_sev)) + " " + side_name(ptx_side) +
                (ptx_sev < 0.34 ? " apical" : "") + " pneumothorax");
  }
  if (has(Finding::Effusion)) {
    out.side[size_t(Finding::Effusion)] = eff_side;
    c.push_back(std::string(size_name(eff_sev)) + " " + side_name(eff_side) + " pleural effusion");
  }
  if (has(Finding::Consolidation)) {
    out.side[size_t(Finding::Consolidation)] = con_side;
    c.push_back(std::string(side_name(con_side)) + (con_lower ? " lower" : " upper") +
                " lobe consolidation");
  }
  if (has(Finding::Atelectasis)) {
    out.side[size_t(Finding::Atelectasis)] = atl_side;
    c.push_back(std::string(side_name(atl_side)) + " basal atelectasis");
  }
  for (const auto& s : captions) c.push_back(s);
  if (c.empty()) {
    out.caption = "Normal";
  } else {
    for (size_t k = 0; k < c.size(); ++k) out.caption += (k ? "; " : "") + c[k];
    out.caption[0] = char(std::toupper(static_cast<unsigned char>(out.caption[0])));
  }
  return out;
}

}  // namespace cxr::data
