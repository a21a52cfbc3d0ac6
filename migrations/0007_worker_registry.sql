-- The worker registry: which workers serve which namespaces, as of their last heartbeat. A task whose namespace
-- no live worker serves waits forever in silence; with this table the API, the CLI and /health/detailed can say
-- so. Workers write it off the hot path (at start, every heartbeat interval, at stop); readers treat a row whose
-- heartbeat is older than a few intervals as a worker that is gone (a SIGKILL leaves its rows behind).
CREATE TABLE tasker.worker_namespaces (
  worker_id     text        NOT NULL,
  namespace     text        NOT NULL,
  hostname      text        NOT NULL,
  pid           integer     NOT NULL,
  -- Handlers it runs at once; the Tasker version it runs.
  capacity      integer     NOT NULL,
  version       text        NOT NULL,
  started_at    timestamptz NOT NULL DEFAULT now(),
  heartbeat_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (worker_id, namespace)
);
-- "Is a live worker serving this namespace?": the newest heartbeat per namespace.
CREATE INDEX worker_namespaces_namespace_idx ON tasker.worker_namespaces (namespace, heartbeat_at DESC);
