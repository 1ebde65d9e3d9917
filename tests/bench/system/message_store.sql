-- Figure 7's peer event store: a message-db-style append in PostgreSQL
-- (after message-db's messages table and write_message function). One
-- difference, stated: the advisory lock is taken on the stream, not on its
-- category, so writers of distinct streams never wait for each other (with
-- message-db's category lock, the 64 'bench-N' streams would all serialise).
CREATE TABLE messages (
  global_position bigserial PRIMARY KEY,
  position bigint NOT NULL,
  time timestamp without time zone DEFAULT (now() AT TIME ZONE 'utc') NOT NULL,
  stream_name text NOT NULL,
  type text NOT NULL,
  data jsonb,
  metadata jsonb,
  id uuid NOT NULL
);
CREATE UNIQUE INDEX messages_id ON messages (id);
CREATE UNIQUE INDEX messages_stream ON messages (stream_name, position);

-- Appends one message at the stream's next position when the stream is at
-- expected_version (-1: no stream yet; NULL: no check); returns the new
-- position, which is the next call's expected version.
CREATE FUNCTION write_message(
  id varchar, stream_name varchar, type varchar, data jsonb,
  metadata jsonb DEFAULT NULL, expected_version bigint DEFAULT NULL
) RETURNS bigint AS $$
DECLARE
  _stream_version bigint;
  _next_position bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(write_message.stream_name, 0));
  SELECT max(m.position) INTO _stream_version FROM messages m WHERE m.stream_name = write_message.stream_name;
  IF _stream_version IS NULL THEN
    _stream_version := -1;
  END IF;
  IF write_message.expected_version IS NOT NULL AND write_message.expected_version != _stream_version THEN
    RAISE EXCEPTION 'Wrong expected version: % (Stream: %, Stream Version: %)',
      write_message.expected_version, write_message.stream_name, _stream_version;
  END IF;
  _next_position := _stream_version + 1;
  INSERT INTO messages (id, stream_name, position, type, data, metadata)
    VALUES (write_message.id::uuid, write_message.stream_name, _next_position, write_message.type,
            write_message.data, write_message.metadata);
  RETURN _next_position;
END;
$$ LANGUAGE plpgsql VOLATILE;
