-- Customers and what belongs to them.
CREATE TABLE countries (code char(2) PRIMARY KEY, name text NOT NULL);
CREATE TABLE customers (
  id serial PRIMARY KEY,
  email text NOT NULL UNIQUE,
  name text NOT NULL,
  country char(2) NOT NULL REFERENCES countries,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE addresses (
  id serial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers ON DELETE CASCADE,
  line1 text NOT NULL,
  city text NOT NULL,
  postcode text NOT NULL
);
CREATE TABLE customer_notes (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers ON DELETE CASCADE, body text NOT NULL);
CREATE TABLE loyalty_tiers (id serial PRIMARY KEY, name text NOT NULL UNIQUE, min_points int NOT NULL);
CREATE TABLE loyalty_points (customer_id int PRIMARY KEY REFERENCES customers ON DELETE CASCADE, points int NOT NULL DEFAULT 0);
CREATE TABLE newsletter_subscriptions (customer_id int PRIMARY KEY REFERENCES customers ON DELETE CASCADE, since date NOT NULL);
CREATE INDEX customers_country ON customers (country);
