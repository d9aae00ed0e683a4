-- Hand-edited: drizzle-kit adds the column NOT NULL at once, which fails on a table that
-- holds rows. Rows from before the key get a digest of their own (they cannot be keyed
-- by their payload: only an excerpt was kept), then the column is made NOT NULL.
ALTER TABLE "rejected_messages" ADD COLUMN "digest" text;--> statement-breakpoint
UPDATE "rejected_messages" SET "digest" = 'legacy-' || "id";--> statement-breakpoint
ALTER TABLE "rejected_messages" ALTER COLUMN "digest" SET NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "rejected_messages_digest" ON "rejected_messages" USING btree ("digest");
