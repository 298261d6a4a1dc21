#include <gtest/gtest.h>

#include "core/ack_tracker.hpp"

namespace sluice {
namespace {

TEST(AckTracker, CommitsOnlyTheContiguousAcknowledgedPrefix) {
  AckTracker t(100);
  for (int o = 100; o < 110; ++o) t.consumed(o);
  EXPECT_EQ(t.committable(), 100);
  t.acked(105, 109);  // a later batch finishes first
  EXPECT_EQ(t.committable(), 100);
  t.acked(100, 102);
  EXPECT_EQ(t.committable(), 103);
  t.acked(103, 104);
  EXPECT_EQ(t.committable(), 110);
  EXPECT_EQ(t.in_flight(), 0);
}

TEST(AckTracker, GapsInOffsetsDoNotBlockCommits) {
  AckTracker t(0);
  t.consumed(0);
  t.consumed(5);  // 1..4 compacted away
  t.acked(0, 0);
  EXPECT_EQ(t.committable(), 5);
  t.acked(5, 5);
  EXPECT_EQ(t.committable(), 6);
}

TEST(AckTracker, FirstMessageAfterRetentionIsNotAWait) {
  AckTracker t(0);
  t.consumed(1000);
  t.acked(1000, 1000);
  EXPECT_EQ(t.committable(), 1001);
}

TEST(AckTracker, StaleAcksAreIgnored) {
  AckTracker t(10);
  t.consumed(10);
  t.acked(10, 10);
  t.acked(3, 8);
  EXPECT_EQ(t.committable(), 11);
}

}  // namespace
}  // namespace sluice
