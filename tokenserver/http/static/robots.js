// The robot accounts table, its action menu and the robot dialogs.
import { PAGE_SIZE, DAY, ApiError, state, h, main, showAlert, showSuccess, api, when, expiry, span, shortName, dialog, cancelButton, submitting, confirmDialog, grantable, now, robotBody, pagerControls, allProjects } from "./core.js";
import { editRobotPermissions, entrySummary, permissionCount } from "./permissions.js";
import { pullSecretForm } from "./pullsecrets.js";

export function exportFile(robot, secret) {
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

export function secretDialog(title, robot, secret) {
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
  // Next to Export to File: the same secret as a Kubernetes pull secret manifest.
  const k8sButton = h("button", { type: "button", id: "k8s-open", "aria-expanded": "false" }, "Kubernetes Secret");
  k8sButton.addEventListener("click", () => {
    let form = body.querySelector("#k8s-secret");
    if (!form) {
      form = pullSecretForm(robot, secret);
      body.append(form);
    } else form.hidden = !form.hidden;
    k8sButton.setAttribute("aria-expanded", String(!form.hidden));
    if (!form.hidden) form.querySelector("input").focus();
  });
  const box = dialog(title, body, [k8sButton, exportButton]);
  box.querySelector(".actions").prepend(h("button", { type: "button", onclick: () => box.close() }, "Close"));
  return box;
}

// The server's bound on `duration` (100 years): a later expiry is no expiry, say Never Expired.
export const MAX_DAYS = 36500;

// When the robot's current expiry period began, as the server counts it: its creation, or the
// last restart of its expiry. A PUT's `duration` counts from there, not from today.
export function periodStart(robot) {
  const created = Math.floor(Date.parse(robot.creation_time) / 1000);
  if (robot.duration === -1 || robot.expires_at === -1) return created;
  return Math.max(created, robot.expires_at - robot.duration * DAY);
}

// The expiration fields of the robot dialog. The days are counted from today, for a new robot
// and an edited one alike: an edit turns them into the `duration` (from the period's start)
// that ends that many whole days from now or a little later, never sooner. Fields left as they
// were send back the robot's own duration, which keeps its expiry to the second.
export function expirationFields(robot) {
  const nowSeconds = () => Math.floor(Date.now() / 1000);
  const current = robot ? expiry(robot) : null;
  const left = robot && current.state !== "never" ? robot.expires_at - nowSeconds() : 0;
  // An edited robot shows the whole days it has left (as the list does); under a day or
  // expired, none: the preview says when it ends.
  const initialDays = !robot ? "30" : left >= DAY ? String(Math.floor(left / DAY)) : "";
  const initialNever = robot ? robot.duration === -1 : false;
  const days = h("input", {
    type: "number", id: "robot-days", min: "1", max: String(MAX_DAYS), step: "1",
    value: initialNever ? "" : initialDays, disabled: initialNever, "aria-describedby": "robot-expiry-preview",
  });
  const neverBox = h("input", { type: "checkbox", id: "robot-never", checked: initialNever });
  const preview = h("p", { class: "hint", id: "robot-expiry-preview", "aria-live": "polite" });
  const unchanged = () => robot && neverBox.checked === initialNever && (initialNever || days.value === initialDays);
  const chosenDays = () => {
    // The save button does not submit the form, so the browser's own min/max check never runs.
    const value = Number(days.value);
    if (days.value.trim() === "" || !Number.isInteger(value) || value < 1 || value > MAX_DAYS) {
      throw new Error(`The expiration time must be a whole number of days from 1 to ${MAX_DAYS} (or Never Expired).`);
    }
    return value;
  };
  // The duration to send and the expiry it gives (Unix seconds, -1 for never).
  const outcome = () => {
    if (neverBox.checked) return { duration: -1, expiresAt: -1 };
    if (unchanged()) return { duration: robot.duration, expiresAt: robot.expires_at };
    const wanted = chosenDays();
    const now = nowSeconds();
    if (!robot) return { duration: wanted, expiresAt: now + wanted * DAY };
    const start = periodStart(robot);
    const elapsed = Math.max(0, Math.ceil((now - start) / DAY));
    const duration = elapsed + wanted;
    if (duration > MAX_DAYS) {
      throw new Error(`This robot's expiry counts from ${new Date(start * 1000).toLocaleDateString()}: ` +
        `it can end at most ${MAX_DAYS - elapsed} days from now (or choose Never Expired).`);
    }
    return { duration, expiresAt: start + duration * DAY };
  };
  const update = () => {
    days.disabled = neverBox.checked;
    preview.classList.remove("error");
    let result;
    try {
      result = outcome();
    } catch (e) {
      preview.textContent = e.message;
      preview.classList.add("error");
      return;
    }
    if (result.expiresAt === -1) {
      preview.textContent = "Never expires.";
      return;
    }
    const shown = expiry({ expires_at: result.expiresAt, duration: result.duration });
    preview.textContent = shown.state === "expired"
      ? `Expired on ${shown.exact}: enter a number of days to renew it.`
      : `Expires on ${shown.exact} (${shown.text.replace(/^expires /, "")}).`;
  };
  neverBox.addEventListener("change", () => {
    if (!neverBox.checked && days.value === "") days.value = "30";
    update();
  });
  days.addEventListener("input", update);
  update();
  return {
    element: h("div", {},
      h("label", { for: "robot-days" }, "Expiration time (days)"), days,
      h("label", { class: "inline" }, neverBox, "Never Expired"),
      preview),
    duration: () => outcome().duration,
  };
}

const UNITS = [["seconds", 1], ["minutes", 60], ["hours", 3600], ["days", 86400]];

// 5400 -> "1 h 30 min".
export function lifetimeText(seconds) {
  const parts = [];
  let rest = seconds;
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]]) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)} ${unit}`);
      rest %= size;
    }
  }
  return parts.join(" ") || "0 s";
}

// The robot's own token lifetime: empty for the server's (token.lifetime). Its value is what
// the request carries: nothing when unchanged (a PUT without it keeps the robot's), 0 to clear
// it, else seconds.
export function lifetimeFields(robot) {
  const own = robot && robot.token_lifetime ? robot.token_lifetime : null;
  const [, size] = own ? [...UNITS].reverse().find(([, n]) => own % n === 0) : UNITS[1];
  const amount = h("input", {
    type: "number", id: "robot-token-lifetime", min: "1", step: "1",
    value: own ? String(own / size) : "", placeholder: "the server's default",
  });
  const unit = h("select", { id: "robot-token-unit", "aria-label": "Token lifetime unit" },
    UNITS.map(([name, n]) => h("option", { value: String(n), selected: n === size }, name)));
  const shown = h("p", { class: "muted hint", id: "robot-token-effective", "aria-live": "polite" });
  const session = state.session || {};
  const fallback = robot && !own ? robot.effective_token_lifetime : session.token_lifetime;
  const max = session.token_max_lifetime;
  const seconds = () => {
    const text = amount.value.trim();
    if (!text) return null;
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1) throw new Error("The token lifetime must be a whole number (or empty for the server's default).");
    return value * Number(unit.value);
  };
  // The server's bounds, said as soon as a value leaves them. A robot's own value left as it
  // was is kept, even above a lowered token.max_lifetime (its tokens are capped).
  const outOfRange = (value) => value !== null && value !== own && (value < 60 || (max && value > max))
    ? `The token lifetime must be from 1 minute${max ? ` to ${lifetimeText(max)}` : ""}, or empty for the server's default.`
    : null;
  const update = () => {
    let value;
    shown.classList.remove("error");
    try {
      value = seconds();
      const problem = outOfRange(value);
      if (problem) throw new Error(problem);
    } catch (e) {
      shown.textContent = e.message;
      shown.classList.add("error");
      return;
    }
    if (value === null) {
      shown.textContent = fallback ? `Tokens last ${lifetimeText(fallback)}, the server's default.` : "Tokens last the server's default lifetime.";
    } else if (value === own && robot.effective_token_lifetime < own) {
      shown.textContent = `Tokens last ${lifetimeText(robot.effective_token_lifetime)}: ${lifetimeText(own)}, capped at the server's maximum.`;
    } else {
      shown.textContent = `Tokens last ${lifetimeText(value)}.`;
    }
  };
  amount.addEventListener("input", update);
  unit.addEventListener("change", update);
  update();
  return {
    element: h("div", {},
      h("label", { for: "robot-token-lifetime" }, "Token lifetime (optional)"),
      h("div", { class: "lifetime" }, amount, unit),
      shown),
    value: () => {
      const value = seconds();
      if (value === own) return undefined;
      const problem = outOfRange(value);
      if (problem) throw new Error(problem);
      if (value === null) return robot ? 0 : undefined;
      return value;
    },
  };
}

export async function robotDialog({ title, robot, permissions, submit }) {
  const name = h("input", { type: "text", id: "robot-name", required: true, value: robot ? shortName(robot) : "", disabled: !!robot, autocomplete: "off" });
  const description = h("textarea", { id: "robot-description", rows: "2" }, robot ? robot.description : "");
  const expiration = expirationFields(robot);
  const lifetime = lifetimeFields(robot);
  const body = h("form", { onsubmit: (e) => e.preventDefault() },
    h("label", { for: "robot-name" }, "Name"), name,
    h("label", { for: "robot-description" }, "Description (optional)"), description,
    expiration.element,
    lifetime.element,
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
      token_lifetime: lifetime.value(),
      permissions: chosen,
    });
  }));
  name.focus();
}

// An expired robot cannot log in, whatever its switch says: it is not shown as Enabled.
function status(robot, expires) {
  if (robot.disable) return h("td", { class: "status disabled" }, "Disabled");
  if (expires.state === "expired") return h("td", { class: "status expired", title: `Expired on ${expires.exact}` }, "Expired");
  return h("td", { class: "status enabled" }, "Enabled");
}

export function robotTable(robots, selected, onSelect) {
  const rows = robots.map((robot) => {
    const id = `select-${robot.id}`;
    const box = h("input", {
      type: "checkbox", id, "aria-label": `Select ${robot.name}`, checked: selected === robot.id,
      onchange: (e) => onSelect(e.target.checked ? robot.id : null),
    });
    const permissions = h("button", {
      type: "button", class: "link permissions", onclick: () => permissionsDialog(robot),
    }, permissionCount(robot));
    const expires = expiry(robot);
    return h("tr", { "data-robot": robot.name },
      h("td", {}, box),
      h("td", { class: "name" }, robot.name, robot.legacy ? h("span", { class: "tag legacy" }, "Legacy") : null,
        robot.previous_secret_expires_at ? h("span", {
          class: "tag previous-secret", title: new Date(robot.previous_secret_expires_at * 1000).toLocaleString(),
        }, `Old secret: ${span(robot.previous_secret_expires_at - Date.now() / 1000) || "under a minute"} left`) : null,
        robot.secret_login === false ? h("span", { class: "tag federated" }, "Federation only") : null),
      status(robot, expires),
      h("td", {}, permissions),
      h("td", {}, when(robot.creation_time)),
      h("td", { class: `expires ${expires.state}` },
        h("time", { datetime: expires.date ? expires.date.toISOString() : null, title: expires.exact }, expires.text)),
      h("td", { class: "description" }, robot.description),
      h("td", {}, robot.last_used_at ? when(robot.last_used_at) : h("span", { class: "muted" }, "Never")));
  });
  return h("table", { class: "robots", "aria-label": "Robot accounts" },
    h("thead", {}, h("tr", {},
      h("th", {}, h("span", { class: "muted" }, "")), h("th", {}, "Name"), h("th", {}, "Status"),
      h("th", {}, "Permissions"), h("th", {}, "Creation Time"), h("th", {}, "Expires"),
      h("th", {}, "Description"), h("th", {}, "Last Used"))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: "8", class: "muted" }, "No robot accounts."))));
}

// The list's permissions: read only, each entry's patterns and grid, in a dialog.
export function permissionsDialog(robot) {
  const held = robot.permissions || []; // an empty list is left out, as Harbor does
  const body = h("div", { class: "permission-summary" },
    held.length ? held.map((p) => entrySummary(p, robot.level)) : h("p", { class: "muted" }, "No permissions."));
  const box = dialog(`Permissions of ${robot.name}`, body, []);
  box.querySelector(".actions").append(h("button", { type: "button", class: "primary", onclick: () => box.close() }, "Close"));
  return box;
}

export function actionMenu(getRobot, handlers) {
  const list = h("div", { role: "menu", hidden: true });
  const button = h("button", { type: "button", "aria-haspopup": "menu", "aria-expanded": "false", id: "action" }, "Action ▾");
  const element = h("div", { class: "menu" }, button, list);
  // A click anywhere else closes the menu, as Escape does.
  const outside = (e) => { if (!element.contains(e.target)) close(); };
  const close = () => {
    list.hidden = true;
    button.setAttribute("aria-expanded", "false");
    document.removeEventListener("click", outside, true);
  };
  button.addEventListener("click", () => {
    const robot = getRobot();
    if (!robot) return;
    if (!list.hidden) return close();
    list.replaceChildren();
    const items = robot.legacy
      ? ["Disable", "Enable", "Delete"]
      : ["Edit", "Disable", "Enable", "Delete", "Refresh Secret",
        ...(robot.previous_secret_expires_at ? ["Revoke Previous Secret"] : []), "Federation"];
    for (const label of items.filter((item) => handlers[item])) {
      const disabled = (label === "Disable" && robot.disable) || (label === "Enable" && !robot.disable);
      list.append(h("button", {
        type: "button", role: "menuitem", disabled,
        // The hidden item cannot hold the focus: the menu's button takes it, and gets it back
        // when the dialog the item opens closes.
        onclick: () => { close(); button.focus(); handlers[label](robot); },
      }, label));
    }
    list.hidden = false;
    button.setAttribute("aria-expanded", "true");
    document.addEventListener("click", outside, true);
    list.querySelector("[role=menuitem]:not(:disabled)")?.focus();
  });
  element.addEventListener("keydown", (e) => {
    if (list.hidden) return;
    const items = [...list.querySelectorAll("[role=menuitem]:not(:disabled)")];
    const index = items.indexOf(document.activeElement);
    if (e.key === "Escape") { e.preventDefault(); close(); button.focus(); }
    if (e.key === "ArrowDown") { e.preventDefault(); items[(index + 1) % items.length]?.focus(); }
    if (e.key === "ArrowUp") { e.preventDefault(); items[(index - 1 + items.length) % items.length]?.focus(); }
  });
  return { element, button };
}

// The grace period a refresh may keep the previous secret for: at most 30 days (the API's).
const MAX_KEEP_SECONDS = 30 * DAY;
const KEEP_UNITS = [["hours", 3600], ["days", DAY]];

export function refreshDialog(robot, reload) {
  const manual = h("input", { type: "checkbox", id: "manual-secret" });
  const secret = h("input", { type: "password", id: "new-secret", autocomplete: "new-password", disabled: true });
  const confirm = h("input", { type: "password", id: "confirm-secret", autocomplete: "new-password", disabled: true });
  manual.addEventListener("change", () => { secret.disabled = confirm.disabled = !manual.checked; });
  const keep = h("input", { type: "number", id: "keep-previous", min: "0", step: "1", placeholder: "0", "aria-describedby": "keep-previous-said" });
  const unit = h("select", { id: "keep-previous-unit", "aria-label": "Unit" },
    KEEP_UNITS.map(([label, seconds]) => h("option", { value: String(seconds) }, label)));
  const said = h("p", { class: "muted hint", id: "keep-previous-said", "aria-live": "polite" });
  // Seconds to keep the previous secret for; null when the field says something else.
  const keepSeconds = () => {
    const text = keep.value.trim();
    if (text === "") return 0;
    const value = Number(text);
    if (!Number.isInteger(value) || value < 0) return null;
    const seconds = value * Number(unit.value);
    return seconds <= MAX_KEEP_SECONDS ? seconds : null;
  };
  const explain = () => {
    const seconds = keepSeconds();
    said.classList.toggle("error", seconds === null);
    if (seconds === null) said.textContent = "At most 30 days (720 hours), in whole hours or days.";
    else if (seconds === 0) said.textContent = "The old secret stops working at once.";
    else said.textContent = `The old secret keeps working until ${new Date(Date.now() + seconds * 1000).toLocaleString()}, then stops; Revoke Previous Secret ends it sooner.`;
  };
  keep.addEventListener("input", explain);
  unit.addEventListener("change", explain);
  explain();
  const body = h("form", { onsubmit: (e) => e.preventDefault() },
    h("p", {}, `A new secret for ${robot.name}.`),
    h("label", { for: "keep-previous" }, "Keep the old secret working for"),
    h("div", { class: "lifetime" }, keep, unit),
    said,
    h("label", { class: "inline" }, manual, "Manually reset the secret"),
    h("label", { for: "new-secret" }, "New Secret"), secret,
    h("label", { for: "confirm-secret" }, "Confirm Secret"), confirm,
    h("p", { class: "muted" }, "8 to 128 characters, with at least one uppercase letter, one lowercase letter and one number."));
  const refresh = h("button", { type: "button", class: "primary" }, "Refresh");
  const box = dialog("Refresh Secret", body, [refresh]);
  box.querySelector(".actions").prepend(cancelButton(box));
  refresh.addEventListener("click", () => submitting(box, refresh, async () => {
    const seconds = keepSeconds();
    if (seconds === null) throw new Error("Keep the old secret for at most 30 days (720 hours), in whole hours or days.");
    const request = seconds ? { keep_previous_for: seconds } : {};
    if (manual.checked) {
      if (secret.value !== confirm.value) throw new Error("The secrets do not match.");
      if (!/^(?=.*[a-z])(?=.*[A-Z])(?=.*\d).{8,128}$/.test(secret.value)) {
        throw new Error("The secret must be 8-128 characters long with at least 1 uppercase letter, 1 lowercase letter and 1 number.");
      }
      request.secret = secret.value;
    }
    const { data } = await api("PATCH", `/robots/${robot.id}`, request);
    box.close();
    await reload();
    const kept = data.previous_secret_expires_at
      ? ` The old one works until ${new Date(data.previous_secret_expires_at * 1000).toLocaleString()}.` : "";
    if (!manual.checked) {
      showSuccess(`Refreshed the secret of ${robot.name}.${kept}`);
      secretDialog("Secret refreshed", robot, data.secret);
    } else showSuccess(`The secret of ${robot.name} was changed.${kept}`);
  }));
}

// What the caller may do with the robot accounts of `scope` ("/project/<id>" or "/system"), as
// Harbor's page asks. The page hides what would be refused; the server still decides.
export async function robotRights(scope) {
  const { data } = await api("GET", `/users/current/permissions?scope=${encodeURIComponent(scope)}&relative=true`);
  const held = new Set((data || []).filter((p) => p.resource === "robot").map((p) => p.action));
  const webhooks = (data || []).some((p) => p.resource === "notification-policy" && p.action === "list");
  return {
    list: held.has("list"), read: held.has("read"), create: held.has("create"),
    update: held.has("update"), delete: held.has("delete"), webhooks,
  };
}

// The rights an action of the menu needs. Federation opens the robot's federation page, which
// shows its secret login to whoever may read the robot (and the rules to whoever may update it).
const NEEDS = {
  Edit: "update", Disable: "update", Enable: "update", "Refresh Secret": "update",
  "Revoke Previous Secret": "update", Delete: "delete", Federation: "read",
};

// A 403 before anything is shown: the caller may not list these robots.
export function requireList(rights, what) {
  if (!rights.list) throw new ApiError(403, `You may not see ${what}.`);
}

export async function robotsView({ title, query, rights, create, heading }) {
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
  const handlers = {
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
            token_lifetime: form.token_lifetime,
          }));
          box.close();
          await reload();
          showSuccess(`Saved ${robot.name}.`);
        },
      });
    })().catch(fail),
    Disable: (listed) => now(listed).then((robot) => api("PUT", `/robots/${robot.id}`, robotBody(robot, { disable: true }))).then(reload)
      .then(() => showSuccess(`Disabled ${listed.name}.`)).catch(fail),
    Enable: (listed) => now(listed).then((robot) => api("PUT", `/robots/${robot.id}`, robotBody(robot, { disable: false }))).then(reload)
      .then(() => showSuccess(`Enabled ${listed.name}.`)).catch(fail),
    Delete: (robot) => confirmDialog("Delete Robot Account", `Delete ${robot.name}? Anything using its secret stops working.`, "Delete", async () => {
      await api("DELETE", `/robots/${robot.id}`);
      selected = null;
      await reload();
      showSuccess(`Deleted ${robot.name}.`);
    }),
    "Refresh Secret": (robot) => refreshDialog(robot, reload),
    "Revoke Previous Secret": (robot) => confirmDialog("Revoke Previous Secret",
      `End ${robot.name}'s old secret now? Anything still using it (and its refresh tokens) stops working; the current secret is kept.`,
      "Revoke", async () => {
        await api("DELETE", `/robots/${robot.id}/previous-secret`);
        await reload();
        showSuccess(`Revoked the old secret of ${robot.name}.`);
      }),
    Federation: (robot) => { location.hash = `#/robots/${robot.id}/federation`; },
  };
  for (const label of Object.keys(handlers)) if (!rights[NEEDS[label]]) delete handlers[label];
  const menu = actionMenu(current, handlers);
  menu.button.disabled = true;
  let timer = null;
  searchBox.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { search = searchBox.value.trim(); page = 1; reload().catch(fail); }, 250);
  });
  const newButton = rights.create
    ? h("button", { type: "button", class: "primary", id: "new-robot", onclick: () => create(reload).catch(fail) }, title)
    : null;
  const view = h("section", {},
    heading,
    h("div", { class: "toolbar" }, newButton, Object.keys(handlers).length ? menu.element : null, h("span", { class: "grow" }), searchBox),
    tableHolder, pager);
  main().replaceChildren(view);
  await reload();
}
