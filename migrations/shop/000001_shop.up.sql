-- The shop's tables: the ledger settled by the settlement job, and orders on limited stock.
CREATE TABLE transactions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id  bigint      NOT NULL,
    amount_cents bigint      NOT NULL CHECK (amount_cents >= 0),
    fee_cents    bigint      NOT NULL CHECK (fee_cents >= 0),
    status       text        NOT NULL CHECK (status IN ('PENDING', 'PAID', 'FAILED', 'REFUNDED')),
    paid_at      timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- Settlement reads PAID transactions by paid_at range.
CREATE INDEX transactions_paid_at_idx ON transactions (paid_at) WHERE status = 'PAID';

CREATE TABLE settlements (
    merchant_id   bigint      NOT NULL,
    date          date        NOT NULL,
    gross_cents   bigint      NOT NULL,
    fee_cents     bigint      NOT NULL,
    net_cents     bigint      NOT NULL,
    txn_count     bigint      NOT NULL,
    generated_at  timestamptz NOT NULL DEFAULT now(),
    unique_run_id text        NOT NULL,
    CONSTRAINT settlements_merchant_date_key UNIQUE (merchant_id, date)
);

CREATE TABLE products (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text   NOT NULL,
    category    text   NOT NULL,
    stock       integer NOT NULL CHECK (stock >= 0),
    price_cents bigint NOT NULL CHECK (price_cents >= 0)
);

CREATE TABLE orders (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    product_id         bigint      NOT NULL REFERENCES products (id),
    buyer_id           text        NOT NULL,
    quantity           integer     NOT NULL CHECK (quantity > 0),
    total_amount_cents bigint      NOT NULL,
    status             text        NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'PAID')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    paid_at            timestamptz
);
CREATE INDEX orders_product_idx ON orders (product_id);

-- One row, recomputed by the report.refresh job under a row lock.
CREATE TABLE sales_report (
    id                  integer     PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    total_revenue_cents bigint      NOT NULL DEFAULT 0,
    paid_orders         bigint      NOT NULL DEFAULT 0,
    products_sold       bigint      NOT NULL DEFAULT 0,
    unique_customers    bigint      NOT NULL DEFAULT 0,
    by_category         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
INSERT INTO sales_report (id) VALUES (1);
