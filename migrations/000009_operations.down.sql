-- Back to no controls, schedules, timeouts or snoozes. Jobs snoozed or given a timeout keep running without them.
DROP TABLE skipper.schedule_ticks;
DROP TABLE skipper.schedules;
DROP FUNCTION skipper.controlled(text, text[]);
DROP FUNCTION skipper.claim_limited(text, text[], integer, text, integer, smallint, timestamptz, bigint);
CREATE OR REPLACE FUNCTION skipper.finish_status(outcome smallint, attempt integer, max_attempts integer, cancel_requested_at timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN outcome = 0 THEN 'COMPLETED'
        WHEN cancel_requested_at IS NOT NULL OR outcome = 3 THEN 'CANCELLED'
        WHEN outcome = 4 THEN 'QUEUED'
        WHEN outcome = 1 AND attempt < max_attempts THEN 'QUEUED'
        ELSE 'FAILED'
    END
$$;
ALTER TABLE skipper.jobs DROP COLUMN snoozed, DROP COLUMN timeout_ms;
DROP TABLE skipper.rate_starts;
REVOKE UPDATE ON skipper.kinds FROM skipper_api;
REVOKE SELECT ON skipper.runners FROM skipper_api;
ALTER TABLE skipper.kinds
    DROP CONSTRAINT kinds_partition_check, DROP CONSTRAINT kinds_rate_check,
    DROP COLUMN rate_period, DROP COLUMN rate_limit, DROP COLUMN partition_by, DROP COLUMN concurrency;
DROP TABLE skipper.queues;
