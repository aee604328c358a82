#include "data/dicom.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <mutex>

#include "data/image_io.h"
#include "tensor/creation.h"
#include "tensor/error.h"

#ifdef CXR_HAVE_DCMTK
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#endif
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif

namespace cxr::data {

bool looks_like_dicom(const std::string& path) {
  if (path.size() > 4) {
    std::string ext = path.substr(path.size() - 4);
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    if (ext == ".dcm") return true;
  }
  std::ifstream in(path, std::ios::binary);
  char buf[132] = {};
  in.read(buf, 132);
  return in.gcount() == 132 && std::memcmp(buf + 128, "DICM", 4) == 0;
}

#ifndef CXR_HAVE_DCMTK

bool dicom_supported() {
  return false;
}

DicomPixels read_dicom_pixels(const std::string& path) {
  CXR_FAIL(path,
           ": cannot read DICOM: this SynthCXR build has no DICOM support. Install DCMTK "
           "(Debian: apt-get install libdcmtk-dev, or scripts/setup.sh) and reconfigure "
           "with cmake -DCXR_WITH_DCMTK=ON");
}

#else

bool dicom_supported() {
  return true;
}

namespace {

void register_codecs() {
  static std::once_flag once;
  std::call_once(once, [] {
    DJDecoderRegistration::registerCodecs();      // JPEG baseline/extended/lossless (dcmjpeg)
    DJLSDecoderRegistration::registerCodecs();    // JPEG-LS (dcmjpls)
    DcmRLEDecoderRegistration::registerCodecs();  // RLE lossless
  });
}

std::string get_string(DcmDataset* ds, const DcmTagKey& tag) {
  OFString v;
  if (ds->findAndGetOFString(tag, v).good()) return std::string(v.c_str());
  return "";
}

long get_long(DcmDataset* ds, const DcmTagKey& tag, const std::string& path, const char* name,
              bool required, long fallback = 0) {
  Uint16 v16 = 0;
  if (ds->findAndGetUint16(tag, v16).good()) return long(v16);
  CXR_CHECK(!required, path, ": missing DICOM attribute ", name);
  return fallback;
}

double get_double(DcmDataset* ds, const DcmTagKey& tag, double fallback) {
  Float64 v = 0;
  if (ds->findAndGetFloat64(tag, v).good()) return double(v);
  return fallback;
}

}  // namespace

DicomPixels read_dicom_pixels(const std::string& path) {
  register_codecs();
  {
    std::ifstream probe(path, std::ios::binary);
    CXR_CHECK(probe.good(), path, ": cannot open file (missing or unreadable)");
  }
  DcmFileFormat file;
  OFCondition st =
      file.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect);
  CXR_CHECK(st.good(), path, ": not a readable DICOM file (", st.text(), ")");
  DcmDataset* ds = file.getDataset();
  DicomPixels px;
  const E_TransferSyntax xfer = ds->getOriginalXfer();
  DcmXfer xf(xfer);
  px.transfer_syntax = xf.getXferID() ? xf.getXferID() : "";
  px.rows = get_long(ds, DCM_Rows, path, "Rows (0028,0010)", true);
  px.columns = get_long(ds, DCM_Columns, path, "Columns (0028,0011)", true);
  px.bits_allocated = int(get_long(ds, DCM_BitsAllocated, path, "BitsAllocated (0028,0100)", true));
  px.bits_stored = int(get_long(ds, DCM_BitsStored, path, "", false, px.bits_allocated));
  px.high_bit = int(get_long(ds, DCM_HighBit, path, "", false, px.bits_stored - 1));
  px.is_signed = get_long(ds, DCM_PixelRepresentation, path, "", false, 0) == 1;
  const long spp = get_long(ds, DCM_SamplesPerPixel, path, "", false, 1);
  px.photometric = get_string(ds, DCM_PhotometricInterpretation);
  if (px.photometric.empty()) px.photometric = "MONOCHROME2";
  px.slope = get_double(ds, DCM_RescaleSlope, 1.0);
  px.intercept = get_double(ds, DCM_RescaleIntercept, 0.0);
  CXR_CHECK(spp == 1 && (px.photometric == "MONOCHROME1" || px.photometric == "MONOCHROME2"), path,
            ": unsupported DICOM image: SamplesPerPixel ", spp, ", PhotometricInterpretation ",
            px.photometric, " (expected a single-channel MONOCHROME1/2 radiograph)");
  CXR_CHECK(px.bits_allocated == 8 || px.bits_allocated == 16, path, ": unsupported BitsAllocated ",
            px.bits_allocated, " (expected 8 or 16)");
  CXR_CHECK(px.bits_stored >= 1 && px.bits_stored <= px.bits_allocated, path, ": bad BitsStored ",
            px.bits_stored);
  CXR_CHECK(px.rows > 0 && px.columns > 0, path, ": empty image ", px.rows, "x", px.columns);
  CXR_CHECK(ds->tagExists(DCM_PixelData), path, ": no PixelData (7FE0,0010)");

  if (xf.isEncapsulated()) {
    st = ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
    CXR_CHECK(st.good() && ds->canWriteXfer(EXS_LittleEndianExplicit), path,
              ": unsupported or undecodable transfer syntax ", px.transfer_syntax, " (",
              xf.getXferName(), "): ", st.good() ? "no decoder registered" : st.text(),
              ". Supported: uncompressed, JPEG baseline/extended/lossless, JPEG-LS, RLE");
  }
  const size_t n = size_t(px.rows * px.columns);
  px.stored.resize(n);
  const int shift = std::max(0, px.high_bit + 1 - px.bits_stored);
  const uint32_t mask = px.bits_stored >= 32 ? 0xFFFFFFFFu : ((1u << px.bits_stored) - 1u);
  auto convert = [&](uint32_t raw) {
    uint32_t v = (raw >> shift) & mask;
    if (px.is_signed && (v >> (px.bits_stored - 1)) & 1u) return int32_t(v) - int32_t(mask) - 1;
    return int32_t(v);
  };
  if (px.bits_allocated == 8) {
    const Uint8* data = nullptr;
    unsigned long count = 0;
    st = ds->findAndGetUint8Array(DCM_PixelData, data, &count);
    CXR_CHECK(st.good() && data != nullptr, path, ": cannot read 8-bit PixelData (", st.text(),
              ")");
    CXR_CHECK(count >= n, path, ": truncated PixelData (", count, " bytes for ", px.rows, "x",
              px.columns, ")");
    for (size_t i = 0; i < n; ++i) px.stored[i] = convert(data[i]);
  } else {
    const Uint16* data = nullptr;
    unsigned long count = 0;
    st = ds->findAndGetUint16Array(DCM_PixelData, data, &count);
    CXR_CHECK(st.good() && data != nullptr, path, ": cannot read 16-bit PixelData (", st.text(),
              ")");
    CXR_CHECK(count >= n, path, ": truncated PixelData (", count, " values for ", px.rows, "x",
              px.columns, ")");
    for (size_t i = 0; i < n; ++i) px.stored[i] = convert(data[i]);
  }
  return px;
}

#endif

Tensor read_dicom(const std::string& path, const DicomOptions& options) {
  DicomPixels px = read_dicom_pixels(path);
  const size_t n = px.stored.size();
  double lo, hi;
  if (options.range == DicomOptions::Range::MinMax) {
    lo = hi = px.modality(0);
    for (size_t i = 1; i < n; ++i) {
      lo = std::min(lo, px.modality(i));
      hi = std::max(hi, px.modality(i));
    }
  } else {
    const double smin = px.is_signed ? -std::ldexp(1.0, px.bits_stored - 1) : 0.0;
    const double smax = px.is_signed ? std::ldexp(1.0, px.bits_stored - 1) - 1
                                     : std::ldexp(1.0, px.bits_stored) - 1;
    lo = std::min(px.slope * smin, px.slope * smax) + px.intercept;
    hi = std::max(px.slope * smin, px.slope * smax) + px.intercept;
  }
  const double scale = hi > lo ? 1.0 / (hi - lo) : 0.0;
  const bool invert = options.invert_monochrome1 && px.photometric == "MONOCHROME1";
  Tensor t = raw::empty({1, px.rows, px.columns}, kFloat32);
  float* out = t.data<float>();
  for (size_t i = 0; i < n; ++i) {
    double v = std::clamp((px.modality(i) - lo) * scale, 0.0, 1.0);
    out[i] = float(invert ? 1.0 - v : v);
  }
  return t;
}

Tensor read_any_image(const std::string& path) {
  if (looks_like_dicom(path)) return read_dicom(path);
  return read_image(path, ColorMode::Gray);
}

}  // namespace cxr::data
