-- Hot-path statements whose plans do not depend on the tables' statistics.
--
-- A hot-path function keeps one generic plan per session (0006), made the first time it runs. When that is
-- on small tables whose statistics say so (a new database that autovacuum has analyzed, or a VACUUM after a
-- TRUNCATE, as every benchmark scenario starts), any plan looks cheap: with sequential scans off (0006) the
-- planner picked scans of whole indexes with a filter, and the session kept them while the tables grew.
-- Found with auto_explain (log_nested_statements, log_buffers), counted in blocks read per call:
--   * _start_ready_children joined the children to start (an unnest) to workflow_steps and read the steps
--     table's whole primary key on every chain edge: 651 blocks for one step on a database of 4,600 steps.
--     pgbench bench/sql/linear_worker.sql, 8 s runs alternating on two databases, 2-core AMD EPYC:
--     112-127 tasks/s before, 143-175 after;
--   * _complete_step read the finished step through workflow_steps_in_progress_idx, that is every step in
--     progress, instead of its primary key (the literal 'in_progress' proved the partial index usable);
--   * step_dependency_results looked up parents with "to_step_uuid = ANY(frontier)" and read the whole
--     (from_step_uuid, to_step_uuid, name) key instead of workflow_step_edges_to_idx: 124 blocks per level;
--   * complete_many_and_claim's set path (a batch of results) joined its batch to workflow_steps, and read
--     tasks_active_idx whole to count the steps of every live task, not only the batch's: 5,700 blocks for
--     a batch of two on 1,500 tasks; claim_steps joined its candidates like _start_ready_children;
--   * process_step_results (results applied by the orchestrator) locked its batch's tasks through a join
--     that walked every task and its steps: 5,800 blocks for one result on 1,500 tasks.
-- The fix is in the statements, not the statistics, and test/integration/engine/planStability.test.ts
-- checks it (each call reads about as many blocks on grown tables as on small ones):
--   * a batch is matched with "= ANY(array)" on the primary key, each row's values looked up by
--     array_position, so there is no join to reorder;
--   * where even "= ANY" lost to a whole-index scan, one lookup per element, by a subquery on a single key
--     (planned with a parameter, it always uses the index with the condition);
--   * a state is compared through a constant when a partial index on that state exists (0009's rule);
--   * the parents' index includes from_step_uuid, so the right lookup is an index-only scan too.
-- The functions are otherwise unchanged from 0006 and 0009, but for complete_many_and_claim's new p_refill
-- (see there). CREATE OR REPLACE drops a function's settings, so those of the three entry points are set
-- again at the end.
--
-- Not changed: the queue read (pgmq's "ORDER BY msg_id ... WHERE vt <= now()") still steps over the messages
-- of leased steps; its cost grows with the steps in progress in that queue, not with the tables.

-- ------------------------------------------------------------------------------------------------ children

CREATE OR REPLACE FUNCTION tasker._start_ready_children(p_task uuid, p_parent uuid, p_worker text, p_lease_seconds integer,
                                             p_limit integer, OUT queue text, OUT msg_ids bigint[],
                                             OUT claimed_msgs bigint[], OUT claimed_steps uuid[])
LANGUAGE plpgsql AS $$
DECLARE
  v_task record;
  v_ready uuid[];
  v_take uuid[];
  v_ids bigint[];
  r record;
BEGIN
  claimed_msgs := '{}';
  claimed_steps := '{}';
  IF p_limit < 1 THEN
    SELECT * INTO r FROM tasker._enqueue_ready_steps_quiet(p_task, p_parent);
    queue := r.queue;
    msg_ids := r.msg_ids;
    RETURN;
  END IF;
  SELECT t.namespace_name, t.correlation_id INTO v_task FROM tasker.tasks t WHERE t.task_uuid = p_task;
  queue := 'worker_' || v_task.namespace_name || '_queue';
  msg_ids := '{}';
  SELECT array_agg(c.uuid ORDER BY c.uuid) INTO v_ready
  FROM (SELECT e.to_step_uuid AS uuid FROM tasker.workflow_step_edges e WHERE e.from_step_uuid = p_parent) c
  WHERE (SELECT s.current_state FROM tasker.workflow_steps s WHERE s.workflow_step_uuid = c.uuid) = 'pending'
    AND (SELECT count(*) FROM tasker.workflow_step_edges pe
         JOIN tasker.workflow_steps p ON p.workflow_step_uuid = pe.from_step_uuid
         WHERE pe.to_step_uuid = c.uuid AND p.current_state NOT IN ('complete', 'resolved_manually')) = 0;
  IF v_ready IS NULL THEN
    RETURN;
  END IF;
  v_take := v_ready[1:p_limit];
  v_ids := tasker._q_send(queue,
    ARRAY(SELECT tasker._step_message(p_task, u.id, v_task.correlation_id) FROM unnest(v_take) WITH ORDINALITY AS u(id, n) ORDER BY u.n),
    clock_timestamp() + make_interval(secs => p_lease_seconds), 1);
  WITH moved AS (
    UPDATE tasker.workflow_steps ws
    SET current_state = 'in_progress', in_process = true, attempts = ws.attempts + 1, last_attempted_at = now(),
        claimed_by = p_worker, lease_msg_id = v_ids[array_position(v_take, ws.workflow_step_uuid)],
        next_retry_at = NULL, updated_at = now()
    WHERE ws.workflow_step_uuid = ANY(v_take) AND ws.current_state = 'pending'
    RETURNING ws.workflow_step_uuid, ws.attempts, ws.lease_msg_id AS msg_id
  ), flipped AS (
    UPDATE tasker.workflow_step_transitions tr SET most_recent = false
    WHERE tr.workflow_step_uuid IN (SELECT moved.workflow_step_uuid FROM moved) AND tr.most_recent
    RETURNING tr.workflow_step_uuid, tr.sort_key
  ), recorded AS (
    INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
    SELECT f.workflow_step_uuid, v.from_state, v.to_state, v.metadata, f.sort_key + v.n, v.n = 2, clock_timestamp()
    FROM flipped f
    JOIN moved m ON m.workflow_step_uuid = f.workflow_step_uuid
    CROSS JOIN LATERAL (VALUES (1, 'pending', 'enqueued', '{"event":"enqueue"}'::jsonb),
                               (2, 'enqueued', 'in_progress',
                                jsonb_build_object('event', 'start', 'worker', p_worker, 'attempt', m.attempts)))
      AS v(n, from_state, to_state, metadata)
    ORDER BY f.workflow_step_uuid, v.n
    RETURNING 1
  )
  SELECT coalesce(array_agg(m.msg_id ORDER BY m.msg_id), '{}'), coalesce(array_agg(m.workflow_step_uuid ORDER BY m.msg_id), '{}')
  INTO claimed_msgs, claimed_steps
  FROM moved m;
  IF cardinality(v_ready) > p_limit THEN
    -- The rest go to the queue as usual (they are still pending, their parents complete).
    SELECT * INTO r FROM tasker._enqueue_ready_steps_quiet(p_task, p_parent);
    msg_ids := r.msg_ids;
  END IF;
END;
$$;

-- ------------------------------------------------------------------------------------------------ results

CREATE OR REPLACE FUNCTION tasker._complete_step(
  p_task uuid, p_step uuid, p_attempt integer, p_success boolean, p_payload jsonb, p_worker text,
  p_execution_ms integer, p_inline boolean, p_claim_limit integer, p_lease_seconds integer,
  OUT outcome text, OUT queue text, OUT msg_ids bigint[], OUT claimed_msgs bigint[], OUT claimed_steps uuid[]
)
LANGUAGE plpgsql AS $$
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
  -- See the head of this file: with the literal, the generic plan could read the step through
  -- workflow_steps_in_progress_idx, every step in progress, instead of its primary key.
  c_in_progress CONSTANT text := 'in_progress';
BEGIN
  -- Task first, then step: the locking order of every function here.
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
      SELECT * INTO r FROM tasker._start_ready_children(p_task, p_step, p_worker, p_lease_seconds, p_claim_limit);
      msg_ids := r.msg_ids;
      claimed_msgs := r.claimed_msgs;
      claimed_steps := r.claimed_steps;
    END IF;
    PERFORM tasker._evaluate_task(p_task, NULL);
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
    SELECT * INTO r FROM tasker._apply_step_result_quiet(p_step, NULL);
    outcome := r.outcome;
    msg_ids := r.msg_ids;
    RETURN;
  END IF;
  queue := 'orchestration_step_results';
  msg_ids := tasker._q_send(queue, ARRAY[tasker._step_message(p_task, p_step, v_correlation)], clock_timestamp());
  outcome := 'stored';
END;
$$;

-- ------------------------------------------------------------------------------------------------ claims

CREATE OR REPLACE FUNCTION tasker.claim_steps(p_namespace text, p_worker text, p_lease_seconds integer, p_limit integer,
                                              p_async_commit boolean DEFAULT true)
RETURNS TABLE (msg_id bigint, task_uuid uuid, step_uuid uuid, step_name text, handler_callable text, inputs jsonb,
               context jsonb, attempt integer, max_attempts integer, timeout_seconds integer, correlation_id uuid,
               dependency_results jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_queue text := 'worker_' || p_namespace || '_queue';
  v_msgs bigint[];
  v_steps uuid[];
  v_tasks uuid[];
  v_claimed_msgs bigint[] := '{}';
  v_claimed_steps uuid[] := '{}';
  v_fast_msgs bigint[];
  v_fast_steps uuid[];
  m record;
  s record;
  v_step uuid;
  v_expired boolean;
  v_cand_steps uuid[];
  v_cand_msgs bigint[];
BEGIN
  IF p_limit < 1 THEN
    RETURN;
  END IF;
  IF p_async_commit THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  SELECT array_agg(r.msg_id ORDER BY r.msg_id), array_agg((r.message ->> 'step_uuid')::uuid ORDER BY r.msg_id),
         array_agg((r.message ->> 'task_uuid')::uuid ORDER BY r.msg_id)
  INTO v_msgs, v_steps, v_tasks
  FROM tasker._q_read(v_queue, p_lease_seconds, p_limit) r;
  IF v_msgs IS NULL THEN
    RETURN;
  END IF;

  -- One message per enqueued step (the oldest), as arrays: the UPDATE then finds its rows by primary key.
  SELECT array_agg(c.step_uuid ORDER BY c.step_uuid), array_agg(c.msg_id ORDER BY c.step_uuid)
  INTO v_cand_steps, v_cand_msgs
  FROM (
    SELECT DISTINCT ON (m.step_uuid) m.step_uuid, m.msg_id
    FROM unnest(v_msgs, v_steps) AS m(msg_id, step_uuid)
    WHERE (SELECT ws.current_state FROM tasker.workflow_steps ws WHERE ws.workflow_step_uuid = m.step_uuid) = 'enqueued'
    ORDER BY m.step_uuid, m.msg_id
  ) c;

  WITH claimed AS (
    UPDATE tasker.workflow_steps ws
    SET current_state = 'in_progress', in_process = true, attempts = ws.attempts + 1, last_attempted_at = now(),
        claimed_by = p_worker, lease_msg_id = v_cand_msgs[array_position(v_cand_steps, ws.workflow_step_uuid)],
        next_retry_at = NULL, updated_at = now()
    WHERE ws.workflow_step_uuid = ANY(v_cand_steps) AND ws.current_state = 'enqueued'
      AND (SELECT t.current_state FROM tasker.tasks t WHERE t.task_uuid = ws.task_uuid)
          NOT IN ('complete', 'error', 'cancelled', 'resolved_manually')
    RETURNING ws.workflow_step_uuid, ws.lease_msg_id AS msg_id, ws.attempts
  ), flipped AS (
    UPDATE tasker.workflow_step_transitions tr SET most_recent = false
    WHERE tr.workflow_step_uuid IN (SELECT claimed.workflow_step_uuid FROM claimed) AND tr.most_recent
    RETURNING tr.workflow_step_uuid, tr.sort_key
  ), recorded AS (
    INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
    SELECT f.workflow_step_uuid, 'enqueued', 'in_progress',
           jsonb_build_object('event', 'start', 'worker', p_worker, 'attempt', c.attempts), f.sort_key + 1, true, clock_timestamp()
    FROM flipped f JOIN claimed c ON c.workflow_step_uuid = f.workflow_step_uuid
    RETURNING 1
  )
  -- recorded runs whether or not it is read: data-modifying WITH clauses always run to completion.
  SELECT array_agg(c.msg_id ORDER BY c.msg_id), array_agg(c.workflow_step_uuid ORDER BY c.msg_id)
  INTO v_fast_msgs, v_fast_steps
  FROM claimed c;
  v_claimed_msgs := coalesce(v_fast_msgs, '{}');
  v_claimed_steps := coalesce(v_fast_steps, '{}');

  FOR m IN
    SELECT u.msg_id, u.step_uuid, u.task_uuid FROM unnest(v_msgs, v_steps, v_tasks) AS u(msg_id, step_uuid, task_uuid)
    WHERE NOT (u.msg_id = ANY(v_claimed_msgs))
    ORDER BY u.msg_id
  LOOP
    v_step := m.step_uuid;
    SELECT ws.workflow_step_uuid, ws.current_state, ws.attempts, ws.max_attempts, ws.retryable, ws.next_retry_at,
           ws.lease_msg_id, t.current_state AS task_state
    INTO s
    FROM tasker.workflow_steps ws JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
    WHERE ws.workflow_step_uuid = v_step
    FOR UPDATE OF ws;

    IF NOT FOUND OR s.task_state IN ('complete', 'error', 'cancelled', 'resolved_manually') AND s.current_state <> 'in_progress' THEN
      PERFORM tasker._q_archive(v_queue, ARRAY[m.msg_id]);
      CONTINUE;
    END IF;

    v_expired := s.current_state = 'in_progress' AND s.lease_msg_id = m.msg_id;
    IF v_expired THEN
      -- The previous holder's lease ran out: that run failed.
      IF s.retryable AND s.attempts < s.max_attempts THEN
        UPDATE tasker.workflow_steps ws
        SET last_error = jsonb_build_object('message', 'worker lost: lease expired before a result', 'error_type', 'lease_expired',
                                            'retryable', true, 'attempt', s.attempts, 'worker', ws.claimed_by)
        WHERE ws.workflow_step_uuid = v_step;
        PERFORM tasker._step_transition(v_step, 'in_progress', 'waiting_for_retry', '{"event":"lease_expired"}');
        PERFORM tasker._step_transition(v_step, 'waiting_for_retry', 'pending', '{"event":"retry"}');
        PERFORM tasker._step_transition(v_step, 'pending', 'enqueued', '{"event":"enqueue"}');
      ELSE
        UPDATE tasker.workflow_steps ws
        SET last_error = jsonb_build_object('message', 'worker lost: lease expired before a result, and no attempts remain',
                                            'error_type', 'lease_expired', 'retryable', false, 'attempt', s.attempts,
                                            'worker', ws.claimed_by)
        WHERE ws.workflow_step_uuid = v_step;
        PERFORM tasker._step_transition(v_step, 'in_progress', 'error', '{"event":"lease_expired"}');
        PERFORM tasker._q_archive(v_queue, ARRAY[m.msg_id]);
        PERFORM 1 FROM tasker.tasks t WHERE t.task_uuid = m.task_uuid FOR UPDATE;
        PERFORM tasker._evaluate_task(m.task_uuid, NULL);
        CONTINUE;
      END IF;
    ELSIF s.current_state = 'waiting_for_retry' THEN
      IF s.next_retry_at > clock_timestamp() + interval '50 milliseconds' THEN
        -- Not due yet (a stale early message): leave it hidden until the retry is due.
        PERFORM tasker._q_set_vt(v_queue, m.msg_id,
          clock_timestamp() + make_interval(secs => greatest(1, ceil(extract(epoch FROM s.next_retry_at - clock_timestamp())))));
        CONTINUE;
      END IF;
      PERFORM tasker._step_transition(v_step, 'waiting_for_retry', 'pending', '{"event":"retry"}');
      PERFORM tasker._step_transition(v_step, 'pending', 'enqueued', '{"event":"enqueue"}');
    ELSIF s.current_state <> 'enqueued' THEN
      -- Past this point already, or held under another message's lease: a duplicate message.
      PERFORM tasker._q_archive(v_queue, ARRAY[m.msg_id]);
      CONTINUE;
    END IF;

    UPDATE tasker.workflow_steps ws
    SET current_state = 'in_progress', in_process = true, attempts = ws.attempts + 1, last_attempted_at = now(),
        claimed_by = p_worker, lease_msg_id = m.msg_id, next_retry_at = NULL, updated_at = now()
    WHERE ws.workflow_step_uuid = v_step;
    PERFORM tasker._record_step_transition(v_step, 'enqueued', 'in_progress',
      jsonb_build_object('event', 'start', 'worker', p_worker, 'attempt', s.attempts + 1));
    v_claimed_msgs := v_claimed_msgs || m.msg_id;
    v_claimed_steps := v_claimed_steps || v_step;
  END LOOP;

  IF cardinality(v_claimed_msgs) = 0 THEN
    RETURN;
  END IF;
  RETURN QUERY
  SELECT c.msg_id, ws.task_uuid, ws.workflow_step_uuid, ws.name::text, ws.handler_callable, ws.inputs, t.context,
         ws.attempts, ws.max_attempts, ws.timeout_seconds, t.correlation_id,
         tasker.step_dependency_results(ws.workflow_step_uuid)
  FROM unnest(v_claimed_msgs, v_claimed_steps) AS c(msg_id, step_uuid)
  JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = c.step_uuid
  JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
  ORDER BY c.msg_id;
END;
$$;

-- ------------------------------------------------------------------------------------------------ batches

-- One more parameter, p_refill: false skips the read of the queue for the room the results left once their
-- children are started. A worker that was never full since it last found its queue empty has taken all
-- the visible work it was told about, and what arrives later comes with its own signal: the read would find
-- nothing (pgbench linear_worker.sql, alternating runs: about 6 % more tasks/s without it).
DROP FUNCTION tasker.complete_many_and_claim(jsonb, text, boolean, text, integer, integer, boolean);
CREATE FUNCTION tasker.complete_many_and_claim(
  p_results jsonb, p_worker text, p_inline boolean, p_namespace text, p_lease_seconds integer, p_limit integer,
  p_notify boolean DEFAULT true, p_refill boolean DEFAULT true
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
  -- The batch's successful results, as arrays in one order (the done UPDATE reads them by position).
  v_res_steps uuid[];
  v_res_tasks uuid[];
  v_res_attempts integer[];
  v_res_payloads jsonb[];
  v_res_ms integer[];
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
    WHERE t.task_uuid = ANY(ARRAY(SELECT (e ->> 'task_uuid')::uuid FROM jsonb_array_elements(p_results) AS e))
    ORDER BY t.task_uuid
    FOR UPDATE;

    SELECT array_agg(e.step_uuid ORDER BY e.step_uuid), array_agg(e.task_uuid ORDER BY e.step_uuid),
           array_agg(e.attempt ORDER BY e.step_uuid), array_agg(e.payload ORDER BY e.step_uuid),
           array_agg(e.execution_ms ORDER BY e.step_uuid)
    INTO v_res_steps, v_res_tasks, v_res_attempts, v_res_payloads, v_res_ms
    FROM jsonb_to_recordset(p_results) AS e(task_uuid uuid, step_uuid uuid, attempt integer, success boolean,
                                            payload jsonb, execution_ms integer)
    WHERE e.success;

    WITH done AS (
      UPDATE tasker.workflow_steps ws
      SET current_state = 'complete', in_process = false, processed = true, processed_at = now(),
          results = v_res_payloads[array_position(v_res_steps, ws.workflow_step_uuid)], updated_at = now()
      WHERE ws.workflow_step_uuid = ANY(v_res_steps) AND ws.current_state = c_in_progress
        AND ws.task_uuid = v_res_tasks[array_position(v_res_steps, ws.workflow_step_uuid)]
        AND ws.attempts = v_res_attempts[array_position(v_res_steps, ws.workflow_step_uuid)]
        AND ws.claimed_by IS NOT DISTINCT FROM p_worker
      RETURNING ws.workflow_step_uuid, ws.task_uuid, ws.lease_msg_id,
                v_res_attempts[array_position(v_res_steps, ws.workflow_step_uuid)] AS attempt,
                v_res_ms[array_position(v_res_steps, ws.workflow_step_uuid)] AS execution_ms
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
        -- Each task's state read by a subquery on its primary key: with "= ANY" the planner could read
        -- tasks_active_idx whole instead (see the head of this file).
        SELECT z.task, z.state, z.total, z.done, z.failed, z.in_flight, z.retrying
        FROM (
          SELECT u.task, (SELECT t.current_state FROM tasker.tasks t WHERE t.task_uuid = u.task) AS state,
                 s.total, s.done, s.failed, s.in_flight, s.retrying
          FROM (SELECT DISTINCT d FROM unnest(v_done_tasks) AS d) AS u(task)
          CROSS JOIN LATERAL (
            SELECT count(*) AS total,
                   count(*) FILTER (WHERE ws.current_state IN ('complete', 'resolved_manually')) AS done,
                   count(*) FILTER (WHERE ws.current_state = 'error') AS failed,
                   count(*) FILTER (WHERE ws.current_state IN ('enqueued', 'in_progress', 'enqueued_for_orchestration',
                                                               'enqueued_as_error_for_orchestration')) AS in_flight,
                   count(*) FILTER (WHERE ws.current_state = 'waiting_for_retry') AS retrying
            FROM tasker.workflow_steps ws WHERE ws.task_uuid = u.task
          ) s
        ) z
        WHERE z.state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually', 'blocked_by_failures')
        ORDER BY z.task
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
  IF v_room > 0 AND p_refill THEN
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

-- ------------------------------------------------------------------------------------------------ orchestration

CREATE OR REPLACE FUNCTION tasker.process_step_results(p_limit integer, p_vt integer DEFAULT 30, p_processor uuid DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_msgs bigint[];
  v_steps uuid[];
  v_queues text[] := '{}';
  v_ids bigint[] := '{}';
  a record;
  i integer;
  v_q text;
BEGIN
  SELECT array_agg(r.msg_id ORDER BY r.msg_id), array_agg((r.message ->> 'step_uuid')::uuid ORDER BY r.msg_id)
  INTO v_msgs, v_steps
  FROM tasker._q_read('orchestration_step_results', p_vt, p_limit) r;
  IF v_msgs IS NULL THEN
    RETURN 0;
  END IF;
  -- Lock every task of the batch in one order (task_uuid): two orchestrators holding batches that share
  -- tasks in different orders would otherwise deadlock. Each step's task is found by a subquery on the step's
  -- primary key: joined, the planner could walk every task and its steps instead (see the head of this file).
  PERFORM 1 FROM tasker.tasks t
  WHERE t.task_uuid = ANY(ARRAY(SELECT (SELECT ws.task_uuid FROM tasker.workflow_steps ws WHERE ws.workflow_step_uuid = u.id)
                                FROM unnest(v_steps) AS u(id)))
  ORDER BY t.task_uuid
  FOR UPDATE;
  FOR i IN 1 .. cardinality(v_msgs) LOOP
    IF v_steps[i] IS NOT NULL THEN
      SELECT * INTO a FROM tasker._apply_step_result_quiet(v_steps[i], p_processor);
      IF coalesce(cardinality(a.msg_ids), 0) > 0 THEN
        v_queues := v_queues || array_fill(a.queue, ARRAY[cardinality(a.msg_ids)]);
        v_ids := v_ids || a.msg_ids;
      END IF;
    END IF;
  END LOOP;
  PERFORM tasker._q_archive('orchestration_step_results', v_msgs);
  FOR v_q IN SELECT DISTINCT u.name FROM unnest(v_queues) AS u(name) LOOP
    PERFORM tasker._notify_sent(v_q, ARRAY(SELECT u.id FROM unnest(v_queues, v_ids) AS u(name, id) WHERE u.name = v_q));
  END LOOP;
  RETURN cardinality(v_msgs);
END;
$$;

-- ------------------------------------------------------------------------------------------------ readiness

CREATE OR REPLACE FUNCTION tasker.step_dependency_results(p_step uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_frontier uuid[] := ARRAY[p_step];
  v_all uuid[] := '{}';
  v_next uuid[];
  v_depth integer := 0;
  v_result jsonb;
BEGIN
  LOOP
    -- One lookup by to_step_uuid per step of the frontier (a subquery per element), not one "= ANY" over
    -- them all: see the head of this file.
    SELECT array_agg(DISTINCT p.id) INTO v_next
    FROM unnest(v_frontier) AS f(id),
         unnest(ARRAY(SELECT e.from_step_uuid FROM tasker.workflow_step_edges e WHERE e.to_step_uuid = f.id)) AS p(id)
    WHERE NOT (p.id = ANY(v_all));
    EXIT WHEN v_next IS NULL;
    v_all := v_all || v_next;
    v_frontier := v_next;
    v_depth := v_depth + 1;
    EXIT WHEN v_depth >= 100;
  END LOOP;
  IF cardinality(v_all) = 0 THEN
    RETURN '{}';
  END IF;
  SELECT coalesce(jsonb_object_agg(s.name, s.results), '{}') INTO v_result
  FROM tasker.workflow_steps s
  WHERE s.workflow_step_uuid = ANY(v_all) AND s.current_state IN ('complete', 'resolved_manually');
  RETURN v_result;
END;
$$;

-- ------------------------------------------------------------------------------------------------ edges

-- A step's parents (step_dependency_results, the readiness checks) are looked up by to_step_uuid. With
-- statistics that call the table tiny and all-visible, the planner preferred an index-only scan of the whole
-- (from_step_uuid, to_step_uuid, name) key, filtering on its second column, to the plain index on
-- to_step_uuid: 124 blocks per lookup on 4,500 edges. With from_step_uuid included, the lookup by
-- to_step_uuid is an index-only scan too, and one with a condition always costs less than a whole one.
-- The rebuild blocks writes to the edges (task creation) while it runs: about 0.5 s per million edges here.
DROP INDEX tasker.workflow_step_edges_to_idx;
CREATE INDEX workflow_step_edges_to_idx ON tasker.workflow_step_edges (to_step_uuid) INCLUDE (from_step_uuid);

-- The settings 0006 and 0009 gave these entry points (see there), which CREATE OR REPLACE (and the new
-- signature) dropped.
ALTER FUNCTION tasker.claim_steps(text, text, integer, integer, boolean) SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET jit = off;
ALTER FUNCTION tasker.process_step_results(integer, integer, uuid) SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET jit = off;
ALTER FUNCTION tasker.complete_many_and_claim(jsonb, text, boolean, text, integer, integer, boolean, boolean)
  SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
  SET jit = off;
