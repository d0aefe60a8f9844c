// The Robot Accounts page. Plain JavaScript, no dependencies: it uses the session login
// (/c/login, /c/session, /c/log_out) and the documented /api/v2.0 endpoints only.
"use strict";

const API = "/api/v2.0";
const PAGE_SIZE = 10;
const state = { session: null, permissions: null };

// ---- DOM helpers: every text goes through textContent, never innerHTML ---------------------

function h(tag, attrs, ...children) {
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

const $ = (selector, root = document) => root.querySelector(selector);
const main = () => $("#main");

function showAlert(message) {
  const alert = $("#alert");
  alert.textContent = message || "";
  alert.hidden = !message;
}

// ---- API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body) {
  // X-Requested-With: 401s come without a Basic challenge, which would open the browser's prompt.
  const headers = { Accept: "application/json", "X-Requested-With": "XMLHttpRequest" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.session) headers["X-Harbor-CSRF-Token"] = state.session.csrf_token;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  if (!response.ok) {
    const errors = data && Array.isArray(data.errors) ? data.errors : [];
    const message = errors.map((e) => e.message).join("; ") || `${response.status} ${response.statusText}`;
    if (response.status === 401 && state.session && !path.startsWith("/c/")) {
      state.session = null;
      location.hash = "#/login";
    }
    throw new ApiError(response.status, message);
  }
  return { data, total: Number(response.headers.get("X-Total-Count") || 0) };
}

const api = (method, path, body) => call(method, API + path, body);

// ---- formatting --------------------------------------------------------------------------

function when(text) {
  if (!text) return "";
  const date = new Date(text);
  return isNaN(date) ? text : date.toLocaleString();
}

function expiry(robot) {
  if (robot.expires_at === -1 || robot.duration === -1) return "Never Expired";
  return new Date(robot.expires_at * 1000).toLocaleString();
}

function permissionLabel(access) {
  return `${access.action} ${access.resource}` + (access.effect === "deny" ? " (deny)" : "");
}

function shortName(robot) {
  // The full name is <prefix><project>+<name> or <prefix><name>; the API wants the short one.
  const prefix = state.session.name_prefix;
  let name = robot.name.startsWith(prefix) ? robot.name.slice(prefix.length) : robot.name;
  if (robot.level === "project" && name.includes("+")) name = name.slice(name.indexOf("+") + 1);
  return name;
}

// ---- dialogs -----------------------------------------------------------------------------

function dialog(title, body, buttons) {
  const error = h("p", { class: "error", role: "alert" });
  const box = h("dialog", { "aria-label": title },
    h("h2", {}, title), body, error, h("div", { class: "actions" }, buttons));
  box.addEventListener("close", () => box.remove());
  document.body.append(box);
  box.showModal();
  box.error = (message) => { error.textContent = message; };
  return box;
}

function cancelButton(box) {
  return h("button", { type: "button", onclick: () => box.close() }, "Cancel");
}

async function submitting(box, button, action) {
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

function confirmDialog(title, message, label, action) {
  const ok = h("button", { type: "button", class: "danger" }, label);
  const box = dialog(title, h("p", {}, message), [null, ok]);
  box.querySelector(".actions").prepend(cancelButton(box));
  ok.addEventListener("click", () => submitting(box, ok, async () => {
    await action();
    box.close();
  }));
}

function exportFile(robot, secret) {
  // Harbor's "Export to File": <full name>.json with id, name, secret, creation_time, expires_at.
  const content = JSON.stringify({
    id: robot.id,
    name: robot.name,
    secret,
    creation_time: robot.creation_time,
    expires_at: robot.expires_at,
  }, null, 2);
  const link = h("a", {
    href: URL.createObjectURL(new Blob([content], { type: "application/json" })),
    download: `${robot.name}.json`,
  });
  document.body.append(link);
  link.click();
  link.remove();
}

function secretDialog(title, robot, secret) {
  const copied = h("span", { class: "muted", "aria-live": "polite" });
  const copy = h("button", {
    type: "button",
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(secret);
        copied.textContent = "Copied.";
      } catch (e) {
        copied.textContent = "Could not copy: select the secret and copy it by hand.";
      }
    },
  }, "Copy Secret");
  const body = h("div", {},
    h("p", {}, "Name: ", h("strong", { id: "secret-name" }, robot.name)),
    h("label", { for: "secret-value" }, "Secret"),
    h("div", { class: "secret", id: "secret-value" }, secret),
    h("p", { class: "warning" },
      "Copy or export the secret now: it is not stored and cannot be shown again. " +
      "A new one can be made with Refresh Secret."),
    h("p", {}, copy, " ", copied));
  const exportButton = h("button", {
    type: "button", class: "primary", onclick: () => exportFile(robot, secret),
  }, "Export to File");
  const box = dialog(title, body, [exportButton]);
  box.querySelector(".actions").prepend(h("button", { type: "button", onclick: () => box.close() }, "Close"));
  return box;
}

// ---- robot form (new and edit) ----------------------------------------------------------

async function grantable() {
  if (!state.permissions) state.permissions = (await api("GET", "/permissions")).data;
  return state.permissions;
}

// The server's bound on `duration` (100 years): a later expiry is no expiry, say Never Expired.
const MAX_DAYS = 36500;

function expirationFields(robot) {
  const never = robot ? robot.duration === -1 : false;
  const days = h("input", {
    type: "number", id: "robot-days", min: "1", max: String(MAX_DAYS), step: "1",
    value: robot && robot.duration > 0 ? String(robot.duration) : "30", disabled: never,
  });
  const neverBox = h("input", { type: "checkbox", id: "robot-never", checked: never });
  neverBox.addEventListener("change", () => { days.disabled = neverBox.checked; });
  return {
    element: h("div", {},
      h("label", { for: "robot-days" }, "Expiration time (days)"), days,
      h("label", { class: "inline" }, neverBox, "Never Expired")),
    duration: () => {
      if (neverBox.checked) return -1;
      // The save button does not submit the form, so the browser's own min/max check never runs.
      const value = Number(days.value);
      if (days.value.trim() === "" || !Number.isInteger(value) || value < 1 || value > MAX_DAYS) {
        throw new Error(`The expiration time must be a whole number of days from 1 to ${MAX_DAYS} (or Never Expired).`);
      }
      return value;
    },
  };
}

const accessKey = (a) => `${a.resource}:${a.action}`;

function namespaceLabel(permission) {
  if (permission.kind === "system") return "System";
  return permission.namespace === "*" ? "All projects" : `Project ${permission.namespace}`;
}

function entryName(permission) {
  if (permission.kind === "system") return "the system permissions";
  return permission.namespace === "*" ? "all projects" : `project ${permission.namespace}`;
}

function entryLegend(permission) {
  if (permission.kind === "system") return "System permissions";
  return permission.namespace === "*" ? "Permissions on all projects" : `Permissions on project ${permission.namespace}`;
}

let entryCount = 0;

// One permission entry ({kind, namespace, access}) as checkboxes of the permissions its kind
// offers. What the page cannot show as a checkbox (a deny, a permission it does not list) is
// kept as it is, and the entry keeps its order: an edit that changes nothing sends back
// exactly what it was given.
function entryEditor(permission, available, { legend, canAllow = true, note = null }) {
  const offered = new Set(canAllow ? available.map(accessKey) : []);
  const boxed = (a) => a.effect !== "deny" && offered.has(accessKey(a));
  const had = new Set(permission.access.filter(boxed).map(accessKey));
  const kept = permission.access.filter((a) => !boxed(a));
  const prefix = `perm-${entryCount++}`;
  const boxes = canAllow ? available.map((a) => {
    const key = accessKey(a);
    const id = `${prefix}-${key.replace(/[^a-z0-9]/gi, "-")}`;
    return h("label", { class: "inline", for: id },
      h("input", { type: "checkbox", id, value: key, checked: had.has(key) }),
      `${a.action} ${a.resource}`);
  }) : [];
  const element = h("fieldset", { class: "entry" },
    h("legend", {}, legend),
    note ? h("p", { class: "muted" }, note) : null,
    repositoriesNote(permission),
    boxes.length ? h("div", { class: "perms" }, boxes) : null,
    kept.length ? h("div", { class: "kept" },
      h("span", { class: "muted" }, "Kept as they are:"),
      h("ul", {}, kept.map((a) => h("li", {}, `${a.effect === "deny" ? "deny" : "allow"} ${a.action} ${a.resource}`)))) : null);
  return {
    element,
    permission,
    access: () => {
      const checked = new Set([...element.querySelectorAll("input:checked")].map((box) => box.value));
      const access = permission.access.filter((a) => !boxed(a) || checked.has(accessKey(a)));
      for (const a of available) {
        const key = accessKey(a);
        if (checked.has(key) && !had.has(key)) access.push({ resource: a.resource, action: a.action, effect: "allow" });
      }
      return access;
    },
  };
}

function entryValue(editor, what) {
  const access = editor.access();
  if (!access.length) throw new Error(`Select at least one permission${what ? ` for ${what}` : ""}.`);
  const value = { kind: editor.permission.kind, namespace: editor.permission.namespace, access };
  // The page does not edit repository patterns yet: an entry keeps the ones it has.
  if (editor.permission.repositories) value.repositories = editor.permission.repositories;
  return value;
}

function repositoriesNote(permission) {
  return permission.repositories
    ? h("p", { class: "muted repositories" }, `Repositories: ${permission.repositories.join(", ")} (kept as they are)`)
    : null;
}

function chooserBox(value, label, checked) {
  return h("label", { class: "inline" },
    h("input", { type: "checkbox", value, class: "project-choice", checked }), label);
}

// The projects a system robot's entries name: all (`*`, including future ones) or some.
function projectChooser(names, chosen, extra) {
  const all = chooserBox("*", "All projects, including future ones", chosen.has("*"));
  const list = h("div", { class: "perms" }, names.map((name) => chooserBox(name, name, chosen.has(name))), extra);
  return {
    element: h("fieldset", { class: "entry" }, h("legend", {}, "Projects"), all, list),
    all: all.querySelector("input"),
    boxes: () => [...list.querySelectorAll("input")],
  };
}

// A new robot: one set of permissions, for its project or for each chosen project.
function newRobotPermissions(available, { project, projects }) {
  const editor = entryEditor({ kind: "project", namespace: project || "", access: [] }, available.project, { legend: "Permission(s)" });
  if (!projects) return { element: editor.element, value: () => [entryValue(editor)] };
  const chooser = projectChooser(projects.map((p) => p.name), new Set(), []);
  chooser.all.addEventListener("change", () => chooser.boxes().forEach((b) => { b.disabled = chooser.all.checked; }));
  return {
    element: h("div", {}, chooser.element, editor.element),
    value: () => {
      const entry = entryValue(editor);
      const names = chooser.all.checked ? ["*"] : chooser.boxes().filter((b) => b.checked).map((b) => b.value);
      if (!names.length) throw new Error("Select at least one project, or all projects.");
      return names.map((namespace) => ({ ...entry, namespace }));
    },
  };
}

// An existing robot: every entry keeps its own permissions. A system robot's entries can be
// added and removed with the project chooser (and the system entry with its own box); a
// removed entry comes back as it was if chosen again before saving.
function editRobotPermissions(robot, available, projects) {
  const known = new Set((projects || []).map((p) => p.name));
  const entries = [];
  const holder = h("div", {});
  const add = (permission) => {
    const system = permission.kind === "system";
    const exists = system || permission.namespace === "*" || known.has(permission.namespace) || !projects;
    const editor = entryEditor(permission, system ? available.system : available.project, {
      legend: projects ? entryLegend(permission) : "Permission(s)",
      canAllow: exists,
      note: exists ? null : `There is no project ${permission.namespace} (any more): this entry is kept as it is; its denies apply to a project of that name created later.`,
    });
    const entry = { editor, key: system ? "/" : permission.namespace, removed: false };
    entries.push(entry);
    holder.append(editor.element);
    return entry;
  };
  (robot.permissions || []).forEach(add); // an empty list is left out, as Harbor does
  const value = () => {
    const chosen = entries.filter((e) => !e.removed);
    if (!chosen.length) throw new Error(projects ? "Select at least one project, all projects or system permissions." : "Select at least one permission.");
    return chosen.map((e) => entryValue(e.editor, projects ? entryName(e.editor.permission) : ""));
  };
  if (!projects) return { element: holder, value };

  const choose = (key, permission, checked) => {
    const same = entries.filter((e) => e.key === key);
    if (checked && !same.length) same.push(add(permission()));
    for (const e of same) {
      e.removed = !checked;
      e.editor.element.hidden = !checked;
    }
  };
  const present = new Set(entries.filter((e) => e.key !== "/").map((e) => e.key));
  const missing = [...present].filter((name) => name !== "*" && !known.has(name));
  const chooser = projectChooser([...known], present,
    missing.map((name) => chooserBox(name, `${name} (no such project)`, true)));
  for (const box of [chooser.all, ...chooser.boxes()]) {
    box.addEventListener("change", () => choose(box.value, () => ({ kind: "project", namespace: box.value, access: [] }), box.checked));
  }
  const systemBox = h("input", { type: "checkbox", id: "system-entry", checked: entries.some((e) => e.key === "/") });
  systemBox.addEventListener("change", () => choose("/", () => ({ kind: "system", namespace: "/", access: [] }), systemBox.checked));
  return {
    element: h("div", {},
      chooser.element,
      h("label", { class: "inline" }, systemBox, "System permissions (outside any project)"),
      holder),
    value,
  };
}

async function robotDialog({ title, robot, permissions, submit }) {
  const name = h("input", { type: "text", id: "robot-name", required: true, value: robot ? shortName(robot) : "", disabled: !!robot, autocomplete: "off" });
  const description = h("textarea", { id: "robot-description", rows: "2" }, robot ? robot.description : "");
  const expiration = expirationFields(robot);
  const body = h("form", { onsubmit: (e) => e.preventDefault() },
    h("label", { for: "robot-name" }, "Name"), name,
    h("label", { for: "robot-description" }, "Description (optional)"), description,
    expiration.element,
    permissions.element);
  const save = h("button", { type: "button", class: "primary" }, robot ? "Save" : "Add");
  const box = dialog(title, body, [save]);
  box.querySelector(".actions").prepend(cancelButton(box));
  save.addEventListener("click", () => submitting(box, save, async () => {
    if (!name.value.trim()) throw new Error("A name is required.");
    const chosen = permissions.value();
    await submit(box, {
      name: name.value.trim(),
      description: description.value,
      duration: expiration.duration(),
      permissions: chosen,
    });
  }));
  name.focus();
}

// ---- the robots table (project and system pages share it) -------------------------------

function robotTable(robots, selected, onSelect) {
  const rows = robots.map((robot) => {
    const id = `select-${robot.id}`;
    const box = h("input", {
      type: "checkbox", id, "aria-label": `Select ${robot.name}`, checked: selected === robot.id,
      onchange: (e) => onSelect(e.target.checked ? robot.id : null),
    });
    const held = robot.permissions || []; // an empty list is left out, as Harbor does
    const access = held.flatMap((p) => p.access.map((a) => ({ ...a, namespace: p.namespace })));
    const permissions = h("details", { class: "permissions" },
      h("summary", {}, `${access.length} Permission(s)`),
      held.map((p) => h("div", {},
        robot.level === "system" ? h("div", { class: "muted" }, namespaceLabel(p)) : null,
        p.repositories ? h("div", { class: "muted" }, `Repositories: ${p.repositories.join(", ")}`) : null,
        h("ul", {}, p.access.map((a) => h("li", {}, permissionLabel(a)))))));
    return h("tr", { "data-robot": robot.name },
      h("td", {}, box),
      h("td", { class: "name" }, robot.name, robot.legacy ? h("span", { class: "tag legacy" }, "Legacy") : null,
        robot.secret_login === false ? h("span", { class: "tag federated" }, "Federation only") : null),
      h("td", { class: robot.disable ? "status disabled" : "status enabled" }, robot.disable ? "Disabled" : "Enabled"),
      h("td", {}, permissions),
      h("td", {}, when(robot.creation_time)),
      h("td", { class: "expires" }, expiry(robot)),
      h("td", { class: "description" }, robot.description),
      h("td", {}, robot.last_used_at ? when(robot.last_used_at) : h("span", { class: "muted" }, "Never")));
  });
  return h("table", { "aria-label": "Robot accounts" },
    h("thead", {}, h("tr", {},
      h("th", {}, h("span", { class: "muted" }, "")), h("th", {}, "Name"), h("th", {}, "Status"),
      h("th", {}, "Permissions"), h("th", {}, "Creation Time"), h("th", {}, "Expires at"),
      h("th", {}, "Description"), h("th", {}, "Last Used"))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: "8", class: "muted" }, "No robot accounts."))));
}

function actionMenu(getRobot, handlers) {
  const list = h("div", { role: "menu", hidden: true });
  const button = h("button", { type: "button", "aria-haspopup": "menu", "aria-expanded": "false", id: "action" }, "Action ▾");
  const close = () => { list.hidden = true; button.setAttribute("aria-expanded", "false"); };
  button.addEventListener("click", () => {
    const robot = getRobot();
    if (!robot) return;
    list.replaceChildren();
    const items = robot.legacy
      ? ["Disable", "Enable", "Delete"]
      : ["Edit", "Disable", "Enable", "Delete", "Refresh Secret", "Federation"];
    for (const label of items) {
      const disabled = (label === "Disable" && robot.disable) || (label === "Enable" && !robot.disable);
      list.append(h("button", {
        type: "button", role: "menuitem", disabled,
        onclick: () => { close(); handlers[label](robot); },
      }, label));
    }
    list.hidden = !list.hidden;
    button.setAttribute("aria-expanded", String(!list.hidden));
    if (!list.hidden) list.querySelector("[role=menuitem]:not(:disabled)")?.focus();
  });
  list.addEventListener("keydown", (e) => {
    const items = [...list.querySelectorAll("[role=menuitem]:not(:disabled)")];
    const index = items.indexOf(document.activeElement);
    if (e.key === "Escape") { close(); button.focus(); }
    if (e.key === "ArrowDown") { e.preventDefault(); items[(index + 1) % items.length]?.focus(); }
    if (e.key === "ArrowUp") { e.preventDefault(); items[(index - 1 + items.length) % items.length]?.focus(); }
  });
  return { element: h("div", { class: "menu" }, button, list), button };
}

// Edit, Disable and Enable start from the robot as it is now, not as the list showed it: a
// PUT replaces every field, so a change made elsewhere meanwhile would be undone.
async function now(robot) {
  return (await api("GET", `/robots/${robot.id}`)).data;
}

function robotBody(robot, changes) {
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

function refreshDialog(robot, reload) {
  const manual = h("input", { type: "checkbox", id: "manual-secret" });
  const secret = h("input", { type: "password", id: "new-secret", autocomplete: "new-password", disabled: true });
  const confirm = h("input", { type: "password", id: "confirm-secret", autocomplete: "new-password", disabled: true });
  manual.addEventListener("change", () => { secret.disabled = confirm.disabled = !manual.checked; });
  const body = h("form", { onsubmit: (e) => e.preventDefault() },
    h("p", {}, `A new secret for ${robot.name}. The old one stops working at once.`),
    h("label", { class: "inline" }, manual, "Manually reset the secret"),
    h("label", { for: "new-secret" }, "New Secret"), secret,
    h("label", { for: "confirm-secret" }, "Confirm Secret"), confirm,
    h("p", { class: "muted" }, "8 to 128 characters, with at least one uppercase letter, one lowercase letter and one number."));
  const refresh = h("button", { type: "button", class: "primary" }, "Refresh");
  const box = dialog("Refresh Secret", body, [refresh]);
  box.querySelector(".actions").prepend(cancelButton(box));
  refresh.addEventListener("click", () => submitting(box, refresh, async () => {
    let request = {};
    if (manual.checked) {
      if (secret.value !== confirm.value) throw new Error("The secrets do not match.");
      if (!/^(?=.*[a-z])(?=.*[A-Z])(?=.*\d).{8,128}$/.test(secret.value)) {
        throw new Error("The secret must be 8-128 characters long with at least 1 uppercase letter, 1 lowercase letter and 1 number.");
      }
      request = { secret: secret.value };
    }
    const { data } = await api("PATCH", `/robots/${robot.id}`, request);
    box.close();
    await reload();
    if (!manual.checked) secretDialog("Secret refreshed", robot, data.secret);
    else showNotice(`The secret of ${robot.name} was changed.`);
  }));
}

function showNotice(message) {
  const notice = $("#notice");
  if (notice) notice.textContent = message;
}

async function robotsView({ title, query, canCreate, create, heading }) {
  let page = 1;
  let search = "";
  let robots = [];
  let selected = null;
  const tableHolder = h("div", {});
  const pager = h("div", { class: "pager" });
  const searchBox = h("input", { type: "search", id: "robot-search", placeholder: "Search by name", "aria-label": "Search robot accounts by name" });
  const current = () => robots.find((r) => r.id === selected) || null;
  const reload = async () => {
    // The server unescapes q once more, as Harbor does: the search text is escaped twice.
    const q = query() + (search ? `,name=~${encodeURIComponent(search)}` : "");
    const { data, total } = await api("GET", `/robots?q=${encodeURIComponent(q)}&page=${page}&page_size=${PAGE_SIZE}&sort=name`);
    robots = data;
    if (!current()) selected = null;
    menu.button.disabled = !selected;
    tableHolder.replaceChildren(robotTable(robots, selected, (id) => {
      selected = id;
      tableHolder.querySelectorAll("input[type=checkbox]").forEach((box) => {
        box.checked = box.id === `select-${id}`;
      });
      menu.button.disabled = !selected;
    }));
    pager.replaceChildren(...pagerControls(page, total, (to) => { page = to; reload().catch(fail); }));
  };
  const fail = (e) => showAlert(e.message);
  const menu = actionMenu(current, {
    Edit: (listed) => (async () => {
      const robot = await now(listed);
      const projects = robot.level === "system" ? await allProjects() : null;
      const permissions = editRobotPermissions(robot, await grantable(), projects);
      await robotDialog({
        title: `Edit ${robot.name}`,
        robot,
        permissions,
        submit: async (box, form) => {
          await api("PUT", `/robots/${robot.id}`, robotBody(robot, {
            description: form.description, duration: form.duration, permissions: form.permissions,
          }));
          box.close();
          await reload();
        },
      });
    })().catch(fail),
    Disable: (listed) => now(listed).then((robot) => api("PUT", `/robots/${robot.id}`, robotBody(robot, { disable: true }))).then(reload).catch(fail),
    Enable: (listed) => now(listed).then((robot) => api("PUT", `/robots/${robot.id}`, robotBody(robot, { disable: false }))).then(reload).catch(fail),
    Delete: (robot) => confirmDialog("Delete Robot Account", `Delete ${robot.name}? Anything using its secret stops working.`, "Delete", async () => {
      await api("DELETE", `/robots/${robot.id}`);
      selected = null;
      await reload();
    }),
    "Refresh Secret": (robot) => refreshDialog(robot, reload),
    Federation: (robot) => { location.hash = `#/robots/${robot.id}/federation`; },
  });
  menu.button.disabled = true;
  let timer = null;
  searchBox.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { search = searchBox.value.trim(); page = 1; reload().catch(fail); }, 250);
  });
  const newButton = canCreate
    ? h("button", { type: "button", class: "primary", id: "new-robot", onclick: () => create(reload).catch(fail) }, title)
    : null;
  const view = h("section", {},
    heading,
    h("div", { class: "toolbar" }, newButton, menu.element, h("span", { class: "grow" }), searchBox),
    h("p", { id: "notice", class: "muted", "aria-live": "polite" }),
    tableHolder, pager);
  main().replaceChildren(view);
  await reload();
}

// ---- pages -------------------------------------------------------------------------------

function loginView(message) {
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
      location.hash = "#/projects";
      await route();
    } catch (err) {
      error.textContent = err.message;
    } finally {
      submit.disabled = false;
    }
  });
  main().replaceChildren(form);
  user.focus();
}

function pagerControls(page, total, go) {
  const first = total ? (page - 1) * PAGE_SIZE + 1 : 0;
  const last = Math.min(page * PAGE_SIZE, total);
  return [
    h("span", { class: "muted", id: "page-info" }, `${first} - ${last} of ${total} items`),
    h("button", { type: "button", id: "prev-page", disabled: page <= 1, onclick: () => go(page - 1) }, "‹ Previous"),
    h("button", { type: "button", id: "next-page", disabled: last >= total, onclick: () => go(page + 1) }, "Next ›"),
  ];
}

async function projectsView() {
  let page = 1;
  let search = "";
  const holder = h("div", {});
  const pager = h("div", { class: "pager" });
  const searchBox = h("input", { type: "search", id: "project-search", placeholder: "Search by name", "aria-label": "Search projects by name" });
  const reload = async () => {
    const { data, total } = await api("GET", `/projects?page=${page}&page_size=${PAGE_SIZE}&name=${encodeURIComponent(search)}`);
    const rows = data.map((p) => h("tr", { "data-project": p.name },
      h("td", {}, h("a", { href: `#/projects/${p.project_id}/robots` }, p.name)),
      h("td", {}, p.metadata.public === "true" ? "Public" : "Private"),
      h("td", {}, p.owner_name || ""),
      h("td", {}, when(p.creation_time))));
    holder.replaceChildren(h("table", { "aria-label": "Projects" },
      h("thead", {}, h("tr", {}, h("th", {}, "Project Name"), h("th", {}, "Access Level"), h("th", {}, "Owner"), h("th", {}, "Creation Time"))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: "4", class: "muted" }, "No projects.")))));
    pager.replaceChildren(...pagerControls(page, total, (to) => { page = to; reload().catch((e) => showAlert(e.message)); }));
  };
  let timer = null;
  searchBox.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { search = searchBox.value.trim(); page = 1; reload().catch((e) => showAlert(e.message)); }, 250);
  });
  const create = state.session.sysadmin
    ? h("button", { type: "button", class: "primary", id: "new-project", onclick: newProjectDialog }, "New Project")
    : null;
  main().replaceChildren(h("section", {},
    h("h1", {}, "Projects"),
    h("div", { class: "toolbar" }, create, h("span", { class: "grow" }), searchBox),
    holder, pager));
  await reload();
}

function newProjectDialog() {
  const name = h("input", { type: "text", id: "project-name", required: true, autocomplete: "off" });
  const pub = h("input", { type: "checkbox", id: "project-public" });
  const body = h("form", { onsubmit: (e) => e.preventDefault() },
    h("label", { for: "project-name" }, "Project Name"), name,
    h("label", { class: "inline" }, pub, "Public (anyone may pull)"));
  const ok = h("button", { type: "button", class: "primary" }, "OK");
  const box = dialog("New Project", body, [ok]);
  box.querySelector(".actions").prepend(cancelButton(box));
  ok.addEventListener("click", () => submitting(box, ok, async () => {
    await api("POST", "/projects", { project_name: name.value.trim(), metadata: { public: String(pub.checked) } });
    box.close();
    await projectsView();
  }));
  name.focus();
}

async function projectView(id) {
  const { data: project } = await api("GET", `/projects/${id}`);
  const heading = h("div", {},
    h("h1", {}, project.name, h("span", { class: "tag" }, project.metadata.public === "true" ? "Public" : "Private")),
    h("nav", { class: "tabs", "aria-label": "Project" },
      h("a", { href: `#/projects/${id}/robots`, class: "active", "aria-current": "page" }, "Robot Accounts")));
  await robotsView({
    title: "New Robot Account",
    heading,
    query: () => `Level=project,ProjectID=${project.project_id}`,
    canCreate: true,
    create: async (reload) => robotDialog({
      title: "New Robot Account",
      permissions: newRobotPermissions(await grantable(), { project: project.name }),
      submit: async (box, form) => {
        const { data } = await api("POST", "/robots", {
          name: form.name,
          description: form.description,
          duration: form.duration,
          level: "project",
          permissions: form.permissions,
        });
        box.close();
        await reload();
        secretDialog("Robot account created", data, data.secret);
      },
    }),
  });
}

async function allProjects() {
  const projects = [];
  for (let page = 1; ; page += 1) {
    const { data, total } = await api("GET", `/projects?page=${page}&page_size=100`);
    projects.push(...data);
    if (!data.length || projects.length >= total) return projects;
  }
}

async function systemRobotsView() {
  await robotsView({
    title: "New System Robot Account",
    heading: h("h1", {}, "System Robot Accounts"),
    query: () => "Level=system",
    canCreate: true,
    create: async (reload) => robotDialog({
      title: "New System Robot Account",
      permissions: newRobotPermissions(await grantable(), { projects: await allProjects() }),
      submit: async (box, form) => {
        const { data } = await api("POST", "/robots", {
          name: form.name,
          description: form.description,
          duration: form.duration,
          level: "system",
          permissions: form.permissions,
        });
        box.close();
        await reload();
        secretDialog("Robot account created", data, data.secret);
      },
    }),
  });
}

// ---- robot federation: a robot's rules, warnings, refused logins and secret login ---------

// Patterns are entered one per line: no pattern holds a control character (the API refuses
// them), so a line break cannot be part of one.
function patternLines(text) {
  return text.split("\n").map((line) => line.trim()).filter((line) => line !== "");
}

function claimRow(key, patterns, onRemove) {
  const list = Array.isArray(patterns) ? patterns : (patterns ? [patterns] : []);
  const keyInput = h("input", {
    type: "text", class: "claim-key", "aria-label": "Claim", value: key, autocomplete: "off",
    spellcheck: "false", placeholder: "e.g. repository_owner_id",
  });
  const patternBox = h("textarea", {
    class: "claim-patterns", "aria-label": "Pattern(s)", rows: String(Math.max(1, list.length)),
    spellcheck: "false", placeholder: "one per line: exact or a glob (*, ?, [...])",
  }, list.join("\n"));
  const element = h("div", { class: "claim-row" },
    keyInput, h("span", { class: "muted", "aria-hidden": "true" }, "="), patternBox,
    h("button", { type: "button", class: "danger", "aria-label": "Remove claim", onclick: () => onRemove(row) }, "Remove"));
  const row = { element, key: () => keyInput.value.trim(), patterns: () => patternLines(patternBox.value) };
  return row;
}

// One rule as a fieldset: its issuer (the box suggests the names in #issuer-names) and its
// claim rows.
function ruleEditor(rule, onRemove) {
  const rows = [];
  const claimHolder = h("div", { class: "claims" });
  const legend = h("legend", {});
  const issuer = h("input", {
    type: "text", class: "rule-issuer", list: "issuer-names", value: rule.issuer || "",
    autocomplete: "off", spellcheck: "false",
  });
  const removeRow = (row) => {
    rows.splice(rows.indexOf(row), 1);
    row.element.remove();
  };
  const addRow = (key, patterns) => {
    const row = claimRow(key, patterns, removeRow);
    rows.push(row);
    claimHolder.append(row.element);
    return row;
  };
  for (const [key, patterns] of Object.entries(rule.claims || {})) addRow(key, patterns);
  if (!rows.length) addRow("", []);
  const issuerLabel = h("label", {}, "Issuer", issuer);
  const element = h("fieldset", { class: "entry rule" },
    legend, issuerLabel,
    h("div", { class: "claim-head muted", "aria-hidden": "true" }, h("span", {}, "Claim"), h("span", {}), h("span", {}, "Pattern(s), one per line")),
    claimHolder,
    h("div", { class: "toolbar rule-actions" },
      h("button", { type: "button", onclick: () => addRow("", []).element.querySelector("input").focus() }, "Add Claim"),
      h("span", { class: "grow" }),
      h("button", { type: "button", class: "danger", onclick: () => onRemove(editor) }, "Remove Rule")));
  const editor = {
    element,
    number: (n) => { legend.textContent = rule.id ? `Rule ${n} (id ${rule.id})` : `Rule ${n} (new)`; },
    value: (n) => {
      const name = issuer.value.trim();
      if (!name) throw new Error(`Rule ${n}: give its issuer.`);
      const claims = {};
      for (const row of rows) {
        const key = row.key();
        const patterns = row.patterns();
        if (!key && !patterns.length) continue;
        if (!key) throw new Error(`Rule ${n}: a claim row has patterns but no claim.`);
        if (!patterns.length) throw new Error(`Rule ${n}: claim ${key} needs a pattern.`);
        // The same claim in two rows takes any of their patterns, as the command line does.
        const had = claims[key] === undefined ? [] : [].concat(claims[key]);
        const all = [...new Set([...had, ...patterns])];
        claims[key] = all.length === 1 ? all[0] : all;
      }
      if (!Object.keys(claims).length) throw new Error(`Rule ${n}: add at least one claim.`);
      return { issuer: name, claims };
    },
  };
  return editor;
}

function warningsBox(warnings) {
  if (!warnings.length) return h("div", { id: "federation-warnings", hidden: true });
  return h("div", { id: "federation-warnings", class: "warnings", role: "status" },
    h("strong", {}, warnings.length === 1 ? "Warning" : `${warnings.length} warnings`),
    h("ul", {}, warnings.map((w) => h("li", {}, w))));
}

function rulesSection(robot, federation, onSaved) {
  const editors = [];
  const holder = h("div", {});
  const empty = h("p", { class: "muted", id: "no-rules" },
    "No rules: only the robot's secret logs it in.");
  const error = h("p", { class: "error", role: "alert", id: "rules-error" });
  const notice = h("p", { class: "muted", id: "rules-notice", "aria-live": "polite" });
  let warnings = warningsBox(federation.warnings || []);
  const renumber = () => {
    editors.forEach((editor, i) => editor.number(i + 1));
    empty.hidden = editors.length > 0;
  };
  const remove = (editor) => {
    editors.splice(editors.indexOf(editor), 1);
    editor.element.remove();
    renumber();
  };
  const add = (rule) => {
    const editor = ruleEditor(rule, remove);
    editors.push(editor);
    holder.append(editor.element);
    renumber();
    return editor;
  };
  const show = (rules) => {
    editors.splice(0).forEach((editor) => editor.element.remove());
    rules.forEach(add);
    renumber();
  };
  show(federation.rules || []);
  const save = h("button", { type: "button", class: "primary", id: "save-rules" }, "Save Rules");
  save.addEventListener("click", async () => {
    save.disabled = true;
    error.textContent = "";
    notice.textContent = "";
    try {
      const rules = editors.map((editor, i) => editor.value(i + 1));
      const { data } = await api("PUT", `/robots/${robot.id}/federation`, { rules });
      show(data.rules);
      const fresh = warningsBox(data.warnings || []);
      warnings.replaceWith(fresh);
      warnings = fresh;
      notice.textContent = `Saved: ${data.rules.length} rule(s).`;
      await onSaved();
    } catch (e) {
      error.textContent = e.message;
    } finally {
      save.disabled = false;
    }
  });
  const addButton = h("button", {
    type: "button", id: "add-rule",
    onclick: () => add({ issuer: "", claims: {} }).element.querySelector("input").focus(),
  }, "Add Rule");
  return h("section", { class: "card", "aria-labelledby": "rules-heading" },
    h("h2", { id: "rules-heading" }, "Rules"),
    h("p", { class: "muted" },
      "A workload's OIDC ID token (a CI job's, a pod's) logs in as this robot when every claim of one rule " +
      "matches one of its patterns. A pattern is exact or a glob (*, ?, [...]); a dotted claim reaches a " +
      "nested one (kubernetes.io.namespace). On GitHub and GitLab, pin an id (repository_owner_id, " +
      "project_id): names can change hands."),
    warnings, empty, holder, error, notice,
    h("div", { class: "toolbar" }, addButton, h("span", { class: "grow" }), save));
}

// The secret-login section shown anew from the robot as it is now (after a switch, or a save
// of the rules, which changes what the switch allows), leaving unsaved rule edits alone.
async function refreshSecretLogin(id, canEdit) {
  const robot = (await api("GET", `/robots/${id}`)).data;
  main().querySelector("#secret-login")?.replaceWith(secretLoginSection(robot, canEdit));
}

function secretLoginSection(robot, canEdit) {
  const on = robot.secret_login !== false;
  const error = h("p", { class: "error", role: "alert", id: "secret-login-error" });
  const shown = h("p", { id: "secret-login-state" }, "Secret login: ", h("strong", {}, on ? "On" : "Off"),
    h("span", { class: "muted" }, on
      ? " (its secret logs it in)"
      : " (only its federation rules log it in: no long-lived credential exists)"));
  let button = null;
  if (canEdit && !robot.legacy) {
    const change = async (value) => {
      const current = await now(robot);
      await api("PUT", `/robots/${robot.id}`, robotBody(current, { secret_login: value }));
      await refreshSecretLogin(robot.id, canEdit);
    };
    button = h("button", { type: "button", id: "secret-login-switch", class: on ? "danger" : "" },
      on ? "Turn Secret Login Off" : "Turn Secret Login On");
    button.addEventListener("click", () => {
      if (on) {
        confirmDialog("Turn Secret Login Off",
          `Only ${robot.name}'s federation rules will log it in; its secret and the refresh tokens of secret logins stop working.`,
          "Turn Off", () => change(false));
        return;
      }
      button.disabled = true;
      error.textContent = "";
      change(true).catch((e) => { error.textContent = e.message; button.disabled = false; });
    });
  }
  return h("section", { class: "card", id: "secret-login", "aria-labelledby": "secret-login-heading" },
    h("h2", { id: "secret-login-heading" }, "Secret Login"), shown, button, error);
}

// A card listing one of the robot's recent-events endpoints (refused logins, federated
// logins), newest first, with a Refresh button.
function recentSection(robot, { id, title, note, path, label, empty, rowClass, columns }) {
  const holder = h("div", {}, h("p", { class: "muted" }, "Loading..."));
  const load = async () => {
    try {
      const { data } = await api("GET", `/robots/${robot.id}/federation/${path}`);
      const rows = data.map((item) => h("tr", { class: rowClass },
        columns.map(([, value, cls]) => h("td", { class: cls }, value(item)))));
      holder.replaceChildren(h("table", { "aria-label": label },
        h("thead", {}, h("tr", {}, columns.map(([header]) => h("th", {}, header)))),
        h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: String(columns.length), class: "muted" }, empty)))));
    } catch (e) {
      holder.replaceChildren(h("p", { class: "error" }, e.status === 403 ? `No access: ${e.message}` : e.message));
    }
  };
  load();
  return h("section", { class: "card", id, "aria-labelledby": `${id}-heading` },
    h("div", { class: "toolbar" },
      h("h2", { id: `${id}-heading`, class: "grow" }, title),
      h("button", { type: "button", "aria-label": `Refresh ${title}`, onclick: () => load() }, "Refresh")),
    h("p", { class: "muted" }, note),
    holder);
}

function failuresSection(robot) {
  return recentSection(robot, {
    id: "failures", title: "Recent Refused Logins", path: "failures", label: "Refused logins",
    note: "The newest ID tokens refused for this robot: who tried, and which claim did not match.",
    empty: "No refused logins.", rowClass: "failure",
    columns: [
      ["Time", (f) => when(f.time)], ["Issuer", (f) => f.issuer, "issuer"],
      ["Subject", (f) => f.subject, "subject"], ["Reason", (f) => f.reason, "reason"],
    ],
  });
}

function loginsSection(robot) {
  return recentSection(robot, {
    id: "logins", title: "Recent Federated Logins", path: "logins", label: "Federated logins",
    note: "The newest ID tokens this robot logged in with: which workload, from which repository, ref and commit.",
    empty: "No federated logins.", rowClass: "login",
    columns: [
      ["Time", (l) => when(l.time)], ["Issuer", (l) => l.issuer, "issuer"],
      ["Subject", (l) => l.subject, "subject"], ["Rule", (l) => String(l.rule_id), "rule"],
      ["Repository", (l) => l.repository, "repository"], ["Ref", (l) => l.ref, "ref"],
      ["Commit", (l) => l.sha.slice(0, 12), "sha"], ["Run", (l) => l.run_id, "run"],
    ],
  });
}

async function robotsLink(robot) {
  if (robot.level === "system") return "#/system-robots";
  const project = (robot.permissions || [])[0];
  if (!project) return null;
  try {
    const { data } = await api("GET", `/projects/${encodeURIComponent(project.namespace)}`);
    return `#/projects/${data.project_id}/robots`;
  } catch (e) {
    return null;
  }
}

async function federationView(id) {
  let robot;
  try {
    robot = (await api("GET", `/robots/${id}`)).data;
  } catch (e) {
    main().replaceChildren(h("section", {}, h("h1", {}, "Federation"),
      h("p", { class: "error", role: "alert", id: "federation-denied" }, e.status === 403 ? `No access: ${e.message}` : e.message)));
    return;
  }
  let federation = null;
  let denied = null; // the API's refusal to show the rules: a card says it, not a blank page
  try {
    federation = (await api("GET", `/robots/${id}/federation`)).data;
  } catch (e) {
    denied = e;
  }
  // The issuer box suggests the names its rules use and, to a system admin, every issuer's.
  const names = new Set(((federation && federation.rules) || []).map((rule) => rule.issuer));
  if (federation && state.session.sysadmin) {
    try {
      (await api("GET", "/federation/issuers")).data.forEach((issuer) => names.add(issuer.name));
    } catch (e) {
      // Suggestions only: the issuer's name can be typed.
    }
  }
  const suggestions = h("datalist", { id: "issuer-names" }, [...names].map((name) => h("option", { value: name })));
  const back = await robotsLink(robot);
  const heading = h("div", {},
    h("h1", {}, robot.name, h("span", { class: "tag" }, robot.level === "system" ? "System" : "Project")),
    h("nav", { class: "tabs", "aria-label": "Robot" },
      back ? h("a", { href: back }, "Robot Accounts") : null,
      h("a", { href: `#/robots/${id}/federation`, class: "active", "aria-current": "page" }, "Federation")));
  const sections = [];
  if (denied !== null) {
    const forbidden = denied.status === 403;
    sections.push(h("section", { class: "card", id: "federation-denied" },
      h("h2", {}, forbidden ? "No access" : "The rules could not be shown"),
      forbidden ? h("p", {}, "Only those who may update this robot see and change its federation rules.") : null,
      h("p", { class: "error" }, denied.message)));
  } else if (robot.legacy) {
    sections.push(h("p", { class: "muted" }, "A legacy robot logs in with its JWT: it cannot have federation rules."));
  } else {
    sections.push(rulesSection(robot, federation, () => refreshSecretLogin(id, true)));
  }
  sections.push(secretLoginSection(robot, denied === null));
  sections.push(failuresSection(robot));
  sections.push(loginsSection(robot));
  main().replaceChildren(h("section", { class: "federation" }, heading, sections, suggestions));
}

// ---- federation issuers (system admins) --------------------------------------------------

function issuerDialog(reload) {
  const field = (id, label, input, hint) => [h("label", { for: id }, label), input, hint ? h("p", { class: "muted hint" }, hint) : null];
  const name = h("input", { type: "text", id: "issuer-name", autocomplete: "off", spellcheck: "false" });
  const url = h("input", { type: "text", id: "issuer-url", autocomplete: "off", spellcheck: "false", placeholder: "https://token.actions.githubusercontent.com" });
  const audiences = h("textarea", { id: "issuer-audiences", rows: "2", spellcheck: "false" });
  const jwks = h("input", { type: "text", id: "issuer-jwks", autocomplete: "off", spellcheck: "false" });
  const ca = h("input", { type: "text", id: "issuer-ca", autocomplete: "off", spellcheck: "false" });
  const lifetime = h("input", { type: "number", id: "issuer-lifetime", min: "60", max: "86400", step: "1", value: "3600" });
  const body = h("form", { onsubmit: (e) => e.preventDefault() },
    field("issuer-name", "Name", name, "What rules call it: lower-case letters, digits, '.', '_', '-'."),
    field("issuer-url", "Issuer URL", url, "Compared exactly with the tokens' iss."),
    field("issuer-audiences", "Audiences", audiences, "One per line: a token's aud must be exactly one of them."),
    field("issuer-jwks", "JWKS file (optional)", jwks, "An absolute path on the server, for keys that cannot be fetched."),
    field("issuer-ca", "CA file (optional)", ca, "An absolute path on the server: the CA bundle its HTTPS server is checked against."),
    field("issuer-lifetime", "Max token lifetime (seconds)", lifetime, null));
  const add = h("button", { type: "button", class: "primary" }, "Add");
  const box = dialog("Add Issuer", body, [add]);
  box.querySelector(".actions").prepend(cancelButton(box));
  add.addEventListener("click", () => submitting(box, add, async () => {
    const seconds = Number(lifetime.value);
    if (lifetime.value.trim() === "" || !Number.isInteger(seconds)) {
      throw new Error("The max token lifetime must be a whole number of seconds.");
    }
    const request = {
      name: name.value.trim(),
      url: url.value.trim(),
      audiences: patternLines(audiences.value),
      max_token_lifetime: seconds,
    };
    if (jwks.value.trim()) request.jwks_file = jwks.value.trim();
    if (ca.value.trim()) request.ca_file = ca.value.trim();
    await api("POST", "/federation/issuers", request);
    box.close();
    await reload();
  }));
  name.focus();
}

async function issuersView() {
  const holder = h("div", {});
  const reload = async () => {
    const { data } = await api("GET", "/federation/issuers");
    const none = h("span", { class: "muted" }, "none");
    const rows = data.map((issuer) => h("tr", { "data-issuer": issuer.name },
      h("td", { class: "name" }, issuer.name),
      h("td", { class: "url" }, issuer.url),
      h("td", { class: "audiences" }, h("ul", { class: "plain" }, issuer.audiences.map((a) => h("li", {}, a)))),
      h("td", { class: "jwks" }, issuer.jwks_file || none.cloneNode(true)),
      h("td", { class: "ca" }, issuer.ca_file || none.cloneNode(true)),
      h("td", { class: "lifetime" }, `${issuer.max_token_lifetime} s`),
      h("td", {}, when(issuer.creation_time)),
      h("td", {}, h("button", {
        type: "button", class: "danger", "aria-label": `Remove issuer ${issuer.name}`,
        onclick: () => confirmDialog("Remove Issuer",
          `Stop trusting ${issuer.name} (${issuer.url})? Its tokens stop logging robots in.`, "Remove",
          async () => { await api("DELETE", `/federation/issuers/${encodeURIComponent(issuer.name)}`); await reload(); }),
      }, "Remove"))));
    holder.replaceChildren(h("table", { "aria-label": "Issuers" },
      h("thead", {}, h("tr", {},
        h("th", {}, "Name"), h("th", {}, "Issuer URL"), h("th", {}, "Audiences"), h("th", {}, "JWKS file"),
        h("th", {}, "CA file"), h("th", {}, "Max token lifetime"), h("th", {}, "Creation Time"), h("th", {}, ""))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: "8", class: "muted" }, "No issuers: no robot can log in with an ID token.")))));
  };
  main().replaceChildren(h("section", {},
    h("h1", {}, "Federation Issuers"),
    h("p", { class: "muted" },
      "The OIDC issuers whose ID tokens (GitHub Actions, GitLab CI, Kubernetes service accounts) robots' " +
      "federation rules may accept."),
    h("div", { class: "toolbar" },
      h("button", { type: "button", class: "primary", id: "add-issuer", onclick: () => issuerDialog(reload) }, "Add Issuer")),
    holder));
  await reload();
}

// ---- chrome and routing ------------------------------------------------------------------

function showChrome() {
  const logged = !!state.session;
  $("#nav").hidden = !logged;
  $("#who").hidden = !logged;
  $("#nav-system").hidden = !(logged && state.session.sysadmin);
  $("#nav-issuers").hidden = !(logged && state.session.sysadmin);
  $("#who-name").textContent = logged ? state.session.username : "";
}

async function route() {
  showAlert("");
  const hash = location.hash || "#/projects";
  if (!state.session) {
    try {
      state.session = (await call("GET", "/c/session")).data;
    } catch (e) {
      state.session = null;
    }
    showChrome();
  }
  if (!state.session) return loginView();
  if (hash === "#/login") {
    location.hash = "#/projects";
    return;
  }
  try {
    let match;
    if ((match = hash.match(/^#\/projects\/(\d+)\/robots$/))) await projectView(match[1]);
    else if ((match = hash.match(/^#\/robots\/(\d+)\/federation$/))) await federationView(match[1]);
    else if (hash === "#/system-robots" && state.session.sysadmin) await systemRobotsView();
    else if (hash === "#/federation-issuers" && state.session.sysadmin) await issuersView();
    else await projectsView();
  } catch (e) {
    showAlert(e.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#logout").addEventListener("click", async () => {
    try {
      await call("POST", "/c/log_out");
    } catch (e) {
      // Logged out either way.
    }
    state.session = null;
    state.permissions = null;
    showChrome();
    location.hash = "#/login";
    loginView("You have logged out.");
  });
  window.addEventListener("hashchange", route);
  route();
});
