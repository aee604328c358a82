// Phantom datasets in the real layouts (see phantom_writer.h). Images are generated in parallel
// (each from its own (seed, index) stream, so the output does not depend on the thread count) and
// CSV rows are assembled in index order afterwards.
#include "data/phantom_writer.h"

#include <unistd.h>  // getpid

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/csv.h"
#include "data/image_io.h"
#include "data/rle.h"
#include "data/rng.h"
#include "tensor/creation.h"
#include "tensor/error.h"

namespace cxr::data {

namespace fs = std::filesystem;

PhantomLayout parse_phantom_layout(std::string_view name) {
  if (name == "chexpert") return PhantomLayout::CheXpert;
  if (name == "rsna") return PhantomLayout::Rsna;
  if (name == "siim") return PhantomLayout::Siim;
  if (name == "candid-ptx") return PhantomLayout::CandidPtx;
  CXR_FAIL("phantoms: unknown layout '", name, "' (expected chexpert, rsna, siim or candid-ptx)");
}

const char* phantom_layout_name(PhantomLayout l) {
  switch (l) {
    case PhantomLayout::CheXpert:
      return "chexpert";
    case PhantomLayout::Rsna:
      return "rsna";
    case PhantomLayout::Siim:
      return "siim";
    case PhantomLayout::CandidPtx:
      return "candid-ptx";
  }
  return "?";
}

std::array<double, kNumFindings> default_prevalence(PhantomLayout l) {
  // Order: pneumothorax, effusion, cardiomegaly, consolidation, atelectasis, edema.
  switch (l) {
    case PhantomLayout::CheXpert:
      return {0.1, 0.3, 0.25, 0.2, 0.3, 0.2};
    case PhantomLayout::Rsna:
      return {0.05, 0.1, 0.1, 0.3, 0.1, 0.05};
    case PhantomLayout::Siim:
      return {0.3, 0.1, 0.1, 0.1, 0.1, 0.05};
    case PhantomLayout::CandidPtx:
      return {0.2, 0.1, 0.1, 0.1, 0.1, 0.05};
  }
  return {};
}

std::vector<std::vector<uint8_t>> connected_components(const uint8_t* mask, int64_t H, int64_t W) {
  std::vector<int32_t> label(size_t(H * W), -1);
  std::vector<std::vector<uint8_t>> out;
  std::vector<int64_t> stack;
  for (int64_t p0 = 0; p0 < H * W; ++p0) {
    if (!mask[p0] || label[size_t(p0)] >= 0) continue;
    const int32_t id = int32_t(out.size());
    out.emplace_back(size_t(H * W), uint8_t(0));
    std::vector<uint8_t>& comp = out.back();
    stack.push_back(p0);
    label[size_t(p0)] = id;
    while (!stack.empty()) {
      const int64_t p = stack.back();
      stack.pop_back();
      comp[size_t(p)] = 1;
      const int64_t y = p / W, x = p % W;
      const int64_t nb[4][2] = {{y - 1, x}, {y + 1, x}, {y, x - 1}, {y, x + 1}};
      for (const auto& n : nb) {
        if (n[0] < 0 || n[0] >= H || n[1] < 0 || n[1] >= W) continue;
        const int64_t q = n[0] * W + n[1];
        if (mask[q] && label[size_t(q)] < 0) {
          label[size_t(q)] = id;
          stack.push_back(q);
        }
      }
    }
  }
  return out;
}

namespace {

std::string hex(Rng& r, int digits) {
  static const char* k = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < digits; ++i) s += k[r.below(16)];
  return s;
}
std::string digits(Rng& r, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += char('0' + (i == 0 ? 1 + r.below(9) : r.below(10)));
  return s;
}
std::string fmt(const char* f, long long v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  CXR_CHECK(out.good(), "phantoms: cannot write ", path.string());
}

// Per-image identifiers of each layout, drawn from their own stream (independent of the images).
struct Ids {
  std::string id, study, series, patient;
};
Ids make_ids(PhantomLayout layout, uint64_t seed, int64_t i) {
  Generator g(mix_seed(seed ^ 0x1D5ull, uint64_t(i)));
  Rng r(g);
  Ids d;
  switch (layout) {
    case PhantomLayout::CheXpert:
      d.id = fmt("patient%05lld", i + 1);
      break;
    case PhantomLayout::Rsna:
      d.id = hex(r, 8) + "-" + hex(r, 4) + "-" + hex(r, 4) + "-" + hex(r, 4) + "-" + hex(r, 12);
      break;
    case PhantomLayout::Siim: {
      const std::string tail =
          fmt("%lld", 10000 + i) + "." + fmt("%lld", 1517875000 + i) + "." + digits(r, 6);
      d.id = "1.2.276.0.7230010.3.1.4.8323329." + tail;
      d.study = "1.2.276.0.7230010.3.1.2.8323329." + tail;
      d.series = "1.2.276.0.7230010.3.1.3.8323329." + tail;
      break;
    }
    case PhantomLayout::CandidPtx: {
      const std::string uid = "1.2.826.0.1.3680043.8.498." + digits(r, 20);
      d.id = uid + ".png";
      d.study = "1.2.826.0.1.3680043.8.498." + digits(r, 20);
      d.patient = fmt("P%05lld", i + 1);
      break;
    }
  }
  return d;
}

std::string label_str(bool v) {
  return v ? "1" : "0";
}

}  // namespace

PhantomDatasetSummary write_phantom_dataset(const std::string& out_dir,
                                            const PhantomDatasetOptions& o) {
  check_phantom_options(o.phantom);
  CXR_CHECK(o.count >= 1 && o.count <= 10000000, "phantoms: count must be in [1, 10^7], got ",
            o.count);
  CXR_CHECK(o.valid_fraction >= 0.0 && o.valid_fraction < 1.0,
            "phantoms: valid fraction must be in [0, 1), got ", o.valid_fraction);
  CXR_CHECK(o.uncertain >= 0.0 && o.uncertain <= 1.0, "phantoms: uncertain must be in [0, 1], got ",
            o.uncertain);
  CXR_CHECK(!out_dir.empty(), "phantoms: empty output folder");
  const fs::path final_dir = fs::path(out_dir).lexically_normal();
  CXR_CHECK(final_dir.has_filename(), "phantoms: output folder '", out_dir, "' has no name");
  CXR_CHECK(o.overwrite || !fs::exists(final_dir), "phantoms: output folder ", final_dir.string(),
            " already exists (use --force to replace it)");
  if (final_dir.has_parent_path()) fs::create_directories(final_dir.parent_path());
  const fs::path tmp = final_dir.string() + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  const int64_t n = o.count, S = o.phantom.size;
  const PhantomLayout L = o.layout;
  const int64_t n_valid = L == PhantomLayout::CheXpert
                              ? std::min(n - 1, int64_t(double(n) * o.valid_fraction + 0.5))
                              : 0;
  const size_t nn = static_cast<size_t>(n);
  std::vector<std::string> rows(nn), extra(nn), manifest(nn);
  std::vector<std::array<bool, kNumFindings>> labels(nn);
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  try {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) {
      try {
        if (failed.load()) continue;
        const PhantomSample s = make_phantom(o.phantom, o.seed, i);
        const Ids ids = make_ids(L, o.seed, i);
        labels[size_t(i)] = s.labels;
        std::string rel;  // image path relative to the root
        std::string& row = rows[size_t(i)];
        auto mask_rle_rows = [&](Finding f, const std::string& prefix, const std::string& suffix) {
          const Tensor& m = s.mask(f);
          std::vector<std::vector<uint8_t>> comps = connected_components(m.data<uint8_t>(), S, S);
          if (comps.empty()) return prefix + "-1" + suffix + "\n";
          std::string out;
          for (const auto& c : comps)
            out += prefix + rle_encode_relative(c.data(), S, S) + suffix + "\n";
          return out;
        };
        switch (L) {
          case PhantomLayout::CheXpert: {
            const bool valid = i >= n - n_valid;
            rel = std::string(valid ? "valid/" : "train/") + ids.id + "/study1/view1_frontal.png";
            Generator g(mix_seed(o.seed ^ 0xC4E7ull, uint64_t(i)));
            Rng r(g);
            const bool pa = r.bernoulli(0.4);
            const int64_t age = 18 + r.below(73);
            const char* sex = r.bernoulli(0.5) ? "Female" : "Male";
            auto v = [&](bool pos) -> std::string {
              if (pos) return (!valid && r.bernoulli(o.uncertain)) ? "-1.0" : "1.0";
              return valid ? "0.0" : "";
            };
            const auto& f = s.labels;
            const bool any = std::any_of(f.begin(), f.end(), [](bool b) { return b; });
            const bool ptx = f[0], eff = f[1], cm = f[2], con = f[3], atl = f[4], ede = f[5];
            row = "CheXpert-v1.0-small/" + rel + "," + sex + "," + std::to_string(age) +
                  ",Frontal," + (pa ? "PA" : "AP") + "," + v(!any) + "," + v(cm) + "," + v(cm) +
                  "," + v(con || atl || ede) + "," + v(false) + "," + v(ede) + "," + v(con) + "," +
                  v(false) + "," + v(atl) + "," + v(ptx) + "," + v(eff) + "," + v(false) + "," +
                  v(false) + "," + v(false) + "\n";
            break;
          }
          case PhantomLayout::Rsna: {
            rel = "stage_2_train_images/" + ids.id + ".png";
            const Tensor& m = s.mask(Finding::Consolidation);
            const auto comps = connected_components(m.data<uint8_t>(), S, S);
            if (comps.empty()) {
              row = ids.id + ",,,,,0\n";
            } else {
              for (const auto& c : comps) {
                int64_t x0 = S, y0 = S, x1 = -1, y1 = -1;
                for (int64_t p = 0; p < S * S; ++p)
                  if (c[size_t(p)]) {
                    x0 = std::min(x0, p % S), x1 = std::max(x1, p % S);
                    y0 = std::min(y0, p / S), y1 = std::max(y1, p / S);
                  }
                char b[160];
                std::snprintf(b, sizeof b, "%s,%.1f,%.1f,%.1f,%.1f,1\n", ids.id.c_str(), double(x0),
                              double(y0), double(x1 - x0 + 1), double(y1 - y0 + 1));
                row += b;
              }
            }
            const char* cls =
                s.has(Finding::Consolidation)
                    ? "Lung Opacity"
                    : (s.caption == "Normal" ? "Normal" : "No Lung Opacity / Not Normal");
            std::string& e = extra[size_t(i)];
            for (size_t k = 0, rowsn = std::max<size_t>(1, comps.size()); k < rowsn; ++k)
              e += ids.id + "," + cls + "\n";
            break;
          }
          case PhantomLayout::Siim:
            rel = "dicom-images-train/" + ids.study + "/" + ids.series + "/" + ids.id + ".png";
            row = mask_rle_rows(Finding::Pneumothorax, ids.id + ", ", "");
            break;
          case PhantomLayout::CandidPtx: {
            rel = "dataset/" + ids.id;
            const std::string report = csv_escape(
                "FINDINGS: " + s.caption + ". IMPRESSION: " +
                (s.has(Finding::Pneumothorax) ? s.caption : std::string("No pneumothorax.")));
            row = mask_rle_rows(Finding::Pneumothorax,
                                ids.id + "," + ids.study + "," + ids.patient + "_" + ids.id + ",",
                                "," + report);
            break;
          }
        }
        const fs::path img = tmp / rel;
        fs::create_directories(img.parent_path());
        write_png(img.string(), s.image);
        std::string& mf = manifest[size_t(i)];
        mf = csv_escape(L == PhantomLayout::CheXpert ? ids.id + "/study1/view1_frontal" : ids.id) +
             "," + csv_escape(rel) + "," + csv_escape(s.caption);
        for (bool b : s.labels) mf += "," + label_str(b);
        mf += "\n";
        if (!o.quiet && (i + 1) % 500 == 0) {
#pragma omp critical(cxr_phantom_progress)
          std::fprintf(stderr, "phantoms: %lld images\n", static_cast<long long>(i + 1));
        }
      } catch (...) {
#pragma omp critical(cxr_phantom_error)
        {
          if (!error) error = std::current_exception();
          failed = true;
        }
      }
    }
    if (error) std::rethrow_exception(error);

    std::string head, all_rows, extra_rows;
    auto cat = [&](int64_t a, int64_t b) {
      std::string s;
      for (int64_t i = a; i < b; ++i) s += rows[size_t(i)];
      return s;
    };
    switch (L) {
      case PhantomLayout::CheXpert: {
        head =
            "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,"
            "Lung Opacity,Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,"
            "Pleural Effusion,Pleural Other,Fracture,Support Devices\n";
        write_text(tmp / "train.csv", head + cat(0, n - n_valid));
        write_text(tmp / "valid.csv", head + cat(n - n_valid, n));
        break;
      }
      case PhantomLayout::Rsna: {
        write_text(tmp / "stage_2_train_labels.csv",
                   "patientId,x,y,width,height,Target\n" + cat(0, n));
        std::string e = "patientId,class\n";
        for (const auto& x : extra) e += x;
        write_text(tmp / "stage_2_detailed_class_info.csv", e);
        break;
      }
      case PhantomLayout::Siim:
        write_text(tmp / "train-rle.csv", "ImageId, EncodedPixels\n" + cat(0, n));
        break;
      case PhantomLayout::CandidPtx:
        write_text(tmp / "Pneumothorax_reports.csv",
                   "SOPInstanceUID,StudyInstanceUID,filename,EncodedPixels,Report\n" + cat(0, n));
        write_text(tmp / "chest_tube.csv", "anon_SOPUID,annotation_ref,mask_rle\n");
        write_text(tmp / "acute_rib_fracture.csv", "anon_SOPUID,annotation_ref,mask_rle\n");
        break;
    }
    std::string mf = "id,image,caption";
    for (int k = 0; k < kNumFindings; ++k) mf += std::string(",") + finding_name(Finding(k));
    mf += "\n";
    for (const auto& m : manifest) mf += m;
    write_text(tmp / "phantoms.csv", mf);

    // Into place: an existing folder (overwrite) is moved aside first and removed afterwards.
    fs::path old;
    if (fs::exists(final_dir)) {
      old = final_dir.string() + ".old-" + std::to_string(::getpid());
      fs::remove_all(old);
      fs::rename(final_dir, old);
    }
    fs::rename(tmp, final_dir);
    if (!old.empty()) fs::remove_all(old);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp);
    CXR_FAIL("phantoms: ", e.what());
  } catch (...) {
    fs::remove_all(tmp);
    throw;
  }
  PhantomDatasetSummary sum;
  sum.root = final_dir.string();
  sum.images = n;
  for (const auto& l : labels)
    for (int k = 0; k < kNumFindings; ++k) sum.positives[size_t(k)] += l[size_t(k)];
  return sum;
}

void write_phantom_sheet(const std::string& path, int64_t tile, uint64_t seed) {
  CXR_CHECK(tile >= 32 && tile <= 1024, "phantom sheet: tile must be in [32, 1024], got ", tile);
  PhantomOptions o;
  o.size = tile;
  const int64_t cols = 1 + kNumFindings, W = cols * tile, H = 2 * tile;
  Tensor sheet = raw::empty({3, H, W}, kUInt8);
  uint8_t* d = sheet.data<uint8_t>();
  for (int64_t c = 0; c < cols; ++c) {
    std::array<bool, kNumFindings> f{};
    if (c > 0) f[size_t(c - 1)] = true;
    const PhantomSample s = make_phantom_with(o, seed, c, f);
    const float* im = s.image.data<float>();
    const uint8_t* m = c > 0 ? s.masks[size_t(c - 1)].data<uint8_t>() : nullptr;
    for (int64_t y = 0; y < tile; ++y)
      for (int64_t x = 0; x < tile; ++x) {
        const uint8_t g = uint8_t(std::lround(std::clamp(im[y * tile + x], 0.f, 1.f) * 255.f));
        bool edge = false;
        if (m && m[y * tile + x]) {
          for (int k = 0; k < 4 && !edge; ++k) {
            const int64_t yy = y + (k == 0) - (k == 1), xx = x + (k == 2) - (k == 3);
            edge = yy < 0 || xx < 0 || yy >= tile || xx >= tile || !m[yy * tile + xx];
          }
        }
        for (int ch = 0; ch < 3; ++ch) {
          d[ch * H * W + y * W + c * tile + x] = g;
          d[ch * H * W + (tile + y) * W + c * tile + x] = edge ? (ch == 0 ? 255 : 0) : g;
        }
      }
  }
  write_png(path, sheet);
}

}  // namespace cxr::data
