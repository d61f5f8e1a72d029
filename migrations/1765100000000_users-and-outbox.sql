-- Up Migration

-- The app's users. An email is registered once, whatever its case.
CREATE TABLE users (
  id uuid PRIMARY KEY,
  email text NOT NULL,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- The Idempotency-Key a signup came with, and what it was bound to (its request), so a
  -- retried signup answers the first one's user and job instead of a 409.
  signup_key text UNIQUE,
  signup_fingerprint text,
  welcome_job_id uuid
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- The transactional outbox (src/offload/outbox.ts): a job recorded in the same transaction as
-- the data it is about, relayed to BullMQ after the commit (src/offload/relay.ts).
CREATE TABLE offload_outbox (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- The job's id in BullMQ too: relaying a row twice adds one job.
  id uuid NOT NULL UNIQUE,
  name text NOT NULL,
  data jsonb NOT NULL,
  opts jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  relayed_at timestamptz
);
-- The relay reads the rows left behind, oldest first.
CREATE INDEX offload_outbox_pending ON offload_outbox (seq) WHERE relayed_at IS NULL;

-- Down Migration
DROP TABLE offload_outbox;
DROP TABLE users;
