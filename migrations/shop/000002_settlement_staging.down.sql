DROP INDEX settlements_date_idx;
DROP TABLE settlement_staging;
