"""Staff: agents, supervisors, risk analysts and admins, their logins and roles."""
