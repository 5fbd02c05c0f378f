-- The dashlet API's ledger of command event_ids it has passed on (services/dashlet/ledger.py):
-- a repeated event_id is answered 409 instead of a 202 that would change nothing (DESIGN 4.8).
-- Written by the dashlet only; the notifier never touches it.
CREATE TABLE dashlet_commands (
    event_id    text COLLATE "C" PRIMARY KEY,
    accepted_at timestamptz NOT NULL DEFAULT now()
);
