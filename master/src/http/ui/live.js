// Live log updates for the Taskotron UI. Everything works without this script; it only
// appends new lines to <pre data-live-log="URL" data-from="N"> as Server-Sent Events arrive.
// EventSource reconnects by itself and sends Last-Event-ID, so no line is lost or repeated.
(function () {
  "use strict";
  function start(pre) {
    var status = document.getElementById(pre.getAttribute("data-status-id"));
    function set(state, text) {
      if (status) { status.setAttribute("data-state", state); status.textContent = text; }
    }
    var url = pre.getAttribute("data-live-log") + "?from=" + encodeURIComponent(pre.getAttribute("data-from") || "0");
    set("connecting", "connecting…");
    var es = new EventSource(url);
    es.onopen = function () { set("live", "live"); };
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) { set("closed", "disconnected (reload the page)"); }
      else { set("reconnecting", "reconnecting…"); }
    };
    es.addEventListener("lines", function (ev) {
      var lines;
      try { lines = JSON.parse(ev.data); } catch (e) { return; }
      var stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      for (var i = 0; i < lines.length; i++) {
        var l = lines[i], c = l.charAt(0), span = document.createElement("span");
        if (c === "h" || c === "o" || c === "e") { span.className = c; l = l.slice(1); } else { span.className = "o"; }
        span.textContent = l + "\n";
        pre.appendChild(span);
      }
      pre.setAttribute("data-from", ev.lastEventId);
      if (stick) { pre.scrollTop = pre.scrollHeight; }
      set("live", "live");
    });
    es.addEventListener("end", function () { es.close(); set("done", "complete (reload for the next step)"); });
  }
  function init() {
    var logs = document.querySelectorAll("pre[data-live-log]");
    for (var i = 0; i < logs.length; i++) { start(logs[i]); }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
