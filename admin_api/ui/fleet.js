// The fleet section: the instances sharing this one's state (GET /v1/fleet, in every frame). In
// file mode one line: this instance alone. In fleet mode the etcd prefix, whether etcd answers,
// the rollout leader, and every live instance with the revision it applied, its admin address and
// when it last renewed its lease; this instance is marked, and one behind the frame's revision
// says so in words (colour only repeats it).

import { h, duration, NONE } from "./dom.js";

// "3 s ago", from the frame's time (the server's clock) and an epoch in seconds.
function seenText(seen, now) {
  if (seen === null || seen === undefined) return NONE;
  return `${duration(Date.parse(now) / 1000 - seen)} ago`;
}

function instanceRow(frame, instance) {
  const behind = frame.revision - instance.applied;
  return h(
    "tr",
    {
      class: [instance.self ? "self" : null, behind > 0 ? "behind" : null],
      data: { instance: instance.instance },
    },
    h(
      "th",
      { attrs: { scope: "row" } },
      instance.instance,
      instance.self ? h("span", { class: "badge self-mark" }, "● this instance") : null,
    ),
    h(
      "td",
      { class: ["num", "applied", behind > 0 ? "bad" : null] },
      String(instance.applied),
      behind > 0 ? h("div", { class: "small" }, `⚠ ${behind} behind`) : null,
    ),
    h("td", { class: "address" }, h("a", { href: `${instance.address}/` }, instance.address)),
    h("td", { class: "seen", attrs: { title: new Date(instance.seen * 1000).toISOString() } }, seenText(instance.seen, frame.time)),
  );
}

export function renderFleet(frame) {
  const fleet = frame.fleet;
  if (!fleet) return [h("p", { class: "muted" }, "No fleet view.")];
  if (fleet.backend !== "etcd") {
    return [h("p", { class: "fleet-summary" }, `This instance alone (state file), revision ${fleet.revision}.`)];
  }
  const reachable = fleet.etcd === "reachable";
  const instances = fleet.instances || [];
  return [
    h(
      "p",
      { class: "fleet-summary" },
      "etcd prefix ",
      h("code", { class: "prefix" }, fleet.prefix || NONE),
      " · ",
      h("span", { class: ["etcd", reachable ? "ok" : "bad"] }, reachable ? "✔ etcd reachable" : "✖ etcd unreachable"),
      " · rollout leader ",
      h("span", { class: "leader" }, fleet.leader || "none"),
      ` · ${instances.length} live instance(s)`,
    ),
    instances.length
      ? h(
          "table",
          {},
          h("caption", { class: "visually-hidden" }, "Instances of the fleet"),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Instance", "Applied revision", "Admin address", "Last seen"].map((title) =>
                h("th", { attrs: { scope: "col" } }, title),
              ),
            ),
          ),
          h("tbody", {}, instances.map((instance) => instanceRow(frame, instance))),
        )
      : h("p", { class: "muted" }, reachable ? "No live instance." : "Who is live is unknown while etcd does not answer."),
  ];
}
