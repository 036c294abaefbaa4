-- What the dashboard charts: per minute and queue, the jobs that finished (completed, failed, cancelled) and how
-- long they waited from due to started (p50 and p99), rolled up by the runners' maintenance from the job table's
-- finished_at index. A chart reads at most 1,440 rows a day, never the jobs themselves.
CREATE TABLE skipper.stats_minutely (
    minute         timestamptz      NOT NULL,
    -- The queue, or '' for all queues together (percentiles cannot be added up afterwards).
    queue          text             NOT NULL,
    completed      bigint           NOT NULL,
    failed         bigint           NOT NULL,
    cancelled      bigint           NOT NULL,
    -- Of the jobs that finished in this minute and had started: started_at - run_at, in milliseconds.
    latency_p50_ms double precision,
    latency_p99_ms double precision,
    PRIMARY KEY (queue, minute)
);
CREATE INDEX stats_minutely_minute_idx ON skipper.stats_minutely (minute);
COMMENT ON TABLE skipper.stats_minutely IS 'Finished jobs and their wait per minute and queue ('''' = all queues), kept 8 days; filled by skipper.roll_up_stats().';

-- How far the roll-up has come: minutes before rolled_until are in skipper.stats_minutely.
CREATE TABLE skipper.stats_rollup (
    one          boolean     PRIMARY KEY DEFAULT true CHECK (one),
    rolled_until timestamptz NOT NULL
);

-- Rolls up the minutes that ended at least 10 s ago (a finish committed later than that is not counted), at most
-- max_minutes of them per call, from where the last call stopped (the last day, the first time), skipping minutes in
-- which nothing finished. Returns the minutes rolled up. One runner at a time (the row lock); running it twice only
-- writes the same rows again.
CREATE FUNCTION skipper.roll_up_stats(max_minutes integer DEFAULT 60) RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    from_ts timestamptz;
    to_ts timestamptz;
    first_finish timestamptz;
    cutoff timestamptz;
BEGIN
    SELECT s.rolled_until INTO from_ts FROM skipper.stats_rollup s FOR UPDATE;
    IF from_ts IS NULL THEN
        from_ts := date_trunc('minute', now()) - interval '1 day';
        INSERT INTO skipper.stats_rollup (rolled_until) VALUES (from_ts) ON CONFLICT (one) DO NOTHING;
        SELECT s.rolled_until INTO from_ts FROM skipper.stats_rollup s FOR UPDATE;
    END IF;
    cutoff := date_trunc('minute', now() - interval '10 seconds');
    IF cutoff <= from_ts THEN RETURN 0; END IF;
    -- Minutes in which nothing finished are skipped at once (a runner-less night costs one index probe).
    SELECT date_trunc('minute', min(j.finished_at)) INTO first_finish FROM skipper.jobs j
    WHERE j.finished_at >= from_ts AND j.finished_at < cutoff;
    from_ts := greatest(from_ts, least(coalesce(first_finish, cutoff), cutoff));
    to_ts := least(cutoff, from_ts + greatest(max_minutes, 1) * interval '1 minute');
    IF to_ts <= from_ts THEN
        UPDATE skipper.stats_rollup SET rolled_until = from_ts;
        RETURN 0;
    END IF;
    INSERT INTO skipper.stats_minutely AS s (minute, queue, completed, failed, cancelled, latency_p50_ms, latency_p99_ms)
    SELECT f.minute, coalesce(f.queue, ''),
           count(*) FILTER (WHERE f.status = 'COMPLETED'),
           count(*) FILTER (WHERE f.status = 'FAILED'),
           count(*) FILTER (WHERE f.status = 'CANCELLED'),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY f.wait_ms) FILTER (WHERE f.wait_ms IS NOT NULL),
           percentile_cont(0.99) WITHIN GROUP (ORDER BY f.wait_ms) FILTER (WHERE f.wait_ms IS NOT NULL)
    FROM (SELECT date_trunc('minute', j.finished_at) AS minute, j.queue, j.status,
                 -- A job failed back to the queue keeps its last start, before its new run_at: no wait of this attempt.
                 CASE WHEN j.started_at >= j.run_at THEN extract(epoch FROM j.started_at - j.run_at) * 1000 END::double precision AS wait_ms
          FROM skipper.jobs j
          WHERE j.finished_at >= from_ts AND j.finished_at < to_ts AND j.status IN ('COMPLETED', 'FAILED', 'CANCELLED')) f
    GROUP BY GROUPING SETS ((f.minute, f.queue), (f.minute))
    ON CONFLICT (queue, minute) DO UPDATE
        SET completed = excluded.completed, failed = excluded.failed, cancelled = excluded.cancelled,
            latency_p50_ms = excluded.latency_p50_ms, latency_p99_ms = excluded.latency_p99_ms;
    UPDATE skipper.stats_rollup SET rolled_until = to_ts;
    DELETE FROM skipper.stats_minutely s WHERE s.minute < now() - interval '8 days';  -- stats_minutely_minute_idx
    RETURN (extract(epoch FROM to_ts - from_ts) / 60)::integer;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON skipper.stats_minutely TO skipper_runner;
GRANT SELECT, INSERT, UPDATE ON skipper.stats_rollup TO skipper_runner;
GRANT SELECT ON skipper.stats_minutely, skipper.stats_rollup TO skipper_api;

-- The roll-up reads finished jobs by finished_at; a day's partition is written in finished_at order, so a BRIN index
-- (a few pages per partition, nothing to maintain on the hot path) finds a minute's rows without reading the day.
-- New partitions get it from create_job_partitions (as in migration 6, with the owner's rights of migration 7).
CREATE OR REPLACE FUNCTION skipper.create_job_partitions(days_ahead integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
            EXECUTE format('CREATE INDEX %I ON skipper.%I USING brin (finished_at)', part || '_finished_brin', part);
            INSERT INTO skipper.job_partitions (name, starts_at, ends_at) VALUES (part, from_ts, to_ts);
            created := created + 1;
        END IF;
        day_start := to_ts;
    END LOOP;
    RETURN created;
END
$$;

DO $$
DECLARE p record;
BEGIN
    FOR p IN SELECT name FROM skipper.job_partitions LOOP
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON skipper.%I USING brin (finished_at)', p.name || '_finished_brin', p.name);
    END LOOP;
END
$$;
