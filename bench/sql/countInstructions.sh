#!/usr/bin/env bash
# Counts the CPU instructions a PostgreSQL backend spends on one linear 4-step task, taken through the SQL calls
# the worker makes (the calls of linear_worker.sql: create_tasks, claim, complete_many_and_claim x4 with one result and
# no refill). Instructions, unlike milliseconds, do not depend on what else the machine is doing: two versions of
# the engine's SQL compare within about 1-3 %, where pgbench and the end-to-end benchmark move by 15 % from one run
# to the next on a shared 2-core machine. Fsync and waits are not instructions: this measures the SQL's CPU only.
#
#   bash bench/sql/countInstructions.sh            # prints: <instructions> instructions per linear task
#   COUNT_TASKS="10 50" bash bench/sql/countInstructions.sh
#   COUNT_SCENARIO=one_step bash bench/sql/countInstructions.sh   # per one-step task, in batches of 50
#
# Scenarios: `linear` (the default, above) and `one_step`: one-step tasks as a worker of capacity 50 runs them
# at full load, per batch: create_tasks with 50 tasks, claim_steps for 50, complete_many_and_claim with
# the 50 results (applied as a set) and room for 50 more. COUNT_TASKS then counts batches.
#
# How: a scratch cluster of its own (initdb in $COUNT_DIR, port $COUNT_PORT, fsync off) is migrated from this
# checkout and given the bench templates; then a single-user backend (postgres --single) runs under
# valgrind --tool=callgrind twice, with N1 and N2 tasks, and the difference divided by N2 - N1 is the figure
# (start-up, planning and the reset before the tasks cancel out). Needs valgrind and PostgreSQL's server binaries;
# PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
dir=${COUNT_DIR:-/tmp/tasker-callgrind}
port=${COUNT_PORT:-5499}
read -r n1 n2 <<<"${COUNT_TASKS:-10 50}"
scenario=${COUNT_SCENARIO:-linear}
case "$scenario" in linear) per=1 ;; one_step) per=50 ;; *) echo "countInstructions: COUNT_SCENARIO is linear or one_step, not '$scenario'" >&2; exit 1 ;; esac

command -v valgrind >/dev/null || { echo "countInstructions: valgrind is not on PATH (apt-get install valgrind)" >&2; exit 1; }
[ -x "$bin/postgres" ] || { echo "countInstructions: no PostgreSQL server binaries in '$bin' (set PG_BIN)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$1"; else bash -c "$1"; fi
}

# A fresh cluster each time: the figure must not depend on what an earlier run left in the tables.
if [ -d "$dir" ]; then as_owner "'$bin/pg_ctl' -D '$dir/data' -m fast stop" >/dev/null 2>&1 || true; rm -rf "$dir"; fi
mkdir -p "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
as_owner "'$bin/initdb' -A trust -U postgres -D '$dir/data'" >/dev/null
as_owner "'$bin/pg_ctl' -D '$dir/data' -o '-p $port -k $dir -c fsync=off -c autovacuum=off' -l '$dir/server.log' -w start" >/dev/null
url="postgres://postgres@127.0.0.1:$port/tasker_count"
if ! prepared=$(cd "$here/../.." && npx tsx bench/sql/prepareDatabase.ts "$url" 2>&1); then
  echo "countInstructions: preparing the scratch database failed:" >&2
  echo "$prepared" | grep -m3 -E 'Error|error' >&2
  as_owner "'$bin/pg_ctl' -D '$dir/data' -m fast -w stop" >/dev/null
  exit 1
fi
as_owner "'$bin/pg_ctl' -D '$dir/data' -m fast -w stop" >/dev/null

# The scenario's SQL calls in one DO block, each in its own transaction (COMMIT between them), as the worker
# makes them. Before them, empty tables.
script() {
  cat <<SQL
TRUNCATE tasker.tasks CASCADE;

SELECT pgmq.purge_queue('worker_bench_queue');

TRUNCATE pgmq.a_worker_bench_queue;

VACUUM;

SQL
  "${scenario}_tasks" "$1"
  cat <<SQL
DO \$\$
BEGIN
  IF (SELECT count(*) FROM tasker.tasks WHERE current_state <> 'complete') > 0 THEN
    RAISE EXCEPTION 'countInstructions: a task did not complete';
  END IF;
END \$\$;

SQL
}

# N linear tasks, one at a time. The creation's argument is JSON text parsed by the cast, as createTask sends it
# (a parameter in text form): building it with jsonb_build_object instead costs more per level of nesting than
# the parse, and would be counted as the engine's.
linear_tasks() {
  cat <<SQL
DO \$\$
DECLARE nt uuid; t uuid; r record; i int; k int; s1 uuid; s2 uuid; s3 uuid; s4 uuid;
  step_json constant text := '{"workflow_step_uuid": "%s", "name": "%s", "handler_callable": "Bench.Noop",
    "inputs": {}, "retryable": true, "max_attempts": 3, "backoff_strategy": "exponential", "backoff_base_ms": 1000,
    "max_backoff_ms": 30000, "timeout_seconds": null}';
BEGIN
  SELECT named_task_uuid INTO nt FROM tasker.named_tasks WHERE name = 'bench_linear';
  FOR i IN 1..$1 LOOP
    s1 := gen_random_uuid(); s2 := gen_random_uuid(); s3 := gen_random_uuid(); s4 := gen_random_uuid();
    SELECT x.task_uuid INTO t FROM tasker.create_tasks(format(
      '[{"task": {"named_task_uuid": "%s", "namespace_name": "bench", "context": {"seq": 1}, "identity_hash": "%s",
         "correlation_id": "%s", "tags": [], "priority": 0, "initiator": "countInstructions"},
        "steps": [%s, %s, %s, %s],
        "edges": [{"from": "%s", "to": "%s"}, {"from": "%s", "to": "%s"}, {"from": "%s", "to": "%s"}],
        "request_msg_id": null}]',
      nt, gen_random_uuid(), gen_random_uuid(),
      format(step_json, s1, 'step_1'), format(step_json, s2, 'step_2'), format(step_json, s3, 'step_3'),
      format(step_json, s4, 'step_4'),
      s1, s2, s2, s3, s3, s4)::jsonb, true) x;
    COMMIT;
    SELECT c.task_uuid AS tk, c.step_uuid AS st, c.attempt AS at INTO r
    FROM tasker.claim_steps('bench', 'count-worker', 30, 10) c;
    COMMIT;
    FOR k IN 1..4 LOOP
      SELECT c.task_uuid AS tk, c.step_uuid AS st, c.attempt AS at INTO r
      FROM tasker.complete_many_and_claim(
        jsonb_build_array(jsonb_build_object('task_uuid', r.tk, 'step_uuid', r.st, 'attempt', r.at, 'success', true,
                                             'payload', null, 'execution_ms', 0)),
        'count-worker', true, 'bench', 30, 10, true, false) c
      LIMIT 1;
      COMMIT;
    END LOOP;
  END LOOP;
END \$\$;

SQL
}

# N batches of 50 one-step tasks: created together, claimed together, completed together.
one_step_tasks() {
  cat <<SQL
DO \$\$
DECLARE nt uuid; res jsonb; i int; n int;
BEGIN
  SELECT named_task_uuid INTO nt FROM tasker.named_tasks WHERE name = 'bench_one_step';
  FOR i IN 1..$1 LOOP
    SELECT count(*) INTO n FROM tasker.create_tasks((
      SELECT jsonb_agg(jsonb_build_object(
        'task', jsonb_build_object('named_task_uuid', nt, 'namespace_name', 'bench', 'context', '{}'::jsonb,
                                   'identity_hash', gen_random_uuid()::text, 'correlation_id', gen_random_uuid(),
                                   'tags', '[]'::jsonb, 'priority', 0, 'initiator', 'countInstructions'),
        'steps', jsonb_build_array(jsonb_build_object(
          'workflow_step_uuid', gen_random_uuid(), 'name', 'only_step', 'handler_callable', 'Bench.Noop',
          'inputs', '{}'::jsonb, 'retryable', true, 'max_attempts', 3, 'backoff_strategy', 'exponential',
          'backoff_base_ms', 1000, 'max_backoff_ms', 30000, 'timeout_seconds', null)),
        'edges', '[]'::jsonb, 'request_msg_id', null))
      FROM generate_series(1, 50)), false);
    COMMIT;
    SELECT jsonb_agg(jsonb_build_object('task_uuid', c.task_uuid, 'step_uuid', c.step_uuid, 'attempt', c.attempt,
                                        'success', true, 'payload', null, 'execution_ms', 0))
    INTO res FROM tasker.claim_steps('bench', 'count-worker', 30, 50) c;
    COMMIT;
    SELECT count(*) INTO n FROM tasker.complete_many_and_claim(res, 'count-worker', true, 'bench', 30, 50, true, false);
    COMMIT;
  END LOOP;
END \$\$;

SQL
}

count() {
  script "$1" >"$dir/tasks_$1.sql"
  [ "$(id -u)" = 0 ] && chown postgres "$dir/tasks_$1.sql"
  as_owner "valgrind --tool=callgrind --callgrind-out-file='$dir/callgrind_$1.out' '$bin/postgres' --single -j \
    -D '$dir/data' -c fsync=off -c autovacuum=off tasker_count <'$dir/tasks_$1.sql' >'$dir/out_$1.txt' 2>'$dir/err_$1.txt'"
  if grep -q 'ERROR' "$dir/err_$1.txt"; then
    echo "countInstructions: the SQL failed with $1 tasks:" >&2
    grep -m3 -E 'ERROR|DETAIL|CONTEXT' "$dir/err_$1.txt" >&2
    exit 1
  fi
  awk '/^(summary|totals):/ { print $2; exit }' "$dir/callgrind_$1.out"
}

a=$(count "$n1")
b=$(count "$n2")
unit=$([ "$scenario" = linear ] && echo "linear task" || echo "one-step task")
echo "$(( (b - a) / ((n2 - n1) * per) )) instructions per $unit (callgrind: $a with $n1 $([ "$per" = 1 ] && echo tasks || echo "batches of $per"), $b with $n2; profiles in $dir)"
