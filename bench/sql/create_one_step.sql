-- Task creation as createTask does it on a busy pool: create_tasks with a batch of one and p_notify false (one
-- durable commit without NOTIFY), then the wake-up signal in a transaction of its own (tasker.signal_sent). Run it
-- with -c8 to see the throughput of concurrent creation; no worker consumes, so the queue grows.
SELECT named_task_uuid AS nt FROM tasker.named_tasks WHERE name = 'bench_one_step'
\gset
WITH u AS (SELECT gen_random_uuid() a),
s AS (SELECT jsonb_build_object('handler_callable', 'Bench.Noop', 'inputs', '{}'::jsonb, 'retryable', true, 'max_attempts', 3, 'backoff_strategy', 'exponential', 'backoff_base_ms', 1000, 'max_backoff_ms', 30000, 'timeout_seconds', null) AS b)
SELECT t.queue, t.msg_ids FROM u, s, tasker.create_tasks(jsonb_build_array(jsonb_build_object(
  'task', jsonb_build_object('named_task_uuid', :nt::uuid, 'namespace_name', 'bench', 'context', '{"seq": 1}'::jsonb, 'identity_hash', gen_random_uuid()::text, 'correlation_id', gen_random_uuid(), 'tags', '[]'::jsonb, 'priority', 0, 'initiator', 'pgbench'),
  'steps', jsonb_build_array(s.b || jsonb_build_object('workflow_step_uuid', u.a, 'name', 'only_step')),
  'edges', '[]'::jsonb,
  'request_msg_id', NULL)), false) t
\gset
SELECT tasker.signal_sent(:queue, :msg_ids::bigint[])
