-- Retention: finished tasks and archived queue messages are deleted once they are old enough.
--
-- Callers: src/orchestration/retentionSweeper.ts, through purgeFinishedTasks and purgeQueueArchives in
-- src/db/queries/retention.ts, on every orchestrator, as [orchestration.retention] configures (ages in hours,
-- measured against the database's clock: the cutoff is now() minus the age). No leader is needed.
--
-- Every task leaves rows behind for good unless they are deleted here: the task and its task transitions, its
-- steps and edges, several transitions per step, a result audit row per run, and its messages in the queue
-- archives (pgmq.a_<queue>): 42 rows for a linear four-step task, some 10,000 rows a second for a cluster running
-- 1,000 steps a second.
--
-- What goes, and what never does:
--   * a task in a terminal state (complete, error, cancelled, resolved_manually) that finished before the
--     cutoff, with everything that belongs to it (the delete cascades of delete_cascades.sql; resolved DLQ
--     entries through tasks_dlq's foreign key, ON DELETE CASCADE). A task with a pending DLQ entry stays: an
--     operator still has to decide about it. A task that is running, however old, is never touched.
--   * queue archive rows archived before the cutoff. Live queue messages are never touched.
-- Once a finished task is gone, its identity no longer blocks a new task with the same identity.
--
-- The sweeps cost nothing on the hot path: no index and no trigger of their own. Each call takes at most p_limit
-- rows (per queue, for the archives), so one commit stays small.


-- Deletes up to p_limit finished tasks that finished before p_finished_before (completed_at, or updated_at for a
-- task that has none), oldest key first, and returns how many it deleted. p_limit < 1 deletes nothing.
--
-- Tasks are found through the primary key, a UUIDv7 (creation time first): a task that finished before the
-- cutoff was created before it, so only keys below the cutoff's floor (_uuid_v7_floor) are read. The key range
-- only narrows the search; whether a task may go is decided by its state, its finishing time and its DLQ entries
-- (a key minted on a clock running ahead of the database's only delays its task's deletion).
--
-- The candidates are locked FOR UPDATE SKIP LOCKED: a task locked elsewhere (an operator reviving it, another
-- orchestrator's sweep) is left for a later sweep, so every orchestrator sweeps at once without waiting for the
-- others.
--
-- Planner settings: a generic plan (it cannot know how many keys are old) and no seq scans, bitmap scans, hash
-- or merge joins, so the search always walks the primary key from its low end and never scans the whole table;
-- the cascade triggers that the DELETE fires run under the same settings. jit = off, like every function the
-- services call.
CREATE OR REPLACE FUNCTION tasker.purge_finished_tasks(p_finished_before timestamp with time zone, p_limit integer)
RETURNS integer
LANGUAGE plpgsql
SET plan_cache_mode TO 'force_generic_plan'
SET enable_seqscan TO 'off'
SET enable_bitmapscan TO 'off'
SET enable_hashjoin TO 'off'
SET enable_mergejoin TO 'off'
SET jit TO 'off'
AS $$
DECLARE
  v_tasks uuid[];
BEGIN
  IF p_limit < 1 THEN
    RETURN 0;
  END IF;
  SELECT array_agg(c.task_uuid) INTO v_tasks
  FROM (
    SELECT t.task_uuid
    FROM tasker.tasks t
    WHERE t.task_uuid < tasker._uuid_v7_floor(p_finished_before)
      AND t.current_state IN ('complete', 'error', 'cancelled', 'resolved_manually')
      AND coalesce(t.completed_at, t.updated_at) < p_finished_before
      AND NOT EXISTS (SELECT 1 FROM tasker.tasks_dlq d
                      WHERE d.task_uuid = t.task_uuid AND d.resolution_status = 'pending')
    ORDER BY t.task_uuid
    LIMIT p_limit
    -- A task locked elsewhere (an operator reviving it, another orchestrator's sweep) is left for later.
    FOR UPDATE SKIP LOCKED
  ) c;
  IF v_tasks IS NULL THEN
    RETURN 0;
  END IF;
  -- Steps, edges, transitions and audit rows go with their tasks (the AFTER DELETE cascade triggers on tasks,
  -- workflow_steps and workflow_step_transitions), DLQ entries by their foreign key (ON DELETE CASCADE).
  DELETE FROM tasker.tasks t WHERE t.task_uuid = ANY(v_tasks);
  RETURN cardinality(v_tasks);
END;
$$;

-- Deletes, from every queue's archive (pgmq.a_<queue> of each queue in pgmq.meta), up to p_limit rows archived
-- before p_archived_before, oldest first, through the archive's archived_at index (enable_seqscan off keeps each
-- delete on it). Returns one row per queue that lost rows. p_limit < 1 deletes nothing. Live messages
-- (pgmq.q_<queue>) are never touched.
--
-- Two orchestrators sweeping at once may pick the same archive rows: the later one waits for the earlier one's
-- commit and then skips the rows it deleted, without an error.
CREATE OR REPLACE FUNCTION tasker.purge_queue_archives(p_archived_before timestamp with time zone, p_limit integer)
RETURNS TABLE(queue_name text, deleted integer)
LANGUAGE plpgsql
SET enable_seqscan TO 'off'
SET jit TO 'off'
AS $$
DECLARE
  v_queue text;
  v_deleted integer;
BEGIN
  IF p_limit < 1 THEN
    RETURN;
  END IF;
  FOR v_queue IN SELECT m.queue_name FROM pgmq.meta m ORDER BY m.queue_name LOOP
    EXECUTE format(
      'WITH old AS (SELECT a.msg_id FROM pgmq.%1$I a WHERE a.archived_at < $1 ORDER BY a.archived_at LIMIT $2)
       DELETE FROM pgmq.%1$I a USING old WHERE a.msg_id = old.msg_id', 'a_' || v_queue)
      USING p_archived_before, p_limit;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    IF v_deleted > 0 THEN
      queue_name := v_queue;
      deleted := v_deleted;
      RETURN NEXT;
    END IF;
  END LOOP;
END;
$$;
