#include <gtest/gtest.h>

#include <thread>

#include "core/log_limiter.hpp"

namespace sluice {
namespace {

TEST(LogLimiter, LetsTheFirstThroughAndCountsTheRestPerKey) {
  LogLimiter limiter(std::chrono::milliseconds(200));
  ASSERT_TRUE(limiter.allow("a"));
  EXPECT_EQ(*limiter.allow("b"), 0u);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(limiter.allow("a"));
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // the interval is the behaviour under test
  auto next = limiter.allow("a");
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, 5u);
}

}  // namespace
}  // namespace sluice
