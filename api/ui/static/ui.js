// The UI's few behaviours beyond htmx: local times on hover, and picking two runs to compare.
"use strict";
function localTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const at = new Date(el.getAttribute("datetime"));
    if (!isNaN(at)) { el.title = at.toLocaleString() + " (local time)"; }
  }
}
function comparePicker() {
  const form = document.getElementById("compare-form");
  if (!form) { return; }
  const button = document.getElementById("compare-picked");
  const update = () => {
    const picked = [...form.querySelectorAll("input.pick:checked")].map((b) => b.value);
    button.disabled = picked.length !== 2;
    document.getElementById("compare-a").value = picked[0] || "";
    document.getElementById("compare-b").value = picked[1] || "";
  };
  form.addEventListener("change", update);
  update();
}
document.addEventListener("DOMContentLoaded", () => { localTimes(document); comparePicker(); });
document.addEventListener("htmx:afterSwap", (event) => localTimes(event.target));
