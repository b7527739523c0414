-- postgresql: schema migrations, on an empty warehouse
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER NOT NULL,
    description VARCHAR(256) NOT NULL,
    applied_at TIMESTAMP NOT NULL,
    PRIMARY KEY (version)
);
COMMIT;
LOCK TABLE schema_migrations IN SHARE ROW EXCLUSIVE MODE;
SELECT version FROM schema_migrations;
CREATE TABLE IF NOT EXISTS dim_sensors (
    sensor_id VARCHAR(128) NOT NULL,
    sensor_type VARCHAR(32) NOT NULL,
    unit VARCHAR(16),
    location VARCHAR(256),
    first_window_start TIMESTAMP NOT NULL,
    last_window_start TIMESTAMP NOT NULL,
    PRIMARY KEY (sensor_id)
);
CREATE TABLE IF NOT EXISTS dim_time (
    window_start TIMESTAMP NOT NULL,
    window_end TIMESTAMP NOT NULL,
    calendar_date DATE NOT NULL,
    calendar_year SMALLINT NOT NULL,
    calendar_quarter SMALLINT NOT NULL,
    calendar_month SMALLINT NOT NULL,
    day_of_month SMALLINT NOT NULL,
    day_of_week SMALLINT NOT NULL,
    hour_of_day SMALLINT NOT NULL,
    minute_of_hour SMALLINT NOT NULL,
    is_weekend BOOLEAN NOT NULL,
    PRIMARY KEY (window_start)
);
CREATE TABLE IF NOT EXISTS fact_sensor_readings (
    sensor_id VARCHAR(128) NOT NULL,
    sensor_type VARCHAR(32) NOT NULL,
    location VARCHAR(256),
    window_start TIMESTAMP NOT NULL,
    window_end TIMESTAMP NOT NULL,
    reading_count BIGINT NOT NULL,
    avg_value DOUBLE PRECISION,
    min_value DOUBLE PRECISION,
    max_value DOUBLE PRECISION,
    stddev_value DOUBLE PRECISION,
    p50_value DOUBLE PRECISION,
    p95_value DOUBLE PRECISION,
    p99_value DOUBLE PRECISION,
    anomaly_count BIGINT NOT NULL,
    expected_count BIGINT NOT NULL,
    health_pct DOUBLE PRECISION NOT NULL,
    processing_timestamp TIMESTAMP NOT NULL,
    pipeline_version VARCHAR(64) NOT NULL,
    PRIMARY KEY (window_start, sensor_id)
);
INSERT INTO schema_migrations (version, description, applied_at) VALUES (%s, %s, %s);
-- parameters: [1, 'star schema: dim_sensors, dim_time, fact_sensor_readings', '<now>']
CREATE TABLE IF NOT EXISTS load_history (
    id VARCHAR(36) NOT NULL,
    window_start TIMESTAMP NOT NULL,
    window_end TIMESTAMP NOT NULL,
    status VARCHAR(16) NOT NULL,
    requested_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    duration_s DOUBLE PRECISION,
    gold_rows BIGINT,
    rows_deleted BIGINT,
    rows_inserted BIGINT,
    gate_verdict VARCHAR(16),
    override_reason VARCHAR(1024),
    detail VARCHAR(4096),
    PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS load_history_requested_at_idx ON load_history (requested_at);
INSERT INTO schema_migrations (version, description, applied_at) VALUES (%s, %s, %s);
-- parameters: [2, 'load history', '<now>']
ALTER TABLE fact_sensor_readings ADD COLUMN alert_count BIGINT;
INSERT INTO schema_migrations (version, description, applied_at) VALUES (%s, %s, %s);
-- parameters: [3, 'fact_sensor_readings.alert_count (anomaly alerts per sensor per window)', '<now>']
ALTER TABLE load_history ADD COLUMN gold_fingerprints VARCHAR(4096);
INSERT INTO schema_migrations (version, description, applied_at) VALUES (%s, %s, %s);
-- parameters: [4, 'load_history.gold_fingerprints (the Gold files a load read, to find windows to reload)', '<now>']
ALTER TABLE fact_sensor_readings RENAME TO fact_sensor_readings_unpartitioned;
ALTER INDEX fact_sensor_readings_pkey RENAME TO fact_sensor_readings_unpartitioned_pkey;
CREATE TABLE fact_sensor_readings (LIKE fact_sensor_readings_unpartitioned) PARTITION BY RANGE (window_start);
ALTER TABLE fact_sensor_readings ADD PRIMARY KEY (window_start, sensor_id);
DO $$
DECLARE day DATE;
BEGIN
    FOR day IN SELECT DISTINCT CAST(window_start AS DATE)
               FROM fact_sensor_readings_unpartitioned LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF fact_sensor_readings '
                       'FOR VALUES FROM (%L) TO (%L)',
                       'fact_sensor_readings_p' || to_char(day, 'YYYYMMDD'),
                       CAST(day AS TIMESTAMP), CAST(day + 1 AS TIMESTAMP));
    END LOOP;
END $$;
INSERT INTO fact_sensor_readings SELECT * FROM fact_sensor_readings_unpartitioned;
DROP TABLE fact_sensor_readings_unpartitioned;
INSERT INTO schema_migrations (version, description, applied_at) VALUES (%s, %s, %s);
-- parameters: [5, 'fact_sensor_readings partitioned by day (PostgreSQL; whole days are swapped in)', '<now>']
COMMIT;

-- postgresql: load of 2026-11-26T23:00:00Z--2026-11-27T01:00:00Z (72 Gold rows in 2 partitions)
LOCK TABLE fact_sensor_readings IN SHARE ROW EXCLUSIVE MODE;
CREATE TEMPORARY TABLE stage_gold (
    sensor_id VARCHAR(128),
    sensor_type VARCHAR(32),
    location VARCHAR(256),
    window_start TIMESTAMP,
    window_end TIMESTAMP,
    reading_count BIGINT,
    avg_value DOUBLE PRECISION,
    min_value DOUBLE PRECISION,
    max_value DOUBLE PRECISION,
    stddev_value DOUBLE PRECISION,
    p50_value DOUBLE PRECISION,
    p95_value DOUBLE PRECISION,
    p99_value DOUBLE PRECISION,
    anomaly_count BIGINT,
    expected_count BIGINT,
    health_pct DOUBLE PRECISION,
    processing_timestamp TIMESTAMP,
    pipeline_version VARCHAR(64),
    alert_count BIGINT
) ON COMMIT DROP;
COPY stage_gold (sensor_id, sensor_type, location, window_start, window_end, reading_count, avg_value, min_value, max_value, stddev_value, p50_value, p95_value, p99_value, anomaly_count, expected_count, health_pct, processing_timestamp, pipeline_version, alert_count) FROM STDIN (FORMAT binary);
-- COPY data: 19 bytes
-- COPY data: 16778 bytes
SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid WHERE i.inhparent = CAST('fact_sensor_readings' AS regclass);
CREATE TABLE fact_sensor_readings_p20261126 (LIKE fact_sensor_readings, CONSTRAINT fact_sensor_readings_p20261126_day CHECK (window_start >= '2026-11-26 00:00:00' AND window_start < '2026-11-27 00:00:00'));
ALTER TABLE fact_sensor_readings ATTACH PARTITION fact_sensor_readings_p20261126 FOR VALUES FROM ('2026-11-26 00:00:00') TO ('2026-11-27 00:00:00');
CREATE TABLE fact_sensor_readings_p20261127 (LIKE fact_sensor_readings, CONSTRAINT fact_sensor_readings_p20261127_day CHECK (window_start >= '2026-11-27 00:00:00' AND window_start < '2026-11-28 00:00:00'));
ALTER TABLE fact_sensor_readings ATTACH PARTITION fact_sensor_readings_p20261127 FOR VALUES FROM ('2026-11-27 00:00:00') TO ('2026-11-28 00:00:00');
DELETE FROM fact_sensor_readings WHERE (window_start >= %s AND window_start < %s) OR (window_start >= %s AND window_start < %s);
-- parameters: [datetime.datetime(2026, 11, 26, 23, 0), datetime.datetime(2026, 11, 27, 0, 0), datetime.datetime(2026, 11, 27, 0, 0), datetime.datetime(2026, 11, 27, 1, 0)]
INSERT INTO fact_sensor_readings (sensor_id, sensor_type, location, window_start, window_end, reading_count, avg_value, min_value, max_value, stddev_value, p50_value, p95_value, p99_value, anomaly_count, expected_count, health_pct, processing_timestamp, pipeline_version, alert_count)
SELECT sensor_id, sensor_type, location, window_start, window_end, reading_count, avg_value, min_value, max_value, stddev_value, p50_value, p95_value, p99_value, anomaly_count, expected_count, health_pct, processing_timestamp, pipeline_version, alert_count FROM stage_gold WHERE (window_start >= %s AND window_start < %s) OR (window_start >= %s AND window_start < %s);
-- parameters: [datetime.datetime(2026, 11, 26, 23, 0), datetime.datetime(2026, 11, 27, 0, 0), datetime.datetime(2026, 11, 27, 0, 0), datetime.datetime(2026, 11, 27, 1, 0)]
CREATE TEMPORARY TABLE stage_sensors ON COMMIT DROP AS
SELECT s.sensor_id, s.sensor_type, CASE s.sensor_type WHEN 'temperature' THEN 'celsius' WHEN 'humidity' THEN 'percent' WHEN 'pressure' THEN 'hPa' WHEN 'vibration' THEN 'g' ELSE NULL END AS unit, s.location,
    span.first_window_start, span.last_window_start
FROM (
    SELECT sensor_id, MIN(window_start) AS first_window_start,
        MAX(window_start) AS last_window_start
    FROM stage_gold
    GROUP BY sensor_id
) AS span
JOIN stage_gold AS s
    ON s.sensor_id = span.sensor_id AND s.window_start = span.last_window_start;
MERGE INTO dim_sensors
USING stage_sensors AS s
ON dim_sensors.sensor_id = s.sensor_id
WHEN MATCHED THEN UPDATE SET
    sensor_type = CASE WHEN s.last_window_start >= dim_sensors.last_window_start THEN s.sensor_type ELSE dim_sensors.sensor_type END,
    unit = CASE WHEN s.last_window_start >= dim_sensors.last_window_start THEN s.unit ELSE dim_sensors.unit END,
    location = CASE WHEN s.last_window_start >= dim_sensors.last_window_start THEN s.location ELSE dim_sensors.location END,
    first_window_start = LEAST(dim_sensors.first_window_start, s.first_window_start),
    last_window_start = GREATEST(dim_sensors.last_window_start, s.last_window_start)
WHEN NOT MATCHED THEN INSERT (sensor_id, sensor_type, unit, location, first_window_start, last_window_start)
VALUES (s.sensor_id, s.sensor_type, s.unit, s.location, s.first_window_start, s.last_window_start);
INSERT INTO dim_time (window_start, window_end, calendar_date, calendar_year, calendar_quarter, calendar_month, day_of_month, day_of_week, hour_of_day, minute_of_hour, is_weekend)
SELECT s.window_start, s.window_end, CAST(s.window_start AS DATE),
    EXTRACT(YEAR FROM s.window_start), EXTRACT(QUARTER FROM s.window_start),
    EXTRACT(MONTH FROM s.window_start), EXTRACT(DAY FROM s.window_start),
    EXTRACT(DOW FROM s.window_start), EXTRACT(HOUR FROM s.window_start),
    EXTRACT(MINUTE FROM s.window_start),
    CASE WHEN EXTRACT(DOW FROM s.window_start) IN (0, 6) THEN TRUE ELSE FALSE END
FROM (SELECT DISTINCT window_start, window_end FROM stage_gold) AS s
LEFT JOIN dim_time AS d ON d.window_start = s.window_start
WHERE d.window_start IS NULL;
COMMIT;
