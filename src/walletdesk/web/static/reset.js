// The reset token travels in the URL fragment (#token=...), which browsers never send to a
// server or put in a Referer header; it is read here and posted with the new password.
(function () {
  const form = document.getElementById("reset");
  const result = document.getElementById("result");
  const token = new URLSearchParams(window.location.hash.slice(1)).get("token");
  history.replaceState(null, "", window.location.pathname);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { token: token, new_password: data.get("new_password") };
    if (data.get("second_factor")) body.second_factor = data.get("second_factor");
    const response = await fetch("/v1/auth/password/reset", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    result.textContent = response.ok
      ? "密码已更新,请重新登录。Your password is changed; sign in again."
      : answer.title;
    if (response.ok) form.hidden = true;
  });
})();
