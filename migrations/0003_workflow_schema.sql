-- The workflow data model (reference §1): namespaces, templates, tasks, steps, edges, transitions, result
-- audit and the dead-letter queue. UUIDv7 keys without extensions.
--
-- Current state lives on the entity row (tasks.current_state, workflow_steps.current_state) and is changed
-- only by compare-and-set (`UPDATE ... WHERE current_state = <expected>`): the row lock serializes racers and
-- the loser's WHERE no longer matches, so a lost race is a no-op. Every change also appends a transition row;
-- the partial unique index on (entity) WHERE most_recent keeps exactly one current transition per entity.

CREATE FUNCTION tasker.uuid_generate_v7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
  -- 48-bit Unix milliseconds, then random bits from gen_random_uuid (core since PostgreSQL 13),
  -- then the version nibble set to 7 (its variant bits are already RFC 4122).
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;

CREATE TABLE tasker.task_namespaces (
  task_namespace_uuid uuid        PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
  name                varchar(64) NOT NULL UNIQUE,
  description         text,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasker.named_tasks (
  named_task_uuid     uuid        PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
  task_namespace_uuid uuid        NOT NULL REFERENCES tasker.task_namespaces,
  name                varchar(64) NOT NULL,
  version             varchar(32) NOT NULL,
  description         text,
  identity_strategy   text        NOT NULL DEFAULT 'strict'
                      CHECK (identity_strategy IN ('strict', 'caller_provided', 'always_unique')),
  -- The whole validated template, so orchestration and the API need no YAML.
  configuration       jsonb       NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  UNIQUE (task_namespace_uuid, name, version)
);
CREATE INDEX named_tasks_lifecycle_idx ON tasker.named_tasks USING gin ((configuration -> 'lifecycle'));

CREATE TABLE tasker.tasks (
  task_uuid             uuid         PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
  named_task_uuid       uuid         NOT NULL REFERENCES tasker.named_tasks,
  -- Denormalized from the template so the hot path needs no joins to find the step queue.
  namespace_name        varchar(64)  NOT NULL,
  current_state         text         NOT NULL DEFAULT 'pending' CHECK (current_state IN (
                          'pending', 'initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
                          'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures',
                          'complete', 'error', 'cancelled', 'resolved_manually')),
  complete              boolean      NOT NULL DEFAULT false,
  requested_at          timestamptz  NOT NULL DEFAULT now(),
  completed_at          timestamptz,
  initiator             varchar(128),
  source_system         varchar(128),
  reason                varchar(128),
  tags                  jsonb        NOT NULL DEFAULT '[]',
  context               jsonb        NOT NULL DEFAULT '{}',
  identity_hash         varchar(128) NOT NULL,
  priority              integer      NOT NULL DEFAULT 0 CHECK (priority BETWEEN -100 AND 100),
  correlation_id        uuid         NOT NULL,
  parent_correlation_id uuid,
  created_at            timestamptz  NOT NULL DEFAULT now(),
  updated_at            timestamptz  NOT NULL DEFAULT now(),
  CONSTRAINT tasks_identity_hash_key UNIQUE (identity_hash)
);
CREATE INDEX tasks_active_idx ON tasker.tasks (current_state, priority DESC, task_uuid)
  WHERE current_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually');
CREATE INDEX tasks_named_task_idx ON tasker.tasks (named_task_uuid, created_at);
CREATE INDEX tasks_namespace_created_idx ON tasker.tasks (namespace_name, created_at);
CREATE INDEX tasks_correlation_idx ON tasker.tasks (correlation_id);

CREATE TABLE tasker.task_transitions (
  task_transition_uuid uuid        PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
  task_uuid            uuid        NOT NULL REFERENCES tasker.tasks ON DELETE CASCADE,
  from_state           text,
  to_state             text        NOT NULL,
  metadata             jsonb       NOT NULL DEFAULT '{}',
  processor_uuid       uuid,
  sort_key             integer     NOT NULL,
  most_recent          boolean     NOT NULL,
  created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX task_transitions_most_recent_idx ON tasker.task_transitions (task_uuid) WHERE most_recent;
CREATE UNIQUE INDEX task_transitions_sort_key_idx ON tasker.task_transitions (task_uuid, sort_key);

CREATE TABLE tasker.workflow_steps (
  workflow_step_uuid uuid         PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
  task_uuid          uuid         NOT NULL REFERENCES tasker.tasks ON DELETE CASCADE,
  name               varchar(128) NOT NULL,
  current_state      text         NOT NULL DEFAULT 'pending' CHECK (current_state IN (
                       'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
                       'enqueued_as_error_for_orchestration', 'waiting_for_retry',
                       'complete', 'error', 'cancelled', 'resolved_manually')),
  handler_callable   text         NOT NULL,
  -- The handler's `initialization` from the template.
  inputs             jsonb        NOT NULL DEFAULT '{}',
  retryable          boolean      NOT NULL DEFAULT true,
  max_attempts       integer      NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
  backoff_strategy   text         NOT NULL DEFAULT 'exponential' CHECK (backoff_strategy IN ('exponential', 'linear', 'fixed')),
  backoff_base_ms    integer      NOT NULL DEFAULT 1000,
  max_backoff_ms     integer      NOT NULL DEFAULT 30000,
  timeout_seconds    integer,
  -- Runs started, the first included; also the fencing token of the current claim.
  attempts           integer      NOT NULL DEFAULT 0,
  last_attempted_at  timestamptz,
  next_retry_at      timestamptz,
  in_process         boolean      NOT NULL DEFAULT false,
  processed          boolean      NOT NULL DEFAULT false,
  processed_at       timestamptz,
  results            jsonb,
  last_error         jsonb,
  -- The worker holding the current claim and the queue message that is its lease.
  claimed_by         text,
  lease_msg_id       bigint,
  priority           integer      NOT NULL DEFAULT 0,
  created_at         timestamptz  NOT NULL DEFAULT now(),
  updated_at         timestamptz  NOT NULL DEFAULT now(),
  CONSTRAINT workflow_steps_task_name_key UNIQUE (task_uuid, name)
);
CREATE INDEX workflow_steps_retry_due_idx ON tasker.workflow_steps (next_retry_at) WHERE current_state = 'waiting_for_retry';
CREATE INDEX workflow_steps_in_progress_idx ON tasker.workflow_steps (last_attempted_at) WHERE current_state = 'in_progress';

CREATE TABLE tasker.workflow_step_edges (
  workflow_step_edge_uuid uuid        PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
  from_step_uuid          uuid        NOT NULL REFERENCES tasker.workflow_steps ON DELETE CASCADE,
  to_step_uuid            uuid        NOT NULL REFERENCES tasker.workflow_steps ON DELETE CASCADE,
  name                    text        NOT NULL DEFAULT 'provides',
  created_at              timestamptz NOT NULL DEFAULT now(),
  UNIQUE (from_step_uuid, to_step_uuid, name),
  CHECK (from_step_uuid <> to_step_uuid)
);
CREATE INDEX workflow_step_edges_to_idx ON tasker.workflow_step_edges (to_step_uuid);

CREATE TABLE tasker.workflow_step_transitions (
  workflow_step_transition_uuid uuid        PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
  workflow_step_uuid            uuid        NOT NULL REFERENCES tasker.workflow_steps ON DELETE CASCADE,
  from_state                    text,
  to_state                      text        NOT NULL,
  metadata                      jsonb       NOT NULL DEFAULT '{}',
  sort_key                      integer     NOT NULL,
  most_recent                   boolean     NOT NULL,
  created_at                    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX workflow_step_transitions_most_recent_idx
  ON tasker.workflow_step_transitions (workflow_step_uuid) WHERE most_recent;
CREATE UNIQUE INDEX workflow_step_transitions_sort_key_idx
  ON tasker.workflow_step_transitions (workflow_step_uuid, sort_key);

-- Who produced each result, when, and how long it took (SOC2-style attribution).
CREATE TABLE tasker.workflow_step_result_audit (
  workflow_step_result_audit_uuid uuid        PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
  workflow_step_uuid              uuid        NOT NULL REFERENCES tasker.workflow_steps ON DELETE CASCADE,
  workflow_step_transition_uuid   uuid        NOT NULL REFERENCES tasker.workflow_step_transitions ON DELETE CASCADE,
  task_uuid                       uuid        NOT NULL REFERENCES tasker.tasks ON DELETE CASCADE,
  worker_uuid                     text,
  correlation_id                  uuid,
  success                         boolean     NOT NULL,
  attempt                         integer     NOT NULL,
  execution_time_ms               integer,
  recorded_at                     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (workflow_step_uuid, workflow_step_transition_uuid)
);
CREATE INDEX workflow_step_result_audit_task_idx ON tasker.workflow_step_result_audit (task_uuid);

CREATE TABLE tasker.tasks_dlq (
  dlq_entry_uuid       uuid        PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
  task_uuid            uuid        NOT NULL REFERENCES tasker.tasks ON DELETE CASCADE,
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
CREATE UNIQUE INDEX tasks_dlq_pending_task_idx ON tasker.tasks_dlq (task_uuid) WHERE resolution_status = 'pending';

-- The allowed (from, to) pairs, mirrored from src/domain/state (a test keeps the two equal). Transition
-- functions refuse any other pair: a wrong transition is a bug, caught where it happens.
CREATE TABLE tasker.task_state_transitions (
  from_state text NOT NULL,
  to_state   text NOT NULL,
  PRIMARY KEY (from_state, to_state)
);
CREATE TABLE tasker.step_state_transitions (
  from_state text NOT NULL,
  to_state   text NOT NULL,
  PRIMARY KEY (from_state, to_state)
);

-- The three queues orchestration consumes (reference §6.1).
SELECT pgmq.create('orchestration_step_results');
SELECT pgmq.create('orchestration_task_requests');
SELECT pgmq.create('orchestration_task_finalizations');

INSERT INTO tasker.task_state_transitions (from_state, to_state) VALUES
  ('pending', 'initializing'),
  ('initializing', 'enqueuing_steps'), ('initializing', 'complete'), ('initializing', 'waiting_for_dependencies'),
  ('enqueuing_steps', 'steps_in_process'), ('enqueuing_steps', 'error'),
  ('steps_in_process', 'evaluating_results'), ('steps_in_process', 'waiting_for_retry'),
  ('steps_in_process', 'complete'), ('steps_in_process', 'error'),
  ('evaluating_results', 'complete'), ('evaluating_results', 'enqueuing_steps'),
  ('evaluating_results', 'waiting_for_dependencies'), ('evaluating_results', 'blocked_by_failures'),
  ('waiting_for_dependencies', 'evaluating_results'),
  ('waiting_for_retry', 'enqueuing_steps'),
  ('blocked_by_failures', 'error'), ('blocked_by_failures', 'resolved_manually'),
  ('error', 'pending');
-- Cancel from any non-terminal state; resolve manually from any non-terminal state and from error.
INSERT INTO tasker.task_state_transitions (from_state, to_state)
SELECT s, 'cancelled' FROM unnest(ARRAY['pending', 'initializing', 'enqueuing_steps', 'steps_in_process',
  'evaluating_results', 'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures']) AS s
ON CONFLICT DO NOTHING;
INSERT INTO tasker.task_state_transitions (from_state, to_state)
SELECT s, 'resolved_manually' FROM unnest(ARRAY['pending', 'initializing', 'enqueuing_steps', 'steps_in_process',
  'evaluating_results', 'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures', 'error']) AS s
ON CONFLICT DO NOTHING;

INSERT INTO tasker.step_state_transitions (from_state, to_state) VALUES
  ('pending', 'enqueued'), ('pending', 'in_progress'),
  ('enqueued', 'in_progress'),
  ('in_progress', 'enqueued_for_orchestration'), ('in_progress', 'enqueued_as_error_for_orchestration'),
  ('enqueued_for_orchestration', 'complete'), ('enqueued_for_orchestration', 'error'),
  ('enqueued_as_error_for_orchestration', 'waiting_for_retry'), ('enqueued_as_error_for_orchestration', 'error'),
  ('enqueued_as_error_for_orchestration', 'complete'),
  ('waiting_for_retry', 'pending'),
  ('error', 'pending'),
  ('pending', 'error'), ('enqueued', 'error'), ('in_progress', 'error'),
  ('pending', 'waiting_for_retry'), ('enqueued', 'waiting_for_retry'), ('in_progress', 'waiting_for_retry');
-- Operators: cancel, complete or resolve any step that is not already terminal-successful, failed ones included.
INSERT INTO tasker.step_state_transitions (from_state, to_state)
SELECT s, t FROM unnest(ARRAY['pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
  'enqueued_as_error_for_orchestration', 'waiting_for_retry', 'error']) AS s,
  unnest(ARRAY['cancelled', 'complete', 'resolved_manually']) AS t
ON CONFLICT DO NOTHING;
