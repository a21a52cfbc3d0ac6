-- Task creation: a task with its steps, edges and transitions, and its root steps enqueued, in one commit.
--
-- Callers: src/db/queries/createTask.ts (insertTask, and the batches of its creation batcher). Validation
-- (template, input schema, identity) happens there, in TypeScript; these functions only write. A duplicate identity
-- raises unique_violation on tasks_identity_hash_key. request_msg_id, when given, archives the
-- orchestration_task_requests message in the same commit, so a request becomes a task exactly once.
--
-- What a task is created as, set-based: the task row already in steps_in_process with its four transitions
-- (-> pending -> initializing -> enqueuing_steps -> steps_in_process); every root step (no incoming edge) already
-- enqueued with two transitions (-> pending -> enqueued) and its message in worker_<namespace>_queue; every other
-- step pending with one. The rows are those the state machine writes one transition at a time.
--
-- A step's way on from here: claimed by a worker (claim_steps.sql), its result stored and applied in the worker's
-- commit (complete_steps.sql, complete_one_step.sql) or by the orchestrator (step_results.sql), its children
-- enqueued or started (readiness.sql, claim_steps.sql), its task finished (task_finalization.sql).
--
-- Planner settings of the entry points the services call (the functions they call run under them too):
--   * plan_cache_mode = force_generic_plan: otherwise PL/pgSQL plans a statement again with its parameter values
--     for as long as the generic plan looks costlier, which it always does for a statement taking an array
--     (claim_steps: 1.0 ms a call re-planning, 0.5 ms with generic plans);
--   * enable_seqscan, enable_hashjoin, enable_mergejoin = off: a generic plan is kept for the session, and one made
--     while the tables are small (a new database, right after a TRUNCATE) keeps scanning them once they have grown.
--     Every statement here starts from a few ids and reads by primary key or an indexed column, so nested loops
--     over index scans are right whatever the statistics say (the others remain possible where nothing else is);
--   * jit = off: a generic plan's cost estimate grows with the tables, and past jit_above_cost every execution of a
--     small statement is compiled first (6.3 ms of JIT for a 0.02 ms lookup, on 35,000 steps).
-- CREATE OR REPLACE sets exactly the settings it names, so each definition carries them;
-- test/integration/engine/hotPathSettings.test.ts checks them.

-- The step message (reference §6.1): three ids; workers read everything else from the database. STABLE, the
-- volatility of the jsonb_build_object it wraps, and without a SET clause, so the planner inlines it into the
-- statements that send steps: declared IMMUTABLE (more than its body is) it cannot be inlined, and each call runs as
-- a SQL function that plans its body again. Callers: every function that sends a step message (creation, readiness,
-- _start_ready_children, _complete_step, _apply_step_result, _redispatch_steps).
CREATE OR REPLACE FUNCTION tasker._step_message(p_task uuid, p_step uuid, p_correlation uuid)
RETURNS jsonb
LANGUAGE sql STABLE
AS $$
  SELECT jsonb_build_object('task_uuid', p_task, 'step_uuid', p_step, 'correlation_id', p_correlation)
$$;

-- Creates one task without a wake-up signal: the queue and the root messages' ids are returned, for the caller to
-- signal with tasker.signal_sent once this has committed. A commit that NOTIFYs holds a database-wide lock from just
-- before it commits until it is flushed, so creations that notify in their commit run one at a time (8 clients:
-- ~16,000 durable inserts/s, ~4,000 when each also notifies); a signal-only transaction commits asynchronously and
-- holds that lock for microseconds, and signalSoon (src/db/queries/completeStep.ts) merges concurrent ones.
-- p_task carries the task row's values (task_uuid optional, processor_uuid for the transitions), p_steps the steps
-- with their keys, p_edges [{"from", "to"}, ...]. Statements per task, whatever its size: one insert per table, one
-- _q_send. Caller: create_tasks, for a batch of one.
CREATE OR REPLACE FUNCTION tasker._create_single_task(p_task jsonb, p_steps jsonb, p_edges jsonb,
                                                    p_request_msg_id bigint DEFAULT NULL)
RETURNS TABLE (task_uuid uuid, current_state text, enqueued_steps integer, queue text, msg_ids bigint[])
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
AS $$
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

-- The one way to create tasks: the tasks of p_tasks, [{"task": {...}, "steps": [...], "edges": [{"from", "to"}],
-- "request_msg_id": null | bigint}, ...], in this commit, one row per task in input order. With p_notify, the
-- workers' wake-up signal rides in this commit: insertTask (src/db/queries/createTask.ts) asks for that inside a
-- caller's transaction, where the signal must wait for that transaction, and alone on its pool, where nobody waits
-- on the notify lock and a separate signal would only cost another round trip. Without, queue and msg_ids say what
-- to signal with tasker.signal_sent after the commit (see _create_single_task for why).
-- A batch of one goes through _create_single_task, a batch of several through _create_task_batch: the set-based statements
-- cost more than the single task's for one task (13.43 M against 12.87 M instructions per linear four-step task,
-- bench/sql/countInstructions.sh), and one-task creations are the latency path.
CREATE OR REPLACE FUNCTION tasker.create_tasks(p_tasks jsonb, p_notify boolean)
RETURNS TABLE (task_uuid uuid, current_state text, enqueued_steps integer, queue text, msg_ids bigint[])
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
AS $$
DECLARE
  r record;
  v_one jsonb;
BEGIN
  IF jsonb_array_length(p_tasks) = 1 THEN
    v_one := p_tasks -> 0;
    SELECT * INTO r FROM tasker._create_single_task(v_one -> 'task', v_one -> 'steps', v_one -> 'edges',
                                                    (v_one ->> 'request_msg_id')::bigint);
    IF p_notify THEN
      PERFORM tasker._notify_sent(r.queue, r.msg_ids);
    END IF;
    RETURN QUERY SELECT r.task_uuid, r.current_state, r.enqueued_steps, r.queue, r.msg_ids;
    RETURN;
  END IF;
  IF NOT p_notify THEN
    RETURN QUERY SELECT * FROM tasker._create_task_batch(p_tasks);
    RETURN;
  END IF;
  -- A batch that notifies in its commit (createTask.ts never asks for one): a signal per task.
  FOR r IN SELECT * FROM tasker._create_task_batch(p_tasks) LOOP
    PERFORM tasker._notify_sent(r.queue, r.msg_ids);
    task_uuid := r.task_uuid;
    current_state := r.current_state;
    enqueued_steps := r.enqueued_steps;
    queue := r.queue;
    msg_ids := r.msg_ids;
    RETURN NEXT;
  END LOOP;
END;
$$;

-- Several tasks created in one commit, for create_tasks: the tasks that concurrent createTask calls of one process
-- submit while an earlier creation is on its way (createTask.ts batches them through src/db/commitBatcher.ts).
-- p_tasks: [{"task": {...}, "steps": [...], "edges": [...], "request_msg_id": null | bigint}, ...]. One row per task,
-- in input order, each exactly what _create_single_task returns for it and with the same rows written
-- (test/integration/engine/setBasedBatches.test.ts compares them). Any error aborts the whole batch, and the caller
-- then creates the tasks one by one, so one duplicate identity fails only its own request.
-- Written as sets: one statement per table for the whole batch, one _q_send per queue, one archive of the request
-- messages. A batch costs the same twenty-odd statements whatever its size; per-statement start-up (executor,
-- relations and indexes opened, PL/pgSQL dispatch) is most of what one small task costs to create.
CREATE OR REPLACE FUNCTION tasker._create_task_batch(p_tasks jsonb)
RETURNS TABLE (task_uuid uuid, current_state text, enqueued_steps integer, queue text, msg_ids bigint[])
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
  v_tasks uuid[];
  v_queues text[];
  v_correlations uuid[];
  -- Root steps (no incoming edge), ordered by task then step uuid, as _create_single_task sends them.
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
