// Test helpers for error paths: the message of the cxr::Error a statement throws.
#pragma once

#include <functional>
#include <string>

#include <gtest/gtest.h>

namespace cxr::test {

// Runs f and returns the what() of the cxr::Error it throws, or "" when it throws nothing. Other
// exception types propagate (and fail the test).
std::string error_message(const std::function<void()>& f);

// Passes when f throws a cxr::Error whose message contains `text`; the failure names the message.
::testing::AssertionResult error_contains(const std::function<void()>& f, const std::string& text);

}  // namespace cxr::test

// EXPECT_ERROR_CONTAINS(statement, "text"): the statement throws a cxr::Error whose message
// contains "text".
#define EXPECT_ERROR_CONTAINS(statement, text) \
  EXPECT_TRUE(::cxr::test::error_contains([&] { statement; }, text))
