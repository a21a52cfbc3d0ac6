-- One one-step task: create_tasks with a batch of one, claim_steps, then complete_many_and_claim with the one result,
-- applied inline and claiming nothing more (limit 0, no refill) (three transactions).
SELECT named_task_uuid AS nt FROM tasker.named_tasks WHERE name = 'bench_one_step'
\gset
WITH u AS (SELECT gen_random_uuid() a),
s AS (SELECT jsonb_build_object('handler_callable', 'Bench.Noop', 'inputs', '{}'::jsonb, 'retryable', true, 'max_attempts', 3, 'backoff_strategy', 'exponential', 'backoff_base_ms', 1000, 'max_backoff_ms', 30000, 'timeout_seconds', null) AS b)
SELECT t.task_uuid FROM u, s, tasker.create_tasks(jsonb_build_array(jsonb_build_object(
  'task', jsonb_build_object('named_task_uuid', :nt::uuid, 'namespace_name', 'bench', 'context', '{"seq": 1}'::jsonb, 'identity_hash', gen_random_uuid()::text, 'correlation_id', gen_random_uuid(), 'tags', '[]'::jsonb, 'priority', 0, 'initiator', 'pgbench'),
  'steps', jsonb_build_array(s.b || jsonb_build_object('workflow_step_uuid', u.a, 'name', 'only_step')),
  'edges', '[]'::jsonb,
  'request_msg_id', NULL)), true) t
\gset
SELECT task_uuid AS tk, step_uuid AS st, attempt AS at FROM tasker.claim_steps('bench', 'pgbench-worker', 30, 1)
\gset
SELECT outcomes ->> :st::text AS outcome FROM tasker.complete_many_and_claim(jsonb_build_array(jsonb_build_object('task_uuid', :tk::uuid, 'step_uuid', :st::uuid, 'attempt', :at::int, 'success', true, 'payload', null, 'execution_ms', 0)), 'pgbench-worker', true, 'bench', 30, 0, true, false) WHERE step_uuid IS NULL
\gset
