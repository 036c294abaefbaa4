-- skipper-migrate: no transaction
DROP INDEX CONCURRENTLY IF EXISTS skipper.jobs_kind_unique_key_idx;
DROP INDEX CONCURRENTLY IF EXISTS skipper.jobs_finished_at_idx;
