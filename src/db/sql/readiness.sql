-- Readiness: which steps may run now, getting them into their queue, and the readiness views of the REST API.
--
-- A step is ready when it is pending and every parent is complete or resolved_manually. Ready steps move
-- pending -> enqueued by compare-and-set and get a message in worker_<namespace>_queue, where claim_steps finds them
-- (claim_steps.sql). The engine enqueues after a result (_apply_step_result, and _start_ready_children for
-- the children beyond the completing worker's room), on a finalization request and on an operator's fix, always
-- under the task row lock; the views only read.

-- Enqueues the task's ready steps and sends their messages, without a wake-up signal: returns the queue and the
-- message ids, for the caller to signal (once per batch) or to leave unsignalled (steps it claims itself). With
-- p_parent, only that step's children (after it completes); without, every ready step of the task. The
-- compare-and-set pending -> enqueued and the transitions of all of them are one statement.
-- The caller holds the task row lock. Callers: _apply_step_result and _start_ready_children (which signal or
-- claim what it enqueued), process_finalization_requests and apply_step_action (which signal at once).
-- Plans: a parent's children are found from its edges with one subquery per child on a single key, the UPDATE names
-- its rows with "= ANY(array)", and each most_recent flag is flipped through its own step's key: a flip written as
-- a join of the moved steps to the transitions can be planned as a read of every current transition (16,036 of
-- them to enqueue one child, on 4,000 tasks).
CREATE OR REPLACE FUNCTION tasker._enqueue_ready_steps(p_task uuid, p_parent uuid, OUT queue text,
                                                       OUT msg_ids bigint[])
LANGUAGE plpgsql
AS $$
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
    WHERE tr.workflow_step_transition_uuid = ANY(ARRAY(
      SELECT (SELECT cur.workflow_step_transition_uuid FROM tasker.workflow_step_transitions cur
              WHERE cur.workflow_step_uuid = fl.workflow_step_uuid AND cur.most_recent)
      FROM moved fl))
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

-- Sends a fresh message for every step of the task that is enqueued or waiting for a retry (delayed to its due time
-- if that is still ahead), with one wake-up signal; returns how many it sent. A task in error has its step messages
-- archived by claim_steps, which starts no step of a finished task, so when an operator revives the task its
-- enqueued and retrying steps would otherwise wait forever. A message that was not archived meanwhile is now a
-- duplicate, which claim_steps absorbs: only one message can move a step to in_progress. Caller: apply_step_action
-- (operators, off the hot path: one pgmq.send per step).
CREATE OR REPLACE FUNCTION tasker._redispatch_steps(p_task uuid)
RETURNS integer
LANGUAGE plpgsql
AS $$
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

-- The readiness of every step of a task, in one query (reference §3.1): whether its parents are all complete or
-- resolved_manually, whether it may run again (never run, or retryable with attempts left and its last failure not
-- permanent: the step-result SQL's retry decision, so a step a handler failed with a PermanentError is not shown as
-- eligible; an operator's reset_for_retry clears last_error and attempts), and whether it is ready
-- to run now (pending or waiting_for_retry, both of the former, and any retry due). For the REST API's step views
-- (src/db/queries/stepViews.ts) and get_task_execution_context; the engine's own decisions do not use it.
-- A SQL function of one query, STABLE and without a SET clause, so the planner inlines it into the calling query and
-- a filter on the task reaches the tables: a SET clause (such as the entry points' jit = off) makes it an opaque
-- function planned without its task filter (1.8 s for one task's steps on a grown database).
CREATE OR REPLACE FUNCTION tasker.get_step_readiness_status(p_task uuid)
RETURNS TABLE (workflow_step_uuid uuid, name text, current_state text, dependencies_satisfied boolean,
               retry_eligible boolean, ready_for_execution boolean, next_retry_at timestamptz, total_parents integer,
               completed_parents integer, attempts integer, max_attempts integer, last_attempted_at timestamptz)
LANGUAGE sql STABLE
AS $$
  SELECT s.workflow_step_uuid, s.name::text, s.current_state,
         coalesce(p.total, 0) = coalesce(p.completed, 0) AS dependencies_satisfied,
         (s.attempts = 0 OR (s.retryable AND s.attempts < s.max_attempts
                               AND coalesce((s.last_error ->> 'retryable')::boolean, true))) AS retry_eligible,
         (s.current_state IN ('pending', 'waiting_for_retry')
           AND coalesce(p.total, 0) = coalesce(p.completed, 0)
           AND (s.attempts = 0 OR (s.retryable AND s.attempts < s.max_attempts
                                   AND coalesce((s.last_error ->> 'retryable')::boolean, true)))
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

-- The task execution context (reference §3.2): its steps counted by state, its execution status and recommended
-- action, decided in this order: failures first, then ready steps, then work in flight, then completion, else
-- waiting on dependencies; its completion percentage and health. For the REST API's task views
-- (src/db/queries/taskViews.ts); the engine decides with _evaluate_task. SQL without a SET clause, so that it is
-- inlined like get_step_readiness_status, which it reads.
CREATE OR REPLACE FUNCTION tasker.get_task_execution_context(p_task uuid)
RETURNS TABLE (task_uuid uuid, total_steps integer, pending_steps integer, in_progress_steps integer,
               completed_steps integer, failed_steps integer, ready_steps integer, execution_status text,
               recommended_action text, completion_percentage numeric, health_status text)
LANGUAGE sql STABLE
AS $$
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
