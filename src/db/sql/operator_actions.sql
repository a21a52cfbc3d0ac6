-- Operator actions on one task: fixing one step (apply_step_action) and cancelling the whole task (cancel_task).
--
-- Callers: src/db/queries/stepActions.ts (applyStepAction, behind PATCH /v1/tasks/{task}/workflow_steps/{step}
-- in src/api/rest/routes/stepRoutes.ts) and src/db/queries/orchestrationQueues.ts (cancelTask, behind
-- DELETE /v1/tasks/{task} in src/api/rest/routes/taskRoutes.ts, which the client and the CLI call). Each call is
-- one commit.
--
-- Both take the task row lock first (SELECT ... FOR UPDATE) and only then touch the task's steps: the engine's
-- locking order, task row then step rows, which serializes them with result application and finalization.
--
-- Both run with jit = off, like every function the services call: a generic plan's cost estimate grows with the
-- tables (the planner scales by their current size even without ANALYZE), and once an estimate passes
-- jit_above_cost PostgreSQL compiles the statement at every execution (measured: 6.3 ms of JIT for a 0.02 ms
-- lookup). These statements are all small; JIT cannot pay off. Functions they call inherit the setting.


-- An operator's fix of one step, applied in one commit:
--
--   reset_for_retry    error -> pending, attempts 0, last_error/next_retry_at/claim cleared (the old attempts and
--                      error go into the transition metadata); the step runs again with a fresh retry budget. The
--                      attempt number is also the completion's fencing token, so restarting it at 0 lets a worker
--                      from before the reset that outlived its lease by the whole new run, and reports while the
--                      new run has its attempt number, store its (genuine) result once.
--   resolve_manually   -> resolved_manually: the step counts as done (dependents run), results kept as they are.
--   complete_manually  -> complete with results = p_result (JSON null when none is given): dependents see it
--                      exactly like a handler's result (step_dependency_results reads workflow_steps.results).
--
-- resolve/complete are accepted from pending, waiting_for_retry and error: the states in which no handler is
-- running, none is about to be started (enqueued: a worker may claim it any moment) and no result is on its way.
-- Never from enqueued or in_progress (the operator would race a handler), nor from enqueued_*_for_orchestration
-- (a result is stored and about to be applied), nor from the terminal complete/cancelled/resolved_manually.
-- Two operators acting on the same failed step at once therefore conflict: the first moves it out of error, so a
-- second reset is refused, and so is any second action once the step is resolved, completed, or enqueued again
-- (a reset that revives its task enqueues the step at once; a reset in a task that stays in error leaves the
-- step pending, from which resolve/complete are still accepted). The delayed message of a step that was waiting
-- for a retry is absorbed by claim_steps (the step is no longer retrying).
--
-- The step is read without a row lock and changed by compare-and-set on the state it was read in: every other
-- writer of a step's state holds the task lock taken here, except claim_steps, which the compare-and-set catches
-- (the claim wins, the action is refused with 'not_allowed').
--
-- The task: refused when it is complete, cancelled or resolved_manually. Otherwise, under its row lock, ready
-- steps are enqueued and the task is evaluated like after any step result, so it carries on (or completes at once
-- if nothing is left). A task in blocked_by_failures is first given up (-> error). A task in error is revived as
-- soon as none of its steps is in error any more: error -> pending -> ... -> steps_in_process (_task_resume), its
-- enqueued and retrying steps re-sent (_redispatch_steps: claim_steps archives the messages of a task in error,
-- and a message that survived becomes a duplicate that claim_steps absorbs), ready steps enqueued, evaluated.
-- While other steps are still in error it stays in error (the fix is kept; it takes effect when the last failed
-- step is fixed), so a task never bounces between error and running.
-- This is how a task moved to error by the staleness detector (detect_stale_tasks) comes back.
--
-- Returns one row: outcome 'applied', 'task_not_found', 'step_not_found' (no such step in this task),
-- 'task_finished' (the task is complete/cancelled/resolved_manually) or 'not_allowed' (the step's state); the
-- task's and step's states afterwards; the step states the action is accepted from. An unknown action raises
-- invalid_parameter_value. applyStepAction retries the call on deadlock_detected and serialization_failure.
CREATE OR REPLACE FUNCTION tasker.apply_step_action(
  p_task uuid, p_step uuid, p_action text, p_result jsonb DEFAULT NULL::jsonb, p_metadata jsonb DEFAULT NULL::jsonb,
  p_operator text DEFAULT NULL::text, p_reason text DEFAULT NULL::text, p_processor uuid DEFAULT NULL::uuid
)
RETURNS TABLE(outcome text, task_state text, step_state text, allowed_from text[])
LANGUAGE plpgsql
SET jit TO 'off'
AS $$
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
      PERFORM tasker._notify_sent(e.queue, e.msg_ids) FROM tasker._enqueue_ready_steps(p_task, NULL) e;
      PERFORM tasker._evaluate_task(p_task, p_processor);
    END IF;
  ELSE
    PERFORM tasker._notify_sent(e.queue, e.msg_ids) FROM tasker._enqueue_ready_steps(p_task, NULL) e;
    PERFORM tasker._evaluate_task(p_task, p_processor);
  END IF;

  outcome := 'applied';
  SELECT t.current_state INTO task_state FROM tasker.tasks t WHERE t.task_uuid = p_task;
  SELECT ws.current_state INTO step_state FROM tasker.workflow_steps ws WHERE ws.workflow_step_uuid = p_step;
  RETURN NEXT;
END;
$$;

-- Cancels a task and every step not yet finished. Returns 'cancelled', 'not_found', or 'already_<state>' for a
-- task that is already terminal (complete, error, cancelled, resolved_manually): a task in error is not
-- cancelled.
--
-- Steps in complete, cancelled, resolved_manually or error keep their state (a failed step stays visible as
-- failed); every other step moves to cancelled, whatever it was doing. Their queue messages are left where they
-- are: claim_steps archives the message of a step whose task is finished, and a result that arrives later for a
-- cancelled step is stored nowhere (complete_many_and_claim answers 'stale': the step is no longer in_progress).
--
-- Locks the task row, then the steps it cancels FOR UPDATE in step-key order. claim_steps, on an expired lease
-- with no attempts left, locks the step first and its task afterwards, so the two can deadlock; PostgreSQL then
-- aborts one of them (deadlock_detected), and cancelTask does not retry.
CREATE OR REPLACE FUNCTION tasker.cancel_task(p_task uuid, p_processor uuid DEFAULT NULL::uuid)
RETURNS text
LANGUAGE plpgsql
SET jit TO 'off'
AS $$
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
