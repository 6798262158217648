-- The catalog.
CREATE TABLE suppliers (id serial PRIMARY KEY, name text NOT NULL UNIQUE, country char(2) NOT NULL REFERENCES countries);
CREATE TABLE categories (id serial PRIMARY KEY, parent_id int REFERENCES categories, name text NOT NULL);
CREATE TABLE products (
  id serial PRIMARY KEY,
  sku text NOT NULL UNIQUE,
  name text NOT NULL,
  category_id int NOT NULL REFERENCES categories,
  supplier_id int NOT NULL REFERENCES suppliers,
  price numeric(10, 2) NOT NULL CHECK (price >= 0)
);
CREATE TABLE product_tags (product_id int NOT NULL REFERENCES products ON DELETE CASCADE, tag text NOT NULL, PRIMARY KEY (product_id, tag));
CREATE TABLE warehouses (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE stock (product_id int NOT NULL REFERENCES products, warehouse_id int NOT NULL REFERENCES warehouses, quantity int NOT NULL, PRIMARY KEY (product_id, warehouse_id));
CREATE TABLE price_history (id serial PRIMARY KEY, product_id int NOT NULL REFERENCES products, price numeric(10, 2) NOT NULL, valid_from date NOT NULL);
CREATE TABLE reviews (id serial PRIMARY KEY, product_id int NOT NULL REFERENCES products, customer_id int NOT NULL REFERENCES customers, stars int NOT NULL CHECK (stars BETWEEN 1 AND 5));
CREATE INDEX products_category ON products (category_id);
