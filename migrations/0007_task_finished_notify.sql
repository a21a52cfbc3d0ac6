-- A task reaching a terminal state NOTIFYs `tasker_task_finished` with `<task_uuid>:<state>`, so API clients
-- waiting for a result (GET /v1/tasks/{uuid}?wait=N) are answered at once instead of polling. A trigger, not
-- code in each finalizing function: every path to a terminal state (finalization, cancellation, staleness,
-- operator actions) is covered, and the hint is sent only after the commit, like every NOTIFY.
CREATE FUNCTION tasker._notify_task_finished() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('tasker_task_finished', NEW.task_uuid::text || ':' || NEW.current_state);
  RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_finished_notify
  AFTER UPDATE OF current_state ON tasker.tasks
  FOR EACH ROW
  WHEN (NEW.current_state IN ('complete', 'error', 'cancelled', 'resolved_manually')
        AND OLD.current_state IS DISTINCT FROM NEW.current_state)
  EXECUTE FUNCTION tasker._notify_task_finished();
