// Typeset the math that pymdownx.arithmatex marks (\( \) inline, \[ \] display) with the bundled KaTeX.
// Material's document$ fires on every page load (also with instant navigation).
function renderMath() {
  document.querySelectorAll(".arithmatex").forEach(function (el) {
    renderMathInElement(el, {
      delimiters: [
        { left: "\\(", right: "\\)", display: false },
        { left: "\\[", right: "\\]", display: true },
      ],
      throwOnError: false,
    });
  });
}
if (typeof document$ !== "undefined") { document$.subscribe(renderMath); }
else { document.addEventListener("DOMContentLoaded", renderMath); }
