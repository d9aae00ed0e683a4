-- Hand-edited: IF NOT EXISTS, so that the migration can run again on a database that
-- has the tables (test/device-clock.test.ts replays every migration after 0004).
CREATE TABLE IF NOT EXISTS "alert_webhook_outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"alert_id" text NOT NULL,
	"fleet_id" text NOT NULL,
	"body" text NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone NOT NULL,
	"delivered_at" timestamp with time zone,
	"dead_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "alerts" (
	"id" text PRIMARY KEY NOT NULL,
	"fleet_id" text NOT NULL,
	"kind" text NOT NULL,
	"severity" text NOT NULL,
	"state" text NOT NULL,
	"subject_key" text NOT NULL,
	"drone_id" text,
	"station_id" text,
	"delivery_id" text,
	"zone_id" text,
	"opened_at" timestamp with time zone NOT NULL,
	"acknowledged_at" timestamp with time zone,
	"acknowledged_by" text,
	"resolved_at" timestamp with time zone,
	"updated_at" timestamp with time zone NOT NULL,
	"facts" jsonb NOT NULL
);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "alert_webhook_outbox_due" ON "alert_webhook_outbox" USING btree ("next_attempt_at","id") WHERE "alert_webhook_outbox"."delivered_at" IS NULL AND "alert_webhook_outbox"."dead_at" IS NULL;--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "alerts_one_open" ON "alerts" USING btree ("fleet_id","kind","subject_key") WHERE "alerts"."state" <> 'resolved';--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "alerts_fleet_opened" ON "alerts" USING btree ("fleet_id","opened_at","id");--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "alerts_opened" ON "alerts" USING btree ("opened_at","id");