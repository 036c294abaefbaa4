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
BEGIN
    SELECT s.rolled_until INTO from_ts FROM skipper.stats_rollup s FOR UPDATE;
    IF from_ts IS NULL THEN
        from_ts := date_trunc('minute', now()) - interval '1 day';
        INSERT INTO skipper.stats_rollup (rolled_until) VALUES (from_ts) ON CONFLICT (one) DO NOTHING;
        SELECT s.rolled_until INTO from_ts FROM skipper.stats_rollup s FOR UPDATE;
    END IF;
    -- Minutes in which nothing finished are skipped at once (a runner-less night costs one index probe).
    SELECT date_trunc('minute', min(j.finished_at)) INTO first_finish FROM skipper.jobs j WHERE j.finished_at >= from_ts;
    from_ts := greatest(from_ts, least(coalesce(first_finish, 'infinity'), date_trunc('minute', now() - interval '10 seconds')));
    to_ts := least(date_trunc('minute', now() - interval '10 seconds'), from_ts + greatest(max_minutes, 1) * interval '1 minute');
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
                 greatest(extract(epoch FROM j.started_at - j.run_at) * 1000, 0)::double precision AS wait_ms
          FROM skipper.jobs j
          WHERE j.finished_at >= from_ts AND j.finished_at < to_ts AND j.status IN ('COMPLETED', 'FAILED', 'CANCELLED')) f
    GROUP BY GROUPING SETS ((f.minute, f.queue), (f.minute))
    ON CONFLICT (queue, minute) DO UPDATE
        SET completed = excluded.completed, failed = excluded.failed, cancelled = excluded.cancelled,
            latency_p50_ms = excluded.latency_p50_ms, latency_p99_ms = excluded.latency_p99_ms;
    UPDATE skipper.stats_rollup SET rolled_until = to_ts;
    DELETE FROM skipper.stats_minutely s WHERE s.minute < now() - interval '8 days';
    RETURN (extract(epoch FROM to_ts - from_ts) / 60)::integer;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON skipper.stats_minutely TO skipper_runner;
GRANT SELECT, INSERT, UPDATE ON skipper.stats_rollup TO skipper_runner;
GRANT SELECT ON skipper.stats_minutely, skipper.stats_rollup TO skipper_api;
