-- Applying a stored step result: the orchestration decision for one step.
--
-- A stored result leaves its step in enqueued_for_orchestration (a success) or enqueued_as_error_for_orchestration
-- (a failure). Applying it moves the step on by compare-and-set, exactly once (a duplicate message or a late result
-- finds the step in another state: 'noop'):
--   * a success -> complete, and the steps it made ready enqueued;
--   * a failure worth retrying -> waiting_for_retry, with a delayed message that becomes visible when the backoff is
--     over (claim_steps takes it then);
--   * any other failure -> error, and the task fails fast;
-- then the task is evaluated (_evaluate_task, task_finalization.sql).
-- This runs under the task row lock, which serializes result application per task: two parents of a join finishing
-- at once cannot both miss that the join is ready, and two orchestrators cannot both finalize the task. Where it
-- runs: in the worker's commit for an inline failure (_complete_step; an inline success takes its own statements
-- there), or in the orchestrator's (process_step_results) when workers do not apply results.
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

-- The delay before a failed step's next attempt, in whole milliseconds: exponential base * 2^(attempt - 1) (the
-- exponent capped at 40), linear base * attempt, fixed base; capped at p_max_ms; then up to 10 % shorter by a
-- random jitter, applied after the cap so that retries that all hit the cap still spread out. A handler's
-- retry-after (p_retry_after_ms >= 0) wins, capped, without jitter. An unknown strategy is an error (22023), never
-- a silent default: the column is a tasker.backoff_strategy domain, so only a direct caller can pass one.
-- This is the only implementation of the backoff rule; test/integration/engine/backoffRule.test.ts pins it down.
-- VOLATILE for random(). Caller: _apply_step_result.
CREATE OR REPLACE FUNCTION tasker.backoff_delay_ms(p_strategy text, p_base_ms integer, p_max_ms integer,
                                                   p_attempt integer, p_retry_after_ms integer DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
  v_delay double precision;
BEGIN
  IF p_strategy IS NULL OR p_strategy NOT IN ('exponential', 'linear', 'fixed') THEN
    RAISE EXCEPTION 'tasker.backoff_delay_ms: unknown backoff strategy %; use exponential, linear or fixed',
      coalesce(quote_literal(p_strategy), 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_retry_after_ms IS NOT NULL AND p_retry_after_ms >= 0 THEN
    RETURN least(p_retry_after_ms, p_max_ms);
  END IF;
  v_delay := CASE p_strategy
    WHEN 'exponential' THEN p_base_ms::double precision * power(2, least(greatest(p_attempt, 1) - 1, 40))
    WHEN 'linear' THEN p_base_ms::double precision * greatest(p_attempt, 1)
    ELSE p_base_ms::double precision
  END;
  v_delay := least(v_delay, p_max_ms::double precision);
  RETURN floor(v_delay * (0.9 + random() * 0.1))::integer;
END;
$$;

-- Applies the stored result of p_step exactly once. outcome: 'complete', 'retry', 'error', or 'noop' when the step
-- holds no result to apply (already applied, a duplicate message, a late result, a step gone or cancelled).
-- A failure is retried when the step is retryable, the handler did not mark the error permanent
-- (last_error.retryable false), attempts < max_attempts and the task is live (the step side of isRetryEligible in
-- src/domain/retry/backoff.ts, which the readiness view shares; test/integration/engine/backoffRule.test.ts). A
-- task that was cancelled or failed meanwhile keeps a success but starts nothing new.
-- The steps a success makes ready are enqueued without a wake-up, their queue and message ids returned so
-- that the caller signals once per batch, or not at all for the steps it claims itself. A retry's delayed message,
-- though, is signalled here with its ready_at, so listeners set a timer for it instead of waiting for a poll.
-- The caller holds the task row lock. Callers: process_step_results, _complete_step (inline
-- failures).
CREATE OR REPLACE FUNCTION tasker._apply_step_result(p_step uuid, p_processor uuid, OUT outcome text,
                                                     OUT queue text, OUT msg_ids bigint[])
LANGUAGE plpgsql
AS $$
DECLARE
  s record;
  v_delay integer;
  v_due timestamptz;
  v_msg bigint;
  r record;
BEGIN
  SELECT ws.workflow_step_uuid, ws.task_uuid, ws.current_state, ws.retryable, ws.last_error, ws.attempts,
         ws.max_attempts, ws.backoff_strategy, ws.backoff_base_ms, ws.max_backoff_ms,
         t.current_state AS task_state, t.namespace_name, t.correlation_id
  INTO s
  FROM tasker.workflow_steps ws JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
  WHERE ws.workflow_step_uuid = p_step;
  IF NOT FOUND THEN
    outcome := 'noop';
    RETURN;
  END IF;
  queue := 'worker_' || s.namespace_name || '_queue';

  IF s.current_state = 'enqueued_for_orchestration' THEN
    PERFORM tasker._step_transition(p_step, 'enqueued_for_orchestration', 'complete', '{"event":"complete"}');
    -- A task that was cancelled or failed meanwhile keeps the result but starts nothing new.
    IF s.task_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN
      SELECT * INTO r FROM tasker._enqueue_ready_steps(s.task_uuid, p_step);
      msg_ids := r.msg_ids;
    END IF;
    PERFORM tasker._evaluate_task(s.task_uuid, p_processor);
    outcome := 'complete';
    RETURN;
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
      v_msg := (tasker._q_send(queue, ARRAY[tasker._step_message(s.task_uuid, p_step, s.correlation_id)], v_due))[1];
      PERFORM tasker._notify_message_ready(queue, jsonb_build_object(
        'event_type', 'message_ready', 'msg_id', v_msg, 'delay_seconds', ceil(v_delay / 1000.0), 'ready_at', v_due));
      PERFORM tasker._evaluate_task(s.task_uuid, p_processor);
      outcome := 'retry';
      RETURN;
    END IF;
    PERFORM tasker._step_transition(p_step, 'enqueued_as_error_for_orchestration', 'error',
      jsonb_build_object('event', 'fail', 'attempts', s.attempts, 'max_attempts', s.max_attempts));
    PERFORM tasker._evaluate_task(s.task_uuid, p_processor);
    outcome := 'error';
    RETURN;
  END IF;
  outcome := 'noop';
END;
$$;

-- The orchestrator's result processor (processStepResults in src/db/queries/orchestrationQueues.ts, used when
-- workers do not apply results inline): reads up to p_limit messages of orchestration_step_results (hidden for p_vt
-- seconds while it works), applies each result exactly once, archives the batch in one statement and signals each
-- worker queue once for the steps the batch enqueued, all in one commit. A message without a step_uuid, or whose
-- step is gone, is archived unapplied. Returns how many messages it handled.
-- Every task of the batch is locked up front, in task_uuid order, so two orchestrators whose batches share tasks
-- cannot deadlock (test/integration/engine/resultBatchLocking.test.ts).
CREATE OR REPLACE FUNCTION tasker.process_step_results(p_limit integer, p_vt integer DEFAULT 30,
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
  -- primary key: joined, a generic plan can walk every task and its steps to lock the batch's few.
  PERFORM 1 FROM tasker.tasks t
  WHERE t.task_uuid = ANY(ARRAY(SELECT (SELECT ws.task_uuid FROM tasker.workflow_steps ws WHERE ws.workflow_step_uuid = u.id)
                                FROM unnest(v_steps) AS u(id)))
  ORDER BY t.task_uuid
  FOR UPDATE;
  FOR i IN 1 .. cardinality(v_msgs) LOOP
    IF v_steps[i] IS NOT NULL THEN
      SELECT * INTO a FROM tasker._apply_step_result(v_steps[i], p_processor);
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
