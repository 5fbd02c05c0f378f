-- The dashlet task store (DESIGN.md 3 "Store", 4.6). Unqualified names: the store's search_path
-- decides the schema, so tests can run each case in a schema of its own.

CREATE TABLE tasks (
    -- COLLATE "C": order by code point, the same order Python's sorted() gives the in-memory store.
    task_id    text COLLATE "C" PRIMARY KEY,
    tab        text        NOT NULL,
    kind       text        NOT NULL,
    stage      text,
    vpa_id     text        NOT NULL,
    status     text        NOT NULL,
    priority   text        NOT NULL,
    owner      text,
    assignee   text,
    due_at     timestamptz,
    version    integer     NOT NULL CHECK (version >= 1),
    updated_at timestamptz NOT NULL,
    doc        jsonb       NOT NULL  -- the whole task as written; reads return this
);

-- Every applied version of every task: the history of changes, oldest first by version.
CREATE TABLE task_versions (
    task_id    text COLLATE "C" NOT NULL,
    version    integer     NOT NULL,
    doc        jsonb       NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, version)
);

-- The API lists by due_at (nulls last) then task_id; these serve its filters (DESIGN 4.8).
CREATE INDEX tasks_due_idx          ON tasks (due_at NULLS LAST, task_id);
CREATE INDEX tasks_tab_status_idx   ON tasks (tab, status, due_at NULLS LAST, task_id);
CREATE INDEX tasks_assignee_idx     ON tasks (assignee, status, due_at NULLS LAST, task_id);
CREATE INDEX tasks_vpa_idx          ON tasks (vpa_id);
