-- appdb.sql: a small online shop, the database the guard is tested and
-- demonstrated against. Every secret in it is made up: card numbers are
-- the public test numbers of card networks (all pass the Luhn check) and
-- tokens only look like real ones. Data is deterministic (no random()),
-- so tests can assert exact values.
--
-- The script runs both as one multi-statement simple query (pgtest) and
-- under psql -v ON_ERROR_STOP=1 (scripts/pg.sh). It uses no psql
-- meta-commands and nothing that refuses to run inside a transaction.

CREATE EXTENSION IF NOT EXISTS dblink;

-- Roles are cluster-wide and tests load this script into many databases
-- of one cluster, some at the same time: create the role only once.
DO $$
BEGIN
    CREATE ROLE report_reader NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

CREATE TABLE customers (
    id          serial PRIMARY KEY,
    company     text NOT NULL,
    email       text NOT NULL UNIQUE,
    card_number text,
    phone       text,
    notes       text
);

INSERT INTO customers (company, email, card_number, phone, notes) VALUES
    ('Northwind Traders', 'ana.lopez@northwind.example',
     '4111111111111111', '+1-555-0101', 'Key account; invoices monthly.'),
    ('Contoso Pharmacy', 'ben.okafor@contoso.example',
     '5555555555554444', '+1-555-0102', NULL),
    ('Fabrikam Outdoor', 'chloe.martin@fabrikam.example',
     '378282246310005', '+44-20-7946-0103', 'Ships to the UK only.'),
    ('Tailspin Toys', 'dev.patel@tailspin.example',
     '4242424242424242', '+1-555-0104', 'Asked for net-30 terms.'),
    ('Adventure Works', 'emma.schulz@adventure-works.example',
     '4012888888881881', '+49-30-5550105', NULL),
    ('Wingtip Cycles', 'farid.haddad@wingtip.example',
     '5105105105105100', '+1-555-0106', 'Prefers phone contact.'),
    ('Litware Books', 'grace.kim@litware.example',
     '371449635398431', '+1-555-0107', NULL),
    ('Proseware Labs', 'hugo.silva@proseware.example',
     '6011111111111117', '+351-21-555-0108', 'Tax exempt, certificate on file.'),
    ('Alpine Ski House', 'ines.moreau@alpineski.example',
     '30569309025904', '+33-1-5555-0109', 'Seasonal: orders Oct to Mar.'),
    ('Coho Vineyard', 'jonas.berg@coho.example',
     '3530111333300000', '+46-8-555-0110', NULL),
    ('Blue Yonder Air', 'kara.nguyen@blueyonder.example',
     '4000056655665556', '+1-555-0111', 'Debit card, declines often.'),
    ('Fourth Coffee', 'liam.walsh@fourthcoffee.example',
     '5200828282828210', '+353-1-555-0112', NULL),
    ('Margie''s Travel', 'maya.cohen@margies.example',
     '6011000990139424', '+1-555-0113', 'Apostrophe in the name on purpose.'),
    ('Woodgrove Bank', 'noah.fischer@woodgrove.example',
     '378734493671000', '+1-555-0114', 'Corporate card.'),
    ('Relecloud', 'olivia.rossi@relecloud.example',
     '2223003122003222', '+39-06-555-0115', NULL),
    ('Trey Research', 'pablo.diaz@treyresearch.example',
     NULL, NULL, 'No card on file yet.');

CREATE TABLE staff (
    login text PRIMARY KEY,
    email text NOT NULL UNIQUE,
    role  text NOT NULL CHECK (role IN ('admin', 'support', 'analyst'))
);

INSERT INTO staff (login, email, role) VALUES
    ('rhea', 'rhea.ahmed@shop.example', 'admin'),
    ('sam', 'sam.kowalski@shop.example', 'support'),
    ('tomas', 'tomas.ueda@shop.example', 'support'),
    ('uma', 'uma.varga@shop.example', 'analyst');

-- orders carries one column of each type the guard must turn into JSON:
-- numeric, timestamptz, uuid, inet, interval, jsonb and text[].
CREATE TABLE orders (
    id          serial PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id),
    status      text NOT NULL CHECK (status IN ('paid', 'pending', 'refunded')),
    total       numeric(10, 2) NOT NULL,
    created_at  timestamptz NOT NULL,
    public_id   uuid NOT NULL UNIQUE,
    client_ip   inet,
    packing     interval,
    details     jsonb NOT NULL DEFAULT '{}',
    tags        text[] NOT NULL DEFAULT '{}'
);

-- 200 orders spread over the 16 customers. Every 10th is refunded, every
-- 7th (not refunded) is pending, the rest are paid. Addresses come from the
-- documentation ranges (RFC 5737).
INSERT INTO orders (customer_id, status, total, created_at, public_id,
                    client_ip, packing, details, tags)
SELECT
    (i - 1) % 16 + 1,
    CASE WHEN i % 10 = 0 THEN 'refunded'
         WHEN i % 7 = 0 THEN 'pending'
         ELSE 'paid' END,
    round((9.99 + (i * 37) % 500 + (i % 100) / 100.0)::numeric, 2),
    timestamptz '2026-01-05 09:00:00+00' + i * interval '7 hours',
    md5('order-' || i)::uuid,
    CASE WHEN i % 2 = 0 THEN ('192.0.2.' || ((i % 254) + 1))::inet
         ELSE ('198.51.100.' || ((i % 254) + 1))::inet END,
    make_interval(hours => i % 48, mins => (i * 13) % 60),
    jsonb_build_object('channel', CASE WHEN i % 3 = 0 THEN 'phone' ELSE 'web' END,
                       'items', i % 5 + 1,
                       'gift', i % 11 = 0),
    CASE WHEN i % 4 = 0 THEN ARRAY['priority', 'fragile']
         WHEN i % 4 = 1 THEN ARRAY['standard']
         ELSE ARRAY[]::text[] END
FROM generate_series(1, 200) AS i;

CREATE INDEX orders_customer_id_idx ON orders (customer_id);
CREATE INDEX orders_created_at_idx ON orders (created_at);

-- One payment for each order that was paid or refunded, with the card the
-- customer has on file.
CREATE TABLE payments (
    id          serial PRIMARY KEY,
    order_id    integer NOT NULL REFERENCES orders (id),
    card_number text NOT NULL,
    amount      numeric(10, 2) NOT NULL
);

INSERT INTO payments (order_id, card_number, amount)
SELECT o.id, c.card_number, o.total
FROM orders o JOIN customers c ON c.id = o.customer_id
WHERE o.status IN ('paid', 'refunded') AND c.card_number IS NOT NULL
ORDER BY o.id;

CREATE TABLE sessions (
    id         serial PRIMARY KEY,
    staff_login text NOT NULL REFERENCES staff (login),
    token      text NOT NULL UNIQUE
);

INSERT INTO sessions (staff_login, token) VALUES
    ('rhea', 'sess_5b1f0c9e7a2d4e6f8a0b1c2d3e4f5a6b'),
    ('sam', 'sess_0f9e8d7c6b5a49382716f5e4d3c2b1a0'),
    ('uma', 'sess_a1b2c3d4e5f60718293a4b5c6d7e8f90');

CREATE TABLE audit_log (
    id     serial PRIMARY KEY,
    at     timestamptz NOT NULL,
    actor  text NOT NULL,
    action text NOT NULL
);

INSERT INTO audit_log (at, actor, action) VALUES
    ('2026-02-01 08:00:00+00', 'rhea', 'login'),
    ('2026-02-01 08:05:12+00', 'rhea', 'update customers set phone where id=4'),
    ('2026-02-01 09:30:00+00', 'sam', 'refund order 10'),
    ('2026-02-02 14:45:03+00', 'uma', 'export monthly report'),
    ('2026-02-03 07:59:59+00', 'tomas', 'login failed');

CREATE TABLE integrations (
    name      text PRIMARY KEY,
    api_token text NOT NULL
);

INSERT INTO integrations (name, api_token) VALUES
    ('github', 'ghp_Q7mZ2kR9vT4xW1nB8cL5dF3hJ6pS0yA2eG7u'),
    ('slack', 'xoxb-2048193657-7301948265-Kq8ZtW3mRv1XyB6nLp4HsD9c'),
    ('stripe', 'sk_test_51Mz8QpLw3Rt6YvB2nK9dXc4FhJ7gTsA0eU'),
    ('webhook', 'whsec_9TzB2nQ7kX4mW8vR1cL6pJ3dH5fG0sYa');

CREATE TABLE support_tickets (
    id      serial PRIMARY KEY,
    subject text NOT NULL,
    body    text NOT NULL
);

-- Tickets 1 and 2 hold secrets in free text, written the way people type
-- them, to exercise masking of values the schema does not point at.
INSERT INTO support_tickets (subject, body) VALUES
    ('Card declined at checkout',
     'Hi, my card 4242 4242 4242 4242 was declined twice today. Your '
     'app asked for our GitHub token, so I pasted it here: '
     'ghp_Q7mZ2kR9vT4xW1nB8cL5dF3hJ6pS0yA2eG7u. Please call me or write '
     'to dev.patel@tailspin.example. Thanks, Dev'),
    ('Wrong charge on invoice 1042',
     'We were charged twice on the Amex 3714-496353-98431. Our developer '
     'pasted the key sk_test_51Mz8QpLw3Rt6YvB2nK9dXc4FhJ7gTsA0eU in the chat '
     'by mistake, please rotate it. Contact grace.kim@litware.example.'),
    ('Delivery address change',
     'Please ship order 57 to our new warehouse in Leeds.'),
    ('Export to CSV',
     'Is there a way to export all of last month''s orders to CSV?');

GRANT SELECT ON orders, audit_log TO report_reader;

ANALYZE;
