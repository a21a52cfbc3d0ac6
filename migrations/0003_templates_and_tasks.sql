-- Namespaces, task templates (named tasks), tasks and their transition history (reference §1).
--
-- A task's current state lives on its row (tasks.current_state) and changes only by compare-and-set
-- (UPDATE ... WHERE current_state = <expected>): the row lock serializes racers and the loser's WHERE no
-- longer matches, so a lost race is a no-op. Every change also appends a task_transitions row.
--
-- tasks and task_transitions have no foreign keys (docs/decisions/0009-engine-tables-without-foreign-keys.md).
-- Every row of them is written by tasker's SQL functions, next to the row it points at: a task from the
-- template the function has just resolved, a transition in the statement that compare-and-sets (and so locks)
-- its task. A key would only re-check that, and each check is a query of its own that takes a KEY SHARE lock
-- on the referenced row: without them the hot path costs about 20 % less database CPU per task. What keys
-- would do besides checking (cascade deletes, refuse to delete a template in use) is done by the triggers
-- below, which cost nothing on inserts and updates.
-- named_tasks -> task_namespaces keeps its foreign key: templates are written off the hot path.

CREATE TABLE tasker.task_namespaces (
  task_namespace_uuid uuid        PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
  name                varchar(64) NOT NULL UNIQUE,
  description         text,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);

-- One row per (namespace, name, version). Registering a template again replaces that row's configuration;
-- the tasks created from it keep pointing at the row.
CREATE TABLE tasker.named_tasks (
  named_task_uuid     uuid        PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
  task_namespace_uuid uuid        NOT NULL REFERENCES tasker.task_namespaces,
  name                varchar(64) NOT NULL,
  version             varchar(32) NOT NULL,
  description         text,
  identity_strategy   text        NOT NULL DEFAULT 'strict'
                      CHECK (identity_strategy IN ('strict', 'caller_provided', 'always_unique')),
  -- The whole validated template (camelCase, as the parser returns it), so orchestration and the API need
  -- no YAML.
  configuration       jsonb       NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  UNIQUE (task_namespace_uuid, name, version)
);
-- Containment queries (@>, ?) on the templates' lifecycle overrides (max_*_minutes).
CREATE INDEX named_tasks_lifecycle_idx ON tasker.named_tasks USING gin ((configuration -> 'lifecycle'));

-- A template that tasks still use stays: deleting it fails with foreign_key_violation (23503) and names the
-- template, as a foreign key's NO ACTION would.
CREATE TRIGGER named_tasks_in_use
BEFORE DELETE ON tasker.named_tasks
FOR EACH ROW EXECUTE FUNCTION tasker._on_named_tasks_delete();

CREATE TABLE tasker.tasks (
  task_uuid             uuid                 PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
  -- The template it was created from (no foreign key: see the head of this file).
  named_task_uuid       uuid                 NOT NULL,
  -- Denormalized from the template so the hot path needs no joins to find the step queue.
  namespace_name        varchar(64)          NOT NULL,
  current_state         tasker.task_state    NOT NULL DEFAULT 'pending',
  complete              boolean              NOT NULL DEFAULT false,
  requested_at          timestamptz          NOT NULL DEFAULT now(),
  completed_at          timestamptz,
  initiator             varchar(128),
  source_system         varchar(128),
  reason                varchar(128),
  tags                  jsonb                NOT NULL DEFAULT '[]',
  context               jsonb                NOT NULL DEFAULT '{}',
  -- The task's identity under its template's identity_strategy. Unique: creating a task whose identity
  -- exists raises unique_violation on tasks_identity_hash_key, which task creation reports as a duplicate.
  -- Once a finished task is purged (retention), its identity no longer blocks a new task.
  identity_hash         varchar(128)         NOT NULL,
  priority              tasker.task_priority NOT NULL DEFAULT 0,
  correlation_id        uuid                 NOT NULL,
  parent_correlation_id uuid,
  created_at            timestamptz          NOT NULL DEFAULT now(),
  updated_at            timestamptz          NOT NULL DEFAULT now(),
  CONSTRAINT tasks_identity_hash_key UNIQUE (identity_hash)
);
-- The unfinished tasks only, which the staleness sweep (tasker.task_staleness) reads. Hot-path statements
-- compare a state through a variable, not a literal, so a generic plan cannot prove this index usable and
-- finds tasks by primary key: without vacuum it keeps an entry for every task that ever ran, and a scan of
-- it grows with the table.
CREATE INDEX tasks_active_idx ON tasker.tasks (current_state, priority DESC, task_uuid)
  WHERE current_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually');
-- A template's tasks, oldest first; also the named_tasks_in_use check.
CREATE INDEX tasks_named_task_idx ON tasker.tasks (named_task_uuid, created_at);
-- The task list filtered by namespace, newest first.
CREATE INDEX tasks_namespace_created_idx ON tasker.tasks (namespace_name, created_at);
CREATE INDEX tasks_correlation_idx ON tasker.tasks (correlation_id);

-- Deleting tasks deletes their steps and task transitions (the steps' trigger goes on to their edges,
-- transitions and result audit). Statement-level with a transition table: one DELETE per table for the
-- whole statement, every row found through an index.
CREATE TRIGGER tasks_cascade_delete
AFTER DELETE ON tasker.tasks
REFERENCING OLD TABLE AS gone
FOR EACH STATEMENT EXECUTE FUNCTION tasker._on_tasks_delete();

-- TRUNCATE tasker.tasks CASCADE empties every engine table: tasks_dlq through its foreign key, the rest
-- through this trigger.
CREATE TRIGGER tasks_cascade_truncate
AFTER TRUNCATE ON tasker.tasks
FOR EACH STATEMENT EXECUTE FUNCTION tasker._on_tasks_truncate();

-- A task reaching a terminal state NOTIFYs tasker_task_finished with '<task_uuid>:<state>', so API clients
-- waiting for a result (GET /v1/tasks/{uuid}?wait=N) are answered at once instead of polling. A trigger, not
-- code in each finalizing function: every path to a terminal state (finalization, cancellation, staleness,
-- operator actions) is covered, and the hint is sent only after the commit, like every NOTIFY.
CREATE TRIGGER tasks_finished_notify
  AFTER UPDATE OF current_state ON tasker.tasks
  FOR EACH ROW
  WHEN (NEW.current_state IN ('complete', 'error', 'cancelled', 'resolved_manually')
        AND OLD.current_state IS DISTINCT FROM NEW.current_state)
  EXECUTE FUNCTION tasker._notify_task_finished();

-- A task's state history: one row per state change, written in the statement that changes the state.
CREATE TABLE tasker.task_transitions (
  task_transition_uuid uuid        PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
  task_uuid            uuid        NOT NULL,
  from_state           text,
  to_state             text        NOT NULL,
  metadata             jsonb       NOT NULL DEFAULT '{}',
  -- The orchestrator that made the change, when one did.
  processor_uuid       uuid,
  sort_key             integer     NOT NULL,
  most_recent          boolean     NOT NULL,
  created_at           timestamptz NOT NULL DEFAULT now()
);
-- Exactly one current transition per task: the writer that compare-and-sets the task flips the old row's
-- flag and inserts the new row, and a second current row for the same task cannot exist.
CREATE UNIQUE INDEX task_transitions_most_recent_idx ON tasker.task_transitions (task_uuid) WHERE most_recent;
-- Each position in a task's history holds one transition.
CREATE UNIQUE INDEX task_transitions_sort_key_idx ON tasker.task_transitions (task_uuid, sort_key);
