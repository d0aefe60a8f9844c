// Permission entries as the robot dialogs edit and show them: Harbor's grid (resources as rows,
// actions as columns), presets, repository patterns as chips, and several rules per project.
import { h } from "./core.js";

export function permissionLabel(access) {
  return `${access.action} ${access.resource}` + (access.effect === "deny" ? " (deny)" : "");
}

export const accessKey = (a) => `${a.resource}:${a.action}`;

export function namespaceLabel(permission) {
  if (permission.kind === "system") return "System";
  return permission.namespace === "*" ? "All projects" : `Project ${permission.namespace}`;
}

export function entryName(permission) {
  if (permission.kind === "system") return "the system permissions";
  return permission.namespace === "*" ? "all projects" : `project ${permission.namespace}`;
}

export function entryLegend(permission) {
  if (permission.kind === "system") return "System permissions";
  return permission.namespace === "*" ? "Permissions on all projects" : `Permissions on project ${permission.namespace}`;
}

// An entry whose every permission is a deny is edited as a deny rule: its boxes deny.
export const effectOf = (permission) =>
  permission.access.length && permission.access.every((a) => a.effect === "deny") ? "deny" : "allow";

let counter = 0;
const uid = (what) => `${what}-${counter++}`;
const title = (key) => {
  const text = key.replace(/-/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
};

// Actions in the order a reader expects them; others after, alphabetically.
const ACTION_ORDER = ["pull", "push", "read", "list", "create", "update", "delete", "stop"];

// Rows and columns for a list of {resource, action}: resources in the server's order with
// repository first, actions in ACTION_ORDER.
export function gridShape(pairs) {
  const resources = [];
  const actions = [];
  for (const p of pairs) {
    if (!resources.includes(p.resource)) resources.push(p.resource);
    if (!actions.includes(p.action)) actions.push(p.action);
  }
  resources.sort((a, b) => (b === "repository") - (a === "repository"));
  const rank = (a) => (ACTION_ORDER.includes(a) ? ACTION_ORDER.indexOf(a) : ACTION_ORDER.length);
  actions.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return { resources, actions };
}

const pairs = (...list) => list.map(([resource, action]) => ({ resource, action }));

// Presets for a project entry. "Harbor's robot set" is the ten permissions Harbor's robot page
// offered before 2.8; its three Helm chart ones went with ChartMuseum (a chart is an OCI
// repository now: push and pull cover it), so only those the grid offers are set.
export const PRESETS = [
  { name: "Pull", access: pairs(["repository", "pull"]) },
  { name: "Push and pull", access: pairs(["repository", "pull"], ["repository", "push"]) },
  {
    name: "Harbor's robot set",
    access: pairs(["repository", "pull"], ["repository", "push"], ["artifact", "delete"],
      ["helm-chart", "read"], ["helm-chart-version", "create"], ["helm-chart-version", "delete"],
      ["tag", "create"], ["tag", "delete"], ["artifact-label", "create"], ["scan", "create"]),
  },
];

// Harbor's grid for one entry's boxes: a checkbox where the pair exists, a box per row and per
// column that selects all of it, "Select all", presets and an "N selected" count.
function permissionGrid(offered, chosen, { effect, presets }) {
  const { resources, actions } = gridShape(offered);
  const exists = new Set(offered.map(accessKey));
  const boxes = new Map();
  const rowBoxes = new Map();
  const columnBoxes = new Map();
  const verb = effect === "deny" ? "deny " : "";
  const count = h("span", { class: "count", "aria-live": "polite" });
  const all = h("button", { type: "button", class: "small" }, "Select all");
  const usable = presets.filter((p) => p.access.some((a) => exists.has(accessKey(a))));
  const preset = usable.length
    ? h("select", { "aria-label": "Preset" },
      h("option", { value: "" }, "Custom"),
      usable.map((p, i) => h("option", { value: String(i) }, p.name)))
    : null;
  const members = (keys) => keys.map((key) => boxes.get(key)).filter(Boolean);
  const mark = (box, group) => {
    const on = group.filter((b) => b.checked).length;
    box.checked = on > 0 && on === group.length;
    box.indeterminate = on > 0 && on < group.length;
  };
  const sync = () => {
    for (const [resource, box] of rowBoxes) mark(box, members(actions.map((a) => `${resource}:${a}`)));
    for (const [action, box] of columnBoxes) mark(box, members(resources.map((r) => `${r}:${action}`)));
    const checked = [...boxes.entries()].filter(([, box]) => box.checked).map(([key]) => key);
    count.textContent = `${checked.length} selected`;
    all.textContent = checked.length === boxes.size ? "Unselect all" : "Select all";
    if (preset) {
      const same = (p) => {
        const keys = new Set(p.access.map(accessKey).filter((key) => exists.has(key)));
        return keys.size === checked.length && checked.every((key) => keys.has(key));
      };
      const index = usable.findIndex(same);
      preset.value = index < 0 ? "" : String(index);
    }
  };
  const setAll = (group, value) => {
    group.forEach((box) => { box.checked = value; });
    sync();
  };
  const groupBox = (label, group) => {
    const box = h("input", { type: "checkbox", "aria-label": label });
    box.addEventListener("change", () => setAll(group(), box.checked));
    return box;
  };
  const head = h("tr", {}, h("th", { scope: "col" }, "Resource"), actions.map((action) => {
    const box = groupBox(`Every ${verb}${action} permission`, () => members(resources.map((r) => `${r}:${action}`)));
    columnBoxes.set(action, box);
    return h("th", { scope: "col" }, h("label", { class: "inline" }, box, title(action)));
  }));
  const rows = resources.map((resource) => {
    const box = groupBox(`Every ${verb}${resource} permission`, () => members(actions.map((a) => `${resource}:${a}`)));
    rowBoxes.set(resource, box);
    return h("tr", { "data-resource": resource },
      h("th", { scope: "row" }, h("label", { class: "inline" }, box, title(resource))),
      actions.map((action) => {
        const key = `${resource}:${action}`;
        if (!exists.has(key)) return h("td", {});
        const cell = h("input", { type: "checkbox", value: key, "aria-label": `${verb}${action} ${resource}`, checked: chosen.has(key) });
        cell.addEventListener("change", sync);
        boxes.set(key, cell);
        return h("td", {}, cell);
      }));
  });
  all.addEventListener("click", () => setAll([...boxes.values()], all.textContent === "Select all"));
  if (preset) {
    preset.addEventListener("change", () => {
      const chosenPreset = usable[Number(preset.value)];
      if (!chosenPreset) return sync();
      const keys = new Set(chosenPreset.access.map(accessKey));
      for (const [key, box] of boxes) box.checked = keys.has(key);
      sync();
    });
  }
  const element = h("div", { class: "grid" },
    h("div", { class: "grid-tools" }, preset ? h("label", { class: "inline" }, "Preset", preset) : null, all, count),
    h("div", { class: "grid-scroll" },
      h("table", { class: "permission-grid" }, h("thead", {}, head), h("tbody", {}, rows))));
  sync();
  return {
    element,
    checked: () => new Set([...boxes.entries()].filter(([, box]) => box.checked).map(([key]) => key)),
  };
}

// ---- Repository patterns ------------------------------------------------------------------

// What an entry without patterns reaches: on `*`, each project's repositories; a new system
// robot's rules (no namespace yet) are copied to each project chosen.
const everyRepository = (namespace) =>
  `every repository of ${namespace === "*" ? "every project" : namespace ? "the project" : "each project chosen"}`;
const capital = (text) => text.charAt(0).toUpperCase() + text.slice(1);

export const MAX_PATTERNS = 64;
const MAX_PATTERN_LENGTH = 255;
// distribution's path component, lower case.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const quoted = (text) => `'${text.length <= 80 ? text : text.slice(0, 80) + "..."}'`;

// The server's check of one pattern, so that a bad one is named before anything is sent.
export function patternError(pattern) {
  const shown = quoted(pattern);
  if (!pattern) return "A repository pattern must not be empty.";
  if (pattern.length > MAX_PATTERN_LENGTH) return `Repository pattern ${shown} is longer than ${MAX_PATTERN_LENGTH} characters.`;
  const segments = pattern.split("/");
  for (const [i, segment] of segments.entries()) {
    if (!segment) return `Repository pattern ${shown} has an empty path segment (a leading, trailing or doubled '/'); patterns are relative to the project.`;
    if (segment === "." || segment === "..") return `Repository pattern ${shown} holds '${segment}': name the repositories.`;
    if (segment === "**") {
      if (i !== segments.length - 1) return `Repository pattern ${shown}: '**' may only be the last segment.`;
      continue;
    }
    if (segment === "*") continue;
    if (segment.toLowerCase() !== segment) return `Repository pattern ${shown} holds upper case: repository names are lower case.`;
    if (!COMPONENT.test(segment)) {
      return `Repository pattern ${shown}: segment ${quoted(segment)} is neither a repository name component ` +
        "(lower-case letters and digits, separated by '.', '_', '__' or dashes) nor '*' nor a final '**'.";
    }
  }
  return null;
}

// What a pattern reaches, by example: `team-a/*` matches team-a/app, not team-a/x/app.
export function explainPattern(pattern) {
  if (pattern === "**") return "matches every repository";
  const segments = pattern.split("/");
  const tail = segments[segments.length - 1] === "**";
  const fixed = tail ? segments.slice(0, -1) : segments;
  const last = fixed.length - 1;
  const example = fixed.map((s, i) => (s !== "*" ? s : i === last && !tail ? "app" : "team"));
  if (tail) {
    const base = example.join("/");
    return `matches ${base}/app and ${base}/x/app, not ${base}`;
  }
  if (!fixed.includes("*")) return `matches ${pattern} only`;
  const at = fixed.lastIndexOf("*");
  const deeper = [...example.slice(0, at), "x", ...example.slice(at)].join("/");
  return `matches ${example.join("/")}, not ${deeper}`;
}

function patternChip(pattern, remove) {
  return h("li", { class: "chip", "data-pattern": pattern },
    h("code", {}, pattern),
    remove ? h("button", { type: "button", class: "remove", "aria-label": `Remove ${pattern}`, onclick: remove }, "×") : null,
    h("span", { class: "example" }, explainPattern(pattern)));
}

// The chips of one entry's `repositories`. Its value is what the entry sends: the list it was
// given when unchanged (absent stays absent), `["**"]` when every pattern was removed (a PUT
// without the field would keep the stored ones), else the chips.
function patternEditor(initial, namespace) {
  let chips = initial ? [...initial] : [];
  const id = uid("patterns");
  const list = h("ul", { class: "chips", "aria-label": "Repository patterns" });
  const input = h("input", { type: "text", id, autocomplete: "off", spellcheck: "false", placeholder: "team-a/*, then Enter" });
  const problem = h("p", { class: "pattern-error", "aria-live": "polite" });
  const everything = h("p", { class: "muted hint" }, `No pattern: ${everyRepository(namespace)}.`);
  const render = () => {
    list.replaceChildren(...chips.map((p) => patternChip(p, () => {
      chips = chips.filter((c) => c !== p);
      render();
      input.focus();
    })));
    everything.hidden = chips.length > 0;
  };
  const add = () => {
    const pattern = input.value.trim();
    if (!pattern) return true;
    const error = patternError(pattern) ||
      (chips.length >= MAX_PATTERNS && !chips.includes(pattern) ? `At most ${MAX_PATTERNS} repository patterns per rule: ${quoted(pattern)} is one too many.` : null);
    problem.textContent = error || "";
    if (error) return false;
    if (!chips.includes(pattern)) chips.push(pattern);
    input.value = "";
    render();
    return true;
  };
  input.addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    // Enter adds the pattern; it does not submit the dialog.
    e.preventDefault();
    e.stopPropagation();
    add();
  });
  input.addEventListener("input", () => { problem.textContent = ""; });
  render();
  const unchanged = () => {
    const before = initial || [];
    return before.length === chips.length && before.every((p, i) => p === chips[i]);
  };
  return {
    element: h("div", { class: "patterns" },
      h("label", { for: id }, "Repositories"), list, everything, input, problem),
    value: () => {
      // A pattern typed but not yet added with Enter counts.
      if (!add()) throw new Error(problem.textContent);
      if (unchanged()) return initial;
      if (!chips.length) return initial ? ["**"] : undefined;
      return [...chips];
    },
  };
}

// ---- One entry ----------------------------------------------------------------------------

// One permission entry ({kind, namespace, access, repositories}) as a grid of the permissions
// its kind offers, with its patterns (project entries). Its boxes allow, or deny for a deny
// rule. What the page cannot show as a box (a deny in an allow rule, a permission it does not
// list) is kept as it is, and the entry keeps its order: an edit that changes nothing sends
// back exactly what it was given.
export function entryEditor(permission, available, { legend, canAllow = true, note = null, effect = "allow", footer = null }) {
  const offered = canAllow ? available : [];
  const offeredKeys = new Set(offered.map(accessKey));
  const boxed = (a) => (a.effect === "deny" ? "deny" : "allow") === effect && offeredKeys.has(accessKey(a));
  const had = new Set(permission.access.filter(boxed).map(accessKey));
  const kept = permission.access.filter((a) => !boxed(a));
  const grid = offered.length
    ? permissionGrid(offered, had, { effect, presets: permission.kind === "project" && effect === "allow" ? PRESETS : [] })
    : null;
  const patterns = permission.kind === "project" && canAllow ? patternEditor(permission.repositories, permission.namespace) : null;
  const element = h("fieldset", { class: effect === "deny" ? "entry deny" : "entry" },
    h("legend", {}, legend),
    note ? h("p", { class: "muted" }, note) : null,
    effect === "deny" ? h("p", { class: "muted" }, "The permissions checked here are denied where the patterns match, whatever the other rules allow.") : null,
    patterns ? patterns.element : repositoriesNote(permission),
    grid ? grid.element : null,
    kept.length ? h("div", { class: "kept" },
      h("span", { class: "muted" }, "Kept as they are:"),
      h("ul", {}, kept.map((a) => h("li", {}, `${a.effect === "deny" ? "deny" : "allow"} ${a.action} ${a.resource}`)))) : null,
    footer);
  return {
    element,
    permission,
    effect,
    access: () => {
      const checked = grid ? grid.checked() : new Set();
      const access = permission.access.filter((a) => !boxed(a) || checked.has(accessKey(a)));
      for (const a of offered) {
        const key = accessKey(a);
        if (checked.has(key) && !had.has(key)) access.push({ resource: a.resource, action: a.action, effect });
      }
      return access;
    },
    repositories: () => (patterns ? patterns.value() : permission.repositories),
  };
}

export function entryValue(editor, what) {
  const access = editor.access();
  if (!access.length) throw new Error(`Select at least one permission${what ? ` for ${what}` : ""}.`);
  const value = { kind: editor.permission.kind, namespace: editor.permission.namespace, access };
  const repositories = editor.repositories();
  if (repositories) value.repositories = repositories;
  return value;
}

export function repositoriesNote(permission) {
  return permission.repositories
    ? h("p", { class: "muted repositories" }, `Repositories: ${permission.repositories.join(", ")} (kept as they are)`)
    : null;
}

export function chooserBox(value, label, checked) {
  return h("label", { class: "inline" },
    h("input", { type: "checkbox", value, class: "project-choice", checked }), label);
}

// The projects a system robot's entries name: all (`*`, including future ones) or some.
export function projectChooser(names, chosen, extra) {
  const all = chooserBox("*", "All projects, including future ones", chosen.has("*"));
  const list = h("div", { class: "perms" }, names.map((name) => chooserBox(name, name, chosen.has(name))), extra);
  return {
    element: h("fieldset", { class: "entry" }, h("legend", {}, "Projects"), all, list),
    all: all.querySelector("input"),
    boxes: () => [...list.querySelectorAll("input")],
  };
}

// ---- A robot's entries --------------------------------------------------------------------

// The entries of a robot as editors, in their order. A project entry may be joined by more
// rules on its project (an allow or a deny with other patterns), added after it; a rule is
// removed with its button while another rule on the project remains.
function entryList(available, projects) {
  const known = new Set((projects || []).map((p) => p.name));
  const entries = [];
  const holder = h("div", { class: "entries" });
  const live = () => entries.filter((e) => !e.removed && !e.dropped);
  const refresh = () => {
    for (const e of entries) {
      if (e.removeButton) e.removeButton.disabled = live().filter((o) => o.key === e.key).length < 2;
    }
  };
  const legendOf = (permission, effect, index) => {
    const base = !projects
      ? (effect === "deny" ? "Denied permission(s)" : "Permission(s)")
      : effect === "deny" && permission.kind === "project"
        ? `Denied on ${permission.namespace === "*" ? "all projects" : `project ${permission.namespace}`}`
        : entryLegend(permission);
    return index > 1 ? `${base} (rule ${index})` : base;
  };
  const add = (permission, { effect = effectOf(permission), after = null } = {}) => {
    const system = permission.kind === "system";
    const exists = system || permission.namespace === "*" || known.has(permission.namespace) || !projects;
    const key = system ? "/" : permission.namespace;
    const index = entries.filter((e) => e.key === key && e.effect === effect).length + 1;
    const legend = legendOf(permission, effect, index);
    let entry = null;
    const footer = !system && exists ? h("div", { class: "rule-buttons" },
      h("button", { type: "button", class: "small", onclick: () => rule("allow") }, "New allow rule"),
      h("button", { type: "button", class: "small", onclick: () => rule("deny") }, "New deny rule"),
      h("button", { type: "button", class: "small danger", onclick: () => drop() }, "Remove rule")) : null;
    const rule = (kind) => {
      const added = add({ kind: "project", namespace: permission.namespace, access: [] }, { effect: kind, after: entry });
      added.editor.element.querySelector("input[type=text]")?.focus();
    };
    const drop = () => {
      // The focus was on the button that goes with the rule: it goes to the rule next to it.
      const rules = entries.filter((e) => e.key === key && !e.dropped && e.editor.element.isConnected);
      const at = rules.indexOf(entry);
      const neighbour = rules[at - 1] || rules[at + 1];
      entry.dropped = true;
      entry.editor.element.remove();
      refresh();
      neighbour?.editor.element.querySelector(".rule-buttons button")?.focus();
    };
    const editor = entryEditor(permission, system ? available.system : available.project, {
      legend,
      canAllow: exists,
      effect,
      footer,
      note: exists ? null : `There is no project ${permission.namespace} (any more): this entry is kept as it is; its denies apply to a project of that name created later.`,
    });
    // What an error names: the entry's project, or the rule's legend where there are several.
    const plain = projects ? entryLegend(permission) : "Permission(s)";
    const what = legend !== plain ? legend : projects ? entryName(permission) : "";
    entry = { editor, key, effect, what, removed: false, dropped: false };
    entry.removeButton = footer ? footer.lastChild : null;
    entries.push(entry);
    if (after) {
      const same = entries.filter((e) => e.key === key && !e.dropped && e !== entry && e.editor.element.isConnected);
      (same.length ? same[same.length - 1] : after).editor.element.after(editor.element);
    } else {
      holder.append(editor.element);
    }
    refresh();
    return entry;
  };
  const choose = (key, permission, checked) => {
    const same = entries.filter((e) => e.key === key && !e.dropped);
    if (checked && !same.length) same.push(add(permission()));
    for (const e of same) {
      e.removed = !checked;
      e.editor.element.hidden = !checked;
    }
    refresh();
  };
  const value = (empty) => {
    const chosen = live();
    if (!chosen.length) throw new Error(empty);
    return chosen.map((e) => entryValue(e.editor, e.what));
  };
  return { entries, holder, add, choose, value, known };
}

// A new robot: its rules, for its project or, copied, for each project chosen; a system robot
// may hold system permissions too.
export function newRobotPermissions(available, { project, projects }) {
  const rules = entryList(available, null);
  rules.add({ kind: "project", namespace: project || "", access: [] });
  if (!projects) return { element: rules.holder, value: () => rules.value("Select at least one permission.") };
  const chooser = projectChooser(projects.map((p) => p.name), new Set(), []);
  chooser.all.addEventListener("change", () => chooser.boxes().forEach((b) => { b.disabled = chooser.all.checked; }));
  const system = entryList(available, []);
  const systemBox = h("input", { type: "checkbox", id: "system-entry" });
  systemBox.addEventListener("change", () => system.choose("/", () => ({ kind: "system", namespace: "/", access: [] }), systemBox.checked));
  return {
    element: h("div", {},
      chooser.element,
      rules.holder,
      h("label", { class: "inline" }, systemBox, "System permissions (outside any project)"),
      system.holder),
    value: () => {
      const names = chooser.all.checked ? ["*"] : chooser.boxes().filter((b) => b.checked).map((b) => b.value);
      if (!names.length && !systemBox.checked) throw new Error("Select at least one project, or all projects.");
      const entries = names.length ? rules.value("Select at least one permission.") : [];
      const systemEntries = systemBox.checked ? system.value("") : [];
      return [...names.flatMap((namespace) => entries.map((entry) => ({ ...entry, namespace }))), ...systemEntries];
    },
  };
}

// An existing robot: every entry keeps its own permissions and patterns. A system robot's
// entries can be added and removed with the project chooser (and the system entry with its own
// box); a removed entry comes back as it was if chosen again before saving.
export function editRobotPermissions(robot, available, projects) {
  const list = entryList(available, projects);
  (robot.permissions || []).forEach((p) => list.add(p)); // an empty list is left out, as Harbor does
  const value = () => list.value(projects ? "Select at least one project, all projects or system permissions." : "Select at least one permission.");
  if (!projects) return { element: list.holder, value };

  const present = new Set(list.entries.filter((e) => e.key !== "/").map((e) => e.key));
  const missing = [...present].filter((name) => name !== "*" && !list.known.has(name));
  const chooser = projectChooser([...list.known], present,
    missing.map((name) => chooserBox(name, `${name} (no such project)`, true)));
  for (const box of [chooser.all, ...chooser.boxes()]) {
    box.addEventListener("change", () => list.choose(box.value, () => ({ kind: "project", namespace: box.value, access: [] }), box.checked));
  }
  const systemBox = h("input", { type: "checkbox", id: "system-entry", checked: list.entries.some((e) => e.key === "/") });
  systemBox.addEventListener("change", () => list.choose("/", () => ({ kind: "system", namespace: "/", access: [] }), systemBox.checked));
  return {
    element: h("div", {},
      chooser.element,
      h("label", { class: "inline" }, systemBox, "System permissions (outside any project)"),
      list.holder),
    value,
  };
}

// ---- Read only ----------------------------------------------------------------------------

// One entry as the list's Permissions dialog shows it: its patterns, and a grid of what it
// holds (✓ allowed, ✕ denied).
export function entrySummary(permission, level) {
  const { resources, actions } = gridShape(permission.access);
  const held = new Map(permission.access.map((a) => [accessKey(a), a.effect === "deny" ? "deny" : "allow"]));
  const heading = level === "system" ? namespaceLabel(permission) : "Permissions";
  const patterns = permission.kind !== "project" ? null
    : permission.repositories
      ? h("ul", { class: "chips", "aria-label": "Repository patterns" }, permission.repositories.map((p) => patternChip(p, null)))
      : h("p", { class: "muted" }, `${capital(everyRepository(permission.namespace))}.`);
  return h("section", { class: "entry-summary", "aria-label": heading },
    h("h3", {}, heading, effectOf(permission) === "deny" ? h("span", { class: "tag deny" }, "Deny") : null),
    patterns,
    h("div", { class: "grid-scroll" }, h("table", { class: "permission-grid read-only" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Resource"), actions.map((a) => h("th", { scope: "col" }, title(a))))),
      h("tbody", {}, resources.map((resource) => h("tr", { "data-resource": resource },
        h("th", { scope: "row" }, title(resource)),
        actions.map((action) => {
          const effect = held.get(`${resource}:${action}`);
          if (!effect) return h("td", {});
          return h("td", { class: effect, "data-pair": `${resource}:${action}`, title: `${effect} ${action} ${resource}` },
            effect === "deny" ? "✕ deny" : "✓");
        })))))));
}

export function permissionCount(robot) {
  const n = (robot.permissions || []).reduce((sum, p) => sum + p.access.length, 0);
  return `${n} permission${n === 1 ? "" : "s"}`;
}
