/* The warning before the web session ends (WCAG 2.2.1 Timing Adjustable; docs/web.md).
   The page says how many seconds its session had left; shortly before the end this script
   asks the server how long is really left (another tab may have renewed the session) and, if
   the end is near, shows the alert dialog #session-warning with "Stay logged in", which posts
   to /session/extend. Without this script the pages work the same; the session simply ends. */
(function () {
  "use strict";
  var box = document.getElementById("session-warning");
  if (!box || !window.fetch) { return; }
  var warning = Number(box.dataset.warning) * 1000;
  var csrf = box.dataset.csrfToken;
  var deadline = Date.now() + Number(box.dataset.expiresIn) * 1000;
  var extendable = true;
  var timer = null;
  var returnFocus = null;
  var button = box.querySelector("[data-session-extend]");
  var login = box.querySelector("[data-session-login]");

  function state(name) {
    var shown = box.querySelector('[data-state="' + name + '"]');
    box.querySelectorAll("[data-state]").forEach(function (part) {
      part.hidden = part !== shown;
    });
    box.setAttribute("aria-describedby", shown.id);
    box.querySelector("h2").textContent =
      name === "ended" ? "Your session has ended" : "Your session is about to end";
    button.hidden = name !== "warning";
    login.hidden = name !== "ended";
  }

  function endTime() {
    var end = new Date(deadline);
    var text = end.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    box.querySelectorAll("[data-session-end]").forEach(function (span) {
      span.textContent = text;
    });
  }

  function schedule(at, run) {
    window.clearTimeout(timer);
    timer = window.setTimeout(run, Math.max(0, at - Date.now()));
  }

  function learn(answer) {
    deadline = Date.now() + answer.expires_in * 1000;
    extendable = answer.extendable;
  }

  function ask(url, options) {
    options.credentials = "same-origin";
    options.redirect = "manual";
    options.headers = Object.assign({ Accept: "application/json" }, options.headers || {});
    return window.fetch(url, options).then(function (response) {
      if (!response.ok) { throw new Error("session ended"); }
      return response.json();
    });
  }

  function hide() {
    box.hidden = true;
    if (returnFocus && document.body.contains(returnFocus)) { returnFocus.focus(); }
    returnFocus = null;
  }

  function show(name) {
    state(name);
    endTime();
    if (box.hidden) {
      returnFocus = document.activeElement;
      box.hidden = false;
      (name === "ended" ? login : name === "warning" ? button : box.querySelector("h2")).focus();
    }
  }

  function ended() {
    login.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    show("ended");
  }

  function check() {
    ask("/session/status", { method: "GET" }).then(function (answer) {
      learn(answer);
      if (deadline - Date.now() > warning + 1000) {
        hide();
        schedule(deadline - warning, check);
      } else {
        show(extendable ? "warning" : "final");
        schedule(deadline, check);
      }
    }, ended);
  }

  button.addEventListener("click", function () {
    ask("/session/extend", { method: "POST", headers: { "X-CSRF-Token": csrf } }).then(
      function (answer) {
        learn(answer);
        hide();
        box.dataset.extendedAt = String(Date.now());
        schedule(deadline - warning, check);
      },
      ended
    );
  });
  box.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { hide(); }
  });
  box.querySelector("h2").setAttribute("tabindex", "-1");
  schedule(deadline - warning, check);
})();
