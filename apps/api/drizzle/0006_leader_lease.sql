-- Hand-edited: IF NOT EXISTS, so that the migration can run again on a database that
-- has the table (test/device-clock.test.ts replays every migration after 0004).
CREATE TABLE IF NOT EXISTS "leader_lease" (
	"name" text PRIMARY KEY NOT NULL,
	"holder" text NOT NULL,
	"epoch" bigint NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
