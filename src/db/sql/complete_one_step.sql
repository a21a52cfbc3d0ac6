-- One worker's result: stored under the claim's fence, and applied in the same commit or handed to the orchestrator.
--
-- Caller: complete_many_and_claim (complete_steps.sql), for every result it does not store as a set: failures, a
-- lone result, and every result when the orchestrator applies them. It runs under that entry point's planner
-- settings (generic plans, nested loops over index scans, no JIT).
--
-- A step's way through here: in_progress -> enqueued_for_orchestration -> complete (a success applied inline), or
-- in_progress -> enqueued_as_error_for_orchestration -> waiting_for_retry / error (a failure applied inline, by
-- _apply_step_result in step_results.sql), or in_progress -> enqueued_*_for_orchestration and a message on
-- orchestration_step_results (applied later by process_step_results).

-- Stores p_worker's result for p_step if p_worker still holds the claim: the step in_progress with
-- attempts = p_attempt and claimed_by = p_worker. attempts is the fencing token: a worker whose lease expired and
-- whose step was claimed again cannot overwrite the new run. The holder is part of the fence because an operator's
-- reset_for_retry starts attempts again at 0, and a worker from before the reset could otherwise match a new run.
-- A result that fails the fence changes nothing: outcome 'stale'.
--
-- A stored result gets its transition (in_progress -> enqueued_for_orchestration, or
-- enqueued_as_error_for_orchestration for a failure, whose payload becomes last_error with the attempt), its result
-- audit row (who produced it, when, how long; attributed to that transition), and its lease message archived. Then:
--   * p_inline and a success: applied in the same statements, in_progress -> enqueued_for_orchestration -> complete
--     in one UPDATE and one transition write, the same rows, history and audit as storing it and then applying it.
--     In a live task the children it made ready are started for p_worker, up to p_claim_limit
--     (_start_ready_children, returned in claimed_msgs / claimed_steps), the rest enqueued (queue, msg_ids); a task
--     that was cancelled or failed meanwhile keeps the result but starts nothing new. Outcome 'complete';
--   * p_inline and a failure: applied by _apply_step_result; its outcome ('retry' or 'error');
--   * otherwise: a message on orchestration_step_results for the orchestrator (queue, msg_ids); outcome 'stored'.
-- Apart from a retry's delayed message, which _apply_step_result signals itself, nothing here notifies: the
-- caller signals the messages it is given, once per batch.
--
-- After an inline success the task is evaluated (_evaluate_task), except when a child was started or enqueued in a
-- task in steps_in_process: a step of it is then in flight, so the task is neither finished nor waiting for a retry,
-- and none of its steps has failed (a failure takes the task out of steps_in_process when it is applied, under the
-- task lock that every completion takes first). Most of a chain edge's cost is per statement (executor start-up,
-- relations opened, plan state; counted with bench/sql/countInstructions.sh), and this saves two per edge.
--
-- Locking: the task row first (FOR UPDATE), then the step, the engine's order. The task's namespace and
-- correlation id, read under that lock, are handed to _start_ready_children so that it does not read them again.
CREATE OR REPLACE FUNCTION tasker._complete_step(p_task uuid, p_step uuid, p_attempt integer, p_success boolean,
                                                 p_payload jsonb, p_worker text, p_execution_ms integer,
                                                 p_inline boolean, p_claim_limit integer, p_lease_seconds integer,
                                                 OUT outcome text, OUT queue text, OUT msg_ids bigint[],
                                                 OUT claimed_msgs bigint[], OUT claimed_steps uuid[])
LANGUAGE plpgsql
AS $$
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
  -- The state compared through a constant, not a literal: with the literal, a generic plan can prove the
  -- partial index workflow_steps_in_progress_idx usable and read the step through it (an entry for every step in
  -- progress, and without vacuum for every step that ever was) instead of through its primary key.
  c_in_progress CONSTANT text := 'in_progress';
BEGIN
  -- Task first, then step: the engine's locking order.
  SELECT t.namespace_name, t.correlation_id, t.current_state INTO v_namespace, v_correlation, v_task_state
  FROM tasker.tasks t WHERE t.task_uuid = p_task
  FOR UPDATE;
  queue := 'worker_' || v_namespace || '_queue';

  IF p_inline AND p_success THEN
    UPDATE tasker.workflow_steps
    SET current_state = 'complete', in_process = false, processed = true, processed_at = now(),
        results = p_payload, updated_at = now()
    WHERE workflow_step_uuid = p_step AND task_uuid = p_task AND current_state = c_in_progress AND attempts = p_attempt
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
      SELECT * INTO r FROM tasker._start_ready_children(p_task, p_step, p_worker, p_lease_seconds, p_claim_limit, v_namespace, v_correlation);
      msg_ids := r.msg_ids;
      claimed_msgs := r.claimed_msgs;
      claimed_steps := r.claimed_steps;
    END IF;
    -- A child started or enqueued in a task in steps_in_process: still running, nothing to evaluate.
    IF NOT (v_task_state = 'steps_in_process'
            AND coalesce(cardinality(claimed_steps), 0) + coalesce(cardinality(msg_ids), 0) > 0) THEN
      PERFORM tasker._evaluate_task(p_task, NULL);
    END IF;
    outcome := 'complete';
    RETURN;
  END IF;

  UPDATE tasker.workflow_steps
  SET current_state = v_to,
      in_process = false,
      results = CASE WHEN p_success THEN p_payload ELSE results END,
      last_error = CASE WHEN p_success THEN last_error ELSE p_payload || jsonb_build_object('attempt', p_attempt) END,
      updated_at = now()
  WHERE workflow_step_uuid = p_step AND task_uuid = p_task AND current_state = c_in_progress AND attempts = p_attempt
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
    SELECT * INTO r FROM tasker._apply_step_result(p_step, NULL);
    outcome := r.outcome;
    msg_ids := r.msg_ids;
    RETURN;
  END IF;
  queue := 'orchestration_step_results';
  msg_ids := tasker._q_send(queue, ARRAY[tasker._step_message(p_task, p_step, v_correlation)], clock_timestamp());
  outcome := 'stored';
END;
$$;
