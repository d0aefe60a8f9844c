// Permission entries as the robot form edits them.
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

let entryCount = 0;

// One permission entry ({kind, namespace, access}) as checkboxes of the permissions its kind
// offers. What the page cannot show as a checkbox (a deny, a permission it does not list) is
// kept as it is, and the entry keeps its order: an edit that changes nothing sends back
// exactly what it was given.
export function entryEditor(permission, available, { legend, canAllow = true, note = null }) {
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

export function entryValue(editor, what) {
  const access = editor.access();
  if (!access.length) throw new Error(`Select at least one permission${what ? ` for ${what}` : ""}.`);
  const value = { kind: editor.permission.kind, namespace: editor.permission.namespace, access };
  // The page does not edit repository patterns yet: an entry keeps the ones it has.
  if (editor.permission.repositories) value.repositories = editor.permission.repositories;
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

// A new robot: one set of permissions, for its project or for each chosen project.
export function newRobotPermissions(available, { project, projects }) {
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
export function editRobotPermissions(robot, available, projects) {
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
