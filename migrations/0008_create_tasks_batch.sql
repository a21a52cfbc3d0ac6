-- Several tasks created in one commit: the tasks that concurrent createTask calls of one process submit while
-- an earlier creation is on its way (src/db/queries/createTask.ts batches them). Each task is exactly what
-- create_task_quiet makes of it; rows come back in input order. Any error aborts the whole batch, and the
-- caller then creates the tasks one by one, so one duplicate identity fails only its own request.
-- p_tasks: [{"task": {...}, "steps": [...], "edges": [...], "request_msg_id": null | bigint}, ...]
CREATE FUNCTION tasker.create_tasks_quiet(p_tasks jsonb)
RETURNS TABLE (task_uuid uuid, current_state text, enqueued_steps integer, queue text, msg_ids bigint[])
LANGUAGE plpgsql AS $$
DECLARE
  x jsonb;
BEGIN
  FOR x IN SELECT e.value FROM jsonb_array_elements(p_tasks) WITH ORDINALITY AS e(value, n) ORDER BY e.n LOOP
    RETURN QUERY SELECT * FROM tasker.create_task_quiet(x -> 'task', x -> 'steps', x -> 'edges',
                                                         (x ->> 'request_msg_id')::bigint);
  END LOOP;
END;
$$;
