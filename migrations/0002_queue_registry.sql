-- The queue registry (pgmq.meta) and the three queues orchestration consumes.
--
-- A queue is a pair of tables made by pgmq.create(name), never by hand: pgmq.q_<name> holds the live messages,
-- pgmq.a_<name> the archived ones, and the registry row says the pair exists. The same function makes the
-- orchestration queues here and every worker_<namespace>_queue at run time, so all queue tables have one shape.

-- PGMQ's own table, column for column, so PGMQ clients and tools read it unchanged.
CREATE TABLE pgmq.meta (
  queue_name     varchar     NOT NULL UNIQUE,
  -- Always false: partitioned queues need pg_partman, which Tasker does not require.
  is_partitioned boolean     NOT NULL,
  is_unlogged    boolean     NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now()
);

-- A new queue NOTIFYs pgmq_queue_created with its name and namespace, so a listener learns of it (and of the
-- pgmq_message_ready.<namespace> channel it signals on) without polling this table. Sent only on commit,
-- like every NOTIFY.
CREATE TRIGGER pgmq_queue_created_notify
AFTER INSERT ON pgmq.meta
FOR EACH ROW EXECUTE FUNCTION tasker._notify_queue_created();

-- Tasker's own queues (worker_<ns>_queue, orchestration_*) are reached through tasker._q_send, _q_read,
-- _q_archive and _q_set_vt, whose bodies hold one static-SQL branch per such queue, so their plans are cached
-- per session instead of being planned again on every call as dynamic SQL. Creating or dropping one of these
-- queues regenerates those four functions (tasker._refresh_queue_access); any other queue, and the whole
-- pgmq.* API, goes through dynamic SQL.
CREATE TRIGGER tasker_queue_access_refresh
AFTER INSERT OR DELETE ON pgmq.meta
FOR EACH ROW EXECUTE FUNCTION tasker._queue_access_changed();

-- The three queues orchestration consumes (reference §6.1): results that workers stored, requests for new
-- tasks, and requests to re-evaluate (finalize) a task. Created after the triggers above, so the generated
-- queue access functions get a branch for each of them.
--
-- Each q_ table is indexed on (vt, (msg_id + 0)) (see pgmq._create): a read takes the earliest visible
-- messages in that order and stops after the n it returns, whatever number of messages are leased or
-- delayed. The second column is the expression msg_id + 0, not msg_id, so no condition on msg_id
-- ("msg_id = ANY(...)", "msg_id = $1") can be checked on it while scanning the whole index: lookups by id
-- always go through the primary key, whatever the statistics were when the plan was made.
SELECT pgmq.create('orchestration_step_results');
SELECT pgmq.create('orchestration_task_requests');
SELECT pgmq.create('orchestration_task_finalizations');
