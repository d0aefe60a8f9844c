// The projects list, a project's robot accounts and the system robot accounts.
import { PAGE_SIZE, ApiError, state, h, main, showAlert, showSuccess, setTitle, api, when, dialog, cancelButton, submitting, grantable, pagerControls, allProjects } from "./core.js";
import { newRobotPermissions } from "./permissions.js";
import { secretDialog, robotDialog, robotsView, robotRights, requireList } from "./robots.js";
import { webhooksView } from "./webhooks.js";

export async function projectsView() {
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

export function newProjectDialog() {
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
    showSuccess(`Created project ${name.value.trim()}.`);
  }));
  name.focus();
}

// A project's name and its tabs: Robot Accounts, and Webhooks for whoever may list its policies.
function projectHeading(project, rights, current) {
  const tab = (name, label, shown) => shown ? h("a", {
    href: `#/projects/${project.project_id}/${name}`,
    class: name === current ? "active" : null, "aria-current": name === current ? "page" : null,
  }, label) : null;
  return h("div", {},
    h("h1", {}, project.name, h("span", { class: "tag" }, project.metadata.public === "true" ? "Public" : "Private")),
    h("nav", { class: "tabs", "aria-label": "Project" },
      tab("robots", "Robot Accounts", true), tab("webhooks", "Webhooks", rights.webhooks)));
}

export async function projectWebhooksView(id) {
  const { data: project } = await api("GET", `/projects/${id}`);
  setTitle("Webhooks", `project ${project.name}`);
  const rights = await robotRights(`/project/${project.project_id}`);
  if (!rights.webhooks) throw new ApiError(403, `You may not see the webhook policies of project ${project.name}.`);
  await webhooksView({
    base: `/projects/${project.project_id}/webhook`,
    heading: projectHeading(project, rights, "webhooks"),
    scope: `project ${project.name}`,
  });
}

function systemHeading(current) {
  const tab = (hash, label) => h("a", {
    href: hash, class: hash === current ? "active" : null, "aria-current": hash === current ? "page" : null,
  }, label);
  return h("div", {},
    h("h1", {}, "System Robot Accounts"),
    state.session.sysadmin
      ? h("nav", { class: "tabs", "aria-label": "System" },
        tab("#/system-robots", "Robot Accounts"), tab("#/system-webhooks", "Webhooks"))
      : null);
}

export async function systemWebhooksView() {
  if (!state.session.sysadmin) throw new ApiError(403, "System webhook policies are for system administrators.");
  setTitle("Webhooks", "system robots");
  await webhooksView({ base: "/system/webhook", heading: systemHeading("#/system-webhooks"), scope: "the system robots" });
}

// New Robot Account (of a project, or a system robot): create it, then show its secret once.
function newRobotDialog(title, level, permissions, reload) {
  return robotDialog({
    title,
    permissions,
    submit: async (box, form) => {
      const { data } = await api("POST", "/robots", {
        name: form.name,
        description: form.description,
        duration: form.duration,
        token_lifetime: form.token_lifetime,
        level,
        permissions: form.permissions,
      });
      box.close();
      await reload();
      showSuccess(`Created ${data.name}.`);
      secretDialog("Robot account created", data, data.secret);
    },
  });
}

export async function projectView(id) {
  const { data: project } = await api("GET", `/projects/${id}`);
  setTitle("Robot Accounts", `project ${project.name}`);
  const rights = await robotRights(`/project/${project.project_id}`);
  requireList(rights, `the robot accounts of project ${project.name}`);
  const heading = projectHeading(project, rights, "robots");
  await robotsView({
    title: "New Robot Account",
    heading,
    query: () => `Level=project,ProjectID=${project.project_id}`,
    rights,
    create: async (reload) => newRobotDialog("New Robot Account", "project",
      newRobotPermissions(await grantable(), { project: project.name }), reload),
  });
}

export async function systemRobotsView() {
  const rights = await robotRights("/system");
  requireList(rights, "the system robot accounts: they are for system administrators");
  await robotsView({
    title: "New System Robot Account",
    heading: systemHeading("#/system-robots"),
    query: () => "Level=system",
    rights,
    create: async (reload) => newRobotDialog("New System Robot Account", "system",
      newRobotPermissions(await grantable(), { projects: await allProjects() }), reload),
  });
}
