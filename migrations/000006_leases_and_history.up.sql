-- Leases and a job table that stays fast at any size.
--
-- 1. Every claim draws a lease token that is never reused (skipper.job_leases); the runner's writes are fenced on it.
--    Each runner records its own lease length; attempted_by, which grew by one entry per claim, goes.
-- 2. Unique keys are scoped by kind (at most one QUEUED job per kind and key).
-- 3. skipper.jobs becomes a table partitioned by finished_at: the existing table is attached, in place and without
--    copying a row, as its DEFAULT partition skipper.jobs_active, where every job that has not finished lives (its
--    finished_at is NULL); finished jobs go to one partition per UTC day (skipper.jobs_YYYYMMDD), created ahead and
--    dropped after RETENTION by the runners' maintenance. The queue's statements say `finished_at IS NULL`, so they
--    touch only the active partition, whose indexes serve the claim and nothing else hot.
--    Rows already finished stay in the active partition until retention prunes them. Daily partitions start at a
--    cutover: the active partition gets CHECK (finished_at IS NULL OR finished_at < cutover), and once it is
--    validated, partitions for [cutover, ...) need no scan of the active partition. On a small table (fewer than
--    500,000 rows) all of this happens here; on a bigger one the cutover is a day away and the leader validates the
--    constraint in the background (it blocks no one) and creates the partitions; until the cutover, finished jobs
--    keep landing in the active partition as before. Nothing here scans or indexes a big table (the indexes it needs
--    were built concurrently by the previous migration): it holds the table's lock for milliseconds.
-- 4. Counts of finished jobs per queue, status and day are kept in skipper.job_counts by the statements that finish,
--    cancel, rescue and retry jobs, so skipper.queue_stats reads a few rows instead of counting millions.

-- 1. Leases (catalog changes only: no column is rewritten)
CREATE SEQUENCE skipper.job_leases AS bigint;
COMMENT ON SEQUENCE skipper.job_leases IS 'Lease tokens: one per claim, never reused.';
ALTER TABLE skipper.jobs ADD COLUMN lease bigint;
COMMENT ON COLUMN skipper.jobs.lease IS 'The token of the claim holding the job (RUNNING) or that finished it; writes of runners are fenced on it.';
ALTER TABLE skipper.jobs DROP COLUMN attempted_by;
ALTER TABLE skipper.runners ADD COLUMN lease_ms integer NOT NULL DEFAULT 30000 CONSTRAINT runners_lease_check CHECK (lease_ms > 0);
COMMENT ON COLUMN skipper.runners.lease_ms IS 'RESCUE_AFTER of this runner: its jobs are rescued once heartbeat_at is older than this.';
COMMENT ON COLUMN skipper.runners.heartbeat_at IS 'When the last heartbeat landed, by the server''s clock (clock_timestamp()).';

-- 3. The existing table becomes the active partition.
DROP VIEW skipper.running_jobs;
DROP VIEW skipper.queue_stats;
ALTER TABLE skipper.job_artifacts DROP CONSTRAINT job_artifacts_job_id_fkey;
COMMENT ON TABLE skipper.job_artifacts IS 'Outputs of jobs, in chunks; removed with their job''s partition by retention.';
DROP INDEX skipper.jobs_unique_key_idx;
DROP INDEX skipper.jobs_finished_idx;
ALTER TABLE skipper.jobs RENAME TO jobs_active;
ALTER INDEX skipper.jobs_kind_unique_key_idx RENAME TO jobs_active_unique_key_idx;
ALTER INDEX skipper.jobs_finished_at_idx RENAME TO jobs_active_finished_idx;
ALTER TABLE skipper.jobs_active RENAME CONSTRAINT jobs_pkey TO jobs_active_pkey;
ALTER INDEX skipper.jobs_claim_idx RENAME TO jobs_active_claim_idx;
ALTER INDEX skipper.jobs_running_idx RENAME TO jobs_active_running_idx;
ALTER INDEX skipper.jobs_status_list_idx RENAME TO jobs_active_status_list_idx;
ALTER INDEX skipper.jobs_kind_list_idx RENAME TO jobs_active_kind_list_idx;
ALTER INDEX skipper.jobs_queue_list_idx RENAME TO jobs_active_queue_list_idx;

-- Ids come from a sequence of the partitioned table (an identity column cannot be shared by partitions).
CREATE SEQUENCE skipper.job_ids AS bigint;
SELECT setval('skipper.job_ids', coalesce((SELECT max(id) FROM skipper.jobs_active), 0) + 1, false);
ALTER TABLE skipper.jobs_active ALTER COLUMN id DROP IDENTITY;
ALTER TABLE skipper.jobs_active ALTER COLUMN id SET DEFAULT nextval('skipper.job_ids');

CREATE TABLE skipper.jobs (LIKE skipper.jobs_active INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS)
    PARTITION BY RANGE (finished_at);
ALTER SEQUENCE skipper.job_ids OWNED BY skipper.jobs.id;
COMMENT ON TABLE skipper.jobs IS 'The queue: one row per job, QUEUED -> RUNNING -> COMPLETED | FAILED | CANCELLED. Unfinished jobs live in skipper.jobs_active; finished ones in a partition per day.';
ALTER TABLE skipper.jobs ATTACH PARTITION skipper.jobs_active DEFAULT;
COMMENT ON TABLE skipper.jobs_active IS 'Jobs not finished (and jobs finished before the cutover to daily partitions).';

-- The hot partition's list indexes keep serving the rows finished before the cutover; on a new or small table they
-- cover only those, so claims and requeues (not HOT: status is in the claim index's predicate) do not write them.
-- Partitions of finished jobs get their own (kind, id), (queue, id), (status, id) and (id) indexes when created.

-- 2. Unique keys scoped by kind (see the previous migration): the active partition's index, built there, becomes the
-- partitioned table's; partitions made later get their own.
CREATE UNIQUE INDEX jobs_unique_key_idx ON ONLY skipper.jobs (kind, unique_key, finished_at) NULLS NOT DISTINCT
    WHERE status = 'QUEUED' AND unique_key IS NOT NULL;
ALTER INDEX skipper.jobs_unique_key_idx ATTACH PARTITION skipper.jobs_active_unique_key_idx;
COMMENT ON COLUMN skipper.jobs.unique_key IS 'At most one QUEUED job per kind and key.';

-- What a finished attempt becomes. A job with a cancel request never goes back to QUEUED.
-- outcome: 0 completed, 1 failed (retryable), 2 failed permanently, 3 cancelled, 4 released (not run, or stopped by its runner).
CREATE FUNCTION skipper.finish_status(outcome smallint, attempt integer, max_attempts integer, cancel_requested_at timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN outcome = 0 THEN 'COMPLETED'
        WHEN cancel_requested_at IS NOT NULL OR outcome = 3 THEN 'CANCELLED'
        WHEN outcome = 4 THEN 'QUEUED'
        WHEN outcome = 1 AND attempt < max_attempts THEN 'QUEUED'
        ELSE 'FAILED'
    END
$$;

-- 4. Counts of jobs finished from the cutover on (earlier ones, in the active partition, are counted where they are
-- until retention has pruned them). Concurrent writers (two runners finishing at once) update different shards.
CREATE TABLE skipper.job_counts (
    queue  text    NOT NULL,
    status text    NOT NULL,
    day    date    NOT NULL,
    -- Concurrent writers (two runners finishing at once) update different rows: no waiting on each other.
    shard  integer NOT NULL,
    jobs   bigint  NOT NULL,
    PRIMARY KEY (queue, status, day, shard)
);
COMMENT ON TABLE skipper.job_counts IS 'Jobs finished from the cutover on, per queue, status and UTC day of finished_at, summed over shards; kept by the queue''s statements (skipper.recount_finished() after changes by hand).';

-- The daily partitions, and the cutover from which they exist.
CREATE TABLE skipper.job_partitions (
    name        text        PRIMARY KEY,
    starts_at   timestamptz NOT NULL UNIQUE,
    ends_at     timestamptz NOT NULL,
    CHECK (starts_at < ends_at)
);
COMMENT ON TABLE skipper.job_partitions IS 'Partitions of finished jobs: [starts_at, ends_at) of finished_at each.';
CREATE TABLE skipper.partitioning (
    one     boolean     PRIMARY KEY DEFAULT true CHECK (one),
    cutover timestamptz NOT NULL
);
COMMENT ON TABLE skipper.partitioning IS 'Jobs finished from cutover on live in daily partitions; earlier ones in skipper.jobs_active.';

-- Counts by hand (after changing finished jobs with SQL of your own, which the queue's statements do not see):
-- recomputed from the daily partitions.
CREATE FUNCTION skipper.recount_finished() RETURNS void LANGUAGE sql AS $$
    DELETE FROM skipper.job_counts;
    INSERT INTO skipper.job_counts (queue, status, day, shard, jobs)
    SELECT queue, status, (finished_at AT TIME ZONE 'UTC')::date, 0, count(*)
    FROM skipper.jobs
    WHERE finished_at >= (SELECT cutover FROM skipper.partitioning)
    GROUP BY 1, 2, 3;
$$;

-- Creates the missing daily partitions up to `days_ahead` days from now, once the active partition's cutover
-- constraint is validated (so creating one needs no scan of it). Returns how many it created. The caller sets a
-- lock_timeout: creating a partition briefly takes the active partition's lock.
CREATE FUNCTION skipper.create_job_partitions(days_ahead integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    cut timestamptz := (SELECT cutover FROM skipper.partitioning);
    day_start timestamptz;
    from_ts timestamptz;
    to_ts timestamptz;
    part text;
    created integer := 0;
BEGIN
    -- It runs as the owner for the runner's role: its argument is bounded here, not trusted.
    IF days_ahead IS NULL OR days_ahead NOT BETWEEN 1 AND 31 THEN
        RAISE EXCEPTION 'days_ahead must be between 1 and 31, not %', days_ahead USING ERRCODE = '22023';
    END IF;
    IF NOT (SELECT convalidated FROM pg_constraint
            WHERE conrelid = 'skipper.jobs_active'::regclass AND conname = 'jobs_active_unfinished') THEN
        RETURN 0;
    END IF;
    day_start := date_trunc('day', greatest(cut, now()) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    WHILE day_start < now() + make_interval(days => days_ahead) LOOP
        from_ts := greatest(day_start, cut);
        to_ts := day_start + interval '1 day';
        part := 'jobs_' || to_char(day_start AT TIME ZONE 'UTC', 'YYYYMMDD');
        IF NOT EXISTS (SELECT 1 FROM skipper.job_partitions WHERE name = part) THEN
            EXECUTE format('CREATE TABLE skipper.%I PARTITION OF skipper.jobs FOR VALUES FROM (%L) TO (%L) WITH (fillfactor = 100)', part, from_ts, to_ts);
            EXECUTE format('CREATE INDEX ON skipper.%I (id)', part);
            EXECUTE format('CREATE INDEX ON skipper.%I (status, id)', part);
            EXECUTE format('CREATE INDEX ON skipper.%I (kind, id)', part);
            EXECUTE format('CREATE INDEX ON skipper.%I (queue, id)', part);
            INSERT INTO skipper.job_partitions (name, starts_at, ends_at) VALUES (part, from_ts, to_ts);
            created := created + 1;
        END IF;
        day_start := to_ts;
    END LOOP;
    RETURN created;
END
$$;

-- Drops the daily partitions whose every job finished more than `retention` ago, with their artifacts and counts.
-- Returns the jobs dropped. The caller sets a lock_timeout.
CREATE FUNCTION skipper.drop_job_partitions(retention interval) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    p record;
    dropped bigint := 0;
    n bigint;
BEGIN
    -- It runs as the owner for the runner's role: a retention shorter than a minute (RETENTION's floor) is refused.
    IF retention IS NULL OR retention < interval '1 minute' THEN
        RAISE EXCEPTION 'retention must be at least 1 minute, not %', retention USING ERRCODE = '22023';
    END IF;
    -- One partition per call: DROP holds the whole table's lock until commit, so nothing else runs under it.
    FOR p IN SELECT name, starts_at, ends_at FROM skipper.job_partitions WHERE ends_at <= now() - retention
             ORDER BY starts_at LIMIT 1 LOOP
        EXECUTE format('SELECT count(*) FROM skipper.%I', p.name) INTO n;
        EXECUTE format('DELETE FROM skipper.job_artifacts a USING skipper.%I j WHERE a.job_id = j.id', p.name);
        EXECUTE format('DROP TABLE skipper.%I', p.name);
        DELETE FROM skipper.job_counts
        WHERE day >= (p.starts_at AT TIME ZONE 'UTC')::date AND day < (p.ends_at AT TIME ZONE 'UTC')::date;
        DELETE FROM skipper.job_partitions WHERE name = p.name;
        dropped := dropped + n;
    END LOOP;
    RETURN dropped;
END
$$;

-- The cutover. A small table is settled now: its constraint validated, its list indexes narrowed to finished rows,
-- its counts seeded, today's partitions made. A big one gets a cutover two days away and the leader's background
-- work (see the runner's maintenance); nothing here reads a big table.
DO $$
DECLARE
    small boolean;
    cut timestamptz;
BEGIN
    -- Small enough to validate and re-index here in well under a second (about 150,000 jobs).
    small := pg_relation_size('skipper.jobs_active') < 64 * 1024 * 1024;
    cut := CASE WHEN small THEN now() ELSE date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '2 days' END;
    INSERT INTO skipper.partitioning (cutover) VALUES (cut);
    EXECUTE format('ALTER TABLE skipper.jobs_active ADD CONSTRAINT jobs_active_unfinished CHECK (finished_at IS NULL OR finished_at < %L) NOT VALID', cut);
    IF small THEN
        ALTER TABLE skipper.jobs_active VALIDATE CONSTRAINT jobs_active_unfinished;
        DROP INDEX skipper.jobs_active_status_list_idx;
        DROP INDEX skipper.jobs_active_kind_list_idx;
        DROP INDEX skipper.jobs_active_queue_list_idx;
        CREATE INDEX jobs_active_status_list_idx ON skipper.jobs_active (status, id) WHERE finished_at IS NOT NULL;
        CREATE INDEX jobs_active_kind_list_idx ON skipper.jobs_active (kind, id) WHERE finished_at IS NOT NULL;
        CREATE INDEX jobs_active_queue_list_idx ON skipper.jobs_active (queue, id) WHERE finished_at IS NOT NULL;
        PERFORM skipper.create_job_partitions(3);
    END IF;
END
$$;
-- Old finished rows of the active partition are pruned by DELETE as before (jobs_active_finished_idx); the last of
-- them goes after RETENTION.

-- Views for people at a psql prompt.
CREATE VIEW skipper.running_jobs AS
SELECT j.id,
       j.queue,
       j.kind,
       j.attempt,
       j.runner_id,
       j.lease,
       j.processed,
       j.total,
       CASE WHEN j.total > 0 THEN round(100.0 * j.processed / j.total, 1) END AS progress,
       date_trunc('second', now() - j.started_at)                      AS running_for,
       date_trunc('second', now() - r.heartbeat_at)                    AS heartbeat_age,
       j.cancel_requested_at IS NOT NULL                               AS cancel_requested
FROM skipper.jobs j
LEFT JOIN skipper.runners r ON r.id = j.runner_id
WHERE j.status = 'RUNNING' AND j.finished_at IS NULL;

-- Jobs per queue and status: the active partition's counted now (unfinished jobs, and jobs finished before the
-- cutover until retention prunes them), the daily partitions' from skipper.job_counts.
-- unserved: QUEUED jobs of a kind that no live runner of the queue handles (they wait for one that does).
CREATE VIEW skipper.queue_stats AS
WITH active AS (
    SELECT queue, kind, status, count(*) AS jobs, min(created_at) AS oldest,
           count(*) FILTER (WHERE status = 'QUEUED' AND run_at > now()) AS scheduled
    FROM skipper.jobs_active
    GROUP BY queue, kind, status),
served AS (
    SELECT a.*, a.status <> 'QUEUED' OR EXISTS (
               SELECT 1 FROM skipper.runners r
               WHERE a.queue = ANY (r.queues) AND a.kind = ANY (r.kinds)
                 AND r.heartbeat_at > clock_timestamp() - r.lease_ms * interval '1 millisecond') AS served
    FROM active a),
counted AS (
    SELECT queue, status, jobs, oldest, scheduled, CASE WHEN served THEN 0 ELSE jobs END AS unserved FROM served
    UNION ALL
    SELECT queue, status, jobs, NULL, 0, 0 FROM skipper.job_counts)
SELECT queue, status, sum(jobs)::bigint AS jobs,
       CASE WHEN status IN ('QUEUED', 'RUNNING') THEN date_trunc('second', now() - min(oldest)) END AS oldest_age,
       sum(scheduled)::bigint AS scheduled, sum(unserved)::bigint AS unserved
FROM counted
GROUP BY queue, status
HAVING sum(jobs) > 0;
