-- The value checks of tasks and workflow_steps (the state names, priority, max_attempts, backoff_strategy)
-- move from table CHECK constraints to domains.
--
-- Why: PostgreSQL reads a table's CHECK constraints from their stored text (stringToNode) each time a
-- statement that writes the table starts, and checks every one of them on every row it writes, whichever
-- columns changed. The hot path writes these two tables in almost every statement (a claim, a completion, a
-- child started), so each such statement parsed the 10- and 12-name state lists again: counted with
-- callgrind on a PostgreSQL backend running bench/sql/linear_worker.sql's calls, 11 % of all instructions
-- of a linear task. A domain's check is parsed once per connection (the type cache), and runs only where a
-- value is assigned to the column: a state change checks the state, and nothing checks max_attempts again
-- after the step is created.
--
-- The rules are the same, as is the error's SQLSTATE (23514, check_violation); the message names the domain
-- ("value for domain tasker.step_state violates check constraint ..."). Clients see the columns as their base
-- types (text, integer): PostgreSQL reports a domain column by its base type.
--
-- The column changes rewrite tasks and workflow_steps once (under an exclusive lock: on a large existing
-- installation, run this migration in a quiet moment). The trigger that names current_state in its WHEN clause
-- must be dropped for the change and is created again as 0007 made it.
CREATE DOMAIN tasker.task_state AS text CONSTRAINT task_state_check CHECK (VALUE IN (
  'pending', 'initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
  'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures',
  'complete', 'error', 'cancelled', 'resolved_manually'));

CREATE DOMAIN tasker.step_state AS text CONSTRAINT step_state_check CHECK (VALUE IN (
  'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
  'enqueued_as_error_for_orchestration', 'waiting_for_retry',
  'complete', 'error', 'cancelled', 'resolved_manually'));

CREATE DOMAIN tasker.task_priority AS integer
  CONSTRAINT task_priority_check CHECK (VALUE BETWEEN -100 AND 100);

CREATE DOMAIN tasker.step_max_attempts AS integer
  CONSTRAINT step_max_attempts_check CHECK (VALUE BETWEEN 1 AND 100);

CREATE DOMAIN tasker.backoff_strategy AS text
  CONSTRAINT backoff_strategy_check CHECK (VALUE IN ('exponential', 'linear', 'fixed'));

DROP TRIGGER tasks_finished_notify ON tasker.tasks;

ALTER TABLE tasker.tasks
  DROP CONSTRAINT tasks_current_state_check,
  DROP CONSTRAINT tasks_priority_check,
  ALTER COLUMN current_state TYPE tasker.task_state,
  ALTER COLUMN priority TYPE tasker.task_priority;

ALTER TABLE tasker.workflow_steps
  DROP CONSTRAINT workflow_steps_current_state_check,
  DROP CONSTRAINT workflow_steps_max_attempts_check,
  DROP CONSTRAINT workflow_steps_backoff_strategy_check,
  ALTER COLUMN current_state TYPE tasker.step_state,
  ALTER COLUMN max_attempts TYPE tasker.step_max_attempts,
  ALTER COLUMN backoff_strategy TYPE tasker.backoff_strategy;

CREATE TRIGGER tasks_finished_notify
  AFTER UPDATE OF current_state ON tasker.tasks
  FOR EACH ROW
  WHEN (NEW.current_state IN ('complete', 'error', 'cancelled', 'resolved_manually')
        AND OLD.current_state IS DISTINCT FROM NEW.current_state)
  EXECUTE FUNCTION tasker._notify_task_finished();

-- RETURN QUERY wants the declared result types exactly: claim_steps returns max_attempts as integer. Rewritten
-- in place (as 0013 does), so its settings stay; the rewrite must match exactly once.
DO $$
DECLARE
  v_fn regprocedure := 'tasker.claim_steps(text, text, integer, integer, boolean)'::regprocedure;
  v_def text := pg_get_functiondef(v_fn);
  v_old text := E'ws.attempts, ws.max_attempts, ws.timeout_seconds, t.correlation_id,\n';
  v_found integer := (length(v_def) - length(replace(v_def, v_old, ''))) / length(v_old);
BEGIN
  IF v_found <> 1 THEN
    RAISE EXCEPTION 'migration 0014: % holds % copies of the line to rewrite, expected 1: %', v_fn, v_found, v_old;
  END IF;
  EXECUTE replace(v_def, v_old, E'ws.attempts, ws.max_attempts::integer, ws.timeout_seconds, t.correlation_id,\n');
END;
$$;

-- The step message: STABLE, the volatility of the jsonb_build_object it wraps, so the planner inlines it into
-- the statements that send steps. Declared IMMUTABLE it could not be inlined (its body is less immutable than
-- its declaration), and each call ran as a SQL function that plans its body on every call.
ALTER FUNCTION tasker._step_message(uuid, uuid, uuid) STABLE;
