-- Staleness detection and the dead-letter queue (tasker.tasks_dlq): which unfinished tasks have made no progress
-- for too long (task_staleness, with the per-template overrides read by _lifecycle_minutes), and the sweep that
-- moves them to error with one pending DLQ entry each (detect_stale_tasks).
--
-- Callers: src/orchestration/stalenessDetector.ts, through detectStaleTasks in src/db/queries/staleTasks.ts,
-- runs detect_stale_tasks every interval on every orchestrator. task_staleness is read by detect_stale_tasks and
-- by listTaskStaleness (src/db/queries/staleTasks.ts; exported, called nowhere in src/ or test/). An operator
-- revives a task the sweep moved to error by fixing its steps through apply_step_action (operator_actions.sql).
--
-- The staleness detector may fail a task from any non-terminal state, and a step waiting for a retry that will
-- no longer happen fails with it: tasker.task_state_transitions and step_state_transitions allow those moves
-- (src/domain/state mirrors them, as the task event staleness_timeout and the step event fail; the step
-- transitions detect_stale_tasks writes carry event staleness_timeout in their metadata).


-- A template's lifecycle override in minutes, or NULL to use the orchestration setting. named_tasks.configuration
-- is the parsed template as src/db/queries/registerTemplate.ts stores it (camelCase keys); the snake_case key is
-- read too, so hand-written rows work. Only a JSON number counts.
--
-- A SQL function of one expression, IMMUTABLE, so the planner inlines it into task_staleness's query.
CREATE OR REPLACE FUNCTION tasker._lifecycle_minutes(p_configuration jsonb, p_camel text, p_snake text)
RETURNS integer
LANGUAGE sql
IMMUTABLE
AS $$
  SELECT CASE
    WHEN jsonb_typeof(p_configuration -> 'lifecycle' -> p_camel) = 'number' THEN (p_configuration -> 'lifecycle' ->> p_camel)::numeric::integer
    WHEN jsonb_typeof(p_configuration -> 'lifecycle' -> p_snake) = 'number' THEN (p_configuration -> 'lifecycle' ->> p_snake)::numeric::integer
  END
$$;

-- How long each unfinished task (any state but complete, error, cancelled, resolved_manually) has been without
-- progress, against one consistent set of thresholds: the orchestration settings, overridden per template by
-- lifecycle.max_waiting_for_dependencies_minutes, max_waiting_for_retry_minutes, max_steps_in_process_minutes,
-- and max_duration_minutes (which overrides the max lifetime).
--
-- minutes_in_state: since the task's latest transition. But a task in steps_in_process does not transition
-- while its steps advance one after another, so staleness is judged on minutes_without_progress: since the
-- latest of the task's transition, any of its steps' latest transitions, and a retry that is scheduled (a step
-- waiting out a long backoff is expected activity; a retry due in the future counts as progress until then).
-- Thresholds by state: pending and waiting_for_dependencies use the waiting-for-dependencies one,
-- waiting_for_retry its own, every other (active) state the steps-in-process one. A step that legitimately runs
-- longer than that without any other activity needs a per-template override.
--
-- A task is stale when minutes_without_progress exceeds its state's threshold ('state_threshold') or its age
-- exceeds the max lifetime ('max_lifetime'); threshold_minutes is the threshold that applies (the state's one
-- unless only the lifetime is exceeded).
--
-- A SQL function of one SELECT, STABLE and without SET clauses, so the planner inlines it into the calling
-- query (a SET clause would stop that). Its measured CTE reads clock_timestamp(), which is volatile, so
-- PostgreSQL materializes that CTE: a filter on task_uuid in the calling query does not reach the tables, and
-- every call measures every unfinished task.
CREATE OR REPLACE FUNCTION tasker.task_staleness(
  p_waiting_for_dependencies_minutes integer, p_waiting_for_retry_minutes integer,
  p_steps_in_process_minutes integer, p_task_max_lifetime_minutes integer
)
RETURNS TABLE(task_uuid uuid, namespace text, name text, state text, entered_state_at timestamp with time zone,
              last_progress_at timestamp with time zone, minutes_in_state double precision,
              minutes_without_progress double precision, task_age_minutes double precision,
              state_threshold_minutes integer, max_lifetime_minutes integer, threshold_minutes integer,
              exceeded text, stale boolean)
LANGUAGE sql
STABLE
AS $$
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

-- Records a pending DLQ entry for a task: the reason, the task's state before it failed, a snapshot of the task
-- and its steps, and the facts that led there (metadata). At most one pending entry per task: the insert does
-- nothing on the pending-entry unique index (tasks_dlq_pending_task_idx), so a second detection of the same
-- failure, or a revived task that fails again before an operator closed its entry, keeps the one open entry.
-- Returns whether an entry was added. The caller holds the task row lock. Callers: detect_stale_tasks
-- (staleness_timeout), _evaluate_task in task_finalization.sql (max_retries_exceeded).
CREATE OR REPLACE FUNCTION tasker._dead_letter_task(p_task uuid, p_original_state text, p_reason text, p_metadata jsonb)
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO tasker.tasks_dlq (task_uuid, original_state, dlq_reason, task_snapshot, metadata)
  SELECT t.task_uuid, p_original_state, p_reason,
         to_jsonb(t) || jsonb_build_object('steps', (
           SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'workflow_step_uuid', ws.workflow_step_uuid, 'name', ws.name,
                    'current_state', ws.current_state, 'attempts', ws.attempts,
                    'max_attempts', ws.max_attempts, 'last_error', ws.last_error,
                    'next_retry_at', ws.next_retry_at, 'last_attempted_at', ws.last_attempted_at,
                    'claimed_by', ws.claimed_by) ORDER BY ws.name), '[]'::jsonb)
           FROM tasker.workflow_steps ws WHERE ws.task_uuid = t.task_uuid)),
         p_metadata
  FROM tasker.tasks t WHERE t.task_uuid = p_task
  ON CONFLICT (task_uuid) WHERE resolution_status = 'pending' DO NOTHING;
  RETURN FOUND;
END;
$$;

-- The staleness detector's sweep: up to p_batch stale tasks (longest without progress first) each get one
-- pending DLQ entry (reason staleness_timeout, a snapshot of the task and its steps, the measured facts as
-- metadata; ON CONFLICT with the pending-entry unique index tasks_dlq_pending_task_idx DO NOTHING, so a task
-- revived and stale again keeps its one open entry) and are moved to error by compare-and-set. With p_dry_run
-- nothing is written and nothing is locked ('would_move'). p_batch < 1 does nothing.
--
-- Several orchestrators run this at once without a leader: each candidate's row is locked FOR UPDATE SKIP
-- LOCKED and its staleness measured again under the lock, so a task is moved once; one locked elsewhere
-- (another detector, or a result being applied: it is not stale then) or no longer stale is 'lost_race', a
-- normal outcome. Each task is handled in its own subtransaction; its steps are locked NOWAIT, so a step row
-- held by a claim (lock_not_available), or a deadlock with one, rolls back that task only ('lost_race'), and
-- the next sweep looks again. Each re-check calls task_staleness, which measures every unfinished task (its
-- filter on task_uuid does not reach the tables, see task_staleness): a sweep makes one pass over the
-- unfinished tasks, plus one per candidate it locks.
--
-- The task's steps: those that could still run or be waiting for a run (enqueued, in_progress,
-- waiting_for_retry) move to error with last_error {error_type: staleness_timeout}, and an in_progress step's
-- lease message is archived. Nothing of the task runs any more (claim_steps archives messages of a task in
-- error), a late result of such a step is refused by complete_many_and_claim (the step is no longer in_progress:
-- 'stale'),
-- and an operator revives the task by resetting (or resolving/completing) those steps: when no step is left in
-- error, apply_step_action brings the task back and it carries on. pending steps never started and stay
-- pending; steps whose result is stored (enqueued_*_for_orchestration) are left for the result processor, which
-- applies them to a task in error without starting anything new.
--
-- The whole sweep is one commit. jit = off, like every function the services call: the statements are small,
-- and a generic plan's cost estimate, which grows with the tables, would otherwise make PostgreSQL JIT-compile
-- them at every execution.
CREATE OR REPLACE FUNCTION tasker.detect_stale_tasks(
  p_dry_run boolean, p_batch integer,
  p_waiting_for_dependencies_minutes integer, p_waiting_for_retry_minutes integer,
  p_steps_in_process_minutes integer, p_task_max_lifetime_minutes integer,
  p_processor uuid DEFAULT NULL::uuid
)
RETURNS TABLE(task_uuid uuid, namespace text, name text, state text, minutes_in_state double precision,
              threshold_minutes integer, reason text, action text)
LANGUAGE plpgsql
SET jit TO 'off'
AS $$
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

          PERFORM tasker._dead_letter_task(c.task_uuid, f.state, 'staleness_timeout', v_facts);

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
