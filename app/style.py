"""The page's CSS: large type for a projector, figures sized to the window, presentation mode."""

from __future__ import annotations

CSS = """
<style>
/* Digits are pixel art: never let the browser smooth them when it enlarges an image. */
[data-testid="stImage"] img { image-rendering: pixelated; border-radius: 0; }
[data-testid="stButtonGroup"] button[aria-checked="true"] { background: #0B4F9C !important; }
[data-testid="stButtonGroup"] button[aria-checked="true"] p { color: #FFFFFF; font-weight: 700; }
[data-testid="stMainBlockContainer"] { padding: 1.6rem 1.5rem 2rem 1.5rem; max-width: 100%; }
/* Streamlit's top bar is opaque while the sidebar is closed and would hide the page's title under
   it: see through it, and let clicks through to the page except on its own buttons. */
header[data-testid="stHeader"] { background: transparent; pointer-events: none; }
header[data-testid="stHeader"] button, header[data-testid="stHeader"] a { pointer-events: auto; }
[data-testid="stMainBlockContainer"] h1 { padding-top: 0; padding-bottom: 0.4rem; font-size: 2rem; }
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li {
  font-size: 1rem; line-height: 1.45; }
[data-testid="stCaptionContainer"] { opacity: 1; }
[data-testid="stCaptionContainer"] p { font-size: 0.9rem; color: #1F2937; }
/* Labels of controls wrap instead of being cut to "Rand..." on a 1280-pixel screen. */
[data-testid="stWidgetLabel"] p, [data-testid="stButton"] button p { white-space: normal; }
[data-testid="stButton"] button { min-height: 2.3rem; }
/* The epoch jump buttons: compact, so 1 20 50 75 200 sit on one line beside the grid. */
[class*="_jumps"] button { min-height: 2rem; padding: 0.1rem 0.5rem; }
[class*="_jumps"][data-testid="stHorizontalBlock"], [class*="_jumps"] { gap: 0.4rem !important; }
/* Digit, column and speed choices wrap onto a second line rather than scroll out of sight. */
[data-testid="stButtonGroup"] div { flex-wrap: wrap; }
[class*="st-key-"][class*="_digit"] [data-testid="stButtonGroup"] button { padding: 0 0.62rem; }

/* Figures drawn by app.figures.show_figures: a grid of pictures, each as large as its column
   and the window's height (--fit-height) allow, never enlarged past its own pixels. */
.cgan-figures { display: grid; gap: 0.75rem; align-items: end; }
.cgan-figure { margin: 0; text-align: center; min-width: 0; }
.cgan-figure img { display: block; margin: 0 auto; max-width: 100%; max-height: var(--fit-height);
  width: auto; height: auto; image-rendering: auto; }
/* Panels drawn by app.figures.show_panels: the layout (one row or two) whose panels are larger,
   computed from the column's width (container query units) and the height given (--panel). */
.cgan-fit { container-type: inline-size; width: 100%; }
.cgan-panels { display: flex; flex-wrap: wrap; justify-content: center; align-items: flex-end;
  margin: 0 auto; }
.cgan-panels > .cgan-figure { flex: 0 0 auto; width: calc(var(--panel) * var(--aspect)); }
.cgan-panels img { max-height: var(--panel); }
/* A compact page list, so the run picker, the jobs training now and the presentation toggle sit on
   a 720-pixel projector's first screen below it. */
[data-testid="stSidebarHeader"] { height: 2.4rem !important; min-height: 0 !important;
  padding-top: 0.5rem !important; padding-bottom: 0 !important; margin-bottom: 0 !important; }
[data-testid="stSidebarNavItems"] { padding-top: 0 !important; padding-bottom: 0.2rem !important; }
[data-testid="stSidebarNavLink"] { height: 31px !important; min-height: 0 !important;
  line-height: 31px !important; margin: 1px 0 !important; }
[data-testid="stSidebarNavSeparator"] { margin: 0.15rem 0 !important; }
[data-testid="stSidebarUserContent"] { padding-top: 0.5rem !important; }
[data-testid="stSidebarUserContent"] [data-testid="stVerticalBlock"] { gap: 0.6rem; }
.st-key-sidebar_jobs { padding: 0.6rem 0.8rem !important; gap: 0.3rem !important; }
.cgan-figure figcaption { font-size: 1.05rem; line-height: 1.5rem; font-weight: 700; color: #000;
  margin: 0.15rem 0; }
</style>
"""

# Presentation mode: no sidebar, header or controls; the figure gets the window.
PRESENTATION_CSS = """
<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header[data-testid="stHeader"],
[data-testid="stToolbar"], [data-testid="stMainBlockContainer"] h1,
[class*="st-key-controls"], [data-testid="stLayoutWrapper"]:has(> [class*="st-key-controls"]) {
  display: none !important; }
[data-testid="stMainBlockContainer"] { padding: 0.5rem 1rem 0 1rem; max-width: 100%; }
.st-key-present_exit { position: fixed; right: 0.6rem; top: 0.5rem; z-index: 1000; width: auto; }
.st-key-present_exit button { opacity: 0.55; }
</style>
"""
