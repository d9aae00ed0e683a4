-- Custom (drizzle's schema cannot say fillfactor). Every telemetry message updates its
-- drone's row (the latest position): with full pages few of those updates were HOT, so
-- each one also wrote a new entry into the primary key and left a dead tuple behind
-- (issue #7: 14% HOT, 266,000 dead tuples in a 10,000-row table after 300,000 updates).
-- Half-empty pages keep the new version on the same page: the updates become HOT and
-- the row's old version is pruned in place. Pages written from now on are half full.
ALTER TABLE "drones" SET (fillfactor = 50);
