-- The engine's own tables without foreign keys (docs/decisions/0009-engine-tables-without-foreign-keys.md).
--
-- Every row of tasks, workflow_steps, workflow_step_edges and the two transition tables, and every result
-- audit row, is written by tasker's SQL functions, in the statement or transaction that creates or
-- compare-and-sets (and so locks) the row it points at. The foreign keys checked what those functions already
-- guarantee, at a price measured on the hot path: each check is a query of its own and takes a KEY SHARE lock
-- on the referenced row (a WAL record when nothing stronger is held), about 45 of them per linear 4-step
-- task. Without them the pgbench chain (bench/sql/linear_worker.sql) used about 20 % less database CPU per
-- task and 5,000 one-step tasks ran about 25 % faster.
--
-- What the keys also did is kept, with statement-level triggers that cost nothing on inserts and updates:
--   * deleting a task deletes its steps, edges, transitions and result audit (ON DELETE CASCADE before);
--     deleting a step or a step transition deletes what hung from it;
--   * TRUNCATE tasker.tasks CASCADE empties every engine table, as before;
--   * a template (named task) that tasks still use cannot be deleted (NO ACTION before), same SQLSTATE.
-- tasks_dlq -> tasks and named_tasks -> task_namespaces keep their foreign keys: they are off the hot path.

ALTER TABLE tasker.tasks DROP CONSTRAINT tasks_named_task_uuid_fkey;
ALTER TABLE tasker.task_transitions DROP CONSTRAINT task_transitions_task_uuid_fkey;
ALTER TABLE tasker.workflow_steps DROP CONSTRAINT workflow_steps_task_uuid_fkey;
ALTER TABLE tasker.workflow_step_edges
  DROP CONSTRAINT workflow_step_edges_from_step_uuid_fkey,
  DROP CONSTRAINT workflow_step_edges_to_step_uuid_fkey;
ALTER TABLE tasker.workflow_step_transitions DROP CONSTRAINT workflow_step_transitions_workflow_step_uuid_fkey;
ALTER TABLE tasker.workflow_step_result_audit
  DROP CONSTRAINT workflow_step_result_audit_workflow_step_uuid_fkey,
  DROP CONSTRAINT workflow_step_result_audit_workflow_step_transition_uuid_fkey,
  DROP CONSTRAINT workflow_step_result_audit_task_uuid_fkey;

-- The cascades below find every row through an existing index: edges from either end (the unique key leads
-- with from_step_uuid, workflow_step_edges_to_idx), transitions by workflow_step_uuid or task_uuid, audit
-- rows by their unique (step, transition) key.

CREATE FUNCTION tasker._tasks_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- The steps' own trigger removes their edges and transitions, and the transitions' trigger their audit
  -- rows (every audit row belongs to a transition of its step): the chain the foreign keys cascaded along.
  DELETE FROM tasker.workflow_steps s WHERE s.task_uuid IN (SELECT g.task_uuid FROM gone g);
  DELETE FROM tasker.task_transitions tt WHERE tt.task_uuid IN (SELECT g.task_uuid FROM gone g);
  RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_cascade_delete
AFTER DELETE ON tasker.tasks
REFERENCING OLD TABLE AS gone
FOR EACH STATEMENT EXECUTE FUNCTION tasker._tasks_deleted();

CREATE FUNCTION tasker._steps_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM tasker.workflow_step_edges e WHERE e.from_step_uuid IN (SELECT g.workflow_step_uuid FROM gone g);
  DELETE FROM tasker.workflow_step_edges e WHERE e.to_step_uuid IN (SELECT g.workflow_step_uuid FROM gone g);
  -- Their audit rows go with their transitions (next trigger).
  DELETE FROM tasker.workflow_step_transitions t WHERE t.workflow_step_uuid IN (SELECT g.workflow_step_uuid FROM gone g);
  RETURN NULL;
END;
$$;

CREATE TRIGGER workflow_steps_cascade_delete
AFTER DELETE ON tasker.workflow_steps
REFERENCING OLD TABLE AS gone
FOR EACH STATEMENT EXECUTE FUNCTION tasker._steps_deleted();

CREATE FUNCTION tasker._step_transitions_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- By (step, transition): the audit table's unique key, so no scan of the whole table.
  DELETE FROM tasker.workflow_step_result_audit a
  WHERE (a.workflow_step_uuid, a.workflow_step_transition_uuid) IN
        (SELECT g.workflow_step_uuid, g.workflow_step_transition_uuid FROM gone g);
  RETURN NULL;
END;
$$;

CREATE TRIGGER workflow_step_transitions_cascade_delete
AFTER DELETE ON tasker.workflow_step_transitions
REFERENCING OLD TABLE AS gone
FOR EACH STATEMENT EXECUTE FUNCTION tasker._step_transitions_deleted();

-- TRUNCATE tasker.tasks CASCADE reaches tasks_dlq through its foreign key, and the rest through this.
CREATE FUNCTION tasker._tasks_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE tasker.workflow_step_result_audit, tasker.workflow_step_transitions, tasker.workflow_step_edges,
           tasker.workflow_steps, tasker.task_transitions;
  RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_cascade_truncate
AFTER TRUNCATE ON tasker.tasks
FOR EACH STATEMENT EXECUTE FUNCTION tasker._tasks_truncated();

-- A template that tasks still use stays (the foreign key's NO ACTION, with its SQLSTATE).
CREATE FUNCTION tasker._named_task_deleting() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM tasker.tasks t WHERE t.named_task_uuid = OLD.named_task_uuid) THEN
    RAISE EXCEPTION 'template % version % still has tasks: delete them first', OLD.name, OLD.version
      USING ERRCODE = 'foreign_key_violation',
            HINT = 'tasks keep the template they were created from; delete or archive those tasks before the template';
  END IF;
  RETURN OLD;
END;
$$;

CREATE TRIGGER named_tasks_in_use
BEFORE DELETE ON tasker.named_tasks
FOR EACH ROW EXECUTE FUNCTION tasker._named_task_deleting();
