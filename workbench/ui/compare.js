// CompareTable front end: shows the table Python renders and reports header clicks.
//
// It holds no logic: the rows, their order, the Pareto and "does not fit" marks are all
// in the HTML that workbench/ui/compare.py sends (trait `html`, made by
// ComparisonTable.html_table). A click on a header sets the traits `sort_key` and
// `descending` (the same key again flips the direction; a new key starts in the
// direction its header's data-descending-first asks for); Python sorts and re-sends.

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "wb-compare-view";
  el.appendChild(root);

  const draw = () => {
    root.innerHTML = model.get("html");
  };
  const onClick = (event) => {
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
  draw();
  return () => {
    model.off("change:html", draw);
    root.removeEventListener("click", onClick);
  };
}

export default { render };
