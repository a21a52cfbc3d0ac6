-- The delete cascades of the engine's own tables, as trigger functions.
--
-- tasks, workflow_steps, workflow_step_edges, task_transitions, workflow_step_transitions and
-- workflow_step_result_audit have no foreign keys (docs/decisions/0009-engine-tables-without-foreign-keys.md).
-- Every row of them is written by tasker's SQL functions, in the statement or transaction that creates or
-- compare-and-sets (and so locks) the row it points at, so the keys only checked what those functions guarantee,
-- at a price on the hot path: each check is a query of its own and takes a KEY SHARE lock on the referenced row
-- (a WAL record when nothing stronger is held), about 45 of them per linear four-step task; without them the
-- pgbench chain (bench/sql/linear_worker.sql) uses about 20 % less database CPU per task.
--
-- What the keys also did is kept by these functions, fired by triggers that cost nothing on inserts and updates
-- (the CREATE TRIGGER statements are in the numbered migrations):
--
--   function                               trigger                                   on
--   _on_tasks_delete                       tasks_cascade_delete                      AFTER DELETE ON tasker.tasks,
--                                                                                    FOR EACH STATEMENT, OLD TABLE AS gone
--   _on_workflow_steps_delete              workflow_steps_cascade_delete             AFTER DELETE ON tasker.workflow_steps,
--                                                                                    FOR EACH STATEMENT, OLD TABLE AS gone
--   _on_workflow_step_transitions_delete   workflow_step_transitions_cascade_delete  AFTER DELETE ON
--                                                                                    tasker.workflow_step_transitions,
--                                                                                    FOR EACH STATEMENT, OLD TABLE AS gone
--   _on_tasks_truncate                     tasks_cascade_truncate                    AFTER TRUNCATE ON tasker.tasks,
--                                                                                    FOR EACH STATEMENT
--   _on_named_tasks_delete                 named_tasks_in_use                        BEFORE DELETE ON tasker.named_tasks,
--                                                                                    FOR EACH ROW
--
--   * deleting a task deletes its steps, edges, transitions and result audit rows; deleting a step or a step
--     transition deletes what hangs from it. The statement-level triggers chain: the DELETE a trigger runs fires
--     the next table's trigger (tasks -> workflow_steps -> workflow_step_transitions).
--   * TRUNCATE tasker.tasks CASCADE empties every engine table.
--   * a template (named task) that tasks still use cannot be deleted, with the foreign key's SQLSTATE.
-- tasks_dlq -> tasks (ON DELETE CASCADE) and named_tasks -> task_namespaces keep their foreign keys: they are off
-- the hot path.
--
-- Each cascade finds its rows through an existing index, never a scan of a whole table: steps by
-- workflow_steps_task_name_key (task_uuid first), task transitions by task_transitions_sort_key_idx, edges from
-- either end (the unique key leads with from_step_uuid; workflow_step_edges_to_idx), step transitions by
-- workflow_step_transitions_sort_key_idx, audit rows by their unique (step, transition) key.
--
-- Callers: no function calls these directly. Rows are deleted by tasker.purge_finished_tasks (retention.sql),
-- by tests (test/integration/engine/referentialIntegrity.test.ts checks every cascade, the truncate and the
-- refused template delete) and by hand; tests and benchmarks empty the tables with TRUNCATE tasker.tasks CASCADE.


-- Deleted tasks (transition table gone): their steps and their task transitions.
CREATE OR REPLACE FUNCTION tasker._on_tasks_delete()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  -- The steps' own trigger removes their edges and transitions, and the transitions' trigger their audit
  -- rows (every audit row belongs to a transition of its step): the chain the foreign keys cascaded along.
  DELETE FROM tasker.workflow_steps s WHERE s.task_uuid IN (SELECT g.task_uuid FROM gone g);
  DELETE FROM tasker.task_transitions tt WHERE tt.task_uuid IN (SELECT g.task_uuid FROM gone g);
  RETURN NULL;
END;
$$;

-- Deleted steps (transition table gone): the edges from and to them, and their transitions (whose own trigger
-- removes their audit rows).
CREATE OR REPLACE FUNCTION tasker._on_workflow_steps_delete()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  DELETE FROM tasker.workflow_step_edges e WHERE e.from_step_uuid IN (SELECT g.workflow_step_uuid FROM gone g);
  DELETE FROM tasker.workflow_step_edges e WHERE e.to_step_uuid IN (SELECT g.workflow_step_uuid FROM gone g);
  -- Their audit rows go with their transitions (workflow_step_transitions' trigger, _on_workflow_step_transitions_delete).
  DELETE FROM tasker.workflow_step_transitions t WHERE t.workflow_step_uuid IN (SELECT g.workflow_step_uuid FROM gone g);
  RETURN NULL;
END;
$$;

-- Deleted step transitions (transition table gone): their result audit rows. Every audit row belongs to one
-- transition of its step.
CREATE OR REPLACE FUNCTION tasker._on_workflow_step_transitions_delete()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  -- By (step, transition): the audit table's unique key, so no scan of the whole table.
  DELETE FROM tasker.workflow_step_result_audit a
  WHERE (a.workflow_step_uuid, a.workflow_step_transition_uuid) IN
        (SELECT g.workflow_step_uuid, g.workflow_step_transition_uuid FROM gone g);
  RETURN NULL;
END;
$$;

-- TRUNCATE tasker.tasks CASCADE reaches tasks_dlq through its foreign key, and every other engine table through
-- this. (tasks_dlq's key is also why a TRUNCATE of tasker.tasks without CASCADE fails.) Truncating any other
-- engine table alone fires nothing.
CREATE OR REPLACE FUNCTION tasker._on_tasks_truncate()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  TRUNCATE tasker.workflow_step_result_audit, tasker.workflow_step_transitions, tasker.workflow_step_edges,
           tasker.workflow_steps, tasker.task_transitions;
  RETURN NULL;
END;
$$;

-- A template that tasks still use stays: the delete is refused with foreign_key_violation (23503), the SQLSTATE
-- of the foreign key's NO ACTION, naming the template. The tasks are found through tasks_named_task_idx.
--
-- The check sees committed tasks and the deleting transaction's own: unlike the foreign key it takes no lock,
-- so a task created from the template by a transaction still in flight does not stop the delete. src/ never
-- deletes templates; this guards deletes by hand.
CREATE OR REPLACE FUNCTION tasker._on_named_tasks_delete()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM tasker.tasks t WHERE t.named_task_uuid = OLD.named_task_uuid) THEN
    RAISE EXCEPTION 'template % version % still has tasks: delete them first', OLD.name, OLD.version
      USING ERRCODE = 'foreign_key_violation',
            HINT = 'tasks keep the template they were created from; delete or archive those tasks before the template';
  END IF;
  RETURN OLD;
END;
$$;
