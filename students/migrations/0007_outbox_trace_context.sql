-- The W3C trace context (`traceparent`) of the request that recorded an entry, sent as a
-- message header when the entry is published, so the other side's apply joins the trace even
-- when the entry is published after a restart (docs/behaviour.md §7, "Traces"). NULL with
-- traces off.
ALTER TABLE outbox ADD COLUMN trace_context text;
