"""Error codes of staff accounts and their sign-in."""

from __future__ import annotations

from walletdesk.kit.errors import define

# One answer for an unknown username, a wrong password and a wrong code: which one it was
# would tell a guesser what to try next.
define(
    "staff_login_failed",
    401,
    en="The username, password or authenticator code is wrong.",
    zh="用户名、密码或身份验证器验证码不正确。",
)
define(
    "staff_locked",
    423,
    en="Too many failed sign-ins: this account is locked until {until} (UTC). An admin can unlock it sooner.",
    zh="登录失败次数过多，该账号已锁定至 {until}（UTC）。管理员可以提前解锁。",
)
define(
    "staff_auth_required",
    401,
    en="Staff sign-in required: send a valid staff bearer token.",
    zh="需要员工登录：请提供有效的员工访问令牌。",
)
define(
    "staff_forbidden",
    403,
    en="Your role may not do this.",
    zh="您的角色无权执行此操作。",
)
define(
    "staff_username_invalid",
    422,
    en="A username is 2 to 64 lowercase letters, digits, dots, dashes or underscores.",
    zh="用户名为 2 到 64 个小写字母、数字、点、连字符或下划线。",
)
define(
    "staff_username_taken",
    409,
    en="That username is already taken.",
    zh="该用户名已被使用。",
)
define(
    "staff_role_invalid",
    422,
    en="The role must be agent, supervisor, risk_analyst or admin.",
    zh="角色必须是 agent、supervisor、risk_analyst 或 admin。",
)
define(
    "staff_goodwill_invalid",
    422,
    en="Goodwill limits cannot be negative, and the daily one cannot be below the per-action one.",
    zh="补偿额度不能为负数，且每日额度不能低于单次额度。",
)
define(
    "staff_cannot_disable_self",
    409,
    en="You cannot disable your own account; ask another admin.",
    zh="不能停用自己的账号，请联系其他管理员。",
)
define(
    "staff_demo_refused",
    409,
    en="Demo staff accounts have published passwords: they are only created while the demo secrets are in use.",
    zh="演示员工账号的密码是公开的，只有在使用演示密钥时才会创建。",
)
