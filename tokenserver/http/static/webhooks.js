// A project's webhook policies for robot events (or the system's, for system robots), each
// with its recent deliveries. The page lists them; they are managed with the API or the
// `tokenserver webhook` command.
import { h, main, api, when } from "./core.js";

const RECENT = 10;

// The deliveries of one policy, newest first: a delivery still being tried, or given up,
// also shows its tries and the last try's outcome (its task), so a failing receiver shows.
async function deliveriesTable(base, policy) {
  const { data: executions } = await api("GET", `${base}/policies/${policy.id}/executions?page=1&page_size=${RECENT}`);
  const tasks = await Promise.all(executions.map(async (execution) => {
    if (execution.status === "Success") return null;
    const { data } = await api("GET", `${base}/policies/${policy.id}/executions/${execution.id}/tasks`);
    return data[0] || null;
  }));
  const rows = executions.map((execution, i) => {
    const task = tasks[i];
    const status = task ? task.status : execution.status;
    const tries = task ? String(task.run_count) : "";
    const waiting = task && task.extra_attrs && task.extra_attrs.next_attempt_time
      ? ` (next try ${when(task.extra_attrs.next_attempt_time)})` : "";
    return h("tr", { class: "delivery", "data-status": status },
      h("td", {}, when(execution.start_time)),
      h("td", { class: "event" }, execution.extra_attrs.event_type || ""),
      h("td", { class: `delivery-status ${status.toLowerCase()}` }, status),
      h("td", { class: "tries" }, tries),
      h("td", { class: "outcome" }, (task ? task.status_message : "") + waiting),
      h("td", { class: "url" }, execution.extra_attrs.address || ""));
  });
  return h("table", { "aria-label": `Deliveries of ${policy.name}` },
    h("thead", {}, h("tr", {},
      h("th", {}, "Time"), h("th", {}, "Event"), h("th", {}, "Status"), h("th", {}, "Tries"),
      h("th", {}, "Last outcome"), h("th", {}, "Address"))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: "6", class: "muted" }, "No deliveries yet."))));
}

function policyCard(base, policy) {
  const deliveries = h("div", {}, h("p", { class: "muted" }, "Loading..."));
  const load = async () => {
    try {
      deliveries.replaceChildren(await deliveriesTable(base, policy));
    } catch (e) {
      deliveries.replaceChildren(h("p", { class: "error" }, e.message));
    }
  };
  load();
  return h("section", { class: "card webhook-policy", "data-policy": policy.name, "aria-label": `Webhook ${policy.name}` },
    h("div", { class: "toolbar" },
      h("h2", { class: "grow" }, policy.name,
        h("span", { class: `tag ${policy.enabled ? "enabled" : "disabled"}` }, policy.enabled ? "Enabled" : "Disabled")),
      h("button", { type: "button", "aria-label": `Refresh the deliveries of ${policy.name}`, onclick: () => load() }, "Refresh")),
    policy.description ? h("p", { class: "description" }, policy.description) : null,
    h("dl", { class: "facts" },
      h("dt", {}, "Sends to"),
      h("dd", {}, h("ul", { class: "plain" }, policy.targets.map((t) => h("li", { class: "target" },
        h("span", { class: "url" }, t.address),
        t.auth_header ? h("span", { class: "tag" }, "Authorization header set") : null,
        t.skip_cert_verify ? h("span", { class: "tag deny" }, "Certificate not verified") : null)))),
      h("dt", {}, "Events"),
      h("dd", { class: "events" }, policy.event_types.join(", ")),
      h("dt", {}, "Created"),
      h("dd", {}, `${when(policy.creation_time)}${policy.creator ? ` by ${policy.creator}` : ""}`)),
    h("h3", {}, "Recent deliveries"),
    deliveries);
}

// `base`: /projects/{id}/webhook or /system/webhook. A caller who may not read the policies
// gets the API's 403, which the router turns into the No access page.
export async function webhooksView({ base, heading, scope }) {
  const { data: policies } = await api("GET", `${base}/policies?page=1&page_size=100`);
  main().replaceChildren(h("section", { class: "webhooks" },
    heading,
    h("p", { class: "muted" },
      `Webhook policies send the robot events of ${scope} (created, deleted, secret refreshed, disabled, enabled, ` +
      "expiring in 7 days and in 1 day, expired) to an HTTP receiver. They are managed with the " +
      "API (/webhook/policies) or the tokenserver webhook command."),
    policies.length
      ? policies.map((policy) => policyCard(base, policy))
      : h("p", { class: "muted", id: "no-webhooks" }, "No webhook policies.")));
}
