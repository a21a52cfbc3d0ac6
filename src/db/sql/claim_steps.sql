-- Claiming steps: a worker takes steps of its namespace, and gets each handler's whole context in the same call.
--
-- A step waits as a message of three ids (_step_message) in worker_<namespace>_queue. Reading a message hides it for
-- the lease time: that visibility window is the claim's lease, which the worker's heartbeat extends. A claim moves
-- the step enqueued -> in_progress by compare-and-set, counts the attempt (attempts + 1, which is also the fencing
-- token its result must present), and records the holder (claimed_by) and the lease message (lease_msg_id). The
-- handler's context, the results of the step's ancestors included (step_dependency_results), comes back with it.
--
-- Two ways in: tasker.claim_steps reads the queue (src/db/queries/claimSteps.ts, and complete_many_and_claim for
-- the room a batch of results leaves); _start_ready_children starts the children a result has just made ready for
-- the worker that completed it, in that same commit, without a queue read. Next, the step's result:
-- complete_steps.sql.
--
-- Plans independent of statistics (test/integration/engine/planStability.test.ts: a call reads about as many
-- blocks on grown tables as on small ones). A generic plan made on small tables can turn a join of a few ids to a
-- big table into a scan of a whole index, and keeps it for the session. So: a batch is matched with
-- "= ANY(array)" on the primary key and each row's values looked up by array_position, leaving no join to plan;
-- where even "= ANY" can lose to a whole-index scan, there is one lookup per element by a subquery on a single key;
-- a most_recent flag is flipped through its own step's key.
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

-- Claims up to p_limit steps of p_namespace for p_worker, and returns one row per claimed step, in message order:
-- the step, its handler and inputs, the task's context, the attempt (the fencing token), and its ancestors' results.
--
-- Messages whose step is enqueued, nearly all of them, are claimed together: one message per step (the oldest),
-- one compare-and-set UPDATE for all of them (a step of a finished task is left out), one flip and one insert of
-- their transitions. The rest take the slow path, one message at a time, with the step's row locked FOR UPDATE:
--   * a step that is gone, or a step of a finished task (complete, error, cancelled, resolved_manually) that is not
--     in progress: the message is archived and skipped (no step of a finished task is started);
--   * a step in_progress under this very message: its holder's lease expired (the worker died) and that run counts as
--     a failed attempt (lease_expired). With attempts left, the step goes waiting_for_retry -> pending -> enqueued
--     and is claimed again here, the same message becoming the new lease; without, it goes to error, the message is
--     archived, and the task is locked and evaluated;
--   * a step waiting for a retry: claimed (-> pending -> enqueued -> in_progress) when due, 50 ms early counting as
--     due; otherwise its message is hidden again until then, in whole seconds, at least one;
--   * anything else (a step past this point, or held under another message's lease): a duplicate message, archived.
--
-- Locking: the fast path locks only the step rows it updates; a step that changed meanwhile fails the
-- compare-and-set. The slow path locks the step row first and, when an expired lease fails the step, then its task
-- row: the one place where a step's lock comes before its task's (apply_step_action reads steps without locking
-- them to stay out of this order).
--
-- The claim commits with synchronous_commit off (p_async_commit): if PostgreSQL itself crashes before flushing it,
-- the claim is lost and the message is delivered again, and handlers are at-least-once anyway. Task creation,
-- results and their application stay durable: complete_many_and_claim passes false, its commit carrying results.
-- RETURN QUERY wants the declared result types exactly, so max_attempts (a domain over integer) is cast back.
CREATE OR REPLACE FUNCTION tasker.claim_steps(p_namespace text, p_worker text, p_lease_seconds integer,
                                              p_limit integer, p_async_commit boolean DEFAULT true)
RETURNS TABLE (msg_id bigint, task_uuid uuid, step_uuid uuid, step_name text, handler_callable text, inputs jsonb,
               context jsonb, attempt integer, max_attempts integer, timeout_seconds integer, correlation_id uuid,
               dependency_results jsonb)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
AS $$
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
    WHERE tr.workflow_step_transition_uuid = ANY(ARRAY(
      SELECT (SELECT cur.workflow_step_transition_uuid FROM tasker.workflow_step_transitions cur
              WHERE cur.workflow_step_uuid = fl.workflow_step_uuid AND cur.most_recent)
      FROM claimed fl))
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
         ws.attempts, ws.max_attempts::integer, ws.timeout_seconds, t.correlation_id,
         tasker.step_dependency_results(ws.workflow_step_uuid)
  FROM unnest(v_claimed_msgs, v_claimed_steps) AS c(msg_id, step_uuid)
  JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = c.step_uuid
  JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
  ORDER BY c.msg_id;
END;
$$;

-- In a worker's completing commit, starts the children of p_parent that are ready now, up to p_limit of them, for
-- p_worker, instead of enqueueing them to be read back from the queue: pending -> enqueued -> in_progress (both
-- transitions written, as a claim writes them), attempts + 1, the holder recorded, and their messages sent already
-- read (read_ct 1, hidden for p_lease_seconds), so each message is the step's lease exactly as after claim_steps.
-- Returned in claimed_msgs / claimed_steps. Ready children beyond p_limit are enqueued as usual
-- (_enqueue_ready_steps); their queue and message ids come back for the caller's wake-up signal. With
-- p_limit < 1 (no room left, or a task of another namespace than the worker claims for) all of them are enqueued.
--
-- So a worker carries on with the tasks it is running before it takes older work from the queue (depth first):
-- started tasks finish sooner, and a chain costs one queue insert per step instead of an insert, a read and a
-- second lock of the step.
--
-- The caller holds the task row lock. p_namespace and p_correlation are the task's, passed by a caller that has
-- just read them under that lock (_complete_step); without them they are read here (complete_many_and_claim).
-- The children are found from the parent's edges with one subquery per child on a single key (its state, the count
-- of its unfinished parents): a join of the children to workflow_steps can be planned as a read of the steps'
-- whole primary key on every edge of a chain (651 blocks for one step on a database of 4,600 steps).
CREATE OR REPLACE FUNCTION tasker._start_ready_children(p_task uuid, p_parent uuid, p_worker text,
                                                        p_lease_seconds integer, p_limit integer,
                                                        p_namespace text DEFAULT NULL, p_correlation uuid DEFAULT NULL,
                                                        OUT queue text, OUT msg_ids bigint[],
                                                        OUT claimed_msgs bigint[], OUT claimed_steps uuid[])
LANGUAGE plpgsql
AS $$
DECLARE
  v_namespace text := p_namespace;
  v_correlation uuid := p_correlation;
  v_ready uuid[];
  v_take uuid[];
  v_ids bigint[];
  r record;
BEGIN
  claimed_msgs := '{}';
  claimed_steps := '{}';
  IF p_limit < 1 THEN
    SELECT * INTO r FROM tasker._enqueue_ready_steps(p_task, p_parent);
    queue := r.queue;
    msg_ids := r.msg_ids;
    RETURN;
  END IF;
  IF v_namespace IS NULL THEN
    SELECT t.namespace_name, t.correlation_id INTO v_namespace, v_correlation FROM tasker.tasks t WHERE t.task_uuid = p_task;
  END IF;
  queue := 'worker_' || v_namespace || '_queue';
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
    ARRAY(SELECT tasker._step_message(p_task, u.id, v_correlation) FROM unnest(v_take) WITH ORDINALITY AS u(id, n) ORDER BY u.n),
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
    WHERE tr.workflow_step_transition_uuid = ANY(ARRAY(
      SELECT (SELECT cur.workflow_step_transition_uuid FROM tasker.workflow_step_transitions cur
              WHERE cur.workflow_step_uuid = fl.workflow_step_uuid AND cur.most_recent)
      FROM moved fl))
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
    SELECT * INTO r FROM tasker._enqueue_ready_steps(p_task, p_parent);
    msg_ids := r.msg_ids;
  END IF;
END;
$$;

-- The results of every ancestor of a step (its parents, their parents, ...), as {step name: results}: what a
-- handler sees as its dependency results. Only complete and resolved_manually ancestors contribute; step names are
-- unique within a task. complete_manually (an operator's action) sets results, so dependents see it exactly like a
-- handler's result.
-- Every ancestor, however deep: the walk ends because each level adds only steps not seen before, and a task's steps
-- are bounded at creation. The graph is walked one level per query through workflow_step_edges_to_idx: it includes
-- from_step_uuid, so each lookup of a step's parents is an index-only scan. Not a recursive CTE, which is planned as
-- hash joins over whole tables when statistics are missing (~1 ms on a few thousand steps). STABLE: it only reads.
-- Callers: claim_steps, complete_many_and_claim (for the steps they return).
CREATE OR REPLACE FUNCTION tasker.step_dependency_results(p_step uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
  v_frontier uuid[] := ARRAY[p_step];
  v_all uuid[] := '{}';
  v_next uuid[];
  v_result jsonb;
BEGIN
  LOOP
    -- One lookup by to_step_uuid per step of the frontier (a subquery per element), not one "= ANY" over
    -- them all: a generic plan can run that as a filtered scan of the edges' whole unique key.
    SELECT array_agg(DISTINCT p.id) INTO v_next
    FROM unnest(v_frontier) AS f(id),
         unnest(ARRAY(SELECT e.from_step_uuid FROM tasker.workflow_step_edges e WHERE e.to_step_uuid = f.id)) AS p(id)
    WHERE NOT (p.id = ANY(v_all));
    EXIT WHEN v_next IS NULL;
    v_all := v_all || v_next;
    v_frontier := v_next;
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
