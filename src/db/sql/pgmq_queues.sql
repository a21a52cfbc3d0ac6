-- PGMQ-compatible queue management: creating, dropping, listing and measuring queues, in plain PL/pgSQL. No
-- extension is needed, so it runs on stock PostgreSQL 14+ and on PGlite. Function names, arguments, result
-- columns and table shapes follow PGMQ 1.5+, so an existing PGMQ client pointed at this database works
-- unchanged: keep them so. The message functions are in pgmq_messages.sql.
--
-- Callers: src/db/queries/registerTemplate.ts (pgmq.create of a namespace's worker queue),
-- src/messaging/pgmq/pgmqMessagingProvider.ts (pgmq.create, pgmq.metrics), src/api/rest/healthReport.ts
-- (pgmq.metrics), src/cli/queueCommands.ts and src/db/queries/taskMetrics.ts (pgmq.metrics_all). The rest is
-- there for PGMQ clients and operators.
--
-- Every queue name is validated (pgmq.validate_queue_name, through pgmq.format_table_name) before it is used
-- in dynamic SQL, and every identifier goes through format('%I'), so a queue name can never inject SQL.
-- A queue is a row of pgmq.meta plus two tables: pgmq.q_<name> (live messages) and pgmq.a_<name> (archive).
-- Triggers on pgmq.meta NOTIFY pgmq_queue_created (queue_notifications.sql) and regenerate tasker's static
-- queue access when one of tasker's own queues comes or goes (queue_dispatch.sql).

-- ------------------------------------------------------------------------------------------------ names

-- Queue names: 1-47 characters (PGMQ's limit, so the q_/a_ tables and their indexes fit in 63-byte
-- identifiers), lowercase letters, digits and underscores, not starting with a digit.
-- src/messaging/queueName.ts (assertValidQueueName) checks the same before any SQL is sent.
CREATE OR REPLACE FUNCTION pgmq.validate_queue_name(queue_name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF queue_name IS NULL OR queue_name !~ '^[a-z_][a-z0-9_]{0,46}$' THEN
    RAISE EXCEPTION 'invalid queue name %: use 1-47 characters of lowercase letters, digits and underscores, not starting with a digit',
      coalesce(quote_literal(queue_name), 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
END;
$$;

-- <prefix>_<queue name> ('q' for the queue table, 'a' for the archive), after validating the name.
CREATE OR REPLACE FUNCTION pgmq.format_table_name(queue_name text, prefix text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  PERFORM pgmq.validate_queue_name(queue_name);
  RETURN prefix || '_' || queue_name;
END;
$$;

-- The queue table's name, for the message functions' dynamic SQL. Raises undefined_table (42P01) with a
-- readable message when the queue was never created (pgmqMessagingProvider turns that state into
-- TASKER_QUEUE_NOT_FOUND).
CREATE OR REPLACE FUNCTION pgmq._queue_table(queue_name text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
  table_name text := pgmq.format_table_name(queue_name, 'q');
BEGIN
  IF to_regclass(format('pgmq.%I', table_name)) IS NULL THEN
    RAISE EXCEPTION 'queue % does not exist: create it first with pgmq.create(%)', quote_literal(queue_name), quote_literal(queue_name)
      USING ERRCODE = 'undefined_table';
  END IF;
  RETURN table_name;
END;
$$;

-- ------------------------------------------------------------------------------------------------ create

-- Creates the queue table, its archive and their indexes, and registers the queue in pgmq.meta (whose
-- triggers announce it and, for tasker's own queues, regenerate tasker._q_*). Creating an existing queue is
-- a no-op, so every service may create the queues it uses at start-up. The archive is always logged, an
-- unlogged queue's table is not.
--
-- The read index keeps PGMQ's name (q_<name>_vt_idx, so tools that look for it find it) but is on
-- (vt, (msg_id + 0)) instead of PGMQ's (vt):
--   * vt first: a read takes the messages visible longest, "WHERE vt <= <now> ORDER BY vt, msg_id + 0 LIMIT n",
--     so its scan starts at the earliest visible message and stops after the n it takes. Read in msg_id order,
--     every message that is not visible (a step in progress holds its message under a lease; a retry waits as
--     a message with a later vt) comes before the visible ones it hides: measured, a worker queue with 3,000
--     leased messages read 4,213 blocks, 3.8 ms, to find that nothing was visible;
--   * msg_id + 0, not msg_id, second: the same order, but no condition on msg_id can use this index, so every
--     lookup by msg_id (a read's UPDATE, archive, set_vt) goes through the primary key. The hot path plans its
--     static statements once per connection, usually on an empty queue, where scanning a whole (vt, msg_id)
--     index and checking msg_id on its second column costs the same as a primary-key lookup, so the planner
--     may take that scan and keep it: measured, 44 ms a read in the engine bench behind 50,000 queued
--     messages, 448 blocks instead of 40 to take 5 of 20,007 messages.
-- test/integration/pgmqReadCost.test.ts checks the blocks a read costs with thousands of messages queued.
CREATE OR REPLACE FUNCTION pgmq._create(queue_name text, unlogged boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  qtable text := pgmq.format_table_name(queue_name, 'q');
  atable text := pgmq.format_table_name(queue_name, 'a');
BEGIN
  -- Two sessions creating the same queue at once would race on the catalog; serialize them per name.
  PERFORM pg_advisory_xact_lock(hashtext('pgmq.create'), hashtext(queue_name));
  IF EXISTS (SELECT 1 FROM pgmq.meta m WHERE m.queue_name = _create.queue_name) THEN
    RETURN;
  END IF;
  EXECUTE format(
    'CREATE %s TABLE IF NOT EXISTS pgmq.%I (
       msg_id      bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
       read_ct     integer     NOT NULL DEFAULT 0,
       enqueued_at timestamptz NOT NULL DEFAULT now(),
       vt          timestamptz NOT NULL,
       message     jsonb,
       headers     jsonb
     )', CASE WHEN unlogged THEN 'UNLOGGED' ELSE '' END, qtable);
  EXECUTE format(
    'CREATE TABLE IF NOT EXISTS pgmq.%I (
       msg_id      bigint PRIMARY KEY,
       read_ct     integer     NOT NULL DEFAULT 0,
       enqueued_at timestamptz NOT NULL DEFAULT now(),
       archived_at timestamptz NOT NULL DEFAULT now(),
       vt          timestamptz NOT NULL,
       message     jsonb,
       headers     jsonb
     )', atable);
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (vt, (msg_id + 0))', qtable || '_vt_idx', qtable);
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (archived_at)', 'archived_at_idx_' || queue_name, atable);
  INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged)
  VALUES (queue_name, false, unlogged)
  ON CONFLICT DO NOTHING;
END;
$$;

-- PGMQ's entry points. create and create_non_partitioned are the same queue: partitioned queues are not
-- supported (see create_partitioned).
CREATE OR REPLACE FUNCTION pgmq.create(queue_name text) RETURNS void
LANGUAGE sql AS $$ SELECT pgmq._create(queue_name, false) $$;

CREATE OR REPLACE FUNCTION pgmq.create_non_partitioned(queue_name text) RETURNS void
LANGUAGE sql AS $$ SELECT pgmq._create(queue_name, false) $$;

CREATE OR REPLACE FUNCTION pgmq.create_unlogged(queue_name text) RETURNS void
LANGUAGE sql AS $$ SELECT pgmq._create(queue_name, true) $$;

-- PGMQ partitions queues with pg_partman; Tasker does not require that extension, so this raises
-- feature_not_supported. The signature and defaults stay PGMQ's so a client calling it gets that error, not
-- "function does not exist".
CREATE OR REPLACE FUNCTION pgmq.create_partitioned(
  queue_name text, partition_interval text DEFAULT '10000', retention_interval text DEFAULT '100000'
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'partitioned queues need pg_partman, which Tasker does not require: use pgmq.create(%)', quote_literal(queue_name)
    USING ERRCODE = 'feature_not_supported';
END;
$$;

-- ------------------------------------------------------------------------------------------------ remove

-- Deletes every live message of the queue and returns how many; the archive is left alone (as in PGMQ).
CREATE OR REPLACE FUNCTION pgmq.purge_queue(queue_name text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  deleted bigint;
BEGIN
  EXECUTE format('DELETE FROM pgmq.%I', pgmq._queue_table(queue_name));
  GET DIAGNOSTICS deleted = ROW_COUNT;
  RETURN deleted;
END;
$$;

-- Drops the queue table and its archive and unregisters the queue (the pgmq.meta trigger drops its branches
-- from tasker._q_*); false when there was no such queue. Takes the same per-name lock as pgmq._create, so a
-- create and a drop of one name do not interleave. partitioned is PGMQ's argument and is ignored: no queue
-- here is partitioned.
CREATE OR REPLACE FUNCTION pgmq.drop_queue(queue_name text, partitioned boolean DEFAULT false) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pgmq.validate_queue_name(queue_name);
  PERFORM pg_advisory_xact_lock(hashtext('pgmq.create'), hashtext(queue_name));
  IF NOT EXISTS (SELECT 1 FROM pgmq.meta m WHERE m.queue_name = drop_queue.queue_name) THEN
    RETURN false;
  END IF;
  EXECUTE format('DROP TABLE IF EXISTS pgmq.%I', pgmq.format_table_name(queue_name, 'q'));
  EXECUTE format('DROP TABLE IF EXISTS pgmq.%I', pgmq.format_table_name(queue_name, 'a'));
  DELETE FROM pgmq.meta m WHERE m.queue_name = drop_queue.queue_name;
  RETURN true;
END;
$$;

-- PGMQ deprecated detaching archives; kept so clients that still call it keep working. It only checks that
-- the queue exists.
CREATE OR REPLACE FUNCTION pgmq.detach_archive(queue_name text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pgmq._queue_table(queue_name);
END;
$$;

-- ------------------------------------------------------------------------------------------------ inspect

CREATE OR REPLACE FUNCTION pgmq.list_queues() RETURNS SETOF pgmq.queue_record
LANGUAGE sql STABLE AS $$
  SELECT queue_name, is_partitioned, is_unlogged, created_at FROM pgmq.meta ORDER BY queue_name
$$;

-- One queue's depth, in PGMQ's shape: queue_length counts the live messages, queue_visible_length those a
-- read could take now, total_messages every message ever sent (the queue table's identity sequence). One
-- count(*) over the queue table: cheap for queues of live messages, not meant for a hot path.
-- Callers: healthReport.ts (the queue answers), pgmqMessagingProvider.queueDepth.
CREATE OR REPLACE FUNCTION pgmq.metrics(queue_name text) RETURNS pgmq.metrics_result
LANGUAGE plpgsql AS $$
DECLARE
  qtable text := pgmq._queue_table(queue_name);
  result pgmq.metrics_result;
BEGIN
  EXECUTE format(
    'WITH q AS (
       SELECT count(*) AS queue_length,
              count(*) FILTER (WHERE vt <= clock_timestamp()) AS queue_visible_length,
              extract(epoch FROM (now() - max(enqueued_at)))::integer AS newest_msg_age_sec,
              extract(epoch FROM (now() - min(enqueued_at)))::integer AS oldest_msg_age_sec
       FROM pgmq.%I
     ), s AS (
       SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS total_messages FROM pgmq.%I
     )
     SELECT $1::text, q.queue_length, q.newest_msg_age_sec, q.oldest_msg_age_sec, s.total_messages,
            now(), q.queue_visible_length
     FROM q, s', qtable, qtable || '_msg_id_seq')
  INTO result
  USING queue_name;
  RETURN result;
END;
$$;

-- pgmq.metrics of every queue, by name. Callers: the CLI's queue listing (src/cli/queueCommands.ts) and the
-- task metrics (src/db/queries/taskMetrics.ts).
CREATE OR REPLACE FUNCTION pgmq.metrics_all() RETURNS SETOF pgmq.metrics_result
LANGUAGE plpgsql AS $$
DECLARE
  name text;
BEGIN
  FOR name IN SELECT m.queue_name FROM pgmq.meta m ORDER BY m.queue_name LOOP
    RETURN NEXT pgmq.metrics(name);
  END LOOP;
END;
$$;
