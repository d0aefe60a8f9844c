// The Robot Accounts page. Plain JavaScript modules, no dependencies: it uses the session login
// (/c/login, /c/session, /c/log_out) and the documented /api/v2.0 endpoints only.
import { state, h, $, main, showAlert, showError, showSuccess, clearStatus, clearErrorOnAction, loading, setTitle, closeDialogs, onRetry, onSessionEnd, call, ApiError, SESSION_ENDED } from "./core.js";
import { projectsView, projectView, projectWebhooksView, systemRobotsView, systemWebhooksView } from "./projects.js";
import { federationView, issuersView } from "./federation.js";

export function loginView(message) {
  const user = h("input", { type: "text", id: "login-username", autocomplete: "username", required: true });
  const password = h("input", { type: "password", id: "login-password", autocomplete: "current-password", required: true });
  const error = h("p", { class: "error", role: "alert", id: "login-error" }, message || "");
  const submit = h("button", { type: "submit", class: "primary", id: "login-submit" }, "Log In");
  const form = h("form", { class: "card login", "aria-label": "Log in" },
    h("h1", {}, "Log in"),
    h("label", { for: "login-username" }, "Username"), user,
    h("label", { for: "login-password" }, "Password"), password,
    error, h("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      const { data } = await call("POST", "/c/login", { principal: user.value, password: password.value });
      state.session = data;
      showChrome();
      // Back to the page asked for (a link, or the page the session ended on).
      await route();
    } catch (err) {
      error.textContent = err.message;
    } finally {
      submit.disabled = false;
    }
  });
  setTitle("Log in");
  main().setAttribute("aria-busy", "false");
  main().replaceChildren(form);
  user.focus();
}

export function showChrome() {
  const logged = !!state.session;
  $("#nav").hidden = !logged;
  $("#who").hidden = !logged;
  $("#nav-system").hidden = !(logged && state.session.sysadmin);
  $("#nav-issuers").hidden = !(logged && state.session.sysadmin);
  $("#who-name").textContent = logged ? state.session.username : "";
}

// An API call answered 401: the session ended (expired, or logged out elsewhere). The hash
// stays, so that logging in again returns to this page.
function sessionEnded() {
  state.session = null;
  state.permissions = null;
  closeDialogs();
  showChrome();
  loginView();
  showError(SESSION_ENDED);
}

export async function route() {
  clearStatus();
  closeDialogs();
  const hash = location.hash || "#/projects";
  if (!state.session) {
    loading(true);
    try {
      state.session = (await call("GET", "/c/session")).data;
    } catch (e) {
      state.session = null;
      // Not logged in is a login form; no answer at all is the status area's Retry.
      if (e.status !== 401) {
        showAlert(e.message);
        return;
      }
    } finally {
      loading(false);
    }
    showChrome();
  }
  if (!state.session) return loginView();
  if (hash === "#/login") {
    location.hash = "#/projects";
    return;
  }
  loading(true);
  try {
    let match;
    if ((match = hash.match(/^#\/projects\/(\d{1,18})\/robots$/))) {
      setTitle("Robot Accounts");
      await projectView(match[1]);
    } else if ((match = hash.match(/^#\/robots\/(\d{1,18})\/federation$/))) {
      setTitle("Federation");
      await federationView(match[1]);
    } else if ((match = hash.match(/^#\/projects\/(\d{1,18})\/webhooks$/))) {
      setTitle("Webhooks");
      await projectWebhooksView(match[1]);
    } else if (hash === "#/system-webhooks") {
      setTitle("Webhooks");
      await systemWebhooksView();
    } else if (hash === "#/system-robots") {
      setTitle("System Robot Accounts");
      await systemRobotsView();
    } else if (hash === "#/federation-issuers") {
      if (!state.session.sysadmin) throw new ApiError(403, "Federation issuers are for system administrators.");
      setTitle("Federation Issuers");
      await issuersView();
    } else if (["#/projects", "#/", "#"].includes(hash)) {
      setTitle("Projects");
      await projectsView();
    } else throw new ApiError(404, `There is no page at ${readable(hash)}.`);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 403 || e.status === 404)) problemPage(e.status, e.message);
    else showAlert(e.message);
  } finally {
    loading(false);
  }
  // The session ended during the load, and the view put its own error page over the login form.
  if (!state.session && !main().querySelector("#login-username")) sessionEnded();
}

// The address as typed: the browser escapes some characters of it (spaces, < and >).
function readable(hash) {
  try {
    return decodeURIComponent(hash);
  } catch (e) {
    return hash;
  }
}

// What a page the caller may not see (403) or that does not exist (404) shows instead.
export function problemPage(status, message) {
  const denied = status === 403;
  setTitle(denied ? "No access" : "Not found");
  main().replaceChildren(h("section", { class: "problem", id: denied ? "no-access" : "not-found" },
    h("h1", {}, denied ? "No access" : "Not found"),
    h("p", {}, message),
    denied ? h("p", { class: "muted" }, "A project admin or a system administrator can give you access.") : null,
    h("p", {}, h("a", { href: "#/projects" }, "Back to Projects"))));
}

document.addEventListener("DOMContentLoaded", () => {
  onRetry(route);
  onSessionEnd(sessionEnded);
  document.addEventListener("click", clearErrorOnAction, true);
  document.addEventListener("input", clearErrorOnAction, true);
  $("#logout").addEventListener("click", async () => {
    try {
      await call("POST", "/c/log_out");
    } catch (e) {
      // Logged out either way.
    }
    state.session = null;
    state.permissions = null;
    showChrome();
    // No hashchange: the router would clear the message below.
    history.replaceState(null, "", "#/login");
    loginView();
    showSuccess("You have logged out.");
  });
  window.addEventListener("hashchange", route);
  route();
});
