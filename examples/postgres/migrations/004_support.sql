-- Support desk and an audit trail.
CREATE TABLE agents (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE tickets (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, agent_id int REFERENCES agents, subject text NOT NULL, closed boolean NOT NULL DEFAULT false);
CREATE TABLE ticket_comments (id serial PRIMARY KEY, ticket_id int NOT NULL REFERENCES tickets ON DELETE CASCADE, body text NOT NULL);
CREATE TABLE audit_log (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), actor text NOT NULL, action text NOT NULL);
CREATE TABLE feature_flags (name text PRIMARY KEY, enabled boolean NOT NULL);
CREATE TABLE schema_versions (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
