-- Schema version 6: every Binance dataset and market (issue 8). A unit now names its market
-- (futures-um, futures-cm, spot) and kline interval, and keeps per-unit statistics the
-- manifest reports: duplicates dropped, rows sorted out of order, crossed quotes, which field
-- gave bookTicker timestamps, the source time unit.
ALTER TABLE ingest_units ADD COLUMN market TEXT NOT NULL DEFAULT 'futures-um';
ALTER TABLE ingest_units ADD COLUMN interval TEXT;
ALTER TABLE ingest_units ADD COLUMN stats JSON;
UPDATE ingest_units SET interval = '1m' WHERE dataset = 'klines';
DROP INDEX IF EXISTS idx_ingest_units_lookup;
CREATE INDEX idx_ingest_units_lookup ON ingest_units(market, dataset, symbol, period_start_ns);
