-- Every customer has a credit account from the moment it exists: a user or a company
-- inserted gets its account in the same statement, so the ledger's services and reads
-- take the account as the handle of a customer's credits and never create one. The
-- account is dated when its customer was (date_joined, created_at), the app's clock.
--
-- This file is the rule: change it here and add a migration that applies it again
-- (credits.ledger_sql.apply). Applying it twice changes nothing (and opens the accounts
-- of customers that have none).

CREATE OR REPLACE FUNCTION credits_open_account() RETURNS trigger AS $$
BEGIN
    IF TG_TABLE_NAME = 'customers_user' THEN
        INSERT INTO credits_creditaccount (user_id, balance, last_seq, created_at)
        VALUES (NEW.id, 0, 0, NEW.date_joined);
    ELSE
        INSERT INTO credits_creditaccount (company_id, balance, last_seq, created_at)
        VALUES (NEW.id, 0, 0, NEW.created_at);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS credits_user_account ON customers_user;
CREATE TRIGGER credits_user_account
    AFTER INSERT ON customers_user
    FOR EACH ROW EXECUTE FUNCTION credits_open_account();
DROP TRIGGER IF EXISTS credits_company_account ON customers_company;
CREATE TRIGGER credits_company_account
    AFTER INSERT ON customers_company
    FOR EACH ROW EXECUTE FUNCTION credits_open_account();

INSERT INTO credits_creditaccount (user_id, balance, last_seq, created_at)
SELECT u.id, 0, 0, u.date_joined FROM customers_user u
WHERE NOT EXISTS (SELECT FROM credits_creditaccount a WHERE a.user_id = u.id);
INSERT INTO credits_creditaccount (company_id, balance, last_seq, created_at)
SELECT c.id, 0, 0, c.created_at FROM customers_company c
WHERE NOT EXISTS (SELECT FROM credits_creditaccount a WHERE a.company_id = c.id);
