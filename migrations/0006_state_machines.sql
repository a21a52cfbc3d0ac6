-- The allowed (from, to) pairs of the task and step state machines. The transition functions refuse any other
-- pair: a wrong transition is a bug, caught where it happens.
--
-- The same machines are kept as data in src/domain/state (taskStates.ts, stepStates.ts), which name the event
-- behind each pair; test/integration/stateTransitionTables.test.ts keeps these rows and those tables equal.
-- ON CONFLICT DO NOTHING below: a pair that two rules allow is one row.

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

-- ------------------------------------------------------------------------------------------------ tasks

-- The orchestration path (reference §2.1), tasker-core's direct paths from steps_in_process included.
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
  -- An operator brings a failed task back to life (its steps keep their states).
  ('error', 'pending');

-- From every non-terminal state: cancel, resolve manually, and fail on a staleness timeout (the detector
-- fails a task from whatever state it is stuck in, with a DLQ entry for an operator). Of the terminal states
-- only error accepts anything: a reset (above) or a manual resolution.
INSERT INTO tasker.task_state_transitions (from_state, to_state)
SELECT s, t
FROM unnest(ARRAY['pending', 'initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
                  'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures']) AS s,
     unnest(ARRAY['cancelled', 'resolved_manually', 'error']) AS t
ON CONFLICT DO NOTHING;
INSERT INTO tasker.task_state_transitions (from_state, to_state) VALUES ('error', 'resolved_manually')
ON CONFLICT DO NOTHING;

-- ------------------------------------------------------------------------------------------------ steps

-- tasker-core's step table (reference §2.2), its direct paths included (pending -> in_progress), plus
-- in_progress -> waiting_for_retry for a step whose worker's lease ran out (the worker died) and that may run
-- again. error -> pending: the guarded retry, or an operator's reset_for_retry.
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
  ('pending', 'waiting_for_retry'), ('enqueued', 'waiting_for_retry'), ('in_progress', 'waiting_for_retry'),
  -- A step waiting for a retry that will no longer happen fails with its task (staleness timeout).
  ('waiting_for_retry', 'error');

-- The machine lets an operator cancel, complete or resolve any step that is not already finished
-- successfully, failed ones included. (tasker.apply_step_action narrows this further to the states in which
-- no handler is running or about to run.)
INSERT INTO tasker.step_state_transitions (from_state, to_state)
SELECT s, t
FROM unnest(ARRAY['pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
                  'enqueued_as_error_for_orchestration', 'waiting_for_retry', 'error']) AS s,
     unnest(ARRAY['cancelled', 'complete', 'resolved_manually']) AS t
ON CONFLICT DO NOTHING;
