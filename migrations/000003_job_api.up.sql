-- What the REST API reads: keyset listing of jobs newest first, by status, kind or queue.
-- GET /jobs?status=…, ?kind=…, ?queue=…: each filter walks its index newest first and stops at `limit`.
CREATE INDEX jobs_status_list_idx ON skipper.jobs (status, id);
CREATE INDEX jobs_kind_list_idx ON skipper.jobs (kind, id);
CREATE INDEX jobs_queue_list_idx ON skipper.jobs (queue, id);
