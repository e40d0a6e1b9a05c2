// What a reader sees on a page of the book, measured in the browser after MathJax has typeset it, written
// as JSON into <pre id="reader-view"> for tests/test_book.py (which appends this script to a copy of the page).
window.addEventListener("load", async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const style = getComputedStyle(article);
  const column = article.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const figures = [...document.querySelectorAll("figure")].filter((f) => f.querySelector("img")).map((f) => {
    const img = f.querySelector("img");
    const number = f.querySelector(".caption-number");
    const link = img.closest("a");
    return {id: f.id, src: img.getAttribute("src"), width: img.getBoundingClientRect().width,
            natural: img.naturalWidth, full: !!f.closest(".full-width"), alt: img.getAttribute("alt") || "",
            number: number ? number.textContent.trim() : null, link: link ? link.getAttribute("href") : null};
  });
  const shown = (id) => { const e = document.getElementById(id); return !!e && e.getBoundingClientRect().height > 0; };
  const heading = document.querySelector("h1 .section-number");
  const landing = {"claims-scoreboard": shown("claims-scoreboard"), "headline-figure": shown("headline-figure")};
  const text = document.body.innerText;
  document.querySelectorAll("pre, code, mjx-container, script, style").forEach((e) => e.remove());
  const view = {column, figures, chapter: heading ? heading.textContent.trim() : null, text,
                prose: document.body.innerText, shown: landing};
  const out = document.createElement("pre");
  out.id = "reader-view";
  out.textContent = JSON.stringify(view);
  document.body.appendChild(out);
});
