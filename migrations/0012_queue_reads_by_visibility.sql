-- Queue reads that cost the same however many messages are leased or delayed.
--
-- A read took the oldest visible messages: "WHERE vt <= clock_timestamp() ORDER BY msg_id LIMIT n". Two things
-- made it walk the whole queue:
--   * clock_timestamp() is volatile, so "vt <= clock_timestamp()" could only filter rows, never bound an index
--     scan;
--   * in msg_id order, every message that is not visible (a step in progress holds its message under a lease;
--     a retry waits as a message with a later vt) comes before the visible ones it hides.
-- Measured: a worker queue holding 3,000 leased messages (3,000 steps in progress) read 4,213 blocks, 3.8 ms,
-- to find that nothing was visible, and every claim, poll and refill paid that.
--
-- Now the clock is read once into a parameter, and visible messages are taken in visibility order through an
-- index on (vt, msg_id): the scan starts at the earliest visible message and stops after the n it returns.
-- The order is "visible longest first", msg_id breaking ties: messages sent without a delay come out in the
-- order they were sent, as before (a batch shares one vt); a delayed message or one whose lease expired takes
-- its place from the moment it became visible, instead of ahead of everything sent after it.
-- test/integration/pgmqReadCost.test.ts checks the blocks a read costs with thousands of messages leased.

-- ------------------------------------------------------------------------------------------------ the index

-- New queues: (vt, msg_id) in place of PGMQ's (vt). Same index name, so tools that look for it find it.
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
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (vt, msg_id)', qtable || '_vt_idx', qtable);
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (archived_at)', 'archived_at_idx_' || queue_name, atable);
  INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged)
  VALUES (queue_name, false, unlogged)
  ON CONFLICT DO NOTHING;
END;
$$;

-- Existing queues: the index rebuilt under its name. A queue table holds only live messages, so this is quick.
DO $$
DECLARE
  q record;
BEGIN
  FOR q IN
    SELECT 'q_' || m.queue_name AS qt FROM pgmq.meta m
    WHERE to_regclass(format('pgmq.%I', 'q_' || m.queue_name)) IS NOT NULL
    ORDER BY 1
  LOOP
    EXECUTE format('CREATE INDEX %I ON pgmq.%I (vt, msg_id)', q.qt || '_vt_new', q.qt);
    EXECUTE format('DROP INDEX IF EXISTS pgmq.%I', q.qt || '_vt_idx');
    EXECUTE format('ALTER INDEX pgmq.%I RENAME TO %I', q.qt || '_vt_new', q.qt || '_vt_idx');
  END LOOP;
END;
$$;

-- ------------------------------------------------------------------------------------------------ pgmq reads

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
       ORDER BY vt, msg_id
       LIMIT $1
       FOR UPDATE SKIP LOCKED
     ), claimed AS (
       UPDATE pgmq.%1$I m
       SET vt = clock_timestamp() + make_interval(secs => $2), read_ct = m.read_ct + 1
       FROM cte WHERE m.msg_id = cte.msg_id
       RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers
     )
     SELECT * FROM claimed ORDER BY msg_id', qtable)
  USING qty, vt, coalesce(conditional, '{}'::jsonb), clock_timestamp();
END;
$$;

CREATE OR REPLACE FUNCTION pgmq.pop(queue_name text, qty integer DEFAULT 1) RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'WITH cte AS (
       SELECT msg_id FROM pgmq.%1$I
       WHERE vt <= $2
       ORDER BY vt, msg_id
       LIMIT $1
       FOR UPDATE SKIP LOCKED
     ), popped AS (
       DELETE FROM pgmq.%1$I m USING cte WHERE m.msg_id = cte.msg_id
       RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers
     )
     SELECT * FROM popped ORDER BY msg_id', pgmq._queue_table(queue_name))
  USING qty, clock_timestamp();
END;
$$;

-- ------------------------------------------------------------------------------------------------ tasker reads

-- 0006's generator, with the new read: the clock in a variable, visibility order.
CREATE OR REPLACE FUNCTION tasker._refresh_queue_access() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $gen$
DECLARE
  q record;
  v_send text := '';
  v_read text := '';
  v_archive text := '';
  v_set_vt text := '';
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('tasker._refresh_queue_access'));
  FOR q IN
    SELECT m.queue_name::text AS name, 'q_' || m.queue_name AS qt, 'a_' || m.queue_name AS at
    FROM pgmq.meta m
    WHERE tasker._is_dispatched_queue(m.queue_name)
      AND to_regclass(format('pgmq.%I', 'q_' || m.queue_name)) IS NOT NULL
      AND to_regclass(format('pgmq.%I', 'a_' || m.queue_name)) IS NOT NULL
    ORDER BY 1
  LOOP
    v_send := v_send || format($b$
  ELSIF p_queue = %L THEN
    WITH ins AS (
      INSERT INTO pgmq.%I (vt, message, read_ct)
      SELECT p_vt, u.m, p_read_ct FROM unnest(p_msgs) WITH ORDINALITY AS u(m, o) ORDER BY u.o
      RETURNING msg_id
    )
    SELECT array_agg(ins.msg_id ORDER BY ins.msg_id) INTO v_ids FROM ins;$b$, q.name, q.qt);
    v_read := v_read || format($b$
  ELSIF p_queue = %1$L THEN
    RETURN QUERY
    WITH cte AS (
      SELECT c.msg_id FROM pgmq.%2$I c
      WHERE c.vt <= v_now
      ORDER BY c.vt, c.msg_id
      LIMIT p_qty
      FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE pgmq.%2$I m
      SET vt = clock_timestamp() + make_interval(secs => p_vt), read_ct = m.read_ct + 1
      FROM cte WHERE m.msg_id = cte.msg_id
      RETURNING m.msg_id, m.read_ct, m.message
    )
    SELECT claimed.msg_id, claimed.read_ct, claimed.message FROM claimed ORDER BY claimed.msg_id;$b$, q.name, q.qt);
    v_archive := v_archive || format($b$
  ELSIF p_queue = %L THEN
    WITH archived AS (
      DELETE FROM pgmq.%I d WHERE d.msg_id = ANY(p_ids)
      RETURNING d.msg_id, d.read_ct, d.enqueued_at, d.vt, d.message, d.headers
    ), ins AS (
      INSERT INTO pgmq.%I (msg_id, read_ct, enqueued_at, vt, message, headers)
      SELECT * FROM archived
      RETURNING 1
    )
    SELECT count(*)::integer INTO v_count FROM ins;$b$, q.name, q.qt, q.at);
    v_set_vt := v_set_vt || format($b$
  ELSIF p_queue = %L THEN
    UPDATE pgmq.%I m SET vt = p_vt WHERE m.msg_id = p_id;
    RETURN FOUND;$b$, q.name, q.qt);
  END LOOP;

  EXECUTE format($f$
CREATE OR REPLACE FUNCTION tasker._q_send(p_queue text, p_msgs jsonb[], p_vt timestamptz, p_read_ct integer DEFAULT 0)
RETURNS bigint[]
LANGUAGE plpgsql AS $body$
DECLARE
  v_ids bigint[];
BEGIN
  IF coalesce(cardinality(p_msgs), 0) = 0 THEN
    RETURN '{}';%s
  ELSE
    SELECT array_agg(s.id ORDER BY s.id) INTO v_ids FROM pgmq._send_batch(p_queue, p_msgs, NULL, p_vt) AS s(id);
  END IF;
  RETURN coalesce(v_ids, '{}');
END;
$body$$f$, v_send);

  -- v_now: a volatile clock in the condition could not bound the index scan (see the head of 0012).
  EXECUTE format($f$
CREATE OR REPLACE FUNCTION tasker._q_read(p_queue text, p_vt integer, p_qty integer)
RETURNS TABLE (msg_id bigint, read_ct integer, message jsonb)
LANGUAGE plpgsql AS $body$
DECLARE
  v_now timestamptz := clock_timestamp();
BEGIN
  IF p_qty < 1 THEN
    RETURN;%s
  ELSE
    RETURN QUERY SELECT r.msg_id, r.read_ct, r.message FROM pgmq.read(p_queue, p_vt, p_qty) r;
  END IF;
END;
$body$$f$, v_read);

  EXECUTE format($f$
CREATE OR REPLACE FUNCTION tasker._q_archive(p_queue text, p_ids bigint[]) RETURNS integer
LANGUAGE plpgsql AS $body$
DECLARE
  v_count integer;
BEGIN
  IF coalesce(cardinality(p_ids), 0) = 0 THEN
    RETURN 0;%s
  ELSE
    SELECT count(*)::integer INTO v_count FROM pgmq.archive(p_queue, p_ids);
  END IF;
  RETURN v_count;
END;
$body$$f$, v_archive);

  EXECUTE format($f$
CREATE OR REPLACE FUNCTION tasker._q_set_vt(p_queue text, p_id bigint, p_vt timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $body$
BEGIN
  IF p_id IS NULL THEN
    RETURN false;%s
  ELSE
    RETURN EXISTS (SELECT 1 FROM pgmq.set_vt(p_queue, p_id,
      greatest(0, ceil(extract(epoch FROM p_vt - clock_timestamp())))::integer));
  END IF;
END;
$body$$f$, v_set_vt);
END;
$gen$;

SELECT tasker._refresh_queue_access();

-- The orchestrator's look at whether task requests wait: the same bounded scan.
CREATE OR REPLACE FUNCTION tasker.process_orchestration_queues(p_limit integer, p_vt integer, p_processor uuid,
                                                               OUT step_results integer, OUT finalizations integer,
                                                               OUT task_requests_waiting boolean)
LANGUAGE plpgsql AS $$
DECLARE
  v_now timestamptz;
BEGIN
  step_results := tasker.process_step_results(p_limit, p_vt, p_processor);
  finalizations := tasker.process_finalization_requests(p_limit, p_vt, p_processor);
  v_now := clock_timestamp();
  task_requests_waiting := EXISTS (SELECT 1 FROM pgmq.q_orchestration_task_requests q WHERE q.vt <= v_now);
END;
$$;

-- The settings 0006 and 0009 gave this entry point, which CREATE OR REPLACE dropped.
ALTER FUNCTION tasker.process_orchestration_queues(integer, integer, uuid) SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET jit = off;
