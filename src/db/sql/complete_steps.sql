-- A worker's results: stored, applied in the same commit (by default), and the worker's next steps claimed.
--
-- Caller: completeManyAndClaim in src/db/queries/completeStep.ts, from the worker (src/worker/worker.ts). The worker
-- stores results in batches: a result that finishes alone goes at once; results that finish while earlier batches
-- are on their way go together in the next one, so one commit and one queue read serve all of them. The one-result
-- work is _complete_step (complete_one_step.sql).
--
-- A step's way through here: in_progress (claimed, claim_steps.sql) -> its result stored if its worker still holds
-- the claim -> with results applied inline (the worker's default), complete, its ready children started for the
-- same worker or enqueued, and its task finished when that was its last step; otherwise
-- enqueued_for_orchestration / enqueued_as_error_for_orchestration, for the orchestrator (step_results.sql).
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

-- Stores a batch of one worker's results and, in the same commit, claims its next steps.
-- p_results: [{"task_uuid", "step_uuid", "attempt", "success", "payload", "execution_ms"}, ...]. A result is stored
-- only if p_worker still holds that claim (the step in_progress, attempt and holder matching: the fence of
-- _complete_step); otherwise it is 'stale' and changes nothing. With p_inline (the worker's default) each result is
-- also applied here; without, it is signalled on orchestration_step_results for process_step_results. Then the
-- children the results made ready are started for p_worker up to p_limit (_start_ready_children), and with
-- p_refill the room left is claimed from the queue (claim_steps, committing durably since this commit stores
-- results). The worker passes p_refill false when it has taken all the visible work it was told about: the read
-- would find nothing (pgbench, linear tasks: about 6 % more tasks/s without it).
--
-- Rows: one per step started or claimed (the columns of claim_steps), then one last row without a step, carrying
-- outcomes ({step_uuid: 'complete' | 'retry' | 'error' | 'stored' | 'stale' | 'noop'}) and notify ({queue:
-- [msg_id, ...]}: the wake-up signals left to send with tasker.signal_sent once this has committed; empty when
-- p_notify sent them in this commit). Messages this call claimed itself are signalled to nobody. The worker defers
-- its signals when other queries of its process are running, because a commit that NOTIFYs holds a database-wide
-- lock through its flush.
--
-- Two paths, one implementation of each rule:
--   * as a set (p_inline and more than one result), every successful result: one compare-and-set UPDATE
--     in_progress -> complete for all of them, their two transitions (-> enqueued_for_orchestration -> complete)
--     and their audit rows in one write each, their leases archived once per queue, and every task they finished
--     moved steps_in_process -> evaluating_results -> complete in one statement. A batch then costs the same
--     twenty-odd statements whatever its size. Off that common path the per-item functions still do the work:
--     completed steps that have children go to _start_ready_children one by one (in task order, so the worker's
--     room is handed out in that order), and a task in any state but the plain "still running" or "just finished"
--     goes to _evaluate_task (the counts here are its counts, and the two plain cases are decided as it decides
--     them);
--   * one by one (_complete_step): failures, a lone result (a chain advances one step at a time, and the set
--     statements, which pay for the batch they expect, make a linear task about 10 % slower), and every result
--     without p_inline.
-- Both write the same rows: test/integration/engine/setBasedBatches.test.ts compares them.
--
-- Locking: every task of the batch is locked before any of its steps, in task_uuid order (the set path up front,
-- the one-by-one path in its task_uuid order), so two batches that share tasks cannot deadlock.
--
-- Plans independent of statistics (test/integration/engine/planStability.test.ts): the batch is matched with
-- "= ANY(array)" on the primary key and each row's values looked up by array_position, so no join is left to plan;
-- each task's state is read by a subquery on its key; every most_recent flag is flipped through its own step's or
-- task's key; in_progress and steps_in_process are compared through constants, so that a generic plan cannot prove
-- the partial indexes workflow_steps_in_progress_idx and tasks_active_idx usable and scan them whole.
CREATE OR REPLACE FUNCTION tasker.complete_many_and_claim(p_results jsonb, p_worker text, p_inline boolean,
                                                          p_namespace text, p_lease_seconds integer, p_limit integer,
                                                          p_notify boolean DEFAULT true, p_refill boolean DEFAULT true)
RETURNS TABLE (msg_id bigint, task_uuid uuid, step_uuid uuid, step_name text, handler_callable text, inputs jsonb,
               context jsonb, attempt integer, max_attempts integer, timeout_seconds integer, correlation_id uuid,
               dependency_results jsonb, outcomes jsonb, notify jsonb)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
AS $$
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
  -- literals it can scan those indexes whole, and without vacuum they keep an entry for every step that was
  -- ever in progress and every task that ever ran: the cost of a batch would grow with the table.
  c_in_progress CONSTANT text := 'in_progress';
  c_steps_in_process CONSTANT text := 'steps_in_process';
  -- A lone result (a chain, one step at a time) costs less through _complete_step: measured with pgbench,
  -- a linear task runs about 10 % slower through the set statements, which pay for the batch they expect.
  v_as_set boolean := p_inline AND jsonb_array_length(p_results) > 1;
BEGIN
  IF v_as_set THEN
    -- Every task of the batch locked up front, in task_uuid order, before any step: the engine's locking order.
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
      WHERE tr.workflow_step_transition_uuid = ANY(ARRAY(
        SELECT (SELECT cur.workflow_step_transition_uuid FROM tasker.workflow_step_transitions cur
                WHERE cur.workflow_step_uuid = fl.workflow_step_uuid AND cur.most_recent)
        FROM done fl))
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
        -- Each task's state read by a subquery on its primary key: with "= ANY" a generic plan can read
        -- tasks_active_idx whole instead, and count the steps of every live task, not only the batch's.
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
          WHERE tt.task_transition_uuid = ANY(ARRAY(
            SELECT (SELECT cur.task_transition_uuid FROM tasker.task_transitions cur
                    WHERE cur.task_uuid = fl.task_uuid AND cur.most_recent)
            FROM fin fl))
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
  IF cardinality(v_queues) > 0 THEN
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
  END IF;

  msg_id := NULL; task_uuid := NULL; step_uuid := NULL; step_name := NULL; handler_callable := NULL; inputs := NULL;
  context := NULL; attempt := NULL; max_attempts := NULL; timeout_seconds := NULL; correlation_id := NULL;
  dependency_results := NULL;
  outcomes := v_outcomes;
  notify := v_notify;
  RETURN NEXT;
END;
$$;
