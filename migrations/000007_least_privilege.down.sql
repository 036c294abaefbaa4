-- The grants go; the roles stay (they belong to the cluster, and other databases may use them).
REVOKE ALL ON ALL TABLES IN SCHEMA skipper FROM skipper_api, skipper_runner;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA skipper FROM skipper_api, skipper_runner;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA skipper FROM skipper_api, skipper_runner;
REVOKE ALL ON SCHEMA skipper FROM skipper_api, skipper_runner;
REVOKE ALL ON skipper.schema_migrations FROM skipper_api, skipper_runner;
GRANT EXECUTE ON FUNCTION skipper.create_job_partitions(integer), skipper.drop_job_partitions(interval) TO PUBLIC;
DROP FUNCTION skipper.validate_cutover();
ALTER FUNCTION skipper.create_job_partitions(integer) SECURITY INVOKER RESET search_path;
ALTER FUNCTION skipper.drop_job_partitions(interval) SECURITY INVOKER RESET search_path;
