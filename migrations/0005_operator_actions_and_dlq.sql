-- Operator step actions that revive tasks, staleness detection and the dead-letter queue (reference §5.2, §5.3).
--
--   apply_step_action   reset_for_retry / resolve_manually / complete_manually on one step, and bring its task
--                       back to life (out of error) and on to completion, in one commit under the task row lock
--   task_staleness      per active task: time in state, time without progress, the threshold that applies
--   detect_stale_tasks  stale tasks -> one pending DLQ entry + task to error, SKIP LOCKED across orchestrators
--
-- Locking order as in 0004: task row, then step rows.

-- The staleness detector fails a task from whatever non-terminal state it is stuck in (event
-- staleness_timeout); a step waiting for a retry that will no longer happen fails with it (event fail).
-- Mirrored in src/domain/state (a test keeps the two equal).
INSERT INTO tasker.task_state_transitions (from_state, to_state)
SELECT s, 'error' FROM unnest(ARRAY['pending', 'initializing', 'enqueuing_steps', 'steps_in_process',
  'evaluating_results', 'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures']) AS s
ON CONFLICT DO NOTHING;
INSERT INTO tasker.step_state_transitions (from_state, to_state) VALUES ('waiting_for_retry', 'error')
ON CONFLICT DO NOTHING;

CREATE INDEX tasks_dlq_status_time_idx ON tasker.tasks_dlq (resolution_status, dlq_timestamp DESC);
CREATE INDEX tasks_dlq_task_idx ON tasker.tasks_dlq (task_uuid);

-- Sends a fresh message for every step of the task that is enqueued or waiting for a retry. A task in error
-- gets its step messages archived by claim_steps (it refuses to start steps of a finished task), so when such a
-- task is revived its enqueued and retrying steps would otherwise wait forever. A message that was not archived
-- meanwhile is now a duplicate, which claim_steps absorbs (only one message can move a step to in_progress).
-- Returns how many messages were sent.
CREATE FUNCTION tasker._redispatch_steps(p_task uuid) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_task record;
  v_queue text;
  s record;
  v_msg bigint;
  v_first bigint;
  v_count integer := 0;
BEGIN
  SELECT t.namespace_name, t.correlation_id INTO v_task FROM tasker.tasks t WHERE t.task_uuid = p_task;
  v_queue := 'worker_' || v_task.namespace_name || '_queue';
  FOR s IN
    SELECT ws.workflow_step_uuid, ws.current_state, ws.next_retry_at
    FROM tasker.workflow_steps ws
    WHERE ws.task_uuid = p_task AND ws.current_state IN ('enqueued', 'waiting_for_retry')
    ORDER BY ws.workflow_step_uuid
  LOOP
    IF s.current_state = 'waiting_for_retry' AND s.next_retry_at > clock_timestamp() THEN
      SELECT pgmq.send(v_queue, tasker._step_message(p_task, s.workflow_step_uuid, v_task.correlation_id), s.next_retry_at)
      INTO v_msg;
    ELSE
      SELECT pgmq.send(v_queue, tasker._step_message(p_task, s.workflow_step_uuid, v_task.correlation_id)) INTO v_msg;
    END IF;
    v_first := coalesce(v_first, v_msg);
    v_count := v_count + 1;
  END LOOP;
  IF v_count > 0 THEN
    PERFORM tasker._notify_message_ready(v_queue, jsonb_build_object(
      'event_type', CASE WHEN v_count = 1 THEN 'message_ready' ELSE 'batch_ready' END,
      'msg_id', v_first, 'message_count', v_count, 'delay_seconds', 0, 'ready_at', clock_timestamp()));
  END IF;
  RETURN v_count;
END;
$$;

-- An operator's fix of one step (PATCH /v1/tasks/{task}/workflow_steps/{step}), applied in one commit:
--
--   reset_for_retry    error -> pending, attempts 0, last_error/next_retry_at/claim cleared (the old values go
--                      into the transition metadata); the step runs again with a fresh retry budget. The
--                      attempt number is also complete_step's fencing token, so restarting it at 0 lets a
--                      worker from before the reset that outlived its lease by the whole new run, and
--                      reports while the new run has its attempt number, store its (genuine) result once.
--   resolve_manually   -> resolved_manually: the step counts as done (dependents run), results kept as they are.
--   complete_manually  -> complete with results = p_result: dependents see it exactly like a handler's result
--                      (step_dependency_results reads workflow_steps.results).
--
-- resolve/complete are accepted from pending, waiting_for_retry and error: the states in which no handler is
-- running, none is about to be started (enqueued: a worker may claim it any moment) and no result is on its
-- way. Never from enqueued or in_progress (the operator would race a handler), nor from
-- enqueued_*_for_orchestration (a result is stored and about to be applied), nor from the terminal
-- complete/cancelled/resolved_manually. This also makes two operators acting on the same failed step at once
-- conflict: the first moves it out of error (a reset leaves it enqueued), so the second is refused. The delayed
-- message of a step that was waiting for a retry is absorbed by claim_steps (the step is no longer retrying).
--
-- The task: refused when it is complete, cancelled or resolved_manually. Otherwise, under its row lock, ready
-- steps are enqueued and the task is evaluated like after any step result, so it carries on (or completes at
-- once if nothing is left). A task in error (or blocked_by_failures) is revived as soon as none of its steps
-- is in error any more: error -> pending -> ... -> steps_in_process, its enqueued/retrying steps re-sent, ready
-- steps enqueued, evaluated. While other steps are still in error it stays in error (the fix is kept; it takes
-- effect when the last failed step is fixed), so a task never bounces between error and running.
--
-- Returns one row: outcome 'applied', 'task_not_found', 'step_not_found' (no such step in this task),
-- 'task_finished' (the task is complete/cancelled/resolved_manually) or 'not_allowed' (the step's state);
-- the task's and step's states afterwards; the step states the action is accepted from.
CREATE FUNCTION tasker.apply_step_action(
  p_task uuid, p_step uuid, p_action text, p_result jsonb DEFAULT NULL, p_metadata jsonb DEFAULT NULL,
  p_operator text DEFAULT NULL, p_reason text DEFAULT NULL, p_processor uuid DEFAULT NULL
) RETURNS TABLE (outcome text, task_state text, step_state text, allowed_from text[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_allowed text[] := CASE p_action
    WHEN 'reset_for_retry' THEN ARRAY['error']
    WHEN 'resolve_manually' THEN ARRAY['pending', 'waiting_for_retry', 'error']
    WHEN 'complete_manually' THEN ARRAY['pending', 'waiting_for_retry', 'error']
  END;
  v_task_state text;
  s record;
  v_to text;
  v_meta jsonb;
BEGIN
  IF v_allowed IS NULL THEN
    RAISE EXCEPTION 'unknown step action "%"; expected reset_for_retry, resolve_manually or complete_manually', p_action
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  allowed_from := v_allowed;

  SELECT t.current_state INTO v_task_state FROM tasker.tasks t WHERE t.task_uuid = p_task FOR UPDATE;
  IF NOT FOUND THEN
    outcome := 'task_not_found';
    RETURN NEXT;
    RETURN;
  END IF;
  -- Read without a row lock: every writer of a step's state either holds the task lock we hold, or (claim_steps)
  -- is caught by the compare-and-set below. Not locking an in_progress step also keeps us out of claim_steps'
  -- step-then-task lock order on an expired lease.
  SELECT ws.current_state, ws.attempts, ws.last_error, ws.next_retry_at, ws.claimed_by
  INTO s
  FROM tasker.workflow_steps ws WHERE ws.workflow_step_uuid = p_step AND ws.task_uuid = p_task;
  IF NOT FOUND THEN
    outcome := 'step_not_found';
    task_state := v_task_state;
    RETURN NEXT;
    RETURN;
  END IF;
  task_state := v_task_state;
  step_state := s.current_state;
  IF v_task_state IN ('complete', 'cancelled', 'resolved_manually') THEN
    outcome := 'task_finished';
    RETURN NEXT;
    RETURN;
  END IF;
  IF NOT (s.current_state = ANY (v_allowed)) THEN
    outcome := 'not_allowed';
    RETURN NEXT;
    RETURN;
  END IF;

  v_meta := jsonb_strip_nulls(jsonb_build_object(
    'event', p_action, 'operator', p_operator, 'reason', p_reason, 'metadata', p_metadata));
  IF p_action = 'reset_for_retry' THEN
    v_to := 'pending';
    v_meta := v_meta || jsonb_strip_nulls(jsonb_build_object(
      'previous_attempts', s.attempts, 'previous_error', s.last_error));
  ELSIF p_action = 'resolve_manually' THEN
    v_to := 'resolved_manually';
  ELSE
    v_to := 'complete';
  END IF;

  -- Compare-and-set with the other columns in the same UPDATE: a claim that got there first wins and we refuse.
  UPDATE tasker.workflow_steps ws
  SET current_state = v_to,
      attempts = CASE WHEN p_action = 'reset_for_retry' THEN 0 ELSE ws.attempts END,
      last_error = CASE WHEN p_action = 'reset_for_retry' THEN NULL ELSE ws.last_error END,
      results = CASE WHEN p_action = 'complete_manually' THEN coalesce(p_result, 'null'::jsonb) ELSE ws.results END,
      next_retry_at = NULL,
      claimed_by = NULL,
      lease_msg_id = NULL,
      in_process = false,
      processed = ws.processed OR v_to IN ('complete', 'resolved_manually'),
      processed_at = CASE WHEN v_to IN ('complete', 'resolved_manually') THEN now() ELSE ws.processed_at END,
      updated_at = now()
  WHERE ws.workflow_step_uuid = p_step AND ws.current_state = s.current_state;
  IF NOT FOUND THEN
    outcome := 'not_allowed';
    SELECT ws.current_state INTO step_state FROM tasker.workflow_steps ws WHERE ws.workflow_step_uuid = p_step;
    RETURN NEXT;
    RETURN;
  END IF;
  PERFORM tasker._record_step_transition(p_step, s.current_state, v_to, v_meta);

  IF v_task_state = 'blocked_by_failures' THEN
    PERFORM tasker._task_transition(p_task, 'blocked_by_failures', 'error', '{"event":"give_up"}', p_processor);
    v_task_state := 'error';
  END IF;
  IF v_task_state = 'error' THEN
    IF NOT EXISTS (SELECT 1 FROM tasker.workflow_steps ws WHERE ws.task_uuid = p_task AND ws.current_state = 'error') THEN
      PERFORM tasker._task_transition(p_task, 'error', 'pending', jsonb_strip_nulls(jsonb_build_object(
        'event', 'reset', 'cause', 'step_action', 'action', p_action, 'step_uuid', p_step,
        'operator', p_operator, 'reason', p_reason)), p_processor);
      PERFORM tasker._task_resume(p_task, p_processor);
      PERFORM tasker._redispatch_steps(p_task);
      PERFORM tasker._enqueue_ready_steps(p_task, NULL);
      PERFORM tasker._evaluate_task(p_task, p_processor);
    END IF;
  ELSE
    PERFORM tasker._enqueue_ready_steps(p_task, NULL);
    PERFORM tasker._evaluate_task(p_task, p_processor);
  END IF;

  outcome := 'applied';
  SELECT t.current_state INTO task_state FROM tasker.tasks t WHERE t.task_uuid = p_task;
  SELECT ws.current_state INTO step_state FROM tasker.workflow_steps ws WHERE ws.workflow_step_uuid = p_step;
  RETURN NEXT;
END;
$$;

-- A template's lifecycle override in minutes (named_tasks.configuration is the parsed template, camelCase;
-- snake_case is read too so hand-written rows work), or NULL to use the orchestration setting.
CREATE FUNCTION tasker._lifecycle_minutes(p_configuration jsonb, p_camel text, p_snake text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN jsonb_typeof(p_configuration -> 'lifecycle' -> p_camel) = 'number' THEN (p_configuration -> 'lifecycle' ->> p_camel)::numeric::integer
    WHEN jsonb_typeof(p_configuration -> 'lifecycle' -> p_snake) = 'number' THEN (p_configuration -> 'lifecycle' ->> p_snake)::numeric::integer
  END
$$;

-- How long each unfinished task has been without progress, against one consistent set of thresholds (the
-- orchestration settings, overridden per template by lifecycle.max_*_minutes; max_duration_minutes overrides
-- the max lifetime).
--
-- minutes_in_state: since the task's latest transition. But a task in steps_in_process does not transition
-- while its steps advance one after another, so staleness is judged on minutes_without_progress: since the
-- latest of the task's transition, any of its steps' transitions, and a retry that is scheduled (a step waiting
-- out a long backoff is expected activity). Thresholds by state: pending and waiting_for_dependencies use the
-- waiting-for-dependencies one, waiting_for_retry its own, every other (active) state the steps-in-process one.
-- A step that legitimately runs longer than that without any other activity needs a per-template override.
--
-- A SQL function of one SELECT, so the planner inlines it and a filter on task_uuid reaches the tables.
CREATE FUNCTION tasker.task_staleness(
  p_waiting_for_dependencies_minutes integer, p_waiting_for_retry_minutes integer,
  p_steps_in_process_minutes integer, p_task_max_lifetime_minutes integer
) RETURNS TABLE (task_uuid uuid, namespace text, name text, state text, entered_state_at timestamptz,
                 last_progress_at timestamptz, minutes_in_state double precision,
                 minutes_without_progress double precision, task_age_minutes double precision,
                 state_threshold_minutes integer, max_lifetime_minutes integer, threshold_minutes integer,
                 exceeded text, stale boolean)
LANGUAGE sql STABLE AS $$
  WITH base AS (
    SELECT t.task_uuid, t.namespace_name::text AS namespace, nt.name::text AS name, t.current_state AS state,
           tr.created_at AS entered_state_at,
           greatest(tr.created_at, act.last_step_at, act.next_retry_at) AS last_progress_at,
           t.created_at,
           CASE
             WHEN t.current_state IN ('pending', 'waiting_for_dependencies') THEN
               coalesce(tasker._lifecycle_minutes(nt.configuration, 'maxWaitingForDependenciesMinutes',
                                                  'max_waiting_for_dependencies_minutes'), p_waiting_for_dependencies_minutes)
             WHEN t.current_state = 'waiting_for_retry' THEN
               coalesce(tasker._lifecycle_minutes(nt.configuration, 'maxWaitingForRetryMinutes',
                                                  'max_waiting_for_retry_minutes'), p_waiting_for_retry_minutes)
             ELSE
               coalesce(tasker._lifecycle_minutes(nt.configuration, 'maxStepsInProcessMinutes',
                                                  'max_steps_in_process_minutes'), p_steps_in_process_minutes)
           END AS state_threshold_minutes,
           coalesce(tasker._lifecycle_minutes(nt.configuration, 'maxDurationMinutes', 'max_duration_minutes'),
                    p_task_max_lifetime_minutes) AS max_lifetime_minutes
    FROM tasker.tasks t
    JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
    JOIN tasker.task_transitions tr ON tr.task_uuid = t.task_uuid AND tr.most_recent
    LEFT JOIN LATERAL (
      SELECT max(st.created_at) AS last_step_at,
             max(ws.next_retry_at) FILTER (WHERE ws.current_state = 'waiting_for_retry') AS next_retry_at
      FROM tasker.workflow_steps ws
      LEFT JOIN tasker.workflow_step_transitions st ON st.workflow_step_uuid = ws.workflow_step_uuid AND st.most_recent
      WHERE ws.task_uuid = t.task_uuid
    ) act ON true
    WHERE t.current_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually')
  ), measured AS (
    SELECT b.*,
           extract(epoch FROM clock_timestamp() - b.entered_state_at)::double precision / 60 AS minutes_in_state,
           greatest(extract(epoch FROM clock_timestamp() - b.last_progress_at)::double precision / 60, 0) AS minutes_without_progress,
           extract(epoch FROM clock_timestamp() - b.created_at)::double precision / 60 AS task_age_minutes
    FROM base b
  )
  SELECT m.task_uuid, m.namespace, m.name, m.state, m.entered_state_at, m.last_progress_at,
         m.minutes_in_state, m.minutes_without_progress, m.task_age_minutes,
         m.state_threshold_minutes, m.max_lifetime_minutes,
         CASE WHEN m.minutes_without_progress <= m.state_threshold_minutes AND m.task_age_minutes > m.max_lifetime_minutes
              THEN m.max_lifetime_minutes ELSE m.state_threshold_minutes END AS threshold_minutes,
         CASE WHEN m.minutes_without_progress > m.state_threshold_minutes THEN 'state_threshold'
              WHEN m.task_age_minutes > m.max_lifetime_minutes THEN 'max_lifetime' END AS exceeded,
         m.minutes_without_progress > m.state_threshold_minutes OR m.task_age_minutes > m.max_lifetime_minutes AS stale
  FROM measured m
$$;

-- The staleness detector's sweep: up to p_batch stale tasks (longest without progress first) each get one
-- pending DLQ entry (reason staleness_timeout, a snapshot of the task and its steps; ON CONFLICT with the
-- pending-entry unique index DO NOTHING, so a task revived and stale again keeps its one open entry) and are
-- moved to error by compare-and-set. With p_dry_run nothing is written ('would_move').
--
-- Several orchestrators run this at once without a leader: each candidate's row is locked FOR UPDATE SKIP
-- LOCKED and re-checked under the lock, so a task is moved once; one locked elsewhere (another detector, or a
-- result being applied: it is not stale then) or no longer stale is 'lost_race', a normal outcome. Each task
-- is handled in its own subtransaction; a step row held by a claim (lock_not_available) or a deadlock with one
-- rolls back that task only ('lost_race'), and the next sweep looks again.
--
-- The task's steps: those that could still run or be waiting for a run (enqueued, in_progress,
-- waiting_for_retry) move to error with last_error {error_type: staleness_timeout}, and an in_progress step's
-- lease message is archived. Nothing of the task runs any more (claim_steps archives messages of a task in
-- error), a late result of such a step is refused by complete_step (the step is no longer in_progress: 'stale'),
-- and an operator revives the task by resetting (or resolving/completing) those steps: when no step is left in
-- error, apply_step_action brings the task back and it carries on. pending steps never started and stay
-- pending; steps whose result is stored (enqueued_*_for_orchestration) are left for the result processor, which
-- applies them to a task in error without starting anything new.
CREATE FUNCTION tasker.detect_stale_tasks(
  p_dry_run boolean, p_batch integer,
  p_waiting_for_dependencies_minutes integer, p_waiting_for_retry_minutes integer,
  p_steps_in_process_minutes integer, p_task_max_lifetime_minutes integer,
  p_processor uuid DEFAULT NULL
) RETURNS TABLE (task_uuid uuid, namespace text, name text, state text, minutes_in_state double precision,
                 threshold_minutes integer, reason text, action text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  c record;
  f record;
  s record;
  v_detected_by text := coalesce(p_processor::text, 'staleness_detector');
  v_facts jsonb;
BEGIN
  IF p_batch < 1 THEN
    RETURN;
  END IF;
  FOR c IN
    SELECT x.task_uuid, x.namespace, x.name, x.state, x.minutes_in_state, x.threshold_minutes
    FROM tasker.task_staleness(p_waiting_for_dependencies_minutes, p_waiting_for_retry_minutes,
                               p_steps_in_process_minutes, p_task_max_lifetime_minutes) x
    WHERE x.stale
    ORDER BY x.last_progress_at, x.task_uuid
    LIMIT p_batch
  LOOP
    task_uuid := c.task_uuid;
    namespace := c.namespace;
    name := c.name;
    state := c.state;
    minutes_in_state := round(c.minutes_in_state::numeric, 2)::double precision;
    threshold_minutes := c.threshold_minutes;
    reason := 'staleness_timeout';
    IF p_dry_run THEN
      action := 'would_move';
      RETURN NEXT;
      CONTINUE;
    END IF;
    action := 'lost_race';
    BEGIN
      PERFORM 1 FROM tasker.tasks t WHERE t.task_uuid = c.task_uuid FOR UPDATE SKIP LOCKED;
      IF FOUND THEN
        SELECT x.* INTO f
        FROM tasker.task_staleness(p_waiting_for_dependencies_minutes, p_waiting_for_retry_minutes,
                                   p_steps_in_process_minutes, p_task_max_lifetime_minutes) x
        WHERE x.task_uuid = c.task_uuid;
        IF FOUND AND f.stale THEN
          PERFORM 1 FROM tasker.workflow_steps ws WHERE ws.task_uuid = c.task_uuid
          ORDER BY ws.workflow_step_uuid FOR UPDATE NOWAIT;
          state := f.state;
          minutes_in_state := round(f.minutes_in_state::numeric, 2)::double precision;
          threshold_minutes := f.threshold_minutes;
          v_facts := jsonb_build_object(
            'threshold_minutes', f.threshold_minutes,
            'minutes_in_state', round(f.minutes_in_state::numeric, 2),
            'minutes_without_progress', round(f.minutes_without_progress::numeric, 2),
            'task_age_minutes', round(f.task_age_minutes::numeric, 2),
            'exceeded', f.exceeded,
            'detected_by', v_detected_by);

          INSERT INTO tasker.tasks_dlq (task_uuid, original_state, dlq_reason, task_snapshot, metadata)
          SELECT t.task_uuid, f.state, 'staleness_timeout',
                 to_jsonb(t) || jsonb_build_object('steps', (
                   SELECT coalesce(jsonb_agg(jsonb_build_object(
                            'workflow_step_uuid', ws.workflow_step_uuid, 'name', ws.name,
                            'current_state', ws.current_state, 'attempts', ws.attempts,
                            'max_attempts', ws.max_attempts, 'last_error', ws.last_error,
                            'next_retry_at', ws.next_retry_at, 'last_attempted_at', ws.last_attempted_at,
                            'claimed_by', ws.claimed_by) ORDER BY ws.name), '[]'::jsonb)
                   FROM tasker.workflow_steps ws WHERE ws.task_uuid = t.task_uuid)),
                 v_facts
          FROM tasker.tasks t WHERE t.task_uuid = c.task_uuid
          ON CONFLICT (task_uuid) WHERE resolution_status = 'pending' DO NOTHING;

          FOR s IN
            SELECT ws.workflow_step_uuid, ws.current_state, ws.attempts, ws.lease_msg_id, ws.last_error
            FROM tasker.workflow_steps ws
            WHERE ws.task_uuid = c.task_uuid AND ws.current_state IN ('enqueued', 'in_progress', 'waiting_for_retry')
            ORDER BY ws.workflow_step_uuid
          LOOP
            UPDATE tasker.workflow_steps ws
            SET last_error = jsonb_build_object(
                  'message', format('task %s made no progress for %s minutes (threshold %s) and was moved to error by '
                                    'the staleness detector; this step was %s', c.task_uuid,
                                    round(f.minutes_without_progress::numeric, 1), f.state_threshold_minutes, s.current_state),
                  'error_type', 'staleness_timeout', 'retryable', false, 'attempt', s.attempts,
                  'previous_state', s.current_state),
                next_retry_at = NULL,
                lease_msg_id = NULL
            WHERE ws.workflow_step_uuid = s.workflow_step_uuid;
            IF s.lease_msg_id IS NOT NULL THEN
              PERFORM pgmq.archive('worker_' || c.namespace || '_queue', s.lease_msg_id);
            END IF;
            PERFORM tasker._step_transition(s.workflow_step_uuid, s.current_state, 'error',
              jsonb_strip_nulls(jsonb_build_object('event', 'staleness_timeout', 'previous_error', s.last_error)));
          END LOOP;

          IF tasker._task_transition(c.task_uuid, f.state, 'error',
               jsonb_build_object('event', 'staleness_timeout') || v_facts, p_processor) THEN
            action := 'moved_to_error';
          END IF;
        END IF;
      END IF;
      RETURN NEXT;
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
      action := 'lost_race';
      RETURN NEXT;
    END;
  END LOOP;
END;
$$;
