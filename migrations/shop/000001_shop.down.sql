DROP TABLE sales_report;
DROP TABLE orders;
DROP TABLE products;
DROP TABLE settlements;
DROP TABLE transactions;
