-- tasker.uuid_generate_v7(), the default of every engine table's key, takes its random bits from random()
-- instead of gen_random_uuid().
--
-- Why: gen_random_uuid() asks OpenSSL for cryptographically strong bytes, about 2.3 microseconds a call here, and
-- the engine writes about eleven keys per one-step task (transitions, the result audit) and thirty per linear
-- four-step task: counted with bench/sql/countInstructions.sh, 4 % of a one-step task's instructions. The key's
-- random bits only have to make two keys of the same millisecond differ; no one has to be unable to guess them.
-- random() is PostgreSQL's per-connection generator (xoshiro128**, seeded from strong randomness when the
-- connection starts), and the same 74 random bits make a collision as unlikely as before. (A client that calls
-- setseed() on a connection that writes tasker rows makes that connection's keys repeat across connections seeded
-- alike; a repeated key fails its insert on the primary key, it is never stored twice.)
--
-- Layout, as before (RFC 9562 version 7): 48 bits of Unix milliseconds, the version nibble 7, 12 random bits,
-- the variant bits 10, 62 random bits (14 + 48).
CREATE OR REPLACE FUNCTION tasker.uuid_generate_v7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
  SELECT (lpad(to_hex(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
          || to_hex(28672 | floor(random() * 4096)::integer)
          || to_hex(32768 | floor(random() * 16384)::integer)
          || lpad(to_hex(floor(random() * 281474976710656)::bigint), 12, '0'))::uuid
$$;
