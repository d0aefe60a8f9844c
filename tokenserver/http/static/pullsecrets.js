// Kubernetes image pull secrets (kubernetes.io/dockerconfigjson) for a robot, made in the
// browser from the secret just shown (it never goes back to the server). The same bytes in
// `.data` as `kubectl create secret docker-registry` writes, and as `tokenserver robot create
// --k8s-secret` prints: the robot's name holds `$`, which a shell would expand.
import { h, state } from "./core.js";

// Kubernetes names: a Secret's name is a DNS subdomain, a namespace a DNS label.
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const REGISTRY = /^(https?:\/\/)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(\/[A-Za-z0-9._\-/]*)?$/;

export function pullSecretError(name, namespace, registry) {
  if (name.length > 253 || !SUBDOMAIN.test(name)) {
    return `"${name}" is not a Kubernetes object name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters.`;
  }
  if (namespace && (namespace.length > 63 || !LABEL.test(namespace))) {
    return `"${namespace}" is not a Kubernetes namespace: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters.`;
  }
  if (registry.length > 255 || !REGISTRY.test(registry)) {
    return `"${registry}" is not a registry: host[:port], optionally with http:// or https:// and a path.`;
  }
  return null;
}

// Go's encoding/json escapes these even where JSON needs no escape; kubectl is written in Go.
const GO_ESCAPES = { "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029" };

function base64(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

export function pullSecretManifest(name, namespace, registry, username, password) {
  const config = { auths: { [registry]: { username, password, auth: base64(`${username}:${password}`) } } };
  const json = JSON.stringify(config).replace(/[<>&\u2028\u2029]/g, (c) => GO_ESCAPES[c]);
  const metadata = namespace ? { name, namespace } : { name };
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata,
    type: "kubernetes.io/dockerconfigjson",
    data: { ".dockerconfigjson": base64(json) },
  };
}

// A name Kubernetes takes, from the robot's: `robot$demo+ci` becomes `robot-demo-ci`.
function defaultName(robot) {
  const name = robot.name.toLowerCase().replace(/[^a-z0-9.-]+/g, "-").replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "");
  return (name || "robot").slice(0, 253).replace(/[^a-z0-9]+$/, "");
}

// The form the secret dialog opens under its buttons: the Secret's name, namespace and the
// registry (by default the host of the server's realm, as the command line's), and a button
// that saves `<name>.json` for `kubectl apply -f`.
export function pullSecretForm(robot, secret) {
  const name = h("input", { type: "text", id: "k8s-name", value: defaultName(robot), autocomplete: "off", spellcheck: "false" });
  const namespace = h("input", { type: "text", id: "k8s-namespace", placeholder: "the current one", autocomplete: "off", spellcheck: "false" });
  const registry = h("input", { type: "text", id: "k8s-registry", value: (state.session && state.session.registry) || "", autocomplete: "off", spellcheck: "false" });
  const error = h("p", { class: "error", role: "alert", id: "k8s-error" });
  const save = h("button", { type: "button", id: "k8s-save" }, "Save Secret Manifest");
  save.addEventListener("click", () => {
    const values = [name.value.trim(), namespace.value.trim(), registry.value.trim()];
    const problem = pullSecretError(...values);
    error.textContent = problem || "";
    if (problem) return;
    const manifest = pullSecretManifest(...values, robot.name, secret);
    const link = h("a", {
      href: URL.createObjectURL(new Blob([JSON.stringify(manifest, null, 2) + "\n"], { type: "application/json" })),
      download: `${values[0]}.json`,
    });
    document.body.append(link);
    link.click();
    link.remove();
  });
  // Enter saves this form's manifest, not the dialog's primary button (Export to File).
  const fields = [name, namespace, registry];
  fields.forEach((field) => field.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); save.click(); }
  }));
  return h("fieldset", { class: "entry k8s", id: "k8s-secret" },
    h("legend", {}, "Kubernetes pull secret"),
    h("p", { class: "muted" }, "A kubernetes.io/dockerconfigjson Secret holding this secret, for kubectl apply -f. It is made here: the secret is not sent anywhere."),
    h("label", { for: "k8s-name" }, "Secret name"), name,
    h("label", { for: "k8s-namespace" }, "Namespace (optional)"), namespace,
    h("label", { for: "k8s-registry" }, "Registry"), registry,
    error,
    h("div", { class: "actions" }, save));
}
