-- A PGMQ-compatible message queue in plain PL/pgSQL: no extension needed, runs on stock PostgreSQL 14+
-- and on PGlite. Function names, arguments, result columns and table shapes follow PGMQ 1.5+, so an
-- existing PGMQ client pointed at this database works unchanged.
--
-- Every queue name is validated by pgmq.format_table_name before it is used in dynamic SQL, and every
-- identifier goes through format('%I'), so a queue name can never inject SQL.

CREATE SCHEMA IF NOT EXISTS pgmq;

CREATE TABLE pgmq.meta (
  queue_name     varchar     NOT NULL UNIQUE,
  is_partitioned boolean     NOT NULL,
  is_unlogged    boolean     NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TYPE pgmq.message_record AS (
  msg_id      bigint,
  read_ct     integer,
  enqueued_at timestamptz,
  vt          timestamptz,
  message     jsonb,
  headers     jsonb
);

CREATE TYPE pgmq.queue_record AS (
  queue_name     varchar,
  is_partitioned boolean,
  is_unlogged    boolean,
  created_at     timestamptz
);

CREATE TYPE pgmq.metrics_result AS (
  queue_name           text,
  queue_length         bigint,
  newest_msg_age_sec   integer,
  oldest_msg_age_sec   integer,
  total_messages       bigint,
  scrape_time          timestamptz,
  queue_visible_length bigint
);

-- Queue names: 1-47 characters (PGMQ's limit, so q_/a_ tables and their indexes fit in 63-byte
-- identifiers), lowercase letters, digits and underscores, not starting with a digit.
CREATE FUNCTION pgmq.validate_queue_name(queue_name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF queue_name IS NULL OR queue_name !~ '^[a-z_][a-z0-9_]{0,46}$' THEN
    RAISE EXCEPTION 'invalid queue name %: use 1-47 characters of lowercase letters, digits and underscores, not starting with a digit',
      coalesce(quote_literal(queue_name), 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
END;
$$;

CREATE FUNCTION pgmq.format_table_name(queue_name text, prefix text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  PERFORM pgmq.validate_queue_name(queue_name);
  RETURN prefix || '_' || queue_name;
END;
$$;

-- Raises undefined_table with a readable message when the queue was never created.
CREATE FUNCTION pgmq._queue_table(queue_name text) RETURNS text
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

CREATE FUNCTION pgmq._create(queue_name text, unlogged boolean) RETURNS void
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
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (vt ASC)', qtable || '_vt_idx', qtable);
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (archived_at)', 'archived_at_idx_' || queue_name, atable);
  INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged)
  VALUES (queue_name, false, unlogged)
  ON CONFLICT DO NOTHING;
END;
$$;

CREATE FUNCTION pgmq.create(queue_name text) RETURNS void
LANGUAGE sql AS $$ SELECT pgmq._create(queue_name, false) $$;

CREATE FUNCTION pgmq.create_non_partitioned(queue_name text) RETURNS void
LANGUAGE sql AS $$ SELECT pgmq._create(queue_name, false) $$;

CREATE FUNCTION pgmq.create_unlogged(queue_name text) RETURNS void
LANGUAGE sql AS $$ SELECT pgmq._create(queue_name, true) $$;

CREATE FUNCTION pgmq.create_partitioned(
  queue_name text, partition_interval text DEFAULT '10000', retention_interval text DEFAULT '100000'
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'partitioned queues need pg_partman, which Tasker does not require: use pgmq.create(%)', quote_literal(queue_name)
    USING ERRCODE = 'feature_not_supported';
END;
$$;

-- The one place messages are inserted. vt is when the messages become visible to readers.
CREATE FUNCTION pgmq._send_batch(queue_name text, msgs jsonb[], headers jsonb[], vt timestamptz)
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

CREATE FUNCTION pgmq._delay_to_vt(delay integer) RETURNS timestamptz
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF delay IS NULL OR delay < 0 THEN
    RAISE EXCEPTION 'delay must be 0 or more seconds, got %', coalesce(delay::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN clock_timestamp() + make_interval(secs => delay);
END;
$$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, ARRAY[msg], NULL, clock_timestamp()) $$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, delay integer) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, ARRAY[msg], NULL, pgmq._delay_to_vt(delay)) $$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, delay timestamptz) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, ARRAY[msg], NULL, delay) $$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, ARRAY[msg], ARRAY[headers], clock_timestamp()) $$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay integer) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, ARRAY[msg], ARRAY[headers], pgmq._delay_to_vt(delay)) $$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay timestamptz) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, ARRAY[msg], ARRAY[headers], delay) $$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[]) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, msgs, NULL, clock_timestamp()) $$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay integer) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, msgs, NULL, pgmq._delay_to_vt(delay)) $$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay timestamptz) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, msgs, NULL, delay) $$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[]) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, msgs, headers, clock_timestamp()) $$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, msgs, headers, pgmq._delay_to_vt(delay)) $$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamptz) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT pgmq._send_batch(queue_name, msgs, headers, delay) $$;

-- Claims up to qty visible messages, oldest first, and hides them for vt seconds.
-- FOR UPDATE SKIP LOCKED: concurrent readers never wait on each other and never receive the same row;
-- a row whose vt has not passed is invisible, so no message reaches two readers inside its window.
-- clock_timestamp() (not now()) so a long transaction cannot read with a stale clock.
CREATE FUNCTION pgmq.read(queue_name text, vt integer, qty integer, conditional jsonb DEFAULT '{}')
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
       WHERE vt <= clock_timestamp()
         AND ($3 = ''{}''::jsonb OR message @> $3)
       ORDER BY msg_id ASC
       LIMIT $1
       FOR UPDATE SKIP LOCKED
     ), claimed AS (
       UPDATE pgmq.%1$I m
       SET vt = clock_timestamp() + make_interval(secs => $2), read_ct = m.read_ct + 1
       FROM cte WHERE m.msg_id = cte.msg_id
       RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers
     )
     SELECT * FROM claimed ORDER BY msg_id', qtable)
  USING qty, vt, coalesce(conditional, '{}'::jsonb);
END;
$$;

CREATE FUNCTION pgmq.read_with_poll(
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

CREATE FUNCTION pgmq.pop(queue_name text, qty integer DEFAULT 1) RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'WITH cte AS (
       SELECT msg_id FROM pgmq.%1$I
       WHERE vt <= clock_timestamp()
       ORDER BY msg_id ASC
       LIMIT $1
       FOR UPDATE SKIP LOCKED
     ), popped AS (
       DELETE FROM pgmq.%1$I m USING cte WHERE m.msg_id = cte.msg_id
       RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers
     )
     SELECT * FROM popped ORDER BY msg_id', pgmq._queue_table(queue_name))
  USING qty;
END;
$$;

CREATE FUNCTION pgmq.archive(queue_name text, msg_ids bigint[]) RETURNS SETOF bigint
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

CREATE FUNCTION pgmq.archive(queue_name text, msg_id bigint) RETURNS boolean
LANGUAGE sql AS $$ SELECT EXISTS (SELECT 1 FROM pgmq.archive(queue_name, ARRAY[msg_id])) $$;

CREATE FUNCTION pgmq.delete(queue_name text, msg_ids bigint[]) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format('DELETE FROM pgmq.%I WHERE msg_id = ANY($1) RETURNING msg_id', pgmq._queue_table(queue_name))
  USING msg_ids;
END;
$$;

CREATE FUNCTION pgmq.delete(queue_name text, msg_id bigint) RETURNS boolean
LANGUAGE sql AS $$ SELECT EXISTS (SELECT 1 FROM pgmq.delete(queue_name, ARRAY[msg_id])) $$;

CREATE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt integer) RETURNS SETOF pgmq.message_record
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

CREATE FUNCTION pgmq.purge_queue(queue_name text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  deleted bigint;
BEGIN
  EXECUTE format('DELETE FROM pgmq.%I', pgmq._queue_table(queue_name));
  GET DIAGNOSTICS deleted = ROW_COUNT;
  RETURN deleted;
END;
$$;

CREATE FUNCTION pgmq.drop_queue(queue_name text, partitioned boolean DEFAULT false) RETURNS boolean
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

-- PGMQ deprecated detaching archives; kept so clients that still call it keep working.
CREATE FUNCTION pgmq.detach_archive(queue_name text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pgmq._queue_table(queue_name);
END;
$$;

CREATE FUNCTION pgmq.list_queues() RETURNS SETOF pgmq.queue_record
LANGUAGE sql STABLE AS $$
  SELECT queue_name, is_partitioned, is_unlogged, created_at FROM pgmq.meta ORDER BY queue_name
$$;

CREATE FUNCTION pgmq.metrics(queue_name text) RETURNS pgmq.metrics_result
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

CREATE FUNCTION pgmq.metrics_all() RETURNS SETOF pgmq.metrics_result
LANGUAGE plpgsql AS $$
DECLARE
  name text;
BEGIN
  FOR name IN SELECT m.queue_name FROM pgmq.meta m ORDER BY m.queue_name LOOP
    RETURN NEXT pgmq.metrics(name);
  END LOOP;
END;
$$;
