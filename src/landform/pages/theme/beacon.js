(function () {
  "use strict";
  // Asked of the prototypes where a page's markup could shadow a name: an
  // element's id shadows globals inherited from EventTarget (a block with
  // id "addEventListener"), a named element the document's own properties.
  var P = __LF_PAGE_ID__, d = document, l = location, on = EventTarget.prototype.addEventListener,
    referrer = Object.getOwnPropertyDescriptor(Document.prototype, "referrer").get;
  // At most n UTF-16 units and never half of a pair: a lone surrogate is
  // not text, and the server refuses the whole event.
  function cut(s, n) {
    var c = s.charCodeAt(n - 1);
    return s.length <= n ? s : s.slice(0, c >= 0xd800 && c <= 0xdbff ? n - 1 : n);
  }
  function send(url, data) {
    try {
      var body = JSON.stringify(data);
      if (navigator.sendBeacon && navigator.sendBeacon(url, body)) return;
      fetch(url, {method: "POST", body: body, keepalive: true, credentials: "omit",
        headers: {"Content-Type": "text/plain"}}).catch(function () {});
    } catch (e) {}
  }
  // Where this page load came from; sent with every event, so whichever
  // reaches the server first tells the same story.
  function visit(extra) {
    // Only the referrer's host is kept; a long one (a same-site URL with a
    // click id) is cut to what the server takes rather than lose the view.
    var q = new URLSearchParams(l.search), o = {page_id: P, path: l.pathname,
      referrer: cut(referrer.call(d), 2048), screen_width: screen.width};
    ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"].forEach(function (k) {
      var v = q.get(k);
      if (v) o[k] = cut(v, 200);
    });
    for (var k in extra) o[k] = extra[k];
    return o;
  }
  function view() {
    try { send("/analytics/track-view", visit({})); } catch (e) {}
  }
  try {
    if (d.readyState === "complete") view(); else on.call(window, "load", view);
    // Back or forward to a page the browser kept whole (its back/forward
    // cache) is a view too, and fires no load.
    on.call(window, "pageshow", function (e) { if (e.persisted) view(); });
    function cta(e) {
      try {
        var t = e.target && e.target.closest && e.target.closest("[data-lf-cta]");
        if (t) send("/analytics/track-event", visit({name: "cta_click",
          label: cut(t.getAttribute("data-lf-cta") || "", 120)}));
      } catch (e2) {}
    }
    on.call(d, "click", cta, true);
    // The middle button (open in a new tab) clicks no "click".
    on.call(d, "auxclick", function (e) { if (e.button === 1) cta(e); }, true);
    on.call(d, "submit", function (e) {
      try {
        // Asked of the prototypes: a form's own fields shadow its properties
        // (an input named "tagName" or "getAttribute" would hide them).
        var f = e.target, get = Element.prototype.getAttribute;
        if (Object.prototype.toString.call(f) === "[object HTMLFormElement]")
          send("/analytics/track-event", visit({name: "form_submit",
            label: cut(get.call(f, "data-lf-form") || get.call(f, "id") || "", 120)}));
      } catch (e2) {}
    }, true);
  } catch (e) {}
})();
