// Robot federation (a robot's rules, refused and federated logins, secret login) and the issuers page.
import { state, h, main, api, when, setTitle, showSuccess, dialog, cancelButton, submitting, confirmDialog, now, robotBody } from "./core.js";

// Patterns are entered one per line: no pattern holds a control character (the API refuses
// them), so a line break cannot be part of one.
export function patternLines(text) {
  return text.split("\n").map((line) => line.trim()).filter((line) => line !== "");
}

export function claimRow(key, patterns, onRemove) {
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
export function ruleEditor(rule, onRemove) {
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

export function warningsBox(warnings) {
  if (!warnings.length) return h("div", { id: "federation-warnings", hidden: true });
  return h("div", { id: "federation-warnings", class: "warnings", role: "status" },
    h("strong", {}, warnings.length === 1 ? "Warning" : `${warnings.length} warnings`),
    h("ul", {}, warnings.map((w) => h("li", {}, w))));
}

export function rulesSection(robot, federation, onSaved) {
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
export async function refreshSecretLogin(id, canEdit) {
  const robot = (await api("GET", `/robots/${id}`)).data;
  main().querySelector("#secret-login")?.replaceWith(secretLoginSection(robot, canEdit));
}

export function secretLoginSection(robot, canEdit) {
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
      showSuccess(`Secret login of ${robot.name} turned ${value ? "on" : "off"}.`);
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
export function recentSection(robot, { id, title, note, path, label, empty, rowClass, columns }) {
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

export function failuresSection(robot) {
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

export function loginsSection(robot) {
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

export async function robotsLink(robot) {
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

export async function federationView(id) {
  let robot;
  try {
    robot = (await api("GET", `/robots/${id}`)).data;
    setTitle("Federation", robot.name);
  } catch (e) {
    if (e.status === 403 || e.status === 404) throw e; // the page's No access / Not found
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

export function issuerDialog(reload) {
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
    showSuccess(`Added issuer ${request.name}.`);
  }));
  name.focus();
}

export async function issuersView() {
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
          async () => {
            await api("DELETE", `/federation/issuers/${encodeURIComponent(issuer.name)}`);
            await reload();
            showSuccess(`Removed issuer ${issuer.name}.`);
          }),
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
