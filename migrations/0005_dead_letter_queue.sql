-- The dead-letter queue (reference §5.3): tasks that need an operator's decision, with a snapshot of the
-- task and its steps as they were when they were dead-lettered.
--
-- Entries are written by the staleness detector (tasker.detect_stale_tasks) and closed by operators through
-- the API. The foreign key to tasks stays, unlike the engine tables' (0003, 0004): this table is written off
-- the hot path. ON DELETE CASCADE: a task purged by retention takes its resolved entries with it, and
-- TRUNCATE tasker.tasks CASCADE reaches this table through the key. A task with a pending entry is never
-- purged: an operator still has to decide about it.
CREATE TABLE tasker.tasks_dlq (
  dlq_entry_uuid       uuid        PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
  task_uuid            uuid        NOT NULL REFERENCES tasker.tasks ON DELETE CASCADE,
  -- The task's state when it was dead-lettered.
  original_state       text        NOT NULL,
  dlq_reason           text        NOT NULL CHECK (dlq_reason IN (
                         'staleness_timeout', 'max_retries_exceeded', 'dependency_cycle_detected',
                         'worker_unavailable', 'manual_dlq')),
  dlq_timestamp        timestamptz NOT NULL DEFAULT now(),
  resolution_status    text        NOT NULL DEFAULT 'pending' CHECK (resolution_status IN (
                         'pending', 'manually_resolved', 'permanently_failed', 'cancelled')),
  resolution_timestamp timestamptz,
  resolution_notes     text,
  resolved_by          text,
  task_snapshot        jsonb       NOT NULL DEFAULT '{}',
  metadata             jsonb       NOT NULL DEFAULT '{}',
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now()
);
-- At most one open entry per task. The staleness detector inserts with ON CONFLICT DO NOTHING on this index,
-- so a task that was revived and went stale again keeps its one open entry.
CREATE UNIQUE INDEX tasks_dlq_pending_task_idx ON tasker.tasks_dlq (task_uuid) WHERE resolution_status = 'pending';
-- The DLQ listing: by status, newest first.
CREATE INDEX tasks_dlq_status_time_idx ON tasker.tasks_dlq (resolution_status, dlq_timestamp DESC);
-- A task's entries, open or closed; also how deleting a task finds them for the cascade.
CREATE INDEX tasks_dlq_task_idx ON tasker.tasks_dlq (task_uuid);
