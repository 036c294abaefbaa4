DROP INDEX settlements_run_idx;
DROP TABLE settlement_staging;
