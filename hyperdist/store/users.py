"""Database users: the one account `hyperdist server start --auth USER` makes for its server."""
from __future__ import annotations

from hyperdist.store.connection import Database


class Users(Database):
    """Provisioned on a server still running without --auth (SecantusDB and mongod both take users
    that way), before it is restarted with authentication on."""

    def ensure_user(self, user: str, password: str) -> None:
        """Create `user` in the admin database, or set its password when it exists. The role is
        root: the server is hyperdist's own, and its one user is its operator."""
        admin = self._client.admin
        with self._errors("creating a user on"):
            if admin.command("usersInfo", user).get("users"):
                admin.command("updateUser", user, pwd=password)
            else:
                admin.command("createUser", user, pwd=password, roles=[{"role": "root", "db": "admin"}])
