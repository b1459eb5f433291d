// CompareTable front end: shows the table Python renders and reports header clicks.
//
// It holds no logic: the rows, their order, the Pareto and "does not fit" marks are all
// in the HTML that workbench/ui/compare.py sends (trait `html`, made by
// ComparisonTable.html_table). A click on a header sets the traits `sort_key` and
// `descending` (the same key again flips the direction; a new key starts in the
// direction its header's data-descending-first asks for); Python sorts and re-sends.
// When the trait `row_action` holds a label (e.g. "Deploy"), every row gets a button with
// that label; a click sends the custom message {event: "row_action", name: <row name>}.
// Cells of secondary columns carry the class wb-secondary: while the trait `all_columns` is
// false the view has the class wb-compact, which hides them (CSS in compare.py), and a
// button above the table names them and shows them (it sets `all_columns`).

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "wb-compare-view";
  const bar = document.createElement("div");
  bar.className = "wb-columns";
  const toggle = document.createElement("button");
  toggle.type = "button";
  toggle.className = "wb-columns-toggle";
  bar.appendChild(toggle);
  const holder = document.createElement("div");
  root.append(bar, holder);
  el.appendChild(root);

  const fold = () => {
    const all = model.get("all_columns");
    root.classList.toggle("wb-compact", !all);
    const hidden = [...holder.querySelectorAll("thead th.wb-secondary")]
      .map((th) => th.textContent.replace(/ [▲▼]$/, ""));
    bar.hidden = hidden.length === 0;
    toggle.textContent = all ? "fewer columns" : `+ ${hidden.join(", ")}`;
    toggle.title = all ? "fold the secondary columns away" : "show every column";
  };
  const draw = () => {
    holder.innerHTML = model.get("html");
    const label = model.get("row_action");
    if (!label) return fold();
    const head = holder.querySelector("thead tr");
    if (head) head.appendChild(document.createElement("th"));
    for (const tr of holder.querySelectorAll("tbody tr[data-name]")) {
      const td = document.createElement("td");
      td.className = "wb-action";
      const button = document.createElement("button");
      button.className = "wb-row-action";
      button.type = "button";
      button.textContent = label;
      button.dataset.name = tr.dataset.name;
      button.title = `${label} ${tr.dataset.name}`;
      td.appendChild(button);
      tr.appendChild(td);
    }
    fold();
  };
  const onClick = (event) => {
    if (event.target === toggle) {
      model.set("all_columns", !model.get("all_columns"));
      model.save_changes();
      return;
    }
    const button = event.target.closest("button.wb-row-action");
    if (button && root.contains(button)) {
      model.send({ event: "row_action", name: button.dataset.name });
      return;
    }
    const th = event.target.closest("th[data-key]");
    if (!th || !root.contains(th)) return;
    const key = th.dataset.key;
    const descending = key === model.get("sort_key")
      ? !model.get("descending")
      : th.dataset.descendingFirst === "true";
    model.set("sort_key", key);
    model.set("descending", descending);
    model.save_changes();
  };

  root.addEventListener("click", onClick);
  model.on("change:html", draw);
  model.on("change:row_action", draw);
  model.on("change:all_columns", fold);
  draw();
  return () => {
    model.off("change:html", draw);
    model.off("change:row_action", draw);
    model.off("change:all_columns", fold);
    root.removeEventListener("click", onClick);
  };
}

export default { render };
