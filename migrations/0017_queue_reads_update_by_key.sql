-- A queue read updates the messages it locked by naming them by key, not by joining them to the queue table.
--
-- A read is "WITH cte AS (SELECT msg_id ... ORDER BY vt, msg_id LIMIT n FOR UPDATE SKIP LOCKED) UPDATE ... SET vt
-- = ... FROM cte WHERE m.msg_id = cte.msg_id". tasker._q_read runs it as a static statement, so under the
-- settings of the hot-path entry points that call it (a generic plan, no hash or merge joins) the join is
-- planned once per connection, usually on an empty queue: every engine start begins so, and so does each
-- scenario of the engine benchmark. On an empty queue, reading the queue's whole primary key and filtering it
-- against the locked rows costs the same as looking each row up, and the planner took the scan: with 4,000
-- messages queued, the engine benchmark's worker read 13,000 index entries and spent 8 ms on each read of 41
-- messages (found with auto_explain; test/integration/pgmqReadCost.test.ts reproduces it: 12 index entries to
-- take 5 of 7 messages, 4,017 to take 5 of 4,007).
--
-- Now the UPDATE (and pop's DELETE) finds its rows with "m.msg_id = ANY(ARRAY(SELECT cte.msg_id FROM cte))":
-- no join is left to plan, and the primary key is the only way to the rows (0011's and 0013's rule). pgmq.read
-- and pgmq.pop plan each call anew and were not caught, but take the same form. The functions and the generator
-- of _q_read are rewritten in place (as 0013 does); each rewrite must match exactly once, or this fails.
CREATE FUNCTION pg_temp.rewrite_once(p_fn regprocedure, p_old text, p_new text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_def text := pg_get_functiondef(p_fn);
  v_found integer := (length(v_def) - length(replace(v_def, p_old, ''))) / length(p_old);
BEGIN
  IF v_found <> 1 THEN
    RAISE EXCEPTION 'migration 0017: % holds % copies of the text to rewrite, expected 1: %', p_fn, v_found, p_old;
  END IF;
  EXECUTE replace(v_def, p_old, p_new);
END;
$$;

SELECT pg_temp.rewrite_once('tasker._refresh_queue_access()'::regprocedure,
  'FROM cte WHERE m.msg_id = cte.msg_id', 'WHERE m.msg_id = ANY(ARRAY(SELECT cte.msg_id FROM cte))');
SELECT pg_temp.rewrite_once('pgmq.read(text, integer, integer, jsonb)'::regprocedure,
  'FROM cte WHERE m.msg_id = cte.msg_id', 'WHERE m.msg_id = ANY(ARRAY(SELECT cte.msg_id FROM cte))');
SELECT pg_temp.rewrite_once('pgmq.pop(text, integer)'::regprocedure,
  'USING cte WHERE m.msg_id = cte.msg_id', 'WHERE m.msg_id = ANY(ARRAY(SELECT cte.msg_id FROM cte))');

-- _q_read is generated: make it again from the rewritten generator.
SELECT tasker._refresh_queue_access();
