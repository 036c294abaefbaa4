-- Operating the queue: pausing queues, concurrency and rate limits enforced in the claim, periodic jobs, timeouts
-- and snoozes. Everything here is plain SQL to read and to change: an UPDATE of skipper.queues pauses a queue as
-- surely as the API does.

-- 1. Queues. A queue is named by its jobs; it has a row here once someone paused it or set a limit (pausing a queue
-- no job names yet creates its row). Runners re-read this table at least every half second and the claim checks it
-- in the same statement, so a change holds within a second.
CREATE TABLE skipper.queues (
    name         text        PRIMARY KEY CONSTRAINT queues_name_check CHECK (length(name) BETWEEN 1 AND 128),
    paused       boolean     NOT NULL DEFAULT false,
    -- At most this many RUNNING jobs of the queue, across all runners; with partition_by, per value of that argument.
    concurrency  integer     CONSTRAINT queues_concurrency_check CHECK (concurrency > 0),
    -- An argument path such as 'args.merchant_id': concurrency then counts per value of that argument.
    partition_by text        CONSTRAINT queues_partition_by_check CHECK (partition_by ~ '^args(\.[A-Za-z0-9_-]{1,64}){1,8}$'),
    -- At most rate_limit starts in any window of rate_period, across all runners.
    rate_limit   integer     CONSTRAINT queues_rate_limit_check CHECK (rate_limit > 0),
    rate_period  interval    CONSTRAINT queues_rate_period_check CHECK (rate_period >= interval '1 second' AND rate_period <= interval '7 days'),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT queues_rate_check CHECK ((rate_limit IS NULL) = (rate_period IS NULL)),
    CONSTRAINT queues_partition_check CHECK (partition_by IS NULL OR concurrency IS NOT NULL)
);
COMMENT ON TABLE skipper.queues IS 'Pause flag and limits per queue; a queue without a row is running and unlimited.';

-- 2. The same limits per kind (across every queue), beside what runners record of each kind.
ALTER TABLE skipper.kinds
    ADD COLUMN concurrency  integer  CONSTRAINT kinds_concurrency_check CHECK (concurrency > 0),
    ADD COLUMN partition_by text     CONSTRAINT kinds_partition_by_check CHECK (partition_by ~ '^args(\.[A-Za-z0-9_-]{1,64}){1,8}$'),
    ADD COLUMN rate_limit   integer  CONSTRAINT kinds_rate_limit_check CHECK (rate_limit > 0),
    ADD COLUMN rate_period  interval CONSTRAINT kinds_rate_period_check CHECK (rate_period >= interval '1 second' AND rate_period <= interval '7 days'),
    ADD CONSTRAINT kinds_rate_check CHECK ((rate_limit IS NULL) = (rate_period IS NULL)),
    ADD CONSTRAINT kinds_partition_check CHECK (partition_by IS NULL OR concurrency IS NOT NULL);

-- Starts counted by rate limits: one row per claim in a rate-limited queue or kind (with the jobs it started), kept
-- for one period. A window holds at most `rate_limit` starts, so summing it costs at most that many rows.
CREATE TABLE skipper.rate_starts (
    scope      text        NOT NULL,
    started_at timestamptz NOT NULL,
    jobs       integer     NOT NULL CHECK (jobs > 0)
);
CREATE INDEX rate_starts_scope_idx ON skipper.rate_starts (scope, started_at);

-- 3. Timeouts and snoozes. timeout_ms: the attempt fails when it runs longer (NULL: the kind's default, if any).
-- snoozed: how often a handler asked to run again later, which does not spend an attempt.
ALTER TABLE skipper.jobs
    ADD COLUMN timeout_ms integer CONSTRAINT jobs_timeout_check CHECK (timeout_ms > 0),
    ADD COLUMN snoozed integer NOT NULL DEFAULT 0;

-- outcome 5: snoozed (back to QUEUED at a later run_at, the attempt not spent), unless a cancel was requested.
CREATE OR REPLACE FUNCTION skipper.finish_status(outcome smallint, attempt integer, max_attempts integer, cancel_requested_at timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN outcome = 0 THEN 'COMPLETED'
        WHEN cancel_requested_at IS NOT NULL OR outcome = 3 THEN 'CANCELLED'
        WHEN outcome IN (4, 5) THEN 'QUEUED'
        WHEN outcome = 1 AND attempt < max_attempts THEN 'QUEUED'
        ELSE 'FAILED'
    END
$$;

-- A partition's key is the argument's JSON text (1 and "1" differ, as do null, "" and a missing argument, which is
-- the empty key).
-- 4. The claim of a queue that is limited, or whose runner serves a limited kind. Claims of a limited queue take turns
-- (an advisory lock per queue), and a limited kind is counted only under its own lock, taken when the walk meets a
-- job of that kind (tried, never waited for: a kind another claim is counting now is left for the next claim, so
-- claims of different queues never wait on each other or deadlock). Under its locks each claim sees the RUNNING jobs
-- and recent starts of the one before, so a limit is never exceeded whatever the number of runners. It walks at most
-- `candidates` waiting jobs of the queue in claim order and takes those every limit admits, up to `max_jobs`.
-- Paused, or the runner's lease out: nothing.
CREATE FUNCTION skipper.claim_limited(p_queue text, p_kinds text[], max_jobs integer, p_runner text, candidates integer DEFAULT 1000,
                                      after_priority smallint DEFAULT -32768, after_run_at timestamptz DEFAULT '-infinity',
                                      after_id bigint DEFAULT 0)
RETURNS TABLE (id bigint, lease bigint, queue text, kind text, args text, attempt integer, max_attempts integer,
               meta text, request_id text, priority smallint, run_at timestamptz, timeout_ms integer)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    q skipper.queues;
    c record;
    at timestamptz;
    -- Budgets left: 'queue', 'queue-rate', and with chr(31) (which no name holds) between the parts: qp <key>,
    -- k <kind>, kr <kind>, kp <kind> <key>.
    budget jsonb := '{}';
    -- The limited kinds this runner serves: their limits, and whether this claim counted them ('ok') or left them.
    kinds jsonb := '{}';
    state jsonb := '{}';
    rate_kinds text[] := '{}';
    chosen bigint[] := '{}';
    key text;
    ok boolean;
    qpath text[];
    claim_lease bigint;
BEGIN
    IF max_jobs IS NULL OR max_jobs < 1 THEN RETURN; END IF;
    IF NOT EXISTS (SELECT FROM skipper.runners r
                   WHERE r.id = p_runner AND r.heartbeat_at > now() - r.lease_ms * interval '1 millisecond') THEN
        RETURN;
    END IF;
    SELECT * INTO q FROM skipper.queues WHERE skipper.queues.name = p_queue;
    IF q.paused THEN RETURN; END IF;
    IF q.concurrency IS NOT NULL OR q.rate_limit IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('skipper.queue ' || p_queue, 0));
        -- Read again under the lock (each statement here sees what committed before it began).
        SELECT * INTO q FROM skipper.queues WHERE skipper.queues.name = p_queue;
        IF q.paused THEN RETURN; END IF;
    END IF;
    at := clock_timestamp();
    IF q.concurrency IS NOT NULL THEN
        IF q.partition_by IS NULL THEN
            budget := budget || jsonb_build_object('queue', q.concurrency - (
                SELECT count(*) FROM skipper.jobs_active j WHERE j.status = 'RUNNING' AND j.queue = p_queue));
        ELSE
            qpath := string_to_array(substr(q.partition_by, 6), '.');
            budget := budget || coalesce((
                SELECT jsonb_object_agg('qp' || chr(31) || g.key, q.concurrency - g.n) FROM (
                    SELECT coalesce((j.args #> qpath)::text, '') AS key, count(*) AS n FROM skipper.jobs_active j
                    WHERE j.status = 'RUNNING' AND j.queue = p_queue GROUP BY 1) g), '{}');
        END IF;
    END IF;
    IF q.rate_limit IS NOT NULL THEN
        DELETE FROM skipper.rate_starts s WHERE s.scope = 'queue ' || p_queue AND s.started_at <= at - q.rate_period;
        budget := budget || jsonb_build_object('queue-rate', q.rate_limit - (
            SELECT coalesce(sum(s.jobs), 0) FROM skipper.rate_starts s WHERE s.scope = 'queue ' || p_queue));
    END IF;
    IF (budget->>'queue')::int <= 0 OR (budget->>'queue-rate')::int <= 0 THEN RETURN; END IF;
    SELECT coalesce(jsonb_object_agg(kd.kind, jsonb_build_object(
               'concurrency', kd.concurrency, 'path', string_to_array(substr(kd.partition_by, 6), '.'),
               'rate', kd.rate_limit, 'period', extract(epoch FROM kd.rate_period))), '{}')
    INTO kinds FROM skipper.kinds kd
    WHERE kd.kind = ANY (p_kinds) AND (kd.concurrency IS NOT NULL OR kd.rate_limit IS NOT NULL);

    -- Only the queue's own total and rate: the first jobs in claim order, as many as both allow (no walk needed),
    -- from where the runner's last claim of the queue stopped (as the fast claim does).
    IF qpath IS NULL AND kinds = '{}'::jsonb THEN
        chosen := ARRAY(
            SELECT j.id FROM skipper.jobs_active j
            WHERE j.status = 'QUEUED' AND j.finished_at IS NULL AND j.queue = p_queue AND j.run_at <= now()
              AND (j.priority, j.run_at, j.id) > (after_priority, after_run_at, after_id) AND j.kind = ANY (p_kinds)
            ORDER BY j.priority, j.run_at, j.id
            LIMIT least(max_jobs, coalesce((budget->>'queue')::int, max_jobs), coalesce((budget->>'queue-rate')::int, max_jobs)));
    END IF;
    FOR c IN SELECT j.id, j.kind, j.args FROM skipper.jobs_active j
             WHERE j.status = 'QUEUED' AND j.finished_at IS NULL AND j.queue = p_queue AND j.run_at <= now()
               AND j.kind = ANY (p_kinds) AND (qpath IS NOT NULL OR kinds <> '{}'::jsonb)
             ORDER BY j.priority, j.run_at, j.id LIMIT candidates LOOP
        ok := true;
        IF qpath IS NOT NULL THEN
            key := 'qp' || chr(31) || coalesce((c.args #> qpath)::text, '');
            ok := coalesce((budget->>key)::int, q.concurrency) > 0;
        END IF;
        IF ok AND kinds ? c.kind THEN
            -- First meeting with this kind in this claim: count it under its lock, if the lock is free now.
            IF NOT state ? c.kind THEN
                IF pg_try_advisory_xact_lock(hashtextextended('skipper.kind ' || c.kind, 0)) THEN
                    state := state || jsonb_build_object(c.kind, 'ok');
                    IF kinds->c.kind->>'concurrency' IS NOT NULL THEN
                        IF jsonb_typeof(kinds->c.kind->'path') <> 'array' THEN
                            budget := budget || jsonb_build_object('k' || chr(31) || c.kind, (kinds->c.kind->>'concurrency')::int - (
                                SELECT count(*) FROM skipper.jobs_active j WHERE j.status = 'RUNNING' AND j.kind = c.kind));
                        ELSE
                            budget := budget || coalesce((
                                SELECT jsonb_object_agg('kp' || chr(31) || c.kind || chr(31) || g.key, (kinds->c.kind->>'concurrency')::int - g.n) FROM (
                                    SELECT coalesce((j.args #> ARRAY(SELECT jsonb_array_elements_text(kinds->c.kind->'path')))::text, '') AS key,
                                           count(*) AS n
                                    FROM skipper.jobs_active j WHERE j.status = 'RUNNING' AND j.kind = c.kind GROUP BY 1) g), '{}');
                        END IF;
                    END IF;
                    IF kinds->c.kind->>'rate' IS NOT NULL THEN
                        rate_kinds := rate_kinds || c.kind;
                        DELETE FROM skipper.rate_starts s WHERE s.scope = 'kind ' || c.kind
                          AND s.started_at <= at - (kinds->c.kind->>'period')::float8 * interval '1 second';
                        budget := budget || jsonb_build_object('kr' || chr(31) || c.kind, (kinds->c.kind->>'rate')::int - (
                            SELECT coalesce(sum(s.jobs), 0) FROM skipper.rate_starts s WHERE s.scope = 'kind ' || c.kind));
                    END IF;
                ELSE
                    state := state || jsonb_build_object(c.kind, 'busy');
                END IF;
            END IF;
            ok := state->>c.kind = 'ok'
                  AND coalesce((budget->>('k' || chr(31) || c.kind))::int, 1) > 0
                  AND coalesce((budget->>('kr' || chr(31) || c.kind))::int, 1) > 0;
            IF ok AND jsonb_typeof(kinds->c.kind->'path') = 'array' THEN
                key := 'kp' || chr(31) || c.kind || chr(31) || coalesce((c.args #> ARRAY(SELECT jsonb_array_elements_text(kinds->c.kind->'path')))::text, '');
                ok := coalesce((budget->>key)::int, (kinds->c.kind->>'concurrency')::int) > 0;
            END IF;
        END IF;
        CONTINUE WHEN NOT ok;
        chosen := chosen || c.id;
        IF budget ? 'queue' THEN budget := budget || jsonb_build_object('queue', (budget->>'queue')::int - 1); END IF;
        IF budget ? 'queue-rate' THEN budget := budget || jsonb_build_object('queue-rate', (budget->>'queue-rate')::int - 1); END IF;
        IF qpath IS NOT NULL THEN
            key := 'qp' || chr(31) || coalesce((c.args #> qpath)::text, '');
            budget := budget || jsonb_build_object(key, coalesce((budget->>key)::int, q.concurrency) - 1);
        END IF;
        IF kinds ? c.kind THEN
            IF budget ? ('k' || chr(31) || c.kind) THEN
                budget := budget || jsonb_build_object('k' || chr(31) || c.kind, (budget->>('k' || chr(31) || c.kind))::int - 1);
            END IF;
            IF budget ? ('kr' || chr(31) || c.kind) THEN
                budget := budget || jsonb_build_object('kr' || chr(31) || c.kind, (budget->>('kr' || chr(31) || c.kind))::int - 1);
            END IF;
            IF jsonb_typeof(kinds->c.kind->'path') = 'array' THEN
                key := 'kp' || chr(31) || c.kind || chr(31) || coalesce((c.args #> ARRAY(SELECT jsonb_array_elements_text(kinds->c.kind->'path')))::text, '');
                budget := budget || jsonb_build_object(key, coalesce((budget->>key)::int, (kinds->c.kind->>'concurrency')::int) - 1);
            END IF;
        END IF;
        EXIT WHEN cardinality(chosen) >= max_jobs
               OR (budget->>'queue')::int <= 0 OR (budget->>'queue-rate')::int <= 0;
    END LOOP;
    IF cardinality(chosen) = 0 THEN RETURN; END IF;

    claim_lease := nextval('skipper.job_leases');
    RETURN QUERY
    WITH u AS (
        UPDATE skipper.jobs_active j
        SET status = 'RUNNING', attempt = least(j.attempt, 2147483646) + 1, started_at = clock_timestamp(),
            runner_id = p_runner, lease = claim_lease
        -- Still waiting and due, and not being claimed by another claim at this moment (the walk read without locks).
        WHERE j.id = ANY (ARRAY(SELECT w.id FROM skipper.jobs_active w
                                WHERE w.id = ANY (chosen) AND w.status = 'QUEUED' AND w.finished_at IS NULL AND w.run_at <= now()
                                FOR UPDATE SKIP LOCKED))
          AND j.status = 'QUEUED' AND j.finished_at IS NULL
        RETURNING j.id, j.lease, j.queue, j.kind, j.args::text AS args, j.attempt, j.max_attempts, j.meta::text AS meta,
                  j.meta->>'request_id' AS request_id, j.priority, j.run_at, j.timeout_ms, j.started_at),
    -- Stamped when the jobs started (not when the claim began): a window counted later then never misses them.
    started AS (
        INSERT INTO skipper.rate_starts (scope, started_at, jobs)
        SELECT 'queue ' || p_queue, max(u.started_at), count(*) FROM u WHERE q.rate_limit IS NOT NULL HAVING count(*) > 0
        UNION ALL
        SELECT 'kind ' || u.kind, max(u.started_at), count(*) FROM u WHERE u.kind = ANY (rate_kinds) GROUP BY u.kind)
    SELECT u.id, u.lease, u.queue, u.kind, u.args, u.attempt, u.max_attempts, u.meta, u.request_id, u.priority, u.run_at, u.timeout_ms
    FROM u;
END
$$;

-- What the fast claim checks in the same statement: is this queue, or one of these kinds, under control? Then the
-- runner's view of the controls is stale, and it claims nothing this time (it re-reads them and claims through
-- skipper.claim_limited).
CREATE FUNCTION skipper.controlled(p_queue text, p_kinds text[]) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT FROM skipper.queues q
                   WHERE q.name = p_queue AND (q.paused OR q.concurrency IS NOT NULL OR q.rate_limit IS NOT NULL))
        OR EXISTS (SELECT FROM skipper.kinds k
                   WHERE k.kind = ANY (p_kinds) AND (k.concurrency IS NOT NULL OR k.rate_limit IS NOT NULL))
$$;

-- 5. Periodic jobs. One job per (schedule, tick): the tick's row is inserted in the transaction that enqueues its
-- job, under the schedule's row lock, and its primary key refuses a second; a runner that dies mid-tick rolls both
-- back and another runner makes the tick.
CREATE TABLE skipper.schedules (
    name         text        PRIMARY KEY CONSTRAINT schedules_name_check CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$'),
    cron         text        NOT NULL CONSTRAINT schedules_cron_check CHECK (length(cron) BETWEEN 1 AND 200),
    timezone     text        NOT NULL DEFAULT 'UTC',
    kind         text        NOT NULL CONSTRAINT schedules_kind_check CHECK (length(kind) BETWEEN 1 AND 128),
    args         jsonb       NOT NULL DEFAULT '{}',
    queue        text        NOT NULL DEFAULT 'default' CONSTRAINT schedules_queue_check CHECK (length(queue) BETWEEN 1 AND 128),
    priority     smallint    NOT NULL DEFAULT 0,
    max_attempts integer     NOT NULL DEFAULT 25 CONSTRAINT schedules_max_attempts_check CHECK (max_attempts > 0),
    timeout_ms   integer     CONSTRAINT schedules_timeout_check CHECK (timeout_ms > 0),
    -- Ticks missed while no runner ran: 'latest' makes one job for the latest of them; 'none' skips them all.
    catch_up     text        NOT NULL DEFAULT 'latest' CONSTRAINT schedules_catch_up_check CHECK (catch_up IN ('latest', 'none')),
    paused       boolean     NOT NULL DEFAULT false,
    -- 'code': declared by a runner's program (it rewrites the row when it starts); 'api': made over REST or in SQL.
    source       text        NOT NULL DEFAULT 'api' CONSTRAINT schedules_source_check CHECK (source IN ('api', 'code')),
    -- The next tick to make; NULL: a runner computes it.
    next_run_at  timestamptz,
    last_run_at  timestamptz,
    last_job_id  bigint,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedules_due_idx ON skipper.schedules (next_run_at) WHERE NOT paused;
COMMENT ON TABLE skipper.schedules IS 'Periodic jobs: one job per tick, made by whichever runner gets there first.';

CREATE TABLE skipper.schedule_ticks (
    schedule   text        NOT NULL REFERENCES skipper.schedules (name) ON DELETE CASCADE ON UPDATE CASCADE,
    tick       timestamptz NOT NULL,
    job_id     bigint      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule, tick)
);
CREATE INDEX schedule_ticks_created_idx ON skipper.schedule_ticks (created_at);
COMMENT ON TABLE skipper.schedule_ticks IS 'The job made for each tick of each schedule (kept a week).';

-- 6. Rights. The API reads and changes the controls and schedules; runners read them, make ticks and count starts.
GRANT SELECT, INSERT, UPDATE ON skipper.queues TO skipper_api;
GRANT SELECT ON skipper.queues TO skipper_runner;
GRANT SELECT ON skipper.runners TO skipper_api;
GRANT UPDATE (concurrency, partition_by, rate_limit, rate_period) ON skipper.kinds TO skipper_api;
GRANT SELECT, INSERT, DELETE ON skipper.rate_starts TO skipper_runner;
GRANT SELECT ON skipper.rate_starts TO skipper_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON skipper.schedules TO skipper_api;
GRANT SELECT, INSERT, UPDATE ON skipper.schedules TO skipper_runner;
GRANT SELECT ON skipper.schedule_ticks TO skipper_api;
GRANT SELECT, INSERT, DELETE ON skipper.schedule_ticks TO skipper_runner;
