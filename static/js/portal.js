/* Portal layout helpers: the compact header's menu button, and labels for tables that stack on phones.
   Loaded in <head> without defer so the "js" class is set before the first paint; everything else waits for
   the document. Without JavaScript the menu simply stays open and tables still stack (without labels). */
(function () {
  "use strict";
  var root = document.documentElement;
  root.classList.add("js");

  function setUpMenu() {
    var button = document.querySelector(".menu-toggle");
    var menu = button && document.getElementById(button.getAttribute("aria-controls"));
    if (!menu) return;
    button.hidden = false;
    function set(open) {
      button.setAttribute("aria-expanded", open ? "true" : "false");
      menu.classList.toggle("is-open", open);
    }
    button.addEventListener("click", function () {
      set(button.getAttribute("aria-expanded") !== "true");
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") {
        set(false);
        button.focus();
      }
    });
  }

  /* Each cell of a stacking table gets its column's heading as data-label (shown before the value on
     phones). Cells that already carry a data-label, and tables marked data-no-stack, are left alone. */
  function labelTables() {
    var tables = document.querySelectorAll("table.table:not([data-no-stack])");
    Array.prototype.forEach.call(tables, function (table) {
      var headings = table.querySelectorAll("thead tr:last-child th");
      if (!headings.length) return;
      var labels = Array.prototype.map.call(headings, function (th) {
        return (th.getAttribute("data-label") || th.textContent || "").replace(/\s+/g, " ").trim();
      });
      Array.prototype.forEach.call(table.tBodies, function (body) {
        Array.prototype.forEach.call(body.rows, function (row) {
          var column = 0;
          Array.prototype.forEach.call(row.cells, function (cell) {
            if (!cell.hasAttribute("data-label") && labels[column]) cell.setAttribute("data-label", labels[column]);
            column += cell.colSpan || 1;
          });
        });
      });
      table.classList.add("is-labelled");
    });
  }

  function ready() {
    setUpMenu();
    labelTables();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
