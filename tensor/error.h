// cxr::Error and the CXR_CHECK macro: every public op validates its input and throws an Error whose
// message names the op, the shapes/dtypes involved and what was expected.
#pragma once

#include <sstream>    // std::ostringstream for building messages
#include <stdexcept>  // std::runtime_error base
#include <string>

namespace cxr {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace cxr

// CXR_CHECK(cond, "op: ", a, " expected ", b) throws cxr::Error with the concatenated message.
#define CXR_CHECK(cond, ...)                                  \
  do {                                                        \
    if (!(cond)) throw ::cxr::Error(::cxr::detail::cat(__VA_ARGS__)); \
  } while (0)

#define CXR_FAIL(...) throw ::cxr::Error(::cxr::detail::cat(__VA_ARGS__))
