-- State changes of tasks and steps, and the transition rows that record them.
--
-- A task's or step's current state lives on its row (tasks.current_state, workflow_steps.current_state) and changes
-- only by compare-and-set: UPDATE ... WHERE current_state = <expected>. The row lock serializes racers and the
-- loser's WHERE no longer matches, so a lost race writes nothing and its caller sees false. Every change also
-- appends a transition row (from, to, metadata, sort_key) and moves the entity's most_recent flag to it: the
-- partial unique indexes on (entity) WHERE most_recent keep exactly one current transition per entity, and
-- sort_key numbers an entity's transitions 1, 2, 3 ...
--
-- These are the per-item building blocks: result application, task evaluation, claim_steps' slow path,
-- cancellation, operator actions, staleness. The hot path's set-based statements (claim_steps' fast path,
-- _start_ready_children, _enqueue_ready_steps, _complete_step, complete_many_and_claim, task creation) write
-- the same rows in their own statements, one flip and one multi-row insert for a whole batch.

-- Appends one transition of a task whose state the caller has just changed by compare-and-set (_task_transition,
-- its only caller). p_from NULL is a task's first transition. A (from, to) pair that tasker.task_state_transitions
-- does not list (the table mirrors src/domain/state) is refused with check_violation: a wrong transition is a bug,
-- caught where it happens. The previous current transition is flipped and the new one numbered after it. Three
-- statements per transition, which is why the hot path writes consecutive transitions with _task_path or its own
-- statements instead.
CREATE OR REPLACE FUNCTION tasker._record_task_transition(p_task uuid, p_from text, p_to text, p_metadata jsonb,
                                                          p_processor uuid)
RETURNS void
LANGUAGE plpgsql
AS $$
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

-- Appends one transition of a step whose state the caller has just changed, and returns the new row's key (result
-- audit rows point at the transition that stored their result). The pair is checked against
-- tasker.step_state_transitions as above (test/integration/stateTransitionTables.test.ts). Callers: _step_transition;
-- claim_steps and apply_step_action, which change the step's state together with its other columns in an UPDATE
-- of their own and record the transition here.
CREATE OR REPLACE FUNCTION tasker._record_step_transition(p_step uuid, p_from text, p_to text, p_metadata jsonb)
RETURNS uuid
LANGUAGE plpgsql
AS $$
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

-- Compare-and-set of a task's state, p_from -> p_to, and its transition. complete and completed_at follow the
-- state: completed_at is set on reaching a terminal state (complete, error, cancelled, resolved_manually) and
-- cleared on leaving one (an operator reviving a task in error). Returns false, and writes nothing, when the task is
-- no longer in p_from. Callers: _task_resume, cancel_task, apply_step_action, detect_stale_tasks.
CREATE OR REPLACE FUNCTION tasker._task_transition(p_task uuid, p_from text, p_to text, p_metadata jsonb DEFAULT '{}',
                                                   p_processor uuid DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
AS $$
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

-- Compare-and-set of a step's state, p_from -> p_to, and its transition. Only the state and what follows from it:
-- in_process is true exactly in in_progress, and processed / processed_at are set on reaching complete, cancelled
-- or resolved_manually and never cleared. Callers that change other columns too (attempts, results, last_error,
-- next_retry_at) do so in their own UPDATE. Returns false, and writes nothing, when the step is no longer in p_from.
-- Callers: claim_steps (expired leases, due retries), _apply_step_result, cancel_task, detect_stale_tasks.
CREATE OR REPLACE FUNCTION tasker._step_transition(p_step uuid, p_from text, p_to text, p_metadata jsonb DEFAULT '{}')
RETURNS boolean
LANGUAGE plpgsql
AS $$
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

-- Several consecutive transitions of one task in two statements: one compare-and-set from p_from to the last of
-- p_states, then one flip of the current transition and one multi-row insert of p_from -> p_states[1] ->
-- p_states[2] ..., the i-th with metadata {"event": p_events[i]}. The rows are those of one _task_transition per
-- state, which costs four statements each. The pairs are not checked against tasker.task_state_transitions: the
-- only caller, _evaluate_task, passes fixed paths that the table lists. Returns false, and writes nothing, when the
-- task is no longer in p_from.
CREATE OR REPLACE FUNCTION tasker._task_path(p_task uuid, p_from text, p_states text[], p_events text[],
                                             p_processor uuid)
RETURNS boolean
LANGUAGE plpgsql
AS $$
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

-- Walks a task along the state machine to steps_in_process from wherever it waits (error, pending, initializing,
-- enqueuing_steps, waiting_for_dependencies, evaluating_results, waiting_for_retry), one _task_transition per edge,
-- so its history shows every state it passes through. A task in steps_in_process, blocked_by_failures or a terminal
-- state other than error stays as it is. The caller holds the task row lock. Callers: _evaluate_task (a task that
-- is not in steps_in_process, before it is finished, failed or found running), apply_step_action (reviving a task
-- in error once none of its steps is in error).
CREATE OR REPLACE FUNCTION tasker._task_resume(p_task uuid, p_processor uuid)
RETURNS void
LANGUAGE plpgsql
AS $$
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
