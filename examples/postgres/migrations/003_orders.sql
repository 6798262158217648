-- Orders, payments, shipping.
CREATE TYPE order_status AS ENUM ('open', 'paid', 'shipped', 'cancelled');
CREATE TABLE orders (
  id serial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers,
  status order_status NOT NULL DEFAULT 'open',
  placed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE order_items (
  order_id int NOT NULL REFERENCES orders ON DELETE CASCADE,
  product_id int NOT NULL REFERENCES products,
  quantity int NOT NULL CHECK (quantity > 0),
  unit_price numeric(10, 2) NOT NULL,
  PRIMARY KEY (order_id, product_id)
);
CREATE TABLE payments (id serial PRIMARY KEY, order_id int NOT NULL REFERENCES orders, amount numeric(10, 2) NOT NULL, method text NOT NULL);
CREATE TABLE refunds (id serial PRIMARY KEY, payment_id int NOT NULL REFERENCES payments, amount numeric(10, 2) NOT NULL);
CREATE TABLE carriers (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE shipments (id serial PRIMARY KEY, order_id int NOT NULL REFERENCES orders, carrier_id int NOT NULL REFERENCES carriers, tracking text);
CREATE TABLE invoices (id serial PRIMARY KEY, order_id int NOT NULL UNIQUE REFERENCES orders, number text NOT NULL UNIQUE);
CREATE TABLE coupons (code text PRIMARY KEY, percent int NOT NULL CHECK (percent BETWEEN 1 AND 100));
CREATE TABLE order_coupons (order_id int NOT NULL REFERENCES orders, code text NOT NULL REFERENCES coupons, PRIMARY KEY (order_id, code));
CREATE INDEX orders_customer ON orders (customer_id);
CREATE VIEW order_totals AS
  SELECT o.id AS order_id, o.customer_id, sum(i.quantity * i.unit_price) AS total
  FROM orders o JOIN order_items i ON i.order_id = o.id GROUP BY o.id;
