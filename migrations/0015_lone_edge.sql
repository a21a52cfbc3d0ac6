-- A chain edge (one result completing a step whose child starts in the same call) runs fewer statements.
--
-- Counted with bench/sql/countInstructions.sh (callgrind on a PostgreSQL backend), most of an edge's cost is
-- per statement: each one the engine's functions run starts an executor, opens its relations and their indexes,
-- and allocates its plan state again. Two statements per edge did no work that the edge needed:
--
-- - _complete_step evaluated the task after every successful result (_evaluate_task: the task's state, then a
--   count of its steps by state). When the result started or enqueued a child of a task in steps_in_process,
--   the answer is known: a step is in flight, so the task is neither finished nor waiting for a retry, and no
--   step of it has failed (a failure takes the task out of steps_in_process when it is applied, under the same
--   task lock that every completion takes first). Nothing is evaluated then; every other case still is.
-- - _start_ready_children read the task's namespace and correlation id, which _complete_step had just read with
--   the task's lock. It takes them as arguments now (optional: without them it reads them as before).
--
-- The functions are rewritten in place from their current definitions (as 0013 does), so everything else in them
-- stays as 0011 and 0013 left it; each rewrite must match the expected number of times, or the migration fails.
CREATE FUNCTION pg_temp.rewrite(p_def text, p_old text, p_new text, p_expected integer) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_found integer := (length(p_def) - length(replace(p_def, p_old, ''))) / length(p_old);
BEGIN
  IF v_found <> p_expected THEN
    RAISE EXCEPTION 'migration 0015: found % copies of the text to rewrite, expected %: %', v_found, p_expected, p_old;
  END IF;
  RETURN replace(p_def, p_old, p_new);
END;
$$;

DO $$
DECLARE
  v_old_fn regprocedure := 'tasker._start_ready_children(uuid, uuid, text, integer, integer)'::regprocedure;
  v_def text := pg_get_functiondef(v_old_fn);
BEGIN
  v_def := pg_temp.rewrite(v_def, 'p_limit integer, OUT queue text',
    'p_limit integer, p_namespace text DEFAULT NULL::text, p_correlation uuid DEFAULT NULL::uuid, OUT queue text', 1);
  v_def := pg_temp.rewrite(v_def, E'  v_task record;\n',
    E'  v_namespace text := p_namespace;\n  v_correlation uuid := p_correlation;\n', 1);
  v_def := pg_temp.rewrite(v_def,
    E'  SELECT t.namespace_name, t.correlation_id INTO v_task FROM tasker.tasks t WHERE t.task_uuid = p_task;\n',
    E'  IF v_namespace IS NULL THEN\n' ||
    E'    SELECT t.namespace_name, t.correlation_id INTO v_namespace, v_correlation FROM tasker.tasks t WHERE t.task_uuid = p_task;\n' ||
    E'  END IF;\n', 1);
  v_def := pg_temp.rewrite(v_def, 'v_task.namespace_name', 'v_namespace', 1);
  v_def := pg_temp.rewrite(v_def, 'v_task.correlation_id', 'v_correlation', 1);
  -- A new argument list is a new function: the old one goes, and callers that pass five arguments get the new
  -- one's defaults.
  EXECUTE format('DROP FUNCTION %s', v_old_fn);
  EXECUTE v_def;
END;
$$;

DO $$
DECLARE
  v_fn regprocedure :=
    'tasker._complete_step(uuid, uuid, integer, boolean, jsonb, text, integer, boolean, integer, integer)'::regprocedure;
  v_def text := pg_get_functiondef(v_fn);
BEGIN
  v_def := pg_temp.rewrite(v_def,
    'tasker._start_ready_children(p_task, p_step, p_worker, p_lease_seconds, p_claim_limit);',
    'tasker._start_ready_children(p_task, p_step, p_worker, p_lease_seconds, p_claim_limit, v_namespace, v_correlation);',
    1);
  v_def := pg_temp.rewrite(v_def,
    E'    PERFORM tasker._evaluate_task(p_task, NULL);\n    outcome := ''complete'';\n',
    E'    -- A child started or enqueued in a task in steps_in_process: still running, nothing to evaluate.\n' ||
    E'    IF NOT (v_task_state = ''steps_in_process''\n' ||
    E'            AND coalesce(cardinality(claimed_steps), 0) + coalesce(cardinality(msg_ids), 0) > 0) THEN\n' ||
    E'      PERFORM tasker._evaluate_task(p_task, NULL);\n' ||
    E'    END IF;\n' ||
    E'    outcome := ''complete'';\n', 1);
  EXECUTE v_def;
END;
$$;

DO $$
DECLARE
  v_fn regprocedure :=
    'tasker.complete_many_and_claim(jsonb, text, boolean, text, integer, integer, boolean, boolean)'::regprocedure;
  v_def text := pg_get_functiondef(v_fn);
BEGIN
  v_def := pg_temp.rewrite(v_def,
    E'  FOR v_q IN SELECT DISTINCT u.name FROM unnest(v_queues) AS u(name) LOOP\n',
    E'  IF cardinality(v_queues) > 0 THEN\n  FOR v_q IN SELECT DISTINCT u.name FROM unnest(v_queues) AS u(name) LOOP\n', 1);
  v_def := pg_temp.rewrite(v_def, E'  END LOOP;\n\n  msg_id := NULL;', E'  END LOOP;\n  END IF;\n\n  msg_id := NULL;', 1);
  EXECUTE v_def;
END;
$$;
