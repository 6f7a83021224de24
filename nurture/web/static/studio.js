// Live preview for the template studio: re-render and lint as marketing types; the variable
// picker's Insert buttons (hidden without JavaScript, where the list is only to read).
(function () {
  "use strict";
  var studio = document.querySelector(".studio");
  if (!studio) { return; }
  var source = document.getElementById("source");
  var sample = document.getElementById("sample");
  var testSource = document.getElementById("test-source");
  var timer = null;

  function text(id, value) {
    var node = document.getElementById(id);
    if (node) { node.textContent = value || ""; }
  }

  function show(payload) {
    var error = document.getElementById("render-error");
    error.hidden = !payload.error;
    error.textContent = payload.error || "";
    text("subject", payload.subject);
    text("text-preview", payload.text);
    text("sms-preview", payload.text);
    var frame = document.getElementById("html-preview");
    if (frame) { frame.srcdoc = payload.html || ""; }
    var counter = document.getElementById("sms-counter");
    if (counter && !payload.sms) { counter.textContent = ""; }
    if (counter && payload.sms) {
      var s = payload.sms;
      counter.textContent = s.characters + " characters · " + s.encoding + " · " + s.segments +
        " segment" + (s.segments === 1 ? "" : "s") + (s.non_gsm.length ? " · forced by " + s.non_gsm.join(" ") : "");
    }
    var lint = document.getElementById("lint");
    lint.innerHTML = "";
    if (!payload.findings.length) {
      var ok = document.createElement("li"); ok.className = "ok"; ok.textContent = "No problems found.";
      lint.appendChild(ok);
    }
    payload.findings.forEach(function (f) {
      var item = document.createElement("li");
      item.className = f.level;
      item.textContent = f.level + (f.line ? " (line " + f.line + ")" : "") + ": " + f.message;
      lint.appendChild(item);
    });
  }

  function refresh() {
    testSource.value = source.value;
    fetch("/admin/templates/" + studio.dataset.channel + "/" + studio.dataset.key + "/preview", {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": studio.dataset.csrf},
      body: JSON.stringify({source: source.value, sample: sample.value})
    }).then(function (r) {
      // 422 is a template that does not render (or is over its budget): its JSON says why.
      return (r.ok || r.status === 422) ? r.json().catch(function () { return null; }) : null;
    }).then(function (payload) {
      if (payload && payload.findings) { show(payload); studio.dataset.previewed = "yes"; }
    });
  }

  // Put "{{ name }}" where the cursor is (replacing any selection), then preview it.
  function insert(name) {
    var text = "{{ " + name + " }}";
    var start = source.selectionStart, end = source.selectionEnd;
    source.focus();
    source.setRangeText(text, start, end, "end");
    source.dispatchEvent(new Event("input", {bubbles: true}));
  }

  Array.prototype.forEach.call(studio.querySelectorAll(".with-js, button.insert"), function (node) {
    node.hidden = false;
  });
  studio.addEventListener("click", function (event) {
    var button = event.target.closest("button.insert");
    if (button) { insert(button.dataset.variable); }
  });

  source.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 350);
  });
  sample.addEventListener("change", refresh);
})();
