-- PGMQ-compatible message functions: send, read, pop, archive, delete and set_vt on a queue made by
-- pgmq.create (pgmq_queues.sql). Names, overloads, arguments and result columns follow PGMQ 1.5+, so an
-- existing PGMQ client works unchanged: keep them so.
--
-- Callers: src/messaging/pgmq/pgmqMessagingProvider.ts (send, send_batch, read, archive, set_vt; or the
-- notifying sends of queue_notifications.sql), tasker._redispatch_steps (send) and tasker.detect_stale_tasks
-- (archive), and the fallback paths of tasker._q_send/_q_read/_q_archive/_q_set_vt (queue_dispatch.sql).
-- Tasker's own queues take the static branches of tasker._q_* on the engine's hot path instead: every function
-- here is dynamic SQL (EXECUTE format(...)) and is planned again on every call.
--
-- A message is visible to readers once its vt (visibility time) has passed. Queue names are validated and
-- quoted with %I before they reach dynamic SQL (pgmq._queue_table), so a queue name cannot inject SQL.

-- ------------------------------------------------------------------------------------------------ send

-- The one place pgmq.* inserts messages; every send and send_batch overload lands here. vt is when the
-- messages become visible. They are inserted in array order, so their msg_ids follow it; headers, when given,
-- are one object per message.
CREATE OR REPLACE FUNCTION pgmq._send_batch(queue_name text, msgs jsonb[], headers jsonb[], vt timestamptz)
RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
BEGIN
  IF headers IS NOT NULL AND cardinality(headers) <> cardinality(msgs) THEN
    RAISE EXCEPTION 'send_batch: % messages but % headers; pass one header object per message', cardinality(msgs), cardinality(headers)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN QUERY EXECUTE format(
    'INSERT INTO pgmq.%I (vt, message, headers)
     SELECT $2, m.message, CASE WHEN $3 IS NULL THEN NULL ELSE ($3)[m.ord] END
     FROM unnest($1) WITH ORDINALITY AS m(message, ord)
     ORDER BY m.ord
     RETURNING msg_id', pgmq._queue_table(queue_name))
  USING msgs, vt, headers;
END;
$$;

-- A delay in seconds as a visibility time. clock_timestamp(), not now(): a message sent late in a long
-- transaction is not visible before its delay has passed. A NULL or negative delay is an error, not 0.
CREATE OR REPLACE FUNCTION pgmq._delay_to_vt(delay integer) RETURNS timestamptz
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF delay IS NULL OR delay < 0 THEN
    RAISE EXCEPTION 'delay must be 0 or more seconds, got %', coalesce(delay::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN clock_timestamp() + make_interval(secs => delay);
END;
$$;

-- PGMQ's overloads: one message or a batch; optionally headers; no delay (visible at once), a delay in
-- seconds, or the time it becomes visible. Each returns the new msg_ids.
CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, ARRAY[msg], NULL, clock_timestamp()) $$;

CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, delay integer) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, ARRAY[msg], NULL, pgmq._delay_to_vt(delay)) $$;

CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, delay timestamptz) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, ARRAY[msg], NULL, delay) $$;

CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, ARRAY[msg], ARRAY[headers], clock_timestamp()) $$;

CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay integer) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, ARRAY[msg], ARRAY[headers], pgmq._delay_to_vt(delay)) $$;

CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay timestamptz) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, ARRAY[msg], ARRAY[headers], delay) $$;

CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[]) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, msgs, NULL, clock_timestamp()) $$;

CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay integer) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, msgs, NULL, pgmq._delay_to_vt(delay)) $$;

CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay timestamptz) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, msgs, NULL, delay) $$;

CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[]) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, msgs, headers, clock_timestamp()) $$;

CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, msgs, headers, pgmq._delay_to_vt(delay)) $$;

CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamptz) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, msgs, headers, delay) $$;

-- ------------------------------------------------------------------------------------------------ read

-- Claims up to qty visible messages and hides them for vt seconds (read_ct + 1); conditional keeps only
-- messages whose body contains it (@>), as in PGMQ. The claimed messages are returned in msg_id order.
--
-- FOR UPDATE SKIP LOCKED: concurrent readers never wait on each other and never receive the same row; a row
-- whose vt has not passed is invisible, so no message reaches two readers inside its window.
--
-- Which messages: the ones visible longest, msg_id breaking ties. Messages sent without a delay come out in
-- the order they were sent (a batch shares one vt); a delayed message, or one whose lease expired, takes its
-- place from the moment it became visible instead of ahead of everything sent after it. That is the order of
-- the queue's (vt, (msg_id + 0)) index (pgmq._create says why msg_id + 0), so the scan starts at the earliest
-- visible message and stops after the qty it takes, however many messages are leased or delayed.
--
-- The clock is read once with clock_timestamp() (not now(), so a long transaction cannot read with a stale
-- clock) and passed in as $4: a volatile call in the condition could only filter rows, never bound the index
-- scan.
--
-- The UPDATE finds the locked rows by key, "m.msg_id = ANY(ARRAY(SELECT cte.msg_id FROM cte))", instead of
-- joining cte back to the queue table: with no join to plan, the primary key is the only way to the rows.
-- This function plans every call anew; tasker._q_read keeps its plan per connection, and there a join planned
-- on an empty queue read the whole primary key (13,000 index entries, 8 ms, for each read of 41 messages
-- behind 4,000 queued). Both take the same form.
CREATE OR REPLACE FUNCTION pgmq.read(queue_name text, vt integer, qty integer, conditional jsonb DEFAULT '{}')
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql AS $$
DECLARE
  qtable text := pgmq._queue_table(queue_name);
BEGIN
  IF vt IS NULL OR vt < 0 THEN
    RAISE EXCEPTION 'read: vt must be 0 or more seconds, got %', coalesce(vt::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF qty IS NULL OR qty < 1 THEN
    RAISE EXCEPTION 'read: qty must be 1 or more, got %', coalesce(qty::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN QUERY EXECUTE format(
    'WITH cte AS (
       SELECT msg_id FROM pgmq.%1$I
       WHERE vt <= $4
         AND ($3 = ''{}''::jsonb OR message @> $3)
       ORDER BY vt, msg_id + 0
       LIMIT $1
       FOR UPDATE SKIP LOCKED
     ), claimed AS (
       UPDATE pgmq.%1$I m
       SET vt = clock_timestamp() + make_interval(secs => $2), read_ct = m.read_ct + 1
       WHERE m.msg_id = ANY(ARRAY(SELECT cte.msg_id FROM cte))
       RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers
     )
     SELECT * FROM claimed ORDER BY msg_id', qtable)
  USING qty, vt, coalesce(conditional, '{}'::jsonb), clock_timestamp();
END;
$$;

-- PGMQ's long poll: pgmq.read again every poll_interval_ms until it returns messages or max_poll_seconds have
-- passed. It sleeps in the server, holding its connection (and transaction); Tasker's services wait for
-- NOTIFY signals instead (queue_notifications.sql).
CREATE OR REPLACE FUNCTION pgmq.read_with_poll(
  queue_name text, vt integer, qty integer,
  max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100, conditional jsonb DEFAULT '{}'
) RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql AS $$
DECLARE
  stop_at timestamptz := clock_timestamp() + make_interval(secs => max_poll_seconds);
  found_any boolean;
  r pgmq.message_record;
BEGIN
  LOOP
    found_any := false;
    FOR r IN SELECT * FROM pgmq.read(queue_name, vt, qty, conditional) LOOP
      found_any := true;
      RETURN NEXT r;
    END LOOP;
    EXIT WHEN found_any OR clock_timestamp() >= stop_at;
    PERFORM pg_sleep(poll_interval_ms / 1000.0);
  END LOOP;
END;
$$;

-- Reads and deletes up to qty visible messages at once (no archive, no second chance). Same choice of
-- messages, clock and by-key form as pgmq.read.
CREATE OR REPLACE FUNCTION pgmq.pop(queue_name text, qty integer DEFAULT 1) RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'WITH cte AS (
       SELECT msg_id FROM pgmq.%1$I
       WHERE vt <= $2
       ORDER BY vt, msg_id + 0
       LIMIT $1
       FOR UPDATE SKIP LOCKED
     ), popped AS (
       DELETE FROM pgmq.%1$I m WHERE m.msg_id = ANY(ARRAY(SELECT cte.msg_id FROM cte))
       RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers
     )
     SELECT * FROM popped ORDER BY msg_id', pgmq._queue_table(queue_name))
  USING qty, clock_timestamp();
END;
$$;

-- ------------------------------------------------------------------------------------------------ settle

-- Moves messages from the queue to its archive (pgmq.a_<name>), keeping msg_id, read_ct, enqueued_at, vt, body
-- and headers; archived_at is the time of the move. Returns the ids it moved; ids not in the queue are skipped.
-- Archived messages stay until tasker.purge_queue_archives removes them (retention). The single-id form
-- answers whether the message was there (pgmqMessagingProvider.ack, detect_stale_tasks).
CREATE OR REPLACE FUNCTION pgmq.archive(queue_name text, msg_ids bigint[]) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'WITH archived AS (
       DELETE FROM pgmq.%I WHERE msg_id = ANY($1)
       RETURNING msg_id, read_ct, enqueued_at, vt, message, headers
     )
     INSERT INTO pgmq.%I (msg_id, read_ct, enqueued_at, vt, message, headers)
     SELECT msg_id, read_ct, enqueued_at, vt, message, headers FROM archived
     RETURNING msg_id', pgmq._queue_table(queue_name), pgmq.format_table_name(queue_name, 'a'))
  USING msg_ids;
END;
$$;

CREATE OR REPLACE FUNCTION pgmq.archive(queue_name text, msg_id bigint) RETURNS boolean
LANGUAGE sql AS $$ SELECT EXISTS (SELECT 1 FROM pgmq.archive(queue_name, ARRAY[msg_id])) $$;

-- Deletes messages without archiving them. Returns the ids it deleted; the single-id form whether the message
-- was there.
CREATE OR REPLACE FUNCTION pgmq.delete(queue_name text, msg_ids bigint[]) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format('DELETE FROM pgmq.%I WHERE msg_id = ANY($1) RETURNING msg_id', pgmq._queue_table(queue_name))
  USING msg_ids;
END;
$$;

CREATE OR REPLACE FUNCTION pgmq.delete(queue_name text, msg_id bigint) RETURNS boolean
LANGUAGE sql AS $$ SELECT EXISTS (SELECT 1 FROM pgmq.delete(queue_name, ARRAY[msg_id])) $$;

-- Makes a message visible again vt seconds from now (0: at once), whether or not it is currently leased, and
-- returns it (no row when it is not in the queue). pgmqMessagingProvider uses it to extend a lease and to
-- nack with a delay.
CREATE OR REPLACE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt integer) RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql AS $$
BEGIN
  IF vt IS NULL OR vt < 0 THEN
    RAISE EXCEPTION 'set_vt: vt must be 0 or more seconds, got %', coalesce(vt::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN QUERY EXECUTE format(
    'UPDATE pgmq.%I SET vt = clock_timestamp() + make_interval(secs => $2) WHERE msg_id = $1
     RETURNING msg_id, read_ct, enqueued_at, vt, message, headers', pgmq._queue_table(queue_name))
  USING msg_id, vt;
END;
$$;
