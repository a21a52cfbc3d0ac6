-- Batches written as sets (docs/decisions/0008-set-based-batches.md).
--
-- 0008's create_tasks_quiet and 0006's complete_many_and_claim took a batch in one commit but still ran the
-- single-item function once per item: some twenty statements per task, each paying PL/pgSQL dispatch,
-- executor start-up, relation and index opening and constraint set-up for one or two rows. Measured over
-- 10,000 one-step tasks, that start-up was most of the 1.9 ms of database time each task cost. Here a batch
-- costs the same twenty-odd statements whatever its size: one INSERT per table for a batch of tasks, one
-- UPDATE of the steps, one transition write and one audit write for a batch of successful results, one
-- statement that finishes every task they completed. The rows written are exactly those the per-item
-- functions wrote (same states, metadata, sort keys, one most_recent per step and task); anything off the
-- common path (failures, results for the orchestrator, children to start, tasks not simply finishing) still
-- goes through the per-item functions.

-- ------------------------------------------------------------------------------------------------ creation

-- Same contract as 0008: p_tasks = [{"task": {...}, "steps": [...], "edges": [...], "request_msg_id": null |
-- bigint}, ...]; one row per task in input order, each exactly what create_task_quiet returns for it; any
-- error aborts the whole batch (the caller then creates its tasks one by one).
CREATE OR REPLACE FUNCTION tasker.create_tasks_quiet(p_tasks jsonb)
RETURNS TABLE (task_uuid uuid, current_state text, enqueued_steps integer, queue text, msg_ids bigint[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_tasks uuid[];
  v_queues text[];
  v_correlations uuid[];
  -- Root steps (no incoming edge), ordered by task then step uuid, as create_task_quiet sends them.
  v_root_steps uuid[];
  v_root_tasks uuid[];
  v_root_queues text[];
  v_root_correlations uuid[];
  v_sent_ids bigint[] := '{}';
  v_sent_tasks uuid[] := '{}';
  v_q text;
  v_requests bigint[];
BEGIN
  WITH src AS (
    SELECT e.n, e.value -> 'task' AS t,
           coalesce((e.value -> 'task' ->> 'task_uuid')::uuid, tasker.uuid_generate_v7()) AS id
    FROM jsonb_array_elements(p_tasks) WITH ORDINALITY AS e(value, n)
  ), ins AS (
    INSERT INTO tasker.tasks (task_uuid, named_task_uuid, namespace_name, current_state, requested_at, initiator,
                              source_system, reason, tags, context, identity_hash, priority, correlation_id,
                              parent_correlation_id)
    SELECT src.id, (src.t ->> 'named_task_uuid')::uuid, src.t ->> 'namespace_name', 'steps_in_process',
           coalesce((src.t ->> 'requested_at')::timestamptz, now()), src.t ->> 'initiator', src.t ->> 'source_system',
           src.t ->> 'reason', coalesce(src.t -> 'tags', '[]'), coalesce(src.t -> 'context', '{}'),
           src.t ->> 'identity_hash', coalesce((src.t ->> 'priority')::integer, 0),
           (src.t ->> 'correlation_id')::uuid, (src.t ->> 'parent_correlation_id')::uuid
    FROM src
    ORDER BY src.n
    RETURNING 1
  )
  SELECT array_agg(src.id ORDER BY src.n), array_agg('worker_' || (src.t ->> 'namespace_name') || '_queue' ORDER BY src.n),
         array_agg((src.t ->> 'correlation_id')::uuid ORDER BY src.n)
  INTO v_tasks, v_queues, v_correlations
  FROM src;
  IF v_tasks IS NULL THEN
    RETURN;
  END IF;

  INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, metadata, processor_uuid, sort_key, most_recent, created_at)
  SELECT u.id, v.from_state, v.to_state, v.metadata::jsonb, (p_tasks -> (u.n::integer - 1) -> 'task' ->> 'processor_uuid')::uuid,
         v.k, v.k = 4, clock_timestamp()
  FROM unnest(v_tasks) WITH ORDINALITY AS u(id, n)
  CROSS JOIN (VALUES (1, NULL, 'pending', '{"event":"created"}'),
                     (2, 'pending', 'initializing', '{"event":"start"}'),
                     (3, 'initializing', 'enqueuing_steps', '{"event":"ready_steps_found"}'),
                     (4, 'enqueuing_steps', 'steps_in_process', '{"event":"steps_enqueued"}')) AS v(k, from_state, to_state, metadata)
  ORDER BY u.n, v.k;

  -- Every step of every task, a root (no incoming edge) inserted already enqueued.
  WITH st AS (
    SELECT u.n, u.id AS task_id, s.*,
           NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_tasks -> (u.n::integer - 1) -> 'edges') AS e
                       WHERE (e ->> 'to')::uuid = s.workflow_step_uuid) AS is_root
    FROM unnest(v_tasks) WITH ORDINALITY AS u(id, n)
    CROSS JOIN LATERAL jsonb_to_recordset(p_tasks -> (u.n::integer - 1) -> 'steps')
      AS s(workflow_step_uuid uuid, name text, handler_callable text, inputs jsonb, retryable boolean, max_attempts integer,
           backoff_strategy text, backoff_base_ms integer, max_backoff_ms integer, timeout_seconds integer)
  ), ins AS (
    INSERT INTO tasker.workflow_steps (workflow_step_uuid, task_uuid, name, current_state, handler_callable, inputs, retryable,
                                       max_attempts, backoff_strategy, backoff_base_ms, max_backoff_ms, timeout_seconds)
    SELECT st.workflow_step_uuid, st.task_id, st.name, CASE WHEN st.is_root THEN 'enqueued' ELSE 'pending' END,
           st.handler_callable, coalesce(st.inputs, '{}'), st.retryable, st.max_attempts, st.backoff_strategy,
           st.backoff_base_ms, st.max_backoff_ms, st.timeout_seconds
    FROM st
    RETURNING 1
  ), created AS (
    INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
    SELECT st.workflow_step_uuid, NULL, 'pending', '{"event":"created"}', 1, NOT st.is_root, now()
    FROM st
    RETURNING 1
  )
  SELECT coalesce(array_agg(st.workflow_step_uuid ORDER BY st.n, st.workflow_step_uuid) FILTER (WHERE st.is_root), '{}'),
         coalesce(array_agg(st.task_id ORDER BY st.n, st.workflow_step_uuid) FILTER (WHERE st.is_root), '{}'),
         coalesce(array_agg(v_queues[st.n] ORDER BY st.n, st.workflow_step_uuid) FILTER (WHERE st.is_root), '{}'),
         coalesce(array_agg(v_correlations[st.n] ORDER BY st.n, st.workflow_step_uuid) FILTER (WHERE st.is_root), '{}')
  INTO v_root_steps, v_root_tasks, v_root_queues, v_root_correlations
  FROM st;

  INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
  SELECT r.step, 'pending', 'enqueued', '{"event":"enqueue"}', 2, true, clock_timestamp()
  FROM unnest(v_root_steps) WITH ORDINALITY AS r(step, o)
  ORDER BY r.o;

  INSERT INTO tasker.workflow_step_edges (from_step_uuid, to_step_uuid, name)
  SELECT (e ->> 'from')::uuid, (e ->> 'to')::uuid, 'provides'
  FROM jsonb_array_elements(p_tasks) AS x
  CROSS JOIN LATERAL jsonb_array_elements(x -> 'edges') AS e;

  -- The root messages, one send per queue; _q_send returns the ids in the order the messages were given.
  FOR v_q IN SELECT DISTINCT q FROM unnest(v_root_queues) AS q LOOP
    v_sent_ids := v_sent_ids || tasker._q_send(v_q,
      ARRAY(SELECT tasker._step_message(r.task, r.step, r.correlation)
            FROM unnest(v_root_tasks, v_root_steps, v_root_queues, v_root_correlations) WITH ORDINALITY AS r(task, step, q, correlation, o)
            WHERE r.q = v_q ORDER BY r.o),
      clock_timestamp());
    v_sent_tasks := v_sent_tasks || ARRAY(SELECT r.task FROM unnest(v_root_tasks, v_root_queues) WITH ORDINALITY AS r(task, q, o)
                                          WHERE r.q = v_q ORDER BY r.o);
  END LOOP;

  SELECT array_agg((x ->> 'request_msg_id')::bigint) INTO v_requests
  FROM jsonb_array_elements(p_tasks) AS x
  WHERE x ->> 'request_msg_id' IS NOT NULL;
  IF v_requests IS NOT NULL THEN
    PERFORM tasker._q_archive('orchestration_task_requests', v_requests);
  END IF;

  RETURN QUERY
  SELECT u.id, 'steps_in_process'::text,
         (SELECT count(*)::integer FROM unnest(v_root_tasks) AS rt WHERE rt = u.id),
         v_queues[u.n],
         ARRAY(SELECT s.id FROM unnest(v_sent_ids, v_sent_tasks) AS s(id, task) WHERE s.task = u.id ORDER BY s.id)
  FROM unnest(v_tasks) WITH ORDINALITY AS u(id, n)
  ORDER BY u.n;
END;
$$;

-- ------------------------------------------------------------------------------------------------ results

-- Same contract as 0006 (see there). With p_inline and more than one result, the successful ones are stored
-- and applied as a set: every step compare-and-set in_progress -> complete in one UPDATE (fenced by attempt
-- and holder, as in _complete_step), their transitions and audit rows in one write each, their leases
-- archived once per queue, and every task they finished moved to complete in one statement. Completed steps
-- that have children go on to _start_ready_children one by one (in task order, so the worker's room is handed
-- out as before), and a task whose state is anything but the plain "still running" or "just finished" goes
-- to _evaluate_task (the counts below are its counts, and the two plain cases are decided as it decides them).
-- Failures, a lone result, and every result when the orchestrator applies them take _complete_step one by one.
CREATE OR REPLACE FUNCTION tasker.complete_many_and_claim(
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
  -- The successful results applied as a set, in task order: step, task, lease, the lease's queue, whether the
  -- task was still live (not terminal) when locked, and its namespace.
  v_done_steps uuid[];
  v_done_tasks uuid[];
  v_done_leases bigint[];
  v_done_queues text[];
  v_done_live boolean[];
  v_done_namespaces text[];
  v_finish uuid[] := '{}';
  -- States compared through variables, not literals: a generic plan then cannot prove the partial indexes
  -- workflow_steps_in_progress_idx and tasks_active_idx usable, and finds rows by primary key. With the
  -- literals it scanned those indexes whole, and without vacuum they keep an entry for every step that was
  -- ever in progress and every task that ever ran: the cost of a batch grew with the table.
  c_in_progress CONSTANT text := 'in_progress';
  c_steps_in_process CONSTANT text := 'steps_in_process';
  -- A lone result (a chain, one step at a time) costs less through _complete_step: measured with pgbench,
  -- a linear task was about 10 % slower through the set statements, which pay for the batch they expect.
  v_as_set boolean := p_inline AND jsonb_array_length(p_results) > 1;
BEGIN
  IF v_as_set THEN
    -- Every task of the batch locked up front, in task_uuid order: the locking order of every function here.
    -- (One by one, _complete_step takes each lock itself, in the same order.)
    PERFORM 1 FROM tasker.tasks t
    WHERE t.task_uuid IN (SELECT (e ->> 'task_uuid')::uuid FROM jsonb_array_elements(p_results) AS e)
    ORDER BY t.task_uuid
    FOR UPDATE;

    WITH res AS (
      SELECT e.task_uuid, e.step_uuid, e.attempt, e.payload, e.execution_ms
      FROM jsonb_to_recordset(p_results) AS e(task_uuid uuid, step_uuid uuid, attempt integer, success boolean,
                                              payload jsonb, execution_ms integer)
      WHERE e.success
    ), done AS (
      UPDATE tasker.workflow_steps ws
      SET current_state = 'complete', in_process = false, processed = true, processed_at = now(), results = res.payload,
          updated_at = now()
      FROM res
      WHERE ws.workflow_step_uuid = res.step_uuid AND ws.task_uuid = res.task_uuid AND ws.current_state = c_in_progress
        AND ws.attempts = res.attempt AND ws.claimed_by IS NOT DISTINCT FROM p_worker
      RETURNING ws.workflow_step_uuid, ws.task_uuid, ws.lease_msg_id, res.attempt, res.execution_ms
    ), flipped AS (
      UPDATE tasker.workflow_step_transitions tr SET most_recent = false
      FROM done
      WHERE tr.workflow_step_uuid = done.workflow_step_uuid AND tr.most_recent
      RETURNING tr.workflow_step_uuid, tr.sort_key
    ), recorded AS (
      INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
      SELECT d.workflow_step_uuid, v.from_state, v.to_state,
             CASE WHEN v.n = 1
                  THEN jsonb_build_object('event', 'enqueue_for_orchestration', 'worker', p_worker, 'attempt', d.attempt,
                                          'execution_time_ms', d.execution_ms)
                  ELSE '{"event":"complete"}'::jsonb END,
             coalesce(f.sort_key, 0) + v.n, v.n = 2, clock_timestamp()
      FROM done d
      LEFT JOIN flipped f ON f.workflow_step_uuid = d.workflow_step_uuid
      CROSS JOIN (VALUES (1, 'in_progress', 'enqueued_for_orchestration'),
                         (2, 'enqueued_for_orchestration', 'complete')) AS v(n, from_state, to_state)
      ORDER BY d.task_uuid, d.workflow_step_uuid, v.n
      RETURNING workflow_step_transition_uuid, workflow_step_uuid, to_state
    ), audited AS (
      INSERT INTO tasker.workflow_step_result_audit (workflow_step_uuid, workflow_step_transition_uuid, task_uuid, worker_uuid,
                                                     correlation_id, success, attempt, execution_time_ms)
      SELECT d.workflow_step_uuid, rc.workflow_step_transition_uuid, d.task_uuid, p_worker, t.correlation_id, true,
             d.attempt, d.execution_ms
      FROM recorded rc
      JOIN done d ON d.workflow_step_uuid = rc.workflow_step_uuid
      JOIN tasker.tasks t ON t.task_uuid = d.task_uuid
      WHERE rc.to_state = 'enqueued_for_orchestration'
      RETURNING 1
    )
    SELECT array_agg(d.workflow_step_uuid ORDER BY d.task_uuid, d.workflow_step_uuid),
           array_agg(d.task_uuid ORDER BY d.task_uuid, d.workflow_step_uuid),
           array_agg(d.lease_msg_id ORDER BY d.task_uuid, d.workflow_step_uuid),
           array_agg('worker_' || t.namespace_name || '_queue' ORDER BY d.task_uuid, d.workflow_step_uuid),
           array_agg(t.current_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually')
                     ORDER BY d.task_uuid, d.workflow_step_uuid),
           array_agg(t.namespace_name::text ORDER BY d.task_uuid, d.workflow_step_uuid)
    INTO v_done_steps, v_done_tasks, v_done_leases, v_done_queues, v_done_live, v_done_namespaces
    FROM done d
    JOIN tasker.tasks t ON t.task_uuid = d.task_uuid;

    -- A successful result that matched no claim is stale (another run holds the step, or it is finished).
    SELECT v_outcomes || coalesce(jsonb_object_agg(e ->> 'step_uuid',
                                                   CASE WHEN (e ->> 'step_uuid')::uuid = ANY(coalesce(v_done_steps, '{}'))
                                                        THEN 'complete' ELSE 'stale' END), '{}')
    INTO v_outcomes
    FROM jsonb_array_elements(p_results) AS e
    WHERE (e ->> 'success')::boolean;

    IF v_done_steps IS NOT NULL THEN
      FOR v_q IN SELECT DISTINCT q FROM unnest(v_done_queues) AS q LOOP
        PERFORM tasker._q_archive(v_q, ARRAY(SELECT u.lease FROM unnest(v_done_queues, v_done_leases) AS u(q, lease)
                                             WHERE u.q = v_q AND u.lease IS NOT NULL));
      END LOOP;

      -- Children of the completed steps, for live tasks: started here for this worker up to its room, the rest
      -- enqueued. Only steps that have children get the call.
      FOR x IN
        SELECT u.step, u.task, u.namespace
        FROM unnest(v_done_steps, v_done_tasks, v_done_live, v_done_namespaces) WITH ORDINALITY AS u(step, task, live, namespace, o)
        WHERE u.live AND EXISTS (SELECT 1 FROM tasker.workflow_step_edges e WHERE e.from_step_uuid = u.step)
        ORDER BY u.o
      LOOP
        SELECT * INTO r FROM tasker._start_ready_children(x.task, x.step, p_worker, p_lease_seconds,
                                                          CASE WHEN x.namespace = p_namespace THEN v_room ELSE 0 END);
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

      -- The tasks these results touched: finished ones complete together; still running ones need nothing;
      -- anything else (failed steps, retries waiting, a task not in steps_in_process) is _evaluate_task's.
      FOR x IN
        SELECT t.task_uuid AS task, t.current_state AS state, s.total, s.done, s.failed, s.in_flight, s.retrying
        FROM tasker.tasks t
        CROSS JOIN LATERAL (
          SELECT count(*) AS total,
                 count(*) FILTER (WHERE ws.current_state IN ('complete', 'resolved_manually')) AS done,
                 count(*) FILTER (WHERE ws.current_state = 'error') AS failed,
                 count(*) FILTER (WHERE ws.current_state IN ('enqueued', 'in_progress', 'enqueued_for_orchestration',
                                                             'enqueued_as_error_for_orchestration')) AS in_flight,
                 count(*) FILTER (WHERE ws.current_state = 'waiting_for_retry') AS retrying
          FROM tasker.workflow_steps ws WHERE ws.task_uuid = t.task_uuid
        ) s
        WHERE t.task_uuid IN (SELECT DISTINCT u FROM unnest(v_done_tasks) AS u)
          AND t.current_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually', 'blocked_by_failures')
        ORDER BY t.task_uuid
      LOOP
        IF x.state = 'steps_in_process' AND x.failed = 0 AND x.done = x.total THEN
          v_finish := v_finish || x.task;
        ELSIF x.state = 'steps_in_process' AND x.failed = 0 AND NOT (x.in_flight = 0 AND x.retrying > 0) THEN
          NULL; -- still running: what _evaluate_task would decide too
        ELSE
          PERFORM tasker._evaluate_task(x.task, NULL);
        END IF;
      END LOOP;

      IF cardinality(v_finish) > 0 THEN
        WITH fin AS (
          UPDATE tasker.tasks t
          SET current_state = 'complete', complete = true, completed_at = now(), updated_at = now()
          WHERE t.task_uuid = ANY(v_finish) AND t.current_state = c_steps_in_process
          RETURNING t.task_uuid
        ), flipped AS (
          UPDATE tasker.task_transitions tt SET most_recent = false
          FROM fin
          WHERE tt.task_uuid = fin.task_uuid AND tt.most_recent
          RETURNING tt.task_uuid, tt.sort_key
        )
        INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, metadata, processor_uuid, sort_key, most_recent, created_at)
        SELECT fin.task_uuid, v.from_state, v.to_state, v.metadata::jsonb, NULL, coalesce(f.sort_key, 0) + v.n, v.n = 2,
               clock_timestamp()
        FROM fin
        LEFT JOIN flipped f ON f.task_uuid = fin.task_uuid
        CROSS JOIN (VALUES (1, 'steps_in_process', 'evaluating_results', '{"event":"step_completed"}'),
                           (2, 'evaluating_results', 'complete', '{"event":"all_steps_successful"}')) AS v(n, from_state, to_state, metadata)
        ORDER BY fin.task_uuid, v.n;
      END IF;
    END IF;
  END IF;

  -- Everything else one by one: failures, a lone result, and with p_inline false every result.
  FOR x IN
    SELECT e.task_uuid, e.step_uuid, e.attempt, e.success, e.payload, e.execution_ms, t.namespace_name
    FROM jsonb_to_recordset(p_results) AS e(task_uuid uuid, step_uuid uuid, attempt integer, success boolean,
                                            payload jsonb, execution_ms integer)
    LEFT JOIN tasker.tasks t ON t.task_uuid = e.task_uuid
    WHERE NOT (v_as_set AND e.success)
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

-- Planner settings as for every hot-path entry point (0006, end of file): generic plans, nested loops over
-- index scans whatever the statistics say. CREATE OR REPLACE kept none of complete_many_and_claim's.
ALTER FUNCTION tasker.create_tasks_quiet(jsonb) SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off;
ALTER FUNCTION tasker.complete_many_and_claim(jsonb, text, boolean, text, integer, integer, boolean)
  SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off;

-- ------------------------------------------------------------------------------------------------ no JIT

-- JIT compilation off in every function the services call. A generic plan's cost estimate grows with the
-- tables (the planner scales by their current size even without ANALYZE), and once a hot-path statement's
-- estimate passed jit_above_cost (100,000 by default; the disabled seq scans and joins of 0006 inflate
-- estimates further) PostgreSQL compiled it at every execution: measured on a database of 35,000 steps,
-- 6.3 ms of JIT for a 0.02 ms lookup of a step's children, which made every edge of a chain 7 ms slower.
-- These statements are all small; JIT cannot pay off here. Functions they call inherit the setting.
-- PL/pgSQL functions only: a SQL-language function with a SET clause is no longer inlined into the query
-- that calls it, and the task views' readiness functions then ran as opaque functions planned without
-- their task filter (1.8 s for one task's steps on a grown database, measured).
DO $$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'tasker' AND p.prolang = (SELECT l.oid FROM pg_language l WHERE l.lanname = 'plpgsql')
      AND p.proname IN (
      'create_task', 'create_task_quiet', 'create_tasks_quiet', 'claim_steps', 'complete_step',
      'complete_and_claim', 'complete_many_and_claim', 'apply_step_result', 'process_step_results',
      'process_finalization_requests', 'process_orchestration_queues', 'signal_sent', 'pgmq_send_with_notify',
      'pgmq_send_batch_with_notify', 'cancel_task', 'apply_step_action', 'detect_stale_tasks')
  LOOP
    EXECUTE format('ALTER FUNCTION %s SET jit = off', f);
  END LOOP;
END;
$$;
