-- Without the dashboard's roll-up.
DROP FUNCTION skipper.roll_up_stats(integer);
DROP TABLE skipper.stats_rollup;
DROP TABLE skipper.stats_minutely;
DO $$
DECLARE p record;
BEGIN
    FOR p IN SELECT name FROM skipper.job_partitions LOOP
        EXECUTE format('DROP INDEX IF EXISTS skipper.%I', p.name || '_finished_brin');
    END LOOP;
END
$$;
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
            INSERT INTO skipper.job_partitions (name, starts_at, ends_at) VALUES (part, from_ts, to_ts);
            created := created + 1;
        END IF;
        day_start := to_ts;
    END LOOP;
    RETURN created;
END
$$;
