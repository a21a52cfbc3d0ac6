-- Task evaluation and finalization: what a task's state is once its steps have moved, and getting it there.
--
-- A task's state follows its steps: it runs (steps_in_process) while steps are in flight, waits (waiting_for_retry)
-- when nothing is in flight but a retry, completes when every step is complete or resolved_manually, and fails fast
-- (error) when a step fails for good. _evaluate_task decides it after every change of a task's steps, under the task
-- row lock, which serializes evaluation per task: two orchestrators cannot both finalize a task, and two results of
-- one task cannot both miss that it is finished. process_finalization_requests is the orchestrator's way to ask for
-- it from outside.
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

-- Decides a task's state from the counts of its steps by state, moves it there, and returns it:
--   * a step in error: the task fails fast (reference §3.2), steps_in_process -> evaluating_results ->
--     blocked_by_failures -> error; an operator can revive it (apply_step_action). When a step in error used
--     all its attempts on retryable failures, the task also gets a pending DLQ entry (max_retries_exceeded, _dead_letter_task);
--   * every step complete or resolved_manually: -> evaluating_results -> complete;
--   * nothing in flight and a step waiting for a retry: -> waiting_for_retry;
--   * steps in flight: steps_in_process;
--   * anything else (pending steps not enqueued yet, say): the state stays.
-- A task that is terminal or blocked_by_failures is returned as it is. A task that waits elsewhere is first walked
-- to steps_in_process (_task_resume), so that every path starts there and the history shows each state passed.
-- The common cases (still running, or finishing from steps_in_process) cost one state read, one count and, when
-- finishing, the two statements of _task_path.
-- The caller holds the task row lock. Callers: _apply_step_result, _complete_step, complete_many_and_claim
-- (tasks off its two plain cases), claim_steps (a step failed by an expired lease), process_finalization_requests,
-- apply_step_action.
CREATE OR REPLACE FUNCTION tasker._evaluate_task(p_task uuid, p_processor uuid)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
  v_state text;
  v_exhausted jsonb;
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
    -- A step that used every attempt it had on failures that would otherwise have been retried: the task goes
    -- where an operator looks (the DLQ) now, not when the staleness detector would find it. A failure final by
    -- itself (a PermanentError, a non-retryable error, a step with retry.retryable false) exhausted nothing: no
    -- entry for that reason.
    SELECT jsonb_agg(jsonb_build_object('step', ws.name, 'attempts', ws.attempts, 'max_attempts', ws.max_attempts,
                                        'error_type', ws.last_error ->> 'error_type') ORDER BY ws.name)
    INTO v_exhausted
    FROM tasker.workflow_steps ws
    WHERE ws.task_uuid = p_task AND ws.current_state = 'error' AND ws.attempts >= ws.max_attempts
      AND ws.retryable AND coalesce((ws.last_error ->> 'retryable')::boolean, true);
    IF v_exhausted IS NOT NULL THEN
      PERFORM tasker._dead_letter_task(p_task, 'blocked_by_failures', 'max_retries_exceeded',
        jsonb_build_object('exhausted_steps', v_exhausted,
                           'detected_by', coalesce(p_processor::text, 'task_finalization')));
    END IF;
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

-- Finalization requests ({"task_uuid": ...}, from any producer) read from orchestration_task_finalizations: each
-- task, under its row lock, gets its ready steps enqueued (with their wake-up) and is evaluated. A message whose
-- task_uuid does not parse or whose task is gone is archived unhandled. The batch is archived in one statement, all
-- in one commit; returns how many messages it handled. Caller: processFinalizationRequests in
-- src/db/queries/orchestrationQueues.ts (the orchestrator's step_enqueuer stage).
-- Each task is locked when its message is handled, so a batch locks its tasks in message order, not in task_uuid
-- order as process_step_results and complete_many_and_claim do.
CREATE OR REPLACE FUNCTION tasker.process_finalization_requests(p_limit integer, p_vt integer DEFAULT 30,
                                                                p_processor uuid DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
AS $$
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
      PERFORM tasker._notify_sent(e.queue, e.msg_ids) FROM tasker._enqueue_ready_steps(v_task, NULL) e;
      PERFORM tasker._evaluate_task(v_task, p_processor);
    END IF;
    v_msgs := v_msgs || m.msg_id;
  END LOOP;
  PERFORM tasker._q_archive('orchestration_task_finalizations', v_msgs);
  RETURN cardinality(v_msgs);
END;
$$;
