// The sandbox's consent page: activating a connection is a JSON POST, which another site's page
// cannot send here (it would need a CORS preflight the sandbox never grants).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("connect");
  const status = document.getElementById("status");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const answer = await fetch(window.location.pathname, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: "{}",
      });
      const body = await answer.json();
      status.textContent = answer.ok ? body.connection.status + ". You can close this page." : "failed";
    } catch (error) {
      status.textContent = "failed: " + error;
      button.disabled = false;
    }
  });
});
