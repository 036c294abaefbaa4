-- Back to claims of a limited queue taking turns on the queue's lock, as in migration 10.
DROP TRIGGER queues_forget_running_bound ON skipper.queues;
CREATE TRIGGER queues_forget_running_bound AFTER UPDATE OF name, concurrency, partition_by OR DELETE ON skipper.queues
    FOR EACH ROW EXECUTE FUNCTION skipper.forget_running_bound();
CREATE OR REPLACE FUNCTION skipper.forget_running_bound() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    target text;
BEGIN
    IF TG_TABLE_NAME = 'queues' THEN
        target := 'queue ' || OLD.name;
        PERFORM pg_advisory_xact_lock(hashtextextended('skipper.queue ' || OLD.name, 0));
    ELSE
        target := 'kind ' || OLD.kind;
        PERFORM pg_advisory_xact_lock(hashtextextended('skipper.kind ' || OLD.kind, 0));
    END IF;
    DELETE FROM skipper.running_bounds r WHERE r.scope = target;
    RETURN NULL;
END
$$;

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
            budget := budget || jsonb_build_object('queue', q.concurrency - skipper.running_bound(
                'queue ' || p_queue, q.concurrency, max_jobs, p_queue, NULL));
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
        SELECT 'kind ' || u.kind, max(u.started_at), count(*) FROM u WHERE u.kind = ANY (rate_kinds) GROUP BY u.kind),
    -- The jobs started raise the bounds this claim read (a bound it did not read stays as it was).
    bounded AS (
        UPDATE skipper.running_bounds b SET running = b.running + n.jobs
        FROM (SELECT 'queue ' || p_queue AS scope, count(*) AS jobs FROM u
              WHERE q.concurrency IS NOT NULL AND q.partition_by IS NULL HAVING count(*) > 0
              UNION ALL
              SELECT 'kind ' || u.kind, count(*) FROM u WHERE u.kind = ANY (bound_kinds) GROUP BY u.kind) n
        WHERE b.scope = n.scope)
    SELECT u.id, u.lease, u.queue, u.kind, u.args, u.attempt, u.max_attempts, u.meta, u.request_id, u.priority, u.run_at, u.timeout_ms
    FROM u;
END
$$;

DROP FUNCTION skipper.deal_queue_shares(skipper.queues, integer, integer, integer);
DROP FUNCTION skipper.deal_shares(text, text, integer, integer, text);
DROP FUNCTION skipper.limits_of(skipper.queues);
DROP TABLE skipper.limit_shards;
