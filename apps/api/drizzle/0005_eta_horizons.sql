CREATE TABLE "delivery_eta_horizons" (
	"delivery_id" text NOT NULL,
	"horizon" text NOT NULL,
	"predicted_at" timestamp with time zone NOT NULL,
	"eta_at" timestamp with time zone NOT NULL,
	"error_s" real,
	CONSTRAINT "delivery_eta_horizons_delivery_id_horizon_pk" PRIMARY KEY("delivery_id","horizon")
);
