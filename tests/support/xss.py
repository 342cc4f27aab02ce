"""Hostile message bodies: the corpus the renderer's unit tests and the browser test both send.

Each is Markdown source a reader could type. None may ever produce script, an event handler
attribute, an ``<img>`` or a link outside ``http``/``https``/``mailto`` in any reader's page.
The browser test sends every entry through the real system, so each one sets
``window.__xss`` (or opens a dialog) if it ever runs.
"""

from __future__ import annotations

PAYLOAD = "window.__xss=1;alert(1)"

# Every way of writing a `javascript:` (or other script-bearing) link destination.
SCRIPT_LINKS = [
    f"[inline](javascript:{PAYLOAD})",
    f"[inline angle](<javascript:{PAYLOAD}>)",
    f'[titled](javascript:{PAYLOAD} "t")',
    f"[ref][r]\n\n[r]: javascript:{PAYLOAD}",
    f"[collapsed][]\n\n[collapsed]: javascript:{PAYLOAD}",
    f"<javascript:{PAYLOAD}>",
    f"[entity hex](jav&#x61;script:{PAYLOAD})",
    f"[entity dec](&#106;avascript:{PAYLOAD})",
    f"[entity named](javascript&colon;{PAYLOAD})",
    f"[mixed case](JaVaScRiPt:{PAYLOAD})",
    f"[leading space](  javascript:{PAYLOAD})",
    f"[leading control](<\x01javascript:{PAYLOAD}>)",
    f"[leading tab entity](&#9;javascript:{PAYLOAD})",
    f"[inner tab](<java\tscript:{PAYLOAD}>)",
    f"[inner newline entity](java&#10;script:{PAYLOAD})",
    f"[percent](javascript%3A{PAYLOAD})",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    f"[data html](data:text/html,<script>{PAYLOAD}</script>)",
    f"[vbscript](vbscript:{PAYLOAD})",
    f"[VBScript](VBScript:{PAYLOAD})",
    "[file](file:///etc/passwd)",
    f"[relative](/admin/?next=javascript:{PAYLOAD})",
]

# Raw HTML, images and markup tricks (must all come out as text).
RAW_AND_TRICKS = [
    f"<script>{PAYLOAD}</script>",
    f'<img src=x onerror="{PAYLOAD}">',
    f"<svg onload={PAYLOAD}>",
    f'<a href="javascript:{PAYLOAD}">raw link</a>',
    f'<iframe src="javascript:{PAYLOAD}"></iframe>',
    f"**<script>*{PAYLOAD}*</script>**",
    f"_<img src=x onerror={PAYLOAD}>_",
    f"`<script>{PAYLOAD}</script>`",
    f"```\n<script>{PAYLOAD}</script>\n```",
    f'```"><img src=x onerror={PAYLOAD}>\ncode\n```',
    f"```js onload={PAYLOAD}\nx\n```",
    "![image](https://example.org/x.png)",
    f"![image js](javascript:{PAYLOAD})",
    "![ref image][i]\n\n[i]: https://example.org/x.png",
    f'[x](https://example.org/"onmouseover="{PAYLOAD})',
    f"[x](https://example.org/ 'onmouseover={PAYLOAD}')",
    f"https://example.org/<script>{PAYLOAD}</script>",
    f"<!-- --><script>{PAYLOAD}</script>",
    f"<style>*{{background:url(javascript:{PAYLOAD})}}</style>",
    f"&lt;script&gt;{PAYLOAD}&lt;/script&gt;",
    f'<math><mi xlink:href="javascript:{PAYLOAD}">m</mi></math>',
    f"> <details open ontoggle={PAYLOAD}>",
    f"- <form><button formaction=javascript:{PAYLOAD}>x</button></form>",
]

CORPUS = SCRIPT_LINKS + RAW_AND_TRICKS
