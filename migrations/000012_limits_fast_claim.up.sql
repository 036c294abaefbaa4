-- Limits set but far from reached no longer make a queue's claims take turns. Until now every claim of a limited queue
-- took the queue's advisory lock for its whole length, so two runners' claims ran one after the other: a concurrency
-- or rate limit that never bound still cost a fifth to a quarter of the drain's throughput. Now what is left of a
-- queue's limits, counted by a claim that takes its turn, is dealt in shares to the queue's live runners
-- (skipper.limit_shards); a runner whose shares have room for its whole claim claims like an unlimited queue and
-- lowers its own shares in one short update, so no two runners' claims wait on each other. A share is room, never a
-- count: the shares dealt never add up to more than the limit leaves, so no limit is exceeded whatever the number of
-- runners. The per-queue bound of migration 10 gives way to the shares (a kind's bound stays).

DELETE FROM skipper.running_bounds WHERE scope LIKE 'queue %';

CREATE TABLE skipper.limit_shards (
    -- 'queue <name>' (its concurrency limit) or 'queue-rate <name>' (its rate limit).
    scope    text        NOT NULL,
    -- The runner (skipper.runners.id) the share was dealt to.
    runner   text        NOT NULL,
    -- How many more jobs this runner may start without counting: RUNNING jobs for a concurrency limit, starts for
    -- a rate limit.
    room     integer     NOT NULL CHECK (room >= 0),
    -- The queue's limits it was dealt under (skipper.limits_of): a claim that read others does not use it.
    dealt_for text       NOT NULL,
    dealt_at timestamptz NOT NULL,
    PRIMARY KEY (scope, runner)
);
COMMENT ON TABLE skipper.limit_shards IS
    'What is left of a queue''s concurrency or rate limit, dealt to its live runners by skipper.claim_limited: room a runner may take without taking turns.';
GRANT SELECT, INSERT, UPDATE, DELETE ON skipper.limit_shards TO skipper_runner;
GRANT SELECT ON skipper.limit_shards TO skipper_api;

-- A queue's limits, as one text: shares are dealt under them, and taken only by a claim that read the same.
CREATE FUNCTION skipper.limits_of(q skipper.queues) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT concat_ws('/', coalesce(q.concurrency::text, '-'), coalesce(q.partition_by, '-'), coalesce(q.rate_limit::text, '-'),
                     coalesce(q.rate_period::text, '-'))
$$;

-- Deals what is left of one limit of a queue (p_left, counted under the queue's lock, after the claim that counted it)
-- to the live runners that serve the queue, in equal shares; a share too small for a claim of p_min is not dealt, so
-- near the limit every claim takes its turn and counts. Shares of runners no longer live are taken back. Called with
-- every share of the scope locked.
CREATE FUNCTION skipper.deal_shares(p_queue text, p_scope text, p_left integer, p_min integer, p_limits text)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    live text[];
    share integer;
BEGIN
    SELECT coalesce(array_agg(r.id ORDER BY r.id), '{}') INTO live FROM skipper.runners r
    WHERE p_queue = ANY (r.queues) AND r.heartbeat_at > now() - r.lease_ms * interval '1 millisecond';
    IF cardinality(live) > 0 THEN share := p_left / cardinality(live); END IF;
    IF share IS NULL OR share < greatest(p_min, 1) THEN
        DELETE FROM skipper.limit_shards s WHERE s.scope = p_scope;
        RETURN;
    END IF;
    DELETE FROM skipper.limit_shards s WHERE s.scope = p_scope AND s.runner <> ALL (live);
    INSERT INTO skipper.limit_shards (scope, runner, room, dealt_for, dealt_at)
    SELECT p_scope, l.id, share, p_limits, clock_timestamp() FROM unnest(live) AS l(id)
    ON CONFLICT (scope, runner) DO UPDATE SET room = excluded.room, dealt_for = excluded.dealt_for, dealt_at = excluded.dealt_at;
END
$$;

-- Deals both limits of queue q (as read under its lock), from the RUNNING jobs and the starts in the window counted
-- under the lock (this claim's included); a limit the queue does not have, or one kept per partition (which no fast
-- claim takes), has its shares taken back. Called with every share of the queue locked.
CREATE FUNCTION skipper.deal_queue_shares(q skipper.queues, p_running integer, p_started integer, p_min integer)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF q.concurrency IS NOT NULL AND q.partition_by IS NULL AND p_running IS NOT NULL THEN
        PERFORM skipper.deal_shares(q.name, 'queue ' || q.name, q.concurrency - p_running, p_min, skipper.limits_of(q));
    ELSE
        DELETE FROM skipper.limit_shards s WHERE s.scope = 'queue ' || q.name;
    END IF;
    IF q.rate_limit IS NOT NULL AND q.partition_by IS NULL AND p_started IS NOT NULL THEN
        PERFORM skipper.deal_shares(q.name, 'queue-rate ' || q.name, q.rate_limit - p_started, p_min, skipper.limits_of(q));
    ELSE
        DELETE FROM skipper.limit_shards s WHERE s.scope = 'queue-rate ' || q.name;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION skipper.deal_shares(text, text, integer, integer, text), skipper.deal_queue_shares(skipper.queues, integer, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION skipper.deal_shares(text, text, integer, integer, text), skipper.deal_queue_shares(skipper.queues, integer, integer, integer) TO skipper_runner;

-- A queue's limit changed, or the queue is gone: its shares are taken back (a kind's bound forgotten, as before).
CREATE OR REPLACE FUNCTION skipper.forget_running_bound() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'queues' THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('skipper.queue ' || OLD.name, 0));
        DELETE FROM skipper.limit_shards s WHERE s.scope = 'queue ' || OLD.name;
        DELETE FROM skipper.limit_shards s WHERE s.scope = 'queue-rate ' || OLD.name;
    ELSE
        PERFORM pg_advisory_xact_lock(hashtextextended('skipper.kind ' || OLD.kind, 0));
        DELETE FROM skipper.running_bounds r WHERE r.scope = 'kind ' || OLD.kind;
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER queues_forget_running_bound ON skipper.queues;
CREATE TRIGGER queues_forget_running_bound AFTER UPDATE OF name, concurrency, partition_by, rate_limit, rate_period OR DELETE ON skipper.queues
    FOR EACH ROW EXECUTE FUNCTION skipper.forget_running_bound();

-- The claim of a limited queue, as in migration 10, with the fast path for a queue whose shares have room, and a
-- queue's own limits counted (and dealt) by every claim that takes its turn.
CREATE OR REPLACE FUNCTION skipper.claim_limited(p_queue text, p_kinds text[], max_jobs integer, p_runner text, candidates integer DEFAULT 1000,
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
    -- The kinds whose total this claim took from skipper.running_bounds (and adds its jobs to).
    bound_kinds text[] := '{}';
    chosen bigint[] := '{}';
    key text;
    ok boolean;
    qpath text[];
    claim_lease bigint;
    -- The fast path's: the scopes of this runner's shares it needs, the limits it read, how many of the shares it
    -- found and the room they leave, what it took. Counted under the lock: the RUNNING jobs, the starts in the rate
    -- window, and the jobs this claim took.
    scopes text[] := '{}';
    share_scope text;
    read_limits text;
    shares bigint;
    room integer;
    taken integer;
    running_now integer;
    started_now integer;
    claimed integer;
BEGIN
    IF max_jobs IS NULL OR max_jobs < 1 THEN RETURN; END IF;
    IF NOT EXISTS (SELECT FROM skipper.runners r
                   WHERE r.id = p_runner AND r.heartbeat_at > now() - r.lease_ms * interval '1 millisecond') THEN
        RETURN;
    END IF;
    SELECT * INTO q FROM skipper.queues WHERE skipper.queues.name = p_queue;
    IF q.paused THEN RETURN; END IF;
    -- The fast path: a queue limited only as a whole (no partitions; no limited kind among p_kinds) whose shares give
    -- this runner room for the whole claim is claimed without taking turns: the first jobs in claim order, locked as
    -- the unlimited claim locks them, then each of this runner's shares lowered by what was taken, if it still has
    -- room for it. Only this runner's claims touch its shares, so two runners' claims never wait on each other; a
    -- claim that takes its turn (below) locks every share before it counts, so a fast claim either committed before
    -- the count (and is counted) or takes from the shares dealt after it. A share gone or too small by then (a limit
    -- changed, the shares dealt again) undoes the whole claim with SQLSTATE SKL01 (the runner claims again, and then
    -- finds its share as dealt); so does a share dealt under other limits than the ones this claim read (a limit added
    -- meanwhile: its jobs would count against none). Undone by the statement's own rollback, not a subtransaction
    -- caught here: a BEGIN … EXCEPTION block around the claim cost 0.6 ms of each 2 ms claim.
    IF q.partition_by IS NULL AND (q.concurrency IS NOT NULL OR q.rate_limit IS NOT NULL) THEN
        -- In this order everywhere.
        scopes := CASE WHEN q.concurrency IS NOT NULL THEN ARRAY['queue ' || p_queue] ELSE '{}'::text[] END
                  || CASE WHEN q.rate_limit IS NOT NULL THEN ARRAY['queue-rate ' || p_queue] ELSE '{}'::text[] END;
        read_limits := skipper.limits_of(q);
        SELECT count(*), min(s.room) INTO shares, room FROM skipper.limit_shards s
        WHERE s.scope = ANY (scopes) AND s.runner = p_runner AND s.dealt_for = read_limits;
        IF shares = cardinality(scopes) AND room >= max_jobs
           AND NOT EXISTS (SELECT FROM skipper.kinds kd WHERE kd.kind = ANY (p_kinds)
                           AND (kd.concurrency IS NOT NULL OR kd.rate_limit IS NOT NULL)) THEN
            claim_lease := nextval('skipper.job_leases');
            RETURN QUERY
            WITH u AS (
                UPDATE skipper.jobs_active j
                SET status = 'RUNNING', attempt = least(j.attempt, 2147483646) + 1, started_at = clock_timestamp(),
                    runner_id = p_runner, lease = claim_lease
                WHERE j.id = ANY (ARRAY(
                    SELECT w.id FROM skipper.jobs_active w
                    WHERE w.status = 'QUEUED' AND w.finished_at IS NULL AND w.queue = p_queue AND w.run_at <= now()
                      AND (w.priority, w.run_at, w.id) > (after_priority, after_run_at, after_id) AND w.kind = ANY (p_kinds)
                      -- A kind limited since the check above is left for a claim that counts it.
                      AND NOT EXISTS (SELECT FROM skipper.kinds kd WHERE kd.kind = w.kind
                                      AND (kd.concurrency IS NOT NULL OR kd.rate_limit IS NOT NULL))
                    ORDER BY w.priority, w.run_at, w.id LIMIT max_jobs FOR UPDATE SKIP LOCKED))
                RETURNING j.id, j.lease, j.queue, j.kind, j.args::text AS args, j.attempt, j.max_attempts, j.meta::text AS meta,
                          j.meta->>'request_id' AS request_id, j.priority, j.run_at, j.timeout_ms, j.started_at),
            started AS (
                INSERT INTO skipper.rate_starts (scope, started_at, jobs)
                SELECT 'queue ' || p_queue, max(u.started_at), count(*) FROM u WHERE q.rate_limit IS NOT NULL HAVING count(*) > 0)
            SELECT u.id, u.lease, u.queue, u.kind, u.args, u.attempt, u.max_attempts, u.meta, u.request_id, u.priority, u.run_at, u.timeout_ms
            FROM u;
            GET DIAGNOSTICS taken = ROW_COUNT;
            IF taken > 0 THEN
                FOREACH share_scope IN ARRAY scopes LOOP
                    UPDATE skipper.limit_shards s SET room = s.room - taken
                    WHERE s.scope = share_scope AND s.runner = p_runner AND s.room >= taken AND s.dealt_for = read_limits;
                    IF NOT FOUND THEN
                        -- The whole claim is undone (nothing it took stays RUNNING); the runner claims again.
                        RAISE EXCEPTION 'the share % of runner % changed under its claim; claim again', share_scope, p_runner
                            USING ERRCODE = 'SKL01';
                    END IF;
                END LOOP;
            END IF;
            RETURN;
        END IF;
    END IF;
    IF q.concurrency IS NOT NULL OR q.rate_limit IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('skipper.queue ' || p_queue, 0));
        -- Read again under the lock (each statement here sees what committed before it began).
        SELECT * INTO q FROM skipper.queues WHERE skipper.queues.name = p_queue;
        IF q.paused THEN RETURN; END IF;
        -- Every share of the queue locked before counting, whatever the limits are now: a fast claim lowering one
        -- commits first (and is counted); one that has not reached its share takes from the deal below, if it was
        -- dealt under the limits that claim read.
        PERFORM FROM skipper.limit_shards s WHERE s.scope = 'queue ' || p_queue ORDER BY s.runner FOR UPDATE;
        PERFORM FROM skipper.limit_shards s WHERE s.scope = 'queue-rate ' || p_queue ORDER BY s.runner FOR UPDATE;
    END IF;
    at := clock_timestamp();
    IF q.concurrency IS NOT NULL THEN
        IF q.partition_by IS NULL THEN
            SELECT count(*) INTO running_now FROM skipper.jobs_active j WHERE j.status = 'RUNNING' AND j.queue = p_queue;
            budget := budget || jsonb_build_object('queue', q.concurrency - running_now);
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
        SELECT least(coalesce(sum(s.jobs), 0), 2147483647) INTO started_now FROM skipper.rate_starts s WHERE s.scope = 'queue ' || p_queue;
        budget := budget || jsonb_build_object('queue-rate', q.rate_limit - started_now);
    END IF;
    IF (budget->>'queue')::int <= 0 OR (budget->>'queue-rate')::int <= 0 THEN
        -- Full: no share has room left (one dealt before an overshoot, say, is taken back).
        PERFORM skipper.deal_queue_shares(q, running_now, started_now, max_jobs);
        RETURN;
    END IF;
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
            LIMIT least(max_jobs, coalesce((budget->>'queue')::int, max_jobs), coalesce((budget->>'queue-rate')::int, max_jobs))
            -- Not the jobs a fast claim is taking now: a claim that came back empty while jobs waited.
            FOR UPDATE SKIP LOCKED);
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
                            bound_kinds := bound_kinds || c.kind;
                            budget := budget || jsonb_build_object('k' || chr(31) || c.kind, (kinds->c.kind->>'concurrency')::int - skipper.running_bound(
                                'kind ' || c.kind, (kinds->c.kind->>'concurrency')::int, max_jobs, NULL, c.kind));
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
    IF cardinality(chosen) = 0 THEN
        IF q.concurrency IS NOT NULL OR q.rate_limit IS NOT NULL THEN PERFORM skipper.deal_queue_shares(q, running_now, started_now, max_jobs); END IF;
        RETURN;
    END IF;

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
        SELECT 'kind ' || u.kind, max(u.started_at), count(*) FROM u WHERE u.kind = ANY (rate_kinds) GROUP BY u.kind),
    -- The jobs started raise the bounds this claim read (a bound it did not read stays as it was).
    bounded AS (
        UPDATE skipper.running_bounds b SET running = b.running + n.jobs
        FROM (SELECT 'kind ' || u.kind AS scope, count(*) AS jobs FROM u WHERE u.kind = ANY (bound_kinds) GROUP BY u.kind) n
        WHERE b.scope = n.scope)
    SELECT u.id, u.lease, u.queue, u.kind, u.args, u.attempt, u.max_attempts, u.meta, u.request_id, u.priority, u.run_at, u.timeout_ms
    FROM u;
    -- What is left of the limits, counted under the lock, dealt in shares to the queue's live runners.
    IF q.concurrency IS NOT NULL OR q.rate_limit IS NOT NULL THEN
        GET DIAGNOSTICS claimed = ROW_COUNT;
        PERFORM skipper.deal_queue_shares(q, running_now + claimed, started_now + claimed, max_jobs);
    END IF;
END
$$;
