-- Key generation: UUIDv7 (RFC 9562) without extensions. tasker.uuid_generate_v7() is the default of every
-- engine table's key (task_namespaces, named_tasks, tasks, task_transitions, workflow_steps,
-- workflow_step_edges, workflow_step_transitions, workflow_step_result_audit, tasks_dlq) and is called by
-- create_tasks. Keys made in TypeScript come from src/domain/identity/uuidV7.ts,
-- also version 7. Because a key starts with its creation time, the primary key orders rows by age:
-- retention (tasker.purge_finished_tasks) finds old tasks through it with tasker._uuid_v7_floor.

-- A new UUIDv7. Layout: 48 bits of Unix milliseconds (clock_timestamp(), so keys made late in a long
-- transaction carry their own time), the version nibble 7, 12 random bits, the variant bits 10, 62 random bits
-- (14 + 48).
--
-- The random bits come from random(), not gen_random_uuid(): gen_random_uuid() asks OpenSSL for
-- cryptographically strong bytes, about 2.3 microseconds a call here, and the engine writes about eleven keys
-- per one-step task (transitions, the result audit) and thirty per linear four-step task: counted with
-- bench/sql/countInstructions.sh, 4 % of a one-step task's instructions. The random bits only have to make two
-- keys of the same millisecond differ; no one has to be unable to guess them. random() is PostgreSQL's
-- per-connection generator (xoshiro128**, seeded from strong randomness when the connection starts), and 74
-- random bits make a collision as unlikely as gen_random_uuid's would. (A client that calls setseed() on a
-- connection that writes tasker rows makes that connection's keys repeat across connections seeded alike; a
-- repeated key fails its insert on the primary key, it is never stored twice.)
CREATE OR REPLACE FUNCTION tasker.uuid_generate_v7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
  SELECT (lpad(to_hex(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
          || to_hex(28672 | floor(random() * 4096)::integer)
          || to_hex(32768 | floor(random() * 16384)::integer)
          || lpad(to_hex(floor(random() * 281474976710656)::bigint), 12, '0'))::uuid
$$;

-- The smallest UUIDv7 of the millisecond p_at (its time bits, then zeros): every version-7 key made before p_at
-- sorts below it. tasker.purge_finished_tasks bounds its scan of tasks' primary key with it: a task that
-- finished before the cutoff was created before it. src/db/queries/taskMetrics.ts (uuidV7Floor) computes the
-- same in TypeScript.
CREATE OR REPLACE FUNCTION tasker._uuid_v7_floor(p_at timestamptz) RETURNS uuid
LANGUAGE sql IMMUTABLE AS $$
  SELECT (lpad(to_hex(floor(extract(epoch FROM p_at) * 1000)::bigint), 12, '0') || repeat('0', 20))::uuid
$$;
