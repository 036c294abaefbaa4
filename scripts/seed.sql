-- Server-side seed data; run by scripts/seed.sh with psql variables rows, merchants, days.
BEGIN;
SELECT setseed(0.42) \gset
TRUNCATE transactions;
INSERT INTO transactions (merchant_id, amount_cents, fee_cents, status, paid_at, created_at)
SELECT t.merchant_id,
       t.amount_cents,
       t.amount_cents * 29 / 1000 + 30,
       t.status,
       CASE WHEN t.status IN ('PAID', 'REFUNDED') THEN t.at END,
       t.at
FROM (
    SELECT 1 + floor(random() * :merchants)::bigint                    AS merchant_id,
           100 + floor(random() * 99900)::bigint                       AS amount_cents,
           CASE WHEN g.r < 0.90 THEN 'PAID' WHEN g.r < 0.95 THEN 'FAILED' ELSE 'REFUNDED' END AS status,
           timestamptz '2025-01-01 00:00:00+00' + random() * make_interval(days => :days) AS at
    FROM (SELECT random() AS r FROM generate_series(1, :rows)) AS g
) AS t
-- A ledger is appended as payments happen: rows in time order, as in production.
ORDER BY t.at;

INSERT INTO products (name, category, stock, price_cents)
SELECT v.name, v.category, v.stock, v.price_cents
FROM (VALUES
    ('Espresso beans 1kg',   'coffee',    500,  2490),
    ('Filter beans 250g',    'coffee',    800,   890),
    ('Ceramic dripper',      'equipment', 120,  2200),
    ('Burr grinder',         'equipment',  40, 14900),
    ('Gooseneck kettle',     'equipment',  60,  6900),
    ('Paper filters x100',   'supplies', 1000,   490),
    ('Descaler',             'supplies',  300,   990),
    ('Barista course',       'training',   20, 19900),
    ('Latte art workshop',   'training',   15,  7900),
    ('Limited edition Geisha', 'coffee',   10,  5900)
) AS v(name, category, stock, price_cents)
WHERE NOT EXISTS (SELECT 1 FROM products);
COMMIT;
ANALYZE transactions;
