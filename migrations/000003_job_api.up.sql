-- What the REST API reads: keyset listing of jobs newest first, by status, kind or queue, and the job resource.

-- GET /jobs?status=…, ?kind=…, ?queue=…: each filter walks its index newest first and stops at `limit`.
CREATE INDEX jobs_status_list_idx ON skipper.jobs (status, id);
CREATE INDEX jobs_kind_list_idx ON skipper.jobs (kind, id);
CREATE INDEX jobs_queue_list_idx ON skipper.jobs (queue, id);

-- A UTC timestamp in the API's format, e.g. 2026-11-23T10:31:09.123Z.
CREATE FUNCTION skipper.api_time(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');

-- The job resource of the REST API, also handy at a psql prompt: SELECT skipper.job_json(j) FROM skipper.jobs j …
CREATE FUNCTION skipper.job_json(j skipper.jobs) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE
RETURN json_build_object(
    'job_id', j.id,
    'kind', j.kind,
    'queue', j.queue,
    'status', j.status,
    'progress', CASE
        WHEN j.total > 0 THEN round(least(100.0, 100.0 * j.processed / j.total), 1)
        WHEN j.status = 'COMPLETED' THEN 100.0
        ELSE 0.0 END,
    'processed', j.processed,
    'total', j.total,
    'attempt', j.attempt,
    'max_attempts', j.max_attempts,
    'priority', j.priority,
    'args', j.args,
    'unique_key', j.unique_key,
    'run_at', skipper.api_time(j.run_at),
    'created_at', skipper.api_time(j.created_at),
    'started_at', skipper.api_time(j.started_at),
    'finished_at', skipper.api_time(j.finished_at),
    'cancel_requested_at', skipper.api_time(j.cancel_requested_at),
    'errors', j.errors,
    'result', j.result,
    'meta', j.meta,
    'download_url', (SELECT '/downloads/' || j.id || '.csv'
                     FROM skipper.job_artifacts a WHERE a.job_id = j.id LIMIT 1));
