-- Static-SQL queue access for Tasker's own queues: tasker._q_send, _q_read, _q_archive and _q_set_vt, which
-- this file does not define but generates inside the database (tasker._refresh_queue_access), and the trigger
-- function that regenerates them whenever one of those queues is created or dropped.
--
-- Callers of the generated functions: the engine's hot path in SQL: claim_steps (_q_read, _q_archive,
-- _q_set_vt), process_step_results and process_finalization_requests (_q_read, _q_archive), _complete_step,
-- create_tasks (_q_send, _q_archive), _start_ready_children,
-- _enqueue_ready_steps and _apply_step_result (_q_send). No TypeScript calls them directly.

-- Tasker's own queues: worker_<namespace>_queue and orchestration_<name>. Only these get static branches; any
-- other queue goes through pgmq.* (pgmq_messages.sql).
CREATE OR REPLACE FUNCTION tasker._is_dispatched_queue(p_queue text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  SELECT p_queue ~ '^(worker_[a-z0-9_]+_queue|orchestration_[a-z0-9_]+)$'
$$;

-- (Re)creates tasker._q_send, _q_read, _q_archive and _q_set_vt with one static branch per existing tasker queue
-- ("ELSIF p_queue = 'worker_x_queue' THEN <statement on pgmq.q_worker_x_queue>") and the generic pgmq.* call as
-- the fallback for any other queue.
--
-- Why generated static SQL, and not one function with EXECUTE format(...): PL/pgSQL keeps the plan of a static
-- statement for the session, while dynamic SQL is parsed and planned again on every call, which is what every
-- pgmq.* function does. Measured: pgmq.read of an empty queue 0.32 ms, the same query static 0.07 ms
-- (docs/decisions/0003-hot-path-measured.md), paid on every claim, poll, completion and heartbeat. A table
-- name cannot be a parameter, so a static statement names one queue table: hence one branch per queue, made
-- again by the pgmq.meta trigger (tasker._queue_access_changed) when a tasker queue comes or goes. The
-- pgmq.q_<name> tables stay ordinary PGMQ queue tables, so pgmq.* and PGMQ clients see the same queues.
--
-- A kept plan is made once per connection, often on an empty queue (every engine start begins so, and every
-- benchmark scenario after its TRUNCATE), and is then used while the queue grows to thousands of messages: a
-- seq scan planned so cost _q_read 2.2 ms a call during 2,000 concurrent diamonds, which is why its callers run
-- with generic plans and seq scans, hash and merge joins off. And the read's statement is shaped to leave the
-- planner no plan that is cheap only on an empty queue:
--   * the clock is read once into v_now: a volatile clock_timestamp() in the condition could never bound the
--     index scan (below);
--   * "ORDER BY c.vt, c.msg_id + 0" follows the queue's (vt, (msg_id + 0)) index, so the scan starts at the
--     earliest visible message and stops after the p_qty it takes; msg_id + 0 keeps lookups by msg_id off that
--     index (pgmq._create says why): scanning it whole cost 44 ms a read behind 50,000 queued messages;
--   * the UPDATE names the locked rows by key, "m.msg_id = ANY(ARRAY(SELECT cte.msg_id FROM cte))", instead of
--     joining them back to the queue table: under the callers' settings (generic plans, no hash or merge
--     joins) a join planned on an empty queue read the queue's whole primary key, 13,000 index entries and 8 ms
--     for each read of 41 messages behind 4,000 queued. With no join to plan, the primary key is the only way to
--     the rows. test/integration/pgmqReadCost.test.ts checks what a read costs with thousands of messages queued.
--
-- The static branches and the fallbacks differ in two places: _q_send's p_read_ct > 0 sends messages that are
-- already read (claimed, hidden until p_vt), which the fallback cannot do (it leaves read_ct 0); _q_set_vt's
-- static branch sets vt to p_vt exactly, the fallback rounds up to whole seconds (pgmq.set_vt).
--
-- A queue in pgmq.meta whose q_ or a_ table is missing gets no branch (its calls fall back to pgmq.*, which
-- raises a clear error). Serialized by an advisory lock: the second of two sessions creating queues at once
-- waits for the first to commit, then sees its queue in pgmq.meta (at READ COMMITTED; a REPEATABLE READ
-- creator would regenerate without the other's queue, whose calls then take the fallback until the next
-- refresh).
-- SECURITY DEFINER: a service whose role may create queues but does not own these functions (a worker
-- registering a new namespace) still gets them regenerated. search_path is pinned to pg_catalog, pg_temp, so
-- every name is schema-qualified; every name it splices in is a queue name that matched
-- tasker._is_dispatched_queue and goes through format's %L / %I quoting.
CREATE OR REPLACE FUNCTION tasker._refresh_queue_access() RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $gen$
DECLARE
  q record;
  v_send text := '';
  v_read text := '';
  v_archive text := '';
  v_set_vt text := '';
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('tasker._refresh_queue_access'));
  -- pgmq.meta does not exist yet when the function files are applied to a new database (they run before
  -- the tables are made): then every _q_* function is made with its fallback path only.
  IF to_regclass('pgmq.meta') IS NOT NULL THEN
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
      ORDER BY c.vt, c.msg_id + 0
      LIMIT p_qty
      FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE pgmq.%2$I m
      SET vt = clock_timestamp() + make_interval(secs => p_vt), read_ct = m.read_ct + 1
      WHERE m.msg_id = ANY(ARRAY(SELECT cte.msg_id FROM cte))
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
  END IF;

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

  -- v_now: the clock is read once into a variable. clock_timestamp() in the condition is volatile, so it
  -- could only filter rows, never bound the scan of the (vt, (msg_id + 0)) index: a worker queue holding
  -- 3,000 leased messages read 4,213 blocks, 3.8 ms, to find that nothing was visible.
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

-- Trigger function: AFTER INSERT OR DELETE on pgmq.meta, for each row. Regenerates tasker._q_* when one of
-- tasker's own queues is created (pgmq.create) or dropped (pgmq.drop_queue), in the same transaction, so the
-- new branch commits with the queue.
CREATE OR REPLACE FUNCTION tasker._queue_access_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF tasker._is_dispatched_queue(CASE WHEN TG_OP = 'DELETE' THEN OLD.queue_name ELSE NEW.queue_name END) THEN
    PERFORM tasker._refresh_queue_access();
  END IF;
  RETURN NULL;
END;
$$;

-- Generate tasker._q_* now, from the templates above. Replacing the generator changes nothing it has already
-- generated: without this call, a change to a template (or to this file) would reach the _q_* functions only
-- when a tasker queue is next created or dropped. The migrator re-applies this file whenever it changes, so
-- this regenerates them with the current templates, for every existing queue. On a new database, where
-- pgmq.meta does not exist yet, it makes them with their fallback paths only; the pgmq.meta trigger adds each
-- tasker queue's branch as the queue is created.
SELECT tasker._refresh_queue_access();
