-- Wake-up signals: the NOTIFYs that tell listeners a queue has messages, a queue was created, or a task
-- finished, and the sends that put a message and its signal in one transaction.
--
-- A signal is a hint, never the data. pg_notify inside the sending transaction is delivered only on commit and
-- never after a rollback, so a listener is never woken for a message it cannot see; a lost signal costs only
-- latency, because the services also poll. The payload is a small JSON signal (queue, msg_id, namespace), never
-- the message body: the queue table is the truth, and large bodies would be broadcast to every listener.
--
-- Channels: pgmq_message_ready.<namespace> and pgmq_message_ready (every message signal goes to both),
-- pgmq_queue_created, tasker_task_finished. Listeners: src/messaging/pgmq/notificationListener.ts
-- (through pgmqMessagingProvider, channel names in src/messaging/queueName.ts) and
-- src/api/rest/taskCompletionWaiter.ts.

-- ------------------------------------------------------------------------------------------------ channels

-- The namespace a queue signals on: worker_<ns>_queue -> <ns>; orchestration* -> orchestration;
-- <ns>_queue -> <ns>; anything else -> default. src/messaging/queueName.ts (queueNamespace) mirrors it to
-- choose the channels to LISTEN on: change both together.
CREATE OR REPLACE FUNCTION tasker.queue_namespace(queue_name text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN queue_name LIKE 'orchestration%' THEN 'orchestration'
    WHEN queue_name ~ '^worker_.+_queue$' THEN substring(queue_name FROM '^worker_(.+)_queue$')
    WHEN queue_name ~ '^.+_queue$' THEN substring(queue_name FROM '^(.+)_queue$')
    ELSE 'default'
  END
$$;

-- Sends payload, with queue_name and namespace added, on the queue's namespace channel and on the catch-all
-- channel. Every message signal goes through here.
CREATE OR REPLACE FUNCTION tasker._notify_message_ready(queue_name text, payload jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  namespace text := tasker.queue_namespace(queue_name);
  body text := (payload || jsonb_build_object('queue_name', queue_name, 'namespace', namespace))::text;
BEGIN
  PERFORM pg_notify('pgmq_message_ready.' || namespace, body);
  PERFORM pg_notify('pgmq_message_ready', body);
END;
$$;

-- ------------------------------------------------------------------------------------------------ send + signal

-- JIT off (here and on signal_sent), as on every function the services call: a statement whose cost estimate
-- passes jit_above_cost is compiled at every execution (estimates grow with the tables, even without ANALYZE),
-- which cost 6.3 ms for a 0.02 ms statement on a grown database. These statements are small; JIT cannot pay
-- off. Only PL/pgSQL functions get the setting: a SQL function with a SET clause is not inlined.

-- Atomic send + signal (pgmqMessagingProvider.send unless notify is false). ready_at is when the message
-- becomes visible.
CREATE OR REPLACE FUNCTION tasker.pgmq_send_with_notify(queue_name text, message jsonb, delay_seconds integer DEFAULT 0)
RETURNS bigint
LANGUAGE plpgsql
SET jit = off
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

-- Atomic batch send + one signal for the batch (pgmqMessagingProvider.sendBatch unless notify is false).
-- Returns the new ids in ascending order; an empty batch sends nothing and signals nothing.
CREATE OR REPLACE FUNCTION tasker.pgmq_send_batch_with_notify(queue_name text, messages jsonb[], delay_seconds integer DEFAULT 0)
RETURNS SETOF bigint
LANGUAGE plpgsql
SET jit = off
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

-- ------------------------------------------------------------------------------------------------ engine signals

-- One wake-up signal for messages just sent to a queue, ready now: message_ready for one, batch_ready for
-- several, naming the smallest id and the count. Nothing for no ids. Called by the engine's functions that
-- enqueue steps or results and signal in their own transaction (create_tasks, complete_many_and_claim,
-- process_finalization_requests, apply_step_action, _apply_step_result, process_step_results) and by signal_sent.
CREATE OR REPLACE FUNCTION tasker._notify_sent(p_queue text, p_ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
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

-- The same signal from a transaction of its own, sent after the work it announces has committed
-- (src/db/queries/completeStep.ts signalSent, with the signal that create_tasks and
-- complete_*_and_claim can return instead of notifying in their own commit). A transaction that NOTIFYs holds a database-wide lock
-- from just before its commit until the commit is flushed, so every notifying commit in the database runs one
-- at a time, fsync included: measured, 8 clients reach ~16,000 durable inserts/s but ~4,000 when each also
-- notifies, and the engine's creators and workers spent most of the one-step benchmark waiting on that lock.
-- A transaction that only notifies has nothing to make durable (notifications do not survive a crash anyway),
-- so it commits asynchronously and holds the lock for microseconds. Inside a transaction that already wrote
-- something this is a plain notify and the caller's commit keeps its durability.
CREATE OR REPLACE FUNCTION tasker.signal_sent(p_queue text, p_ids bigint[]) RETURNS void
LANGUAGE plpgsql
SET jit = off
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

-- ------------------------------------------------------------------------------------------------ triggers

-- Trigger function: AFTER INSERT on pgmq.meta. Announces a new queue on pgmq_queue_created, so a listener can
-- start listening on its namespace.
CREATE OR REPLACE FUNCTION tasker._notify_queue_created() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('pgmq_queue_created', jsonb_build_object(
    'event_type', 'queue_created',
    'queue_name', NEW.queue_name,
    'namespace', tasker.queue_namespace(NEW.queue_name))::text);
  RETURN NEW;
END;
$$;

-- Trigger function: AFTER UPDATE OF current_state on tasker.tasks, when the state becomes terminal (complete,
-- error, cancelled, resolved_manually). NOTIFYs tasker_task_finished with '<task_uuid>:<state>', so API clients
-- waiting for a result (GET /v1/tasks/{uuid}?wait=N, src/api/rest/taskCompletionWaiter.ts) are answered at
-- once instead of polling. A trigger, not code in each finalizing function: every path to a terminal state
-- (finalization, cancellation, staleness, operator actions) is covered, and the hint is sent only after the
-- commit, like every NOTIFY.
CREATE OR REPLACE FUNCTION tasker._notify_task_finished() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('tasker_task_finished', NEW.task_uuid::text || ':' || NEW.current_state);
  RETURN NULL;
END;
$$;
