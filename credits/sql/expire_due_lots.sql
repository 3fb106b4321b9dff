-- Expire the due lots of accounts the caller has locked, in one statement.
--
-- Per account and expiration date: an `expiration` transaction (seq and balance_after
-- continuing the account's chain, dated at the moment of expiry: the end of that day in
-- the space's zone, never before the account's newest transaction) and a usage for each
-- due lot, which empties it. It reads only the open-lot index, so
-- when nothing is due it costs one index probe per account.
--
-- Parameters (psycopg's named placeholders): accounts bigint[], today date (the space's
-- date at the caller's moment), kind (the `expiration` kind), zone (the space's zone).
-- Answers per account: id, balance, last_seq, last_transaction_at, lots expired, and the
-- written transactions' ids, amounts, balances and expiration days as arrays.
-- credits.services runs this file's text (read once, at import).

WITH due AS (
    SELECT id, account_id, expires_on, remaining FROM credits_creditlot
    WHERE account_id = ANY(%(accounts)s::bigint[]) AND remaining > 0 AND expires_on < %(today)s
),
per_day AS (
    SELECT d.account_id, d.expires_on, SUM(d.remaining) AS total, COUNT(*) AS lots,
           a.last_seq + ROW_NUMBER() OVER days AS seq, a.last_transaction_at,
           a.balance - SUM(SUM(d.remaining)) OVER days AS balance_after
    FROM due d JOIN credits_creditaccount a
        ON a.id = d.account_id AND a.id = ANY(%(accounts)s::bigint[])
    GROUP BY d.account_id, d.expires_on, a.last_seq, a.balance, a.last_transaction_at
    WINDOW days AS (PARTITION BY d.account_id ORDER BY d.expires_on ROWS UNBOUNDED PRECEDING)
),
written AS (
    INSERT INTO credits_credittransaction
        (account_id, seq, kind, amount, balance_after, memo, created_at)
    SELECT account_id, seq, %(kind)s, -total, balance_after,
           'Credits that expired on ' || to_char(expires_on, 'FMDD Mon YYYY'),
           GREATEST((expires_on + 1)::timestamp AT TIME ZONE %(zone)s, last_transaction_at)
    FROM per_day
    RETURNING id, account_id, seq, amount, balance_after, created_at
),
used AS (
    INSERT INTO credits_creditlotusage (transaction_id, lot_id, amount)
    SELECT w.id, d.id, d.remaining
    FROM written w
    JOIN per_day p ON p.account_id = w.account_id AND p.seq = w.seq
    JOIN due d ON d.account_id = p.account_id AND d.expires_on = p.expires_on
)
-- The usages empty the lots, and the accounts move on with their new transactions
-- (triggers in append_only.sql): what the accounts now hold is read off what was written.
SELECT w.account_id, w.balances[cardinality(w.balances)], w.last_seq, w.last_at, t.lots,
       w.ids, w.amounts, w.balances, w.days
FROM (SELECT account_id, SUM(lots) AS lots FROM per_day GROUP BY account_id) t
JOIN (SELECT w.account_id, MAX(w.seq) AS last_seq, MAX(w.created_at) AS last_at,
             array_agg(w.id ORDER BY w.seq) AS ids, array_agg(w.amount ORDER BY w.seq) AS amounts,
             array_agg(w.balance_after ORDER BY w.seq) AS balances,
             array_agg(p.expires_on ORDER BY w.seq) AS days
      FROM written w JOIN per_day p ON p.account_id = w.account_id AND p.seq = w.seq
      GROUP BY w.account_id) w ON w.account_id = t.account_id
