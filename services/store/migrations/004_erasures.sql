-- Erasures (issue 28): `vpa erase` removes a VPA's rows and leaves only this record, by the SHA-256
-- of the VPA id, so a process that keeps inputs of its own (the demo's runner and command log)
-- can find out that it must forget the VPA too. It holds no id or name.
CREATE TABLE erasures (
    vpa_hash  text PRIMARY KEY,
    erased_at timestamptz NOT NULL DEFAULT now()
);
