-- Lookups of queue messages by msg_id can only go through the primary key.
--
-- 0012 gave every queue table an index on (vt, msg_id), so that a read takes the earliest visible messages in
-- order and stops. But that index holds msg_id too, and "msg_id = ANY(...)" or "msg_id = $1" can be checked on
-- its second column while scanning all of it. The hot path plans its static statements once per connection,
-- usually on an empty queue (every engine start begins so, and the bench empties its queues), and there such a
-- scan costs the same as a primary-key lookup; the planner took it for the read's UPDATE (0017's "by key"
-- form included), for the archive of a finished step's message and for the heartbeat's set_vt. Each then read
-- the whole index: 44 ms a read in the engine bench behind 50,000 queued messages, the orchestrator mode
-- falling to 781 one-step tasks/s, and 448 blocks instead of 40 to take 5 of 20,007 messages
-- (test/integration/pgmqReadCost.test.ts).
--
-- Now the index's second column is the expression (msg_id + 0): the same order, which reads ask for as
-- "ORDER BY vt, msg_id + 0", but no condition on msg_id can use it, so the primary key is the only index left
-- for them, whatever the plan was made on.
--
-- Functions are rewritten in place by tasker._rewrite_function, a helper kept for later migrations (0013-0017
-- each carried a throwaway copy of it).

-- ------------------------------------------------------------------------------------------------ the helper

-- Replaces p_old by p_new in the definition of p_fn and re-creates it. The text must occur exactly
-- p_expected times, so a rewrite cannot silently miss (an earlier migration changed the text) or hit more than
-- was meant. The signature must not change (CREATE OR REPLACE keeps the function's oid and grants).
CREATE FUNCTION tasker._rewrite_function(p_fn regprocedure, p_old text, p_new text, p_expected integer DEFAULT 1)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_def text := pg_get_functiondef(p_fn);
  v_found integer := (length(v_def) - length(replace(v_def, p_old, ''))) / length(p_old);
BEGIN
  IF v_found <> p_expected THEN
    RAISE EXCEPTION 'rewriting %: the text to replace occurs % times, expected %: %', p_fn, v_found, p_expected, p_old;
  END IF;
  EXECUTE replace(v_def, p_old, p_new);
END;
$$;

-- ------------------------------------------------------------------------------------------------ the index

-- New queues.
SELECT tasker._rewrite_function('pgmq._create(text, boolean)'::regprocedure,
  '(vt, msg_id)', '(vt, (msg_id + 0))');

-- Existing queues: rebuilt under the same name. A queue table holds only live messages, so this is quick.
DO $$
DECLARE
  q record;
BEGIN
  FOR q IN
    SELECT 'q_' || m.queue_name AS qt FROM pgmq.meta m
    WHERE to_regclass(format('pgmq.%I', 'q_' || m.queue_name)) IS NOT NULL
    ORDER BY 1
  LOOP
    EXECUTE format('CREATE INDEX %I ON pgmq.%I (vt, (msg_id + 0))', q.qt || '_vt_new', q.qt);
    EXECUTE format('DROP INDEX IF EXISTS pgmq.%I', q.qt || '_vt_idx');
    EXECUTE format('ALTER INDEX pgmq.%I RENAME TO %I', q.qt || '_vt_new', q.qt || '_vt_idx');
  END LOOP;
END;
$$;

-- ------------------------------------------------------------------------------------------------ the reads

-- The reads ask for the index's order, so the scan still stops after the messages it takes.
SELECT tasker._rewrite_function('pgmq.read(text, integer, integer, jsonb)'::regprocedure,
  'ORDER BY vt, msg_id', 'ORDER BY vt, msg_id + 0');
SELECT tasker._rewrite_function('pgmq.pop(text, integer)'::regprocedure,
  'ORDER BY vt, msg_id', 'ORDER BY vt, msg_id + 0');
SELECT tasker._rewrite_function('tasker._refresh_queue_access()'::regprocedure,
  'ORDER BY c.vt, c.msg_id', 'ORDER BY c.vt, c.msg_id + 0');

-- _q_read is generated: make it again from the rewritten generator.
SELECT tasker._refresh_queue_access();
