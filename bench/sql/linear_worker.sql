-- One linear 4-step task through the SQL calls the worker makes (src/worker/worker.ts, applyResultsInline):
-- create_tasks with a batch of one (its signal in the commit, as createTask alone on its pool), claim_steps for the
-- first step, then complete_many_and_claim with one result per step and the worker's room (capacity 10: the step
-- just finished frees its slot), each result applied in its commit and the next step started in the same call.
-- One statement per transaction.
-- pgbench -n -M prepared -c1 -T10 -r -f bench/sql/linear_worker.sql <url>   (see bench/README.md)
SELECT named_task_uuid AS nt FROM tasker.named_tasks WHERE name = 'bench_linear'
\gset
WITH u AS (SELECT gen_random_uuid() a, gen_random_uuid() b, gen_random_uuid() c, gen_random_uuid() d),
s AS (SELECT jsonb_build_object('handler_callable', 'Bench.Noop', 'inputs', '{}'::jsonb, 'retryable', true, 'max_attempts', 3, 'backoff_strategy', 'exponential', 'backoff_base_ms', 1000, 'max_backoff_ms', 30000, 'timeout_seconds', null) AS b)
SELECT t.task_uuid FROM u, s, tasker.create_tasks(jsonb_build_array(jsonb_build_object(
  'task', jsonb_build_object('named_task_uuid', :nt::uuid, 'namespace_name', 'bench', 'context', '{"seq": 1}'::jsonb, 'identity_hash', gen_random_uuid()::text, 'correlation_id', gen_random_uuid(), 'tags', '[]'::jsonb, 'priority', 0, 'initiator', 'pgbench'),
  'steps', jsonb_build_array(s.b || jsonb_build_object('workflow_step_uuid', u.a, 'name', 'step_1'), s.b || jsonb_build_object('workflow_step_uuid', u.b, 'name', 'step_2'), s.b || jsonb_build_object('workflow_step_uuid', u.c, 'name', 'step_3'), s.b || jsonb_build_object('workflow_step_uuid', u.d, 'name', 'step_4')),
  'edges', jsonb_build_array(jsonb_build_object('from', u.a, 'to', u.b), jsonb_build_object('from', u.b, 'to', u.c), jsonb_build_object('from', u.c, 'to', u.d)),
  'request_msg_id', NULL)), true) t
\gset
SELECT task_uuid AS tk, step_uuid AS st, attempt AS at FROM tasker.claim_steps('bench', 'pgbench-worker', 30, 10)
\gset
SELECT task_uuid AS tk, step_uuid AS st, attempt AS at FROM tasker.complete_many_and_claim(jsonb_build_array(jsonb_build_object('task_uuid', :tk::uuid, 'step_uuid', :st::uuid, 'attempt', :at::int, 'success', true, 'payload', null, 'execution_ms', 0)), 'pgbench-worker', true, 'bench', 30, 10, true) LIMIT 1
\gset
SELECT task_uuid AS tk, step_uuid AS st, attempt AS at FROM tasker.complete_many_and_claim(jsonb_build_array(jsonb_build_object('task_uuid', :tk::uuid, 'step_uuid', :st::uuid, 'attempt', :at::int, 'success', true, 'payload', null, 'execution_ms', 0)), 'pgbench-worker', true, 'bench', 30, 10, true) LIMIT 1
\gset
SELECT task_uuid AS tk, step_uuid AS st, attempt AS at FROM tasker.complete_many_and_claim(jsonb_build_array(jsonb_build_object('task_uuid', :tk::uuid, 'step_uuid', :st::uuid, 'attempt', :at::int, 'success', true, 'payload', null, 'execution_ms', 0)), 'pgbench-worker', true, 'bench', 30, 10, true) LIMIT 1
\gset
SELECT task_uuid AS tk, step_uuid AS st, attempt AS at FROM tasker.complete_many_and_claim(jsonb_build_array(jsonb_build_object('task_uuid', :tk::uuid, 'step_uuid', :st::uuid, 'attempt', :at::int, 'success', true, 'payload', null, 'execution_ms', 0)), 'pgbench-worker', true, 'bench', 30, 10, true) LIMIT 1
\gset
SELECT current_state AS final FROM tasker.tasks WHERE task_uuid = :task_uuid::uuid
\gset
