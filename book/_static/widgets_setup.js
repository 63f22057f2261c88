/*
 * Settings for the widget JavaScript (embed-amd.js from @jupyter-widgets/html-manager), loaded just before it on
 * the pages that have widgets (nb_ipywidgets_js in _config.yml).
 *
 * 1. Where the widget manager's own files are. The style sheets of its two AMD modules in embed-amd.js,
 *    "@jupyter-widgets/html-manager" and "@jupyter-widgets/html-manager/dist/libembed-amd", refer to Font Awesome
 *    fonts in the folder of the address require.js gives the module, by default a path under the page's folder
 *    (book/@jupyter-widgets/<hash>.woff2, book/@jupyter-widgets/html-manager/dist/<hash>.woff2: a 404 for each
 *    font). `make vendor-js` puts the fonts beside embed-amd.js in vendor_js/; the require.js paths set here
 *    give both modules addresses in that folder, found from this script's own address so that every page agrees.
 *
 * 2. MathJax 2's `MathJax.Hub.Queue` on top of the book's MathJax 3. @jupyter-widgets/base's typeset() (every
 *    widget description, Label and HTMLMath) calls `MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])`
 *    whenever `window.MathJax` exists. MathJax 3 has no `Hub`, so each widget description logged
 *    "Uncaught TypeError: Cannot read properties of undefined (reading 'Queue')" and none was typeset. The `Hub`
 *    added here typesets the queued elements with `MathJax.typesetPromise` once MathJax has started. It is
 *    installed at DOMContentLoaded: after the deferred MathJax script has run and before the widgets render
 *    (at the window's load event). Pages without MathJax 3 are left as they are.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (script && script.src && window.require && window.require.config) {
    var vendor = new URL("../vendor_js/", script.src).href;
    window.require.config({
      paths: {
        // module "@jupyter-widgets/html-manager" -> vendor_js/html-manager.js
        "@jupyter-widgets/html-manager": vendor + "html-manager",
        // module "@jupyter-widgets/html-manager/dist/libembed-amd" -> vendor_js/libembed-amd.js
        "@jupyter-widgets/html-manager/dist": vendor.replace(/\/$/, ""),
      },
    });
  }

  function installMathJaxHub() {
    var mathjax = window.MathJax;
    if (!mathjax || mathjax.Hub || String(mathjax.version || "").split(".")[0] !== "3") {
      return;
    }
    mathjax.Hub = {
      Queue: function () {
        var elements = [];
        Array.prototype.forEach.call(arguments, function (job) {
          // A MathJax 2 typeset job: ["Typeset", MathJax.Hub, element]
          if (Array.isArray(job) && job[0] === "Typeset" && job[2]) {
            elements.push(job[2]);
          }
        });
        var started = (mathjax.startup && mathjax.startup.promise) || Promise.resolve();
        return started
          .then(function () {
            return elements.length ? mathjax.typesetPromise(elements) : undefined;
          })
          .catch(function (error) {
            console.warn("MathJax could not typeset a widget label:", error);
          });
      },
    };
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", installMathJaxHub);
  } else {
    installMathJaxHub();
  }
})();
