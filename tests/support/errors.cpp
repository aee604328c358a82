// Test helpers for error paths.
#include "support/errors.h"

#include "tensor/error.h"

namespace cxr::test {

std::string error_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const cxr::Error& e) {
    return e.what();
  }
  return "";
}

::testing::AssertionResult error_contains(const std::function<void()>& f, const std::string& text) {
  bool thrown = false;
  std::string message;
  try {
    f();
  } catch (const cxr::Error& e) {
    thrown = true;
    message = e.what();
  }
  if (!thrown)
    return ::testing::AssertionFailure() << "no cxr::Error thrown (expected \"" << text << "\")";
  if (message.find(text) == std::string::npos)
    return ::testing::AssertionFailure()
           << "error \"" << message << "\" does not contain \"" << text << "\"";
  return ::testing::AssertionSuccess();
}

}  // namespace cxr::test
