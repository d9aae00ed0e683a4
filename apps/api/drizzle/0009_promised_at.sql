-- Hand-edited: IF NOT EXISTS, so that the migration can run again on a database that
-- has the column (test/device-clock.test.ts replays every migration after 0004).
ALTER TABLE "deliveries" ADD COLUMN IF NOT EXISTS "promised_at" timestamp with time zone;
