(function () {
  "use strict";
  var P = __LF_PAGE_ID__, d = document, l = location;
  function send(url, data) {
    try {
      var body = JSON.stringify(data);
      if (navigator.sendBeacon && navigator.sendBeacon(url, body)) return;
      fetch(url, {method: "POST", body: body, keepalive: true, credentials: "omit",
        headers: {"Content-Type": "text/plain"}}).catch(function () {});
    } catch (e) {}
  }
  function view() {
    try {
      var q = new URLSearchParams(l.search), o = {page_id: P, path: l.pathname,
        referrer: d.referrer, screen_width: screen.width};
      ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"].forEach(function (k) {
        var v = q.get(k);
        if (v) o[k] = v.slice(0, 200);
      });
      send("/analytics/track-view", o);
    } catch (e) {}
  }
  try {
    if (d.readyState === "complete") view(); else addEventListener("load", view);
    d.addEventListener("click", function (e) {
      try {
        var t = e.target && e.target.closest && e.target.closest("[data-lf-cta]");
        if (t) send("/analytics/track-event", {page_id: P, name: "cta_click",
          label: (t.getAttribute("data-lf-cta") || "").slice(0, 120)});
      } catch (e2) {}
    }, true);
    d.addEventListener("submit", function (e) {
      try {
        var f = e.target;
        if (f && f.tagName === "FORM") send("/analytics/track-event", {page_id: P,
          name: "form_submit", label: (f.getAttribute("name") || f.id || "").slice(0, 120)});
      } catch (e2) {}
    }, true);
  } catch (e) {}
})();
