-- A task's steps, the edges between them (the DAG), each step's transition history and the audit of who
-- produced each result (reference §1).
--
-- A step's current state lives on its row (workflow_steps.current_state) and changes only by compare-and-set,
-- like a task's; every change appends a workflow_step_transitions row.
--
-- None of these tables has a foreign key (docs/decisions/0009-engine-tables-without-foreign-keys.md): steps
-- and edges are written in the statement that creates their task, transitions in the statement that
-- compare-and-sets their step, audit rows in the statement that writes their transition. The keys would only
-- re-check that, at a query and a KEY SHARE lock per check on the hot path. What keys would do besides
-- checking, the cascade on delete, is done by the statement-level triggers below, which cost nothing on
-- inserts and updates.

CREATE TABLE tasker.workflow_steps (
  workflow_step_uuid uuid                     PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
  task_uuid          uuid                     NOT NULL,
  name               varchar(128)             NOT NULL,
  current_state      tasker.step_state        NOT NULL DEFAULT 'pending',
  handler_callable   text                     NOT NULL,
  -- The handler's `initialization` from the template.
  inputs             jsonb                    NOT NULL DEFAULT '{}',
  retryable          boolean                  NOT NULL DEFAULT true,
  max_attempts       tasker.step_max_attempts NOT NULL DEFAULT 3,
  backoff_strategy   tasker.backoff_strategy  NOT NULL DEFAULT 'exponential',
  backoff_base_ms    integer                  NOT NULL DEFAULT 1000,
  max_backoff_ms     integer                  NOT NULL DEFAULT 30000,
  timeout_seconds    integer,
  -- Runs started, the first included. With claimed_by it fences the current claim: a result is stored only
  -- if its attempt and worker match, so a worker whose lease expired cannot overwrite the run that followed.
  -- (attempts alone is not enough: an operator's reset_for_retry starts it again at 0.)
  attempts           integer                  NOT NULL DEFAULT 0,
  last_attempted_at  timestamptz,
  next_retry_at      timestamptz,
  in_process         boolean                  NOT NULL DEFAULT false,
  processed          boolean                  NOT NULL DEFAULT false,
  processed_at       timestamptz,
  -- What dependent steps see as this step's result (a handler's, or an operator's complete_manually).
  results            jsonb,
  last_error         jsonb,
  -- The worker holding the current claim and the queue message that is its lease: the message stays hidden
  -- while the worker's heartbeat extends it, and reappears, to be claimed again, when the worker dies.
  claimed_by         text,
  lease_msg_id       bigint,
  priority           integer                  NOT NULL DEFAULT 0,
  created_at         timestamptz              NOT NULL DEFAULT now(),
  updated_at         timestamptz              NOT NULL DEFAULT now(),
  CONSTRAINT workflow_steps_task_name_key UNIQUE (task_uuid, name)
);
-- Only the steps in that state. Hot-path statements compare a state through a variable, not a literal, so a
-- generic plan cannot prove these indexes usable and finds steps by primary key: without vacuum a partial
-- index keeps an entry for every step that was ever in its state, and a scan of it grows with the table.
CREATE INDEX workflow_steps_retry_due_idx ON tasker.workflow_steps (next_retry_at) WHERE current_state = 'waiting_for_retry';
CREATE INDEX workflow_steps_in_progress_idx ON tasker.workflow_steps (last_attempted_at) WHERE current_state = 'in_progress';

-- Deleting steps deletes their edges (both ends) and transitions; the transitions' trigger goes on to the
-- result audit.
CREATE TRIGGER workflow_steps_cascade_delete
AFTER DELETE ON tasker.workflow_steps
REFERENCING OLD TABLE AS gone
FOR EACH STATEMENT EXECUTE FUNCTION tasker._on_workflow_steps_delete();

-- from_step_uuid provides to to_step_uuid: the child runs when all its parents are complete (or resolved).
CREATE TABLE tasker.workflow_step_edges (
  workflow_step_edge_uuid uuid        PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
  from_step_uuid          uuid        NOT NULL,
  to_step_uuid            uuid        NOT NULL,
  name                    text        NOT NULL DEFAULT 'provides',
  created_at              timestamptz NOT NULL DEFAULT now(),
  -- Leads with from_step_uuid: a step's children are found through it.
  UNIQUE (from_step_uuid, to_step_uuid, name),
  CHECK (from_step_uuid <> to_step_uuid)
);
-- A step's parents (its dependency results, readiness checks). from_step_uuid is included so that lookup is
-- an index-only scan: otherwise, with statistics that call the table tiny and all-visible, the planner
-- prefers an index-only scan of the whole unique key above, filtering on its second column (124 blocks per
-- lookup on 4,500 edges), and a lookup with a condition always costs less than a whole scan.
CREATE INDEX workflow_step_edges_to_idx ON tasker.workflow_step_edges (to_step_uuid) INCLUDE (from_step_uuid);

-- A step's state history, as task_transitions is a task's.
CREATE TABLE tasker.workflow_step_transitions (
  workflow_step_transition_uuid uuid        PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
  workflow_step_uuid            uuid        NOT NULL,
  from_state                    text,
  to_state                      text        NOT NULL,
  metadata                      jsonb       NOT NULL DEFAULT '{}',
  sort_key                      integer     NOT NULL,
  most_recent                   boolean     NOT NULL,
  created_at                    timestamptz NOT NULL DEFAULT now()
);
-- Exactly one current transition per step: the writer that compare-and-sets the step flips the old row's
-- flag (found by the step's key, never by a scan of every current transition) and inserts the new row.
CREATE UNIQUE INDEX workflow_step_transitions_most_recent_idx
  ON tasker.workflow_step_transitions (workflow_step_uuid) WHERE most_recent;
-- Each position in a step's history holds one transition.
CREATE UNIQUE INDEX workflow_step_transitions_sort_key_idx
  ON tasker.workflow_step_transitions (workflow_step_uuid, sort_key);

-- Deleting step transitions deletes their result audit rows.
CREATE TRIGGER workflow_step_transitions_cascade_delete
AFTER DELETE ON tasker.workflow_step_transitions
REFERENCING OLD TABLE AS gone
FOR EACH STATEMENT EXECUTE FUNCTION tasker._on_workflow_step_transitions_delete();

-- Who produced each result, when, and how long it took (SOC2-style attribution). One row per run that
-- reported, written with the transition that stored its result.
CREATE TABLE tasker.workflow_step_result_audit (
  workflow_step_result_audit_uuid uuid        PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
  workflow_step_uuid              uuid        NOT NULL,
  workflow_step_transition_uuid   uuid        NOT NULL,
  task_uuid                       uuid        NOT NULL,
  worker_uuid                     text,
  correlation_id                  uuid,
  success                         boolean     NOT NULL,
  attempt                         integer     NOT NULL,
  execution_time_ms               integer,
  recorded_at                     timestamptz NOT NULL DEFAULT now(),
  -- Also how the transitions' cascade finds a transition's audit rows without scanning the table.
  UNIQUE (workflow_step_uuid, workflow_step_transition_uuid)
);
CREATE INDEX workflow_step_result_audit_task_idx ON tasker.workflow_step_result_audit (task_uuid);
