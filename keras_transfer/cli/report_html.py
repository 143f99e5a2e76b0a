"""`report.html`: one self-contained page per run, readable in any browser.

Images are embedded as data URIs, so the file can be mailed, attached to a
ticket or opened offline without the run folder next to it.
"""

import base64
import html
import os


def write_report(path, title, sections):
    """Writes a self-contained HTML report.

    Args:
        path: Output `.html` file.
        title: Page title.
        sections: List of `(heading, content)`; `content` is a dict (rendered
            as a two-column table), a list of dicts (a table with one row
            each, columns from the keys), a path to a PNG (embedded), or a
            string (a paragraph).

    Returns:
        `path`.
    """
    body = [f"<h1>{html.escape(title)}</h1>"]
    for heading, content in sections:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        body.append(_render(content))
    page = _PAGE.format(title=html.escape(title), body="\n".join(body))
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(temporary, path)
    return path


def _render(content):
    if isinstance(content, dict):
        rows = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{_cell(v)}</td></tr>"
            for k, v in content.items()
        )
        return f"<table>{rows}</table>"
    if isinstance(content, list):
        columns = list(dict.fromkeys(k for row in content for k in row))
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        rows = "".join(
            "<tr>" + "".join(f"<td>{_cell(row.get(c, ''))}</td>" for c in columns) + "</tr>"
            for row in content
        )
        return f"<table><tr>{head}</tr>{rows}</table>"
    if isinstance(content, (str, os.PathLike)) and str(content).endswith(".png"):
        with open(content, "rb") as f:
            data = base64.b64encode(f.read()).decode("ascii")
        name = html.escape(os.path.basename(str(content)))
        return f'<img alt="{name}" src="data:image/png;base64,{data}">'
    return f"<p>{html.escape(str(content))}</p>"


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1.5em; max-width: 70em;
       color: #222; background: #fff; }}
h1 {{ font-size: 1.6em; }} h2 {{ font-size: 1.2em; margin-top: 1.6em; }}
table {{ border-collapse: collapse; margin: 0.5em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; }}
th {{ background: #f3f3f3; }}
img {{ max-width: 100%; border: 1px solid #eee; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""
