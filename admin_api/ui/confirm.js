// The confirmation every action goes through: a modal <dialog> (not window.confirm, which a page
// cannot label or style and some browsers suppress), saying what will change and at which
// revision. `fields` may add inputs (the weights of a route); the promise resolves with their
// values on confirm, or null on cancel (button, Escape, or closing the dialog).

import { h } from "./dom.js";

export function confirmAction({ title, text, action, fields = [], danger = false }) {
  const dialog = document.getElementById("confirm");
  const inputs = fields.map((field) =>
    h("input", {
      type: "number",
      min: field.min ?? 0,
      step: 1,
      required: true,
      value: String(field.value),
      name: field.name,
      id: `confirm-field-${field.name}`,
    }),
  );
  const problem = h("p", { class: "confirm-problem", attrs: { role: "alert" } });
  const form = h(
    "form",
    { class: "confirm-form", attrs: { novalidate: true } },
    h("h2", { id: "confirm-title" }, title),
    h("p", { id: "confirm-text" }, text),
    fields.length
      ? h(
          "div",
          { class: "confirm-fields" },
          fields.map((field, index) =>
            h("label", { attrs: { for: inputs[index].id } }, h("span", {}, field.label), inputs[index]),
          ),
        )
      : null,
    problem,
    h(
      "div",
      { class: "confirm-buttons" },
      h("button", { type: "button", class: "secondary", value: "cancel", on: { click: () => dialog.close("cancel") } }, "Cancel"),
      h("button", { type: "submit", class: danger ? "danger" : "primary", value: "confirm" }, action),
    ),
  );
  dialog.replaceChildren(form);
  dialog.setAttribute("aria-labelledby", "confirm-title");
  dialog.setAttribute("aria-describedby", "confirm-text");

  return new Promise((resolve) => {
    let values = null;
    form.addEventListener("submit", (event) => {
      // Never a real submission: the CSP's form-action 'none' would refuse it anyway.
      event.preventDefault();
      const read = {};
      for (const input of inputs) {
        const value = Number(input.value);
        if (input.value === "" || !Number.isInteger(value) || value < Number(input.min)) {
          problem.textContent = `${input.name}: give a whole number of at least ${input.min}.`;
          input.focus();
          return;
        }
        read[input.name] = value;
      }
      values = read;
      dialog.close("confirm");
    });
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm" ? values : null), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    (inputs[0] || form.querySelector("button[value=confirm]")).focus();
  });
}
