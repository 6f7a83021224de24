// Ops console: reload the page every few seconds while the toggle is on. The page works
// without this; it never reloads while someone is filling in a form.
(function () {
  "use strict";
  var box = document.getElementById("ops-refresh");
  if (!box) { return; }
  var toggle = document.getElementById("ops-auto");
  var state = document.getElementById("ops-refresh-state");
  var every = parseInt(box.dataset.seconds, 10) || 15;
  var key = "nurture.ops.autorefresh";
  var left = every;
  var edited = false;

  function remembered() {
    try { return window.localStorage.getItem(key) !== "off"; } catch (e) { return true; }
  }
  function remember(on) {
    try { window.localStorage.setItem(key, on ? "on" : "off"); } catch (e) { /* private mode */ }
  }
  function busy() {
    var active = document.activeElement;
    return edited || Boolean(active && active.form);
  }
  function show() {
    if (!toggle.checked) { state.textContent = "(off)"; return; }
    state.textContent = busy() ? "(waiting: a form is being filled in)" : "(next in " + left + " s)";
  }
  function onEdit(event) {
    if (event.target !== toggle && event.target.form) { edited = true; show(); }
  }

  box.hidden = false;
  toggle.checked = remembered();
  toggle.addEventListener("change", function () { remember(toggle.checked); left = every; show(); });
  document.addEventListener("input", onEdit);
  document.addEventListener("change", onEdit);
  window.setInterval(function () {
    if (!toggle.checked || busy()) { left = every; show(); return; }
    left -= 1;
    if (left <= 0) { window.location.replace(box.dataset.url); return; }
    show();
  }, 1000);
  show();
})();
