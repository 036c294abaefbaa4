-- Runners of the previous build claim through skipper.jobs and prune with their own DELETE.
GRANT DELETE ON skipper.jobs_active TO skipper_runner;
DROP FUNCTION skipper.prune_finished(bigint, integer);
REVOKE UPDATE ON skipper.jobs_active FROM skipper_runner;
