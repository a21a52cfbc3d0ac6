-- linear_inline.sql as the worker ran it before migration 0006: complete_step(..., inline) and claim_steps in
-- one statement. Runs against 0004 and later, for before/after comparisons of the same workload.
SELECT named_task_uuid AS nt FROM tasker.named_tasks WHERE name = 'bench_linear'
\gset
WITH u AS (SELECT gen_random_uuid() a, gen_random_uuid() b, gen_random_uuid() c, gen_random_uuid() d),
s AS (SELECT jsonb_build_object('handler_callable', 'Bench.Noop', 'inputs', '{}'::jsonb, 'retryable', true, 'max_attempts', 3, 'backoff_strategy', 'exponential', 'backoff_base_ms', 1000, 'max_backoff_ms', 30000, 'timeout_seconds', null) AS b)
SELECT t.task_uuid FROM u, s, tasker.create_task(
  jsonb_build_object('named_task_uuid', :nt::uuid, 'namespace_name', 'bench', 'context', '{"seq": 1}'::jsonb, 'identity_hash', gen_random_uuid()::text, 'correlation_id', gen_random_uuid(), 'tags', '[]'::jsonb, 'priority', 0, 'initiator', 'pgbench'),
  jsonb_build_array(s.b || jsonb_build_object('workflow_step_uuid', u.a, 'name', 'step_1'), s.b || jsonb_build_object('workflow_step_uuid', u.b, 'name', 'step_2'), s.b || jsonb_build_object('workflow_step_uuid', u.c, 'name', 'step_3'), s.b || jsonb_build_object('workflow_step_uuid', u.d, 'name', 'step_4')),
  jsonb_build_array(jsonb_build_object('from', u.a, 'to', u.b), jsonb_build_object('from', u.b, 'to', u.c), jsonb_build_object('from', u.c, 'to', u.d)), NULL) t
\gset
SELECT task_uuid AS tk, step_uuid AS st, attempt AS at FROM tasker.claim_steps('bench', 'pgbench-worker', 30, 1)
\gset
WITH done AS MATERIALIZED (SELECT tasker.complete_step(:tk::uuid, :st::uuid, :at::int, true, 'null'::jsonb, 'pgbench-worker', 0, true) AS outcome) SELECT done.outcome, c.task_uuid AS tk, c.step_uuid AS st, c.attempt AS at FROM done LEFT JOIN LATERAL tasker.claim_steps('bench', 'pgbench-worker', 30, 1, false) c ON done.outcome IS NOT NULL
\gset
WITH done AS MATERIALIZED (SELECT tasker.complete_step(:tk::uuid, :st::uuid, :at::int, true, 'null'::jsonb, 'pgbench-worker', 0, true) AS outcome) SELECT done.outcome, c.task_uuid AS tk, c.step_uuid AS st, c.attempt AS at FROM done LEFT JOIN LATERAL tasker.claim_steps('bench', 'pgbench-worker', 30, 1, false) c ON done.outcome IS NOT NULL
\gset
WITH done AS MATERIALIZED (SELECT tasker.complete_step(:tk::uuid, :st::uuid, :at::int, true, 'null'::jsonb, 'pgbench-worker', 0, true) AS outcome) SELECT done.outcome, c.task_uuid AS tk, c.step_uuid AS st, c.attempt AS at FROM done LEFT JOIN LATERAL tasker.claim_steps('bench', 'pgbench-worker', 30, 1, false) c ON done.outcome IS NOT NULL
\gset
WITH done AS MATERIALIZED (SELECT tasker.complete_step(:tk::uuid, :st::uuid, :at::int, true, 'null'::jsonb, 'pgbench-worker', 0, true) AS outcome) SELECT done.outcome, c.task_uuid AS tk, c.step_uuid AS st, c.attempt AS at FROM done LEFT JOIN LATERAL tasker.claim_steps('bench', 'pgbench-worker', 30, 1, false) c ON done.outcome IS NOT NULL
\gset
SELECT current_state AS final FROM tasker.tasks WHERE task_uuid = :task_uuid::uuid
\gset
