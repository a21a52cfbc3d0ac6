-- Retention: finished tasks and archived queue messages are deleted once they are old enough.
--
-- Every task leaves rows behind for good: the task and six task transitions, its steps and edges, five
-- transitions per step, a result audit row per run, and its messages in the queue archives (pgmq.a_<queue>):
-- 42 rows for a linear four-step task. A cluster running 1,000 steps a second adds some 10,000 rows a second
-- that nothing ever removes. tasker-core has no retention
-- (reference §15); the orchestration service now sweeps, as [orchestration.retention] configures.
--
-- What goes, and what never does:
--   * a task in a terminal state (complete, error, cancelled, resolved_manually) that finished before the
--     cutoff, with everything that belongs to it (0010's cascade triggers; resolved DLQ entries by their
--     foreign key). A task with a pending DLQ entry stays: an operator still has to decide about it. A task
--     that is running, however old, is never touched.
--   * queue archive rows archived before the cutoff. Live queue messages are never touched.
-- Once a finished task is gone, its identity no longer blocks a new task with the same identity.
--
-- The sweeps cost nothing on the hot path: no new index, no trigger. Tasks are found through the primary key,
-- which is a UUIDv7 (creation time first): a task that finished before the cutoff was created before it, so
-- only keys below the cutoff's are read, oldest first. Each call takes at most p_limit rows, and locks its
-- tasks SKIP LOCKED, so every orchestrator can sweep at once without waiting for the others.

-- The smallest UUIDv7 of the millisecond p_at: every version-7 key made before p_at sorts below it.
CREATE FUNCTION tasker._uuid_v7_floor(p_at timestamptz) RETURNS uuid
LANGUAGE sql IMMUTABLE AS $$
  SELECT (lpad(to_hex(floor(extract(epoch FROM p_at) * 1000)::bigint), 12, '0') || repeat('0', 20))::uuid
$$;

-- Deletes up to p_limit finished tasks that finished before p_finished_before, oldest first, and returns how
-- many it deleted. The key range only narrows the search: whether a task may go is decided by its state, its
-- finishing time and its DLQ entries.
CREATE FUNCTION tasker.purge_finished_tasks(p_finished_before timestamptz, p_limit integer) RETURNS integer
LANGUAGE plpgsql
-- The primary key, never a scan of the whole table: a generic plan cannot know how many keys are old.
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_bitmapscan = off
SET enable_hashjoin = off SET enable_mergejoin = off SET jit = off
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
  -- Steps, edges, transitions and audit rows go with their tasks (0010's triggers), DLQ entries by their key.
  DELETE FROM tasker.tasks t WHERE t.task_uuid = ANY(v_tasks);
  RETURN cardinality(v_tasks);
END;
$$;

-- Deletes, from every queue's archive, up to p_limit rows archived before p_archived_before (oldest first,
-- through the archive's archived_at index). Returns one row per queue that lost rows.
CREATE FUNCTION tasker.purge_queue_archives(p_archived_before timestamptz, p_limit integer)
RETURNS TABLE (queue_name text, deleted integer)
LANGUAGE plpgsql
SET enable_seqscan = off SET jit = off
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
