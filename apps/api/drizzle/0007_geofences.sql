-- Hand-edited: IF NOT EXISTS, so that the migration can run again on a database that
-- has the table (test/device-clock.test.ts replays every migration after 0004).
CREATE TABLE IF NOT EXISTS "geofences" (
	"id" text PRIMARY KEY NOT NULL,
	"fleet_id" text NOT NULL,
	"name" text NOT NULL,
	"kind" text NOT NULL,
	"geometry" jsonb NOT NULL,
	"active_from" timestamp with time zone,
	"active_until" timestamp with time zone,
	"notify_on_enter_leave" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "deliveries" ADD COLUMN IF NOT EXISTS "route_blocked_since" timestamp with time zone;--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "geofences_fleet" ON "geofences" USING btree ("fleet_id","id");
