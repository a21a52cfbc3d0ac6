CREATE SCHEMA pgmq;
CREATE SCHEMA tasker;
CREATE TYPE pgmq.message_record AS (
	msg_id bigint,
	read_ct integer,
	enqueued_at timestamp with time zone,
	vt timestamp with time zone,
	message jsonb,
	headers jsonb
);
CREATE TYPE pgmq.metrics_result AS (
	queue_name text,
	queue_length bigint,
	newest_msg_age_sec integer,
	oldest_msg_age_sec integer,
	total_messages bigint,
	scrape_time timestamp with time zone,
	queue_visible_length bigint
);
CREATE TYPE pgmq.queue_record AS (
	queue_name character varying,
	is_partitioned boolean,
	is_unlogged boolean,
	created_at timestamp with time zone
);
CREATE DOMAIN tasker.backoff_strategy AS text
	CONSTRAINT backoff_strategy_check CHECK ((VALUE = ANY (ARRAY['exponential'::text, 'linear'::text, 'fixed'::text])));
CREATE DOMAIN tasker.step_max_attempts AS integer
	CONSTRAINT step_max_attempts_check CHECK (((VALUE >= 1) AND (VALUE <= 100)));
CREATE DOMAIN tasker.step_state AS text
	CONSTRAINT step_state_check CHECK ((VALUE = ANY (ARRAY['pending'::text, 'enqueued'::text, 'in_progress'::text, 'enqueued_for_orchestration'::text, 'enqueued_as_error_for_orchestration'::text, 'waiting_for_retry'::text, 'complete'::text, 'error'::text, 'cancelled'::text, 'resolved_manually'::text])));
CREATE DOMAIN tasker.task_priority AS integer
	CONSTRAINT task_priority_check CHECK (((VALUE >= '-100'::integer) AND (VALUE <= 100)));
CREATE DOMAIN tasker.task_state AS text
	CONSTRAINT task_state_check CHECK ((VALUE = ANY (ARRAY['pending'::text, 'initializing'::text, 'enqueuing_steps'::text, 'steps_in_process'::text, 'evaluating_results'::text, 'waiting_for_dependencies'::text, 'waiting_for_retry'::text, 'blocked_by_failures'::text, 'complete'::text, 'error'::text, 'cancelled'::text, 'resolved_manually'::text])));
CREATE FUNCTION pgmq._create(queue_name text, unlogged boolean) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
  qtable text := pgmq.format_table_name(queue_name, 'q');
  atable text := pgmq.format_table_name(queue_name, 'a');
BEGIN
  -- Two sessions creating the same queue at once would race on the catalog; serialize them per name.
  PERFORM pg_advisory_xact_lock(hashtext('pgmq.create'), hashtext(queue_name));
  IF EXISTS (SELECT 1 FROM pgmq.meta m WHERE m.queue_name = _create.queue_name) THEN
    RETURN;
  END IF;
  EXECUTE format(
    'CREATE %s TABLE IF NOT EXISTS pgmq.%I (
       msg_id      bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
       read_ct     integer     NOT NULL DEFAULT 0,
       enqueued_at timestamptz NOT NULL DEFAULT now(),
       vt          timestamptz NOT NULL,
       message     jsonb,
       headers     jsonb
     )', CASE WHEN unlogged THEN 'UNLOGGED' ELSE '' END, qtable);
  EXECUTE format(
    'CREATE TABLE IF NOT EXISTS pgmq.%I (
       msg_id      bigint PRIMARY KEY,
       read_ct     integer     NOT NULL DEFAULT 0,
       enqueued_at timestamptz NOT NULL DEFAULT now(),
       archived_at timestamptz NOT NULL DEFAULT now(),
       vt          timestamptz NOT NULL,
       message     jsonb,
       headers     jsonb
     )', atable);
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (vt, (msg_id + 0))', qtable || '_vt_idx', qtable);
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (archived_at)', 'archived_at_idx_' || queue_name, atable);
  INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged)
  VALUES (queue_name, false, unlogged)
  ON CONFLICT DO NOTHING;
END;
$$;
CREATE FUNCTION pgmq._delay_to_vt(delay integer) RETURNS timestamp with time zone
    LANGUAGE plpgsql
    AS $$
BEGIN
  IF delay IS NULL OR delay < 0 THEN
    RAISE EXCEPTION 'delay must be 0 or more seconds, got %', coalesce(delay::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN clock_timestamp() + make_interval(secs => delay);
END;
$$;
CREATE FUNCTION pgmq._queue_table(queue_name text) RETURNS text
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
  table_name text := pgmq.format_table_name(queue_name, 'q');
BEGIN
  IF to_regclass(format('pgmq.%I', table_name)) IS NULL THEN
    RAISE EXCEPTION 'queue % does not exist: create it first with pgmq.create(%)', quote_literal(queue_name), quote_literal(queue_name)
      USING ERRCODE = 'undefined_table';
  END IF;
  RETURN table_name;
END;
$$;
CREATE FUNCTION pgmq._send_batch(queue_name text, msgs jsonb[], headers jsonb[], vt timestamp with time zone) RETURNS SETOF bigint
    LANGUAGE plpgsql
    AS $_$
BEGIN
  IF headers IS NOT NULL AND cardinality(headers) <> cardinality(msgs) THEN
    RAISE EXCEPTION 'send_batch: % messages but % headers; pass one header object per message', cardinality(msgs), cardinality(headers)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN QUERY EXECUTE format(
    'INSERT INTO pgmq.%I (vt, message, headers)
     SELECT $2, m.message, CASE WHEN $3 IS NULL THEN NULL ELSE ($3)[m.ord] END
     FROM unnest($1) WITH ORDINALITY AS m(message, ord)
     ORDER BY m.ord
     RETURNING msg_id', pgmq._queue_table(queue_name))
  USING msgs, vt, headers;
END;
$_$;
CREATE FUNCTION pgmq.archive(queue_name text, msg_ids bigint[]) RETURNS SETOF bigint
    LANGUAGE plpgsql
    AS $_$
BEGIN
  RETURN QUERY EXECUTE format(
    'WITH archived AS (
       DELETE FROM pgmq.%I WHERE msg_id = ANY($1)
       RETURNING msg_id, read_ct, enqueued_at, vt, message, headers
     )
     INSERT INTO pgmq.%I (msg_id, read_ct, enqueued_at, vt, message, headers)
     SELECT msg_id, read_ct, enqueued_at, vt, message, headers FROM archived
     RETURNING msg_id', pgmq._queue_table(queue_name), pgmq.format_table_name(queue_name, 'a'))
  USING msg_ids;
END;
$_$;
CREATE FUNCTION pgmq.archive(queue_name text, msg_id bigint) RETURNS boolean
    LANGUAGE sql
    AS $$ SELECT EXISTS (SELECT 1 FROM pgmq.archive(queue_name, ARRAY[msg_id])) $$;
CREATE FUNCTION pgmq."create"(queue_name text) RETURNS void
    LANGUAGE sql
    AS $$ SELECT pgmq._create(queue_name, false) $$;
CREATE FUNCTION pgmq.create_non_partitioned(queue_name text) RETURNS void
    LANGUAGE sql
    AS $$ SELECT pgmq._create(queue_name, false) $$;
CREATE FUNCTION pgmq.create_partitioned(queue_name text, partition_interval text DEFAULT '10000'::text, retention_interval text DEFAULT '100000'::text) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
  RAISE EXCEPTION 'partitioned queues need pg_partman, which Tasker does not require: use pgmq.create(%)', quote_literal(queue_name)
    USING ERRCODE = 'feature_not_supported';
END;
$$;
CREATE FUNCTION pgmq.create_unlogged(queue_name text) RETURNS void
    LANGUAGE sql
    AS $$ SELECT pgmq._create(queue_name, true) $$;
CREATE FUNCTION pgmq.delete(queue_name text, msg_ids bigint[]) RETURNS SETOF bigint
    LANGUAGE plpgsql
    AS $_$
BEGIN
  RETURN QUERY EXECUTE format('DELETE FROM pgmq.%I WHERE msg_id = ANY($1) RETURNING msg_id', pgmq._queue_table(queue_name))
  USING msg_ids;
END;
$_$;
CREATE FUNCTION pgmq.delete(queue_name text, msg_id bigint) RETURNS boolean
    LANGUAGE sql
    AS $$ SELECT EXISTS (SELECT 1 FROM pgmq.delete(queue_name, ARRAY[msg_id])) $$;
CREATE FUNCTION pgmq.detach_archive(queue_name text) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
  PERFORM pgmq._queue_table(queue_name);
END;
$$;
CREATE FUNCTION pgmq.drop_queue(queue_name text, partitioned boolean DEFAULT false) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
BEGIN
  PERFORM pgmq.validate_queue_name(queue_name);
  PERFORM pg_advisory_xact_lock(hashtext('pgmq.create'), hashtext(queue_name));
  IF NOT EXISTS (SELECT 1 FROM pgmq.meta m WHERE m.queue_name = drop_queue.queue_name) THEN
    RETURN false;
  END IF;
  EXECUTE format('DROP TABLE IF EXISTS pgmq.%I', pgmq.format_table_name(queue_name, 'q'));
  EXECUTE format('DROP TABLE IF EXISTS pgmq.%I', pgmq.format_table_name(queue_name, 'a'));
  DELETE FROM pgmq.meta m WHERE m.queue_name = drop_queue.queue_name;
  RETURN true;
END;
$$;
CREATE FUNCTION pgmq.format_table_name(queue_name text, prefix text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    AS $$
BEGIN
  PERFORM pgmq.validate_queue_name(queue_name);
  RETURN prefix || '_' || queue_name;
END;
$$;
CREATE FUNCTION pgmq.list_queues() RETURNS SETOF pgmq.queue_record
    LANGUAGE sql STABLE
    AS $$
  SELECT queue_name, is_partitioned, is_unlogged, created_at FROM pgmq.meta ORDER BY queue_name
$$;
CREATE FUNCTION pgmq.metrics(queue_name text) RETURNS pgmq.metrics_result
    LANGUAGE plpgsql
    AS $_$
DECLARE
  qtable text := pgmq._queue_table(queue_name);
  result pgmq.metrics_result;
BEGIN
  EXECUTE format(
    'WITH q AS (
       SELECT count(*) AS queue_length,
              count(*) FILTER (WHERE vt <= clock_timestamp()) AS queue_visible_length,
              extract(epoch FROM (now() - max(enqueued_at)))::integer AS newest_msg_age_sec,
              extract(epoch FROM (now() - min(enqueued_at)))::integer AS oldest_msg_age_sec
       FROM pgmq.%I
     ), s AS (
       SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS total_messages FROM pgmq.%I
     )
     SELECT $1::text, q.queue_length, q.newest_msg_age_sec, q.oldest_msg_age_sec, s.total_messages,
            now(), q.queue_visible_length
     FROM q, s', qtable, qtable || '_msg_id_seq')
  INTO result
  USING queue_name;
  RETURN result;
END;
$_$;
CREATE FUNCTION pgmq.metrics_all() RETURNS SETOF pgmq.metrics_result
    LANGUAGE plpgsql
    AS $$
DECLARE
  name text;
BEGIN
  FOR name IN SELECT m.queue_name FROM pgmq.meta m ORDER BY m.queue_name LOOP
    RETURN NEXT pgmq.metrics(name);
  END LOOP;
END;
$$;
CREATE FUNCTION pgmq.pop(queue_name text, qty integer DEFAULT 1) RETURNS SETOF pgmq.message_record
    LANGUAGE plpgsql
    AS $_$
BEGIN
  RETURN QUERY EXECUTE format(
    'WITH cte AS (
       SELECT msg_id FROM pgmq.%1$I
       WHERE vt <= $2
       ORDER BY vt, msg_id + 0
       LIMIT $1
       FOR UPDATE SKIP LOCKED
     ), popped AS (
       DELETE FROM pgmq.%1$I m WHERE m.msg_id = ANY(ARRAY(SELECT cte.msg_id FROM cte))
       RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers
     )
     SELECT * FROM popped ORDER BY msg_id', pgmq._queue_table(queue_name))
  USING qty, clock_timestamp();
END;
$_$;
CREATE FUNCTION pgmq.purge_queue(queue_name text) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
  deleted bigint;
BEGIN
  EXECUTE format('DELETE FROM pgmq.%I', pgmq._queue_table(queue_name));
  GET DIAGNOSTICS deleted = ROW_COUNT;
  RETURN deleted;
END;
$$;
CREATE FUNCTION pgmq.read(queue_name text, vt integer, qty integer, conditional jsonb DEFAULT '{}'::jsonb) RETURNS SETOF pgmq.message_record
    LANGUAGE plpgsql
    AS $_$
DECLARE
  qtable text := pgmq._queue_table(queue_name);
BEGIN
  IF vt IS NULL OR vt < 0 THEN
    RAISE EXCEPTION 'read: vt must be 0 or more seconds, got %', coalesce(vt::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF qty IS NULL OR qty < 1 THEN
    RAISE EXCEPTION 'read: qty must be 1 or more, got %', coalesce(qty::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN QUERY EXECUTE format(
    'WITH cte AS (
       SELECT msg_id FROM pgmq.%1$I
       WHERE vt <= $4
         AND ($3 = ''{}''::jsonb OR message @> $3)
       ORDER BY vt, msg_id + 0
       LIMIT $1
       FOR UPDATE SKIP LOCKED
     ), claimed AS (
       UPDATE pgmq.%1$I m
       SET vt = clock_timestamp() + make_interval(secs => $2), read_ct = m.read_ct + 1
       WHERE m.msg_id = ANY(ARRAY(SELECT cte.msg_id FROM cte))
       RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers
     )
     SELECT * FROM claimed ORDER BY msg_id', qtable)
  USING qty, vt, coalesce(conditional, '{}'::jsonb), clock_timestamp();
END;
$_$;
CREATE FUNCTION pgmq.read_with_poll(queue_name text, vt integer, qty integer, max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100, conditional jsonb DEFAULT '{}'::jsonb) RETURNS SETOF pgmq.message_record
    LANGUAGE plpgsql
    AS $$
DECLARE
  stop_at timestamptz := clock_timestamp() + make_interval(secs => max_poll_seconds);
  found_any boolean;
  r pgmq.message_record;
BEGIN
  LOOP
    found_any := false;
    FOR r IN SELECT * FROM pgmq.read(queue_name, vt, qty, conditional) LOOP
      found_any := true;
      RETURN NEXT r;
    END LOOP;
    EXIT WHEN found_any OR clock_timestamp() >= stop_at;
    PERFORM pg_sleep(poll_interval_ms / 1000.0);
  END LOOP;
END;
$$;
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb) RETURNS SETOF bigint
    LANGUAGE sql
    AS $$ SELECT pgmq._send_batch(queue_name, ARRAY[msg], NULL, clock_timestamp()) $$;
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, delay integer) RETURNS SETOF bigint
    LANGUAGE sql
    AS $$ SELECT pgmq._send_batch(queue_name, ARRAY[msg], NULL, pgmq._delay_to_vt(delay)) $$;
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb) RETURNS SETOF bigint
    LANGUAGE sql
    AS $$ SELECT pgmq._send_batch(queue_name, ARRAY[msg], ARRAY[headers], clock_timestamp()) $$;
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, delay timestamp with time zone) RETURNS SETOF bigint
    LANGUAGE sql
    AS $$ SELECT pgmq._send_batch(queue_name, ARRAY[msg], NULL, delay) $$;
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay integer) RETURNS SETOF bigint
    LANGUAGE sql
    AS $$ SELECT pgmq._send_batch(queue_name, ARRAY[msg], ARRAY[headers], pgmq._delay_to_vt(delay)) $$;
CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay timestamp with time zone) RETURNS SETOF bigint
    LANGUAGE sql
    AS $$ SELECT pgmq._send_batch(queue_name, ARRAY[msg], ARRAY[headers], delay) $$;
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[]) RETURNS SETOF bigint
    LANGUAGE sql
    AS $$ SELECT pgmq._send_batch(queue_name, msgs, NULL, clock_timestamp()) $$;
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[]) RETURNS SETOF bigint
    LANGUAGE sql
    AS $$ SELECT pgmq._send_batch(queue_name, msgs, headers, clock_timestamp()) $$;
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay integer) RETURNS SETOF bigint
    LANGUAGE sql
    AS $$ SELECT pgmq._send_batch(queue_name, msgs, NULL, pgmq._delay_to_vt(delay)) $$;
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay timestamp with time zone) RETURNS SETOF bigint
    LANGUAGE sql
    AS $$ SELECT pgmq._send_batch(queue_name, msgs, NULL, delay) $$;
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer) RETURNS SETOF bigint
    LANGUAGE sql
    AS $$ SELECT pgmq._send_batch(queue_name, msgs, headers, pgmq._delay_to_vt(delay)) $$;
CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamp with time zone) RETURNS SETOF bigint
    LANGUAGE sql
    AS $$ SELECT pgmq._send_batch(queue_name, msgs, headers, delay) $$;
CREATE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt integer) RETURNS SETOF pgmq.message_record
    LANGUAGE plpgsql
    AS $_$
BEGIN
  IF vt IS NULL OR vt < 0 THEN
    RAISE EXCEPTION 'set_vt: vt must be 0 or more seconds, got %', coalesce(vt::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN QUERY EXECUTE format(
    'UPDATE pgmq.%I SET vt = clock_timestamp() + make_interval(secs => $2) WHERE msg_id = $1
     RETURNING msg_id, read_ct, enqueued_at, vt, message, headers', pgmq._queue_table(queue_name))
  USING msg_id, vt;
END;
$_$;
CREATE FUNCTION pgmq.validate_queue_name(queue_name text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    AS $_$
BEGIN
  IF queue_name IS NULL OR queue_name !~ '^[a-z_][a-z0-9_]{0,46}$' THEN
    RAISE EXCEPTION 'invalid queue name %: use 1-47 characters of lowercase letters, digits and underscores, not starting with a digit',
      coalesce(quote_literal(queue_name), 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
END;
$_$;
CREATE FUNCTION tasker._apply_step_result(p_step uuid, p_processor uuid, OUT outcome text, OUT queue text, OUT msg_ids bigint[]) RETURNS record
    LANGUAGE plpgsql
    AS $$
DECLARE
  s record;
  v_delay integer;
  v_due timestamptz;
  v_msg bigint;
  r record;
BEGIN
  SELECT ws.workflow_step_uuid, ws.task_uuid, ws.current_state, ws.retryable, ws.last_error, ws.attempts,
         ws.max_attempts, ws.backoff_strategy, ws.backoff_base_ms, ws.max_backoff_ms,
         t.current_state AS task_state, t.namespace_name, t.correlation_id
  INTO s
  FROM tasker.workflow_steps ws JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
  WHERE ws.workflow_step_uuid = p_step;
  IF NOT FOUND THEN
    outcome := 'noop';
    RETURN;
  END IF;
  queue := 'worker_' || s.namespace_name || '_queue';
  IF s.current_state = 'enqueued_for_orchestration' THEN
    PERFORM tasker._step_transition(p_step, 'enqueued_for_orchestration', 'complete', '{"event":"complete"}');
    -- A task that was cancelled or failed meanwhile keeps the result but starts nothing new.
    IF s.task_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN
      SELECT * INTO r FROM tasker._enqueue_ready_steps(s.task_uuid, p_step);
      msg_ids := r.msg_ids;
    END IF;
    PERFORM tasker._evaluate_task(s.task_uuid, p_processor);
    outcome := 'complete';
    RETURN;
  END IF;
  IF s.current_state = 'enqueued_as_error_for_orchestration' THEN
    IF s.retryable AND coalesce((s.last_error ->> 'retryable')::boolean, true) AND s.attempts < s.max_attempts
       AND s.task_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN
      v_delay := tasker.backoff_delay_ms(s.backoff_strategy, s.backoff_base_ms, s.max_backoff_ms, s.attempts,
                                         (s.last_error ->> 'retry_after_ms')::integer);
      v_due := clock_timestamp() + make_interval(secs => v_delay / 1000.0);
      UPDATE tasker.workflow_steps SET next_retry_at = v_due WHERE workflow_step_uuid = p_step;
      PERFORM tasker._step_transition(p_step, 'enqueued_as_error_for_orchestration', 'waiting_for_retry',
        jsonb_build_object('event', 'wait_for_retry', 'delay_ms', v_delay, 'due_at', v_due));
      -- The retry is a delayed message: it becomes visible exactly when due, and the notification carries
      -- ready_at so listeners set a timer instead of waiting for a poll.
      v_msg := (tasker._q_send(queue, ARRAY[tasker._step_message(s.task_uuid, p_step, s.correlation_id)], v_due))[1];
      PERFORM tasker._notify_message_ready(queue, jsonb_build_object(
        'event_type', 'message_ready', 'msg_id', v_msg, 'delay_seconds', ceil(v_delay / 1000.0), 'ready_at', v_due));
      PERFORM tasker._evaluate_task(s.task_uuid, p_processor);
      outcome := 'retry';
      RETURN;
    END IF;
    PERFORM tasker._step_transition(p_step, 'enqueued_as_error_for_orchestration', 'error',
      jsonb_build_object('event', 'fail', 'attempts', s.attempts, 'max_attempts', s.max_attempts));
    PERFORM tasker._evaluate_task(s.task_uuid, p_processor);
    outcome := 'error';
    RETURN;
  END IF;
  outcome := 'noop';
END;
$$;
CREATE FUNCTION tasker._complete_step(p_task uuid, p_step uuid, p_attempt integer, p_success boolean, p_payload jsonb, p_worker text, p_execution_ms integer, p_inline boolean, p_claim_limit integer, p_lease_seconds integer, OUT outcome text, OUT queue text, OUT msg_ids bigint[], OUT claimed_msgs bigint[], OUT claimed_steps uuid[]) RETURNS record
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_namespace text;
  v_correlation uuid;
  v_task_state text;
  v_lease bigint;
  v_to text := CASE WHEN p_success THEN 'enqueued_for_orchestration' ELSE 'enqueued_as_error_for_orchestration' END;
  v_meta jsonb := jsonb_build_object(
    'event', CASE WHEN p_success THEN 'enqueue_for_orchestration' ELSE 'enqueue_as_error_for_orchestration' END,
    'worker', p_worker, 'attempt', p_attempt, 'execution_time_ms', p_execution_ms);
  r record;
  -- The state compared through a constant, not a literal: with the literal, a generic plan can prove the
  -- partial index workflow_steps_in_progress_idx usable and read the step through it (an entry for every step in
  -- progress, and without vacuum for every step that ever was) instead of through its primary key.
  c_in_progress CONSTANT text := 'in_progress';
BEGIN
  -- Task first, then step: the engine's locking order.
  SELECT t.namespace_name, t.correlation_id, t.current_state INTO v_namespace, v_correlation, v_task_state
  FROM tasker.tasks t WHERE t.task_uuid = p_task
  FOR UPDATE;
  queue := 'worker_' || v_namespace || '_queue';
  IF p_inline AND p_success THEN
    UPDATE tasker.workflow_steps
    SET current_state = 'complete', in_process = false, processed = true, processed_at = now(),
        results = p_payload, updated_at = now()
    WHERE workflow_step_uuid = p_step AND task_uuid = p_task AND current_state = c_in_progress AND attempts = p_attempt
      -- The claim is the fence: attempt and holder. attempts alone is not enough, since an operator's
      -- reset_for_retry starts them again at 0 and a worker from before the reset could match a new run.
      AND claimed_by IS NOT DISTINCT FROM p_worker
    RETURNING lease_msg_id INTO v_lease;
    IF NOT FOUND THEN
      outcome := 'stale';
      RETURN;
    END IF;
    WITH flipped AS (
      UPDATE tasker.workflow_step_transitions tr SET most_recent = false
      WHERE tr.workflow_step_uuid = p_step AND tr.most_recent
      RETURNING tr.sort_key
    ), recorded AS (
      INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
      SELECT p_step, v.from_state, v.to_state, v.metadata, coalesce((SELECT max(f.sort_key) FROM flipped f), 0) + v.n,
             v.n = 2, clock_timestamp()
      FROM (VALUES (1, 'in_progress', 'enqueued_for_orchestration', v_meta),
                   (2, 'enqueued_for_orchestration', 'complete', '{"event":"complete"}'::jsonb)) AS v(n, from_state, to_state, metadata)
      RETURNING workflow_step_transition_uuid, to_state
    )
    INSERT INTO tasker.workflow_step_result_audit (workflow_step_uuid, workflow_step_transition_uuid, task_uuid, worker_uuid,
                                                   correlation_id, success, attempt, execution_time_ms)
    SELECT p_step, recorded.workflow_step_transition_uuid, p_task, p_worker, v_correlation, true, p_attempt, p_execution_ms
    FROM recorded WHERE recorded.to_state = 'enqueued_for_orchestration';
    PERFORM tasker._q_archive(queue, ARRAY[v_lease]);
    -- A task that was cancelled or failed meanwhile keeps the result but starts nothing new.
    IF v_task_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN
      SELECT * INTO r FROM tasker._start_ready_children(p_task, p_step, p_worker, p_lease_seconds, p_claim_limit, v_namespace, v_correlation);
      msg_ids := r.msg_ids;
      claimed_msgs := r.claimed_msgs;
      claimed_steps := r.claimed_steps;
    END IF;
    -- A child started or enqueued in a task in steps_in_process: still running, nothing to evaluate.
    IF NOT (v_task_state = 'steps_in_process'
            AND coalesce(cardinality(claimed_steps), 0) + coalesce(cardinality(msg_ids), 0) > 0) THEN
      PERFORM tasker._evaluate_task(p_task, NULL);
    END IF;
    outcome := 'complete';
    RETURN;
  END IF;
  UPDATE tasker.workflow_steps
  SET current_state = v_to,
      in_process = false,
      results = CASE WHEN p_success THEN p_payload ELSE results END,
      last_error = CASE WHEN p_success THEN last_error ELSE p_payload || jsonb_build_object('attempt', p_attempt) END,
      updated_at = now()
  WHERE workflow_step_uuid = p_step AND task_uuid = p_task AND current_state = c_in_progress AND attempts = p_attempt
    AND claimed_by IS NOT DISTINCT FROM p_worker
  RETURNING lease_msg_id INTO v_lease;
  IF NOT FOUND THEN
    outcome := 'stale';
    RETURN;
  END IF;
  WITH flipped AS (
    UPDATE tasker.workflow_step_transitions tr SET most_recent = false
    WHERE tr.workflow_step_uuid = p_step AND tr.most_recent
    RETURNING tr.sort_key
  ), recorded AS (
    INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
    SELECT p_step, 'in_progress', v_to, v_meta, coalesce((SELECT max(f.sort_key) FROM flipped f), 0) + 1, true, clock_timestamp()
    RETURNING workflow_step_transition_uuid
  )
  INSERT INTO tasker.workflow_step_result_audit (workflow_step_uuid, workflow_step_transition_uuid, task_uuid, worker_uuid,
                                                 correlation_id, success, attempt, execution_time_ms)
  SELECT p_step, recorded.workflow_step_transition_uuid, p_task, p_worker, v_correlation, p_success, p_attempt, p_execution_ms
  FROM recorded;
  PERFORM tasker._q_archive(queue, ARRAY[v_lease]);
  IF p_inline THEN
    SELECT * INTO r FROM tasker._apply_step_result(p_step, NULL);
    outcome := r.outcome;
    msg_ids := r.msg_ids;
    RETURN;
  END IF;
  queue := 'orchestration_step_results';
  msg_ids := tasker._q_send(queue, ARRAY[tasker._step_message(p_task, p_step, v_correlation)], clock_timestamp());
  outcome := 'stored';
END;
$$;
CREATE FUNCTION tasker._create_single_task(p_task jsonb, p_steps jsonb, p_edges jsonb, p_request_msg_id bigint DEFAULT NULL::bigint) RETURNS TABLE(task_uuid uuid, current_state text, enqueued_steps integer, queue text, msg_ids bigint[])
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET jit TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
  v_task uuid := coalesce((p_task ->> 'task_uuid')::uuid, tasker.uuid_generate_v7());
  v_processor uuid := (p_task ->> 'processor_uuid')::uuid;
  v_correlation uuid := (p_task ->> 'correlation_id')::uuid;
  v_queue text := 'worker_' || (p_task ->> 'namespace_name') || '_queue';
  v_targets uuid[];
  v_roots uuid[];
  v_ids bigint[];
BEGIN
  INSERT INTO tasker.tasks (task_uuid, named_task_uuid, namespace_name, current_state, requested_at, initiator,
                            source_system, reason, tags, context, identity_hash, priority, correlation_id,
                            parent_correlation_id)
  VALUES (v_task, (p_task ->> 'named_task_uuid')::uuid, p_task ->> 'namespace_name', 'steps_in_process',
          coalesce((p_task ->> 'requested_at')::timestamptz, now()), p_task ->> 'initiator', p_task ->> 'source_system',
          p_task ->> 'reason', coalesce(p_task -> 'tags', '[]'), coalesce(p_task -> 'context', '{}'),
          p_task ->> 'identity_hash', coalesce((p_task ->> 'priority')::integer, 0),
          v_correlation, (p_task ->> 'parent_correlation_id')::uuid);
  INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, metadata, processor_uuid, sort_key, most_recent, created_at)
  SELECT v_task, v.from_state, v.to_state, v.metadata::jsonb, v_processor, v.n, v.n = 4, clock_timestamp()
  FROM (VALUES (1, NULL, 'pending', '{"event":"created"}'),
               (2, 'pending', 'initializing', '{"event":"start"}'),
               (3, 'initializing', 'enqueuing_steps', '{"event":"ready_steps_found"}'),
               (4, 'enqueuing_steps', 'steps_in_process', '{"event":"steps_enqueued"}')) AS v(n, from_state, to_state, metadata)
  ORDER BY v.n;
  SELECT coalesce(array_agg(DISTINCT (e ->> 'to')::uuid), '{}') INTO v_targets FROM jsonb_array_elements(p_edges) AS e;
  WITH ins AS (
    INSERT INTO tasker.workflow_steps (workflow_step_uuid, task_uuid, name, current_state, handler_callable, inputs, retryable,
                                       max_attempts, backoff_strategy, backoff_base_ms, max_backoff_ms, timeout_seconds)
    SELECT s.workflow_step_uuid, v_task, s.name,
           CASE WHEN s.workflow_step_uuid = ANY(v_targets) THEN 'pending' ELSE 'enqueued' END,
           s.handler_callable, coalesce(s.inputs, '{}'), s.retryable,
           s.max_attempts, s.backoff_strategy, s.backoff_base_ms, s.max_backoff_ms, s.timeout_seconds
    FROM jsonb_to_recordset(p_steps) AS s(workflow_step_uuid uuid, name text, handler_callable text, inputs jsonb,
         retryable boolean, max_attempts integer, backoff_strategy text, backoff_base_ms integer,
         max_backoff_ms integer, timeout_seconds integer)
    RETURNING workflow_step_uuid, current_state
  )
  SELECT coalesce(array_agg(ins.workflow_step_uuid ORDER BY ins.workflow_step_uuid) FILTER (WHERE ins.current_state = 'enqueued'), '{}')
  INTO v_roots FROM ins;
  INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
  SELECT x.step, x.from_state, x.to_state, x.metadata::jsonb, x.sort_key, x.most_recent, x.at
  FROM (
    SELECT (s ->> 'workflow_step_uuid')::uuid AS step, NULL AS from_state, 'pending' AS to_state,
           '{"event":"created"}' AS metadata, 1 AS sort_key,
           NOT ((s ->> 'workflow_step_uuid')::uuid = ANY(v_roots)) AS most_recent, now() AS at
    FROM jsonb_array_elements(p_steps) AS s
    UNION ALL
    SELECT r, 'pending', 'enqueued', '{"event":"enqueue"}', 2, true, clock_timestamp()
    FROM unnest(v_roots) AS r
  ) x;
  INSERT INTO tasker.workflow_step_edges (from_step_uuid, to_step_uuid, name)
  SELECT (e ->> 'from')::uuid, (e ->> 'to')::uuid, 'provides' FROM jsonb_array_elements(p_edges) AS e;
  v_ids := tasker._q_send(v_queue,
    ARRAY(SELECT tasker._step_message(v_task, r, v_correlation) FROM unnest(v_roots) AS r ORDER BY r),
    clock_timestamp());
  IF p_request_msg_id IS NOT NULL THEN
    PERFORM tasker._q_archive('orchestration_task_requests', ARRAY[p_request_msg_id]);
  END IF;
  RETURN QUERY SELECT v_task, 'steps_in_process'::text, cardinality(v_roots), v_queue, v_ids;
END;
$$;
CREATE FUNCTION tasker._create_task_batch(p_tasks jsonb) RETURNS TABLE(task_uuid uuid, current_state text, enqueued_steps integer, queue text, msg_ids bigint[])
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET jit TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
  v_tasks uuid[];
  v_queues text[];
  v_correlations uuid[];
  -- Root steps (no incoming edge), ordered by task then step uuid, as _create_single_task sends them.
  v_root_steps uuid[];
  v_root_tasks uuid[];
  v_root_queues text[];
  v_root_correlations uuid[];
  v_sent_ids bigint[] := '{}';
  v_sent_tasks uuid[] := '{}';
  v_q text;
  v_requests bigint[];
BEGIN
  WITH src AS (
    SELECT e.n, e.value -> 'task' AS t,
           coalesce((e.value -> 'task' ->> 'task_uuid')::uuid, tasker.uuid_generate_v7()) AS id
    FROM jsonb_array_elements(p_tasks) WITH ORDINALITY AS e(value, n)
  ), ins AS (
    INSERT INTO tasker.tasks (task_uuid, named_task_uuid, namespace_name, current_state, requested_at, initiator,
                              source_system, reason, tags, context, identity_hash, priority, correlation_id,
                              parent_correlation_id)
    SELECT src.id, (src.t ->> 'named_task_uuid')::uuid, src.t ->> 'namespace_name', 'steps_in_process',
           coalesce((src.t ->> 'requested_at')::timestamptz, now()), src.t ->> 'initiator', src.t ->> 'source_system',
           src.t ->> 'reason', coalesce(src.t -> 'tags', '[]'), coalesce(src.t -> 'context', '{}'),
           src.t ->> 'identity_hash', coalesce((src.t ->> 'priority')::integer, 0),
           (src.t ->> 'correlation_id')::uuid, (src.t ->> 'parent_correlation_id')::uuid
    FROM src
    ORDER BY src.n
    RETURNING 1
  )
  SELECT array_agg(src.id ORDER BY src.n), array_agg('worker_' || (src.t ->> 'namespace_name') || '_queue' ORDER BY src.n),
         array_agg((src.t ->> 'correlation_id')::uuid ORDER BY src.n)
  INTO v_tasks, v_queues, v_correlations
  FROM src;
  IF v_tasks IS NULL THEN
    RETURN;
  END IF;
  INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, metadata, processor_uuid, sort_key, most_recent, created_at)
  SELECT u.id, v.from_state, v.to_state, v.metadata::jsonb, (p_tasks -> (u.n::integer - 1) -> 'task' ->> 'processor_uuid')::uuid,
         v.k, v.k = 4, clock_timestamp()
  FROM unnest(v_tasks) WITH ORDINALITY AS u(id, n)
  CROSS JOIN (VALUES (1, NULL, 'pending', '{"event":"created"}'),
                     (2, 'pending', 'initializing', '{"event":"start"}'),
                     (3, 'initializing', 'enqueuing_steps', '{"event":"ready_steps_found"}'),
                     (4, 'enqueuing_steps', 'steps_in_process', '{"event":"steps_enqueued"}')) AS v(k, from_state, to_state, metadata)
  ORDER BY u.n, v.k;
  -- Every step of every task, a root (no incoming edge) inserted already enqueued.
  WITH st AS (
    SELECT u.n, u.id AS task_id, s.*,
           NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_tasks -> (u.n::integer - 1) -> 'edges') AS e
                       WHERE (e ->> 'to')::uuid = s.workflow_step_uuid) AS is_root
    FROM unnest(v_tasks) WITH ORDINALITY AS u(id, n)
    CROSS JOIN LATERAL jsonb_to_recordset(p_tasks -> (u.n::integer - 1) -> 'steps')
      AS s(workflow_step_uuid uuid, name text, handler_callable text, inputs jsonb, retryable boolean, max_attempts integer,
           backoff_strategy text, backoff_base_ms integer, max_backoff_ms integer, timeout_seconds integer)
  ), ins AS (
    INSERT INTO tasker.workflow_steps (workflow_step_uuid, task_uuid, name, current_state, handler_callable, inputs, retryable,
                                       max_attempts, backoff_strategy, backoff_base_ms, max_backoff_ms, timeout_seconds)
    SELECT st.workflow_step_uuid, st.task_id, st.name, CASE WHEN st.is_root THEN 'enqueued' ELSE 'pending' END,
           st.handler_callable, coalesce(st.inputs, '{}'), st.retryable, st.max_attempts, st.backoff_strategy,
           st.backoff_base_ms, st.max_backoff_ms, st.timeout_seconds
    FROM st
    RETURNING 1
  ), created AS (
    INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
    SELECT st.workflow_step_uuid, NULL, 'pending', '{"event":"created"}', 1, NOT st.is_root, now()
    FROM st
    RETURNING 1
  )
  SELECT coalesce(array_agg(st.workflow_step_uuid ORDER BY st.n, st.workflow_step_uuid) FILTER (WHERE st.is_root), '{}'),
         coalesce(array_agg(st.task_id ORDER BY st.n, st.workflow_step_uuid) FILTER (WHERE st.is_root), '{}'),
         coalesce(array_agg(v_queues[st.n] ORDER BY st.n, st.workflow_step_uuid) FILTER (WHERE st.is_root), '{}'),
         coalesce(array_agg(v_correlations[st.n] ORDER BY st.n, st.workflow_step_uuid) FILTER (WHERE st.is_root), '{}')
  INTO v_root_steps, v_root_tasks, v_root_queues, v_root_correlations
  FROM st;
  INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
  SELECT r.step, 'pending', 'enqueued', '{"event":"enqueue"}', 2, true, clock_timestamp()
  FROM unnest(v_root_steps) WITH ORDINALITY AS r(step, o)
  ORDER BY r.o;
  INSERT INTO tasker.workflow_step_edges (from_step_uuid, to_step_uuid, name)
  SELECT (e ->> 'from')::uuid, (e ->> 'to')::uuid, 'provides'
  FROM jsonb_array_elements(p_tasks) AS x
  CROSS JOIN LATERAL jsonb_array_elements(x -> 'edges') AS e;
  -- The root messages, one send per queue; _q_send returns the ids in the order the messages were given.
  FOR v_q IN SELECT DISTINCT q FROM unnest(v_root_queues) AS q LOOP
    v_sent_ids := v_sent_ids || tasker._q_send(v_q,
      ARRAY(SELECT tasker._step_message(r.task, r.step, r.correlation)
            FROM unnest(v_root_tasks, v_root_steps, v_root_queues, v_root_correlations) WITH ORDINALITY AS r(task, step, q, correlation, o)
            WHERE r.q = v_q ORDER BY r.o),
      clock_timestamp());
    v_sent_tasks := v_sent_tasks || ARRAY(SELECT r.task FROM unnest(v_root_tasks, v_root_queues) WITH ORDINALITY AS r(task, q, o)
                                          WHERE r.q = v_q ORDER BY r.o);
  END LOOP;
  SELECT array_agg((x ->> 'request_msg_id')::bigint) INTO v_requests
  FROM jsonb_array_elements(p_tasks) AS x
  WHERE x ->> 'request_msg_id' IS NOT NULL;
  IF v_requests IS NOT NULL THEN
    PERFORM tasker._q_archive('orchestration_task_requests', v_requests);
  END IF;
  RETURN QUERY
  SELECT u.id, 'steps_in_process'::text,
         (SELECT count(*)::integer FROM unnest(v_root_tasks) AS rt WHERE rt = u.id),
         v_queues[u.n],
         ARRAY(SELECT s.id FROM unnest(v_sent_ids, v_sent_tasks) AS s(id, task) WHERE s.task = u.id ORDER BY s.id)
  FROM unnest(v_tasks) WITH ORDINALITY AS u(id, n)
  ORDER BY u.n;
END;
$$;
CREATE FUNCTION tasker._dead_letter_task(p_task uuid, p_original_state text, p_reason text, p_metadata jsonb) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
BEGIN
  INSERT INTO tasker.tasks_dlq (task_uuid, original_state, dlq_reason, task_snapshot, metadata)
  SELECT t.task_uuid, p_original_state, p_reason,
         to_jsonb(t) || jsonb_build_object('steps', (
           SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'workflow_step_uuid', ws.workflow_step_uuid, 'name', ws.name,
                    'current_state', ws.current_state, 'attempts', ws.attempts,
                    'max_attempts', ws.max_attempts, 'last_error', ws.last_error,
                    'next_retry_at', ws.next_retry_at, 'last_attempted_at', ws.last_attempted_at,
                    'claimed_by', ws.claimed_by) ORDER BY ws.name), '[]'::jsonb)
           FROM tasker.workflow_steps ws WHERE ws.task_uuid = t.task_uuid)),
         p_metadata
  FROM tasker.tasks t WHERE t.task_uuid = p_task
  ON CONFLICT (task_uuid) WHERE resolution_status = 'pending' DO NOTHING;
  RETURN FOUND;
END;
$$;
CREATE FUNCTION tasker._enqueue_ready_steps(p_task uuid, p_parent uuid, OUT queue text, OUT msg_ids bigint[]) RETURNS record
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_task record;
  v_ready uuid[];
BEGIN
  SELECT t.namespace_name, t.correlation_id INTO v_task FROM tasker.tasks t WHERE t.task_uuid = p_task;
  queue := 'worker_' || v_task.namespace_name || '_queue';
  msg_ids := '{}';
  IF p_parent IS NOT NULL THEN
    -- Scalar subqueries keep the plan a walk over the edge indexes whatever the statistics say.
    SELECT array_agg(c.uuid ORDER BY c.uuid) INTO v_ready
    FROM (SELECT e.to_step_uuid AS uuid FROM tasker.workflow_step_edges e WHERE e.from_step_uuid = p_parent) c
    WHERE (SELECT s.current_state FROM tasker.workflow_steps s WHERE s.workflow_step_uuid = c.uuid) = 'pending'
      AND (SELECT count(*) FROM tasker.workflow_step_edges pe
           JOIN tasker.workflow_steps p ON p.workflow_step_uuid = pe.from_step_uuid
           WHERE pe.to_step_uuid = c.uuid AND p.current_state NOT IN ('complete', 'resolved_manually')) = 0;
  ELSE
    SELECT array_agg(s.workflow_step_uuid ORDER BY s.workflow_step_uuid) INTO v_ready
    FROM tasker.workflow_steps s
    WHERE s.task_uuid = p_task AND s.current_state = 'pending'
      AND (SELECT count(*) FROM tasker.workflow_step_edges pe
           JOIN tasker.workflow_steps p ON p.workflow_step_uuid = pe.from_step_uuid
           WHERE pe.to_step_uuid = s.workflow_step_uuid AND p.current_state NOT IN ('complete', 'resolved_manually')) = 0;
  END IF;
  IF v_ready IS NULL THEN
    RETURN;
  END IF;
  -- Compare-and-set pending -> enqueued for all of them, and their transitions, in one statement.
  WITH moved AS (
    UPDATE tasker.workflow_steps ws
    SET current_state = 'enqueued', in_process = false, updated_at = now()
    WHERE ws.workflow_step_uuid = ANY(v_ready) AND ws.current_state = 'pending'
    RETURNING ws.workflow_step_uuid
  ), flipped AS (
    UPDATE tasker.workflow_step_transitions tr SET most_recent = false
    WHERE tr.workflow_step_transition_uuid = ANY(ARRAY(
      SELECT (SELECT cur.workflow_step_transition_uuid FROM tasker.workflow_step_transitions cur
              WHERE cur.workflow_step_uuid = fl.workflow_step_uuid AND cur.most_recent)
      FROM moved fl))
    RETURNING tr.workflow_step_uuid, tr.sort_key
  ), recorded AS (
    INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
    SELECT f.workflow_step_uuid, 'pending', 'enqueued', '{"event":"enqueue"}', f.sort_key + 1, true, clock_timestamp()
    FROM flipped f
    RETURNING workflow_step_uuid
  )
  SELECT array_agg(r.workflow_step_uuid ORDER BY r.workflow_step_uuid) INTO v_ready FROM recorded r;
  IF v_ready IS NULL THEN
    RETURN;
  END IF;
  msg_ids := tasker._q_send(queue,
    ARRAY(SELECT tasker._step_message(p_task, u, v_task.correlation_id) FROM unnest(v_ready) AS u ORDER BY u),
    clock_timestamp());
END;
$$;
CREATE FUNCTION tasker._evaluate_task(p_task uuid, p_processor uuid) RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_state text;
  v_exhausted jsonb;
  c record;
BEGIN
  SELECT current_state INTO v_state FROM tasker.tasks WHERE task_uuid = p_task;
  IF v_state IN ('complete', 'error', 'cancelled', 'resolved_manually', 'blocked_by_failures') THEN
    RETURN v_state;
  END IF;
  SELECT count(*) AS total,
         count(*) FILTER (WHERE current_state IN ('complete', 'resolved_manually')) AS done,
         count(*) FILTER (WHERE current_state = 'error') AS failed,
         count(*) FILTER (WHERE current_state IN ('enqueued', 'in_progress', 'enqueued_for_orchestration',
                                                  'enqueued_as_error_for_orchestration')) AS in_flight,
         count(*) FILTER (WHERE current_state = 'waiting_for_retry') AS retrying
  INTO c
  FROM tasker.workflow_steps WHERE task_uuid = p_task;
  IF c.failed > 0 THEN
    -- Fail fast (reference §3.2): one permanently failed step fails the task; operators can revive it.
    IF v_state <> 'steps_in_process' THEN
      PERFORM tasker._task_resume(p_task, p_processor);
    END IF;
    PERFORM tasker._task_path(p_task, 'steps_in_process',
      ARRAY['evaluating_results', 'blocked_by_failures', 'error'],
      ARRAY['step_completed', 'permanent_failure', 'give_up'], p_processor);
    -- A step that used every attempt it had on failures that would otherwise have been retried: the task goes
    -- where an operator looks (the DLQ) now, not when the staleness detector would find it. A failure final by
    -- itself (a PermanentError, a non-retryable error, a step with retry.retryable false) exhausted nothing: no
    -- entry for that reason.
    SELECT jsonb_agg(jsonb_build_object('step', ws.name, 'attempts', ws.attempts, 'max_attempts', ws.max_attempts,
                                        'error_type', ws.last_error ->> 'error_type') ORDER BY ws.name)
    INTO v_exhausted
    FROM tasker.workflow_steps ws
    WHERE ws.task_uuid = p_task AND ws.current_state = 'error' AND ws.attempts >= ws.max_attempts
      AND ws.retryable AND coalesce((ws.last_error ->> 'retryable')::boolean, true);
    IF v_exhausted IS NOT NULL THEN
      PERFORM tasker._dead_letter_task(p_task, 'blocked_by_failures', 'max_retries_exceeded',
        jsonb_build_object('exhausted_steps', v_exhausted,
                           'detected_by', coalesce(p_processor::text, 'task_finalization')));
    END IF;
    RETURN 'error';
  END IF;
  IF c.done = c.total THEN
    IF v_state <> 'steps_in_process' THEN
      PERFORM tasker._task_resume(p_task, p_processor);
    END IF;
    PERFORM tasker._task_path(p_task, 'steps_in_process', ARRAY['evaluating_results', 'complete'],
      ARRAY['step_completed', 'all_steps_successful'], p_processor);
    RETURN 'complete';
  END IF;
  IF c.in_flight = 0 AND c.retrying > 0 THEN
    IF v_state <> 'waiting_for_retry' THEN
      IF v_state <> 'steps_in_process' THEN
        PERFORM tasker._task_resume(p_task, p_processor);
      END IF;
      PERFORM tasker._task_path(p_task, 'steps_in_process', ARRAY['waiting_for_retry'], ARRAY['step_failed'], p_processor);
    END IF;
    RETURN 'waiting_for_retry';
  END IF;
  IF c.in_flight > 0 AND v_state <> 'steps_in_process' THEN
    PERFORM tasker._task_resume(p_task, p_processor);
    SELECT current_state INTO v_state FROM tasker.tasks WHERE task_uuid = p_task;
  END IF;
  RETURN v_state;
END;
$$;
CREATE FUNCTION tasker._is_dispatched_queue(p_queue text) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    AS $_$
  SELECT p_queue ~ '^(worker_[a-z0-9_]+_queue|orchestration_[a-z0-9_]+)$'
$_$;
CREATE FUNCTION tasker._lifecycle_minutes(p_configuration jsonb, p_camel text, p_snake text) RETURNS integer
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT CASE
    WHEN jsonb_typeof(p_configuration -> 'lifecycle' -> p_camel) = 'number' THEN (p_configuration -> 'lifecycle' ->> p_camel)::numeric::integer
    WHEN jsonb_typeof(p_configuration -> 'lifecycle' -> p_snake) = 'number' THEN (p_configuration -> 'lifecycle' ->> p_snake)::numeric::integer
  END
$$;
CREATE FUNCTION tasker._notify_message_ready(queue_name text, payload jsonb) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
  namespace text := tasker.queue_namespace(queue_name);
  body text := (payload || jsonb_build_object('queue_name', queue_name, 'namespace', namespace))::text;
BEGIN
  PERFORM pg_notify('pgmq_message_ready.' || namespace, body);
  PERFORM pg_notify('pgmq_message_ready', body);
END;
$$;
CREATE FUNCTION tasker._notify_queue_created() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  PERFORM pg_notify('pgmq_queue_created', jsonb_build_object(
    'event_type', 'queue_created',
    'queue_name', NEW.queue_name,
    'namespace', tasker.queue_namespace(NEW.queue_name))::text);
  RETURN NEW;
END;
$$;
CREATE FUNCTION tasker._notify_sent(p_queue text, p_ids bigint[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_count integer := coalesce(cardinality(p_ids), 0);
BEGIN
  IF v_count = 0 THEN
    RETURN;
  END IF;
  PERFORM tasker._notify_message_ready(p_queue, jsonb_build_object(
    'event_type', CASE WHEN v_count = 1 THEN 'message_ready' ELSE 'batch_ready' END,
    'msg_id', (SELECT min(i) FROM unnest(p_ids) AS i), 'message_count', v_count, 'delay_seconds', 0,
    'ready_at', clock_timestamp()));
END;
$$;
CREATE FUNCTION tasker._notify_task_finished() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  PERFORM pg_notify('tasker_task_finished', NEW.task_uuid::text || ':' || NEW.current_state);
  RETURN NULL;
END;
$$;
CREATE FUNCTION tasker._on_named_tasks_delete() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM tasker.tasks t WHERE t.named_task_uuid = OLD.named_task_uuid) THEN
    RAISE EXCEPTION 'template % version % still has tasks: delete them first', OLD.name, OLD.version
      USING ERRCODE = 'foreign_key_violation',
            HINT = 'tasks keep the template they were created from; delete or archive those tasks before the template';
  END IF;
  RETURN OLD;
END;
$$;
CREATE FUNCTION tasker._on_tasks_delete() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  -- The steps' own trigger removes their edges and transitions, and the transitions' trigger their audit
  -- rows (every audit row belongs to a transition of its step): the chain the foreign keys cascaded along.
  DELETE FROM tasker.workflow_steps s WHERE s.task_uuid IN (SELECT g.task_uuid FROM gone g);
  DELETE FROM tasker.task_transitions tt WHERE tt.task_uuid IN (SELECT g.task_uuid FROM gone g);
  RETURN NULL;
END;
$$;
CREATE FUNCTION tasker._on_tasks_truncate() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  TRUNCATE tasker.workflow_step_result_audit, tasker.workflow_step_transitions, tasker.workflow_step_edges,
           tasker.workflow_steps, tasker.task_transitions;
  RETURN NULL;
END;
$$;
CREATE FUNCTION tasker._on_workflow_step_transitions_delete() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  -- By (step, transition): the audit table's unique key, so no scan of the whole table.
  DELETE FROM tasker.workflow_step_result_audit a
  WHERE (a.workflow_step_uuid, a.workflow_step_transition_uuid) IN
        (SELECT g.workflow_step_uuid, g.workflow_step_transition_uuid FROM gone g);
  RETURN NULL;
END;
$$;
CREATE FUNCTION tasker._on_workflow_steps_delete() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  DELETE FROM tasker.workflow_step_edges e WHERE e.from_step_uuid IN (SELECT g.workflow_step_uuid FROM gone g);
  DELETE FROM tasker.workflow_step_edges e WHERE e.to_step_uuid IN (SELECT g.workflow_step_uuid FROM gone g);
  -- Their audit rows go with their transitions (workflow_step_transitions' trigger, _on_workflow_step_transitions_delete).
  DELETE FROM tasker.workflow_step_transitions t WHERE t.workflow_step_uuid IN (SELECT g.workflow_step_uuid FROM gone g);
  RETURN NULL;
END;
$$;
CREATE FUNCTION tasker._q_archive(p_queue text, p_ids bigint[]) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_count integer;
BEGIN
  IF coalesce(cardinality(p_ids), 0) = 0 THEN
    RETURN 0;
  ELSIF p_queue = 'orchestration_step_results' THEN
    WITH archived AS (
      DELETE FROM pgmq.q_orchestration_step_results d WHERE d.msg_id = ANY(p_ids)
      RETURNING d.msg_id, d.read_ct, d.enqueued_at, d.vt, d.message, d.headers
    ), ins AS (
      INSERT INTO pgmq.a_orchestration_step_results (msg_id, read_ct, enqueued_at, vt, message, headers)
      SELECT * FROM archived
      RETURNING 1
    )
    SELECT count(*)::integer INTO v_count FROM ins;
  ELSIF p_queue = 'orchestration_task_finalizations' THEN
    WITH archived AS (
      DELETE FROM pgmq.q_orchestration_task_finalizations d WHERE d.msg_id = ANY(p_ids)
      RETURNING d.msg_id, d.read_ct, d.enqueued_at, d.vt, d.message, d.headers
    ), ins AS (
      INSERT INTO pgmq.a_orchestration_task_finalizations (msg_id, read_ct, enqueued_at, vt, message, headers)
      SELECT * FROM archived
      RETURNING 1
    )
    SELECT count(*)::integer INTO v_count FROM ins;
  ELSIF p_queue = 'orchestration_task_requests' THEN
    WITH archived AS (
      DELETE FROM pgmq.q_orchestration_task_requests d WHERE d.msg_id = ANY(p_ids)
      RETURNING d.msg_id, d.read_ct, d.enqueued_at, d.vt, d.message, d.headers
    ), ins AS (
      INSERT INTO pgmq.a_orchestration_task_requests (msg_id, read_ct, enqueued_at, vt, message, headers)
      SELECT * FROM archived
      RETURNING 1
    )
    SELECT count(*)::integer INTO v_count FROM ins;
  ELSE
    SELECT count(*)::integer INTO v_count FROM pgmq.archive(p_queue, p_ids);
  END IF;
  RETURN v_count;
END;
$$;
CREATE FUNCTION tasker._q_read(p_queue text, p_vt integer, p_qty integer) RETURNS TABLE(msg_id bigint, read_ct integer, message jsonb)
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_now timestamptz := clock_timestamp();
BEGIN
  IF p_qty < 1 THEN
    RETURN;
  ELSIF p_queue = 'orchestration_step_results' THEN
    RETURN QUERY
    WITH cte AS (
      SELECT c.msg_id FROM pgmq.q_orchestration_step_results c
      WHERE c.vt <= v_now
      ORDER BY c.vt, c.msg_id + 0
      LIMIT p_qty
      FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE pgmq.q_orchestration_step_results m
      SET vt = clock_timestamp() + make_interval(secs => p_vt), read_ct = m.read_ct + 1
      WHERE m.msg_id = ANY(ARRAY(SELECT cte.msg_id FROM cte))
      RETURNING m.msg_id, m.read_ct, m.message
    )
    SELECT claimed.msg_id, claimed.read_ct, claimed.message FROM claimed ORDER BY claimed.msg_id;
  ELSIF p_queue = 'orchestration_task_finalizations' THEN
    RETURN QUERY
    WITH cte AS (
      SELECT c.msg_id FROM pgmq.q_orchestration_task_finalizations c
      WHERE c.vt <= v_now
      ORDER BY c.vt, c.msg_id + 0
      LIMIT p_qty
      FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE pgmq.q_orchestration_task_finalizations m
      SET vt = clock_timestamp() + make_interval(secs => p_vt), read_ct = m.read_ct + 1
      WHERE m.msg_id = ANY(ARRAY(SELECT cte.msg_id FROM cte))
      RETURNING m.msg_id, m.read_ct, m.message
    )
    SELECT claimed.msg_id, claimed.read_ct, claimed.message FROM claimed ORDER BY claimed.msg_id;
  ELSIF p_queue = 'orchestration_task_requests' THEN
    RETURN QUERY
    WITH cte AS (
      SELECT c.msg_id FROM pgmq.q_orchestration_task_requests c
      WHERE c.vt <= v_now
      ORDER BY c.vt, c.msg_id + 0
      LIMIT p_qty
      FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE pgmq.q_orchestration_task_requests m
      SET vt = clock_timestamp() + make_interval(secs => p_vt), read_ct = m.read_ct + 1
      WHERE m.msg_id = ANY(ARRAY(SELECT cte.msg_id FROM cte))
      RETURNING m.msg_id, m.read_ct, m.message
    )
    SELECT claimed.msg_id, claimed.read_ct, claimed.message FROM claimed ORDER BY claimed.msg_id;
  ELSE
    RETURN QUERY SELECT r.msg_id, r.read_ct, r.message FROM pgmq.read(p_queue, p_vt, p_qty) r;
  END IF;
END;
$$;
CREATE FUNCTION tasker._q_send(p_queue text, p_msgs jsonb[], p_vt timestamp with time zone, p_read_ct integer DEFAULT 0) RETURNS bigint[]
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_ids bigint[];
BEGIN
  IF coalesce(cardinality(p_msgs), 0) = 0 THEN
    RETURN '{}';
  ELSIF p_queue = 'orchestration_step_results' THEN
    WITH ins AS (
      INSERT INTO pgmq.q_orchestration_step_results (vt, message, read_ct)
      SELECT p_vt, u.m, p_read_ct FROM unnest(p_msgs) WITH ORDINALITY AS u(m, o) ORDER BY u.o
      RETURNING msg_id
    )
    SELECT array_agg(ins.msg_id ORDER BY ins.msg_id) INTO v_ids FROM ins;
  ELSIF p_queue = 'orchestration_task_finalizations' THEN
    WITH ins AS (
      INSERT INTO pgmq.q_orchestration_task_finalizations (vt, message, read_ct)
      SELECT p_vt, u.m, p_read_ct FROM unnest(p_msgs) WITH ORDINALITY AS u(m, o) ORDER BY u.o
      RETURNING msg_id
    )
    SELECT array_agg(ins.msg_id ORDER BY ins.msg_id) INTO v_ids FROM ins;
  ELSIF p_queue = 'orchestration_task_requests' THEN
    WITH ins AS (
      INSERT INTO pgmq.q_orchestration_task_requests (vt, message, read_ct)
      SELECT p_vt, u.m, p_read_ct FROM unnest(p_msgs) WITH ORDINALITY AS u(m, o) ORDER BY u.o
      RETURNING msg_id
    )
    SELECT array_agg(ins.msg_id ORDER BY ins.msg_id) INTO v_ids FROM ins;
  ELSE
    SELECT array_agg(s.id ORDER BY s.id) INTO v_ids FROM pgmq._send_batch(p_queue, p_msgs, NULL, p_vt) AS s(id);
  END IF;
  RETURN coalesce(v_ids, '{}');
END;
$$;
CREATE FUNCTION tasker._q_set_vt(p_queue text, p_id bigint, p_vt timestamp with time zone) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
BEGIN
  IF p_id IS NULL THEN
    RETURN false;
  ELSIF p_queue = 'orchestration_step_results' THEN
    UPDATE pgmq.q_orchestration_step_results m SET vt = p_vt WHERE m.msg_id = p_id;
    RETURN FOUND;
  ELSIF p_queue = 'orchestration_task_finalizations' THEN
    UPDATE pgmq.q_orchestration_task_finalizations m SET vt = p_vt WHERE m.msg_id = p_id;
    RETURN FOUND;
  ELSIF p_queue = 'orchestration_task_requests' THEN
    UPDATE pgmq.q_orchestration_task_requests m SET vt = p_vt WHERE m.msg_id = p_id;
    RETURN FOUND;
  ELSE
    RETURN EXISTS (SELECT 1 FROM pgmq.set_vt(p_queue, p_id,
      greatest(0, ceil(extract(epoch FROM p_vt - clock_timestamp())))::integer));
  END IF;
END;
$$;
CREATE FUNCTION tasker._queue_access_changed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  IF tasker._is_dispatched_queue(CASE WHEN TG_OP = 'DELETE' THEN OLD.queue_name ELSE NEW.queue_name END) THEN
    PERFORM tasker._refresh_queue_access();
  END IF;
  RETURN NULL;
END;
$$;
CREATE FUNCTION tasker._record_step_transition(p_step uuid, p_from text, p_to text, p_metadata jsonb) RETURNS uuid
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_sort integer;
  v_uuid uuid;
BEGIN
  IF p_from IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM tasker.step_state_transitions t WHERE t.from_state = p_from AND t.to_state = p_to
  ) THEN
    RAISE EXCEPTION 'invalid step transition % -> % for step %', p_from, p_to, p_step USING ERRCODE = 'check_violation';
  END IF;
  UPDATE tasker.workflow_step_transitions SET most_recent = false
  WHERE workflow_step_uuid = p_step AND most_recent
  RETURNING sort_key + 1 INTO v_sort;
  INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
  VALUES (p_step, p_from, p_to, coalesce(p_metadata, '{}'), coalesce(v_sort, 1), true, clock_timestamp())
  RETURNING workflow_step_transition_uuid INTO v_uuid;
  RETURN v_uuid;
END;
$$;
CREATE FUNCTION tasker._record_task_transition(p_task uuid, p_from text, p_to text, p_metadata jsonb, p_processor uuid) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_sort integer;
BEGIN
  IF p_from IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM tasker.task_state_transitions t WHERE t.from_state = p_from AND t.to_state = p_to
  ) THEN
    RAISE EXCEPTION 'invalid task transition % -> % for task %', p_from, p_to, p_task USING ERRCODE = 'check_violation';
  END IF;
  UPDATE tasker.task_transitions SET most_recent = false
  WHERE task_uuid = p_task AND most_recent
  RETURNING sort_key + 1 INTO v_sort;
  INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, metadata, processor_uuid, sort_key, most_recent, created_at)
  VALUES (p_task, p_from, p_to, coalesce(p_metadata, '{}'), p_processor, coalesce(v_sort, 1), true, clock_timestamp());
END;
$$;
CREATE FUNCTION tasker._redispatch_steps(p_task uuid) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_task record;
  v_queue text;
  s record;
  v_msg bigint;
  v_first bigint;
  v_count integer := 0;
BEGIN
  SELECT t.namespace_name, t.correlation_id INTO v_task FROM tasker.tasks t WHERE t.task_uuid = p_task;
  v_queue := 'worker_' || v_task.namespace_name || '_queue';
  FOR s IN
    SELECT ws.workflow_step_uuid, ws.current_state, ws.next_retry_at
    FROM tasker.workflow_steps ws
    WHERE ws.task_uuid = p_task AND ws.current_state IN ('enqueued', 'waiting_for_retry')
    ORDER BY ws.workflow_step_uuid
  LOOP
    IF s.current_state = 'waiting_for_retry' AND s.next_retry_at > clock_timestamp() THEN
      SELECT pgmq.send(v_queue, tasker._step_message(p_task, s.workflow_step_uuid, v_task.correlation_id), s.next_retry_at)
      INTO v_msg;
    ELSE
      SELECT pgmq.send(v_queue, tasker._step_message(p_task, s.workflow_step_uuid, v_task.correlation_id)) INTO v_msg;
    END IF;
    v_first := coalesce(v_first, v_msg);
    v_count := v_count + 1;
  END LOOP;
  IF v_count > 0 THEN
    PERFORM tasker._notify_message_ready(v_queue, jsonb_build_object(
      'event_type', CASE WHEN v_count = 1 THEN 'message_ready' ELSE 'batch_ready' END,
      'msg_id', v_first, 'message_count', v_count, 'delay_seconds', 0, 'ready_at', clock_timestamp()));
  END IF;
  RETURN v_count;
END;
$$;
CREATE FUNCTION tasker._refresh_queue_access() RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
  q record;
  v_send text := '';
  v_read text := '';
  v_archive text := '';
  v_set_vt text := '';
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('tasker._refresh_queue_access'));
  -- pgmq.meta does not exist yet when the function files are applied to a new database (they run before
  -- the tables are made): then every _q_* function is made with its fallback path only.
  IF to_regclass('pgmq.meta') IS NOT NULL THEN
    FOR q IN
      SELECT m.queue_name::text AS name, 'q_' || m.queue_name AS qt, 'a_' || m.queue_name AS at
      FROM pgmq.meta m
      WHERE tasker._is_dispatched_queue(m.queue_name)
        AND to_regclass(format('pgmq.%I', 'q_' || m.queue_name)) IS NOT NULL
        AND to_regclass(format('pgmq.%I', 'a_' || m.queue_name)) IS NOT NULL
      ORDER BY 1
    LOOP
      v_send := v_send || format($b$
  ELSIF p_queue = %L THEN
    WITH ins AS (
      INSERT INTO pgmq.%I (vt, message, read_ct)
      SELECT p_vt, u.m, p_read_ct FROM unnest(p_msgs) WITH ORDINALITY AS u(m, o) ORDER BY u.o
      RETURNING msg_id
    )
    SELECT array_agg(ins.msg_id ORDER BY ins.msg_id) INTO v_ids FROM ins;$b$, q.name, q.qt);
      v_read := v_read || format($b$
  ELSIF p_queue = %1$L THEN
    RETURN QUERY
    WITH cte AS (
      SELECT c.msg_id FROM pgmq.%2$I c
      WHERE c.vt <= v_now
      ORDER BY c.vt, c.msg_id + 0
      LIMIT p_qty
      FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE pgmq.%2$I m
      SET vt = clock_timestamp() + make_interval(secs => p_vt), read_ct = m.read_ct + 1
      WHERE m.msg_id = ANY(ARRAY(SELECT cte.msg_id FROM cte))
      RETURNING m.msg_id, m.read_ct, m.message
    )
    SELECT claimed.msg_id, claimed.read_ct, claimed.message FROM claimed ORDER BY claimed.msg_id;$b$, q.name, q.qt);
      v_archive := v_archive || format($b$
  ELSIF p_queue = %L THEN
    WITH archived AS (
      DELETE FROM pgmq.%I d WHERE d.msg_id = ANY(p_ids)
      RETURNING d.msg_id, d.read_ct, d.enqueued_at, d.vt, d.message, d.headers
    ), ins AS (
      INSERT INTO pgmq.%I (msg_id, read_ct, enqueued_at, vt, message, headers)
      SELECT * FROM archived
      RETURNING 1
    )
    SELECT count(*)::integer INTO v_count FROM ins;$b$, q.name, q.qt, q.at);
      v_set_vt := v_set_vt || format($b$
  ELSIF p_queue = %L THEN
    UPDATE pgmq.%I m SET vt = p_vt WHERE m.msg_id = p_id;
    RETURN FOUND;$b$, q.name, q.qt);
    END LOOP;
  END IF;
  EXECUTE format($f$
CREATE OR REPLACE FUNCTION tasker._q_send(p_queue text, p_msgs jsonb[], p_vt timestamptz, p_read_ct integer DEFAULT 0)
RETURNS bigint[]
LANGUAGE plpgsql AS $body$
DECLARE
  v_ids bigint[];
BEGIN
  IF coalesce(cardinality(p_msgs), 0) = 0 THEN
    RETURN '{}';%s
  ELSE
    SELECT array_agg(s.id ORDER BY s.id) INTO v_ids FROM pgmq._send_batch(p_queue, p_msgs, NULL, p_vt) AS s(id);
  END IF;
  RETURN coalesce(v_ids, '{}');
END;
$body$$f$, v_send);
  -- v_now: the clock is read once into a variable. clock_timestamp() in the condition is volatile, so it
  -- could only filter rows, never bound the scan of the (vt, (msg_id + 0)) index: a worker queue holding
  -- 3,000 leased messages read 4,213 blocks, 3.8 ms, to find that nothing was visible.
  EXECUTE format($f$
CREATE OR REPLACE FUNCTION tasker._q_read(p_queue text, p_vt integer, p_qty integer)
RETURNS TABLE (msg_id bigint, read_ct integer, message jsonb)
LANGUAGE plpgsql AS $body$
DECLARE
  v_now timestamptz := clock_timestamp();
BEGIN
  IF p_qty < 1 THEN
    RETURN;%s
  ELSE
    RETURN QUERY SELECT r.msg_id, r.read_ct, r.message FROM pgmq.read(p_queue, p_vt, p_qty) r;
  END IF;
END;
$body$$f$, v_read);
  EXECUTE format($f$
CREATE OR REPLACE FUNCTION tasker._q_archive(p_queue text, p_ids bigint[]) RETURNS integer
LANGUAGE plpgsql AS $body$
DECLARE
  v_count integer;
BEGIN
  IF coalesce(cardinality(p_ids), 0) = 0 THEN
    RETURN 0;%s
  ELSE
    SELECT count(*)::integer INTO v_count FROM pgmq.archive(p_queue, p_ids);
  END IF;
  RETURN v_count;
END;
$body$$f$, v_archive);
  EXECUTE format($f$
CREATE OR REPLACE FUNCTION tasker._q_set_vt(p_queue text, p_id bigint, p_vt timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $body$
BEGIN
  IF p_id IS NULL THEN
    RETURN false;%s
  ELSE
    RETURN EXISTS (SELECT 1 FROM pgmq.set_vt(p_queue, p_id,
      greatest(0, ceil(extract(epoch FROM p_vt - clock_timestamp())))::integer));
  END IF;
END;
$body$$f$, v_set_vt);
END;
$_$;
CREATE FUNCTION tasker._start_ready_children(p_task uuid, p_parent uuid, p_worker text, p_lease_seconds integer, p_limit integer, p_namespace text DEFAULT NULL::text, p_correlation uuid DEFAULT NULL::uuid, OUT queue text, OUT msg_ids bigint[], OUT claimed_msgs bigint[], OUT claimed_steps uuid[]) RETURNS record
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_namespace text := p_namespace;
  v_correlation uuid := p_correlation;
  v_ready uuid[];
  v_take uuid[];
  v_ids bigint[];
  r record;
BEGIN
  claimed_msgs := '{}';
  claimed_steps := '{}';
  IF p_limit < 1 THEN
    SELECT * INTO r FROM tasker._enqueue_ready_steps(p_task, p_parent);
    queue := r.queue;
    msg_ids := r.msg_ids;
    RETURN;
  END IF;
  IF v_namespace IS NULL THEN
    SELECT t.namespace_name, t.correlation_id INTO v_namespace, v_correlation FROM tasker.tasks t WHERE t.task_uuid = p_task;
  END IF;
  queue := 'worker_' || v_namespace || '_queue';
  msg_ids := '{}';
  SELECT array_agg(c.uuid ORDER BY c.uuid) INTO v_ready
  FROM (SELECT e.to_step_uuid AS uuid FROM tasker.workflow_step_edges e WHERE e.from_step_uuid = p_parent) c
  WHERE (SELECT s.current_state FROM tasker.workflow_steps s WHERE s.workflow_step_uuid = c.uuid) = 'pending'
    AND (SELECT count(*) FROM tasker.workflow_step_edges pe
         JOIN tasker.workflow_steps p ON p.workflow_step_uuid = pe.from_step_uuid
         WHERE pe.to_step_uuid = c.uuid AND p.current_state NOT IN ('complete', 'resolved_manually')) = 0;
  IF v_ready IS NULL THEN
    RETURN;
  END IF;
  v_take := v_ready[1:p_limit];
  v_ids := tasker._q_send(queue,
    ARRAY(SELECT tasker._step_message(p_task, u.id, v_correlation) FROM unnest(v_take) WITH ORDINALITY AS u(id, n) ORDER BY u.n),
    clock_timestamp() + make_interval(secs => p_lease_seconds), 1);
  WITH moved AS (
    UPDATE tasker.workflow_steps ws
    SET current_state = 'in_progress', in_process = true, attempts = ws.attempts + 1, last_attempted_at = now(),
        claimed_by = p_worker, lease_msg_id = v_ids[array_position(v_take, ws.workflow_step_uuid)],
        next_retry_at = NULL, updated_at = now()
    WHERE ws.workflow_step_uuid = ANY(v_take) AND ws.current_state = 'pending'
    RETURNING ws.workflow_step_uuid, ws.attempts, ws.lease_msg_id AS msg_id
  ), flipped AS (
    UPDATE tasker.workflow_step_transitions tr SET most_recent = false
    WHERE tr.workflow_step_transition_uuid = ANY(ARRAY(
      SELECT (SELECT cur.workflow_step_transition_uuid FROM tasker.workflow_step_transitions cur
              WHERE cur.workflow_step_uuid = fl.workflow_step_uuid AND cur.most_recent)
      FROM moved fl))
    RETURNING tr.workflow_step_uuid, tr.sort_key
  ), recorded AS (
    INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
    SELECT f.workflow_step_uuid, v.from_state, v.to_state, v.metadata, f.sort_key + v.n, v.n = 2, clock_timestamp()
    FROM flipped f
    JOIN moved m ON m.workflow_step_uuid = f.workflow_step_uuid
    CROSS JOIN LATERAL (VALUES (1, 'pending', 'enqueued', '{"event":"enqueue"}'::jsonb),
                               (2, 'enqueued', 'in_progress',
                                jsonb_build_object('event', 'start', 'worker', p_worker, 'attempt', m.attempts)))
      AS v(n, from_state, to_state, metadata)
    ORDER BY f.workflow_step_uuid, v.n
    RETURNING 1
  )
  SELECT coalesce(array_agg(m.msg_id ORDER BY m.msg_id), '{}'), coalesce(array_agg(m.workflow_step_uuid ORDER BY m.msg_id), '{}')
  INTO claimed_msgs, claimed_steps
  FROM moved m;
  IF cardinality(v_ready) > p_limit THEN
    -- The rest go to the queue as usual (they are still pending, their parents complete).
    SELECT * INTO r FROM tasker._enqueue_ready_steps(p_task, p_parent);
    msg_ids := r.msg_ids;
  END IF;
END;
$$;
CREATE FUNCTION tasker._step_message(p_task uuid, p_step uuid, p_correlation uuid) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  SELECT jsonb_build_object('task_uuid', p_task, 'step_uuid', p_step, 'correlation_id', p_correlation)
$$;
CREATE FUNCTION tasker._step_transition(p_step uuid, p_from text, p_to text, p_metadata jsonb DEFAULT '{}'::jsonb) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
BEGIN
  UPDATE tasker.workflow_steps
  SET current_state = p_to,
      in_process = (p_to = 'in_progress'),
      processed = processed OR p_to IN ('complete', 'cancelled', 'resolved_manually'),
      processed_at = CASE WHEN p_to IN ('complete', 'cancelled', 'resolved_manually') THEN now() ELSE processed_at END,
      updated_at = now()
  WHERE workflow_step_uuid = p_step AND current_state = p_from;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM tasker._record_step_transition(p_step, p_from, p_to, p_metadata);
  RETURN true;
END;
$$;
CREATE FUNCTION tasker._task_path(p_task uuid, p_from text, p_states text[], p_events text[], p_processor uuid) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_to text := p_states[cardinality(p_states)];
BEGIN
  UPDATE tasker.tasks
  SET current_state = v_to,
      complete = (v_to = 'complete'),
      completed_at = CASE WHEN v_to IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN now() ELSE NULL END,
      updated_at = now()
  WHERE task_uuid = p_task AND current_state = p_from;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  WITH flipped AS (
    UPDATE tasker.task_transitions tt SET most_recent = false
    WHERE tt.task_uuid = p_task AND tt.most_recent
    RETURNING tt.sort_key
  )
  INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, metadata, processor_uuid, sort_key, most_recent, created_at)
  SELECT p_task, CASE WHEN i = 1 THEN p_from ELSE p_states[i - 1] END, p_states[i],
         jsonb_build_object('event', p_events[i]), p_processor,
         coalesce((SELECT max(f.sort_key) FROM flipped f), 0) + i, i = cardinality(p_states), clock_timestamp()
  FROM generate_subscripts(p_states, 1) AS i;
  RETURN true;
END;
$$;
CREATE FUNCTION tasker._task_resume(p_task uuid, p_processor uuid) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_state text;
BEGIN
  SELECT current_state INTO v_state FROM tasker.tasks WHERE task_uuid = p_task;
  IF v_state = 'error' THEN
    PERFORM tasker._task_transition(p_task, 'error', 'pending', '{"event":"reset"}', p_processor);
    v_state := 'pending';
  END IF;
  IF v_state = 'pending' THEN
    PERFORM tasker._task_transition(p_task, 'pending', 'initializing', '{"event":"start"}', p_processor);
    v_state := 'initializing';
  END IF;
  IF v_state = 'initializing' THEN
    PERFORM tasker._task_transition(p_task, 'initializing', 'enqueuing_steps', '{"event":"ready_steps_found"}', p_processor);
    v_state := 'enqueuing_steps';
  END IF;
  IF v_state = 'waiting_for_dependencies' THEN
    PERFORM tasker._task_transition(p_task, 'waiting_for_dependencies', 'evaluating_results', '{"event":"dependencies_ready"}', p_processor);
    v_state := 'evaluating_results';
  END IF;
  IF v_state = 'evaluating_results' THEN
    PERFORM tasker._task_transition(p_task, 'evaluating_results', 'enqueuing_steps', '{"event":"ready_steps_found"}', p_processor);
    v_state := 'enqueuing_steps';
  END IF;
  IF v_state = 'waiting_for_retry' THEN
    PERFORM tasker._task_transition(p_task, 'waiting_for_retry', 'enqueuing_steps', '{"event":"retry_ready"}', p_processor);
    v_state := 'enqueuing_steps';
  END IF;
  IF v_state = 'enqueuing_steps' THEN
    PERFORM tasker._task_transition(p_task, 'enqueuing_steps', 'steps_in_process', '{"event":"steps_enqueued"}', p_processor);
  END IF;
END;
$$;
CREATE FUNCTION tasker._task_transition(p_task uuid, p_from text, p_to text, p_metadata jsonb DEFAULT '{}'::jsonb, p_processor uuid DEFAULT NULL::uuid) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
BEGIN
  UPDATE tasker.tasks
  SET current_state = p_to,
      complete = (p_to = 'complete'),
      completed_at = CASE WHEN p_to IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN now() ELSE NULL END,
      updated_at = now()
  WHERE task_uuid = p_task AND current_state = p_from;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM tasker._record_task_transition(p_task, p_from, p_to, p_metadata, p_processor);
  RETURN true;
END;
$$;
CREATE FUNCTION tasker._uuid_v7_floor(p_at timestamp with time zone) RETURNS uuid
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT (lpad(to_hex(floor(extract(epoch FROM p_at) * 1000)::bigint), 12, '0') || repeat('0', 20))::uuid
$$;
CREATE FUNCTION tasker.apply_step_action(p_task uuid, p_step uuid, p_action text, p_result jsonb DEFAULT NULL::jsonb, p_metadata jsonb DEFAULT NULL::jsonb, p_operator text DEFAULT NULL::text, p_reason text DEFAULT NULL::text, p_processor uuid DEFAULT NULL::uuid) RETURNS TABLE(outcome text, task_state text, step_state text, allowed_from text[])
    LANGUAGE plpgsql
    SET jit TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
  v_allowed text[] := CASE p_action
    WHEN 'reset_for_retry' THEN ARRAY['error']
    WHEN 'resolve_manually' THEN ARRAY['pending', 'waiting_for_retry', 'error']
    WHEN 'complete_manually' THEN ARRAY['pending', 'waiting_for_retry', 'error']
  END;
  v_task_state text;
  s record;
  v_to text;
  v_meta jsonb;
BEGIN
  IF v_allowed IS NULL THEN
    RAISE EXCEPTION 'unknown step action "%"; expected reset_for_retry, resolve_manually or complete_manually', p_action
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  allowed_from := v_allowed;
  SELECT t.current_state INTO v_task_state FROM tasker.tasks t WHERE t.task_uuid = p_task FOR UPDATE;
  IF NOT FOUND THEN
    outcome := 'task_not_found';
    RETURN NEXT;
    RETURN;
  END IF;
  -- Read without a row lock: every writer of a step's state either holds the task lock we hold, or (claim_steps)
  -- is caught by the compare-and-set below. Not locking an in_progress step also keeps us out of claim_steps'
  -- step-then-task lock order on an expired lease.
  SELECT ws.current_state, ws.attempts, ws.last_error, ws.next_retry_at, ws.claimed_by
  INTO s
  FROM tasker.workflow_steps ws WHERE ws.workflow_step_uuid = p_step AND ws.task_uuid = p_task;
  IF NOT FOUND THEN
    outcome := 'step_not_found';
    task_state := v_task_state;
    RETURN NEXT;
    RETURN;
  END IF;
  task_state := v_task_state;
  step_state := s.current_state;
  IF v_task_state IN ('complete', 'cancelled', 'resolved_manually') THEN
    outcome := 'task_finished';
    RETURN NEXT;
    RETURN;
  END IF;
  IF NOT (s.current_state = ANY (v_allowed)) THEN
    outcome := 'not_allowed';
    RETURN NEXT;
    RETURN;
  END IF;
  v_meta := jsonb_strip_nulls(jsonb_build_object(
    'event', p_action, 'operator', p_operator, 'reason', p_reason, 'metadata', p_metadata));
  IF p_action = 'reset_for_retry' THEN
    v_to := 'pending';
    v_meta := v_meta || jsonb_strip_nulls(jsonb_build_object(
      'previous_attempts', s.attempts, 'previous_error', s.last_error));
  ELSIF p_action = 'resolve_manually' THEN
    v_to := 'resolved_manually';
  ELSE
    v_to := 'complete';
  END IF;
  -- Compare-and-set with the other columns in the same UPDATE: a claim that got there first wins and we refuse.
  UPDATE tasker.workflow_steps ws
  SET current_state = v_to,
      attempts = CASE WHEN p_action = 'reset_for_retry' THEN 0 ELSE ws.attempts END,
      last_error = CASE WHEN p_action = 'reset_for_retry' THEN NULL ELSE ws.last_error END,
      results = CASE WHEN p_action = 'complete_manually' THEN coalesce(p_result, 'null'::jsonb) ELSE ws.results END,
      next_retry_at = NULL,
      claimed_by = NULL,
      lease_msg_id = NULL,
      in_process = false,
      processed = ws.processed OR v_to IN ('complete', 'resolved_manually'),
      processed_at = CASE WHEN v_to IN ('complete', 'resolved_manually') THEN now() ELSE ws.processed_at END,
      updated_at = now()
  WHERE ws.workflow_step_uuid = p_step AND ws.current_state = s.current_state;
  IF NOT FOUND THEN
    outcome := 'not_allowed';
    SELECT ws.current_state INTO step_state FROM tasker.workflow_steps ws WHERE ws.workflow_step_uuid = p_step;
    RETURN NEXT;
    RETURN;
  END IF;
  PERFORM tasker._record_step_transition(p_step, s.current_state, v_to, v_meta);
  IF v_task_state = 'blocked_by_failures' THEN
    PERFORM tasker._task_transition(p_task, 'blocked_by_failures', 'error', '{"event":"give_up"}', p_processor);
    v_task_state := 'error';
  END IF;
  IF v_task_state = 'error' THEN
    IF NOT EXISTS (SELECT 1 FROM tasker.workflow_steps ws WHERE ws.task_uuid = p_task AND ws.current_state = 'error') THEN
      PERFORM tasker._task_transition(p_task, 'error', 'pending', jsonb_strip_nulls(jsonb_build_object(
        'event', 'reset', 'cause', 'step_action', 'action', p_action, 'step_uuid', p_step,
        'operator', p_operator, 'reason', p_reason)), p_processor);
      PERFORM tasker._task_resume(p_task, p_processor);
      PERFORM tasker._redispatch_steps(p_task);
      PERFORM tasker._notify_sent(e.queue, e.msg_ids) FROM tasker._enqueue_ready_steps(p_task, NULL) e;
      PERFORM tasker._evaluate_task(p_task, p_processor);
    END IF;
  ELSE
    PERFORM tasker._notify_sent(e.queue, e.msg_ids) FROM tasker._enqueue_ready_steps(p_task, NULL) e;
    PERFORM tasker._evaluate_task(p_task, p_processor);
  END IF;
  outcome := 'applied';
  SELECT t.current_state INTO task_state FROM tasker.tasks t WHERE t.task_uuid = p_task;
  SELECT ws.current_state INTO step_state FROM tasker.workflow_steps ws WHERE ws.workflow_step_uuid = p_step;
  RETURN NEXT;
END;
$$;
CREATE FUNCTION tasker.backoff_delay_ms(p_strategy text, p_base_ms integer, p_max_ms integer, p_attempt integer, p_retry_after_ms integer DEFAULT NULL::integer) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_delay double precision;
BEGIN
  IF p_strategy IS NULL OR p_strategy NOT IN ('exponential', 'linear', 'fixed') THEN
    RAISE EXCEPTION 'tasker.backoff_delay_ms: unknown backoff strategy %; use exponential, linear or fixed',
      coalesce(quote_literal(p_strategy), 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_retry_after_ms IS NOT NULL AND p_retry_after_ms >= 0 THEN
    RETURN least(p_retry_after_ms, p_max_ms);
  END IF;
  v_delay := CASE p_strategy
    WHEN 'exponential' THEN p_base_ms::double precision * power(2, least(greatest(p_attempt, 1) - 1, 40))
    WHEN 'linear' THEN p_base_ms::double precision * greatest(p_attempt, 1)
    ELSE p_base_ms::double precision
  END;
  v_delay := least(v_delay, p_max_ms::double precision);
  RETURN floor(v_delay * (0.9 + random() * 0.1))::integer;
END;
$$;
CREATE FUNCTION tasker.cancel_task(p_task uuid, p_processor uuid DEFAULT NULL::uuid) RETURNS text
    LANGUAGE plpgsql
    SET jit TO 'off'
    AS $$
DECLARE
  v_state text;
  v_step record;
BEGIN
  SELECT current_state INTO v_state FROM tasker.tasks WHERE task_uuid = p_task FOR UPDATE;
  IF NOT FOUND THEN
    RETURN 'not_found';
  END IF;
  IF v_state IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN
    RETURN 'already_' || v_state;
  END IF;
  FOR v_step IN
    SELECT workflow_step_uuid, current_state FROM tasker.workflow_steps
    WHERE task_uuid = p_task AND current_state NOT IN ('complete', 'cancelled', 'resolved_manually', 'error')
    ORDER BY workflow_step_uuid
    FOR UPDATE
  LOOP
    PERFORM tasker._step_transition(v_step.workflow_step_uuid, v_step.current_state, 'cancelled', '{"event":"cancel"}');
  END LOOP;
  PERFORM tasker._task_transition(p_task, v_state, 'cancelled', '{"event":"cancel"}', p_processor);
  RETURN 'cancelled';
END;
$$;
CREATE FUNCTION tasker.claim_steps(p_namespace text, p_worker text, p_lease_seconds integer, p_limit integer, p_async_commit boolean DEFAULT true) RETURNS TABLE(msg_id bigint, task_uuid uuid, step_uuid uuid, step_name text, handler_callable text, inputs jsonb, context jsonb, attempt integer, max_attempts integer, timeout_seconds integer, correlation_id uuid, dependency_results jsonb)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET jit TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
  v_queue text := 'worker_' || p_namespace || '_queue';
  v_msgs bigint[];
  v_steps uuid[];
  v_tasks uuid[];
  v_claimed_msgs bigint[] := '{}';
  v_claimed_steps uuid[] := '{}';
  v_fast_msgs bigint[];
  v_fast_steps uuid[];
  m record;
  s record;
  v_step uuid;
  v_expired boolean;
  v_cand_steps uuid[];
  v_cand_msgs bigint[];
BEGIN
  IF p_limit < 1 THEN
    RETURN;
  END IF;
  IF p_async_commit THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  SELECT array_agg(r.msg_id ORDER BY r.msg_id), array_agg((r.message ->> 'step_uuid')::uuid ORDER BY r.msg_id),
         array_agg((r.message ->> 'task_uuid')::uuid ORDER BY r.msg_id)
  INTO v_msgs, v_steps, v_tasks
  FROM tasker._q_read(v_queue, p_lease_seconds, p_limit) r;
  IF v_msgs IS NULL THEN
    RETURN;
  END IF;
  -- One message per enqueued step (the oldest), as arrays: the UPDATE then finds its rows by primary key.
  SELECT array_agg(c.step_uuid ORDER BY c.step_uuid), array_agg(c.msg_id ORDER BY c.step_uuid)
  INTO v_cand_steps, v_cand_msgs
  FROM (
    SELECT DISTINCT ON (m.step_uuid) m.step_uuid, m.msg_id
    FROM unnest(v_msgs, v_steps) AS m(msg_id, step_uuid)
    WHERE (SELECT ws.current_state FROM tasker.workflow_steps ws WHERE ws.workflow_step_uuid = m.step_uuid) = 'enqueued'
    ORDER BY m.step_uuid, m.msg_id
  ) c;
  WITH claimed AS (
    UPDATE tasker.workflow_steps ws
    SET current_state = 'in_progress', in_process = true, attempts = ws.attempts + 1, last_attempted_at = now(),
        claimed_by = p_worker, lease_msg_id = v_cand_msgs[array_position(v_cand_steps, ws.workflow_step_uuid)],
        next_retry_at = NULL, updated_at = now()
    WHERE ws.workflow_step_uuid = ANY(v_cand_steps) AND ws.current_state = 'enqueued'
      AND (SELECT t.current_state FROM tasker.tasks t WHERE t.task_uuid = ws.task_uuid)
          NOT IN ('complete', 'error', 'cancelled', 'resolved_manually')
    RETURNING ws.workflow_step_uuid, ws.lease_msg_id AS msg_id, ws.attempts
  ), flipped AS (
    UPDATE tasker.workflow_step_transitions tr SET most_recent = false
    WHERE tr.workflow_step_transition_uuid = ANY(ARRAY(
      SELECT (SELECT cur.workflow_step_transition_uuid FROM tasker.workflow_step_transitions cur
              WHERE cur.workflow_step_uuid = fl.workflow_step_uuid AND cur.most_recent)
      FROM claimed fl))
    RETURNING tr.workflow_step_uuid, tr.sort_key
  ), recorded AS (
    INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
    SELECT f.workflow_step_uuid, 'enqueued', 'in_progress',
           jsonb_build_object('event', 'start', 'worker', p_worker, 'attempt', c.attempts), f.sort_key + 1, true, clock_timestamp()
    FROM flipped f JOIN claimed c ON c.workflow_step_uuid = f.workflow_step_uuid
    RETURNING 1
  )
  -- recorded runs whether or not it is read: data-modifying WITH clauses always run to completion.
  SELECT array_agg(c.msg_id ORDER BY c.msg_id), array_agg(c.workflow_step_uuid ORDER BY c.msg_id)
  INTO v_fast_msgs, v_fast_steps
  FROM claimed c;
  v_claimed_msgs := coalesce(v_fast_msgs, '{}');
  v_claimed_steps := coalesce(v_fast_steps, '{}');
  FOR m IN
    SELECT u.msg_id, u.step_uuid, u.task_uuid FROM unnest(v_msgs, v_steps, v_tasks) AS u(msg_id, step_uuid, task_uuid)
    WHERE NOT (u.msg_id = ANY(v_claimed_msgs))
    ORDER BY u.msg_id
  LOOP
    v_step := m.step_uuid;
    SELECT ws.workflow_step_uuid, ws.current_state, ws.attempts, ws.max_attempts, ws.retryable, ws.next_retry_at,
           ws.lease_msg_id, t.current_state AS task_state
    INTO s
    FROM tasker.workflow_steps ws JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
    WHERE ws.workflow_step_uuid = v_step
    FOR UPDATE OF ws;
    IF NOT FOUND OR s.task_state IN ('complete', 'error', 'cancelled', 'resolved_manually') AND s.current_state <> 'in_progress' THEN
      PERFORM tasker._q_archive(v_queue, ARRAY[m.msg_id]);
      CONTINUE;
    END IF;
    v_expired := s.current_state = 'in_progress' AND s.lease_msg_id = m.msg_id;
    IF v_expired THEN
      -- The previous holder's lease ran out: that run failed.
      IF s.retryable AND s.attempts < s.max_attempts THEN
        UPDATE tasker.workflow_steps ws
        SET last_error = jsonb_build_object('message', 'worker lost: lease expired before a result', 'error_type', 'lease_expired',
                                            'retryable', true, 'attempt', s.attempts, 'worker', ws.claimed_by)
        WHERE ws.workflow_step_uuid = v_step;
        PERFORM tasker._step_transition(v_step, 'in_progress', 'waiting_for_retry', '{"event":"lease_expired"}');
        PERFORM tasker._step_transition(v_step, 'waiting_for_retry', 'pending', '{"event":"retry"}');
        PERFORM tasker._step_transition(v_step, 'pending', 'enqueued', '{"event":"enqueue"}');
      ELSE
        UPDATE tasker.workflow_steps ws
        SET last_error = jsonb_build_object('message', 'worker lost: lease expired before a result, and no attempts remain',
                                            'error_type', 'lease_expired', 'retryable', false, 'attempt', s.attempts,
                                            'worker', ws.claimed_by)
        WHERE ws.workflow_step_uuid = v_step;
        PERFORM tasker._step_transition(v_step, 'in_progress', 'error', '{"event":"lease_expired"}');
        PERFORM tasker._q_archive(v_queue, ARRAY[m.msg_id]);
        PERFORM 1 FROM tasker.tasks t WHERE t.task_uuid = m.task_uuid FOR UPDATE;
        PERFORM tasker._evaluate_task(m.task_uuid, NULL);
        CONTINUE;
      END IF;
    ELSIF s.current_state = 'waiting_for_retry' THEN
      IF s.next_retry_at > clock_timestamp() + interval '50 milliseconds' THEN
        -- Not due yet (a stale early message): leave it hidden until the retry is due.
        PERFORM tasker._q_set_vt(v_queue, m.msg_id,
          clock_timestamp() + make_interval(secs => greatest(1, ceil(extract(epoch FROM s.next_retry_at - clock_timestamp())))));
        CONTINUE;
      END IF;
      PERFORM tasker._step_transition(v_step, 'waiting_for_retry', 'pending', '{"event":"retry"}');
      PERFORM tasker._step_transition(v_step, 'pending', 'enqueued', '{"event":"enqueue"}');
    ELSIF s.current_state <> 'enqueued' THEN
      -- Past this point already, or held under another message's lease: a duplicate message.
      PERFORM tasker._q_archive(v_queue, ARRAY[m.msg_id]);
      CONTINUE;
    END IF;
    UPDATE tasker.workflow_steps ws
    SET current_state = 'in_progress', in_process = true, attempts = ws.attempts + 1, last_attempted_at = now(),
        claimed_by = p_worker, lease_msg_id = m.msg_id, next_retry_at = NULL, updated_at = now()
    WHERE ws.workflow_step_uuid = v_step;
    PERFORM tasker._record_step_transition(v_step, 'enqueued', 'in_progress',
      jsonb_build_object('event', 'start', 'worker', p_worker, 'attempt', s.attempts + 1));
    v_claimed_msgs := v_claimed_msgs || m.msg_id;
    v_claimed_steps := v_claimed_steps || v_step;
  END LOOP;
  IF cardinality(v_claimed_msgs) = 0 THEN
    RETURN;
  END IF;
  RETURN QUERY
  SELECT c.msg_id, ws.task_uuid, ws.workflow_step_uuid, ws.name::text, ws.handler_callable, ws.inputs, t.context,
         ws.attempts, ws.max_attempts::integer, ws.timeout_seconds, t.correlation_id,
         tasker.step_dependency_results(ws.workflow_step_uuid)
  FROM unnest(v_claimed_msgs, v_claimed_steps) AS c(msg_id, step_uuid)
  JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = c.step_uuid
  JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
  ORDER BY c.msg_id;
END;
$$;
CREATE FUNCTION tasker.complete_many_and_claim(p_results jsonb, p_worker text, p_inline boolean, p_namespace text, p_lease_seconds integer, p_limit integer, p_notify boolean DEFAULT true, p_refill boolean DEFAULT true) RETURNS TABLE(msg_id bigint, task_uuid uuid, step_uuid uuid, step_name text, handler_callable text, inputs jsonb, context jsonb, attempt integer, max_attempts integer, timeout_seconds integer, correlation_id uuid, dependency_results jsonb, outcomes jsonb, notify jsonb)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET jit TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
  x record;
  r record;
  c record;
  v_room integer := greatest(p_limit, 0);
  v_outcomes jsonb := '{}';
  v_started_msgs bigint[] := '{}';
  v_started_steps uuid[] := '{}';
  v_claimed bigint[] := '{}';
  v_queues text[] := '{}';
  v_ids bigint[] := '{}';
  v_worker_queue text := 'worker_' || p_namespace || '_queue';
  v_notify jsonb := '{}';
  v_q text;
  v_left bigint[];
  -- The successful results applied as a set, in task order: step, task, lease, the lease's queue, whether the
  -- task was still live (not terminal) when locked, and its namespace.
  v_done_steps uuid[];
  v_done_tasks uuid[];
  v_done_leases bigint[];
  v_done_queues text[];
  v_done_live boolean[];
  v_done_namespaces text[];
  v_finish uuid[] := '{}';
  -- The batch's successful results, as arrays in one order (the done UPDATE reads them by position).
  v_res_steps uuid[];
  v_res_tasks uuid[];
  v_res_attempts integer[];
  v_res_payloads jsonb[];
  v_res_ms integer[];
  -- States compared through variables, not literals: a generic plan then cannot prove the partial indexes
  -- workflow_steps_in_progress_idx and tasks_active_idx usable, and finds rows by primary key. With the
  -- literals it can scan those indexes whole, and without vacuum they keep an entry for every step that was
  -- ever in progress and every task that ever ran: the cost of a batch would grow with the table.
  c_in_progress CONSTANT text := 'in_progress';
  c_steps_in_process CONSTANT text := 'steps_in_process';
  -- A lone result (a chain, one step at a time) costs less through _complete_step: measured with pgbench,
  -- a linear task runs about 10 % slower through the set statements, which pay for the batch they expect.
  v_as_set boolean := p_inline AND jsonb_array_length(p_results) > 1;
BEGIN
  IF v_as_set THEN
    -- Every task of the batch locked up front, in task_uuid order, before any step: the engine's locking order.
    -- (One by one, _complete_step takes each lock itself, in the same order.)
    PERFORM 1 FROM tasker.tasks t
    WHERE t.task_uuid = ANY(ARRAY(SELECT (e ->> 'task_uuid')::uuid FROM jsonb_array_elements(p_results) AS e))
    ORDER BY t.task_uuid
    FOR UPDATE;
    SELECT array_agg(e.step_uuid ORDER BY e.step_uuid), array_agg(e.task_uuid ORDER BY e.step_uuid),
           array_agg(e.attempt ORDER BY e.step_uuid), array_agg(e.payload ORDER BY e.step_uuid),
           array_agg(e.execution_ms ORDER BY e.step_uuid)
    INTO v_res_steps, v_res_tasks, v_res_attempts, v_res_payloads, v_res_ms
    FROM jsonb_to_recordset(p_results) AS e(task_uuid uuid, step_uuid uuid, attempt integer, success boolean,
                                            payload jsonb, execution_ms integer)
    WHERE e.success;
    WITH done AS (
      UPDATE tasker.workflow_steps ws
      SET current_state = 'complete', in_process = false, processed = true, processed_at = now(),
          results = v_res_payloads[array_position(v_res_steps, ws.workflow_step_uuid)], updated_at = now()
      WHERE ws.workflow_step_uuid = ANY(v_res_steps) AND ws.current_state = c_in_progress
        AND ws.task_uuid = v_res_tasks[array_position(v_res_steps, ws.workflow_step_uuid)]
        AND ws.attempts = v_res_attempts[array_position(v_res_steps, ws.workflow_step_uuid)]
        AND ws.claimed_by IS NOT DISTINCT FROM p_worker
      RETURNING ws.workflow_step_uuid, ws.task_uuid, ws.lease_msg_id,
                v_res_attempts[array_position(v_res_steps, ws.workflow_step_uuid)] AS attempt,
                v_res_ms[array_position(v_res_steps, ws.workflow_step_uuid)] AS execution_ms
    ), flipped AS (
      UPDATE tasker.workflow_step_transitions tr SET most_recent = false
      WHERE tr.workflow_step_transition_uuid = ANY(ARRAY(
        SELECT (SELECT cur.workflow_step_transition_uuid FROM tasker.workflow_step_transitions cur
                WHERE cur.workflow_step_uuid = fl.workflow_step_uuid AND cur.most_recent)
        FROM done fl))
      RETURNING tr.workflow_step_uuid, tr.sort_key
    ), recorded AS (
      INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state, metadata, sort_key, most_recent, created_at)
      SELECT d.workflow_step_uuid, v.from_state, v.to_state,
             CASE WHEN v.n = 1
                  THEN jsonb_build_object('event', 'enqueue_for_orchestration', 'worker', p_worker, 'attempt', d.attempt,
                                          'execution_time_ms', d.execution_ms)
                  ELSE '{"event":"complete"}'::jsonb END,
             coalesce(f.sort_key, 0) + v.n, v.n = 2, clock_timestamp()
      FROM done d
      LEFT JOIN flipped f ON f.workflow_step_uuid = d.workflow_step_uuid
      CROSS JOIN (VALUES (1, 'in_progress', 'enqueued_for_orchestration'),
                         (2, 'enqueued_for_orchestration', 'complete')) AS v(n, from_state, to_state)
      ORDER BY d.task_uuid, d.workflow_step_uuid, v.n
      RETURNING workflow_step_transition_uuid, workflow_step_uuid, to_state
    ), audited AS (
      INSERT INTO tasker.workflow_step_result_audit (workflow_step_uuid, workflow_step_transition_uuid, task_uuid, worker_uuid,
                                                     correlation_id, success, attempt, execution_time_ms)
      SELECT d.workflow_step_uuid, rc.workflow_step_transition_uuid, d.task_uuid, p_worker, t.correlation_id, true,
             d.attempt, d.execution_ms
      FROM recorded rc
      JOIN done d ON d.workflow_step_uuid = rc.workflow_step_uuid
      JOIN tasker.tasks t ON t.task_uuid = d.task_uuid
      WHERE rc.to_state = 'enqueued_for_orchestration'
      RETURNING 1
    )
    SELECT array_agg(d.workflow_step_uuid ORDER BY d.task_uuid, d.workflow_step_uuid),
           array_agg(d.task_uuid ORDER BY d.task_uuid, d.workflow_step_uuid),
           array_agg(d.lease_msg_id ORDER BY d.task_uuid, d.workflow_step_uuid),
           array_agg('worker_' || t.namespace_name || '_queue' ORDER BY d.task_uuid, d.workflow_step_uuid),
           array_agg(t.current_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually')
                     ORDER BY d.task_uuid, d.workflow_step_uuid),
           array_agg(t.namespace_name::text ORDER BY d.task_uuid, d.workflow_step_uuid)
    INTO v_done_steps, v_done_tasks, v_done_leases, v_done_queues, v_done_live, v_done_namespaces
    FROM done d
    JOIN tasker.tasks t ON t.task_uuid = d.task_uuid;
    -- A successful result that matched no claim is stale (another run holds the step, or it is finished).
    SELECT v_outcomes || coalesce(jsonb_object_agg(e ->> 'step_uuid',
                                                   CASE WHEN (e ->> 'step_uuid')::uuid = ANY(coalesce(v_done_steps, '{}'))
                                                        THEN 'complete' ELSE 'stale' END), '{}')
    INTO v_outcomes
    FROM jsonb_array_elements(p_results) AS e
    WHERE (e ->> 'success')::boolean;
    IF v_done_steps IS NOT NULL THEN
      FOR v_q IN SELECT DISTINCT q FROM unnest(v_done_queues) AS q LOOP
        PERFORM tasker._q_archive(v_q, ARRAY(SELECT u.lease FROM unnest(v_done_queues, v_done_leases) AS u(q, lease)
                                             WHERE u.q = v_q AND u.lease IS NOT NULL));
      END LOOP;
      -- Children of the completed steps, for live tasks: started here for this worker up to its room, the rest
      -- enqueued. Only steps that have children get the call.
      FOR x IN
        SELECT u.step, u.task, u.namespace
        FROM unnest(v_done_steps, v_done_tasks, v_done_live, v_done_namespaces) WITH ORDINALITY AS u(step, task, live, namespace, o)
        WHERE u.live AND EXISTS (SELECT 1 FROM tasker.workflow_step_edges e WHERE e.from_step_uuid = u.step)
        ORDER BY u.o
      LOOP
        SELECT * INTO r FROM tasker._start_ready_children(x.task, x.step, p_worker, p_lease_seconds,
                                                          CASE WHEN x.namespace = p_namespace THEN v_room ELSE 0 END);
        IF coalesce(cardinality(r.claimed_steps), 0) > 0 THEN
          v_started_msgs := v_started_msgs || r.claimed_msgs;
          v_started_steps := v_started_steps || r.claimed_steps;
          v_room := v_room - cardinality(r.claimed_steps);
        END IF;
        IF coalesce(cardinality(r.msg_ids), 0) > 0 THEN
          v_queues := v_queues || array_fill(r.queue, ARRAY[cardinality(r.msg_ids)]);
          v_ids := v_ids || r.msg_ids;
        END IF;
      END LOOP;
      -- The tasks these results touched: finished ones complete together; still running ones need nothing;
      -- anything else (failed steps, retries waiting, a task not in steps_in_process) is _evaluate_task's.
      FOR x IN
        -- Each task's state read by a subquery on its primary key: with "= ANY" a generic plan can read
        -- tasks_active_idx whole instead, and count the steps of every live task, not only the batch's.
        SELECT z.task, z.state, z.total, z.done, z.failed, z.in_flight, z.retrying
        FROM (
          SELECT u.task, (SELECT t.current_state FROM tasker.tasks t WHERE t.task_uuid = u.task) AS state,
                 s.total, s.done, s.failed, s.in_flight, s.retrying
          FROM (SELECT DISTINCT d FROM unnest(v_done_tasks) AS d) AS u(task)
          CROSS JOIN LATERAL (
            SELECT count(*) AS total,
                   count(*) FILTER (WHERE ws.current_state IN ('complete', 'resolved_manually')) AS done,
                   count(*) FILTER (WHERE ws.current_state = 'error') AS failed,
                   count(*) FILTER (WHERE ws.current_state IN ('enqueued', 'in_progress', 'enqueued_for_orchestration',
                                                               'enqueued_as_error_for_orchestration')) AS in_flight,
                   count(*) FILTER (WHERE ws.current_state = 'waiting_for_retry') AS retrying
            FROM tasker.workflow_steps ws WHERE ws.task_uuid = u.task
          ) s
        ) z
        WHERE z.state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually', 'blocked_by_failures')
        ORDER BY z.task
      LOOP
        IF x.state = 'steps_in_process' AND x.failed = 0 AND x.done = x.total THEN
          v_finish := v_finish || x.task;
        ELSIF x.state = 'steps_in_process' AND x.failed = 0 AND NOT (x.in_flight = 0 AND x.retrying > 0) THEN
          NULL; -- still running: what _evaluate_task would decide too
        ELSE
          PERFORM tasker._evaluate_task(x.task, NULL);
        END IF;
      END LOOP;
      IF cardinality(v_finish) > 0 THEN
        WITH fin AS (
          UPDATE tasker.tasks t
          SET current_state = 'complete', complete = true, completed_at = now(), updated_at = now()
          WHERE t.task_uuid = ANY(v_finish) AND t.current_state = c_steps_in_process
          RETURNING t.task_uuid
        ), flipped AS (
          UPDATE tasker.task_transitions tt SET most_recent = false
          WHERE tt.task_transition_uuid = ANY(ARRAY(
            SELECT (SELECT cur.task_transition_uuid FROM tasker.task_transitions cur
                    WHERE cur.task_uuid = fl.task_uuid AND cur.most_recent)
            FROM fin fl))
          RETURNING tt.task_uuid, tt.sort_key
        )
        INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, metadata, processor_uuid, sort_key, most_recent, created_at)
        SELECT fin.task_uuid, v.from_state, v.to_state, v.metadata::jsonb, NULL, coalesce(f.sort_key, 0) + v.n, v.n = 2,
               clock_timestamp()
        FROM fin
        LEFT JOIN flipped f ON f.task_uuid = fin.task_uuid
        CROSS JOIN (VALUES (1, 'steps_in_process', 'evaluating_results', '{"event":"step_completed"}'),
                           (2, 'evaluating_results', 'complete', '{"event":"all_steps_successful"}')) AS v(n, from_state, to_state, metadata)
        ORDER BY fin.task_uuid, v.n;
      END IF;
    END IF;
  END IF;
  -- Everything else one by one: failures, a lone result, and with p_inline false every result.
  FOR x IN
    SELECT e.task_uuid, e.step_uuid, e.attempt, e.success, e.payload, e.execution_ms, t.namespace_name
    FROM jsonb_to_recordset(p_results) AS e(task_uuid uuid, step_uuid uuid, attempt integer, success boolean,
                                            payload jsonb, execution_ms integer)
    LEFT JOIN tasker.tasks t ON t.task_uuid = e.task_uuid
    WHERE NOT (v_as_set AND e.success)
    ORDER BY e.task_uuid, e.step_uuid
  LOOP
    SELECT * INTO r FROM tasker._complete_step(x.task_uuid, x.step_uuid, x.attempt, x.success, x.payload, p_worker,
                                               x.execution_ms, p_inline,
                                               CASE WHEN x.namespace_name = p_namespace THEN v_room ELSE 0 END,
                                               p_lease_seconds);
    v_outcomes := v_outcomes || jsonb_build_object(x.step_uuid::text, r.outcome);
    IF coalesce(cardinality(r.claimed_steps), 0) > 0 THEN
      v_started_msgs := v_started_msgs || r.claimed_msgs;
      v_started_steps := v_started_steps || r.claimed_steps;
      v_room := v_room - cardinality(r.claimed_steps);
    END IF;
    IF coalesce(cardinality(r.msg_ids), 0) > 0 THEN
      v_queues := v_queues || array_fill(r.queue, ARRAY[cardinality(r.msg_ids)]);
      v_ids := v_ids || r.msg_ids;
    END IF;
  END LOOP;
  FOR c IN
    SELECT u.msg_id, ws.task_uuid, ws.workflow_step_uuid AS step_uuid, ws.name::text AS step_name, ws.handler_callable,
           ws.inputs, t.context, ws.attempts AS attempt, ws.max_attempts, ws.timeout_seconds, t.correlation_id,
           tasker.step_dependency_results(ws.workflow_step_uuid) AS dependency_results
    FROM unnest(v_started_msgs, v_started_steps) AS u(msg_id, step_uuid)
    JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = u.step_uuid
    JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
    ORDER BY u.msg_id
  LOOP
    msg_id := c.msg_id; task_uuid := c.task_uuid; step_uuid := c.step_uuid; step_name := c.step_name;
    handler_callable := c.handler_callable; inputs := c.inputs; context := c.context; attempt := c.attempt;
    max_attempts := c.max_attempts; timeout_seconds := c.timeout_seconds; correlation_id := c.correlation_id;
    dependency_results := c.dependency_results;
    RETURN NEXT;
  END LOOP;
  IF v_room > 0 AND p_refill THEN
    FOR c IN SELECT * FROM tasker.claim_steps(p_namespace, p_worker, p_lease_seconds, v_room, false) LOOP
      msg_id := c.msg_id; task_uuid := c.task_uuid; step_uuid := c.step_uuid; step_name := c.step_name;
      handler_callable := c.handler_callable; inputs := c.inputs; context := c.context; attempt := c.attempt;
      max_attempts := c.max_attempts; timeout_seconds := c.timeout_seconds; correlation_id := c.correlation_id;
      dependency_results := c.dependency_results;
      v_claimed := v_claimed || c.msg_id;
      RETURN NEXT;
    END LOOP;
  END IF;
  -- Signals: every queue that got messages, less the worker-queue messages this call claimed itself.
  IF cardinality(v_queues) > 0 THEN
  FOR v_q IN SELECT DISTINCT u.name FROM unnest(v_queues) AS u(name) LOOP
    v_left := ARRAY(SELECT u.id FROM unnest(v_queues, v_ids) AS u(name, id)
                    WHERE u.name = v_q AND NOT (v_q = v_worker_queue AND u.id = ANY(v_claimed)));
    IF cardinality(v_left) > 0 THEN
      IF p_notify THEN
        PERFORM tasker._notify_sent(v_q, v_left);
      ELSE
        v_notify := v_notify || jsonb_build_object(v_q, to_jsonb(v_left));
      END IF;
    END IF;
  END LOOP;
  END IF;
  msg_id := NULL; task_uuid := NULL; step_uuid := NULL; step_name := NULL; handler_callable := NULL; inputs := NULL;
  context := NULL; attempt := NULL; max_attempts := NULL; timeout_seconds := NULL; correlation_id := NULL;
  dependency_results := NULL;
  outcomes := v_outcomes;
  notify := v_notify;
  RETURN NEXT;
END;
$$;
CREATE FUNCTION tasker.create_tasks(p_tasks jsonb, p_notify boolean) RETURNS TABLE(task_uuid uuid, current_state text, enqueued_steps integer, queue text, msg_ids bigint[])
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  r record;
  v_one jsonb;
BEGIN
  IF jsonb_array_length(p_tasks) = 1 THEN
    v_one := p_tasks -> 0;
    SELECT * INTO r FROM tasker._create_single_task(v_one -> 'task', v_one -> 'steps', v_one -> 'edges',
                                                    (v_one ->> 'request_msg_id')::bigint);
    IF p_notify THEN
      PERFORM tasker._notify_sent(r.queue, r.msg_ids);
    END IF;
    RETURN QUERY SELECT r.task_uuid, r.current_state, r.enqueued_steps, r.queue, r.msg_ids;
    RETURN;
  END IF;
  IF NOT p_notify THEN
    RETURN QUERY SELECT * FROM tasker._create_task_batch(p_tasks);
    RETURN;
  END IF;
  -- A batch that notifies in its commit (createTask.ts never asks for one): a signal per task.
  FOR r IN SELECT * FROM tasker._create_task_batch(p_tasks) LOOP
    PERFORM tasker._notify_sent(r.queue, r.msg_ids);
    task_uuid := r.task_uuid;
    current_state := r.current_state;
    enqueued_steps := r.enqueued_steps;
    queue := r.queue;
    msg_ids := r.msg_ids;
    RETURN NEXT;
  END LOOP;
END;
$$;
CREATE FUNCTION tasker.detect_stale_tasks(p_dry_run boolean, p_batch integer, p_waiting_for_dependencies_minutes integer, p_waiting_for_retry_minutes integer, p_steps_in_process_minutes integer, p_task_max_lifetime_minutes integer, p_processor uuid DEFAULT NULL::uuid) RETURNS TABLE(task_uuid uuid, namespace text, name text, state text, minutes_in_state double precision, threshold_minutes integer, reason text, action text)
    LANGUAGE plpgsql
    SET jit TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
  c record;
  f record;
  s record;
  v_detected_by text := coalesce(p_processor::text, 'staleness_detector');
  v_facts jsonb;
BEGIN
  IF p_batch < 1 THEN
    RETURN;
  END IF;
  FOR c IN
    SELECT x.task_uuid, x.namespace, x.name, x.state, x.minutes_in_state, x.threshold_minutes
    FROM tasker.task_staleness(p_waiting_for_dependencies_minutes, p_waiting_for_retry_minutes,
                               p_steps_in_process_minutes, p_task_max_lifetime_minutes) x
    WHERE x.stale
    ORDER BY x.last_progress_at, x.task_uuid
    LIMIT p_batch
  LOOP
    task_uuid := c.task_uuid;
    namespace := c.namespace;
    name := c.name;
    state := c.state;
    minutes_in_state := round(c.minutes_in_state::numeric, 2)::double precision;
    threshold_minutes := c.threshold_minutes;
    reason := 'staleness_timeout';
    IF p_dry_run THEN
      action := 'would_move';
      RETURN NEXT;
      CONTINUE;
    END IF;
    action := 'lost_race';
    BEGIN
      PERFORM 1 FROM tasker.tasks t WHERE t.task_uuid = c.task_uuid FOR UPDATE SKIP LOCKED;
      IF FOUND THEN
        SELECT x.* INTO f
        FROM tasker.task_staleness(p_waiting_for_dependencies_minutes, p_waiting_for_retry_minutes,
                                   p_steps_in_process_minutes, p_task_max_lifetime_minutes) x
        WHERE x.task_uuid = c.task_uuid;
        IF FOUND AND f.stale THEN
          PERFORM 1 FROM tasker.workflow_steps ws WHERE ws.task_uuid = c.task_uuid
          ORDER BY ws.workflow_step_uuid FOR UPDATE NOWAIT;
          state := f.state;
          minutes_in_state := round(f.minutes_in_state::numeric, 2)::double precision;
          threshold_minutes := f.threshold_minutes;
          v_facts := jsonb_build_object(
            'threshold_minutes', f.threshold_minutes,
            'minutes_in_state', round(f.minutes_in_state::numeric, 2),
            'minutes_without_progress', round(f.minutes_without_progress::numeric, 2),
            'task_age_minutes', round(f.task_age_minutes::numeric, 2),
            'exceeded', f.exceeded,
            'detected_by', v_detected_by);
          PERFORM tasker._dead_letter_task(c.task_uuid, f.state, 'staleness_timeout', v_facts);
          FOR s IN
            SELECT ws.workflow_step_uuid, ws.current_state, ws.attempts, ws.lease_msg_id, ws.last_error
            FROM tasker.workflow_steps ws
            WHERE ws.task_uuid = c.task_uuid AND ws.current_state IN ('enqueued', 'in_progress', 'waiting_for_retry')
            ORDER BY ws.workflow_step_uuid
          LOOP
            UPDATE tasker.workflow_steps ws
            SET last_error = jsonb_build_object(
                  'message', format('task %s made no progress for %s minutes (threshold %s) and was moved to error by '
                                    'the staleness detector; this step was %s', c.task_uuid,
                                    round(f.minutes_without_progress::numeric, 1), f.state_threshold_minutes, s.current_state),
                  'error_type', 'staleness_timeout', 'retryable', false, 'attempt', s.attempts,
                  'previous_state', s.current_state),
                next_retry_at = NULL,
                lease_msg_id = NULL
            WHERE ws.workflow_step_uuid = s.workflow_step_uuid;
            IF s.lease_msg_id IS NOT NULL THEN
              PERFORM pgmq.archive('worker_' || c.namespace || '_queue', s.lease_msg_id);
            END IF;
            PERFORM tasker._step_transition(s.workflow_step_uuid, s.current_state, 'error',
              jsonb_strip_nulls(jsonb_build_object('event', 'staleness_timeout', 'previous_error', s.last_error)));
          END LOOP;
          IF tasker._task_transition(c.task_uuid, f.state, 'error',
               jsonb_build_object('event', 'staleness_timeout') || v_facts, p_processor) THEN
            action := 'moved_to_error';
          END IF;
        END IF;
      END IF;
      RETURN NEXT;
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
      action := 'lost_race';
      RETURN NEXT;
    END;
  END LOOP;
END;
$$;
CREATE FUNCTION tasker.get_step_readiness_status(p_task uuid) RETURNS TABLE(workflow_step_uuid uuid, name text, current_state text, dependencies_satisfied boolean, retry_eligible boolean, ready_for_execution boolean, next_retry_at timestamp with time zone, total_parents integer, completed_parents integer, attempts integer, max_attempts integer, last_attempted_at timestamp with time zone)
    LANGUAGE sql STABLE
    AS $$
  SELECT s.workflow_step_uuid, s.name::text, s.current_state,
         coalesce(p.total, 0) = coalesce(p.completed, 0) AS dependencies_satisfied,
         (s.attempts = 0 OR (s.retryable AND s.attempts < s.max_attempts
                               AND coalesce((s.last_error ->> 'retryable')::boolean, true))) AS retry_eligible,
         (s.current_state IN ('pending', 'waiting_for_retry')
           AND coalesce(p.total, 0) = coalesce(p.completed, 0)
           AND (s.attempts = 0 OR (s.retryable AND s.attempts < s.max_attempts
                                   AND coalesce((s.last_error ->> 'retryable')::boolean, true)))
           AND (s.next_retry_at IS NULL OR s.next_retry_at <= clock_timestamp())) AS ready_for_execution,
         s.next_retry_at, coalesce(p.total, 0)::integer, coalesce(p.completed, 0)::integer, s.attempts, s.max_attempts,
         s.last_attempted_at
  FROM tasker.workflow_steps s
  LEFT JOIN LATERAL (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE ps.current_state IN ('complete', 'resolved_manually')) AS completed
    FROM tasker.workflow_step_edges e JOIN tasker.workflow_steps ps ON ps.workflow_step_uuid = e.from_step_uuid
    WHERE e.to_step_uuid = s.workflow_step_uuid
  ) p ON true
  WHERE s.task_uuid = p_task
  ORDER BY s.workflow_step_uuid
$$;
CREATE FUNCTION tasker.get_task_execution_context(p_task uuid) RETURNS TABLE(task_uuid uuid, total_steps integer, pending_steps integer, in_progress_steps integer, completed_steps integer, failed_steps integer, ready_steps integer, execution_status text, recommended_action text, completion_percentage numeric, health_status text)
    LANGUAGE sql STABLE
    AS $$
  WITH r AS (SELECT * FROM tasker.get_step_readiness_status(p_task)),
  c AS (
    SELECT count(*)::integer AS total,
           count(*) FILTER (WHERE current_state = 'pending')::integer AS pending,
           count(*) FILTER (WHERE current_state IN ('enqueued', 'in_progress', 'enqueued_for_orchestration',
                                                    'enqueued_as_error_for_orchestration'))::integer AS in_progress,
           count(*) FILTER (WHERE current_state IN ('complete', 'resolved_manually'))::integer AS completed,
           count(*) FILTER (WHERE current_state = 'error')::integer AS failed,
           count(*) FILTER (WHERE ready_for_execution)::integer AS ready,
           count(*) FILTER (WHERE current_state = 'waiting_for_retry')::integer AS retrying
    FROM r
  )
  SELECT p_task, c.total, c.pending, c.in_progress, c.completed, c.failed, c.ready,
         CASE WHEN c.failed > 0 THEN 'blocked_by_failures'
              WHEN c.ready > 0 THEN 'has_ready_steps'
              WHEN c.in_progress > 0 THEN 'processing'
              WHEN c.total > 0 AND c.completed = c.total THEN 'all_complete'
              ELSE 'waiting_for_dependencies' END,
         CASE WHEN c.failed > 0 THEN 'handle_failures'
              WHEN c.ready > 0 THEN 'execute_ready_steps'
              WHEN c.in_progress > 0 THEN 'wait_for_completion'
              WHEN c.total > 0 AND c.completed = c.total THEN 'finalize_task'
              ELSE 'wait_for_dependencies' END,
         CASE WHEN c.total = 0 THEN 0 ELSE round(c.completed * 100.0 / c.total, 2) END,
         CASE WHEN c.failed > 0 THEN 'blocked'
              WHEN c.retrying > 0 THEN 'recovering'
              WHEN c.total > 0 THEN 'healthy'
              ELSE 'unknown' END
  FROM c
$$;
CREATE FUNCTION tasker.pgmq_send_batch_with_notify(queue_name text, messages jsonb[], delay_seconds integer DEFAULT 0) RETURNS SETOF bigint
    LANGUAGE plpgsql
    SET jit TO 'off'
    AS $$
DECLARE
  ids bigint[];
BEGIN
  SELECT array_agg(id ORDER BY id) INTO ids FROM pgmq.send_batch(queue_name, messages, delay_seconds) AS id;
  IF coalesce(cardinality(ids), 0) = 0 THEN
    RETURN;
  END IF;
  -- One signal per batch; it names the id range, not every id, to stay far below NOTIFY's 8000-byte limit.
  PERFORM tasker._notify_message_ready(queue_name, jsonb_build_object(
    'event_type', 'batch_ready',
    'msg_id', ids[1],
    'last_msg_id', ids[cardinality(ids)],
    'message_count', cardinality(ids),
    'delay_seconds', delay_seconds,
    'ready_at', clock_timestamp() + make_interval(secs => delay_seconds)));
  RETURN QUERY SELECT unnest(ids);
END;
$$;
CREATE FUNCTION tasker.pgmq_send_with_notify(queue_name text, message jsonb, delay_seconds integer DEFAULT 0) RETURNS bigint
    LANGUAGE plpgsql
    SET jit TO 'off'
    AS $$
DECLARE
  new_id bigint;
BEGIN
  SELECT pgmq.send(queue_name, message, delay_seconds) INTO new_id;
  PERFORM tasker._notify_message_ready(queue_name, jsonb_build_object(
    'event_type', 'message_ready',
    'msg_id', new_id,
    'delay_seconds', delay_seconds,
    'ready_at', clock_timestamp() + make_interval(secs => delay_seconds)));
  RETURN new_id;
END;
$$;
CREATE FUNCTION tasker.process_finalization_requests(p_limit integer, p_vt integer DEFAULT 30, p_processor uuid DEFAULT NULL::uuid) RETURNS integer
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  m record;
  v_task uuid;
  v_msgs bigint[] := '{}';
BEGIN
  FOR m IN SELECT r.msg_id, r.message FROM tasker._q_read('orchestration_task_finalizations', p_vt, p_limit) r LOOP
    BEGIN
      v_task := (m.message ->> 'task_uuid')::uuid;
    EXCEPTION WHEN invalid_text_representation THEN
      v_task := NULL;
    END;
    IF v_task IS NOT NULL AND EXISTS (SELECT 1 FROM tasker.tasks t WHERE t.task_uuid = v_task FOR UPDATE) THEN
      PERFORM tasker._notify_sent(e.queue, e.msg_ids) FROM tasker._enqueue_ready_steps(v_task, NULL) e;
      PERFORM tasker._evaluate_task(v_task, p_processor);
    END IF;
    v_msgs := v_msgs || m.msg_id;
  END LOOP;
  PERFORM tasker._q_archive('orchestration_task_finalizations', v_msgs);
  RETURN cardinality(v_msgs);
END;
$$;
CREATE FUNCTION tasker.process_step_results(p_limit integer, p_vt integer DEFAULT 30, p_processor uuid DEFAULT NULL::uuid) RETURNS integer
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_msgs bigint[];
  v_steps uuid[];
  v_queues text[] := '{}';
  v_ids bigint[] := '{}';
  a record;
  i integer;
  v_q text;
BEGIN
  SELECT array_agg(r.msg_id ORDER BY r.msg_id), array_agg((r.message ->> 'step_uuid')::uuid ORDER BY r.msg_id)
  INTO v_msgs, v_steps
  FROM tasker._q_read('orchestration_step_results', p_vt, p_limit) r;
  IF v_msgs IS NULL THEN
    RETURN 0;
  END IF;
  -- Lock every task of the batch in one order (task_uuid): two orchestrators holding batches that share
  -- tasks in different orders would otherwise deadlock. Each step's task is found by a subquery on the step's
  -- primary key: joined, a generic plan can walk every task and its steps to lock the batch's few.
  PERFORM 1 FROM tasker.tasks t
  WHERE t.task_uuid = ANY(ARRAY(SELECT (SELECT ws.task_uuid FROM tasker.workflow_steps ws WHERE ws.workflow_step_uuid = u.id)
                                FROM unnest(v_steps) AS u(id)))
  ORDER BY t.task_uuid
  FOR UPDATE;
  FOR i IN 1 .. cardinality(v_msgs) LOOP
    IF v_steps[i] IS NOT NULL THEN
      SELECT * INTO a FROM tasker._apply_step_result(v_steps[i], p_processor);
      IF coalesce(cardinality(a.msg_ids), 0) > 0 THEN
        v_queues := v_queues || array_fill(a.queue, ARRAY[cardinality(a.msg_ids)]);
        v_ids := v_ids || a.msg_ids;
      END IF;
    END IF;
  END LOOP;
  PERFORM tasker._q_archive('orchestration_step_results', v_msgs);
  FOR v_q IN SELECT DISTINCT u.name FROM unnest(v_queues) AS u(name) LOOP
    PERFORM tasker._notify_sent(v_q, ARRAY(SELECT u.id FROM unnest(v_queues, v_ids) AS u(name, id) WHERE u.name = v_q));
  END LOOP;
  RETURN cardinality(v_msgs);
END;
$$;
CREATE FUNCTION tasker.purge_finished_tasks(p_finished_before timestamp with time zone, p_limit integer) RETURNS integer
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_tasks uuid[];
BEGIN
  IF p_limit < 1 THEN
    RETURN 0;
  END IF;
  SELECT array_agg(c.task_uuid) INTO v_tasks
  FROM (
    SELECT t.task_uuid
    FROM tasker.tasks t
    WHERE t.task_uuid < tasker._uuid_v7_floor(p_finished_before)
      AND t.current_state IN ('complete', 'error', 'cancelled', 'resolved_manually')
      AND coalesce(t.completed_at, t.updated_at) < p_finished_before
      AND NOT EXISTS (SELECT 1 FROM tasker.tasks_dlq d
                      WHERE d.task_uuid = t.task_uuid AND d.resolution_status = 'pending')
    ORDER BY t.task_uuid
    LIMIT p_limit
    -- A task locked elsewhere (an operator reviving it, another orchestrator's sweep) is left for later.
    FOR UPDATE SKIP LOCKED
  ) c;
  IF v_tasks IS NULL THEN
    RETURN 0;
  END IF;
  -- Steps, edges, transitions and audit rows go with their tasks (the AFTER DELETE cascade triggers on tasks,
  -- workflow_steps and workflow_step_transitions), DLQ entries by their foreign key (ON DELETE CASCADE).
  DELETE FROM tasker.tasks t WHERE t.task_uuid = ANY(v_tasks);
  RETURN cardinality(v_tasks);
END;
$$;
CREATE FUNCTION tasker.purge_queue_archives(p_archived_before timestamp with time zone, p_limit integer) RETURNS TABLE(queue_name text, deleted integer)
    LANGUAGE plpgsql
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $_$
DECLARE
  v_queue text;
  v_deleted integer;
BEGIN
  IF p_limit < 1 THEN
    RETURN;
  END IF;
  FOR v_queue IN SELECT m.queue_name FROM pgmq.meta m ORDER BY m.queue_name LOOP
    EXECUTE format(
      'WITH old AS (SELECT a.msg_id FROM pgmq.%1$I a WHERE a.archived_at < $1 ORDER BY a.archived_at LIMIT $2)
       DELETE FROM pgmq.%1$I a USING old WHERE a.msg_id = old.msg_id', 'a_' || v_queue)
      USING p_archived_before, p_limit;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    IF v_deleted > 0 THEN
      queue_name := v_queue;
      deleted := v_deleted;
      RETURN NEXT;
    END IF;
  END LOOP;
END;
$_$;
CREATE FUNCTION tasker.queue_namespace(queue_name text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $_$
  SELECT CASE
    WHEN queue_name LIKE 'orchestration%' THEN 'orchestration'
    WHEN queue_name ~ '^worker_.+_queue$' THEN substring(queue_name FROM '^worker_(.+)_queue$')
    WHEN queue_name ~ '^.+_queue$' THEN substring(queue_name FROM '^(.+)_queue$')
    ELSE 'default'
  END
$_$;
CREATE FUNCTION tasker.signal_sent(p_queue text, p_ids bigint[]) RETURNS void
    LANGUAGE plpgsql
    SET jit TO 'off'
    AS $$
BEGIN
  IF coalesce(cardinality(p_ids), 0) = 0 THEN
    RETURN;
  END IF;
  IF txid_current_if_assigned() IS NULL THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  PERFORM tasker._notify_sent(p_queue, p_ids);
END;
$$;
CREATE FUNCTION tasker.step_dependency_results(p_step uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
  v_frontier uuid[] := ARRAY[p_step];
  v_all uuid[] := '{}';
  v_next uuid[];
  v_result jsonb;
BEGIN
  LOOP
    -- One lookup by to_step_uuid per step of the frontier (a subquery per element), not one "= ANY" over
    -- them all: a generic plan can run that as a filtered scan of the edges' whole unique key.
    SELECT array_agg(DISTINCT p.id) INTO v_next
    FROM unnest(v_frontier) AS f(id),
         unnest(ARRAY(SELECT e.from_step_uuid FROM tasker.workflow_step_edges e WHERE e.to_step_uuid = f.id)) AS p(id)
    WHERE NOT (p.id = ANY(v_all));
    EXIT WHEN v_next IS NULL;
    v_all := v_all || v_next;
    v_frontier := v_next;
  END LOOP;
  IF cardinality(v_all) = 0 THEN
    RETURN '{}';
  END IF;
  SELECT coalesce(jsonb_object_agg(s.name, s.results), '{}') INTO v_result
  FROM tasker.workflow_steps s
  WHERE s.workflow_step_uuid = ANY(v_all) AND s.current_state IN ('complete', 'resolved_manually');
  RETURN v_result;
END;
$$;
CREATE FUNCTION tasker.task_staleness(p_waiting_for_dependencies_minutes integer, p_waiting_for_retry_minutes integer, p_steps_in_process_minutes integer, p_task_max_lifetime_minutes integer) RETURNS TABLE(task_uuid uuid, namespace text, name text, state text, entered_state_at timestamp with time zone, last_progress_at timestamp with time zone, minutes_in_state double precision, minutes_without_progress double precision, task_age_minutes double precision, state_threshold_minutes integer, max_lifetime_minutes integer, threshold_minutes integer, exceeded text, stale boolean)
    LANGUAGE sql STABLE
    AS $$
  WITH base AS (
    SELECT t.task_uuid, t.namespace_name::text AS namespace, nt.name::text AS name, t.current_state AS state,
           tr.created_at AS entered_state_at,
           greatest(tr.created_at, act.last_step_at, act.next_retry_at) AS last_progress_at,
           t.created_at,
           CASE
             WHEN t.current_state IN ('pending', 'waiting_for_dependencies') THEN
               coalesce(tasker._lifecycle_minutes(nt.configuration, 'maxWaitingForDependenciesMinutes',
                                                  'max_waiting_for_dependencies_minutes'), p_waiting_for_dependencies_minutes)
             WHEN t.current_state = 'waiting_for_retry' THEN
               coalesce(tasker._lifecycle_minutes(nt.configuration, 'maxWaitingForRetryMinutes',
                                                  'max_waiting_for_retry_minutes'), p_waiting_for_retry_minutes)
             ELSE
               coalesce(tasker._lifecycle_minutes(nt.configuration, 'maxStepsInProcessMinutes',
                                                  'max_steps_in_process_minutes'), p_steps_in_process_minutes)
           END AS state_threshold_minutes,
           coalesce(tasker._lifecycle_minutes(nt.configuration, 'maxDurationMinutes', 'max_duration_minutes'),
                    p_task_max_lifetime_minutes) AS max_lifetime_minutes
    FROM tasker.tasks t
    JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
    JOIN tasker.task_transitions tr ON tr.task_uuid = t.task_uuid AND tr.most_recent
    LEFT JOIN LATERAL (
      SELECT max(st.created_at) AS last_step_at,
             max(ws.next_retry_at) FILTER (WHERE ws.current_state = 'waiting_for_retry') AS next_retry_at
      FROM tasker.workflow_steps ws
      LEFT JOIN tasker.workflow_step_transitions st ON st.workflow_step_uuid = ws.workflow_step_uuid AND st.most_recent
      WHERE ws.task_uuid = t.task_uuid
    ) act ON true
    WHERE t.current_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually')
  ), measured AS (
    SELECT b.*,
           extract(epoch FROM clock_timestamp() - b.entered_state_at)::double precision / 60 AS minutes_in_state,
           greatest(extract(epoch FROM clock_timestamp() - b.last_progress_at)::double precision / 60, 0) AS minutes_without_progress,
           extract(epoch FROM clock_timestamp() - b.created_at)::double precision / 60 AS task_age_minutes
    FROM base b
  )
  SELECT m.task_uuid, m.namespace, m.name, m.state, m.entered_state_at, m.last_progress_at,
         m.minutes_in_state, m.minutes_without_progress, m.task_age_minutes,
         m.state_threshold_minutes, m.max_lifetime_minutes,
         CASE WHEN m.minutes_without_progress <= m.state_threshold_minutes AND m.task_age_minutes > m.max_lifetime_minutes
              THEN m.max_lifetime_minutes ELSE m.state_threshold_minutes END AS threshold_minutes,
         CASE WHEN m.minutes_without_progress > m.state_threshold_minutes THEN 'state_threshold'
              WHEN m.task_age_minutes > m.max_lifetime_minutes THEN 'max_lifetime' END AS exceeded,
         m.minutes_without_progress > m.state_threshold_minutes OR m.task_age_minutes > m.max_lifetime_minutes AS stale
  FROM measured m
$$;
CREATE FUNCTION tasker.uuid_generate_v7() RETURNS uuid
    LANGUAGE sql
    AS $$
  SELECT (lpad(to_hex(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
          || to_hex(28672 | floor(random() * 4096)::integer)
          || to_hex(32768 | floor(random() * 16384)::integer)
          || lpad(to_hex(floor(random() * 281474976710656)::bigint), 12, '0'))::uuid
$$;
CREATE TABLE pgmq.a_orchestration_step_results (
    msg_id bigint NOT NULL,
    read_ct integer DEFAULT 0 NOT NULL,
    enqueued_at timestamp with time zone DEFAULT now() NOT NULL,
    archived_at timestamp with time zone DEFAULT now() NOT NULL,
    vt timestamp with time zone NOT NULL,
    message jsonb,
    headers jsonb
);
CREATE TABLE pgmq.a_orchestration_task_finalizations (
    msg_id bigint NOT NULL,
    read_ct integer DEFAULT 0 NOT NULL,
    enqueued_at timestamp with time zone DEFAULT now() NOT NULL,
    archived_at timestamp with time zone DEFAULT now() NOT NULL,
    vt timestamp with time zone NOT NULL,
    message jsonb,
    headers jsonb
);
CREATE TABLE pgmq.a_orchestration_task_requests (
    msg_id bigint NOT NULL,
    read_ct integer DEFAULT 0 NOT NULL,
    enqueued_at timestamp with time zone DEFAULT now() NOT NULL,
    archived_at timestamp with time zone DEFAULT now() NOT NULL,
    vt timestamp with time zone NOT NULL,
    message jsonb,
    headers jsonb
);
CREATE TABLE pgmq.meta (
    queue_name character varying NOT NULL,
    is_partitioned boolean NOT NULL,
    is_unlogged boolean NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);
CREATE TABLE pgmq.q_orchestration_step_results (
    msg_id bigint NOT NULL,
    read_ct integer DEFAULT 0 NOT NULL,
    enqueued_at timestamp with time zone DEFAULT now() NOT NULL,
    vt timestamp with time zone NOT NULL,
    message jsonb,
    headers jsonb
);
ALTER TABLE pgmq.q_orchestration_step_results ALTER COLUMN msg_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME pgmq.q_orchestration_step_results_msg_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE pgmq.q_orchestration_task_finalizations (
    msg_id bigint NOT NULL,
    read_ct integer DEFAULT 0 NOT NULL,
    enqueued_at timestamp with time zone DEFAULT now() NOT NULL,
    vt timestamp with time zone NOT NULL,
    message jsonb,
    headers jsonb
);
ALTER TABLE pgmq.q_orchestration_task_finalizations ALTER COLUMN msg_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME pgmq.q_orchestration_task_finalizations_msg_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE pgmq.q_orchestration_task_requests (
    msg_id bigint NOT NULL,
    read_ct integer DEFAULT 0 NOT NULL,
    enqueued_at timestamp with time zone DEFAULT now() NOT NULL,
    vt timestamp with time zone NOT NULL,
    message jsonb,
    headers jsonb
);
ALTER TABLE pgmq.q_orchestration_task_requests ALTER COLUMN msg_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME pgmq.q_orchestration_task_requests_msg_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE tasker.named_tasks (
    named_task_uuid uuid DEFAULT tasker.uuid_generate_v7() NOT NULL,
    task_namespace_uuid uuid NOT NULL,
    name character varying(64) NOT NULL,
    version character varying(32) NOT NULL,
    description text,
    identity_strategy text DEFAULT 'strict'::text NOT NULL,
    configuration jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT named_tasks_identity_strategy_check CHECK ((identity_strategy = ANY (ARRAY['strict'::text, 'caller_provided'::text, 'always_unique'::text])))
);
CREATE TABLE tasker.schema_function_files (
    file text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);
CREATE TABLE tasker.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);
CREATE TABLE tasker.step_state_transitions (
    from_state text NOT NULL,
    to_state text NOT NULL
);
CREATE TABLE tasker.task_namespaces (
    task_namespace_uuid uuid DEFAULT tasker.uuid_generate_v7() NOT NULL,
    name character varying(64) NOT NULL,
    description text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);
CREATE TABLE tasker.task_state_transitions (
    from_state text NOT NULL,
    to_state text NOT NULL
);
CREATE TABLE tasker.task_transitions (
    task_transition_uuid uuid DEFAULT tasker.uuid_generate_v7() NOT NULL,
    task_uuid uuid NOT NULL,
    from_state text,
    to_state text NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    processor_uuid uuid,
    sort_key integer NOT NULL,
    most_recent boolean NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);
CREATE TABLE tasker.tasks (
    task_uuid uuid DEFAULT tasker.uuid_generate_v7() NOT NULL,
    named_task_uuid uuid NOT NULL,
    namespace_name character varying(64) NOT NULL,
    current_state tasker.task_state DEFAULT 'pending'::text NOT NULL,
    complete boolean DEFAULT false NOT NULL,
    requested_at timestamp with time zone DEFAULT now() NOT NULL,
    completed_at timestamp with time zone,
    initiator character varying(128),
    source_system character varying(128),
    reason character varying(128),
    tags jsonb DEFAULT '[]'::jsonb NOT NULL,
    context jsonb DEFAULT '{}'::jsonb NOT NULL,
    identity_hash character varying(128) NOT NULL,
    priority tasker.task_priority DEFAULT 0 NOT NULL,
    correlation_id uuid NOT NULL,
    parent_correlation_id uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);
CREATE TABLE tasker.tasks_dlq (
    dlq_entry_uuid uuid DEFAULT tasker.uuid_generate_v7() NOT NULL,
    task_uuid uuid NOT NULL,
    original_state text NOT NULL,
    dlq_reason text NOT NULL,
    dlq_timestamp timestamp with time zone DEFAULT now() NOT NULL,
    resolution_status text DEFAULT 'pending'::text NOT NULL,
    resolution_timestamp timestamp with time zone,
    resolution_notes text,
    resolved_by text,
    task_snapshot jsonb DEFAULT '{}'::jsonb NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT tasks_dlq_dlq_reason_check CHECK ((dlq_reason = ANY (ARRAY['staleness_timeout'::text, 'max_retries_exceeded'::text, 'dependency_cycle_detected'::text, 'worker_unavailable'::text, 'manual_dlq'::text]))),
    CONSTRAINT tasks_dlq_resolution_status_check CHECK ((resolution_status = ANY (ARRAY['pending'::text, 'manually_resolved'::text, 'permanently_failed'::text, 'cancelled'::text])))
);
CREATE TABLE tasker.worker_namespaces (
    worker_id text NOT NULL,
    namespace text NOT NULL,
    hostname text NOT NULL,
    pid integer NOT NULL,
    capacity integer NOT NULL,
    version text NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    heartbeat_at timestamp with time zone DEFAULT now() NOT NULL
);
CREATE TABLE tasker.workflow_step_edges (
    workflow_step_edge_uuid uuid DEFAULT tasker.uuid_generate_v7() NOT NULL,
    from_step_uuid uuid NOT NULL,
    to_step_uuid uuid NOT NULL,
    name text DEFAULT 'provides'::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT workflow_step_edges_check CHECK ((from_step_uuid <> to_step_uuid))
);
CREATE TABLE tasker.workflow_step_result_audit (
    workflow_step_result_audit_uuid uuid DEFAULT tasker.uuid_generate_v7() NOT NULL,
    workflow_step_uuid uuid NOT NULL,
    workflow_step_transition_uuid uuid NOT NULL,
    task_uuid uuid NOT NULL,
    worker_uuid text,
    correlation_id uuid,
    success boolean NOT NULL,
    attempt integer NOT NULL,
    execution_time_ms integer,
    recorded_at timestamp with time zone DEFAULT now() NOT NULL
);
CREATE TABLE tasker.workflow_step_transitions (
    workflow_step_transition_uuid uuid DEFAULT tasker.uuid_generate_v7() NOT NULL,
    workflow_step_uuid uuid NOT NULL,
    from_state text,
    to_state text NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    sort_key integer NOT NULL,
    most_recent boolean NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);
CREATE TABLE tasker.workflow_steps (
    workflow_step_uuid uuid DEFAULT tasker.uuid_generate_v7() NOT NULL,
    task_uuid uuid NOT NULL,
    name character varying(128) NOT NULL,
    current_state tasker.step_state DEFAULT 'pending'::text NOT NULL,
    handler_callable text NOT NULL,
    inputs jsonb DEFAULT '{}'::jsonb NOT NULL,
    retryable boolean DEFAULT true NOT NULL,
    max_attempts tasker.step_max_attempts DEFAULT 3 NOT NULL,
    backoff_strategy tasker.backoff_strategy DEFAULT 'exponential'::text NOT NULL,
    backoff_base_ms integer DEFAULT 1000 NOT NULL,
    max_backoff_ms integer DEFAULT 30000 NOT NULL,
    timeout_seconds integer,
    attempts integer DEFAULT 0 NOT NULL,
    last_attempted_at timestamp with time zone,
    next_retry_at timestamp with time zone,
    in_process boolean DEFAULT false NOT NULL,
    processed boolean DEFAULT false NOT NULL,
    processed_at timestamp with time zone,
    results jsonb,
    last_error jsonb,
    claimed_by text,
    lease_msg_id bigint,
    priority integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);
ALTER TABLE ONLY pgmq.a_orchestration_step_results
    ADD CONSTRAINT a_orchestration_step_results_pkey PRIMARY KEY (msg_id);
ALTER TABLE ONLY pgmq.a_orchestration_task_finalizations
    ADD CONSTRAINT a_orchestration_task_finalizations_pkey PRIMARY KEY (msg_id);
ALTER TABLE ONLY pgmq.a_orchestration_task_requests
    ADD CONSTRAINT a_orchestration_task_requests_pkey PRIMARY KEY (msg_id);
ALTER TABLE ONLY pgmq.meta
    ADD CONSTRAINT meta_queue_name_key UNIQUE (queue_name);
ALTER TABLE ONLY pgmq.q_orchestration_step_results
    ADD CONSTRAINT q_orchestration_step_results_pkey PRIMARY KEY (msg_id);
ALTER TABLE ONLY pgmq.q_orchestration_task_finalizations
    ADD CONSTRAINT q_orchestration_task_finalizations_pkey PRIMARY KEY (msg_id);
ALTER TABLE ONLY pgmq.q_orchestration_task_requests
    ADD CONSTRAINT q_orchestration_task_requests_pkey PRIMARY KEY (msg_id);
ALTER TABLE ONLY tasker.named_tasks
    ADD CONSTRAINT named_tasks_pkey PRIMARY KEY (named_task_uuid);
ALTER TABLE ONLY tasker.named_tasks
    ADD CONSTRAINT named_tasks_task_namespace_uuid_name_version_key UNIQUE (task_namespace_uuid, name, version);
ALTER TABLE ONLY tasker.schema_function_files
    ADD CONSTRAINT schema_function_files_pkey PRIMARY KEY (file);
ALTER TABLE ONLY tasker.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);
ALTER TABLE ONLY tasker.step_state_transitions
    ADD CONSTRAINT step_state_transitions_pkey PRIMARY KEY (from_state, to_state);
ALTER TABLE ONLY tasker.task_namespaces
    ADD CONSTRAINT task_namespaces_name_key UNIQUE (name);
ALTER TABLE ONLY tasker.task_namespaces
    ADD CONSTRAINT task_namespaces_pkey PRIMARY KEY (task_namespace_uuid);
ALTER TABLE ONLY tasker.task_state_transitions
    ADD CONSTRAINT task_state_transitions_pkey PRIMARY KEY (from_state, to_state);
ALTER TABLE ONLY tasker.task_transitions
    ADD CONSTRAINT task_transitions_pkey PRIMARY KEY (task_transition_uuid);
ALTER TABLE ONLY tasker.tasks_dlq
    ADD CONSTRAINT tasks_dlq_pkey PRIMARY KEY (dlq_entry_uuid);
ALTER TABLE ONLY tasker.tasks
    ADD CONSTRAINT tasks_identity_hash_key UNIQUE (identity_hash);
ALTER TABLE ONLY tasker.tasks
    ADD CONSTRAINT tasks_pkey PRIMARY KEY (task_uuid);
ALTER TABLE ONLY tasker.worker_namespaces
    ADD CONSTRAINT worker_namespaces_pkey PRIMARY KEY (worker_id, namespace);
ALTER TABLE ONLY tasker.workflow_step_edges
    ADD CONSTRAINT workflow_step_edges_from_step_uuid_to_step_uuid_name_key UNIQUE (from_step_uuid, to_step_uuid, name);
ALTER TABLE ONLY tasker.workflow_step_edges
    ADD CONSTRAINT workflow_step_edges_pkey PRIMARY KEY (workflow_step_edge_uuid);
ALTER TABLE ONLY tasker.workflow_step_result_audit
    ADD CONSTRAINT workflow_step_result_audit_pkey PRIMARY KEY (workflow_step_result_audit_uuid);
ALTER TABLE ONLY tasker.workflow_step_result_audit
    ADD CONSTRAINT workflow_step_result_audit_workflow_step_uuid_workflow_step_key UNIQUE (workflow_step_uuid, workflow_step_transition_uuid);
ALTER TABLE ONLY tasker.workflow_step_transitions
    ADD CONSTRAINT workflow_step_transitions_pkey PRIMARY KEY (workflow_step_transition_uuid);
ALTER TABLE ONLY tasker.workflow_steps
    ADD CONSTRAINT workflow_steps_pkey PRIMARY KEY (workflow_step_uuid);
ALTER TABLE ONLY tasker.workflow_steps
    ADD CONSTRAINT workflow_steps_task_name_key UNIQUE (task_uuid, name);
CREATE INDEX archived_at_idx_orchestration_step_results ON pgmq.a_orchestration_step_results USING btree (archived_at);
CREATE INDEX archived_at_idx_orchestration_task_finalizations ON pgmq.a_orchestration_task_finalizations USING btree (archived_at);
CREATE INDEX archived_at_idx_orchestration_task_requests ON pgmq.a_orchestration_task_requests USING btree (archived_at);
CREATE INDEX q_orchestration_step_results_vt_idx ON pgmq.q_orchestration_step_results USING btree (vt, ((msg_id + 0)));
CREATE INDEX q_orchestration_task_finalizations_vt_idx ON pgmq.q_orchestration_task_finalizations USING btree (vt, ((msg_id + 0)));
CREATE INDEX q_orchestration_task_requests_vt_idx ON pgmq.q_orchestration_task_requests USING btree (vt, ((msg_id + 0)));
CREATE INDEX named_tasks_lifecycle_idx ON tasker.named_tasks USING gin (((configuration -> 'lifecycle'::text)));
CREATE UNIQUE INDEX task_transitions_most_recent_idx ON tasker.task_transitions USING btree (task_uuid) WHERE most_recent;
CREATE UNIQUE INDEX task_transitions_sort_key_idx ON tasker.task_transitions USING btree (task_uuid, sort_key);
CREATE INDEX tasks_active_idx ON tasker.tasks USING btree (current_state, priority DESC, task_uuid) WHERE ((current_state)::text <> ALL (ARRAY['complete'::text, 'error'::text, 'cancelled'::text, 'resolved_manually'::text]));
CREATE INDEX tasks_correlation_idx ON tasker.tasks USING btree (correlation_id);
CREATE UNIQUE INDEX tasks_dlq_pending_task_idx ON tasker.tasks_dlq USING btree (task_uuid) WHERE (resolution_status = 'pending'::text);
CREATE INDEX tasks_dlq_status_time_idx ON tasker.tasks_dlq USING btree (resolution_status, dlq_timestamp DESC);
CREATE INDEX tasks_dlq_task_idx ON tasker.tasks_dlq USING btree (task_uuid);
CREATE INDEX tasks_named_task_idx ON tasker.tasks USING btree (named_task_uuid, created_at);
CREATE INDEX tasks_namespace_created_idx ON tasker.tasks USING btree (namespace_name, created_at);
CREATE INDEX worker_namespaces_namespace_idx ON tasker.worker_namespaces USING btree (namespace, heartbeat_at DESC);
CREATE INDEX workflow_step_edges_to_idx ON tasker.workflow_step_edges USING btree (to_step_uuid) INCLUDE (from_step_uuid);
CREATE INDEX workflow_step_result_audit_task_idx ON tasker.workflow_step_result_audit USING btree (task_uuid);
CREATE UNIQUE INDEX workflow_step_transitions_most_recent_idx ON tasker.workflow_step_transitions USING btree (workflow_step_uuid) WHERE most_recent;
CREATE UNIQUE INDEX workflow_step_transitions_sort_key_idx ON tasker.workflow_step_transitions USING btree (workflow_step_uuid, sort_key);
CREATE INDEX workflow_steps_in_progress_idx ON tasker.workflow_steps USING btree (last_attempted_at) WHERE ((current_state)::text = 'in_progress'::text);
CREATE INDEX workflow_steps_retry_due_idx ON tasker.workflow_steps USING btree (next_retry_at) WHERE ((current_state)::text = 'waiting_for_retry'::text);
CREATE TRIGGER pgmq_queue_created_notify AFTER INSERT ON pgmq.meta FOR EACH ROW EXECUTE FUNCTION tasker._notify_queue_created();
CREATE TRIGGER tasker_queue_access_refresh AFTER INSERT OR DELETE ON pgmq.meta FOR EACH ROW EXECUTE FUNCTION tasker._queue_access_changed();
CREATE TRIGGER named_tasks_in_use BEFORE DELETE ON tasker.named_tasks FOR EACH ROW EXECUTE FUNCTION tasker._on_named_tasks_delete();
CREATE TRIGGER tasks_cascade_delete AFTER DELETE ON tasker.tasks REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION tasker._on_tasks_delete();
CREATE TRIGGER tasks_cascade_truncate AFTER TRUNCATE ON tasker.tasks FOR EACH STATEMENT EXECUTE FUNCTION tasker._on_tasks_truncate();
CREATE TRIGGER tasks_finished_notify AFTER UPDATE OF current_state ON tasker.tasks FOR EACH ROW WHEN ((((new.current_state)::text = ANY (ARRAY['complete'::text, 'error'::text, 'cancelled'::text, 'resolved_manually'::text])) AND ((old.current_state)::text IS DISTINCT FROM (new.current_state)::text))) EXECUTE FUNCTION tasker._notify_task_finished();
CREATE TRIGGER workflow_step_transitions_cascade_delete AFTER DELETE ON tasker.workflow_step_transitions REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION tasker._on_workflow_step_transitions_delete();
CREATE TRIGGER workflow_steps_cascade_delete AFTER DELETE ON tasker.workflow_steps REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION tasker._on_workflow_steps_delete();
ALTER TABLE ONLY tasker.named_tasks
    ADD CONSTRAINT named_tasks_task_namespace_uuid_fkey FOREIGN KEY (task_namespace_uuid) REFERENCES tasker.task_namespaces(task_namespace_uuid);
ALTER TABLE ONLY tasker.tasks_dlq
    ADD CONSTRAINT tasks_dlq_task_uuid_fkey FOREIGN KEY (task_uuid) REFERENCES tasker.tasks(task_uuid) ON DELETE CASCADE;
