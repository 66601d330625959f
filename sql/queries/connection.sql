-- name: server_backend_pid
-- The pid of the server session running this statement. A direct connection
-- learns the same pid at start-up (BackendKeyData); a pooler hands its
-- clients keys of its own, so the two differ behind one.
SELECT pg_backend_pid() AS pid;
