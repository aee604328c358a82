// DICOM pixel data through DCMTK (optional dependency; CXR_HAVE_DCMTK). Handles Part-10 files and
// old ACR-NEMA style files without a preamble, uncompressed and JPEG-compressed transfer syntaxes
// (baseline/extended/lossless JPEG via DCMTK's dcmjpeg decoders, JPEG-LS when available), bits
// stored (masked, sign-extended for signed pixels), rescale slope/intercept and MONOCHROME1.
// Without DCMTK every call throws a cxr::Error that says how to enable it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::data {

// True when this build can read DICOM files.
bool dicom_supported();

struct DicomPixels {
  int64_t rows = 0, columns = 0;
  int bits_allocated = 0, bits_stored = 0, high_bit = 0;
  bool is_signed = false;       // PixelRepresentation 1
  std::string photometric;      // "MONOCHROME1", "MONOCHROME2", ...
  std::string transfer_syntax;  // UID of the file's transfer syntax
  double slope = 1.0, intercept = 0.0;
  std::vector<int32_t> stored;  // stored values (bits-stored masked), row-major [rows*columns]
  // Modality value of pixel i: slope * stored[i] + intercept.
  double modality(size_t i) const { return slope * double(stored[i]) + intercept; }
};

// Decodes the first frame of a single-channel DICOM image.
DicomPixels read_dicom_pixels(const std::string& path);

struct DicomOptions {
  // How modality values map to [0, 1]: the full range the stored bits allow (after rescale), or
  // the image's own min..max.
  enum class Range { BitsStored, MinMax } range = Range::BitsStored;
  bool invert_monochrome1 = true;  // MONOCHROME1 (bright = low) becomes bright = high
};

// The image as float32 [1, H, W] in [0, 1] with MONOCHROME2 polarity (brighter = denser).
Tensor read_dicom(const std::string& path, const DicomOptions& options = {});

// Any dataset image as float32 [1, H, W] in [0, 1]: DICOM (by magic or .dcm extension) through
// read_dicom, PNG/JPEG through read_image (grayscale). What the loader calls per sample.
Tensor read_any_image(const std::string& path);

// True when the file starts with the Part-10 "DICM" magic (at byte 128) or has a .dcm extension.
bool looks_like_dicom(const std::string& path);

}  // namespace cxr::data
