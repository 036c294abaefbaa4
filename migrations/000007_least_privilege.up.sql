-- Least privilege: the API and the runners log in as users granted skipper_api or skipper_runner, which hold
-- exactly what each process needs; only the owner of the schema (the user migrations run as, which need not be a
-- superuser: owning the database suffices when the roles exist, as scripts/roles.sql makes them) can change it.
-- Roles belong to the cluster: they are made here only when no bootstrap made them first (which takes CREATEROLE).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'skipper_api') THEN
        CREATE ROLE skipper_api NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'skipper_runner') THEN
        CREATE ROLE skipper_runner NOLOGIN;
    END IF;
END
$$;
-- Commenting on a role takes CREATEROLE, which an owner made by scripts/roles.sql does not have (nor need).
DO $$
BEGIN
    IF (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
        COMMENT ON ROLE skipper_api IS 'skipper-api: submits and reads jobs, takes orders; never changes the schema.';
        COMMENT ON ROLE skipper_runner IS 'skipper-runner: claims, runs and finishes jobs, keeps the partitions; never changes the schema.';
    END IF;
END
$$;

-- What runs on behalf of the runners with the owner's rights: the partition maintenance (DDL needs the owner).
-- Each with a fixed search_path.
ALTER FUNCTION skipper.create_job_partitions(integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION skipper.drop_job_partitions(interval) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Validates the active partition's cutover constraint once (after migrating a big table); returns whether it is.
CREATE FUNCTION skipper.validate_cutover() RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT (SELECT convalidated FROM pg_constraint
            WHERE conrelid = 'skipper.jobs_active'::regclass AND conname = 'jobs_active_unfinished') THEN
        ALTER TABLE skipper.jobs_active VALIDATE CONSTRAINT jobs_active_unfinished;
    END IF;
    RETURN true;
END
$$;

REVOKE ALL ON FUNCTION skipper.create_job_partitions(integer), skipper.drop_job_partitions(interval), skipper.validate_cutover() FROM PUBLIC;

GRANT USAGE ON SCHEMA skipper TO skipper_api, skipper_runner;
GRANT SELECT ON skipper.schema_migrations TO skipper_api, skipper_runner;

-- The API: inserts jobs, reads them, cancels and retries them; reads kinds and artifacts. (What it may do with the
-- demo shop's tables is the shop's migrations' business: migrations/shop.)
GRANT SELECT, INSERT, UPDATE ON skipper.jobs TO skipper_api;
GRANT SELECT, INSERT, UPDATE ON skipper.job_counts TO skipper_api, skipper_runner;
GRANT SELECT ON skipper.partitioning TO skipper_api, skipper_runner;
GRANT USAGE ON SEQUENCE skipper.job_ids TO skipper_api;
GRANT SELECT ON skipper.kinds, skipper.job_artifacts, skipper.queue_stats, skipper.running_jobs TO skipper_api;

-- The runners: claim, finish and rescue jobs (and enqueue follow-ups), prune what finished before the cutover,
-- their own rows, the kinds they serve, artifacts; the partitions through the functions above.
GRANT SELECT, INSERT, UPDATE ON skipper.jobs TO skipper_runner;
GRANT SELECT, DELETE ON skipper.jobs_active TO skipper_runner;
GRANT USAGE ON SEQUENCE skipper.job_ids, skipper.job_leases TO skipper_runner;
GRANT SELECT, INSERT, UPDATE, DELETE ON skipper.runners TO skipper_runner;
GRANT SELECT, INSERT, UPDATE ON skipper.kinds TO skipper_runner;
GRANT SELECT, INSERT, DELETE ON skipper.job_artifacts TO skipper_runner;
GRANT SELECT ON skipper.queue_stats, skipper.running_jobs TO skipper_runner;
GRANT EXECUTE ON FUNCTION skipper.create_job_partitions(integer), skipper.drop_job_partitions(interval), skipper.validate_cutover()
    TO skipper_runner;
