CREATE TABLE "deliveries" (
	"id" text PRIMARY KEY NOT NULL,
	"fleet_id" text NOT NULL,
	"status" text NOT NULL,
	"source" text NOT NULL,
	"pickup_station_id" text NOT NULL,
	"dropoff_station_id" text NOT NULL,
	"payload_kg" real NOT NULL,
	"drone_id" text,
	"distance_m" real,
	"requested_at" timestamp with time zone NOT NULL,
	"assigned_at" timestamp with time zone,
	"picked_up_at" timestamp with time zone,
	"departed_at" timestamp with time zone,
	"arrived_at" timestamp with time zone,
	"completed_at" timestamp with time zone,
	"failed_at" timestamp with time zone,
	"cancelled_at" timestamp with time zone,
	"failure_reason" text,
	"eta_at" timestamp with time zone,
	"eta_error_s" real,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "delivery_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"delivery_id" text NOT NULL,
	"status" text NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"detail" text
);
--> statement-breakpoint
CREATE TABLE "drone_events" (
	"id" text PRIMARY KEY NOT NULL,
	"fleet_id" text NOT NULL,
	"drone_id" text NOT NULL,
	"type" text NOT NULL,
	"ts" timestamp with time zone NOT NULL,
	"delivery_id" text,
	"station_id" text,
	"detail" text,
	"received_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "drones" (
	"fleet_id" text NOT NULL,
	"id" text NOT NULL,
	"online" boolean DEFAULT false NOT NULL,
	"state" text DEFAULT 'offline' NOT NULL,
	"station_id" text,
	"model" text,
	"firmware" text,
	"lat" double precision,
	"lon" double precision,
	"alt_m" real,
	"speed_mps" real,
	"heading_deg" real,
	"battery_pct" real,
	"delivery_id" text,
	"last_seq" integer,
	"position_at" timestamp with time zone,
	"last_seen_at" timestamp with time zone,
	"online_changed_at" timestamp with time zone,
	"offline_reason" text,
	CONSTRAINT "drones_fleet_id_id_pk" PRIMARY KEY("fleet_id","id")
);
--> statement-breakpoint
CREATE TABLE "presence_changes" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"fleet_id" text NOT NULL,
	"kind" text NOT NULL,
	"device_id" text NOT NULL,
	"online" boolean NOT NULL,
	"reason" text,
	"at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "rejected_messages" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"topic" text NOT NULL,
	"size_bytes" integer NOT NULL,
	"excerpt" text NOT NULL,
	"reason" text NOT NULL,
	"received_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "stations" (
	"fleet_id" text NOT NULL,
	"id" text NOT NULL,
	"name" text NOT NULL,
	"lat" double precision NOT NULL,
	"lon" double precision NOT NULL,
	"capacity" integer NOT NULL,
	"docked" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"online" boolean NOT NULL,
	"status_at" timestamp with time zone NOT NULL,
	"online_changed_at" timestamp with time zone,
	CONSTRAINT "stations_fleet_id_id_pk" PRIMARY KEY("fleet_id","id")
);
--> statement-breakpoint
CREATE TABLE "telemetry" (
	"fleet_id" text NOT NULL,
	"drone_id" text NOT NULL,
	"ts" timestamp with time zone NOT NULL,
	"seq" integer NOT NULL,
	"lat" double precision NOT NULL,
	"lon" double precision NOT NULL,
	"alt_m" real NOT NULL,
	"speed_mps" real NOT NULL,
	"heading_deg" real NOT NULL,
	"battery_pct" real NOT NULL,
	"state" text NOT NULL,
	"delivery_id" text,
	"received_at" timestamp with time zone NOT NULL,
	CONSTRAINT "telemetry_fleet_id_drone_id_ts_seq_pk" PRIMARY KEY("fleet_id","drone_id","ts","seq")
) PARTITION BY RANGE ("ts");
-- Edited by hand: drizzle-kit cannot declare partitioning. One partition per UTC day,
-- created on demand by the ingest (src/db/partitions.ts) and dropped by retention.
--> statement-breakpoint
CREATE INDEX "deliveries_fleet_requested" ON "deliveries" USING btree ("fleet_id","requested_at","id");--> statement-breakpoint
CREATE INDEX "deliveries_status" ON "deliveries" USING btree ("status");--> statement-breakpoint
CREATE INDEX "deliveries_drone" ON "deliveries" USING btree ("drone_id");--> statement-breakpoint
CREATE INDEX "delivery_events_delivery_at" ON "delivery_events" USING btree ("delivery_id","at");--> statement-breakpoint
CREATE INDEX "drone_events_drone_ts" ON "drone_events" USING btree ("fleet_id","drone_id","ts");--> statement-breakpoint
CREATE INDEX "presence_changes_device_at" ON "presence_changes" USING btree ("fleet_id","kind","device_id","at");