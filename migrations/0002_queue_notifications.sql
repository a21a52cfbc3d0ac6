-- Atomic send + wake-up signal. pg_notify inside the sending transaction is delivered only on commit and
-- never after a rollback, so a listener is never woken for a message it cannot see.
-- The payload is a small signal (queue, msg_id, namespace), never the message body: NOTIFY is a hint,
-- the queue table is the truth, and large bodies would be broadcast to every listener.

CREATE SCHEMA IF NOT EXISTS tasker;

-- worker_<ns>_queue -> <ns>; orchestration* -> orchestration; <ns>_queue -> <ns>; anything else -> default.
CREATE FUNCTION tasker.queue_namespace(queue_name text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN queue_name LIKE 'orchestration%' THEN 'orchestration'
    WHEN queue_name ~ '^worker_.+_queue$' THEN substring(queue_name FROM '^worker_(.+)_queue$')
    WHEN queue_name ~ '^.+_queue$' THEN substring(queue_name FROM '^(.+)_queue$')
    ELSE 'default'
  END
$$;

CREATE FUNCTION tasker._notify_message_ready(queue_name text, payload jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  namespace text := tasker.queue_namespace(queue_name);
  body text := (payload || jsonb_build_object('queue_name', queue_name, 'namespace', namespace))::text;
BEGIN
  PERFORM pg_notify('pgmq_message_ready.' || namespace, body);
  PERFORM pg_notify('pgmq_message_ready', body);
END;
$$;

CREATE FUNCTION tasker.pgmq_send_with_notify(queue_name text, message jsonb, delay_seconds integer DEFAULT 0)
RETURNS bigint
LANGUAGE plpgsql AS $$
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

CREATE FUNCTION tasker.pgmq_send_batch_with_notify(queue_name text, messages jsonb[], delay_seconds integer DEFAULT 0)
RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
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

CREATE FUNCTION tasker._notify_queue_created() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('pgmq_queue_created', jsonb_build_object(
    'event_type', 'queue_created',
    'queue_name', NEW.queue_name,
    'namespace', tasker.queue_namespace(NEW.queue_name))::text);
  RETURN NEW;
END;
$$;

CREATE TRIGGER pgmq_queue_created_notify
AFTER INSERT ON pgmq.meta
FOR EACH ROW EXECUTE FUNCTION tasker._notify_queue_created();
