"""Three rules written as plain SQL over Stepout's tables: the reference the audit is
measured against. Default policy; sessions with an end; written for SQLite and PostgreSQL."""

_MIN = 60_000_000  # microseconds in a minute

_EXITS = """
FROM exits e JOIN sessions s ON s.pk = e.session_pk
WHERE s.end_us IS NOT NULL
"""

ABSENCE_TOO_LONG = f"""
SELECT e.id {_EXITS}
  AND ((e.reason = 'technical' AND COALESCE(e.returned_us, s.end_us) - e.left_us > 5 * {_MIN})
    OR (e.reason = 'client_safety' AND COALESCE(e.returned_us, s.end_us) - e.left_us > 15 * {_MIN}))
"""

CLIENT_NOT_INFORMED = f"""
SELECT e.id {_EXITS}
  AND (
    ((e.reason IN ('technical', 'other') OR (e.reason IS NULL AND e.source = 'declared'))
      AND (e.client_informed <> 'before_leaving' OR TRIM(COALESCE(e.explanation, '')) = ''))
    OR (e.reason IN ('client_safety', 'health_emergency')
      AND (e.client_informed = 'not_informed' OR TRIM(COALESCE(e.explanation, '')) = ''))
  )
"""

# Net minutes: the session minus the union of its exits clipped to it. Each clipped exit, in
# start order, adds what reaches past the furthest end of the exits before it.
BILLED_CODE_UNSUPPORTED = f"""
WITH clipped AS (
  SELECT e.session_pk AS pk,
         CASE WHEN e.left_us > s.start_us THEN e.left_us ELSE s.start_us END AS a,
         CASE WHEN COALESCE(e.returned_us, s.end_us) < s.end_us
              THEN COALESCE(e.returned_us, s.end_us) ELSE s.end_us END AS b
  {_EXITS}
), ordered AS (
  SELECT pk, a, b, MAX(b) OVER (PARTITION BY pk ORDER BY a, b
                                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
  FROM clipped WHERE b > a
), absent AS (
  SELECT pk, SUM(CASE WHEN before IS NULL OR a >= before THEN b - a
                      WHEN b > before THEN b - before ELSE 0 END) AS us
  FROM ordered GROUP BY pk
), net AS (
  SELECT s.id, s.billed_codes AS codes,
         (s.end_us - s.start_us - COALESCE(absent.us, 0)) / {_MIN} AS minutes
  FROM sessions s LEFT JOIN absent ON absent.pk = s.pk
  WHERE s.end_us IS NOT NULL AND s.billed_codes <> '[]'
), required AS (
  SELECT id, minutes,
    CASE WHEN codes LIKE '%"90840"%'
         THEN 75 + 30 * ((LENGTH(codes) - LENGTH(REPLACE(codes, '"90840"', ''))) / 7 - 1)
         WHEN codes LIKE '%"90837"%' OR codes LIKE '%"90838"%' THEN 53
         WHEN codes LIKE '%"90834"%' OR codes LIKE '%"90836"%' THEN 38
         WHEN codes LIKE '%"90839"%' THEN 30
         WHEN codes LIKE '%"90832"%' OR codes LIKE '%"90833"%' THEN 16
         ELSE 0 END AS needs
  FROM net
)
SELECT id FROM required WHERE minutes < needs
"""

QUERIES = {
    "absence-too-long": ABSENCE_TOO_LONG,
    "client-not-informed": CLIENT_NOT_INFORMED,
    "billed-code-unsupported": BILLED_CODE_UNSUPPORTED,
}
