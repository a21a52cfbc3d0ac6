-- A transition's most_recent flag is flipped through each step's (or task's) own key, never through a scan of
-- every current transition.
--
-- Five statements flip the flags of a set of steps or tasks (the children just started or enqueued, the steps
-- just claimed, a batch of results and the tasks it finished) by joining the set to the transitions:
-- "WHERE tr.workflow_step_uuid IN (SELECT ...) AND tr.most_recent", or "FROM done WHERE ...". For a generic
-- plan made while the tables were small, reading every current transition once (a scan of the whole partial
-- index workflow_step_transitions_most_recent_idx, or of the whole (workflow_step_uuid, sort_key) index) and
-- joining by a filter cost about as much as one lookup per step, and either could win: which one did turned on
-- a few rows of difference in the statistics. Found with auto_explain in
-- test/integration/engine/planStability.test.ts, which failed about one run in three under load: the
-- orchestrator enqueueing one child read all 16,036 current transitions (442 blocks, and 9,466 through the
-- other index) on 4,000 tasks.
--
-- Now each statement names the rows it flips by primary key, "= ANY(ARRAY(...))", and finds each by a subquery
-- on one step's (or task's) key: no join is left to plan, and a lookup with its key as the condition always
-- costs less than a scan of the same index without it. (0011's rule, applied to the flips.) The functions are
-- rewritten in place from their current definitions, so they, and the settings of the entry points among
-- them, stay as 0011 left them but for these statements; each rewrite must match exactly once, or the
-- migration fails.
DO $$
DECLARE
  r record;
  v_def text;
  v_found integer;
BEGIN
  FOR r IN
    SELECT x.fn::regprocedure AS fn, x.old, x.new
    FROM (VALUES
      ('tasker._enqueue_ready_steps_quiet(uuid, uuid)',
       E'WHERE tr.workflow_step_uuid IN (SELECT moved.workflow_step_uuid FROM moved) AND tr.most_recent\n',
       E'WHERE tr.workflow_step_transition_uuid = ANY(ARRAY(\n      SELECT (SELECT cur.workflow_step_transition_uuid FROM tasker.workflow_step_transitions cur\n              WHERE cur.workflow_step_uuid = fl.workflow_step_uuid AND cur.most_recent)\n      FROM moved fl))\n'),
      ('tasker._start_ready_children(uuid, uuid, text, integer, integer)',
       E'WHERE tr.workflow_step_uuid IN (SELECT moved.workflow_step_uuid FROM moved) AND tr.most_recent\n',
       E'WHERE tr.workflow_step_transition_uuid = ANY(ARRAY(\n      SELECT (SELECT cur.workflow_step_transition_uuid FROM tasker.workflow_step_transitions cur\n              WHERE cur.workflow_step_uuid = fl.workflow_step_uuid AND cur.most_recent)\n      FROM moved fl))\n'),
      ('tasker.claim_steps(text, text, integer, integer, boolean)',
       E'WHERE tr.workflow_step_uuid IN (SELECT claimed.workflow_step_uuid FROM claimed) AND tr.most_recent\n',
       E'WHERE tr.workflow_step_transition_uuid = ANY(ARRAY(\n      SELECT (SELECT cur.workflow_step_transition_uuid FROM tasker.workflow_step_transitions cur\n              WHERE cur.workflow_step_uuid = fl.workflow_step_uuid AND cur.most_recent)\n      FROM claimed fl))\n'),
      ('tasker.complete_many_and_claim(jsonb, text, boolean, text, integer, integer, boolean, boolean)',
       E'FROM done\n      WHERE tr.workflow_step_uuid = done.workflow_step_uuid AND tr.most_recent\n',
       E'WHERE tr.workflow_step_transition_uuid = ANY(ARRAY(\n        SELECT (SELECT cur.workflow_step_transition_uuid FROM tasker.workflow_step_transitions cur\n                WHERE cur.workflow_step_uuid = fl.workflow_step_uuid AND cur.most_recent)\n        FROM done fl))\n'),
      ('tasker.complete_many_and_claim(jsonb, text, boolean, text, integer, integer, boolean, boolean)',
       E'FROM fin\n          WHERE tt.task_uuid = fin.task_uuid AND tt.most_recent\n',
       E'WHERE tt.task_transition_uuid = ANY(ARRAY(\n            SELECT (SELECT cur.task_transition_uuid FROM tasker.task_transitions cur\n                    WHERE cur.task_uuid = fl.task_uuid AND cur.most_recent)\n            FROM fin fl))\n')
    ) AS x(fn, old, new)
  LOOP
    v_def := pg_get_functiondef(r.fn);
    v_found := (length(v_def) - length(replace(v_def, r.old, ''))) / length(r.old);
    IF v_found <> 1 THEN
      RAISE EXCEPTION 'migration 0013: % holds % copies of the statement to rewrite, expected 1: %', r.fn, v_found, r.old;
    END IF;
    EXECUTE replace(v_def, r.old, r.new);
  END LOOP;
END;
$$;
