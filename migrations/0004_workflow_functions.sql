-- The engine's hot path as SQL functions: each call is one round trip and one commit.
--
--   create_task      task + steps + edges + transitions, first ready steps enqueued
--   claim_steps      read step messages (the lease) + CAS enqueued -> in_progress + hydrate the handler context
--   complete_step    store the result + CAS in_progress -> enqueued_*_for_orchestration + archive the lease message,
--                    then either signal orchestration_step_results or apply it at once (p_inline)
--   apply_step_result / process_step_results
--                    CAS the step to complete / waiting_for_retry / error, enqueue newly ready steps, finalize
--
-- Locking order everywhere: task row, then step rows. Result application and finalization hold the task
-- row lock (SELECT ... FOR UPDATE), which serializes them per task: two parents of a join finishing at once
-- cannot both miss that the join is ready, and two orchestrators cannot both finalize.

-- Transition bookkeeping: the caller has already changed current_state by compare-and-set.
CREATE FUNCTION tasker._record_task_transition(p_task uuid, p_from text, p_to text, p_metadata jsonb, p_processor uuid)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_sort integer;
BEGIN
  IF p_from IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM tasker.task_state_transitions t WHERE t.from_state = p_from AND t.to_state = p_to
  ) THEN
    RAISE EXCEPTION 'invalid task transition % -> % for task %', p_from, p_to, p_task USING ERRCODE = 'check_violation';
  END IF;
  UPDATE tasker.task_transitions SET most_recent = false
  WHERE task_uuid = p_task AND most_recent
  RETURNING sort_key + 1 INTO v_sort;
  INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, metadata, processor_uuid, sort_key, most_recent, created_at)
  VALUES (p_task, p_from, p_to, coalesce(p_metadata, '{}'), p_processor, coalesce(v_sort, 1), true, clock_timestamp());
END;
$$;

CREATE FUNCTION tasker._record_step_transition(p_step uuid, p_from text, p_to text, p_metadata jsonb)
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
  v_sort integer;
  v_uuid uuid;
BEGIN
  IF p_from IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM tasker.step_state_transitions t WHERE t.from_state = p_from AND t.to_state = p_to
  ) THEN
    RAISE EXCEPTION 'invalid step transition % -> % for step %', p_from, p_to, p_step USING ERRCODE = 'check_violation';
  END IF;
  UPDATE tasker.workflow_step_transitions SET most_recent = false
  WHERE workflow_step_uuid = p_step AND most_recent
  RETURNING sort_key + 1 INTO v_sort;
  INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
  VALUES (p_step, p_from, p_to, coalesce(p_metadata, '{}'), coalesce(v_sort, 1), true, clock_timestamp())
  RETURNING workflow_step_transition_uuid INTO v_uuid;
  RETURN v_uuid;
END;
$$;

-- Compare-and-set of a task's state; false (and nothing written) when it is no longer p_from.
CREATE FUNCTION tasker._task_transition(p_task uuid, p_from text, p_to text, p_metadata jsonb DEFAULT '{}', p_processor uuid DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE tasker.tasks
  SET current_state = p_to,
      complete = (p_to = 'complete'),
      completed_at = CASE WHEN p_to IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN now() ELSE NULL END,
      updated_at = now()
  WHERE task_uuid = p_task AND current_state = p_from;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM tasker._record_task_transition(p_task, p_from, p_to, p_metadata, p_processor);
  RETURN true;
END;
$$;

-- Compare-and-set of a step's state (state only; callers set other columns in their own UPDATE).
CREATE FUNCTION tasker._step_transition(p_step uuid, p_from text, p_to text, p_metadata jsonb DEFAULT '{}')
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE tasker.workflow_steps
  SET current_state = p_to,
      in_process = (p_to = 'in_progress'),
      processed = processed OR p_to IN ('complete', 'cancelled', 'resolved_manually'),
      processed_at = CASE WHEN p_to IN ('complete', 'cancelled', 'resolved_manually') THEN now() ELSE processed_at END,
      updated_at = now()
  WHERE workflow_step_uuid = p_step AND current_state = p_from;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM tasker._record_step_transition(p_step, p_from, p_to, p_metadata);
  RETURN true;
END;
$$;

-- Walks the task along the state machine to steps_in_process from wherever it waits.
CREATE FUNCTION tasker._task_resume(p_task uuid, p_processor uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_state text;
BEGIN
  SELECT current_state INTO v_state FROM tasker.tasks WHERE task_uuid = p_task;
  IF v_state = 'error' THEN
    PERFORM tasker._task_transition(p_task, 'error', 'pending', '{"event":"reset"}', p_processor);
    v_state := 'pending';
  END IF;
  IF v_state = 'pending' THEN
    PERFORM tasker._task_transition(p_task, 'pending', 'initializing', '{"event":"start"}', p_processor);
    v_state := 'initializing';
  END IF;
  IF v_state = 'initializing' THEN
    PERFORM tasker._task_transition(p_task, 'initializing', 'enqueuing_steps', '{"event":"ready_steps_found"}', p_processor);
    v_state := 'enqueuing_steps';
  END IF;
  IF v_state = 'waiting_for_dependencies' THEN
    PERFORM tasker._task_transition(p_task, 'waiting_for_dependencies', 'evaluating_results', '{"event":"dependencies_ready"}', p_processor);
    v_state := 'evaluating_results';
  END IF;
  IF v_state = 'evaluating_results' THEN
    PERFORM tasker._task_transition(p_task, 'evaluating_results', 'enqueuing_steps', '{"event":"ready_steps_found"}', p_processor);
    v_state := 'enqueuing_steps';
  END IF;
  IF v_state = 'waiting_for_retry' THEN
    PERFORM tasker._task_transition(p_task, 'waiting_for_retry', 'enqueuing_steps', '{"event":"retry_ready"}', p_processor);
    v_state := 'enqueuing_steps';
  END IF;
  IF v_state = 'enqueuing_steps' THEN
    PERFORM tasker._task_transition(p_task, 'enqueuing_steps', 'steps_in_process', '{"event":"steps_enqueued"}', p_processor);
  END IF;
END;
$$;

-- The step message of reference §6.1: three ids; workers read everything else from the database.
CREATE FUNCTION tasker._step_message(p_task uuid, p_step uuid, p_correlation uuid) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('task_uuid', p_task, 'step_uuid', p_step, 'correlation_id', p_correlation)
$$;

-- Enqueues every pending step of the task whose parents are all complete (or resolved); with p_parent, only
-- that step's children (the hot path after a step completes). One notification per call, not per step.
CREATE FUNCTION tasker._enqueue_ready_steps(p_task uuid, p_parent uuid DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_task record;
  v_queue text;
  v_step uuid;
  v_msg bigint;
  v_first bigint;
  v_count integer := 0;
BEGIN
  SELECT t.task_uuid, t.namespace_name, t.correlation_id INTO v_task FROM tasker.tasks t WHERE t.task_uuid = p_task;
  v_queue := 'worker_' || v_task.namespace_name || '_queue';
  FOR v_step IN
    SELECT s.workflow_step_uuid
    FROM tasker.workflow_steps s
    WHERE s.task_uuid = p_task
      AND s.current_state = 'pending'
      AND (p_parent IS NULL OR EXISTS (
        SELECT 1 FROM tasker.workflow_step_edges e WHERE e.from_step_uuid = p_parent AND e.to_step_uuid = s.workflow_step_uuid))
      AND NOT EXISTS (
        SELECT 1 FROM tasker.workflow_step_edges e
        JOIN tasker.workflow_steps p ON p.workflow_step_uuid = e.from_step_uuid
        WHERE e.to_step_uuid = s.workflow_step_uuid AND p.current_state NOT IN ('complete', 'resolved_manually'))
    ORDER BY s.workflow_step_uuid
  LOOP
    IF tasker._step_transition(v_step, 'pending', 'enqueued', '{"event":"enqueue"}') THEN
      SELECT pgmq.send(v_queue, tasker._step_message(p_task, v_step, v_task.correlation_id)) INTO v_msg;
      v_first := coalesce(v_first, v_msg);
      v_count := v_count + 1;
    END IF;
  END LOOP;
  IF v_count > 0 THEN
    PERFORM tasker._notify_message_ready(v_queue, jsonb_build_object(
      'event_type', CASE WHEN v_count = 1 THEN 'message_ready' ELSE 'batch_ready' END,
      'msg_id', v_first, 'message_count', v_count, 'delay_seconds', 0, 'ready_at', clock_timestamp()));
  END IF;
  RETURN v_count;
END;
$$;

-- Mirrors src/domain/retry/backoff.ts: exponential base*2^(attempt-1), linear base*attempt, fixed base; capped;
-- 10% downward jitter. A handler's retry-after wins, capped, without jitter.
CREATE FUNCTION tasker.backoff_delay_ms(
  p_strategy text, p_base_ms integer, p_max_ms integer, p_attempt integer, p_retry_after_ms integer DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_delay double precision;
BEGIN
  IF p_retry_after_ms IS NOT NULL AND p_retry_after_ms >= 0 THEN
    RETURN least(p_retry_after_ms, p_max_ms);
  END IF;
  v_delay := CASE p_strategy
    WHEN 'linear' THEN p_base_ms::double precision * greatest(p_attempt, 1)
    WHEN 'fixed' THEN p_base_ms::double precision
    ELSE p_base_ms::double precision * power(2, least(greatest(p_attempt, 1) - 1, 40))
  END;
  v_delay := least(v_delay, p_max_ms::double precision);
  RETURN floor(v_delay * (0.9 + random() * 0.1))::integer;
END;
$$;

-- After a step result was applied: finalize the task or note that it now only waits on retries.
-- The caller holds the task row lock.
CREATE FUNCTION tasker._evaluate_task(p_task uuid, p_processor uuid) RETURNS text
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
    PERFORM tasker._task_resume(p_task, p_processor);
    PERFORM tasker._task_transition(p_task, 'steps_in_process', 'evaluating_results', '{"event":"step_completed"}', p_processor);
    PERFORM tasker._task_transition(p_task, 'evaluating_results', 'blocked_by_failures', '{"event":"permanent_failure"}', p_processor);
    PERFORM tasker._task_transition(p_task, 'blocked_by_failures', 'error', '{"event":"give_up"}', p_processor);
    RETURN 'error';
  END IF;
  IF c.done = c.total THEN
    PERFORM tasker._task_resume(p_task, p_processor);
    PERFORM tasker._task_transition(p_task, 'steps_in_process', 'evaluating_results', '{"event":"step_completed"}', p_processor);
    PERFORM tasker._task_transition(p_task, 'evaluating_results', 'complete', '{"event":"all_steps_successful"}', p_processor);
    RETURN 'complete';
  END IF;
  IF c.in_flight = 0 AND c.retrying > 0 THEN
    IF v_state <> 'waiting_for_retry' THEN
      PERFORM tasker._task_resume(p_task, p_processor);
      PERFORM tasker._task_transition(p_task, 'steps_in_process', 'waiting_for_retry', '{"event":"step_failed"}', p_processor);
    END IF;
    RETURN 'waiting_for_retry';
  END IF;
  IF c.in_flight > 0 AND v_state <> 'steps_in_process' THEN
    PERFORM tasker._task_resume(p_task, p_processor);
  END IF;
  SELECT current_state INTO v_state FROM tasker.tasks WHERE task_uuid = p_task;
  RETURN v_state;
END;
$$;

-- Applies a stored step result exactly once. The caller holds the task row lock. Returns what happened:
-- 'complete', 'retry', 'error', or 'noop' (already applied: a duplicate message, a late result).
CREATE FUNCTION tasker._apply_step_result(p_step uuid, p_processor uuid) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  s record;
  v_task_state text;
  v_delay integer;
  v_due timestamptz;
  v_queue text;
  v_msg bigint;
BEGIN
  SELECT ws.*, t.current_state AS task_state, t.namespace_name, t.correlation_id
  INTO s
  FROM tasker.workflow_steps ws JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
  WHERE ws.workflow_step_uuid = p_step;
  IF NOT FOUND THEN
    RETURN 'noop';
  END IF;

  IF s.current_state = 'enqueued_for_orchestration' THEN
    PERFORM tasker._step_transition(p_step, 'enqueued_for_orchestration', 'complete', '{"event":"complete"}');
    -- A task that was cancelled or failed meanwhile keeps the result but starts nothing new.
    IF s.task_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN
      PERFORM tasker._enqueue_ready_steps(s.task_uuid, p_step);
    END IF;
    PERFORM tasker._evaluate_task(s.task_uuid, p_processor);
    RETURN 'complete';
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
      v_queue := 'worker_' || s.namespace_name || '_queue';
      SELECT pgmq.send(v_queue, tasker._step_message(s.task_uuid, p_step, s.correlation_id), v_due) INTO v_msg;
      PERFORM tasker._notify_message_ready(v_queue, jsonb_build_object(
        'event_type', 'message_ready', 'msg_id', v_msg, 'delay_seconds', ceil(v_delay / 1000.0), 'ready_at', v_due));
      PERFORM tasker._evaluate_task(s.task_uuid, p_processor);
      RETURN 'retry';
    END IF;
    PERFORM tasker._step_transition(p_step, 'enqueued_as_error_for_orchestration', 'error',
      jsonb_build_object('event', 'fail', 'attempts', s.attempts, 'max_attempts', s.max_attempts));
    PERFORM tasker._evaluate_task(s.task_uuid, p_processor);
    RETURN 'error';
  END IF;
  RETURN 'noop';
END;
$$;

CREATE FUNCTION tasker.apply_step_result(p_step uuid, p_processor uuid DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_task uuid;
BEGIN
  SELECT task_uuid INTO v_task FROM tasker.workflow_steps WHERE workflow_step_uuid = p_step;
  IF NOT FOUND THEN
    RETURN 'noop';
  END IF;
  PERFORM 1 FROM tasker.tasks WHERE task_uuid = v_task FOR UPDATE;
  RETURN tasker._apply_step_result(p_step, p_processor);
END;
$$;

-- Creates a task with its steps and edges and enqueues the root steps, in one transaction. Validation
-- (template, input_schema, identity) happened in TypeScript; a duplicate identity raises unique_violation
-- on tasks_identity_hash_key. p_request_msg_id archives the orchestration_task_requests message in the
-- same commit, so a request is turned into a task exactly once.
CREATE FUNCTION tasker.create_task(p_task jsonb, p_steps jsonb, p_edges jsonb, p_request_msg_id bigint DEFAULT NULL)
RETURNS TABLE (task_uuid uuid, current_state text, enqueued_steps integer)
LANGUAGE plpgsql AS $$
DECLARE
  v_task uuid := coalesce((p_task ->> 'task_uuid')::uuid, tasker.uuid_generate_v7());
  v_processor uuid := (p_task ->> 'processor_uuid')::uuid;
  v_enqueued integer;
BEGIN
  INSERT INTO tasker.tasks (task_uuid, named_task_uuid, namespace_name, current_state, requested_at, initiator,
                            source_system, reason, tags, context, identity_hash, priority, correlation_id,
                            parent_correlation_id)
  VALUES (v_task, (p_task ->> 'named_task_uuid')::uuid, p_task ->> 'namespace_name', 'pending',
          coalesce((p_task ->> 'requested_at')::timestamptz, now()), p_task ->> 'initiator', p_task ->> 'source_system',
          p_task ->> 'reason', coalesce(p_task -> 'tags', '[]'), coalesce(p_task -> 'context', '{}'),
          p_task ->> 'identity_hash', coalesce((p_task ->> 'priority')::integer, 0),
          (p_task ->> 'correlation_id')::uuid, (p_task ->> 'parent_correlation_id')::uuid);
  PERFORM tasker._record_task_transition(v_task, NULL, 'pending', '{"event":"created"}', v_processor);

  INSERT INTO tasker.workflow_steps (workflow_step_uuid, task_uuid, name, handler_callable, inputs, retryable,
                                     max_attempts, backoff_strategy, backoff_base_ms, max_backoff_ms, timeout_seconds)
  SELECT s.workflow_step_uuid, v_task, s.name, s.handler_callable, coalesce(s.inputs, '{}'), s.retryable,
         s.max_attempts, s.backoff_strategy, s.backoff_base_ms, s.max_backoff_ms, s.timeout_seconds
  FROM jsonb_to_recordset(p_steps) AS s(workflow_step_uuid uuid, name text, handler_callable text, inputs jsonb,
       retryable boolean, max_attempts integer, backoff_strategy text, backoff_base_ms integer,
       max_backoff_ms integer, timeout_seconds integer);
  INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent)
  SELECT (s ->> 'workflow_step_uuid')::uuid, NULL, 'pending', '{"event":"created"}', 1, true
  FROM jsonb_array_elements(p_steps) AS s;
  INSERT INTO tasker.workflow_step_edges (from_step_uuid, to_step_uuid, name)
  SELECT (e ->> 'from')::uuid, (e ->> 'to')::uuid, 'provides' FROM jsonb_array_elements(p_edges) AS e;

  PERFORM tasker._task_transition(v_task, 'pending', 'initializing', '{"event":"start"}', v_processor);
  PERFORM tasker._task_transition(v_task, 'initializing', 'enqueuing_steps', '{"event":"ready_steps_found"}', v_processor);
  v_enqueued := tasker._enqueue_ready_steps(v_task, NULL);
  PERFORM tasker._task_transition(v_task, 'enqueuing_steps', 'steps_in_process', '{"event":"steps_enqueued"}', v_processor);

  IF p_request_msg_id IS NOT NULL THEN
    PERFORM pgmq.archive('orchestration_task_requests', p_request_msg_id);
  END IF;
  RETURN QUERY SELECT v_task, t.current_state, v_enqueued FROM tasker.tasks t WHERE t.task_uuid = v_task;
END;
$$;

-- Results of every ancestor of a step, by step name (what a handler sees as dependency results).
-- PL/pgSQL so the recursive query's plan is cached per session instead of planned on every claim.
CREATE FUNCTION tasker.step_dependency_results(p_step uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN (
    WITH RECURSIVE ancestors(step_uuid, depth) AS (
      SELECT e.from_step_uuid, 1 FROM tasker.workflow_step_edges e WHERE e.to_step_uuid = p_step
      UNION
      SELECT e.from_step_uuid, a.depth + 1
      FROM tasker.workflow_step_edges e JOIN ancestors a ON e.to_step_uuid = a.step_uuid
      WHERE a.depth < 100
    )
    SELECT coalesce(jsonb_object_agg(s.name, s.results), '{}')
    FROM (SELECT DISTINCT step_uuid FROM ancestors) a
    JOIN tasker.workflow_steps s ON s.workflow_step_uuid = a.step_uuid
    WHERE s.current_state IN ('complete', 'resolved_manually'));
END;
$$;

-- Claims up to p_limit steps from the namespace queue for one worker. The queue read hides each message
-- for p_lease_seconds: that visibility window is the lease, extended by the worker's heartbeat. A message
-- whose step is no longer claimable (cancelled, already done: a duplicate) is archived and skipped. A
-- message that comes back while its step is still in_progress means the previous holder's lease expired
-- (the worker died): that run counts as a failed attempt and the step is retried or failed.
--
-- The claim commits with synchronous_commit off: if PostgreSQL itself crashed before flushing it, the claim
-- is simply lost and the message is delivered again; handlers are at-least-once by design. Results, task
-- creation and result application stay fully durable (p_async_commit false when a claim rides along with a
-- result's commit).
CREATE FUNCTION tasker.claim_steps(p_namespace text, p_worker text, p_lease_seconds integer, p_limit integer,
                                   p_async_commit boolean DEFAULT true)
RETURNS TABLE (msg_id bigint, task_uuid uuid, step_uuid uuid, step_name text, handler_callable text, inputs jsonb,
               context jsonb, attempt integer, max_attempts integer, timeout_seconds integer, correlation_id uuid,
               dependency_results jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  v_queue text := 'worker_' || p_namespace || '_queue';
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
  FOR m IN SELECT r.msg_id, r.read_ct, r.message FROM pgmq.read(v_queue, p_lease_seconds, p_limit) r LOOP
    v_step := (m.message ->> 'step_uuid')::uuid;
    SELECT ws.workflow_step_uuid, ws.current_state, ws.attempts, ws.max_attempts, ws.retryable, ws.next_retry_at,
           ws.lease_msg_id, t.current_state AS task_state
    INTO s
    FROM tasker.workflow_steps ws JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
    WHERE ws.workflow_step_uuid = v_step
    FOR UPDATE OF ws;

    IF NOT FOUND OR s.task_state IN ('complete', 'error', 'cancelled', 'resolved_manually') AND s.current_state <> 'in_progress' THEN
      PERFORM pgmq.archive(v_queue, m.msg_id);
      CONTINUE;
    END IF;

    v_expired := s.current_state = 'in_progress' AND s.lease_msg_id = m.msg_id;
    IF v_expired THEN
      -- The previous holder's lease ran out: that run failed.
      IF s.retryable AND s.attempts < s.max_attempts THEN
        UPDATE tasker.workflow_steps
        SET last_error = jsonb_build_object('message', 'worker lost: lease expired before a result', 'error_type', 'lease_expired',
                                            'retryable', true, 'attempt', s.attempts, 'worker', claimed_by)
        WHERE workflow_step_uuid = v_step;
        PERFORM tasker._step_transition(v_step, 'in_progress', 'waiting_for_retry', '{"event":"lease_expired"}');
        PERFORM tasker._step_transition(v_step, 'waiting_for_retry', 'pending', '{"event":"retry"}');
        PERFORM tasker._step_transition(v_step, 'pending', 'enqueued', '{"event":"enqueue"}');
      ELSE
        UPDATE tasker.workflow_steps
        SET last_error = jsonb_build_object('message', 'worker lost: lease expired before a result, and no attempts remain',
                                            'error_type', 'lease_expired', 'retryable', false, 'attempt', s.attempts,
                                            'worker', claimed_by)
        WHERE workflow_step_uuid = v_step;
        PERFORM tasker._step_transition(v_step, 'in_progress', 'error', '{"event":"lease_expired"}');
        PERFORM pgmq.archive(v_queue, m.msg_id);
        PERFORM 1 FROM tasker.tasks t WHERE t.task_uuid = (m.message ->> 'task_uuid')::uuid FOR UPDATE;
        PERFORM tasker._evaluate_task((m.message ->> 'task_uuid')::uuid, NULL);
        CONTINUE;
      END IF;
    ELSIF s.current_state = 'waiting_for_retry' THEN
      IF s.next_retry_at > clock_timestamp() + interval '50 milliseconds' THEN
        -- Not due yet (a stale early message): leave it hidden until the retry is due.
        PERFORM pgmq.set_vt(v_queue, m.msg_id, greatest(1, ceil(extract(epoch FROM s.next_retry_at - clock_timestamp()))::integer));
        CONTINUE;
      END IF;
      PERFORM tasker._step_transition(v_step, 'waiting_for_retry', 'pending', '{"event":"retry"}');
      PERFORM tasker._step_transition(v_step, 'pending', 'enqueued', '{"event":"enqueue"}');
    ELSIF s.current_state <> 'enqueued' THEN
      -- Past this point already, or held under another message's lease: a duplicate message.
      PERFORM pgmq.archive(v_queue, m.msg_id);
      CONTINUE;
    END IF;

    UPDATE tasker.workflow_steps ws
    SET current_state = 'in_progress', in_process = true, attempts = ws.attempts + 1, last_attempted_at = now(),
        claimed_by = p_worker, lease_msg_id = m.msg_id, next_retry_at = NULL, updated_at = now()
    WHERE ws.workflow_step_uuid = v_step;
    PERFORM tasker._record_step_transition(v_step, 'enqueued', 'in_progress',
      jsonb_build_object('event', 'start', 'worker', p_worker, 'attempt', s.attempts + 1));

    RETURN QUERY
    SELECT m.msg_id, ws.task_uuid, ws.workflow_step_uuid, ws.name::text, ws.handler_callable, ws.inputs, t.context,
           ws.attempts, ws.max_attempts, ws.timeout_seconds, t.correlation_id,
           tasker.step_dependency_results(ws.workflow_step_uuid)
    FROM tasker.workflow_steps ws JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
    WHERE ws.workflow_step_uuid = v_step;
  END LOOP;
END;
$$;

-- A worker's result. Stored only if the worker still holds the claim (state in_progress and p_attempt equal
-- to attempts: a worker whose lease expired and whose step was re-claimed cannot overwrite the new run).
-- Returns 'stale' for such a result; otherwise 'stored' (signalled to orchestration) or, with p_inline,
-- what applying it did ('complete', 'retry', 'error').
CREATE FUNCTION tasker.complete_step(
  p_task uuid, p_step uuid, p_attempt integer, p_success boolean, p_payload jsonb, p_worker text,
  p_execution_ms integer, p_inline boolean DEFAULT false
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_namespace text;
  v_correlation uuid;
  v_lease bigint;
  v_to text := CASE WHEN p_success THEN 'enqueued_for_orchestration' ELSE 'enqueued_as_error_for_orchestration' END;
  v_transition uuid;
  v_msg bigint;
BEGIN
  -- Task first, then step: the locking order of every function here.
  SELECT t.namespace_name, t.correlation_id INTO v_namespace, v_correlation
  FROM tasker.tasks t WHERE t.task_uuid = p_task
  FOR UPDATE;
  UPDATE tasker.workflow_steps
  SET current_state = v_to,
      in_process = false,
      results = CASE WHEN p_success THEN p_payload ELSE results END,
      last_error = CASE WHEN p_success THEN last_error ELSE p_payload || jsonb_build_object('attempt', p_attempt) END,
      updated_at = now()
  WHERE workflow_step_uuid = p_step AND task_uuid = p_task AND current_state = 'in_progress' AND attempts = p_attempt
  RETURNING lease_msg_id INTO v_lease;
  IF NOT FOUND THEN
    RETURN 'stale';
  END IF;
  v_transition := tasker._record_step_transition(p_step, 'in_progress', v_to,
    jsonb_build_object('event', CASE WHEN p_success THEN 'enqueue_for_orchestration' ELSE 'enqueue_as_error_for_orchestration' END,
                       'worker', p_worker, 'attempt', p_attempt, 'execution_time_ms', p_execution_ms));
  INSERT INTO tasker.workflow_step_result_audit (workflow_step_uuid, workflow_step_transition_uuid, task_uuid, worker_uuid,
                                                 correlation_id, success, attempt, execution_time_ms)
  VALUES (p_step, v_transition, p_task, p_worker, v_correlation, p_success, p_attempt, p_execution_ms);
  IF v_lease IS NOT NULL THEN
    PERFORM pgmq.archive('worker_' || v_namespace || '_queue', v_lease);
  END IF;
  IF p_inline THEN
    RETURN tasker._apply_step_result(p_step, NULL);
  END IF;
  SELECT pgmq.send('orchestration_step_results', tasker._step_message(p_task, p_step, v_correlation)) INTO v_msg;
  PERFORM tasker._notify_message_ready('orchestration_step_results', jsonb_build_object(
    'event_type', 'message_ready', 'msg_id', v_msg, 'delay_seconds', 0, 'ready_at', clock_timestamp()));
  RETURN 'stored';
END;
$$;

-- The orchestration result processor: reads step-result messages, applies each exactly once, archives them,
-- all in one commit. Returns how many messages it handled.
CREATE FUNCTION tasker.process_step_results(p_limit integer, p_vt integer DEFAULT 30, p_processor uuid DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  m record;
  v_count integer := 0;
BEGIN
  CREATE TEMP TABLE IF NOT EXISTS tasker_result_batch (msg_id bigint, step_uuid uuid, task_uuid uuid) ON COMMIT DELETE ROWS;
  DELETE FROM tasker_result_batch;
  INSERT INTO tasker_result_batch
  SELECT r.msg_id, (r.message ->> 'step_uuid')::uuid, ws.task_uuid
  FROM pgmq.read('orchestration_step_results', p_vt, p_limit) r
  LEFT JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = (r.message ->> 'step_uuid')::uuid;
  -- Lock every task of the batch in one order (task_uuid): two orchestrators holding batches that share
  -- tasks in different orders would otherwise deadlock.
  PERFORM 1 FROM tasker.tasks t
  WHERE t.task_uuid IN (SELECT b.task_uuid FROM tasker_result_batch b WHERE b.task_uuid IS NOT NULL)
  ORDER BY t.task_uuid
  FOR UPDATE;
  FOR m IN SELECT b.msg_id, b.step_uuid FROM tasker_result_batch b ORDER BY b.msg_id LOOP
    IF m.step_uuid IS NOT NULL THEN
      PERFORM tasker._apply_step_result(m.step_uuid, p_processor);
    END IF;
    PERFORM pgmq.archive('orchestration_step_results', m.msg_id);
    v_count := v_count + 1;
  END LOOP;
  RETURN v_count;
END;
$$;

-- Finalization requests ({"task_uuid": ...}) from any producer: re-evaluate the task under its lock.
CREATE FUNCTION tasker.process_finalization_requests(p_limit integer, p_vt integer DEFAULT 30, p_processor uuid DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  m record;
  v_task uuid;
  v_count integer := 0;
BEGIN
  FOR m IN SELECT r.msg_id, r.message FROM pgmq.read('orchestration_task_finalizations', p_vt, p_limit) r LOOP
    BEGIN
      v_task := (m.message ->> 'task_uuid')::uuid;
    EXCEPTION WHEN invalid_text_representation THEN
      v_task := NULL;
    END;
    IF v_task IS NOT NULL AND EXISTS (SELECT 1 FROM tasker.tasks t WHERE t.task_uuid = v_task FOR UPDATE) THEN
      PERFORM tasker._enqueue_ready_steps(v_task, NULL);
      PERFORM tasker._evaluate_task(v_task, p_processor);
    END IF;
    PERFORM pgmq.archive('orchestration_task_finalizations', m.msg_id);
    v_count := v_count + 1;
  END LOOP;
  RETURN v_count;
END;
$$;

-- Cancels a task and every step not yet finished. Returns 'cancelled', 'not_found', or 'already_<state>' for
-- a task that was already terminal. Results that arrive later for cancelled steps are stored nowhere ('stale').
CREATE FUNCTION tasker.cancel_task(p_task uuid, p_processor uuid DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_state text;
  v_step record;
BEGIN
  SELECT current_state INTO v_state FROM tasker.tasks WHERE task_uuid = p_task FOR UPDATE;
  IF NOT FOUND THEN
    RETURN 'not_found';
  END IF;
  IF v_state IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN
    RETURN 'already_' || v_state;
  END IF;
  FOR v_step IN
    SELECT workflow_step_uuid, current_state FROM tasker.workflow_steps
    WHERE task_uuid = p_task AND current_state NOT IN ('complete', 'cancelled', 'resolved_manually', 'error')
    ORDER BY workflow_step_uuid
    FOR UPDATE
  LOOP
    PERFORM tasker._step_transition(v_step.workflow_step_uuid, v_step.current_state, 'cancelled', '{"event":"cancel"}');
  END LOOP;
  PERFORM tasker._task_transition(p_task, v_state, 'cancelled', '{"event":"cancel"}', p_processor);
  RETURN 'cancelled';
END;
$$;

-- Readiness of every step of a task in one query (reference §3.1).
CREATE FUNCTION tasker.get_step_readiness_status(p_task uuid)
RETURNS TABLE (workflow_step_uuid uuid, name text, current_state text, dependencies_satisfied boolean,
               retry_eligible boolean, ready_for_execution boolean, next_retry_at timestamptz, total_parents integer,
               completed_parents integer, attempts integer, max_attempts integer, last_attempted_at timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT s.workflow_step_uuid, s.name::text, s.current_state,
         coalesce(p.total, 0) = coalesce(p.completed, 0) AS dependencies_satisfied,
         (s.attempts = 0 OR (s.retryable AND s.attempts < s.max_attempts)) AS retry_eligible,
         (s.current_state IN ('pending', 'waiting_for_retry')
           AND coalesce(p.total, 0) = coalesce(p.completed, 0)
           AND (s.attempts = 0 OR (s.retryable AND s.attempts < s.max_attempts))
           AND (s.next_retry_at IS NULL OR s.next_retry_at <= clock_timestamp())) AS ready_for_execution,
         s.next_retry_at, coalesce(p.total, 0)::integer, coalesce(p.completed, 0)::integer, s.attempts, s.max_attempts,
         s.last_attempted_at
  FROM tasker.workflow_steps s
  LEFT JOIN LATERAL (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE ps.current_state IN ('complete', 'resolved_manually')) AS completed
    FROM tasker.workflow_step_edges e JOIN tasker.workflow_steps ps ON ps.workflow_step_uuid = e.from_step_uuid
    WHERE e.to_step_uuid = s.workflow_step_uuid
  ) p ON true
  WHERE s.task_uuid = p_task
  ORDER BY s.workflow_step_uuid
$$;

-- The task execution context (reference §3.2), with its decision order: failures first, then ready steps,
-- then work in flight, then completion, else waiting on dependencies.
CREATE FUNCTION tasker.get_task_execution_context(p_task uuid)
RETURNS TABLE (task_uuid uuid, total_steps integer, pending_steps integer, in_progress_steps integer,
               completed_steps integer, failed_steps integer, ready_steps integer, execution_status text,
               recommended_action text, completion_percentage numeric, health_status text)
LANGUAGE sql STABLE AS $$
  WITH r AS (SELECT * FROM tasker.get_step_readiness_status(p_task)),
  c AS (
    SELECT count(*)::integer AS total,
           count(*) FILTER (WHERE current_state = 'pending')::integer AS pending,
           count(*) FILTER (WHERE current_state IN ('enqueued', 'in_progress', 'enqueued_for_orchestration',
                                                    'enqueued_as_error_for_orchestration'))::integer AS in_progress,
           count(*) FILTER (WHERE current_state IN ('complete', 'resolved_manually'))::integer AS completed,
           count(*) FILTER (WHERE current_state = 'error')::integer AS failed,
           count(*) FILTER (WHERE ready_for_execution)::integer AS ready,
           count(*) FILTER (WHERE current_state = 'waiting_for_retry')::integer AS retrying
    FROM r
  )
  SELECT p_task, c.total, c.pending, c.in_progress, c.completed, c.failed, c.ready,
         CASE WHEN c.failed > 0 THEN 'blocked_by_failures'
              WHEN c.ready > 0 THEN 'has_ready_steps'
              WHEN c.in_progress > 0 THEN 'processing'
              WHEN c.total > 0 AND c.completed = c.total THEN 'all_complete'
              ELSE 'waiting_for_dependencies' END,
         CASE WHEN c.failed > 0 THEN 'handle_failures'
              WHEN c.ready > 0 THEN 'execute_ready_steps'
              WHEN c.in_progress > 0 THEN 'wait_for_completion'
              WHEN c.total > 0 AND c.completed = c.total THEN 'finalize_task'
              ELSE 'wait_for_dependencies' END,
         CASE WHEN c.total = 0 THEN 0 ELSE round(c.completed * 100.0 / c.total, 2) END,
         CASE WHEN c.failed > 0 THEN 'blocked'
              WHEN c.retrying > 0 THEN 'recovering'
              WHEN c.total > 0 THEN 'healthy'
              ELSE 'unknown' END
  FROM c
$$;
