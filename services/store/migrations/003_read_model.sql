-- The dashlet's read model beside the tasks (issue 20; services/store/projection.py): each VPA's
-- profile and recent events, from vpa.events, and the AT roster, from at.roster. Written by the
-- notifier (and the demo) only.
CREATE TABLE vpa_profiles (
    vpa_id  text COLLATE "C" PRIMARY KEY,
    name_lc text,                 -- lower(name): the search finds a VPA by its name
    as_of   text NOT NULL,        -- occurred_at of the last event applied (RFC 3339)
    doc     jsonb NOT NULL
);
CREATE INDEX vpa_profiles_name_idx ON vpa_profiles (name_lc text_pattern_ops);

CREATE TABLE vpa_events (
    vpa_id      text COLLATE "C" NOT NULL,
    event_id    text NOT NULL,
    occurred_at timestamptz NOT NULL,
    type        text NOT NULL,
    text        text NOT NULL,
    PRIMARY KEY (vpa_id, event_id)
);
CREATE INDEX vpa_events_recent_idx ON vpa_events (vpa_id, occurred_at DESC, event_id DESC);

CREATE TABLE roster_members (
    initials text COLLATE "C" PRIMARY KEY,
    doc      jsonb NOT NULL
);

-- A case's reminders (DESIGN 5.13a: shown and completed with the case).
CREATE INDEX tasks_case_idx ON tasks ((doc->>'case_task_id')) WHERE tab = 'reminders';
