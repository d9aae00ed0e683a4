-- Custom (data, not schema). Before the device clock rule (issue 14, item 3) a point
-- dated far ahead became its drone's position_at, and every later point, being older,
-- left the drone where it was, for good. Such a time is put back to when the drone was
-- last heard, so that its next point moves it again. A day leaves room for any window
-- DEVICE_CLOCK_AHEAD_MAX_S was likely set to; the drones of a time-scaled demo, rightly
-- ahead, are put back too, and move on with their next point, newer anyway.
UPDATE "drones" SET "position_at" = "last_seen_at"
WHERE "position_at" > now() + interval '1 day' AND "last_seen_at" IS NOT NULL;
