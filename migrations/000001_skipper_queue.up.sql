-- Skipper's queue: every job is a row in skipper.jobs.
CREATE SCHEMA IF NOT EXISTS skipper;

CREATE TABLE skipper.jobs (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue               text        NOT NULL DEFAULT 'default',
    kind                text        NOT NULL,
    args                jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status              text        NOT NULL DEFAULT 'QUEUED'
                        CONSTRAINT jobs_status_check
                        CHECK (status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    priority            smallint    NOT NULL DEFAULT 0,
    run_at              timestamptz NOT NULL DEFAULT now(),
    attempt             integer     NOT NULL DEFAULT 0 CONSTRAINT jobs_attempt_check CHECK (attempt >= 0),
    max_attempts        integer     NOT NULL DEFAULT 25 CONSTRAINT jobs_max_attempts_check CHECK (max_attempts > 0),
    unique_key          text,
    runner_id           text,
    attempted_by        text[]      NOT NULL DEFAULT '{}',
    processed           bigint      NOT NULL DEFAULT 0,
    total               bigint,
    cancel_requested_at timestamptz,
    errors              jsonb       NOT NULL DEFAULT '[]'::jsonb,
    result              jsonb,
    meta                jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz,
    CONSTRAINT jobs_queue_check CHECK (length(queue) BETWEEN 1 AND 128),
    CONSTRAINT jobs_kind_check CHECK (length(kind) BETWEEN 1 AND 128)
) WITH (
    -- Room on each page for HOT updates (progress, cancel requests), and vacuum that keeps up with a queue's churn.
    fillfactor = 80,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);

COMMENT ON TABLE skipper.jobs IS 'The queue: one row per job, QUEUED -> RUNNING -> COMPLETED | FAILED | CANCELLED.';
COMMENT ON COLUMN skipper.jobs.priority IS 'Lower runs first.';
COMMENT ON COLUMN skipper.jobs.run_at IS 'Not claimed before this time (delays and retry backoff).';
COMMENT ON COLUMN skipper.jobs.unique_key IS 'At most one QUEUED job per key.';
COMMENT ON COLUMN skipper.jobs.runner_id IS 'The runner holding the job while RUNNING; its heartbeat is the lease.';
COMMENT ON COLUMN skipper.jobs.attempted_by IS 'Every runner that claimed the job, one entry per claim.';
COMMENT ON COLUMN skipper.jobs.errors IS 'One entry per failed attempt: {attempt, at, error}.';

-- The claim query's index, and the only hot one: QUEUED jobs in claim order.
CREATE INDEX jobs_claim_idx ON skipper.jobs (queue, priority, run_at, id) WHERE status = 'QUEUED';
-- unique_key: at most one QUEUED job per key.
CREATE UNIQUE INDEX jobs_unique_key_idx ON skipper.jobs (unique_key) WHERE status = 'QUEUED' AND unique_key IS NOT NULL;
-- Rescue and the cancel sweep look up RUNNING jobs by runner; the set is small.
CREATE INDEX jobs_running_idx ON skipper.jobs (runner_id) WHERE status = 'RUNNING';
-- Pruning walks finished jobs oldest first.
CREATE INDEX jobs_finished_idx ON skipper.jobs (finished_at)
    WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED');

-- One row per live runner process. Its heartbeat is the lease of every job it holds.
CREATE TABLE skipper.runners (
    id           text        PRIMARY KEY,
    host         text        NOT NULL,
    pid          integer     NOT NULL,
    queues       text[]      NOT NULL,
    kinds        text[]      NOT NULL DEFAULT '{}',
    concurrency  integer     NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);

-- Every kind a runner has ever registered, so the API can refuse kinds nobody runs.
CREATE TABLE skipper.kinds (
    kind          text        PRIMARY KEY,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);

-- Outputs of jobs (the settlement CSV...), in chunks, so the API and runners share no disk.
CREATE TABLE skipper.job_artifacts (
    job_id       bigint  NOT NULL REFERENCES skipper.jobs (id) ON DELETE CASCADE,
    name         text    NOT NULL,
    content_type text    NOT NULL DEFAULT 'application/octet-stream',
    seq          integer NOT NULL,
    data         bytea   NOT NULL,
    PRIMARY KEY (job_id, name, seq)
);

-- For people at a psql prompt.
CREATE VIEW skipper.queue_stats AS
SELECT queue,
       status,
       count(*)                                                      AS jobs,
       date_trunc('second', now() - min(created_at))                 AS oldest_age,
       count(*) FILTER (WHERE status = 'QUEUED' AND run_at > now())  AS scheduled
FROM skipper.jobs
GROUP BY queue, status;

CREATE VIEW skipper.running_jobs AS
SELECT j.id,
       j.queue,
       j.kind,
       j.attempt,
       j.runner_id,
       j.processed,
       j.total,
       CASE WHEN j.total > 0 THEN round(100.0 * j.processed / j.total, 1) END AS progress,
       date_trunc('second', now() - j.started_at)                      AS running_for,
       date_trunc('second', now() - r.heartbeat_at)                    AS heartbeat_age,
       j.cancel_requested_at IS NOT NULL                               AS cancel_requested
FROM skipper.jobs j
LEFT JOIN skipper.runners r ON r.id = j.runner_id
WHERE j.status = 'RUNNING';
