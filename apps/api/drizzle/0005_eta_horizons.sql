-- Hand-edited: IF NOT EXISTS, so that the migration can run again on a database that
-- has the table (test/device-clock.test.ts replays every migration after 0004).
CREATE TABLE IF NOT EXISTS "delivery_eta_horizons" (
	"delivery_id" text NOT NULL,
	"horizon" text NOT NULL,
	"predicted_at" timestamp with time zone NOT NULL,
	"eta_at" timestamp with time zone NOT NULL,
	"error_s" real,
	CONSTRAINT "delivery_eta_horizons_delivery_id_horizon_pk" PRIMARY KEY("delivery_id","horizon")
);
