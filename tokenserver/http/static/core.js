// The page's core: the DOM helper, the API client, the status area, dialogs and formatting.

export const API = "/api/v2.0";
export const PAGE_SIZE = 10;
export const state = { session: null, permissions: null };

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const main = () => $("#main");

// ---- The status area: one message at a time under the header (loading, success or error).
// A message stays until the next action or navigation replaces or clears it, or its x.

export const UNREACHABLE = "Cannot reach tokenserver: check that it is running and that the network is up, then retry.";
export const SESSION_ENDED = "Your session has ended: log in again.";
const hooks = { retry: null, sessionEnded: null };
let statusKind = null;

// app.js's router: Retry loads the page again; the end of a session shows the login form.
export function onRetry(fn) { hooks.retry = fn; }
export function onSessionEnd(fn) { hooks.sessionEnded = fn; }

export function setStatus(kind, message) {
  const box = $("#status");
  if (!box) return;
  statusKind = message ? kind : null;
  box.className = message ? `status-area ${kind}` : "status-area";
  // Errors interrupt a screen reader's speech; loading and success wait their turn.
  box.setAttribute("role", kind === "error" ? "alert" : "status");
  const children = [];
  if (message) {
    children.push(h("span", { id: "status-text" }, message));
    if (kind === "error" && message === UNREACHABLE && hooks.retry) {
      children.push(h("button", { type: "button", id: "status-retry", onclick: () => hooks.retry() }, "Retry"));
    }
    if (kind !== "loading") {
      children.push(h("button", { type: "button", class: "link dismiss", "aria-label": "Dismiss message", onclick: clearStatus }, "×"));
    }
  }
  box.replaceChildren(...children);
  box.hidden = !message;
}

export const clearStatus = () => setStatus(null, "");
export const showSuccess = (message) => setStatus("success", message);
export const showError = (message) => setStatus("error", message);
export const showNotice = showSuccess;

export function showAlert(message) {
  if (message) showError(message);
  else clearStatus();
}

export function loading(on) {
  main().setAttribute("aria-busy", String(on));
  if (on) setStatus("loading", "Loading…");
  else if (statusKind === "loading") clearStatus();
}

// The next action clears a shown error: a click on a control or typing, anywhere but in the
// status area itself (its Retry and x).
export function clearErrorOnAction(e) {
  if (statusKind !== "error" || !(e.target instanceof Element) || e.target.closest("#status")) return;
  if (e.type === "input" || e.target.closest("button, a[href], input, select, [role=menuitem]")) clearStatus();
}

export function setTitle(...parts) {
  document.title = [...parts, "tokenserver"].join(" · ");
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function call(method, path, body) {
  // X-Requested-With: 401s come without a Basic challenge, which would open the browser's prompt.
  const headers = { Accept: "application/json", "X-Requested-With": "XMLHttpRequest" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.session) headers["X-Harbor-CSRF-Token"] = state.session.csrf_token;
  // A change is an action: what the status area said before no longer applies.
  if (method !== "GET") clearStatus();
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (e) {
    // fetch rejects only when no answer came: the server is down or the network is.
    showError(UNREACHABLE);
    throw new ApiError(0, UNREACHABLE);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  if (!response.ok) {
    const errors = data && Array.isArray(data.errors) ? data.errors : [];
    // A proxy in front answers 502-504 with its own page when tokenserver is down.
    if (!errors.length && [502, 503, 504].includes(response.status)) {
      showError(UNREACHABLE);
      throw new ApiError(response.status, UNREACHABLE);
    }
    if (response.status === 401 && state.session && !path.startsWith("/c/")) {
      state.session = null;
      if (hooks.sessionEnded) hooks.sessionEnded();
      throw new ApiError(401, SESSION_ENDED);
    }
    const message = errors.map((e) => e.message).join("; ") || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message);
  }
  return { data, total: Number(response.headers.get("X-Total-Count") || 0) };
}

export const api = (method, path, body) => call(method, API + path, body);

export function when(text) {
  if (!text) return "";
  const date = new Date(text);
  return isNaN(date) ? text : date.toLocaleString();
}

export const DAY = 86400;
// Under this many days left, the expiry is shown as a warning.
export const SOON_DAYS = 7;

// A span of time in the page's words, rounded down: "29 d", "5 h" under a day, "12 min" under
// an hour, null under a minute.
export function span(seconds) {
  if (seconds >= DAY) return `${Math.floor(seconds / DAY)} d`;
  if (seconds >= 3600) return `${Math.floor(seconds / 3600)} h`;
  if (seconds >= 60) return `${Math.floor(seconds / 60)} min`;
  return null;
}

// When the robot expires, as the list shows it: `state` is "never", "ok", "soon" (under
// SOON_DAYS) or "expired"; `text` counts from now (the browser's clock); `exact` is the date.
export function expiry(robot, nowSeconds = Date.now() / 1000) {
  if (robot.expires_at === -1 || robot.duration === -1) {
    return { state: "never", text: "Never", exact: "Never expires", date: null };
  }
  const date = new Date(robot.expires_at * 1000);
  const exact = date.toLocaleString();
  const left = robot.expires_at - nowSeconds;
  if (left <= 0) {
    const ago = span(-left);
    return { state: "expired", text: ago ? `expired ${ago} ago` : "expired just now", exact, date };
  }
  const text = `expires in ${span(left) || "under a minute"}`;
  return { state: left < SOON_DAYS * DAY ? "soon" : "ok", text, exact, date };
}

export function shortName(robot) {
  // The full name is <prefix><project>+<name> or <prefix><name>; the API wants the short one.
  const prefix = state.session.name_prefix;
  let name = robot.name.startsWith(prefix) ? robot.name.slice(prefix.length) : robot.name;
  if (robot.level === "project" && name.includes("+")) name = name.slice(name.indexOf("+") + 1);
  return name;
}

export function dialog(title, body, buttons) {
  // Focus goes back where it was when the dialog opened (a menu's item hands it to its button).
  const opener = document.activeElement;
  const error = h("p", { class: "error", role: "alert" });
  const box = h("dialog", { "aria-label": title },
    h("h2", {}, title), body, error, h("div", { class: "actions" }, buttons));
  box.addEventListener("close", () => {
    box.remove();
    restoreFocus(opener);
  });
  box.addEventListener("keydown", (e) => enterSubmits(box, e));
  // What the error said no longer holds once the form changes: the next attempt says its own.
  const changed = (e) => { if (e.isTrusted) error.textContent = ""; };
  box.addEventListener("input", changed);
  box.addEventListener("change", changed);
  document.body.append(box);
  box.showModal();
  box.error = (message) => { error.textContent = message; };
  return box;
}

export function closeDialogs() {
  document.querySelectorAll("dialog[open]").forEach((box) => box.close());
}

function restoreFocus(opener) {
  // Another dialog opened meanwhile (the secret after Add): it keeps the focus.
  if (document.querySelector("dialog[open]")) return;
  if (opener instanceof HTMLElement && opener.isConnected && opener !== document.body) {
    opener.focus();
    if (document.activeElement === opener) return;
  }
  // The opener is gone or disabled (Delete removed the robot it acted on).
  main().focus();
}

// Enter in a field submits the dialog, as in a form: its primary button. Ctrl+Enter does it
// from a text area too. A control that uses Enter itself (a chip input) calls preventDefault.
const NOT_FIELDS = new Set(["button", "submit", "reset", "file", "image", "color", "range"]);
function enterSubmits(box, e) {
  if (e.key !== "Enter" || e.defaultPrevented || e.isComposing || e.altKey || e.shiftKey) return;
  const target = e.target;
  const field = target instanceof HTMLInputElement && !NOT_FIELDS.has(target.type);
  const area = target instanceof HTMLTextAreaElement && (e.ctrlKey || e.metaKey);
  if (!field && !area) return;
  e.preventDefault();
  box.querySelector(".actions button.primary:not(:disabled)")?.click();
}

export function cancelButton(box) {
  return h("button", { type: "button", onclick: () => box.close() }, "Cancel");
}

export async function submitting(box, button, action) {
  button.disabled = true;
  box.error("");
  try {
    await action();
  } catch (e) {
    box.error(e.message);
  } finally {
    button.disabled = false;
  }
}

export function confirmDialog(title, message, label, action) {
  const ok = h("button", { type: "button", class: "danger" }, label);
  const box = dialog(title, h("p", {}, message), [null, ok]);
  const cancel = cancelButton(box);
  box.querySelector(".actions").prepend(cancel);
  // A destructive action is never one Enter away: Cancel holds the focus.
  cancel.focus();
  ok.addEventListener("click", () => submitting(box, ok, async () => {
    await action();
    box.close();
  }));
}

export async function grantable() {
  if (!state.permissions) state.permissions = (await api("GET", "/permissions")).data;
  return state.permissions;
}

// Edit, Disable and Enable start from the robot as it is now, not as the list showed it: a
// PUT replaces every field, so a change made elsewhere meanwhile would be undone.
export async function now(robot) {
  return (await api("GET", `/robots/${robot.id}`)).data;
}

export function robotBody(robot, changes) {
  // PUT wants the whole robot: name, level, duration, permissions, disable, description.
  return {
    name: shortName(robot),
    level: robot.level,
    description: robot.description,
    duration: robot.duration,
    disable: robot.disable,
    permissions: robot.permissions,
    ...changes,
  };
}

export function pagerControls(page, total, go) {
  const first = total ? (page - 1) * PAGE_SIZE + 1 : 0;
  const last = Math.min(page * PAGE_SIZE, total);
  return [
    h("span", { class: "muted", id: "page-info" }, `${first} - ${last} of ${total} items`),
    h("button", { type: "button", id: "prev-page", disabled: page <= 1, onclick: () => go(page - 1) }, "‹ Previous"),
    h("button", { type: "button", id: "next-page", disabled: last >= total, onclick: () => go(page + 1) }, "Next ›"),
  ];
}

export async function allProjects() {
  const projects = [];
  for (let page = 1; ; page += 1) {
    const { data, total } = await api("GET", `/projects?page=${page}&page_size=100`);
    projects.push(...data);
    if (!data.length || projects.length >= total) return projects;
  }
}
