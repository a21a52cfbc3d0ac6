-- The engine's hot path, rebuilt from measurements (docs/decisions/0003-hot-path-measured.md).
--
-- What 0004 paid per step, and what this migration changes:
--   * every queue operation was PL/pgSQL dynamic SQL (EXECUTE format(...)), planned again on every call:
--     tasker's own queues (worker_<ns>_queue, orchestration_*) now go through tasker._q_send / _q_read /
--     _q_archive / _q_set_vt, whose bodies are regenerated with static SQL per queue whenever such a queue is
--     created or dropped (a trigger on pgmq.meta), so their plans are cached per session. Every other queue,
--     and the whole pgmq.* API, is unchanged (pgmq-js compatible);
--   * every transition was three statements (check, flip most_recent, insert) and every state change of a
--     step or task its own UPDATE: the hot path now writes a step's or task's consecutive transitions with one
--     flip and one multi-row insert, and sets the final state with one compare-and-set UPDATE. The rows written
--     are the same as before (same states, metadata, sort keys, one most_recent);
--   * create_task ran per-row PL/pgSQL loops and eight transitions one by one: it is set-based now;
--   * claim_steps claimed one message at a time: enqueued steps are claimed with one UPDATE for the batch;
--   * the recursive ancestor query planned hash joins over whole tables (no statistics here): it walks the
--     graph by index, one level per query;
--   * a result applied in the worker's commit NOTIFYed the worker queue even when that same commit claimed
--     the step it had made ready: the children a result makes ready are started in that commit for the
--     completing worker (_start_ready_children), and only what is left in the queue is signalled;
--   * a commit that NOTIFYs holds a database-wide lock through its WAL flush, so notifying commits ran one at a
--     time: create_task_quiet and complete_*_and_claim can return their signal instead, for the caller to send
--     after the commit with tasker.signal_sent (an asynchronous, signal-only transaction);
--   * a worker stored one result per commit: complete_many_and_claim stores a batch in one;
--   * generic plans made on empty tables scanned them forever, and custom plans were made again on every
--     call: the entry points run with generic plans and without seq scans, hash or merge joins (end of file).
--
-- Every function 0005 calls keeps its name, signature and meaning. Locking order as in 0004: task row, then
-- step rows; several task rows in one transaction are locked in task_uuid order.

-- ------------------------------------------------------------------------------------------------ queue access

-- Tasker's own queues get static-SQL access; any other queue keeps going through pgmq.*.
CREATE FUNCTION tasker._is_dispatched_queue(p_queue text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  SELECT p_queue ~ '^(worker_[a-z0-9_]+_queue|orchestration_[a-z0-9_]+)$'
$$;

-- (Re)creates tasker._q_send, _q_read, _q_archive and _q_set_vt with one static branch per existing tasker
-- queue and the generic pgmq.* call as the fallback. _q_send's p_read_ct > 0 sends messages that are already
-- read (claimed, hidden until p_vt); the generic fallback cannot set read_ct and leaves it 0. Serialized by an advisory lock: the second of two sessions
-- creating queues at once waits for the first to commit, then sees its queue in pgmq.meta.
-- SECURITY DEFINER: a service whose role may create queues but does not own these functions (a worker
-- registering a new namespace) still gets them regenerated. Every name it splices in is a queue name that
-- matched tasker._is_dispatched_queue and goes through format's %L / %I quoting.
CREATE FUNCTION tasker._refresh_queue_access() RETURNS void
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
      WHERE c.vt <= clock_timestamp()
      ORDER BY c.msg_id
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

  EXECUTE format($f$
CREATE OR REPLACE FUNCTION tasker._q_read(p_queue text, p_vt integer, p_qty integer)
RETURNS TABLE (msg_id bigint, read_ct integer, message jsonb)
LANGUAGE plpgsql AS $body$
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

CREATE FUNCTION tasker._queue_access_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF tasker._is_dispatched_queue(CASE WHEN TG_OP = 'DELETE' THEN OLD.queue_name ELSE NEW.queue_name END) THEN
    PERFORM tasker._refresh_queue_access();
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER tasker_queue_access_refresh
AFTER INSERT OR DELETE ON pgmq.meta
FOR EACH ROW EXECUTE FUNCTION tasker._queue_access_changed();

SELECT tasker._refresh_queue_access();

-- One wake-up signal for messages just sent to a queue (the payload 0004's _enqueue_ready_steps sent).
CREATE FUNCTION tasker._notify_sent(p_queue text, p_ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_count integer := coalesce(cardinality(p_ids), 0);
BEGIN
  IF v_count = 0 THEN
    RETURN;
  END IF;
  PERFORM tasker._notify_message_ready(p_queue, jsonb_build_object(
    'event_type', CASE WHEN v_count = 1 THEN 'message_ready' ELSE 'batch_ready' END,
    'msg_id', (SELECT min(i) FROM unnest(p_ids) AS i), 'message_count', v_count, 'delay_seconds', 0,
    'ready_at', clock_timestamp()));
END;
$$;

-- The same signal from a transaction of its own, sent after the work it announces has committed. A
-- transaction that NOTIFYs holds a database-wide lock from just before its commit until the commit is
-- flushed, so every notifying commit in the database runs one at a time, fsync included: measured here,
-- 8 clients reach ~16,000 durable inserts/s but ~4,000 when each also notifies, and the engine's creators and
-- workers spent most of the one-step benchmark waiting on that lock. A transaction that only notifies has
-- nothing to make durable (notifications do not survive a crash anyway), so it commits asynchronously and
-- holds the lock for microseconds. Inside a transaction that already wrote something this is a plain notify
-- and the caller's commit keeps its durability.
CREATE FUNCTION tasker.signal_sent(p_queue text, p_ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF coalesce(cardinality(p_ids), 0) = 0 THEN
    RETURN;
  END IF;
  IF txid_current_if_assigned() IS NULL THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  PERFORM tasker._notify_sent(p_queue, p_ids);
END;
$$;

-- ------------------------------------------------------------------------------------------------ transitions

-- Appends consecutive transitions of one task (p_from -> p_states[1] -> p_states[2] ...) after changing its
-- state by compare-and-set from p_from to the last of p_states; false (nothing written) when the task is no
-- longer in p_from. The same rows as one _task_transition per step, in two statements.
CREATE FUNCTION tasker._task_path(p_task uuid, p_from text, p_states text[], p_events text[], p_processor uuid)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  v_to text := p_states[cardinality(p_states)];
BEGIN
  UPDATE tasker.tasks
  SET current_state = v_to,
      complete = (v_to = 'complete'),
      completed_at = CASE WHEN v_to IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN now() ELSE NULL END,
      updated_at = now()
  WHERE task_uuid = p_task AND current_state = p_from;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  WITH flipped AS (
    UPDATE tasker.task_transitions tt SET most_recent = false
    WHERE tt.task_uuid = p_task AND tt.most_recent
    RETURNING tt.sort_key
  )
  INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, metadata, processor_uuid, sort_key, most_recent, created_at)
  SELECT p_task, CASE WHEN i = 1 THEN p_from ELSE p_states[i - 1] END, p_states[i],
         jsonb_build_object('event', p_events[i]), p_processor,
         coalesce((SELECT max(f.sort_key) FROM flipped f), 0) + i, i = cardinality(p_states), clock_timestamp()
  FROM generate_subscripts(p_states, 1) AS i;
  RETURN true;
END;
$$;

-- ------------------------------------------------------------------------------------------------ readiness

-- Results of every ancestor of a step, by step name. Same result as 0004's recursive query, computed one
-- level of the graph per query through the edge indexes (the recursive CTE was planned as hash joins over
-- whole tables when statistics are missing, ~1 ms on a few thousand steps).
CREATE OR REPLACE FUNCTION tasker.step_dependency_results(p_step uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_frontier uuid[] := ARRAY[p_step];
  v_all uuid[] := '{}';
  v_next uuid[];
  v_depth integer := 0;
  v_result jsonb;
BEGIN
  LOOP
    SELECT array_agg(DISTINCT e.from_step_uuid) INTO v_next
    FROM tasker.workflow_step_edges e
    WHERE e.to_step_uuid = ANY(v_frontier) AND NOT (e.from_step_uuid = ANY(v_all));
    EXIT WHEN v_next IS NULL;
    v_all := v_all || v_next;
    v_frontier := v_next;
    v_depth := v_depth + 1;
    EXIT WHEN v_depth >= 100;
  END LOOP;
  IF cardinality(v_all) = 0 THEN
    RETURN '{}';
  END IF;
  SELECT coalesce(jsonb_object_agg(s.name, s.results), '{}') INTO v_result
  FROM tasker.workflow_steps s
  WHERE s.workflow_step_uuid = ANY(v_all) AND s.current_state IN ('complete', 'resolved_manually');
  RETURN v_result;
END;
$$;

-- Moves the task's pending steps whose parents are all complete (or resolved) to enqueued and sends their
-- messages, without a notification; returns the message ids. With p_parent, only that step's children.
-- The caller holds the task row lock.
CREATE FUNCTION tasker._enqueue_ready_steps_quiet(p_task uuid, p_parent uuid, OUT queue text, OUT msg_ids bigint[])
LANGUAGE plpgsql AS $$
DECLARE
  v_task record;
  v_ready uuid[];
BEGIN
  SELECT t.namespace_name, t.correlation_id INTO v_task FROM tasker.tasks t WHERE t.task_uuid = p_task;
  queue := 'worker_' || v_task.namespace_name || '_queue';
  msg_ids := '{}';
  IF p_parent IS NOT NULL THEN
    -- Scalar subqueries keep the plan a walk over the edge indexes whatever the statistics say.
    SELECT array_agg(c.uuid ORDER BY c.uuid) INTO v_ready
    FROM (SELECT e.to_step_uuid AS uuid FROM tasker.workflow_step_edges e WHERE e.from_step_uuid = p_parent) c
    WHERE (SELECT s.current_state FROM tasker.workflow_steps s WHERE s.workflow_step_uuid = c.uuid) = 'pending'
      AND (SELECT count(*) FROM tasker.workflow_step_edges pe
           JOIN tasker.workflow_steps p ON p.workflow_step_uuid = pe.from_step_uuid
           WHERE pe.to_step_uuid = c.uuid AND p.current_state NOT IN ('complete', 'resolved_manually')) = 0;
  ELSE
    SELECT array_agg(s.workflow_step_uuid ORDER BY s.workflow_step_uuid) INTO v_ready
    FROM tasker.workflow_steps s
    WHERE s.task_uuid = p_task AND s.current_state = 'pending'
      AND (SELECT count(*) FROM tasker.workflow_step_edges pe
           JOIN tasker.workflow_steps p ON p.workflow_step_uuid = pe.from_step_uuid
           WHERE pe.to_step_uuid = s.workflow_step_uuid AND p.current_state NOT IN ('complete', 'resolved_manually')) = 0;
  END IF;
  IF v_ready IS NULL THEN
    RETURN;
  END IF;
  -- Compare-and-set pending -> enqueued for all of them, and their transitions, in one statement.
  WITH moved AS (
    UPDATE tasker.workflow_steps ws
    SET current_state = 'enqueued', in_process = false, updated_at = now()
    WHERE ws.workflow_step_uuid = ANY(v_ready) AND ws.current_state = 'pending'
    RETURNING ws.workflow_step_uuid
  ), flipped AS (
    UPDATE tasker.workflow_step_transitions tr SET most_recent = false
    WHERE tr.workflow_step_uuid IN (SELECT moved.workflow_step_uuid FROM moved) AND tr.most_recent
    RETURNING tr.workflow_step_uuid, tr.sort_key
  ), recorded AS (
    INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
    SELECT f.workflow_step_uuid, 'pending', 'enqueued', '{"event":"enqueue"}', f.sort_key + 1, true, clock_timestamp()
    FROM flipped f
    RETURNING workflow_step_uuid
  )
  SELECT array_agg(r.workflow_step_uuid ORDER BY r.workflow_step_uuid) INTO v_ready FROM recorded r;
  IF v_ready IS NULL THEN
    RETURN;
  END IF;
  msg_ids := tasker._q_send(queue,
    ARRAY(SELECT tasker._step_message(p_task, u, v_task.correlation_id) FROM unnest(v_ready) AS u ORDER BY u),
    clock_timestamp());
END;
$$;

CREATE OR REPLACE FUNCTION tasker._enqueue_ready_steps(p_task uuid, p_parent uuid DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  SELECT * INTO r FROM tasker._enqueue_ready_steps_quiet(p_task, p_parent);
  PERFORM tasker._notify_sent(r.queue, r.msg_ids);
  RETURN coalesce(cardinality(r.msg_ids), 0);
END;
$$;

-- In a worker's completing commit: the completed step's children that are ready now, up to p_limit of them,
-- are started right here for p_worker instead of being enqueued and then read back from the queue:
-- pending -> enqueued -> in_progress (both transitions written, as a claim would), attempts + 1, and their
-- messages sent already claimed (hidden for p_lease_seconds, read_ct 1): each message is the step's lease,
-- exactly as after claim_steps. Ready children beyond p_limit are enqueued as usual; their message ids are
-- returned (msg_ids) for the caller's wake-up signal. The caller holds the task row lock.
--
-- So a worker continues the tasks it is running before it takes older work from the queue (depth first):
-- started tasks finish sooner, and a chain costs one queue insert per step instead of insert, read and
-- re-lock.
CREATE FUNCTION tasker._start_ready_children(p_task uuid, p_parent uuid, p_worker text, p_lease_seconds integer,
                                             p_limit integer, OUT queue text, OUT msg_ids bigint[],
                                             OUT claimed_msgs bigint[], OUT claimed_steps uuid[])
LANGUAGE plpgsql AS $$
DECLARE
  v_task record;
  v_ready uuid[];
  v_take uuid[];
  v_ids bigint[];
  r record;
BEGIN
  claimed_msgs := '{}';
  claimed_steps := '{}';
  IF p_limit < 1 THEN
    SELECT * INTO r FROM tasker._enqueue_ready_steps_quiet(p_task, p_parent);
    queue := r.queue;
    msg_ids := r.msg_ids;
    RETURN;
  END IF;
  SELECT t.namespace_name, t.correlation_id INTO v_task FROM tasker.tasks t WHERE t.task_uuid = p_task;
  queue := 'worker_' || v_task.namespace_name || '_queue';
  msg_ids := '{}';
  SELECT array_agg(c.uuid ORDER BY c.uuid) INTO v_ready
  FROM (SELECT e.to_step_uuid AS uuid FROM tasker.workflow_step_edges e WHERE e.from_step_uuid = p_parent) c
  WHERE (SELECT s.current_state FROM tasker.workflow_steps s WHERE s.workflow_step_uuid = c.uuid) = 'pending'
    AND (SELECT count(*) FROM tasker.workflow_step_edges pe
         JOIN tasker.workflow_steps p ON p.workflow_step_uuid = pe.from_step_uuid
         WHERE pe.to_step_uuid = c.uuid AND p.current_state NOT IN ('complete', 'resolved_manually')) = 0;
  IF v_ready IS NULL THEN
    RETURN;
  END IF;
  v_take := v_ready[1:p_limit];
  v_ids := tasker._q_send(queue,
    ARRAY(SELECT tasker._step_message(p_task, u.id, v_task.correlation_id) FROM unnest(v_take) WITH ORDINALITY AS u(id, n) ORDER BY u.n),
    clock_timestamp() + make_interval(secs => p_lease_seconds), 1);
  WITH moved AS (
    UPDATE tasker.workflow_steps ws
    SET current_state = 'in_progress', in_process = true, attempts = ws.attempts + 1, last_attempted_at = now(),
        claimed_by = p_worker, lease_msg_id = u.msg_id, next_retry_at = NULL, updated_at = now()
    FROM unnest(v_take, v_ids) AS u(step_uuid, msg_id)
    WHERE ws.workflow_step_uuid = u.step_uuid AND ws.current_state = 'pending'
    RETURNING ws.workflow_step_uuid, ws.attempts, u.msg_id
  ), flipped AS (
    UPDATE tasker.workflow_step_transitions tr SET most_recent = false
    WHERE tr.workflow_step_uuid IN (SELECT moved.workflow_step_uuid FROM moved) AND tr.most_recent
    RETURNING tr.workflow_step_uuid, tr.sort_key
  ), recorded AS (
    INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
    SELECT f.workflow_step_uuid, v.from_state, v.to_state, v.metadata, f.sort_key + v.n, v.n = 2, clock_timestamp()
    FROM flipped f
    JOIN moved m ON m.workflow_step_uuid = f.workflow_step_uuid
    CROSS JOIN LATERAL (VALUES (1, 'pending', 'enqueued', '{"event":"enqueue"}'::jsonb),
                               (2, 'enqueued', 'in_progress',
                                jsonb_build_object('event', 'start', 'worker', p_worker, 'attempt', m.attempts)))
      AS v(n, from_state, to_state, metadata)
    ORDER BY f.workflow_step_uuid, v.n
    RETURNING 1
  )
  SELECT coalesce(array_agg(m.msg_id ORDER BY m.msg_id), '{}'), coalesce(array_agg(m.workflow_step_uuid ORDER BY m.msg_id), '{}')
  INTO claimed_msgs, claimed_steps
  FROM moved m;
  IF cardinality(v_ready) > p_limit THEN
    -- The rest go to the queue as usual (they are still pending, their parents complete).
    SELECT * INTO r FROM tasker._enqueue_ready_steps_quiet(p_task, p_parent);
    msg_ids := r.msg_ids;
  END IF;
END;
$$;

-- ------------------------------------------------------------------------------------------------ evaluation

-- Same decisions and transitions as 0004; the common cases (still running, or finished from steps_in_process)
-- cost one state read, one count and, when finishing, two statements.
CREATE OR REPLACE FUNCTION tasker._evaluate_task(p_task uuid, p_processor uuid) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_state text;
  c record;
BEGIN
  SELECT current_state INTO v_state FROM tasker.tasks WHERE task_uuid = p_task;
  IF v_state IN ('complete', 'error', 'cancelled', 'resolved_manually', 'blocked_by_failures') THEN
    RETURN v_state;
  END IF;
  SELECT count(*) AS total,
         count(*) FILTER (WHERE current_state IN ('complete', 'resolved_manually')) AS done,
         count(*) FILTER (WHERE current_state = 'error') AS failed,
         count(*) FILTER (WHERE current_state IN ('enqueued', 'in_progress', 'enqueued_for_orchestration',
                                                  'enqueued_as_error_for_orchestration')) AS in_flight,
         count(*) FILTER (WHERE current_state = 'waiting_for_retry') AS retrying
  INTO c
  FROM tasker.workflow_steps WHERE task_uuid = p_task;

  IF c.failed > 0 THEN
    -- Fail fast (reference §3.2): one permanently failed step fails the task; operators can revive it.
    IF v_state <> 'steps_in_process' THEN
      PERFORM tasker._task_resume(p_task, p_processor);
    END IF;
    PERFORM tasker._task_path(p_task, 'steps_in_process',
      ARRAY['evaluating_results', 'blocked_by_failures', 'error'],
      ARRAY['step_completed', 'permanent_failure', 'give_up'], p_processor);
    RETURN 'error';
  END IF;
  IF c.done = c.total THEN
    IF v_state <> 'steps_in_process' THEN
      PERFORM tasker._task_resume(p_task, p_processor);
    END IF;
    PERFORM tasker._task_path(p_task, 'steps_in_process', ARRAY['evaluating_results', 'complete'],
      ARRAY['step_completed', 'all_steps_successful'], p_processor);
    RETURN 'complete';
  END IF;
  IF c.in_flight = 0 AND c.retrying > 0 THEN
    IF v_state <> 'waiting_for_retry' THEN
      IF v_state <> 'steps_in_process' THEN
        PERFORM tasker._task_resume(p_task, p_processor);
      END IF;
      PERFORM tasker._task_path(p_task, 'steps_in_process', ARRAY['waiting_for_retry'], ARRAY['step_failed'], p_processor);
    END IF;
    RETURN 'waiting_for_retry';
  END IF;
  IF c.in_flight > 0 AND v_state <> 'steps_in_process' THEN
    PERFORM tasker._task_resume(p_task, p_processor);
    SELECT current_state INTO v_state FROM tasker.tasks WHERE task_uuid = p_task;
  END IF;
  RETURN v_state;
END;
$$;

-- ------------------------------------------------------------------------------------------------ results

-- 0004's _apply_step_result without the wake-up for the steps it enqueued (their ids are returned, so the
-- caller can signal once per batch, or not at all when it claims them itself). The caller holds the task row
-- lock. outcome: 'complete', 'retry', 'error' or 'noop'.
CREATE FUNCTION tasker._apply_step_result_quiet(p_step uuid, p_processor uuid,
                                                OUT outcome text, OUT queue text, OUT msg_ids bigint[])
LANGUAGE plpgsql AS $$
DECLARE
  s record;
  v_delay integer;
  v_due timestamptz;
  v_msg bigint;
  r record;
BEGIN
  SELECT ws.workflow_step_uuid, ws.task_uuid, ws.current_state, ws.retryable, ws.last_error, ws.attempts,
         ws.max_attempts, ws.backoff_strategy, ws.backoff_base_ms, ws.max_backoff_ms,
         t.current_state AS task_state, t.namespace_name, t.correlation_id
  INTO s
  FROM tasker.workflow_steps ws JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
  WHERE ws.workflow_step_uuid = p_step;
  IF NOT FOUND THEN
    outcome := 'noop';
    RETURN;
  END IF;
  queue := 'worker_' || s.namespace_name || '_queue';

  IF s.current_state = 'enqueued_for_orchestration' THEN
    PERFORM tasker._step_transition(p_step, 'enqueued_for_orchestration', 'complete', '{"event":"complete"}');
    -- A task that was cancelled or failed meanwhile keeps the result but starts nothing new.
    IF s.task_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN
      SELECT * INTO r FROM tasker._enqueue_ready_steps_quiet(s.task_uuid, p_step);
      msg_ids := r.msg_ids;
    END IF;
    PERFORM tasker._evaluate_task(s.task_uuid, p_processor);
    outcome := 'complete';
    RETURN;
  END IF;

  IF s.current_state = 'enqueued_as_error_for_orchestration' THEN
    IF s.retryable AND coalesce((s.last_error ->> 'retryable')::boolean, true) AND s.attempts < s.max_attempts
       AND s.task_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN
      v_delay := tasker.backoff_delay_ms(s.backoff_strategy, s.backoff_base_ms, s.max_backoff_ms, s.attempts,
                                         (s.last_error ->> 'retry_after_ms')::integer);
      v_due := clock_timestamp() + make_interval(secs => v_delay / 1000.0);
      UPDATE tasker.workflow_steps SET next_retry_at = v_due WHERE workflow_step_uuid = p_step;
      PERFORM tasker._step_transition(p_step, 'enqueued_as_error_for_orchestration', 'waiting_for_retry',
        jsonb_build_object('event', 'wait_for_retry', 'delay_ms', v_delay, 'due_at', v_due));
      -- The retry is a delayed message: it becomes visible exactly when due, and the notification carries
      -- ready_at so listeners set a timer instead of waiting for a poll.
      v_msg := (tasker._q_send(queue, ARRAY[tasker._step_message(s.task_uuid, p_step, s.correlation_id)], v_due))[1];
      PERFORM tasker._notify_message_ready(queue, jsonb_build_object(
        'event_type', 'message_ready', 'msg_id', v_msg, 'delay_seconds', ceil(v_delay / 1000.0), 'ready_at', v_due));
      PERFORM tasker._evaluate_task(s.task_uuid, p_processor);
      outcome := 'retry';
      RETURN;
    END IF;
    PERFORM tasker._step_transition(p_step, 'enqueued_as_error_for_orchestration', 'error',
      jsonb_build_object('event', 'fail', 'attempts', s.attempts, 'max_attempts', s.max_attempts));
    PERFORM tasker._evaluate_task(s.task_uuid, p_processor);
    outcome := 'error';
    RETURN;
  END IF;
  outcome := 'noop';
END;
$$;

CREATE OR REPLACE FUNCTION tasker._apply_step_result(p_step uuid, p_processor uuid) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  SELECT * INTO r FROM tasker._apply_step_result_quiet(p_step, p_processor);
  PERFORM tasker._notify_sent(r.queue, r.msg_ids);
  RETURN r.outcome;
END;
$$;

-- complete_step's work without its wake-up signal, which is returned instead (queue and message ids): the
-- steps an inline application made ready, or the orchestration_step_results message. With p_claim_limit > 0,
-- an inline success starts up to that many of the children it made ready for p_worker
-- (_start_ready_children; returned in claimed_msgs / claimed_steps).
-- A successful result applied inline goes in_progress -> enqueued_for_orchestration -> complete in one UPDATE
-- and one transition write: the same rows, history and audit as storing it and then applying it.
CREATE FUNCTION tasker._complete_step(
  p_task uuid, p_step uuid, p_attempt integer, p_success boolean, p_payload jsonb, p_worker text,
  p_execution_ms integer, p_inline boolean, p_claim_limit integer, p_lease_seconds integer,
  OUT outcome text, OUT queue text, OUT msg_ids bigint[], OUT claimed_msgs bigint[], OUT claimed_steps uuid[]
)
LANGUAGE plpgsql AS $$
DECLARE
  v_namespace text;
  v_correlation uuid;
  v_task_state text;
  v_lease bigint;
  v_to text := CASE WHEN p_success THEN 'enqueued_for_orchestration' ELSE 'enqueued_as_error_for_orchestration' END;
  v_meta jsonb := jsonb_build_object(
    'event', CASE WHEN p_success THEN 'enqueue_for_orchestration' ELSE 'enqueue_as_error_for_orchestration' END,
    'worker', p_worker, 'attempt', p_attempt, 'execution_time_ms', p_execution_ms);
  r record;
BEGIN
  -- Task first, then step: the locking order of every function here.
  SELECT t.namespace_name, t.correlation_id, t.current_state INTO v_namespace, v_correlation, v_task_state
  FROM tasker.tasks t WHERE t.task_uuid = p_task
  FOR UPDATE;
  queue := 'worker_' || v_namespace || '_queue';

  IF p_inline AND p_success THEN
    UPDATE tasker.workflow_steps
    SET current_state = 'complete', in_process = false, processed = true, processed_at = now(),
        results = p_payload, updated_at = now()
    WHERE workflow_step_uuid = p_step AND task_uuid = p_task AND current_state = 'in_progress' AND attempts = p_attempt
      -- The claim is the fence: attempt and holder. attempts alone is not enough, since an operator's
      -- reset_for_retry starts them again at 0 and a worker from before the reset could match a new run.
      AND claimed_by IS NOT DISTINCT FROM p_worker
    RETURNING lease_msg_id INTO v_lease;
    IF NOT FOUND THEN
      outcome := 'stale';
      RETURN;
    END IF;
    WITH flipped AS (
      UPDATE tasker.workflow_step_transitions tr SET most_recent = false
      WHERE tr.workflow_step_uuid = p_step AND tr.most_recent
      RETURNING tr.sort_key
    ), recorded AS (
      INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
      SELECT p_step, v.from_state, v.to_state, v.metadata, coalesce((SELECT max(f.sort_key) FROM flipped f), 0) + v.n,
             v.n = 2, clock_timestamp()
      FROM (VALUES (1, 'in_progress', 'enqueued_for_orchestration', v_meta),
                   (2, 'enqueued_for_orchestration', 'complete', '{"event":"complete"}'::jsonb)) AS v(n, from_state, to_state, metadata)
      RETURNING workflow_step_transition_uuid, to_state
    )
    INSERT INTO tasker.workflow_step_result_audit (workflow_step_uuid, workflow_step_transition_uuid, task_uuid, worker_uuid,
                                                   correlation_id, success, attempt, execution_time_ms)
    SELECT p_step, recorded.workflow_step_transition_uuid, p_task, p_worker, v_correlation, true, p_attempt, p_execution_ms
    FROM recorded WHERE recorded.to_state = 'enqueued_for_orchestration';
    PERFORM tasker._q_archive(queue, ARRAY[v_lease]);
    -- A task that was cancelled or failed meanwhile keeps the result but starts nothing new.
    IF v_task_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN
      SELECT * INTO r FROM tasker._start_ready_children(p_task, p_step, p_worker, p_lease_seconds, p_claim_limit);
      msg_ids := r.msg_ids;
      claimed_msgs := r.claimed_msgs;
      claimed_steps := r.claimed_steps;
    END IF;
    PERFORM tasker._evaluate_task(p_task, NULL);
    outcome := 'complete';
    RETURN;
  END IF;

  UPDATE tasker.workflow_steps
  SET current_state = v_to,
      in_process = false,
      results = CASE WHEN p_success THEN p_payload ELSE results END,
      last_error = CASE WHEN p_success THEN last_error ELSE p_payload || jsonb_build_object('attempt', p_attempt) END,
      updated_at = now()
  WHERE workflow_step_uuid = p_step AND task_uuid = p_task AND current_state = 'in_progress' AND attempts = p_attempt
    AND claimed_by IS NOT DISTINCT FROM p_worker
  RETURNING lease_msg_id INTO v_lease;
  IF NOT FOUND THEN
    outcome := 'stale';
    RETURN;
  END IF;
  WITH flipped AS (
    UPDATE tasker.workflow_step_transitions tr SET most_recent = false
    WHERE tr.workflow_step_uuid = p_step AND tr.most_recent
    RETURNING tr.sort_key
  ), recorded AS (
    INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
    SELECT p_step, 'in_progress', v_to, v_meta, coalesce((SELECT max(f.sort_key) FROM flipped f), 0) + 1, true, clock_timestamp()
    RETURNING workflow_step_transition_uuid
  )
  INSERT INTO tasker.workflow_step_result_audit (workflow_step_uuid, workflow_step_transition_uuid, task_uuid, worker_uuid,
                                                 correlation_id, success, attempt, execution_time_ms)
  SELECT p_step, recorded.workflow_step_transition_uuid, p_task, p_worker, v_correlation, p_success, p_attempt, p_execution_ms
  FROM recorded;
  PERFORM tasker._q_archive(queue, ARRAY[v_lease]);
  IF p_inline THEN
    SELECT * INTO r FROM tasker._apply_step_result_quiet(p_step, NULL);
    outcome := r.outcome;
    msg_ids := r.msg_ids;
    RETURN;
  END IF;
  queue := 'orchestration_step_results';
  msg_ids := tasker._q_send(queue, ARRAY[tasker._step_message(p_task, p_step, v_correlation)], clock_timestamp());
  outcome := 'stored';
END;
$$;

-- Same contract as 0004: 'stale', 'stored', or with p_inline what applying did.
CREATE OR REPLACE FUNCTION tasker.complete_step(
  p_task uuid, p_step uuid, p_attempt integer, p_success boolean, p_payload jsonb, p_worker text,
  p_execution_ms integer, p_inline boolean DEFAULT false
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  SELECT * INTO r FROM tasker._complete_step(p_task, p_step, p_attempt, p_success, p_payload, p_worker, p_execution_ms,
                                             p_inline, 0, 0);
  PERFORM tasker._notify_sent(r.queue, r.msg_ids);
  RETURN r.outcome;
END;
$$;

-- ------------------------------------------------------------------------------------------------ claims

-- Same contract as 0004 (see there). Messages whose step is enqueued and whose task is live (nearly all of
-- them) are claimed together: one UPDATE, one transition write. The rest (expired leases, due retries,
-- duplicates, finished tasks) take 0004's path one by one.
CREATE OR REPLACE FUNCTION tasker.claim_steps(p_namespace text, p_worker text, p_lease_seconds integer, p_limit integer,
                                              p_async_commit boolean DEFAULT true)
RETURNS TABLE (msg_id bigint, task_uuid uuid, step_uuid uuid, step_name text, handler_callable text, inputs jsonb,
               context jsonb, attempt integer, max_attempts integer, timeout_seconds integer, correlation_id uuid,
               dependency_results jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_queue text := 'worker_' || p_namespace || '_queue';
  v_msgs bigint[];
  v_steps uuid[];
  v_tasks uuid[];
  v_claimed_msgs bigint[] := '{}';
  v_claimed_steps uuid[] := '{}';
  v_fast_msgs bigint[];
  v_fast_steps uuid[];
  m record;
  s record;
  v_step uuid;
  v_expired boolean;
BEGIN
  IF p_limit < 1 THEN
    RETURN;
  END IF;
  IF p_async_commit THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  SELECT array_agg(r.msg_id ORDER BY r.msg_id), array_agg((r.message ->> 'step_uuid')::uuid ORDER BY r.msg_id),
         array_agg((r.message ->> 'task_uuid')::uuid ORDER BY r.msg_id)
  INTO v_msgs, v_steps, v_tasks
  FROM tasker._q_read(v_queue, p_lease_seconds, p_limit) r;
  IF v_msgs IS NULL THEN
    RETURN;
  END IF;

  WITH cand AS (
    SELECT DISTINCT ON (m.step_uuid) m.step_uuid, m.msg_id
    FROM unnest(v_msgs, v_steps) AS m(msg_id, step_uuid)
    WHERE (SELECT ws.current_state FROM tasker.workflow_steps ws WHERE ws.workflow_step_uuid = m.step_uuid) = 'enqueued'
    ORDER BY m.step_uuid, m.msg_id
  ), claimed AS (
    UPDATE tasker.workflow_steps ws
    SET current_state = 'in_progress', in_process = true, attempts = ws.attempts + 1, last_attempted_at = now(),
        claimed_by = p_worker, lease_msg_id = cand.msg_id, next_retry_at = NULL, updated_at = now()
    FROM cand
    WHERE ws.workflow_step_uuid = cand.step_uuid AND ws.current_state = 'enqueued'
      AND (SELECT t.current_state FROM tasker.tasks t WHERE t.task_uuid = ws.task_uuid)
          NOT IN ('complete', 'error', 'cancelled', 'resolved_manually')
    RETURNING ws.workflow_step_uuid, cand.msg_id, ws.attempts
  ), flipped AS (
    UPDATE tasker.workflow_step_transitions tr SET most_recent = false
    WHERE tr.workflow_step_uuid IN (SELECT claimed.workflow_step_uuid FROM claimed) AND tr.most_recent
    RETURNING tr.workflow_step_uuid, tr.sort_key
  ), recorded AS (
    INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
    SELECT f.workflow_step_uuid, 'enqueued', 'in_progress',
           jsonb_build_object('event', 'start', 'worker', p_worker, 'attempt', c.attempts), f.sort_key + 1, true, clock_timestamp()
    FROM flipped f JOIN claimed c ON c.workflow_step_uuid = f.workflow_step_uuid
    RETURNING 1
  )
  -- recorded runs whether or not it is read: data-modifying WITH clauses always run to completion.
  SELECT array_agg(c.msg_id ORDER BY c.msg_id), array_agg(c.workflow_step_uuid ORDER BY c.msg_id)
  INTO v_fast_msgs, v_fast_steps
  FROM claimed c;
  v_claimed_msgs := coalesce(v_fast_msgs, '{}');
  v_claimed_steps := coalesce(v_fast_steps, '{}');

  FOR m IN
    SELECT u.msg_id, u.step_uuid, u.task_uuid FROM unnest(v_msgs, v_steps, v_tasks) AS u(msg_id, step_uuid, task_uuid)
    WHERE NOT (u.msg_id = ANY(v_claimed_msgs))
    ORDER BY u.msg_id
  LOOP
    v_step := m.step_uuid;
    SELECT ws.workflow_step_uuid, ws.current_state, ws.attempts, ws.max_attempts, ws.retryable, ws.next_retry_at,
           ws.lease_msg_id, t.current_state AS task_state
    INTO s
    FROM tasker.workflow_steps ws JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
    WHERE ws.workflow_step_uuid = v_step
    FOR UPDATE OF ws;

    IF NOT FOUND OR s.task_state IN ('complete', 'error', 'cancelled', 'resolved_manually') AND s.current_state <> 'in_progress' THEN
      PERFORM tasker._q_archive(v_queue, ARRAY[m.msg_id]);
      CONTINUE;
    END IF;

    v_expired := s.current_state = 'in_progress' AND s.lease_msg_id = m.msg_id;
    IF v_expired THEN
      -- The previous holder's lease ran out: that run failed.
      IF s.retryable AND s.attempts < s.max_attempts THEN
        UPDATE tasker.workflow_steps ws
        SET last_error = jsonb_build_object('message', 'worker lost: lease expired before a result', 'error_type', 'lease_expired',
                                            'retryable', true, 'attempt', s.attempts, 'worker', ws.claimed_by)
        WHERE ws.workflow_step_uuid = v_step;
        PERFORM tasker._step_transition(v_step, 'in_progress', 'waiting_for_retry', '{"event":"lease_expired"}');
        PERFORM tasker._step_transition(v_step, 'waiting_for_retry', 'pending', '{"event":"retry"}');
        PERFORM tasker._step_transition(v_step, 'pending', 'enqueued', '{"event":"enqueue"}');
      ELSE
        UPDATE tasker.workflow_steps ws
        SET last_error = jsonb_build_object('message', 'worker lost: lease expired before a result, and no attempts remain',
                                            'error_type', 'lease_expired', 'retryable', false, 'attempt', s.attempts,
                                            'worker', ws.claimed_by)
        WHERE ws.workflow_step_uuid = v_step;
        PERFORM tasker._step_transition(v_step, 'in_progress', 'error', '{"event":"lease_expired"}');
        PERFORM tasker._q_archive(v_queue, ARRAY[m.msg_id]);
        PERFORM 1 FROM tasker.tasks t WHERE t.task_uuid = m.task_uuid FOR UPDATE;
        PERFORM tasker._evaluate_task(m.task_uuid, NULL);
        CONTINUE;
      END IF;
    ELSIF s.current_state = 'waiting_for_retry' THEN
      IF s.next_retry_at > clock_timestamp() + interval '50 milliseconds' THEN
        -- Not due yet (a stale early message): leave it hidden until the retry is due.
        PERFORM tasker._q_set_vt(v_queue, m.msg_id,
          clock_timestamp() + make_interval(secs => greatest(1, ceil(extract(epoch FROM s.next_retry_at - clock_timestamp())))));
        CONTINUE;
      END IF;
      PERFORM tasker._step_transition(v_step, 'waiting_for_retry', 'pending', '{"event":"retry"}');
      PERFORM tasker._step_transition(v_step, 'pending', 'enqueued', '{"event":"enqueue"}');
    ELSIF s.current_state <> 'enqueued' THEN
      -- Past this point already, or held under another message's lease: a duplicate message.
      PERFORM tasker._q_archive(v_queue, ARRAY[m.msg_id]);
      CONTINUE;
    END IF;

    UPDATE tasker.workflow_steps ws
    SET current_state = 'in_progress', in_process = true, attempts = ws.attempts + 1, last_attempted_at = now(),
        claimed_by = p_worker, lease_msg_id = m.msg_id, next_retry_at = NULL, updated_at = now()
    WHERE ws.workflow_step_uuid = v_step;
    PERFORM tasker._record_step_transition(v_step, 'enqueued', 'in_progress',
      jsonb_build_object('event', 'start', 'worker', p_worker, 'attempt', s.attempts + 1));
    v_claimed_msgs := v_claimed_msgs || m.msg_id;
    v_claimed_steps := v_claimed_steps || v_step;
  END LOOP;

  IF cardinality(v_claimed_msgs) = 0 THEN
    RETURN;
  END IF;
  RETURN QUERY
  SELECT c.msg_id, ws.task_uuid, ws.workflow_step_uuid, ws.name::text, ws.handler_callable, ws.inputs, t.context,
         ws.attempts, ws.max_attempts, ws.timeout_seconds, t.correlation_id,
         tasker.step_dependency_results(ws.workflow_step_uuid)
  FROM unnest(v_claimed_msgs, v_claimed_steps) AS c(msg_id, step_uuid)
  JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = c.step_uuid
  JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
  ORDER BY c.msg_id;
END;
$$;

-- A worker's result and, in the same commit, its next claims, up to p_limit: complete_step(...), the children
-- that result made ready started for p_worker (_start_ready_children, inline mode), then claim_steps(p_namespace,
-- p_worker, p_lease_seconds, what is left of p_limit) with a durable commit. One row per claimed step (outcome
-- repeated), or one row with only the outcome when nothing was claimed. Steps that the result made ready and
-- that this call claimed itself are not signalled: nobody else needs to wake for them. The remaining signal is sent
-- here (p_notify) or returned on a last row without a step (notify_queue, notify_msg_ids) for the caller to
-- send with tasker.signal_sent once this has committed.
CREATE FUNCTION tasker.complete_and_claim(
  p_task uuid, p_step uuid, p_attempt integer, p_success boolean, p_payload jsonb, p_worker text,
  p_execution_ms integer, p_inline boolean, p_namespace text, p_lease_seconds integer, p_limit integer,
  p_notify boolean DEFAULT true
)
RETURNS TABLE (outcome text, msg_id bigint, task_uuid uuid, step_uuid uuid, step_name text, handler_callable text,
               inputs jsonb, context jsonb, attempt integer, max_attempts integer, timeout_seconds integer,
               correlation_id uuid, dependency_results jsonb, notify_queue text, notify_msg_ids bigint[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  r record;
  c record;
  v_claimed bigint[] := '{}';
  v_signal bigint[];
  -- Children can be started here only when they belong to the namespace this worker claims for.
  r_namespace_matches boolean := EXISTS (
    SELECT 1 FROM tasker.tasks t WHERE t.task_uuid = p_task AND t.namespace_name = p_namespace);
BEGIN
  SELECT * INTO r FROM tasker._complete_step(p_task, p_step, p_attempt, p_success, p_payload, p_worker, p_execution_ms,
                                             p_inline, CASE WHEN r_namespace_matches THEN greatest(p_limit, 0) ELSE 0 END,
                                             p_lease_seconds);
  outcome := r.outcome;
  -- Children this result started for us come first, with their handler context like claim_steps returns it.
  IF coalesce(cardinality(r.claimed_steps), 0) > 0 THEN
    FOR c IN
      SELECT u.msg_id, ws.task_uuid, ws.workflow_step_uuid AS step_uuid, ws.name::text AS step_name, ws.handler_callable,
             ws.inputs, t.context, ws.attempts AS attempt, ws.max_attempts, ws.timeout_seconds, t.correlation_id,
             tasker.step_dependency_results(ws.workflow_step_uuid) AS dependency_results
      FROM unnest(r.claimed_msgs, r.claimed_steps) AS u(msg_id, step_uuid)
      JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = u.step_uuid
      JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
      ORDER BY u.msg_id
    LOOP
      msg_id := c.msg_id;
      task_uuid := c.task_uuid;
      step_uuid := c.step_uuid;
      step_name := c.step_name;
      handler_callable := c.handler_callable;
      inputs := c.inputs;
      context := c.context;
      attempt := c.attempt;
      max_attempts := c.max_attempts;
      timeout_seconds := c.timeout_seconds;
      correlation_id := c.correlation_id;
      dependency_results := c.dependency_results;
      v_claimed := v_claimed || c.msg_id;
      RETURN NEXT;
    END LOOP;
  END IF;
  IF p_limit - cardinality(v_claimed) > 0 THEN
    FOR c IN SELECT * FROM tasker.claim_steps(p_namespace, p_worker, p_lease_seconds, p_limit - cardinality(v_claimed), false) LOOP
      msg_id := c.msg_id;
      task_uuid := c.task_uuid;
      step_uuid := c.step_uuid;
      step_name := c.step_name;
      handler_callable := c.handler_callable;
      inputs := c.inputs;
      context := c.context;
      attempt := c.attempt;
      max_attempts := c.max_attempts;
      timeout_seconds := c.timeout_seconds;
      correlation_id := c.correlation_id;
      dependency_results := c.dependency_results;
      v_claimed := v_claimed || c.msg_id;
      RETURN NEXT;
    END LOOP;
  END IF;
  v_signal := r.msg_ids;
  IF coalesce(cardinality(v_signal), 0) > 0 AND r.queue = 'worker_' || p_namespace || '_queue' THEN
    v_signal := ARRAY(SELECT x FROM unnest(v_signal) AS x WHERE NOT (x = ANY(v_claimed)));
  END IF;
  IF coalesce(cardinality(v_signal), 0) > 0 AND p_notify THEN
    PERFORM tasker._notify_sent(r.queue, v_signal);
    v_signal := NULL;
  END IF;
  -- A last row without a step when nothing was claimed (it carries the outcome) or a signal is left to send.
  IF cardinality(v_claimed) = 0 OR coalesce(cardinality(v_signal), 0) > 0 THEN
    msg_id := NULL;
    task_uuid := NULL;
    step_uuid := NULL;
    step_name := NULL;
    handler_callable := NULL;
    inputs := NULL;
    context := NULL;
    attempt := NULL;
    max_attempts := NULL;
    timeout_seconds := NULL;
    correlation_id := NULL;
    dependency_results := NULL;
    IF coalesce(cardinality(v_signal), 0) > 0 THEN
      notify_queue := r.queue;
      notify_msg_ids := v_signal;
    END IF;
    RETURN NEXT;
  END IF;
END;
$$;

-- complete_and_claim for several results of one worker at once: under load, the results that finish while
-- the previous commit is on its way go together, so one commit and one queue read serve all of them. Results
-- are stored in task order (every transaction here locks task rows in task_uuid order, so two batches cannot
-- deadlock). p_results: [{"task_uuid", "step_uuid", "attempt", "success", "payload", "execution_ms"}, ...].
-- Rows: one per claimed step (claim columns, as claim_steps returns them), then one last row without a step
-- that carries outcomes ({step_uuid: outcome}) and notify ({queue: [msg_id, ...]}: the signals left to send,
-- with tasker.signal_sent once this has committed; empty when p_notify sent them here).
CREATE FUNCTION tasker.complete_many_and_claim(
  p_results jsonb, p_worker text, p_inline boolean, p_namespace text, p_lease_seconds integer, p_limit integer,
  p_notify boolean DEFAULT true
)
RETURNS TABLE (msg_id bigint, task_uuid uuid, step_uuid uuid, step_name text, handler_callable text, inputs jsonb,
               context jsonb, attempt integer, max_attempts integer, timeout_seconds integer, correlation_id uuid,
               dependency_results jsonb, outcomes jsonb, notify jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  x record;
  r record;
  c record;
  v_room integer := greatest(p_limit, 0);
  v_outcomes jsonb := '{}';
  v_started_msgs bigint[] := '{}';
  v_started_steps uuid[] := '{}';
  v_claimed bigint[] := '{}';
  v_queues text[] := '{}';
  v_ids bigint[] := '{}';
  v_worker_queue text := 'worker_' || p_namespace || '_queue';
  v_notify jsonb := '{}';
  v_q text;
  v_left bigint[];
BEGIN
  FOR x IN
    SELECT e.task_uuid, e.step_uuid, e.attempt, e.success, e.payload, e.execution_ms, t.namespace_name
    FROM jsonb_to_recordset(p_results) AS e(task_uuid uuid, step_uuid uuid, attempt integer, success boolean,
                                            payload jsonb, execution_ms integer)
    LEFT JOIN tasker.tasks t ON t.task_uuid = e.task_uuid
    ORDER BY e.task_uuid, e.step_uuid
  LOOP
    SELECT * INTO r FROM tasker._complete_step(x.task_uuid, x.step_uuid, x.attempt, x.success, x.payload, p_worker,
                                               x.execution_ms, p_inline,
                                               CASE WHEN x.namespace_name = p_namespace THEN v_room ELSE 0 END,
                                               p_lease_seconds);
    v_outcomes := v_outcomes || jsonb_build_object(x.step_uuid::text, r.outcome);
    IF coalesce(cardinality(r.claimed_steps), 0) > 0 THEN
      v_started_msgs := v_started_msgs || r.claimed_msgs;
      v_started_steps := v_started_steps || r.claimed_steps;
      v_room := v_room - cardinality(r.claimed_steps);
    END IF;
    IF coalesce(cardinality(r.msg_ids), 0) > 0 THEN
      v_queues := v_queues || array_fill(r.queue, ARRAY[cardinality(r.msg_ids)]);
      v_ids := v_ids || r.msg_ids;
    END IF;
  END LOOP;

  FOR c IN
    SELECT u.msg_id, ws.task_uuid, ws.workflow_step_uuid AS step_uuid, ws.name::text AS step_name, ws.handler_callable,
           ws.inputs, t.context, ws.attempts AS attempt, ws.max_attempts, ws.timeout_seconds, t.correlation_id,
           tasker.step_dependency_results(ws.workflow_step_uuid) AS dependency_results
    FROM unnest(v_started_msgs, v_started_steps) AS u(msg_id, step_uuid)
    JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = u.step_uuid
    JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
    ORDER BY u.msg_id
  LOOP
    msg_id := c.msg_id; task_uuid := c.task_uuid; step_uuid := c.step_uuid; step_name := c.step_name;
    handler_callable := c.handler_callable; inputs := c.inputs; context := c.context; attempt := c.attempt;
    max_attempts := c.max_attempts; timeout_seconds := c.timeout_seconds; correlation_id := c.correlation_id;
    dependency_results := c.dependency_results;
    RETURN NEXT;
  END LOOP;
  IF v_room > 0 THEN
    FOR c IN SELECT * FROM tasker.claim_steps(p_namespace, p_worker, p_lease_seconds, v_room, false) LOOP
      msg_id := c.msg_id; task_uuid := c.task_uuid; step_uuid := c.step_uuid; step_name := c.step_name;
      handler_callable := c.handler_callable; inputs := c.inputs; context := c.context; attempt := c.attempt;
      max_attempts := c.max_attempts; timeout_seconds := c.timeout_seconds; correlation_id := c.correlation_id;
      dependency_results := c.dependency_results;
      v_claimed := v_claimed || c.msg_id;
      RETURN NEXT;
    END LOOP;
  END IF;

  -- Signals: every queue that got messages, less the worker-queue messages this call claimed itself.
  FOR v_q IN SELECT DISTINCT u.name FROM unnest(v_queues) AS u(name) LOOP
    v_left := ARRAY(SELECT u.id FROM unnest(v_queues, v_ids) AS u(name, id)
                    WHERE u.name = v_q AND NOT (v_q = v_worker_queue AND u.id = ANY(v_claimed)));
    IF cardinality(v_left) > 0 THEN
      IF p_notify THEN
        PERFORM tasker._notify_sent(v_q, v_left);
      ELSE
        v_notify := v_notify || jsonb_build_object(v_q, to_jsonb(v_left));
      END IF;
    END IF;
  END LOOP;

  msg_id := NULL; task_uuid := NULL; step_uuid := NULL; step_name := NULL; handler_callable := NULL; inputs := NULL;
  context := NULL; attempt := NULL; max_attempts := NULL; timeout_seconds := NULL; correlation_id := NULL;
  dependency_results := NULL;
  outcomes := v_outcomes;
  notify := v_notify;
  RETURN NEXT;
END;
$$;

-- ------------------------------------------------------------------------------------------------ orchestration

-- Same contract as 0004. Reads results with static SQL, applies them under task locks taken in one order,
-- archives the batch in one statement and signals each worker queue once per batch.
CREATE OR REPLACE FUNCTION tasker.process_step_results(p_limit integer, p_vt integer DEFAULT 30, p_processor uuid DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_msgs bigint[];
  v_steps uuid[];
  v_queues text[] := '{}';
  v_ids bigint[] := '{}';
  a record;
  i integer;
  v_q text;
BEGIN
  SELECT array_agg(r.msg_id ORDER BY r.msg_id), array_agg((r.message ->> 'step_uuid')::uuid ORDER BY r.msg_id)
  INTO v_msgs, v_steps
  FROM tasker._q_read('orchestration_step_results', p_vt, p_limit) r;
  IF v_msgs IS NULL THEN
    RETURN 0;
  END IF;
  -- Lock every task of the batch in one order (task_uuid): two orchestrators holding batches that share
  -- tasks in different orders would otherwise deadlock.
  PERFORM 1 FROM tasker.tasks t
  WHERE t.task_uuid IN (SELECT ws.task_uuid FROM tasker.workflow_steps ws WHERE ws.workflow_step_uuid = ANY(v_steps))
  ORDER BY t.task_uuid
  FOR UPDATE;
  FOR i IN 1 .. cardinality(v_msgs) LOOP
    IF v_steps[i] IS NOT NULL THEN
      SELECT * INTO a FROM tasker._apply_step_result_quiet(v_steps[i], p_processor);
      IF coalesce(cardinality(a.msg_ids), 0) > 0 THEN
        v_queues := v_queues || array_fill(a.queue, ARRAY[cardinality(a.msg_ids)]);
        v_ids := v_ids || a.msg_ids;
      END IF;
    END IF;
  END LOOP;
  PERFORM tasker._q_archive('orchestration_step_results', v_msgs);
  FOR v_q IN SELECT DISTINCT u.name FROM unnest(v_queues) AS u(name) LOOP
    PERFORM tasker._notify_sent(v_q, ARRAY(SELECT u.id FROM unnest(v_queues, v_ids) AS u(name, id) WHERE u.name = v_q));
  END LOOP;
  RETURN cardinality(v_msgs);
END;
$$;

CREATE OR REPLACE FUNCTION tasker.process_finalization_requests(p_limit integer, p_vt integer DEFAULT 30, p_processor uuid DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  m record;
  v_task uuid;
  v_msgs bigint[] := '{}';
BEGIN
  FOR m IN SELECT r.msg_id, r.message FROM tasker._q_read('orchestration_task_finalizations', p_vt, p_limit) r LOOP
    BEGIN
      v_task := (m.message ->> 'task_uuid')::uuid;
    EXCEPTION WHEN invalid_text_representation THEN
      v_task := NULL;
    END;
    IF v_task IS NOT NULL AND EXISTS (SELECT 1 FROM tasker.tasks t WHERE t.task_uuid = v_task FOR UPDATE) THEN
      PERFORM tasker._enqueue_ready_steps(v_task, NULL);
      PERFORM tasker._evaluate_task(v_task, p_processor);
    END IF;
    v_msgs := v_msgs || m.msg_id;
  END LOOP;
  PERFORM tasker._q_archive('orchestration_task_finalizations', v_msgs);
  RETURN cardinality(v_msgs);
END;
$$;

-- The orchestrator's whole look at its queues in one round trip: step results, then finalization requests
-- (both applied here), and whether task requests wait (those are created in TypeScript, which validates them).
CREATE FUNCTION tasker.process_orchestration_queues(p_limit integer, p_vt integer, p_processor uuid,
                                                    OUT step_results integer, OUT finalizations integer,
                                                    OUT task_requests_waiting boolean)
LANGUAGE plpgsql AS $$
BEGIN
  step_results := tasker.process_step_results(p_limit, p_vt, p_processor);
  finalizations := tasker.process_finalization_requests(p_limit, p_vt, p_processor);
  task_requests_waiting := EXISTS (SELECT 1 FROM pgmq.q_orchestration_task_requests q WHERE q.vt <= clock_timestamp());
END;
$$;

-- ------------------------------------------------------------------------------------------------ creation

-- Same contract and the same rows as 0004, set-based: the task is inserted already in steps_in_process with
-- its four transitions in one statement, root steps are inserted already enqueued with their two transitions,
-- and the root messages go out in one insert with one notification.
-- create_task without the wake-up signal, which is returned instead (queue, msg_ids) for the caller to send
-- with tasker.signal_sent once this has committed.
CREATE FUNCTION tasker.create_task_quiet(p_task jsonb, p_steps jsonb, p_edges jsonb, p_request_msg_id bigint DEFAULT NULL)
RETURNS TABLE (task_uuid uuid, current_state text, enqueued_steps integer, queue text, msg_ids bigint[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_task uuid := coalesce((p_task ->> 'task_uuid')::uuid, tasker.uuid_generate_v7());
  v_processor uuid := (p_task ->> 'processor_uuid')::uuid;
  v_correlation uuid := (p_task ->> 'correlation_id')::uuid;
  v_queue text := 'worker_' || (p_task ->> 'namespace_name') || '_queue';
  v_targets uuid[];
  v_roots uuid[];
  v_ids bigint[];
BEGIN
  INSERT INTO tasker.tasks (task_uuid, named_task_uuid, namespace_name, current_state, requested_at, initiator,
                            source_system, reason, tags, context, identity_hash, priority, correlation_id,
                            parent_correlation_id)
  VALUES (v_task, (p_task ->> 'named_task_uuid')::uuid, p_task ->> 'namespace_name', 'steps_in_process',
          coalesce((p_task ->> 'requested_at')::timestamptz, now()), p_task ->> 'initiator', p_task ->> 'source_system',
          p_task ->> 'reason', coalesce(p_task -> 'tags', '[]'), coalesce(p_task -> 'context', '{}'),
          p_task ->> 'identity_hash', coalesce((p_task ->> 'priority')::integer, 0),
          v_correlation, (p_task ->> 'parent_correlation_id')::uuid);
  INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, metadata, processor_uuid, sort_key, most_recent, created_at)
  SELECT v_task, v.from_state, v.to_state, v.metadata::jsonb, v_processor, v.n, v.n = 4, clock_timestamp()
  FROM (VALUES (1, NULL, 'pending', '{"event":"created"}'),
               (2, 'pending', 'initializing', '{"event":"start"}'),
               (3, 'initializing', 'enqueuing_steps', '{"event":"ready_steps_found"}'),
               (4, 'enqueuing_steps', 'steps_in_process', '{"event":"steps_enqueued"}')) AS v(n, from_state, to_state, metadata)
  ORDER BY v.n;

  SELECT coalesce(array_agg(DISTINCT (e ->> 'to')::uuid), '{}') INTO v_targets FROM jsonb_array_elements(p_edges) AS e;

  WITH ins AS (
    INSERT INTO tasker.workflow_steps (workflow_step_uuid, task_uuid, name, current_state, handler_callable, inputs, retryable,
                                       max_attempts, backoff_strategy, backoff_base_ms, max_backoff_ms, timeout_seconds)
    SELECT s.workflow_step_uuid, v_task, s.name,
           CASE WHEN s.workflow_step_uuid = ANY(v_targets) THEN 'pending' ELSE 'enqueued' END,
           s.handler_callable, coalesce(s.inputs, '{}'), s.retryable,
           s.max_attempts, s.backoff_strategy, s.backoff_base_ms, s.max_backoff_ms, s.timeout_seconds
    FROM jsonb_to_recordset(p_steps) AS s(workflow_step_uuid uuid, name text, handler_callable text, inputs jsonb,
         retryable boolean, max_attempts integer, backoff_strategy text, backoff_base_ms integer,
         max_backoff_ms integer, timeout_seconds integer)
    RETURNING workflow_step_uuid, current_state
  )
  SELECT coalesce(array_agg(ins.workflow_step_uuid ORDER BY ins.workflow_step_uuid) FILTER (WHERE ins.current_state = 'enqueued'), '{}')
  INTO v_roots FROM ins;

  INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
  SELECT x.step, x.from_state, x.to_state, x.metadata::jsonb, x.sort_key, x.most_recent, x.at
  FROM (
    SELECT (s ->> 'workflow_step_uuid')::uuid AS step, NULL AS from_state, 'pending' AS to_state,
           '{"event":"created"}' AS metadata, 1 AS sort_key,
           NOT ((s ->> 'workflow_step_uuid')::uuid = ANY(v_roots)) AS most_recent, now() AS at
    FROM jsonb_array_elements(p_steps) AS s
    UNION ALL
    SELECT r, 'pending', 'enqueued', '{"event":"enqueue"}', 2, true, clock_timestamp()
    FROM unnest(v_roots) AS r
  ) x;
  INSERT INTO tasker.workflow_step_edges (from_step_uuid, to_step_uuid, name)
  SELECT (e ->> 'from')::uuid, (e ->> 'to')::uuid, 'provides' FROM jsonb_array_elements(p_edges) AS e;

  v_ids := tasker._q_send(v_queue,
    ARRAY(SELECT tasker._step_message(v_task, r, v_correlation) FROM unnest(v_roots) AS r ORDER BY r),
    clock_timestamp());

  IF p_request_msg_id IS NOT NULL THEN
    PERFORM tasker._q_archive('orchestration_task_requests', ARRAY[p_request_msg_id]);
  END IF;
  RETURN QUERY SELECT v_task, 'steps_in_process'::text, cardinality(v_roots), v_queue, v_ids;
END;
$$;

CREATE OR REPLACE FUNCTION tasker.create_task(p_task jsonb, p_steps jsonb, p_edges jsonb, p_request_msg_id bigint DEFAULT NULL)
RETURNS TABLE (task_uuid uuid, current_state text, enqueued_steps integer)
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  SELECT * INTO r FROM tasker.create_task_quiet(p_task, p_steps, p_edges, p_request_msg_id);
  PERFORM tasker._notify_sent(r.queue, r.msg_ids);
  RETURN QUERY SELECT r.task_uuid, r.current_state, r.enqueued_steps;
END;
$$;

-- ------------------------------------------------------------------------------------------------ plans

-- Planner settings for the hot path's entry points (functions they call inherit them):
--
-- plan_cache_mode: PL/pgSQL plans each statement with its parameter values for its first five runs and keeps
-- doing so while the generic plan looks costlier than those custom plans, which it does for every statement
-- that takes an array (a custom plan knows the array holds one element, the generic plan guesses more).
-- Measured: claim_steps 1.0 ms with re-planning, 0.5 ms with generic plans.
--
-- enable_seqscan, enable_hashjoin, enable_mergejoin: a generic plan is kept for the life of the session. Planned while a table is small (a new
-- database, or right after a TRUNCATE, as every benchmark scenario starts), it scans the table, and keeps
-- scanning it when it has grown to thousands of rows: measured during 2,000 concurrent diamonds,
-- _enqueue_ready_steps 5.9 ms, _q_read 2.2 ms and step_dependency_results 1.3 ms per call. And a join of a
-- handful of ids (an unnest, a batch of results) to a big table was planned as a merge join over its whole
-- primary key: 2.4 ms per call of complete_many_and_claim. Every statement here starts from a few ids and
-- reads by primary key or an indexed column, so nested loops over index scans are right whatever the
-- statistics say: seq scans, hash joins and merge joins are off (they remain possible where nothing else is).
ALTER FUNCTION tasker.create_task(jsonb, jsonb, jsonb, bigint) SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off;
ALTER FUNCTION tasker.create_task_quiet(jsonb, jsonb, jsonb, bigint) SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off;
ALTER FUNCTION tasker.claim_steps(text, text, integer, integer, boolean) SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off;
ALTER FUNCTION tasker.complete_step(uuid, uuid, integer, boolean, jsonb, text, integer, boolean)
  SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off;
ALTER FUNCTION tasker.complete_and_claim(uuid, uuid, integer, boolean, jsonb, text, integer, boolean, text, integer, integer, boolean)
  SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off;
ALTER FUNCTION tasker.complete_many_and_claim(jsonb, text, boolean, text, integer, integer, boolean)
  SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off;
ALTER FUNCTION tasker.apply_step_result(uuid, uuid) SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off;
ALTER FUNCTION tasker.process_step_results(integer, integer, uuid) SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off;
ALTER FUNCTION tasker.process_finalization_requests(integer, integer, uuid) SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off;
ALTER FUNCTION tasker.process_orchestration_queues(integer, integer, uuid) SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off;
