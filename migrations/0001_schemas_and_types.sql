-- The schemas and the types that the functions' signatures name. This file runs before the function files
-- (src/db/sql/*.sql), so it holds nothing that needs a function; every table comes after them.
--
-- No extension is needed: the queue is plain PL/pgSQL and UUIDv7 keys come from tasker.uuid_generate_v7(),
-- so Tasker runs on stock PostgreSQL 14+ and on PGlite.

-- pgmq: a PGMQ-compatible message queue. Function names, arguments, result columns and table shapes follow
-- PGMQ 1.5+, so an existing PGMQ client pointed at this database works unchanged.
CREATE SCHEMA pgmq;

-- tasker: the workflow engine's tables and functions. The migrator creates it before any migration runs, for its
-- own bookkeeping tables (schema_migrations, schema_function_files).
CREATE SCHEMA IF NOT EXISTS tasker;

-- ------------------------------------------------------------------------------------------------ pgmq types

-- One message as pgmq.read, pop and set_vt return it.
CREATE TYPE pgmq.message_record AS (
  msg_id      bigint,
  read_ct     integer,
  enqueued_at timestamptz,
  vt          timestamptz,
  message     jsonb,
  headers     jsonb
);

-- One row of pgmq.metrics and pgmq.metrics_all.
CREATE TYPE pgmq.metrics_result AS (
  queue_name           text,
  queue_length         bigint,
  newest_msg_age_sec   integer,
  oldest_msg_age_sec   integer,
  total_messages       bigint,
  scrape_time          timestamptz,
  queue_visible_length bigint
);

-- One row of pgmq.list_queues: the shape of pgmq.meta.
CREATE TYPE pgmq.queue_record AS (
  queue_name     varchar,
  is_partitioned boolean,
  is_unlogged    boolean,
  created_at     timestamptz
);

-- ------------------------------------------------------------------------------------------------ tasker domains

-- The value checks of tasks and workflow_steps are domains, not table CHECK constraints. PostgreSQL parses a
-- table's CHECK constraints from their stored text each time a statement that writes the table starts, and
-- checks every one on every row it writes, whichever columns changed; the hot path writes these two tables in
-- almost every statement, and re-parsing the state lists cost 11 % of a linear task's instructions (callgrind).
-- A domain's check is parsed once per connection (the type cache) and runs only where a value is assigned to
-- the column. The SQLSTATE of a violation is the same (23514, check_violation), and clients see the columns as
-- their base types (text, integer).
--
-- The state names are mirrored in src/domain/state; the allowed transitions between them are the rows of
-- tasker.task_state_transitions and tasker.step_state_transitions.

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

-- The strategies of tasker.backoff_delay_ms (src/db/sql/step_results.sql): exponential base*2^(attempt-1), linear
-- base*attempt, fixed base.
CREATE DOMAIN tasker.backoff_strategy AS text
  CONSTRAINT backoff_strategy_check CHECK (VALUE IN ('exponential', 'linear', 'fixed'));
