-- Upgrade of a database migrated by the old layout (numbered migrations 0001-0019 that defined and patched
-- functions in place) to the current one. src/db/legacyLayout.ts runs this once, in the migrator's transaction,
-- before the function files are applied; the tables, types and data 0019 left are exactly what the baseline
-- migrations 0001-0006 create, so only functions change.
--
-- Dropped: functions that no longer exist, and those whose result type changes (CREATE OR REPLACE cannot change
-- a result type; the function files create them again in the same transaction). Every caller of a dropped
-- function is a PL/pgSQL body or the TypeScript of the same release, so nothing else depends on them.

-- Entry points nothing calls: the worker completes through complete_many_and_claim, and orchestration drains
-- its queues through process_step_results and process_finalization_requests.
DROP FUNCTION IF EXISTS tasker.complete_step(uuid, uuid, integer, boolean, jsonb, text, integer, boolean);
DROP FUNCTION IF EXISTS tasker.complete_and_claim(uuid, uuid, integer, boolean, jsonb, text, integer, boolean, text, integer, integer, boolean);
DROP FUNCTION IF EXISTS tasker.process_orchestration_queues(integer, integer, uuid);
DROP FUNCTION IF EXISTS tasker.apply_step_result(uuid, uuid);

-- The in-place text patcher: functions are edited in their files now.
DROP FUNCTION IF EXISTS tasker._rewrite_function(regprocedure, text, text, integer);

-- Near-pairs merged into one function each: the "quiet" variant (which returns the messages it sent, for the
-- caller to signal) keeps the plain name, and callers that signal at once call tasker._notify_sent themselves.
DROP FUNCTION IF EXISTS tasker._apply_step_result(uuid, uuid);
DROP FUNCTION IF EXISTS tasker._apply_step_result_quiet(uuid, uuid);
DROP FUNCTION IF EXISTS tasker._enqueue_ready_steps(uuid, uuid);
DROP FUNCTION IF EXISTS tasker._enqueue_ready_steps_quiet(uuid, uuid);

-- One creation entry point, tasker.create_tasks(p_tasks, p_notify).
DROP FUNCTION IF EXISTS tasker.create_task(jsonb, jsonb, jsonb, bigint);
DROP FUNCTION IF EXISTS tasker.create_task_quiet(jsonb, jsonb, jsonb, bigint);
DROP FUNCTION IF EXISTS tasker.create_tasks_quiet(jsonb);

-- Trigger functions are named _on_<table>_<event>, so that no function name is the start of another's (a reader
-- who greps for "FUNCTION tasker._step_transition" finds that one function). Renamed, not dropped: the triggers
-- keep pointing at them.
ALTER FUNCTION tasker._tasks_deleted() RENAME TO _on_tasks_delete;
ALTER FUNCTION tasker._tasks_truncated() RENAME TO _on_tasks_truncate;
ALTER FUNCTION tasker._steps_deleted() RENAME TO _on_workflow_steps_delete;
ALTER FUNCTION tasker._step_transitions_deleted() RENAME TO _on_workflow_step_transitions_delete;
ALTER FUNCTION tasker._named_task_deleting() RENAME TO _on_named_tasks_delete;
