-- Partial results of settlement runs, published to `settlements` in one short transaction at the end of a run.
-- Unlogged: a crash loses only staging rows, and the rescued run starts over anyway.
CREATE UNLOGGED TABLE settlement_staging (
    run_id      text   NOT NULL,
    merchant_id bigint NOT NULL,
    date        date   NOT NULL,
    gross_cents bigint NOT NULL,
    fee_cents   bigint NOT NULL,
    txn_count   bigint NOT NULL
);
CREATE INDEX settlement_staging_run_idx ON settlement_staging (run_id);
-- Settlements by day: a run replaces the days of its range, and people read them by date.
CREATE INDEX settlements_date_idx ON settlements (date);
