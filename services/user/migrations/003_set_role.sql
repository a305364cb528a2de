-- Role changes, serialised. Checking "is another admin left?" and demoting
-- in one statement is not enough: two admins demoting each other at the
-- same time would each still see the other as admin. A transaction-scoped
-- advisory lock makes role changes run one after the other, and each
-- statement below sees what the previous change committed.
CREATE FUNCTION users.set_role(p_id uuid, p_role text)
RETURNS TABLE (previous_role text, document jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    target users.users;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('users.set_role'));
    SELECT * INTO target FROM users.users WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN; -- no row: no such user
    END IF;
    previous_role := target.role;
    IF p_role <> 'admin' AND target.role = 'admin'
       AND NOT EXISTS (SELECT 1 FROM users.users WHERE role = 'admin' AND id <> p_id) THEN
        document := NULL; -- refused: the last admin
        RETURN NEXT;
        RETURN;
    END IF;
    UPDATE users.users SET role = p_role, updated_at = now() WHERE id = p_id RETURNING * INTO target;
    document := users.user_json(target);
    RETURN NEXT;
END
$$;
